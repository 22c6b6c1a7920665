"""A place in a first-come, first-served queue of processes: one byte of a queue file,
record-locked by its holder (see :mod:`jobgate.state.locking` for how the state lock uses
it, and :mod:`jobgate.cli.admission` for the launch queue)."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

#: the queue file beside the lock file
QUEUE_SUFFIX = ".queue"


class Ticket:
    """A place in the queue for the lock: byte ``number`` of the queue file, record-locked
    by this process while it waits and while it holds the lock."""

    def __init__(self, fd: int, number: int) -> None:
        self.fd = fd
        self.number = number

    @classmethod
    def take(cls, path: str) -> Ticket | None:
        """Append a byte to the queue and lock it; None if the queue cannot be used (the
        caller then just waits in ``flock``)."""
        import fcntl

        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        flags |= getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags, 0o600)
        except OSError:
            return None
        try:
            os.write(fd, b".")
            # O_APPEND: the write and the move of this descriptor's offset to the new
            # end are one step, so no two writers get the same byte
            number = os.lseek(fd, 0, os.SEEK_CUR) - 1
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, number)
        except OSError:
            # a byte still locked by a waiter from before the file was emptied, a full
            # disk, no record locks here: no place in the queue, flock decides
            os.close(fd)
            return None
        return cls(fd, number)

    def wait_turn(self, ahead: int = 1, timeout: float | None = None) -> bool:
        """Block until the holder ``ahead`` places before this one has let its place go
        (or died, or left the queue): with ``ahead`` 1 a queue of one at a time, with
        ``ahead`` K one that lets K through at once, in arrival order. At most
        ``timeout`` seconds (a ``SIGALRM`` timer, so only from the main thread with the
        timer unused; elsewhere the wait is not bounded): False when it ran out. Any
        trouble with the record locks counts as this place's turn."""
        import fcntl

        byte = self.number - ahead
        if byte < 0:
            return True
        if timeout is not None:
            return _bounded(lambda: self.wait_turn(ahead), timeout)
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_SH, 1, byte)
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, byte)
        except OSError:  # EDEADLK, ENOLCK: no queue after all
            pass
        return True

    def leave(self) -> None:
        """Give up the place (closing the descriptor drops its record locks); the last
        writer in the queue empties the file, so it does not grow without end."""
        try:
            if os.fstat(self.fd).st_size == self.number + 1:
                # a writer that queues behind this byte meanwhile still waits for it
                # (its lock outlives the data) and is let go by the close below
                os.ftruncate(self.fd, 0)
        except OSError:
            pass
        os.close(self.fd)


class _OutOfTime(Exception):
    pass


def _bounded(wait: Callable[[], object], timeout: float) -> bool:
    """Run the blocking ``wait`` for at most ``timeout`` seconds; False if it was cut
    off. Where no timer can be had (not the main thread, ``SIGALRM`` in use), ``wait``
    runs unbounded."""
    import signal
    import threading

    usable = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )
    if not usable:
        wait()
        return True

    def alarm(signum: int, frame: object) -> None:
        raise _OutOfTime

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.001))
            wait()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _OutOfTime:
        return False
    finally:
        signal.signal(signal.SIGALRM, previous)
    return True
