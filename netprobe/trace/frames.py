"""Stage 4 of a trace: every capture decoded once, for every consumer.

Owns: `Frames`, a read-through cache of `netprobe.analysis.read` tables by
file. The trace correlates with them, and the outputs (`--pcapng`, plots)
read the same tables instead of decoding the files again. Must not: decide
anything about the packets.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


class Frames:
    """Decoded captures by path; each file is decoded the first time it is asked for."""

    def __init__(self) -> None:
        self._tables: dict[tuple[Path, int, int, int], pd.DataFrame] = {}
        self.decoded = 0
        """How many files were decoded (each once)."""

    @staticmethod
    def warm_up() -> threading.Thread:
        """Loads the decoder's libraries (pandas) in the background, e.g. while the agents
        run: the first `get` then does not wait for them."""
        thread = threading.Thread(target=importlib.import_module, args=("pandas",),
                                  name="netprobe-warm-up", daemon=True)
        thread.start()
        return thread

    def get(self, path: str | Path) -> pd.DataFrame:
        """The `netprobe.analysis.read` table of PATH. Raises: as `analysis.read`.

        A file written again since (another inode, size or time) is decoded again.
        """
        resolved = Path(path).resolve()
        try:
            stat = resolved.stat()
            key = (resolved, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except OSError:
            key = (resolved, -1, -1, -1)
        if key not in self._tables:
            from netprobe import analysis  # numpy and pandas: only once a capture is read

            self._tables[key] = analysis.read(resolved)
            self.decoded += 1
        return self._tables[key]
