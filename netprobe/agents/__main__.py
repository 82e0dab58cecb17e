"""`python -m netprobe.agents --spec JSON`: run one agent, print its result bundle.

Exit codes: 0 the agent ran (the result says what it found), 2 a bad spec,
3 the agent itself failed (its result carries the error).
"""

from __future__ import annotations

import argparse
import signal
import sys

from netprobe.agents.program import run
from netprobe.agents.spec import AgentSpec, encode_result
from netprobe.core import errors


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netprobe.agents", description=__doc__)
    parser.add_argument("--spec", required=True, help="the AgentSpec as JSON")
    args = parser.parse_args(argv)
    try:
        spec = AgentSpec.from_json(args.spec)
    except errors.UsageError as exc:
        print(f"netprobe-agent: error: {exc}", file=sys.stderr)
        return 2
    # SIGTERM (the controller aborting, a pod deleted) unwinds like Ctrl-C: the capture
    # is stopped and the work directory removed on the way out.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        result = run(spec)
    except KeyboardInterrupt:
        print("netprobe-agent: interrupted", file=sys.stderr)
        return 130
    sys.stdout.write(encode_result(result))
    sys.stdout.flush()
    return 0 if result.ok else 3


if __name__ == "__main__":
    sys.exit(main())
