"""Human text and ``--json`` output. Pure: strings in, strings out, plus bounded reads of a
job's log (the tail under a running job; whether ``result``'s output lost its beginning).

Text from a record (a name, a command, an error, a log line) may hold anything: every
human view shows it through :func:`clean`, control characters escaped and length capped,
so a job cannot clear the screen, retitle the terminal or fake a row of its own.
"""

from __future__ import annotations

import os
import stat
import time

from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    #: a finished job's row: (its id, the rest of its row, its error line)
    Row = tuple[str, str, str]

#: finished jobs shown by ``status`` without ``--all``
RECENT_FINISHED = 10
#: log lines shown under a running job
TAIL_LINES = 3
#: at most this much of a log's end is read for its tail
TAIL_BYTES = 64 * 1024
#: caps, in terminal columns, of record text: a name in a row, an error under one, a
#: field of ``status JOB`` or ``result``
NAME_MAX = 60
MESSAGE_MAX = 200
DETAIL_MAX = 1000
#: widths of the row's columns: ``failed (lost)``, ``23h59m``, ``exit 255``
STATUS_WIDTH, ELAPSED_WIDTH, EXIT_WIDTH = 13, 6, 8
#: the log is read past the kept output by this much, for jobgate's lines after the end
TRAILER_BYTES = 16 * 1024

#: read a log without following a symlink or blocking on a FIFO (where the OS has them)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)


def to_json(obj: Any) -> str:
    """``--json`` output: UTF-8 text as is; undecodable bytes as ``\\udcXX`` escapes."""
    from jobgate.state.fileio import json_text

    return json_text(obj, indent=2)


def status_json(
    root: str,
    state_dir: str,
    jobs: list[model.Job],
    lines: bytes = b"",
    finished_not_shown: int | None = None,
) -> list[bytes]:
    """``status --json`` (UTF-8, in pieces): ``workspaceRoot``, ``stateDir``, then
    ``finishedNotShown`` when given, and ``jobs``, one job per line (compact), so ten
    thousand of them print fast and grep well: ``jobs``, then ``lines``, log lines of
    finished jobs passed through as they are (each a JSON object ending in a newline)."""
    from jobgate.state.fileio import json_text

    parts = [json_text(j, separators=(",", ":")).encode("utf-8") for j in jobs]
    if lines:
        # the separators in place of the newlines: one pass over megabytes, no split
        parts.append(lines[:-1].replace(b"\n", b",\n    "))
    head = f'{{\n  "workspaceRoot": {json_text(root)},\n  "stateDir": {json_text(state_dir)},\n'
    if finished_not_shown is not None:
        head += f'  "finishedNotShown": {int(finished_not_shown)},\n'
    if not parts:
        return [head.encode("utf-8"), b'  "jobs": []\n}\n']
    return [head.encode("utf-8"), b'  "jobs": [\n    ', b",\n    ".join(parts), b"\n  ]\n}\n"]


# -- safe text ---------------------------------------------------------------------------
def _width(ch: str) -> int:
    """Terminal columns of one printable character: 2 for wide ones (CJK), 0 for marks."""
    if ch.isascii():
        return 1
    import unicodedata  # only for text that is not ASCII

    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def columns(text: str) -> int:
    """Terminal columns of printable ``text`` (as :func:`clean` returns it)."""
    return len(text) if text.isascii() else sum(_width(ch) for ch in text)


def clean(text: object, limit: int) -> str:
    """``text`` safe to print in at most ``limit`` columns: every character that is not
    printable escaped (``\\n``, ``\\t``, ``\\x1b``, ``\\u202e``), and cut with ``…`` when
    longer than ``limit``."""
    s = text if isinstance(text, str) else str(text)
    if len(s) <= limit and s.isascii() and s.isprintable():
        return s
    pieces: list[str] = []
    widths: list[int] = []
    used = 0
    for ch in s:
        piece = model.one_line(ch)
        width = _width(ch) if piece == ch else len(piece)
        if used + width > limit:
            while pieces and used + 1 > limit:  # room for the ellipsis
                used -= widths.pop()
                pieces.pop()
            return "".join(pieces) + "…"
        pieces.append(piece)
        widths.append(width)
        used += width
    return "".join(pieces)


def terminal_columns() -> int:
    """The terminal's width (``$COLUMNS`` first), 80 when there is none."""
    import shutil  # only for a running job's tail: costs ~10 ms

    return shutil.get_terminal_size((80, 24)).columns or 80


# -- log reads ---------------------------------------------------------------------------
def read_end(path: object, max_bytes: int) -> tuple[bytes, int] | None:
    """The last ``max_bytes`` of the regular file ``path`` and where they start in it;
    None when it is missing, unreadable, a symlink or not a regular file (a FIFO, a
    device: opened without blocking and never read)."""
    if not isinstance(path, str) or not path:
        return None
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None  # not even opened: opening a device can do things
        fd = os.open(path, _READ_FLAGS)
    except (OSError, ValueError):
        return None
    try:
        size = os.fstat(fd)
        if not stat.S_ISREG(size.st_mode):
            return None
        start = max(0, size.st_size - max_bytes)
        os.lseek(fd, start, os.SEEK_SET)
        data = os.read(fd, size.st_size - start)  # a regular file: all of it, or to its end
    except OSError:
        return None
    finally:
        os.close(fd)
    return data, start


def tail_lines(path: object, count: int, width: int = MESSAGE_MAX) -> list[str]:
    """The last ``count`` non-blank lines of the log ``path`` (of its last 64 KiB at
    most; [] for anything but a regular file), each :func:`clean` to ``width`` columns.
    Of a line redrawn with ``\\r`` (a progress bar), its last part: what a terminal shows."""
    found = read_end(path, TAIL_BYTES) if count > 0 else None
    if found is None:
        return []
    data, start = found
    chunks = data.split(b"\n")
    if start > 0 and len(chunks) > 1:
        chunks = chunks[1:]  # the rest of a line that began before what was read
    lines: list[str] = []
    for raw in reversed(chunks):
        text = raw.decode("utf-8", "replace").rstrip("\r").rsplit("\r", 1)[-1]
        if text.strip():
            lines.append(clean(text, max(width, 10)))
            if len(lines) == count:
                break
    return lines[::-1]


# -- status ------------------------------------------------------------------------------
def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def elapsed(job: model.Job, now: float | None = None) -> str:
    if now is None:
        now = time.time()
    start = model.parse_iso(job.get("startedAt")) or model.parse_iso(job.get("createdAt"))
    end = model.parse_iso(job.get("completedAt")) or now
    if start is None:
        return "?"
    return duration(end - start)


#: how the queue's and the lifecycle's failures show in a row (jobgate.jobs.lifecycle)
_FAILED_PHASES = {"timeout": "timed out", "stalled": "stalled", "dependency": "dep failed"}


def job_line(job: model.Job, now: float | None = None, id_width: int = 0) -> str:
    """One row: id, status, elapsed, exit code, name, each in its own column (an empty
    one for a job without an exit code), ids padded to ``id_width``."""
    return f"{clean(job.get('id'), NAME_MAX):<{id_width}}  {row_rest(job, now)}"


def row_rest(job: model.Job, now: float | None = None) -> str:
    """A row without its id column: status, elapsed, exit code, name."""
    status = str(job.get("status"))
    if job.get("phase") == model.PHASE_LOST:
        status = "failed (lost)"
    elif status == model.FAILED and job.get("phase") in _FAILED_PHASES:
        status = _FAILED_PHASES[job["phase"]]
    code = job.get("exitCode")
    exit_text = f"exit {code}" if code is not None and model.is_finished(job) else ""
    line = (
        f"{clean(status, STATUS_WIDTH):<{STATUS_WIDTH}}  "
        f"{elapsed(job, now):>{ELAPSED_WIDTH}}  "
        f"{clean(exit_text, EXIT_WIDTH):<{EXIT_WIDTH}}"
    )
    name = job.get("name")
    if name:
        line += f"  — {clean(name, NAME_MAX)}"
    return line.rstrip()


def error_line(job: model.Job) -> str:
    """What shows under a failed job's row: its error message, or "" for none."""
    if job.get("status") == model.FAILED and job.get("errorMessage"):
        return clean(job.get("errorMessage"), MESSAGE_MAX)
    return ""


def finished_row(job: model.Job, now: float | None = None) -> Row:
    """A finished job's row as :func:`status_text` takes it pre-rendered."""
    return clean(job.get("id"), NAME_MAX), row_rest(job, now), error_line(job)


#: what stands for the newline before a pre-rendered row's error line
ROW_BREAK = b"\x1e"


class Rows:
    """Finished rows rendered before (:mod:`jobgate.cli.finished_rows`), newest first:
    lines of ``createdAt TAB id TAB lineCRC TAB text``, ids in ``text`` padded to
    ``width``, :data:`ROW_BREAK` before an error line."""

    def __init__(self, lines: list[bytes], width: int) -> None:
        self.lines = lines
        self.width = width
        self.count = len(lines)

    def text(self, width: int) -> str:
        """The rows, ids padded to ``width`` (at least :attr:`width`), one per line."""
        texts = [line.split(b"\t", 3)[3] for line in self.lines]
        if width > self.width:
            texts = [pad_row(t, self.width, width) for t in texts]
        return b"\n".join(texts).replace(ROW_BREAK, b"\n      ").decode("utf-8")


def pad_row(text: bytes, width: int, wanted: int) -> bytes:
    """A rendered row with its id column (``width`` wide) made ``wanted`` wide."""
    at = 2 + width
    if wanted >= width:
        return text[:at] + b" " * (wanted - width) + text[at:]
    return text[: 2 + wanted] + text[at:]  # the columns cut are the id's padding


def status_text(
    jobs: list[model.Job],
    *,
    show_all: bool,
    workspace_root: str,
    finished_total: int | None = None,
    now: float | None = None,
    rows: Rows | None = None,
) -> str:
    """``status``: running jobs (with their log's last lines), queued ones, then the
    finished ones (the recent ones only, unless ``show_all``; with ``finished_total``, how
    many finished jobs the index holds, a last line says how many are not shown). With
    ``rows`` (rendered: :mod:`jobgate.cli.finished_rows`), the finished ones are those
    rows, and the finished among ``jobs`` are not shown (``show_all`` only)."""
    ordered = model.sort_newest_first(jobs)
    active = [j for j in ordered if model.is_active(j)]
    queued = [j for j in active if j.get("status") == model.QUEUED]
    running = [j for j in active if j.get("status") != model.QUEUED]
    finished: list[Row] = []
    if rows is None:
        finished = [finished_row(j, now) for j in ordered if not model.is_active(j)]
        if not show_all:
            finished = finished[:RECENT_FINISHED]
    shown = len(finished) if rows is None else rows.count
    hidden = 0 if finished_total is None else max(0, finished_total - shown)
    out: list[str] = [f"workspace: {clean(workspace_root, DETAIL_MAX)}"]
    if not active and not shown and not hidden:
        out.append("no jobs yet (start one: jobgate run --background -- CMD)")
        return "\n".join(out) + "\n"
    width = max((len(clean(j.get("id"), NAME_MAX)) for j in active), default=0)
    if rows is not None:
        width = max(width, rows.width)
    width = max(width, max((len(row[0]) for row in finished), default=0))
    out.append(f"running ({len(running)}):" if running else "running: none")
    columns = terminal_columns() if running else 80
    for job in running:
        job_id = clean(job.get("id"), NAME_MAX)
        out.append("  " + job_line(job, now, width))
        if job.get("pid"):
            out.append(f"      pid {clean(job.get('pid'), 20)}  cancel: jobgate cancel {job_id}")
        for line in tail_lines(job.get("logFile"), TAIL_LINES, columns - 8):
            out.append(f"      | {line}")
    if queued:
        out.append(f"queued ({len(queued)}):")
        for job in queued:
            out.append("  " + job_line(job, now, width))
            out.append(f"      cancel: jobgate cancel {clean(job.get('id'), NAME_MAX)}")
    if shown:
        out.append(f"{'finished' if show_all else 'recent'} ({shown}):")
    if rows is not None and shown:
        out.append(rows.text(width))
    for job_id, rest, error in finished:
        out.append(f"  {job_id:<{width}}  {rest}")
        if error:
            out.append(f"      {error}")
    if hidden:
        out.append(f"{hidden} more: jobgate status --all")
    return "\n".join(out) + "\n"


def job_text(job: model.Job, now: float | None = None) -> str:
    """``status JOB``: one job in detail."""
    keys = [
        *[(key, key) for key in ("status", "phase", "name", "kind", "command", "cwd")],
        *[("session", "sessionId"), ("pid", "pid"), ("command pid", "commandPid")],
        *[("exit code", "exitCode"), ("error", "errorMessage"), ("created", "createdAt")],
        *[("started", "startedAt"), ("completed", "completedAt"), ("log", "logFile")],
        *[("worktree", "worktreePath"), ("branch", "worktreeBranch"), ("base", "worktreeBase")],
        *[("applied", "appliedAt"), ("discarded", "worktreeRemovedAt"), ("kept", "keepReason")],
        *[("group", "group"), ("after", "after"), ("timeout", "timeoutSeconds")],
        *[("stall", "stallSeconds"), ("attempt", "attempt"), ("attempts", "attempts")],
        *[("retry of", "retryOf"), ("retried by", "retriedBy"), ("retries left", "retriesLeft")],
    ]
    out = [f"job {clean(job.get('id'), NAME_MAX)}  ({elapsed(job, now)})"]
    for label, key in keys:
        value = job.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, list):
            import shlex

            value = shlex.join(str(v) for v in value)
        out.append(f"  {label + ':':<13}{clean(value, DETAIL_MAX)}")
    if model.is_active(job):
        for line in tail_lines(job.get("logFile"), TAIL_LINES * 2, terminal_columns() - 4):
            out.append(f"  | {line}")
    return "\n".join(out) + "\n"


def sweep_text(changed: list[tuple[str, str]], dry_run: bool) -> str:
    if not changed:
        return "nothing to reconcile: every active job is really running\n"
    verb = "would mark" if dry_run else "marked"
    lines = [f"{verb} {len(changed)} job(s) failed (lost):"]
    lines += [f"  {clean(job_id, NAME_MAX)}: {clean(why, MESSAGE_MAX)}" for job_id, why in changed]
    return "\n".join(lines) + "\n"
