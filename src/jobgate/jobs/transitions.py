"""What changed between two looks at a workspace's jobs: the pure half of ``jobgate
watch`` (:mod:`jobgate.jobs.watch` does the reading, probing and writing). No I/O.

A look is the active jobs and the most recently finished ones, as the index has them.
Compared with what the previous look saw (:class:`Seen`), it yields one :class:`Event`
per transition, each at most once per job:

* ``started`` — a job is running that was not before: it went ``queued`` → ``running``,
  or appeared already running, or finished before any look saw it run (then its
  ``started`` comes right before its end, so every job that ran has one of each);
* ``finished`` — it ended ``completed``, ``failed`` or ``cancelled``;
* ``lost`` — it ended ``failed`` with ``phase: "lost"`` (recorded by whichever reader
  found its processes dead, the watcher included), instead of ``finished``.

A job already announced to its session (``announcedAt``) gets no end event: someone
told the session already. The first look is a baseline: what runs then was not seen
start, so it gets no ``started``; finished jobs get their end event then only when
``replay`` asks for them (a session's unannounced jobs, as the prompt hook would name).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

STARTED = "started"
FINISHED = "finished"
LOST = "lost"
EVENTS = (STARTED, FINISHED, LOST)

#: this many ended job ids are remembered (oldest forgotten first): more than the
#: finished window a look reads, so a job seen ending is never reported again; a job
#: re-logged past that (its ``announcedAt`` set) is skipped as announced anyway
REMEMBER = 1000


@dataclass(frozen=True)
class Event:
    """One transition: ``event`` (``started``, ``finished``, ``lost``) and the job's
    summary as the look found it."""

    event: str
    job: model.Job


@dataclass(frozen=True)
class Seen:
    """What the looks so far have seen."""

    #: the active jobs of interest at the last look: id -> status
    active: dict[str, str] = field(default_factory=dict)
    #: the active jobs whose start was reported (or that already ran at the baseline)
    started: frozenset[str] = frozenset()
    #: ids whose end was reported or known, oldest first (a dict for its order)
    ended: dict[str, None] = field(default_factory=dict)
    #: False until the baseline look
    looked: bool = False


def of_interest(job: model.Job, session: str | None) -> bool:
    """Every job when no session is given; else the session's background jobs (a
    foreground ``jobgate run`` ends in front of whoever ran it: nothing to tell)."""
    if session is None:
        return True
    return job.get("sessionId") == session and not job.get("foreground")


def end_event(job: model.Job) -> str:
    return LOST if job.get("phase") == model.PHASE_LOST else FINISHED


def vanished(seen: Seen, active: Iterable[model.Job], finished: Iterable[model.Job]) -> list[str]:
    """Ids of jobs the last look saw active that this one finds neither active nor among
    the finished jobs it read: the reader must look them up (an end past the window)."""
    here = {str(j.get("id")) for j in active} | {str(j.get("id")) for j in finished}
    return [i for i in seen.active if i not in here]


def _order(job: model.Job) -> tuple[str, str]:
    return (str(job.get("startedAt") or job.get("createdAt") or ""), str(job.get("id")))


def look(
    seen: Seen,
    active: list[model.Job],
    finished: list[model.Job],
    session: str | None,
    *,
    replay: bool = False,
) -> tuple[Seen, list[Event]]:
    """``(seen after this look, events)``. ``active``: the active jobs (any order);
    ``finished``: finished summaries, most recently finished first (as
    :meth:`jobgate.state.files.Snapshot.finished` gives them), with any job
    :func:`vanished` names that could be looked up. Events come oldest first: the ends
    in the order the jobs finished, then the starts in the order the jobs started."""
    first = not seen.looked
    events: list[Event] = []
    started = set(seen.started)
    ended = dict(seen.ended)
    for job in reversed(finished):
        job_id = str(job.get("id"))
        if not model.is_finished(job) or not of_interest(job, session) or job_id in ended:
            continue
        ended[job_id] = None
        was_started = job_id in started
        started.discard(job_id)
        if (first and not replay) or job.get("announcedAt"):
            continue
        if not first and not was_started and job.get("startedAt"):
            events.append(Event(STARTED, job))
        events.append(Event(end_event(job), job))
    now_active: dict[str, str] = {}
    for job in sorted(active, key=_order):
        job_id = str(job.get("id"))
        if not model.is_active(job) or not of_interest(job, session) or job_id in ended:
            continue
        status = str(job.get("status"))
        now_active[job_id] = status
        if status == model.RUNNING and job_id not in started:
            started.add(job_id)
            if not first:
                events.append(Event(STARTED, job))
    while len(ended) > REMEMBER:
        del ended[next(iter(ended))]
    kept = frozenset(i for i in started if i in now_active)
    return Seen(now_active, kept, ended, looked=True), events
