"""The queue, decided: which queued jobs start now, which wait and why, which can never
start (a dependency that did not complete). Pure: no I/O, no clock of its own.

A *queue job* is one launched with ``--queue`` (or a setting that queues by default): its
record carries ``queueRank`` (a number) and optionally ``group`` (absent: the default
group), ``after`` (job ids it waits for), ``afterAny`` (run once those ended, however
they ended) and ``notBefore`` (a retry's backoff, ISO time). While it waits it has
status ``queued``, phase ``waiting`` and no process. A queued job of a group starts in
ascending ``queueRank``, ties broken by ``createdAt`` then id.

Starting one is a *claim* (``claim: {"token", "pid", "at"}``, phase ``starting``),
written under the lock by whoever noticed the free slot; the claimer then spawns the
worker outside the lock and records its identity. A claim is believed for
:data:`CLAIM_GRACE_SECONDS`: a claimer killed between claim and spawn leaves a claim that
expires, and the job is simply waiting again (DESIGN invariant 2: a queued record with
no identity is active only briefly, as a *starting* job; a waiting one holds no slot).

Slots: a group's limit is ``groups.G.maxParallel``, else the workspace's ``maxParallel``,
else unlimited. Every active job of the group that is not waiting holds a slot: running
jobs, jobs whose worker was started (queued or not), live claims.

Used by :mod:`jobgate.jobs.dispatch` (which acts on :func:`plan`), ``jobgate queue``, and
the live view (:func:`waiting`).
"""

from __future__ import annotations

import math

from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    #: a finished job's status by id (None: no such job any more)
    StatusOf = Callable[[str], str | None]

PHASE_WAITING = "waiting"
PHASE_STARTING = "starting"
PHASE_DEPENDENCY = "dependency"

#: how long a claim without a recorded worker holds the job (and its slot)
CLAIM_GRACE_SECONDS = 10.0

#: the name the default group is shown with
DEFAULT_GROUP = "default"

#: why a waiting job waits
SLOT = "slot"
DEPENDENCY = "dependency"
BACKOFF = "backoff"
STARTING = "starting"
READY = "ready"
CANCELLING = "cancelling"


# Plain classes, not dataclasses: this module is on the Stop hook's path whenever a job
# waits, and ``dataclasses`` (which imports ``inspect``) would cost more than all of it.
class Limits:
    """``maxParallel`` of the workspace (None: unlimited) and per group."""

    __slots__ = ("default", "groups")

    def __init__(self, default: int | None = None, groups: Mapping[str, int] | None = None):
        self.default = default
        self.groups: Mapping[str, int] = dict(groups or {})

    def of(self, group: str) -> int | None:
        return self.groups.get(group, self.default)


class Waiting:
    """One queued job, its place and why it does not run yet: ``job``; ``group``;
    ``position`` (1-based among the queued jobs of its group); ``reason`` (:data:`SLOT`,
    :data:`DEPENDENCY`, :data:`BACKOFF`, :data:`STARTING`, :data:`CANCELLING` or
    :data:`READY`); ``detail``, one line for people ("group default: 2 of 2 slot(s)
    taken", "after run-x (running)")."""

    __slots__ = ("detail", "group", "job", "position", "reason")

    def __init__(self, job: model.Job, group: str, position: int, reason: str, detail: str):
        self.job = job
        self.group = group
        self.position = position
        self.reason = reason
        self.detail = detail

    def __repr__(self) -> str:
        return f"Waiting({self.job.get('id')!r}, {self.group!r}, {self.position}, {self.reason!r})"


class Plan:
    """What to do now: claim ``start`` (ids, in order) and end ``fail`` (id, message)
    as ``failed``/``dependency``; ``waiting``: every queued job, in order."""

    __slots__ = ("fail", "start", "waiting")

    def __init__(
        self, start: list[str], fail: list[tuple[str, str]], waiting: list[Waiting]
    ) -> None:
        self.start = start
        self.fail = fail
        self.waiting = waiting


def is_queue_job(job: model.Job) -> bool:
    return isinstance(job.get("queueRank"), (int, float)) and not isinstance(
        job.get("queueRank"), bool
    )


def group_of(job: model.Job) -> str:
    group = job.get("group")
    return group if isinstance(group, str) and group else DEFAULT_GROUP


def has_process(job: model.Job) -> bool:
    return bool(model.identities(job))


def claim_alive(job: model.Job, now: float) -> bool:
    """Whether ``job``'s claim (if any) still holds it."""
    claim = job.get("claim")
    if not isinstance(claim, dict):
        return False
    at = claim.get("at")
    return isinstance(at, (int, float)) and 0 <= now - at < CLAIM_GRACE_SECONDS


def is_waiting(job: model.Job, now: float) -> bool:
    """A queue job still in the queue: queued, no process recorded, no live claim."""
    return (
        job.get("status") == model.QUEUED
        and is_queue_job(job)
        and not has_process(job)
        and not claim_alive(job, now)
    )


def holds_slot(job: model.Job, now: float) -> bool:
    return model.is_active(job) and not is_waiting(job, now)


def order_key(job: model.Job) -> tuple[float, str, str]:
    """Queue order within a group: ascending ``queueRank``, then creation, then id. A
    missing or forged rank (not a finite number: ``true``, NaN, infinity) goes after
    every ranked job instead of scrambling the sort (NaN compares false both ways)."""
    rank = job.get("queueRank")
    key = math.inf
    if isinstance(rank, (int, float)) and not isinstance(rank, bool) and math.isfinite(rank):
        key = float(rank)
    return (
        key,
        str(job.get("createdAt") or ""),
        str(job.get("id")),
    )


def in_order(jobs: Iterable[model.Job]) -> list[model.Job]:
    """Queued queue jobs (waiting or starting), by group name then queue order."""
    queued = [j for j in jobs if j.get("status") == model.QUEUED and is_queue_job(j)]
    return sorted(queued, key=lambda j: (group_of(j), *order_key(j)))


def _deps(job: model.Job) -> list[str]:
    after = job.get("after")
    if not isinstance(after, list):
        return []
    return [str(a) for a in after]


def dependency_state(
    job: model.Job, active: Mapping[str, model.Job], status_of: StatusOf
) -> tuple[str, str]:
    """``(READY | DEPENDENCY | "failed", detail)`` for ``job``'s ``after`` list."""
    pending: list[str] = []
    for dep in _deps(job):
        if dep in active:
            pending.append(f"{dep} ({active[dep].get('status')})")
            continue
        status = status_of(dep)
        if status == model.COMPLETED:
            continue
        if job.get("afterAny") and status in model.FINISHED:
            continue
        what = f"is {status}" if status else "is no longer in the state"
        return "failed", f"dependency {dep} {what}"
    if pending:
        return DEPENDENCY, "after " + ", ".join(pending)
    return READY, ""


def plan(jobs: Iterable[model.Job], status_of: StatusOf, limits: Limits, now: float) -> Plan:
    """Decide the queue for the active ``jobs`` (summaries are enough). ``status_of``
    answers for jobs that are not among them (finished or gone)."""
    active = {str(j.get("id")): j for j in jobs if model.is_active(j)}
    used: dict[str, int] = {}
    for job in active.values():
        if holds_slot(job, now):
            used[group_of(job)] = used.get(group_of(job), 0) + 1
    start: list[str] = []
    fail: list[tuple[str, str]] = []
    waiting: list[Waiting] = []
    positions: dict[str, int] = {}
    for job in in_order(active.values()):
        group = group_of(job)
        positions[group] = positions.get(group, 0) + 1
        place = positions[group]
        job_id = str(job.get("id"))
        if not is_waiting(job, now):
            waiting.append(Waiting(job, group, place, STARTING, "its worker is starting"))
            continue
        if job.get("cancelRequestedAt"):
            waiting.append(Waiting(job, group, place, CANCELLING, "being cancelled"))
            continue
        state, detail = dependency_state(job, active, status_of)
        if state == "failed":
            fail.append((job_id, detail))
            continue
        if state == DEPENDENCY:
            waiting.append(Waiting(job, group, place, DEPENDENCY, detail))
            continue
        not_before = model.parse_iso(job.get("notBefore"))
        if not_before is not None and now < not_before:
            detail = f"retry backoff: starts in {not_before - now:.0f}s or later"
            waiting.append(Waiting(job, group, place, BACKOFF, detail))
            continue
        limit = limits.of(group)
        taken = used.get(group, 0)
        if limit is not None and taken >= limit:
            detail = f"group {group}: {taken} of {limit} slot(s) taken"
            waiting.append(Waiting(job, group, place, SLOT, detail))
            continue
        used[group] = taken + 1
        start.append(job_id)
        waiting.append(Waiting(job, group, place, READY, "starts now"))
    return Plan(start, fail, waiting)


def waiting(
    jobs: Iterable[model.Job], status_of: StatusOf, limits: Limits, now: float
) -> list[Waiting]:
    """Every queued job in start order (group by group), with why it waits: what
    ``jobgate queue`` and the live view show."""
    return plan(jobs, status_of, limits, now).waiting


def limits_of(settings: Mapping[str, Any]) -> Limits:
    """The :class:`Limits` of effective settings (:func:`jobgate.state.config.effective`)."""
    default = settings.get("maxParallel")
    groups = settings.get("groups") or {}
    return Limits(
        default if isinstance(default, int) else None,
        {
            str(g): int(v["maxParallel"])
            for g, v in groups.items()
            if isinstance(v, dict) and isinstance(v.get("maxParallel"), int)
        },
    )


def find_cycle(edges: Mapping[str, list[str]], start: str) -> list[str] | None:
    """A dependency path from ``start`` back to itself through ``edges`` (job id ->
    the ids it waits for), or None."""
    path: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> list[str] | None:
        for nxt in edges.get(node, []):
            if nxt == start:
                return [*path, nxt]
            if nxt in seen:
                continue
            seen.add(nxt)
            path.append(nxt)
            found = visit(nxt)
            if found is not None:
                return found
            path.pop()
        return None

    found = visit(start)
    return None if found is None else [start, *found]


def next_rank(jobs: Iterable[model.Job], group: str) -> float:
    """The rank that puts a new job last in ``group``."""
    ranks = [float(j["queueRank"]) for j in jobs if is_queue_job(j) and group_of(j) == group]
    return (max(ranks) + 1.0) if ranks else 1.0


def rank_before(jobs: Iterable[model.Job], target: model.Job | None, group: str) -> float:
    """A rank that puts a job right before ``target`` (None: first) in ``group``'s
    queued jobs."""
    queued = [j for j in in_order(jobs) if group_of(j) == group]
    if target is None:
        return (float(queued[0]["queueRank"]) - 1.0) if queued else 1.0
    ids = [j.get("id") for j in queued]
    i = ids.index(target.get("id"))
    hi = float(target["queueRank"])
    lo = float(queued[i - 1]["queueRank"]) if i > 0 else hi - 2.0
    return (lo + hi) / 2.0


def mark_dependency_failed(job: model.Job, message: str, now: float | None = None) -> model.Job:
    """A queued job whose dependency did not complete: ``failed``, phase ``dependency``."""
    return model.touch(
        job,
        now,
        status=model.FAILED,
        phase=PHASE_DEPENDENCY,
        errorMessage=message,
        claim=None,
        completedAt=job.get("completedAt") or model.now_iso(now),
    )
