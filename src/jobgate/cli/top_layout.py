"""What ``jobgate top`` (and ``status --watch``) shows, as lines of text: pure, no I/O
and no terminal, so every width, cut and order is testable on its own.

One screen: a title (workspace and clock), a header, one row per job — the running
ones (oldest start first), the queued ones (by group, in queue order), then the most
recently finished — and a footer with the counts. A row is the id, the status, the
elapsed time (waiting time for a queued job), the queue position, the name and, in the
rest of the width, the job's last log line (a failed job: its error). Every piece of
record text goes through :func:`jobgate.cli.render.clean` (control characters escaped,
cut to its columns), and every line fits ``width`` terminal columns, so a job can
neither move the cursor nor push a row off the screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from jobgate.cli.render import (
    ELAPSED_WIDTH,
    NAME_MAX,
    STATUS_WIDTH,
    clean,
    columns,
    elapsed,
)
from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: the group of a queued job whose record names none
DEFAULT_GROUP = "default"
#: finished jobs shown under the active ones
RECENT = 5
#: the name column is at most this wide; the last log line gets the rest
NAME_COLUMN = 24
#: a group name in the queue column is cut to this
GROUP_MAX = 12
#: a last log line in ``--json`` is cut to this many characters
JSON_LINE_MAX = 1000
GAP = "  "
#: the record's fields in a ``--json`` row (then the view's own)
JSON_KEYS: tuple[str, ...] = ("id", "name", "kind", "status", "phase", "exitCode")
JSON_KEYS += ("errorMessage", "sessionId", "createdAt", "startedAt", "completedAt", "queueRank")
TOOK_WIDTH = max(ELAPSED_WIDTH, len("ELAPSED"))
HEADINGS = ("ID", "STATUS", "ELAPSED", "QUEUE", "NAME")

# a line's style: what kind of line it is (the terminal screen colours by it)
TITLE, HEADER, NOTE, FOOTER = "title", "header", "note", "footer"
LOST = "lost"


@dataclass(frozen=True)
class Line:
    """One line of the view, already safe to print and at most the width asked for."""

    text: str
    #: :data:`TITLE`, :data:`HEADER`, :data:`NOTE`, :data:`FOOTER`, :data:`LOST`, or the
    #: job's status (``running``, ``queued``, ``completed``, ``failed``, ``cancelled``)
    style: str = ""


# -- the queue ---------------------------------------------------------------------------
def group_of(job: model.Job) -> str:
    """The queue group a job waits in (:data:`DEFAULT_GROUP` when the record names none)."""
    from jobgate.jobs import queue

    return queue.group_of(job)


def queue_positions(jobs: list[model.Job]) -> dict[str, int]:
    """Each queued job's place in its group's queue, 1 for the next to start, in the
    queue's own order (:func:`jobgate.jobs.queue.order_key`: ascending ``queueRank``, a
    missing or forged one last, then creation, then id)."""
    from jobgate.jobs import queue

    groups: dict[str, list[model.Job]] = {}
    for job in jobs:
        if job.get("status") == model.QUEUED:
            groups.setdefault(group_of(job), []).append(job)
    out: dict[str, int] = {}
    for members in groups.values():
        for place, job in enumerate(sorted(members, key=queue.order_key), 1):
            out[str(job.get("id"))] = place
    return out


# -- which jobs, in which order ----------------------------------------------------------
def _started(job: model.Job) -> tuple[float, str]:
    at = model.parse_iso(job.get("startedAt")) or model.parse_iso(job.get("createdAt"))
    return (math.inf if at is None else at, str(job.get("id")))


def arrange(
    jobs: list[model.Job], positions: dict[str, int]
) -> tuple[list[model.Job], list[model.Job], list[model.Job]]:
    """``(running, queued, finished)``: running by start, oldest first; queued by group
    (the default group first) and queue position; the :data:`RECENT` most recently
    finished, newest first."""
    running = sorted((j for j in jobs if j.get("status") == model.RUNNING), key=_started)
    queued = sorted(
        (j for j in jobs if j.get("status") == model.QUEUED),
        key=lambda j: (
            group_of(j) != DEFAULT_GROUP,
            group_of(j),
            positions.get(str(j.get("id")), 0),
        ),
    )
    finished = [j for j in jobs if model.is_finished(j)]
    finished.sort(key=lambda j: model.parse_iso(j.get("completedAt")) or 0.0, reverse=True)
    return running, queued, finished[:RECENT]


def status_label(job: model.Job) -> str:
    if job.get("phase") == model.PHASE_LOST:
        return "failed (lost)"
    return str(job.get("status"))


def style_of(job: model.Job) -> str:
    return LOST if job.get("phase") == model.PHASE_LOST else str(job.get("status"))


def detail_of(job: model.Job, last_line: str | None) -> str:
    """What the row shows after the name (raw: the caller cleans it): a failed or
    cancelled job's error, else the job's last log line."""
    if model.is_finished(job) and job.get("status") != model.COMPLETED:
        message = job.get("errorMessage")
        if message:
            return str(message)
    return last_line or ""


def queue_text(job: model.Job, positions: dict[str, int]) -> str:
    place = positions.get(str(job.get("id")))
    if place is None:
        return ""
    group = group_of(job)
    return f"#{place}" if group == DEFAULT_GROUP else f"{clean(group, GROUP_MAX)}#{place}"


def last_line(data: bytes, cut_at_start: bool) -> str:
    """The last non-blank line of a log's end ``data`` (raw text): of a line redrawn with
    ``\\r`` (a progress bar), its last part, as a terminal shows it. ``cut_at_start``:
    ``data`` begins mid-file, so its first piece may be the end of a longer line. The
    command's own output comes first: jobgate's ``[time] jobgate: ...`` lines only when
    there is nothing else (then without their time)."""
    from jobgate.jobs.output import is_progress_line

    chunks = data.split(b"\n")
    if cut_at_start and len(chunks) > 1:
        chunks = chunks[1:]
    progress = ""
    for raw in reversed(chunks):
        text = raw.decode("utf-8", "replace").rstrip("\r").rsplit("\r", 1)[-1]
        if not text.strip():
            continue
        if not is_progress_line(text):
            return text
        progress = progress or text[text.index("] ") + 2 :]  # its time is not news
    return progress


# -- the lines ---------------------------------------------------------------------------
def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - columns(text))


@dataclass(frozen=True)
class _Columns:
    id: int
    queue: int  # 0: no queue column (nothing queued)
    name: int

    @classmethod
    def of(cls, jobs: list[model.Job], positions: dict[str, int]) -> _Columns:
        ids = [columns(clean(j.get("id"), NAME_MAX)) for j in jobs]
        names = [columns(clean(j.get("name") or "", NAME_COLUMN)) for j in jobs]
        queues = [columns(queue_text(j, positions)) for j in jobs]
        return cls(
            id=max([2, *ids]),
            queue=max([5, *queues]) if any(queues) else 0,
            name=max([4, *names]),
        )

    def row(self, cells: tuple[str, str, str, str, str], detail: str, width: int) -> str:
        job_id, status, took, queue, name = cells
        parts = [_pad(job_id, self.id), _pad(status, STATUS_WIDTH), took.rjust(TOOK_WIDTH)]
        if self.queue:
            parts.append(_pad(queue, self.queue))
        parts.append(_pad(name, self.name))
        head = GAP.join(parts)
        room = width - columns(head) - len(GAP)
        text = head + GAP + clean(detail, room) if room > 0 and detail else head
        return clean(text.rstrip(), width)


def job_row(
    job: model.Job,
    cols: _Columns,
    positions: dict[str, int],
    last_lines: dict[str, str],
    width: int,
    now: float,
) -> Line:
    cells = (
        clean(job.get("id"), NAME_MAX),
        status_label(job),
        elapsed(job, now),
        queue_text(job, positions),
        clean(job.get("name") or "", NAME_COLUMN),
    )
    last = last_lines.get(str(job.get("id")))
    return Line(cols.row(cells, detail_of(job, last), width), style_of(job))


def footer_text(
    running: list[model.Job], queued: list[model.Job], finished: list[model.Job]
) -> str:
    text = f"{len(running)} running · {len(queued)} queued"
    groups: dict[str, int] = {}
    for job in queued:
        groups[group_of(job)] = groups.get(group_of(job), 0) + 1
    if len(groups) > 1 or (groups and DEFAULT_GROUP not in groups):
        text += " (" + ", ".join(f"{clean(g, GROUP_MAX)} {n}" for g, n in groups.items()) + ")"
    if finished:
        lost = sum(j.get("phase") == model.PHASE_LOST for j in finished)
        text += f" · {len(finished)} recently finished"
        text += f" ({lost} lost)" if lost else ""
    return text


def screen(
    jobs: list[model.Job],
    last_lines: dict[str, str],
    *,
    root: str,
    clock: str,
    now: float,
    width: int,
    height: int | None = None,
    hint: str = "",
    note: str = "",
) -> list[Line]:
    """The view of ``jobs`` (the active ones and some finished ones, as read), each line
    at most ``width`` columns; with ``height``, at most that many lines (the rows that do
    not fit are counted in a line of their own). ``last_lines``: id -> the job's last log
    line, raw; ``clock``: the time to show; ``hint``: keys, after the counts; ``note``:
    a warning line above the footer."""
    width = max(1, width)
    positions = queue_positions(jobs)
    running, queued, finished = arrange(jobs, positions)
    shown = running + queued + finished
    cols = _Columns.of(shown, positions)
    right = f"  {clock}"
    title = f"jobgate top · {clean(root, max(1, width - columns(right) - 14))}"
    top = [
        Line(clean(_pad(title, width - columns(right)) + right, width).rstrip(), TITLE),
        Line(cols.row(HEADINGS, "LAST LOG LINE", width), HEADER),
    ]
    body: list[Line] = []
    for job in running + queued:
        body.append(job_row(job, cols, positions, last_lines, width, now))
    if not running and not queued:
        body.append(
            Line(clean("no running or queued jobs (start one: jobgate run -b -- CMD)", width), NOTE)
        )
    if finished:
        body.append(Line(clean("recently finished", width), NOTE))
        for job in finished:
            body.append(job_row(job, cols, positions, last_lines, width, now))
    bottom = [Line(clean(note, width), NOTE)] if note else []
    foot = footer_text(running, queued, finished)
    if hint and columns(foot) + len(GAP) + columns(hint) <= width:
        foot = _pad(foot, width - columns(hint)) + hint
    bottom.append(Line(clean(foot, width), FOOTER))
    if height is None:
        return top + body + bottom
    room = height - len(top) - len(bottom)
    if room < 1:
        return (top + bottom)[-max(1, height) :]
    if len(body) > room:
        hidden = sum(1 for line in body[room - 1 :] if line.style not in (NOTE, ""))
        more = f"… {hidden} more job(s) not shown (a taller terminal shows them)"
        body = [*body[: room - 1], Line(clean(more, width), NOTE)]
    return top + body + bottom


def signature(jobs: list[model.Job], last_lines: dict[str, str]) -> tuple[Any, ...]:
    """What a change of the view is, besides the clock and elapsed times: the jobs, their
    status, phase, queue place and last line (a pipe gets one block per change)."""
    positions = queue_positions(jobs)
    running, queued, finished = arrange(jobs, positions)
    return tuple(
        (
            j.get("id"),
            j.get("status"),
            j.get("phase"),
            group_of(j),
            positions.get(str(j.get("id"))),
            detail_of(j, last_lines.get(str(j.get("id")))),
        )
        for j in running + queued + finished
    )


def as_json(
    jobs: list[model.Job], last_lines: dict[str, str], *, root: str, now: float
) -> dict[str, Any]:
    """The ``--json`` twin of one refresh: the jobs in the view's order, each with its
    ``queuePosition`` (queued jobs), ``group``, ``elapsedSeconds`` and ``lastLine``."""
    positions = queue_positions(jobs)
    running, queued, finished = arrange(jobs, positions)
    keys = JSON_KEYS
    rows = []
    for job in running + queued + finished:
        row = {k: job.get(k) for k in keys}
        job_id = str(job.get("id"))
        start = model.parse_iso(job.get("startedAt")) or model.parse_iso(job.get("createdAt"))
        end = model.parse_iso(job.get("completedAt")) or now
        row["group"] = group_of(job)
        row["queuePosition"] = positions.get(job_id)
        row["elapsedSeconds"] = None if start is None else round(max(0.0, end - start), 3)
        row["elapsed"] = elapsed(job, now)
        row["lastLine"] = (last_lines.get(job_id) or "")[:JSON_LINE_MAX] or None
        rows.append(row)
    return {
        "time": model.now_iso(now),
        "workspaceRoot": root,
        "counts": {"running": len(running), "queued": len(queued), "finished": len(finished)},
        "jobs": rows,
    }
