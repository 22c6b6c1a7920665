"""The inter-process lock that serialises every read-modify-write of a state dir.

POSIX: ``fcntl.flock`` on the lock file (released when the descriptor closes, so a
killed holder never leaves it stuck). Elsewhere: the ``filelock`` package, imported
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
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 0.02)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


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
