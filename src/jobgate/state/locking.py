"""The inter-process lock that serialises every read-modify-write of a state dir.

POSIX: ``fcntl.flock`` on the lock file (released when the descriptor closes, so a
killed holder never leaves it stuck). A writer that finds it busy *blocks* in the kernel
rather than polling with sleeps, so it is woken the moment the holder lets go and waiters
are served about in arrival order (a poller that sleeps loses its turn to newcomers, and
throughput falls as writers are added). The timeout of a blocking wait is a ``SIGALRM``
timer, which only the main thread can set; elsewhere (another thread, a timer already in
use) the wait polls as before. Elsewhere than POSIX: the ``filelock`` package, imported
lazily because its import alone costs ~40 ms on the hook path.
"""

from __future__ import annotations

import os
import time


class _PosixLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            got = _wait_blocking(fd, timeout)
            if got is None:
                got = _wait_polling(fd, timeout)
            if not got:
                os.close(fd)
                return False
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


class _TimedOut(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _TimedOut


def _wait_blocking(fd: int, timeout: float) -> bool | None:
    """Block in ``flock`` until the lock is ours (True) or ``timeout`` passes (False);
    None when a blocking wait with a timer cannot be had here (not the main thread, or
    ``SIGALRM`` already in someone's use)."""
    import fcntl
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    if timeout == float("inf"):
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    if signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, signal.SIG_IGN, None):
        return None
    if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        return None
    previous = signal.signal(signal.SIGALRM, _alarm)
    have = False
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.001))
            fcntl.flock(fd, fcntl.LOCK_EX)
            have = True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _TimedOut:
        pass  # at worst the lock was had a moment before: closing the fd lets it go
    finally:
        signal.signal(signal.SIGALRM, previous)
    return have


def _wait_polling(fd: int, timeout: float) -> bool:
    import fcntl

    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


class _PortableLock:  # pragma: no cover - exercised on non-POSIX platforms
    def __init__(self, path: str) -> None:
        import filelock

        self._lock = filelock.FileLock(path)

    def acquire(self, timeout: float) -> bool:
        import filelock

        try:
            self._lock.acquire(timeout=timeout)
        except filelock.Timeout:
            return False
        return True

    def release(self) -> None:
        self._lock.release()


def make_lock(path: str) -> _PosixLock | _PortableLock:
    if os.name == "posix":
        return _PosixLock(path)
    return _PortableLock(path)
