"""How ``jobgate watch`` waits while nothing happens, and knows when to stop: signals
(:class:`Stopper`), the end of whoever started it (:class:`SessionGuard`) and, on
Linux, a change in the state dir (:class:`Notifier`, inotify) and the exit of a watched
job's process (:class:`ExitWatch`, pidfds), so that an idle watcher does not wake up at
all, however many jobs run, but to check on its parent now and then.

On a virtual machine a wake-up alone costs a Python process 0.1–3 ms of CPU (the most
when the machine is otherwise idle): the fewer, the cheaper (measured:
``benchmarks/watch_idle.py``).
"""

from __future__ import annotations

import os
import select
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any

#: ``poll`` is missing on Windows: the loop then sleeps for its timeouts, no fd wakes it
HAVE_POLL = hasattr(select, "poll")
POLLIN = getattr(select, "POLLIN", 1)


class Stopper:
    """SIGTERM, SIGINT and SIGHUP ask the loop to stop. Each signal also writes a byte
    to :attr:`fd` (Python's wakeup fd), so a ``poll`` that includes it returns at once;
    :meth:`wait` is such a sleep. Handlers are restored on exit."""

    SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")

    def __init__(self) -> None:
        self.reason: str | None = None
        #: readable after a signal (-1: not in the main thread, no wakeup fd)
        self.fd = -1
        self._w = -1
        self._old: dict[int, object] = {}
        self._old_fd = -1

    def __enter__(self) -> Stopper:
        import signal

        for name in self.SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None:
                self._old[sig] = signal.signal(sig, self._handle)
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        try:
            self._old_fd = signal.set_wakeup_fd(w)
        except ValueError:  # not the main thread: plain sleeps
            os.close(r)
            os.close(w)
            return self
        self.fd, self._w = r, w
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.fd >= 0:
            signal.set_wakeup_fd(self._old_fd)
            os.close(self.fd)
            os.close(self._w)
            self.fd = self._w = -1
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self._old.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        import signal

        self.reason = f"got {signal.Signals(signum).name}"

    def drain(self) -> None:
        """Empty the wakeup fd (a signal's byte, stopping or not: SIGALRM, SIGCHLD...)."""
        if self.fd >= 0:
            try:
                while os.read(self.fd, 512):
                    pass
            except OSError:
                pass

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, less if a signal comes; True when asked to
        stop."""
        if self.reason is None:
            if self.fd < 0:
                import time

                time.sleep(timeout)
            elif select.select([self.fd], [], [], timeout)[0]:
                self.drain()
        return self.reason is not None


class SessionGuard:
    """Whether whoever started this process is gone: its parent (the process is
    re-parented when it dies), or the reader of its stdout when that is a pipe or a
    socket (Claude Code reads a plugin monitor's stdout through a pipe until the session
    ends). :meth:`fds` go into a ``poll`` so it wakes the moment either happens: a pidfd
    of the parent (readable once it exits; Linux 5.3+), and stdout registered for no
    event (``POLLERR``/``POLLHUP`` come when its reader is gone)."""

    def __init__(self, stdout_fd: int = 1) -> None:
        import stat

        self.parent = os.getppid()
        self.stdout_fd = -1
        self.parent_fd = -1
        try:
            mode = os.fstat(stdout_fd).st_mode
        except OSError:
            mode = 0
        if HAVE_POLL and (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            self.stdout_fd = stdout_fd
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None and self.parent > 1:
            try:
                self.parent_fd = pidfd_open(self.parent)
            except OSError:
                pass  # gone already (then getppid says so), or no pidfds here
            if self.parent_fd >= 0 and os.getppid() != self.parent:
                # it died before the pidfd was opened, which may name another process
                # now; :meth:`gone` says so at once. (Still the parent after the open:
                # then the pidfd is the parent's.)
                self.close()

    @property
    def check_every(self) -> float:
        """How often to ask :meth:`gone` when nothing else wakes the loop: every few
        seconds without a pidfd of the parent; with one (it says when the parent exits),
        only as a backstop, every ten minutes."""
        return 600.0 if self.parent_fd >= 0 else 5.0

    def fds(self) -> list[tuple[int, int]]:
        """``(fd, events)`` to poll: what wakes the loop when the session is over."""
        out = []
        if self.parent_fd >= 0:
            out.append((self.parent_fd, POLLIN))
        if self.stdout_fd >= 0:
            out.append((self.stdout_fd, 0))  # POLLERR and POLLHUP are always reported
        return out

    def gone(self) -> str | None:
        """Why the session is over, or None while it is not (one ``getppid`` and one
        zero-timeout ``poll``)."""
        if os.getppid() != self.parent:
            return f"its parent process {self.parent} is gone"
        if self.stdout_fd >= 0:
            poll = select.poll()
            poll.register(self.stdout_fd, 0)
            for _fd, flags in poll.poll(0):
                if flags & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                    return "nothing reads its output any more"
        return None

    def close(self) -> None:
        if self.parent_fd >= 0:
            os.close(self.parent_fd)
            self.parent_fd = -1


# -- inotify -------------------------------------------------------------------------------
IN_MODIFY = 0x2
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_IGNORED = 0x8000
#: a file of the folder written, replaced (``os.replace`` is a move), made or removed;
#: the folder itself removed or moved
MASK = IN_MODIFY | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
_HEADER = 16  # struct inotify_event: int wd; uint32 mask, cookie, len; then the name


class Notifier:
    """inotify on one folder (not its subfolders: job logs in ``jobs/`` never wake it).
    :attr:`fd` is -1 where inotify is missing (not Linux, no ``libc``, no watches left):
    the caller then looks every tick instead."""

    def __init__(self) -> None:
        self.fd = -1
        self.watching = False
        self._add = None
        if not sys.platform.startswith("linux"):
            return
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            init1 = libc.inotify_init1
            self._add = libc.inotify_add_watch
        except (OSError, AttributeError):
            return
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        fd = int(init1(os.O_NONBLOCK | os.O_CLOEXEC))
        self.fd = fd if fd >= 0 else -1

    def watch(self, folder: str) -> bool:
        """Watch ``folder`` (True when it is now watched; False when it does not exist
        yet, or inotify cannot)."""
        if self.fd < 0 or self._add is None:
            return False
        if self._add(self.fd, os.fsencode(folder), MASK) < 0:
            return False
        self.watching = True
        return True

    def drain(self) -> bool:
        """Read the pending events; True if any came. A watch that ended (the folder
        removed or moved away) sets :attr:`watching` False."""
        came = False
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return came
            except OSError:
                self.watching = False
                return True
            if not data:
                return came
            came = True
            at = 0
            while at + _HEADER <= len(data):
                mask = int.from_bytes(data[at + 4 : at + 8], sys.byteorder)
                size = int.from_bytes(data[at + 12 : at + 16], sys.byteorder)
                if mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                    self.watching = False
                at += _HEADER + size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.watching = False


# -- pidfds ----------------------------------------------------------------------------------
class ExitWatch:
    """One pidfd per watched active job, pinned on one of its recorded processes (worker
    first, then command) and readable once that process exits (Linux 5.3+): the loop
    sleeps on them instead of probing every few seconds. A job none of whose processes
    can be pinned (no pidfds here, a process of a pid namespace not visible here, a
    queued job with no process yet, too many open files) is left to the periodic probe.

    A pin is never a guess: the process is opened by the pid it has here
    (:func:`jobgate.proc.liveness.localize`) and kept only if the identity probe still
    finds it alive *after* the pidfd was opened — a process recorded before the open and
    alive after it held that pid all along, so the pidfd is that very process."""

    #: at most this many pidfds (each one an open file)
    MAX_PINS = 256

    def __init__(self) -> None:
        self.available = sys.platform.startswith("linux") and hasattr(os, "pidfd_open")
        #: job id -> pidfd
        self.pins: dict[str, int] = {}

    def sync(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Pin each of ``jobs`` not pinned yet, unpin what is no longer among them;
        returns the jobs left unpinned (to probe every few seconds)."""
        ids = {str(j.get("id")) for j in jobs}
        for job_id in [i for i in self.pins if i not in ids]:
            os.close(self.pins.pop(job_id))
        left = []
        for job in jobs:
            job_id = str(job.get("id"))
            if job_id not in self.pins and not self._pin(job_id, job):
                left.append(job)
        return left

    def _pin(self, job_id: str, job: dict[str, Any]) -> bool:
        if not self.available or len(self.pins) >= self.MAX_PINS:
            return False
        from jobgate.proc import liveness
        from jobgate.state import model

        for ident in model.identities(job):
            here = liveness.localize(ident)
            if here is None:
                continue
            try:
                fd = os.pidfd_open(here["pid"])
            except OSError:
                continue
            if liveness.probe(here)[0] == liveness.ALIVE:
                self.pins[job_id] = fd
                return True
            os.close(fd)
        return False

    def fds(self) -> list[int]:
        return list(self.pins.values())

    def fired(self, ready: set[int]) -> list[str]:
        """The jobs whose pinned process exited (their fd in ``ready``), unpinned: probe
        them, and the next :meth:`sync` pins another of their processes if one lives."""
        gone = [i for i, fd in self.pins.items() if fd in ready]
        for job_id in gone:
            os.close(self.pins.pop(job_id))
        return gone

    def close(self) -> None:
        for fd in self.pins.values():
            os.close(fd)
        self.pins.clear()
