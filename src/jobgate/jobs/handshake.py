"""The launch handshake: how ``run --background`` and its detached worker agree on a job's
start so that its record is committed once, already ``running``, with both processes'
identities — one lock acquisition per start instead of two.

Two pipes, each with one writer:

- **gate** (launcher → worker): the job's record as one JSON line (the *spec*), so the
  worker can start the command before any record exists; later one verdict byte,
  ``g`` (committed ``running``: release the command) or ``f`` (committed ``failed``:
  the command could not be started), then end of file. End of file without a verdict
  means the launcher died or its commit failed: the worker then asks the index.
- **report** (worker → launcher): ``P PID OFFSET`` once the command is forked and held
  at its own gate (:func:`jobgate.proc.spawn.fork_held`; OFFSET is where its output will
  start in the log), or ``E MESSAGE`` when it cannot be started; then end of file. End
  of file without a line means the worker died.

Nothing runs unseen: the command waits at its gate until the worker has the verdict,
and the launcher commits only what the worker reported. Either side killed at any
instant leaves at worst a record that reconcile finds lost, never a command no record
names.
"""

from __future__ import annotations

import os
import time

from jobgate.state import jsonload  # json's work without importing json, re and enum

COMMITTED_RUNNING = b"g"
COMMITTED_FAILED = b"f"

#: how long a launcher waits for its worker's report before giving up on it
REPORT_TIMEOUT = 60.0


class Report:
    """What the worker said: the held command's pid and output offset, or why it could
    not start it; neither when it said nothing (it died)."""

    def __init__(self, pid: int | None = None, offset: int = 0, error: str | None = None) -> None:
        self.pid = pid
        self.offset = offset
        self.error = error


class WorkerSilent(Exception):
    """The worker neither reported nor closed its report pipe in time."""


# -- the launcher's side ---------------------------------------------------------------
def exchange(gate_w: int, report_r: int, spec: dict[str, object], timeout: float) -> Report:
    """Send the spec and wait for the report (at most ``timeout`` seconds, then
    :class:`WorkerSilent`). A worker that dies instead gives an empty :class:`Report`."""
    import select

    # ASCII: a lone surrogate (undecodable bytes in an argument) travels as its escape
    pending = jsonload.encode(spec, ascii=True, separators=(",", ":")).encode("ascii") + b"\n"
    got = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(gate_w, False)  # a spec bigger than the pipe must not block the wait
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerSilent
            readable, writable, _ = select.select(
                [report_r], [gate_w] if pending else [], [], remaining
            )
            if writable:
                try:
                    pending = pending[os.write(gate_w, pending[:65536]) :]
                except BlockingIOError:
                    pass
                except BrokenPipeError:
                    pending = b""  # the worker is gone: its report pipe ends too
            if readable:
                chunk = os.read(report_r, 4096)
                got += chunk
                if not chunk or b"\n" in got:
                    break
    finally:
        os.set_blocking(gate_w, True)
    return parse_report(got)


def parse_report(data: bytes) -> Report:
    line = data.partition(b"\n")[0].decode("utf-8", "replace")
    kind, _, rest = line.partition(" ")
    if kind == "P":
        pid, _, offset = rest.partition(" ")
        try:
            return Report(pid=int(pid), offset=int(offset or 0))
        except ValueError:
            return Report()
    if kind == "E" and rest:
        return Report(error=rest)
    return Report()


def send_verdict(gate_w: int, verdict: bytes) -> None:
    try:
        os.write(gate_w, verdict)
    except OSError:
        pass  # the worker is gone; the record is what it is


# -- the worker's side -----------------------------------------------------------------
def read_spec(gate_r: int) -> dict[str, object]:
    """The job record the launcher sent (ValueError if it sent none or garbage)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(gate_r, 65536)
        if not chunk:
            raise ValueError("the launcher sent no job")
        data += chunk
    spec = jsonload.loads(data.decode("utf-8", "surrogateescape"))
    if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
        raise ValueError("the launcher sent no job")
    return spec


def report(report_w: int, *, pid: int | None = None, offset: int = 0, error: str = "") -> None:
    """Tell the launcher (one line), then close the pipe."""
    if pid is not None:
        line = f"P {pid} {offset}\n"
    else:
        line = "E " + (error.replace("\n", " ") or "cannot start the command") + "\n"
    try:
        os.write(report_w, line.encode("utf-8", "replace"))
    except OSError:
        pass  # the launcher is gone: the verdict (none) tells what to do
    finally:
        os.close(report_w)


def await_verdict(gate_r: int) -> bytes:
    """Block until the launcher closes the gate; its verdict byte, or b"" if none."""
    verdict = b""
    try:
        while True:
            chunk = os.read(gate_r, 64)
            if not chunk:
                break
            verdict = verdict or chunk[:1]
    except OSError:
        pass
    finally:
        os.close(gate_r)
    return verdict
