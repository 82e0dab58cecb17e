"""Running Wireshark's dissectors (tshark, through pyshark) over a capture file.

Owns: finding tshark (`NETPROBE_TSHARK`, else `PATH`), one tshark run per
call with a display filter, the asyncio event loop pyshark needs, the time
limit, and never leaving a tshark process behind (error, timeout, Ctrl-C).
Frames come back as plain values holding only the fields asked for: no
pyshark object leaves this module, and it is the only importer of pyshark.
Must not: decide which flows or fields matter (`netprobe.analysis.wireshark`).

The event loop: pyshark's synchronous API takes the thread's current loop
and, on the main thread, installs a process-wide child watcher; inside
Jupyter (a loop already running) it cannot run at all. So each run gets a
private loop (`asyncio.Runner` with its own factory: nothing global is
touched), on the calling thread, or on a helper thread when the calling
thread already runs a loop. Ctrl-C cancels the run, whose `finally` kills
tshark before `KeyboardInterrupt` goes on.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netprobe.core import errors

TSHARK_ENV = "NETPROBE_TSHARK"
"""Path of the tshark binary to run (default: `tshark` on `PATH`)."""


@dataclass(frozen=True)
class FieldValue:
    """One occurrence of a dissector field in a frame."""

    value: str
    """Wireshark's raw value (`show`): `48`, `PROTOCOL_ERROR` is `1`."""
    label: str
    """Wireshark's words for it (`showname` after the colon): `Unknown CA (48)`."""


@dataclass(frozen=True)
class Layer:
    """One protocol of a frame, as tshark dissected it, with the fields asked for."""

    name: str
    """`tcp`, `tls`, `http`, `http2`, ..."""
    fields: Mapping[str, tuple[FieldValue, ...]]
    """Field name (`tls.alert_message.desc`) to its occurrences, in frame order."""


@dataclass(frozen=True)
class Frame:
    """A dissected frame: its number in the file, its TCP endpoints and its layers."""

    number: int
    time: float
    src: str
    sport: int
    dst: str
    dport: int
    layers: tuple[Layer, ...]


@dataclass
class Run:
    """What one tshark run gave."""

    frames: list[Frame] = field(default_factory=list)
    timed_out: bool = False
    problem: str = ""
    """tshark's complaint when it failed (the frames before it are kept), else ''."""
    seconds: float = 0.0


def find_tshark() -> str:
    """The tshark to run: `NETPROBE_TSHARK`, else `tshark` on `PATH`.

    Raises:
        MissingToolError: no tshark on `PATH`.
        UsageError: `NETPROBE_TSHARK` names no executable file.
    """
    named = os.environ.get(TSHARK_ENV)
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            raise errors.UsageError(f"finding tshark: {TSHARK_ENV}={named} is not an "
                                    "executable file")
        return named
    found = shutil.which("tshark")
    if found is None:
        raise errors.MissingToolError("tshark", "tshark")
    return found


def dissect_frames(path: str | Path, display_filter: str, fields: Collection[str],
                   timeout: float) -> Run:
    """The frames of PATH matching DISPLAY_FILTER, with the FIELDS found in each layer.

    One tshark run (PDML output, so fields carry Wireshark's names for values;
    no raw bytes). After TIMEOUT seconds tshark is killed and the frames read
    so far come back with `timed_out`. A tshark that fails (a file it cannot
    read, damage) gives the frames before the failure and `problem`.

    Raises:
        MissingToolError, UsageError: see `find_tshark`.
    """
    job = _Job(Path(path), find_tshark(), display_filter, frozenset(fields), timeout)
    if _loop_running():
        return _on_helper_thread(job)
    return job.run()


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _on_helper_thread(job: _Job) -> Run:
    """Run JOB on a thread of its own (the caller's thread runs an event loop: Jupyter)."""
    outcome: list[Run | BaseException] = []

    def work() -> None:
        try:
            outcome.append(job.run())
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append(exc)

    helper = threading.Thread(target=work, name="netprobe-tshark", daemon=True)
    helper.start()
    try:
        helper.join()
    except KeyboardInterrupt:  # a notebook's interrupt: stop tshark, then go on interrupting
        job.cancel()
        helper.join()
        raise
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


class _Job:
    """One tshark run on a private event loop."""

    def __init__(self, path: Path, tshark: str, display_filter: str, fields: frozenset[str],
                 timeout: float) -> None:
        self.path, self.tshark, self.display_filter = path, tshark, display_filter
        self.fields, self.timeout = fields, timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None

    def run(self) -> Run:
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            self._loop = runner.get_loop()
            return runner.run(self._main())

    def cancel(self) -> None:
        """Stop the run from another thread (its `finally` kills tshark)."""
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)

    async def _main(self) -> Run:
        self._task = asyncio.current_task()
        started = time.monotonic()
        run = Run()
        capture = _file_capture(self.path, self.tshark, self.display_filter)
        try:
            await asyncio.wait_for(self._read(capture, run), self.timeout)
        except TimeoutError:
            run.timed_out = True
        finally:
            await capture.close_async()  # kills tshark if it still runs; a no-op otherwise
            run.seconds = time.monotonic() - started
        return run

    async def _read(self, capture: Any, run: Run) -> None:
        await capture.packets_from_tshark(lambda packet: run.frames.append(
            _frame(packet, self.fields)), close_tshark=False)
        # End of output: let tshark exit by itself before pyshark closes it. pyshark kills a
        # process whose exit asyncio has not seen yet, and CPython's Popen.send_signal then
        # reaps it behind asyncio's child watcher ("Unknown child process pid ..." on stderr).
        for process in list(capture._running_processes):
            code = await process.wait()
            if code not in (0, None):
                await asyncio.gather(*capture._stderr_handling_tasks)
                last = capture._last_error_line or f"exit status {code}"
                run.problem = f"tshark failed: {last.removeprefix('tshark: ')}"
                capture._running_processes.discard(process)  # reported here, not raised


def _file_capture(path: Path, tshark: str, display_filter: str) -> Any:
    """A pyshark FileCapture that runs exactly TSHARK, once.

    The display filter goes in as `-Y` (not `display_filter=`): pyshark would
    run `tshark -v` first to pick the flag, a second tshark start (0.2 s).
    PDML (not `use_json`): fields carry Wireshark's words for values
    (`PROTOCOL_ERROR (1)`), which JSON output lacks; no `include_raw`.
    """
    import pyshark

    class _ExactTshark(pyshark.FileCapture):
        # pyshark would look for a file named `tshark` in that folder, then in its
        # config and on PATH; run the binary found, nothing else.
        def _get_tshark_path(self) -> str:
            return tshark

    return _ExactTshark(str(path), keep_packets=False, eventloop=asyncio.get_running_loop(),
                        tshark_path=tshark, custom_parameters=["-Y", display_filter])


def _frame(packet: Any, wanted: frozenset[str]) -> Frame:
    """A pyshark packet as a plain `Frame` (only the WANTED fields, by their full names)."""
    ip = packet["ipv6"] if "ipv6" in packet else packet["ip"]
    layers = []
    for layer in packet.layers:
        found: dict[str, tuple[FieldValue, ...]] = {}
        # Exact names only: pyshark's get_field falls back to names without the layer
        # prefix, so `http2.type` would find `eth.type`.
        present = layer._all_fields
        for name in sorted(wanted):
            container = present.get(name)
            if container is not None:
                found[name] = tuple(FieldValue(str(f.show or ""),
                                               str(f.showname_value or f.show or ""))
                                    for f in container.all_fields)
        layers.append(Layer(layer.layer_name, found))
    return Frame(int(packet.number), float(packet.sniff_timestamp), str(ip.src),
                 int(packet.tcp.srcport), str(ip.dst), int(packet.tcp.dstport), tuple(layers))
