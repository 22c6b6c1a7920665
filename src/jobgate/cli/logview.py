"""``jobgate log``: print a job's log, optionally following it until the job ends.

The log is read only if it is a regular file (a symlink is not followed, a FIFO not
waited on: one clear error instead), at most the size it had when opened per read, and
``--tail`` reads it backwards a block at a time, so no log hangs ``log`` or fills memory.

Following ends when the job is finished — including when it is found dead and marked
lost on the way (reconciliation runs at every poll, so a killed job never leaves the
follower hanging). ``--follow`` exits 0 only when the job completed, else 1.
"""

from __future__ import annotations

import os
import sys
import time

from jobgate.jobs import refresh
from jobgate.state import model
from jobgate.state.errors import EXIT_FAILED, EXIT_OK, JobgateError
from jobgate.state.fileio import CorruptFile, open_regular
from jobgate.state.store import Store

POLL_SECONDS = 0.2


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


#: bytes read per step, backwards for ``--tail`` and forwards to copy
BLOCK = 65536


def _open_log(path: str) -> tuple[int, int] | None:
    """The log opened (no symlink followed, no FIFO waited on) and its size; None if
    there is none; a :class:`JobgateError` if it is not a regular file."""
    try:
        fd, st = open_regular(path)
    except FileNotFoundError:
        return None
    except CorruptFile as exc:
        raise JobgateError(f"cannot show the log {path}: it is {exc.reason}", EXIT_FAILED) from None
    return fd, st.st_size


def _tail_offset(fd: int, end: int, lines: int) -> int:
    """The byte offset where the last ``lines`` lines of the first ``end`` bytes of
    ``fd`` start, read backwards a block at a time (memory stays one block)."""
    pos = end
    found = 0
    while pos > 0:
        step = min(BLOCK, pos)
        pos -= step
        os.lseek(fd, pos, os.SEEK_SET)
        chunk = os.read(fd, step)
        if pos + step == end and chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        count = chunk.count(b"\n")
        if found + count >= lines:
            idx = len(chunk)
            for _ in range(lines - found):
                idx = chunk.rfind(b"\n", 0, idx)
            return pos + idx + 1
        found += count
    return 0


def _copy(fd: int, offset: int, end: int) -> int:
    """Write bytes ``offset`` to ``end`` of ``fd`` to stdout; returns where it stopped
    (the file may be shorter by now)."""
    os.lseek(fd, offset, os.SEEK_SET)
    while offset < end:
        chunk = os.read(fd, min(BLOCK, end - offset))
        if not chunk:
            break
        _write(chunk)
        offset += len(chunk)
    return offset


def _copy_from(path: str, offset: int, tail: int | None = None) -> int:
    """Copy the log from ``offset`` (or its last ``tail`` lines) up to its size when
    opened: bounded, however fast the command writes."""
    opened = _open_log(path)
    if opened is None:
        return offset
    fd, size = opened
    try:
        if tail is not None:
            try:
                offset = _tail_offset(fd, size, tail)
            except OSError:
                offset = 0
        return _copy(fd, offset, size)
    finally:
        os.close(fd)


def show(store: Store, job_id: str, *, follow: bool, tail: int | None) -> int:
    path = store.log_path(job_id)
    offset = _copy_from(path, 0, tail)
    if not follow:
        return EXIT_OK
    while True:
        jobs, _lost = refresh.load(store, finished=0)
        job = refresh.lookup(store, jobs, job_id)
        finished = job is None or model.is_finished(job)
        offset = _copy_from(path, offset)
        if finished:
            if job is not None and job.get("phase") == model.PHASE_LOST:
                sys.stderr.write(f"jobgate: job {job_id} {job.get('errorMessage')}\n")
            # like ``wait``: 0 only for a job that completed (a lost, failed or
            # cancelled one, or one whose record is gone, is not a success)
            completed = job is not None and job.get("status") == model.COMPLETED
            return EXIT_OK if completed else EXIT_FAILED
        time.sleep(POLL_SECONDS)
