"""A job's log as output: what of it is the command's output (jobgate's own progress
lines left out), the agent's final-message file, and finishing a torn last line. Used by
the worker (:mod:`jobgate.jobs.worker`) when it records a job's end."""

from __future__ import annotations

import os

from jobgate.state import model
from jobgate.state.fileio import READ_FLAGS, open_log
from jobgate.state.store import Store

#: how much of the command's output is kept as the job's result
OUTPUT_KEEP_BYTES = 64 * 1024


def log_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_output(log_path: str, offset: int, limit: int = OUTPUT_KEEP_BYTES) -> str:
    """The last ``limit`` bytes of the command's output (log bytes after ``offset``)."""
    try:
        with open(open_log(log_path, READ_FLAGS), "rb") as fh:  # a regular file only
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            start = max(offset, end - limit)
            fh.seek(start)
            data = fh.read(end - start)
    except OSError:
        return ""
    text = data.decode("utf-8", "surrogateescape")  # bytes kept: stored as \udcXX escapes
    return "".join(ln for ln in text.splitlines(keepends=True) if not is_progress_line(ln))


def read_result_file(store: Store, job: model.Job, limit: int = OUTPUT_KEEP_BYTES) -> str | None:
    """The last ``limit`` bytes of the job's ``resultFile`` (an agent's final message), or
    None when the job has none, it is missing or empty. The file is removed once read (its
    content lives on as the job's ``output``). Only a file directly in ``jobs/`` is read.
    """
    path = job.get("resultFile")
    if not isinstance(path, str) or os.path.dirname(path) != store.jobs_dir:
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            data = fh.read()
    except OSError:
        return None
    try:
        os.unlink(path)
    except OSError:
        pass
    return data.decode("utf-8", "replace") or None


def is_progress_line(line: str) -> bool:
    """True for jobgate's own ``[ISO time] jobgate: ...`` lines in a job log."""
    return line.startswith("[") and line[25:36] == "] jobgate: "


def end_line(log_path: str) -> None:
    """Finish the command's last output line (if it had no newline), so jobgate's own
    line after it stays a line of its own."""
    try:
        fd = open_log(log_path, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")
    except OSError:
        pass
    finally:
        os.close(fd)
