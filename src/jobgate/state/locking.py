"""The inter-process lock that serialises every read-modify-write of a state dir.

POSIX: ``fcntl.flock`` on the lock file (released when the descriptor closes, so a
killed holder never leaves it stuck). A writer that finds it busy *blocks* in the kernel
rather than polling with sleeps, so it is woken the moment the holder lets go and waiters
are served about in arrival order (a poller that sleeps loses its turn to newcomers, and
throughput falls as writers are added). The timeout of a blocking wait is a ``SIGALRM``
timer, which only the main thread can set; elsewhere (another thread, a timer already in
use) the wait polls as before. Elsewhere than POSIX: the ``filelock`` package, imported
lazily because its import alone costs ~40 ms on the hook path.

**Arrival order.** ``flock`` alone is not fair: a release wakes every blocked waiter and
whichever the scheduler runs first wins, so on a loaded machine a writer can lose the
race again and again (measured with 32 concurrent launchers: p99 five times p50). A
writer that finds the lock busy therefore queues first: it appends one byte to
``state.lock.queue`` (its offset is its ticket, handed out atomically by ``O_APPEND``),
holds a POSIX record lock on that byte until it lets the state lock go, and waits for
every byte before it to be released before it blocks in ``flock``. Only the head of the
queue waits on the state lock itself; the others wait their turn. The queue is a
courtesy layered on the lock, never the lock: ``flock`` alone decides who holds it, a
waiter killed in the queue releases its byte (the kernel drops a dead process's record
locks), and any trouble with the queue file (a read-only or full disk, no record locks
on this file system) just means waiting in ``flock`` as before. The last writer of a
queue empties the file.

**Who holds it.** A holder writes one line, ``PID LABEL`` (its pid and a short command
line), into the lock file once it has the lock (no fsync: it is a hint, and costs
writers two system calls; readers never take the lock). A waiter with ``on_wait`` that
has waited :data:`NOTICE_AFTER` seconds, and may wait longer, reads that line and
passes it on, once, so a caller can say whom it waits for. The hooks' short waits are
never told.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

#: a waiter is told whom it waits for once it has waited this long (and only when its
#: timeout is longer)
NOTICE_AFTER = 1.0


class _PosixLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self._ticket: _Ticket | None = None

    def acquire(self, timeout: float, on_wait: Callable[[str], None] | None = None) -> bool:
        """Take the lock within ``timeout`` seconds (True) or not (False); after
        :data:`NOTICE_AFTER` seconds of waiting, ``on_wait`` gets the holder's line
        (``"PID LABEL"``, ``""`` when it wrote none), when ``timeout`` is longer."""
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            notice = None
            if on_wait is not None and timeout > NOTICE_AFTER:
                notice = _notice(fd, on_wait)
            ticket = _Ticket.take(self.path + QUEUE_SUFFIX)
            try:
                got = _wait_blocking(fd, timeout, notice, ticket)
                if got is None:
                    got = _wait_polling(fd, timeout, notice)
            except BaseException:
                if ticket is not None:
                    ticket.leave()
                raise
            if not got:
                if ticket is not None:
                    ticket.leave()
                os.close(fd)
                return False
            self._ticket = ticket
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        _write_holder(fd)
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None
        if self._ticket is not None:  # then the next in the queue may go
            self._ticket.leave()
            self._ticket = None


#: the queue file beside the lock file
QUEUE_SUFFIX = ".queue"


class _Ticket:
    """A place in the queue for the lock: byte ``number`` of the queue file, record-locked
    by this process while it waits and while it holds the lock."""

    def __init__(self, fd: int, number: int) -> None:
        self.fd = fd
        self.number = number

    @classmethod
    def take(cls, path: str) -> _Ticket | None:
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
        """Block until every writer before this one in the queue has let the lock go (or
        died, or left the queue).

        Waiting on the byte just before this one wakes only this writer when that one
        goes. Had it left out of turn (killed while it waited, timed out), a writer
        before it may still wait: then wait for all the bytes before, so this writer
        does not race that one in ``flock``. Each writer waits only on bytes below its
        own, so no two wait on each other."""
        import fcntl

        before = self.number
        if before <= 0:
            return
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_SH, 1, before - 1)
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, before - 1)
            if before == 1:  # (a range of length 0 would mean "to the end of the file")
                return
            try:  # the usual case: everyone before has gone
                fcntl.lockf(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB, before - 1, 0)
            except OSError:
                fcntl.lockf(self.fd, fcntl.LOCK_SH, before - 1, 0)
            fcntl.lockf(self.fd, fcntl.LOCK_UN, before - 1, 0)
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


def holder_label() -> str:
    """This process as a lock holder names itself: ``jobgate run -- make``, ``jobgate
    worker of run-...``, ``python -c``; one line, at most 120 characters."""
    import sys

    worker_of = os.environ.get("JOBGATE_WORKER_OF")  # jobgate.state.model.WORKER_ENV
    if worker_of:
        return f"jobgate worker of {worker_of}"[:120]
    argv = list(sys.argv) or [""]
    name = os.path.basename(argv[0])
    if name == "__main__.py":  # python -m jobgate
        name = os.path.basename(os.path.dirname(argv[0]))
    elif argv[0] in ("-c", ""):
        name, argv = f"python {argv[0]}".strip(), argv[:1]
    text = " ".join([name, *argv[1:]])
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 120 else text[:117] + "..."


def _write_holder(fd: int) -> None:
    """Put this process's ``PID LABEL`` line in the lock file (a hint: errors ignored)."""
    data = f"{os.getpid()} {holder_label()}\n".encode(errors="replace")
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    except OSError:
        pass


def _notice(fd: int, on_wait: Callable[[str], None]) -> Callable[[], None]:
    """The call that reads the holder's line through ``fd`` and gives it to ``on_wait``."""

    def notice() -> None:
        try:
            line = os.pread(fd, 512, 0).decode(errors="replace").partition("\n")[0]
        except OSError:
            line = ""
        try:
            on_wait(line)
        except Exception:  # telling is a courtesy: it never breaks the wait
            pass

    return notice


class _TimedOut(Exception):
    pass


def _wait_blocking(
    fd: int, timeout: float, notice: Callable[[], None] | None, ticket: _Ticket | None = None
) -> bool | None:
    """Wait for this ``ticket``'s turn in the queue, then block in ``flock`` until the
    lock is ours (True) or ``timeout`` passes (False), calling ``notice`` after
    :data:`NOTICE_AFTER` seconds (a ``SIGALRM`` handler that does not raise: the wait is
    simply resumed); None when a blocking wait with a timer cannot be had here (not the
    main thread, or ``SIGALRM`` already in someone's use)."""
    import fcntl
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    if timeout == float("inf") and notice is None:
        if ticket is not None:
            ticket.wait_turn()
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    if signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, signal.SIG_IGN, None):
        return None
    if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        return None
    pending = [notice]

    def alarm(signum: int, frame: object) -> None:
        tell = pending.pop() if pending else None
        if tell is None:
            raise _TimedOut
        if timeout != float("inf"):
            signal.setitimer(signal.ITIMER_REAL, max(timeout - NOTICE_AFTER, 0.001))
        tell()

    previous = signal.signal(signal.SIGALRM, alarm)
    have = False
    try:
        try:
            first = NOTICE_AFTER if notice is not None else timeout
            signal.setitimer(signal.ITIMER_REAL, max(first, 0.001))
            if ticket is not None:
                ticket.wait_turn()
            fcntl.flock(fd, fcntl.LOCK_EX)
            have = True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _TimedOut:
        pass  # at worst the lock was had a moment before: closing the fd lets it go
    finally:
        signal.signal(signal.SIGALRM, previous)
    return have


def _wait_polling(fd: int, timeout: float, notice: Callable[[], None] | None) -> bool:
    import fcntl

    start = time.monotonic()
    deadline = start + timeout
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            now = time.monotonic()
            if now >= deadline:
                return False
            if notice is not None and now - start >= NOTICE_AFTER:
                notice()
                notice = None
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


class _PortableLock:  # pragma: no cover - exercised on non-POSIX platforms
    def __init__(self, path: str) -> None:
        import filelock

        self._lock = filelock.FileLock(path)

    def acquire(self, timeout: float, on_wait: Callable[[str], None] | None = None) -> bool:
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
