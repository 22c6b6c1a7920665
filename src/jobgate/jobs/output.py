"""What a finished job's output is: the command's output in its log (jobgate's own
progress lines left out) and, for an agent task, the final message it wrote to its
``resultFile`` or printed, with its session id; finishing a torn last line. Read by the
worker when the command ends."""

from __future__ import annotations

import os

from jobgate.state import model
from jobgate.state.fileio import READ_FLAGS, open_log
from jobgate.state.store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobgate.jobs import agent_thread

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


#: how far into an agent's output its session id is looked for (it comes first)
HEAD_BYTES = 256 * 1024
#: how much of the output's end is searched for an agent's closing event (a long final
#: message makes that one line long)
TAIL_BYTES = 4 * 1024 * 1024


def _read_span(log_path: str, offset: int, head: bool, limit: int) -> str:
    try:
        with open(open_log(log_path, READ_FLAGS), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            start = offset if head else max(offset, end - limit)
            fh.seek(start)
            data = fh.read(min(limit, end - start))
    except OSError:
        return ""
    return data.decode("utf-8", "replace")


def agent_found(job: model.Job, log_path: str, offset: int) -> agent_thread.Found | None:
    """What the agent of ``job`` told in its output (the log after ``offset``), for a job
    of a known ``threadFormat``; None for any other job."""
    fmt = job.get("threadFormat")
    if not fmt:
        return None  # most jobs: no agent_thread import (it brings dataclasses)
    from jobgate.jobs import agent_thread

    if fmt not in agent_thread.FORMATS:
        return None
    head = _read_span(log_path, offset, True, HEAD_BYTES)
    return agent_thread.parse(fmt, head, _read_span(log_path, offset, False, TAIL_BYTES))


def finish(store: Store, job: model.Job, log_path: str, offset: int) -> tuple[str, model.Job]:
    """A finished job's ``(output, fields to record)``: the command's output, or the
    final message its agent wrote to its ``resultFile`` or printed as its closing event;
    and, when the agent told it, its session id as ``agentSessionId``
    (:mod:`jobgate.jobs.agent_thread`)."""
    output = read_output(log_path, offset)
    fields: model.Job = {}
    found = agent_found(job, log_path, offset)
    if found is not None:
        if found.final_message is not None:
            output = found.final_message[-OUTPUT_KEEP_BYTES:]
        if found.session_id is not None:
            fields["agentSessionId"] = found.session_id
    final_message = read_result_file(store, job)
    if final_message is not None:
        output = final_message
    return output, fields
