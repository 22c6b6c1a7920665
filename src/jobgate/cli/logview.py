"""``jobgate log``: print a job's log, optionally following it until the job ends.

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
from jobgate.state.errors import EXIT_FAILED, EXIT_OK
from jobgate.state.store import Store

POLL_SECONDS = 0.2


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _tail_offset(path: str, lines: int) -> int:
    """The byte offset where the last ``lines`` lines of ``path`` start."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            pos = end
            found = 0
            block = 8192
            while pos > 0:
                step = min(block, pos)
                pos -= step
                fh.seek(pos)
                chunk = fh.read(step)
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
    except OSError:
        return 0


def _copy_from(path: str, offset: int) -> int:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            while True:
                chunk = fh.read(65536)
                if not chunk:
                    break
                _write(chunk)
                offset += len(chunk)
    except FileNotFoundError:
        pass
    return offset


def show(store: Store, job_id: str, *, follow: bool, tail: int | None) -> int:
    path = store.log_path(job_id)
    offset = 0 if tail is None else _tail_offset(path, tail)
    offset = _copy_from(path, offset)
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
