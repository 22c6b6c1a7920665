"""The job index on disk: a small hot set and an append-only log of finished jobs.

::

    active.json     {"version": 2, "jobs": [summary of each active job, newest first],
                     "finished": {"dev": D, "ino": I, "bytes": B, "count": C}}
    finished.jsonl  one summary of a finished job per line, oldest first; a later line
                    for the same id replaces an earlier one (``announcedAt`` set later)

Every call reads ``active.json`` (what is running) and ``stat``s ``finished.jsonl``, so it
costs what is active, not what was retained. ``finished`` is the cursor of the last
commit: which file (dev, inode) and how many of its bytes that commit accounted for, and
how many distinct jobs they hold.

A writer appends the lines of jobs that finished *before* it replaces ``active.json``.
Killed in between, the log holds lines past the cursor: those jobs are finished (the
finished line wins over the stale active entry) for every reader, and the next writer
folds them in. A line torn by a kill mid-append (no newline yet) is ignored and cut off
by the next writer. When the cursor names another file or more bytes than there are
(killed between rewriting the log and ``active.json``), the whole log is read instead.

This module is the format: parsing and checking what was read, and reading the log's
tail. :mod:`jobgate.state.store` decides when to read what, under which lock.
"""

from __future__ import annotations

import os

from jobgate.state import jsonload, model
from jobgate.state.fileio import CorruptFile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

VERSION = 2
ACTIVE = "active.json"
FINISHED = "finished.jsonl"
#: the index before version 2 (every job in one file); read, then migrated by a writer
LEGACY = "state.json"

#: bytes read from the end of the log per step when only its newest lines are wanted
TAIL_CHUNK = 64 * 1024


class Cursor:
    """Which log file a commit accounted for (``dev``, ``ino``), how many of its bytes,
    how many distinct jobs those bytes hold, and their CRC-32 (so a reader can tell
    that they are, to the byte, what jobgate wrote: valid JSON lines it may pass on
    without parsing them)."""

    __slots__ = ("bytes", "count", "crc", "dev", "ino")
    FIELDS = ("dev", "ino", "bytes", "count", "crc")

    def __init__(self, dev: int, ino: int, size: int, count: int, crc: int) -> None:
        self.dev = dev
        self.ino = ino
        self.bytes = size
        self.count = count
        self.crc = crc

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.FIELDS}

    def names(self, dev: int, ino: int) -> bool:
        return (self.dev, self.ino) == (dev, ino)

    def __repr__(self) -> str:
        return f"Cursor({self.as_dict()})"


NO_LOG = Cursor(0, 0, 0, 0, 0)


def check_jobs(path: str, jobs: Any) -> list[model.Job]:
    """``jobs`` if it is a list of job objects with safe ids, else :class:`CorruptFile`."""
    if not isinstance(jobs, list):
        raise CorruptFile(path, "not an object with a 'jobs' list")
    for job in jobs:
        _check_job(path, job)
    return jobs


def _check_job(path: str, job: Any) -> None:
    if not isinstance(job, dict) or not isinstance(job.get("id"), str):
        raise CorruptFile(path, "a job entry is not an object with an 'id'")
    if not model.is_safe_id(job["id"]):
        # jobgate never writes such an id; it would name a file outside jobs/
        raise CorruptFile(path, f"a job entry has an invalid id {job['id']!r}")


def parse_active(path: str, data: Any) -> tuple[list[model.Job], Cursor]:
    """The active summaries and the cursor of an ``active.json`` document."""
    if not isinstance(data, dict):
        raise CorruptFile(path, "not an object with a 'jobs' list")
    jobs = check_jobs(path, data.get("jobs"))
    raw = data.get("finished")
    if not isinstance(raw, dict):
        raise CorruptFile(path, "no 'finished' cursor")
    fields: list[int] = []
    for key in Cursor.FIELDS:
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CorruptFile(path, "the 'finished' cursor is not five counts")
        fields.append(value)
    return jobs, Cursor(*fields)


def active_document(jobs: list[model.Job], cursor: Cursor) -> dict[str, Any]:
    return {"version": VERSION, "jobs": jobs, "finished": cursor.as_dict()}


def parse_legacy(path: str, data: Any) -> list[model.Job]:
    """The job summaries of a version 1 ``state.json``."""
    if not isinstance(data, dict):
        raise CorruptFile(path, "not an object with a 'jobs' list")
    return check_jobs(path, data.get("jobs"))


def parse_lines(data: bytes) -> tuple[list[model.Job], int, int]:
    """``(summaries, complete, bad)`` of a stretch of the log: the jobs of its complete
    lines in order, how many bytes those lines take (a torn last line is not counted), and
    how many complete lines were not a job summary (skipped)."""
    end = data.rfind(b"\n") + 1
    jobs: list[model.Job] = []
    bad = 0
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            job = jsonload.loads(line)
            _check_job("", job)
        except (ValueError, UnicodeDecodeError, RecursionError, CorruptFile):
            bad += 1
            continue
        jobs.append(job)
    return jobs, end, bad


def latest(lines: list[model.Job]) -> dict[str, model.Job]:
    """Each id's last line, in the order of those last lines (oldest first)."""
    out: dict[str, model.Job] = {}
    for job in lines:
        out.pop(job["id"], None)
        out[job["id"]] = job
    return out


def lines_text(jobs: list[model.Job]) -> bytes:
    """The log lines of ``jobs``: compact JSON, each starting with its ``"id"``, without
    the keys only the job file keeps (:data:`jobgate.state.model.LOG_LINE_DROPS`)."""
    from jobgate.state.fileio import json_text

    out = []
    for job in jobs:
        line = {"id": job["id"]}
        line.update((k, v) for k, v in job.items() if k not in model.LOG_LINE_DROPS)
        out.append(json_text(line, separators=(",", ":")) + "\n")
    return "".join(out).encode("utf-8")


def crc(data: bytes | memoryview, start: int = 0) -> int:
    import zlib  # writers, and readers passing the log on whole

    return zlib.crc32(data, start)


ID_PREFIX = b'{"id":"'


def last_lines(data: bytes) -> bytes:
    """``data`` (complete lines that jobgate wrote: :func:`lines_text`) with only each
    id's last line, in order, without parsing the JSON."""
    start = len(ID_PREFIX)
    last: dict[bytes, bytes] = {}
    for line in data.splitlines(keepends=True):
        job_id = line[start : line.find(b'"', start)]
        last.pop(job_id, None)
        last[job_id] = line
    return b"".join(last.values())


def stat_log(path: str) -> tuple[int, int, int] | None:
    """``(dev, ino, size)`` of the log, None if there is none; :class:`CorruptFile` if it
    is not a regular file (a symlink is not followed): the next writer rebuilds it."""
    import stat

    from jobgate.state.fileio import not_regular

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise not_regular(path, st.st_mode)
    return st.st_dev, st.st_ino, st.st_size


def read_range(path: str, start: int, end: int) -> bytes:
    """Bytes ``start`` to ``end`` of the log (fewer if it is shorter), read without
    following a symlink or waiting on a FIFO; :class:`CorruptFile` if it is not a
    regular file."""
    from jobgate.state.fileio import open_regular

    fd, _st = open_regular(path)
    try:
        if start:
            os.lseek(fd, start, os.SEEK_SET)
        chunks: list[bytes] = []
        left = end - start
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_newest(path: str, size: int, want: int) -> list[model.Job]:
    """The last lines of the log, enough to hold ``want`` distinct jobs (or all of it),
    read backwards in :data:`TAIL_CHUNK` steps: each id's last line, oldest first."""
    start = size
    chunk = TAIL_CHUNK
    while True:
        start = max(0, start - chunk)
        data = read_range(path, start, size)
        if start > 0:
            data = data[data.find(b"\n") + 1 :]  # the first line is cut
        lines, _end, _bad = parse_lines(data)
        found = latest(lines)
        if len(found) >= want or start == 0:
            return list(found.values())
        chunk *= 2
