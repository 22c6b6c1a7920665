"""A place in a first-come, first-served queue of processes: one byte of a queue file,
record-locked by its holder (see :mod:`jobgate.state.locking` for how the state lock uses
it)."""

from __future__ import annotations

import os

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

    def wait_turn(self) -> None:
        """Block until the writer before this one in the queue has let the lock go (or
        died, or left the queue)."""
        import fcntl

        if self.number <= 0:
            return
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_SH, 1, self.number - 1)
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, self.number - 1)
        except OSError:  # EDEADLK, ENOLCK: flock decides
            pass

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
