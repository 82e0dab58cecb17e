"""Reading a support bundle: `kubectl get ... -o yaml|json` output, offline.

Owns: loading a file or a directory of files holding Kubernetes objects (a
`List`, a `*List`, multi-document YAML, or JSON) into plain dicts, with a
clear error naming the file and the line for anything malformed. Must not:
interpret the objects (discovery does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from netprobe.core import errors

SUFFIXES = (".yaml", ".yml", ".json")


def _flatten(document: Any, source: str) -> list[dict[str, Any]]:
    if document is None:
        return []
    if not isinstance(document, dict):
        raise errors.UsageError(f"reading snapshot {source}: expected Kubernetes objects, "
                                f"found a {type(document).__name__}")
    if "items" in document and str(document.get("kind", "")).endswith("List"):
        items = document.get("items") or []
        if not isinstance(items, list):
            raise errors.UsageError(f"reading snapshot {source}: 'items' is not a list")
        found: list[dict[str, Any]] = []
        for item in items:
            found += _flatten(item, source)
        return found
    if "kind" not in document or "apiVersion" not in document:
        raise errors.UsageError(f"reading snapshot {source}: an object without kind/apiVersion")
    return [document]


def _load_text(text: str, source: str) -> list[dict[str, Any]]:
    try:
        if text.lstrip().startswith(("{", "[")):
            documents = [json.loads(text)]
        else:
            # libyaml's safe loader when the wheel has it: the same documents, ~10x faster
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            documents = list(yaml.load_all(text, Loader=loader))
    except json.JSONDecodeError as exc:
        raise errors.UsageError(
            f"reading snapshot {source}: line {exc.lineno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise errors.UsageError(f"reading snapshot {source}: {where}{problem}") from None
    objects: list[dict[str, Any]] = []
    for document in documents:
        if isinstance(document, list):
            for item in document:
                objects += _flatten(item, source)
        else:
            objects += _flatten(document, source)
    return objects


def load(path: Path) -> list[dict[str, Any]]:
    """Returns every object in PATH (a file, or a directory of .yaml/.yml/.json files).

    Raises:
        UsageError: missing, unreadable, malformed, or holding no object.
    """
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    else:
        files = [path]
    objects: list[dict[str, Any]] = []
    for file in files:
        try:
            text = file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise errors.UsageError(f"reading snapshot {file}: "
                                    f"{getattr(exc, 'strerror', None) or exc}") from None
        objects += _load_text(text, str(file))
    if not objects:
        raise errors.UsageError(f"reading snapshot {path}: no Kubernetes objects in it")
    return objects
