"""A foreground job's terminal: its output copied through as it comes, and the
signals jobgate receives forwarded to its command. Used by :mod:`jobgate.jobs.worker`."""

from __future__ import annotations

import os
import signal

from jobgate.state.fileio import open_log

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import IO


def stream(text: IO[str] | None) -> IO[bytes] | None:
    """The byte stream under ``sys.stdout``/``sys.stderr``; None when that descriptor was
    closed when jobgate started (``jobgate run -- cmd >&-``): output then only goes to
    the log."""
    return getattr(text, "buffer", None)


def pump(
    proc: subprocess.Popen[bytes], log_path: str, out: IO[bytes] | None, err: IO[bytes] | None
) -> None:
    """Foreground: copy the command's stdout to ``out`` and its stderr to ``err`` as they
    come, and both, in the order they arrive, to the log."""
    import selectors

    assert proc.stdout is not None and proc.stderr is not None
    fd = open_log(log_path)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout.fileno(), selectors.EVENT_READ, out)
    sel.register(proc.stderr.fileno(), selectors.EVENT_READ, err)
    try:
        while sel.get_map():
            for key, _events in sel.select():
                try:
                    chunk = os.read(key.fd, 65536)
                except InterruptedError:  # pragma: no cover - PEP 475 retries
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                os.write(fd, chunk)
                if key.data is None:
                    continue
                try:
                    key.data.write(chunk)
                    key.data.flush()
                except (OSError, ValueError):
                    pass  # the terminal went away; keep logging
    finally:
        sel.close()
        os.close(fd)
        proc.stdout.close()
        proc.stderr.close()


def forward_signals(proc: subprocess.Popen[bytes]) -> list[int]:
    """Foreground: Ctrl-C / TERM / HUP to jobgate go to the command's process group.
    Returns the list the signals forwarded are appended to, as they come."""
    forwarded: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        # Only while the command is unreaped: until then its pid (and so its process
        # group id) cannot belong to anyone else. Once wait() has reaped it, a late
        # Ctrl-C must not reach a group that may since have reused that id.
        if proc.returncode is not None:
            return
        forwarded.append(signum)
        try:
            os.killpg(proc.pid, signum)
        except OSError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        try:
            signal.signal(sig, forward)
        except (OSError, ValueError):  # pragma: no cover - not main thread
            pass
    return forwarded
