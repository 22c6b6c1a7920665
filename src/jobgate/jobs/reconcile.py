"""Pure reconciliation: given job records and a way to probe a process identity,
decide which active jobs are really dead (and why). No I/O of its own."""

from __future__ import annotations

from jobgate.jobs.queue import is_queue_job
from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    Probe = Callable[[dict[str, Any]], tuple[str, str]]

ALIVE = "alive"  # mirrors jobgate.proc.liveness.ALIVE without importing it
UNVERIFIED = "unverified"  # mirrors jobgate.proc.liveness.UNVERIFIED


def _labelled(job: model.Job) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for label, key in (("worker", "workerProcess"), ("command", "commandProcess")):
        ident = job.get(key)
        if isinstance(ident, dict) and isinstance(ident.get("pid"), int):
            out.append((label, ident))
    pid = job.get("pid")
    if not out and isinstance(pid, int) and not isinstance(pid, bool):
        out.append(("recorded", {"pid": pid}))
    return out


def verdict(job: model.Job, probe: Probe, now: float) -> str | None:
    """None if the active ``job`` is (or may still become) alive, else why it is lost."""
    idents = _labelled(job)
    if not idents and job.get("status") == model.QUEUED and is_queue_job(job):
        # waiting in the queue (or claimed: a claim that expires puts it back): it holds
        # no process yet and needs none; see jobgate.jobs.queue
        return None
    if not idents:
        created = model.parse_iso(job.get("createdAt"))
        if job.get("status") == model.QUEUED and created is not None:
            age = now - created
            if age < model.QUEUED_GRACE_SECONDS:
                return None
            return f"queued {age:.0f}s ago and no process was ever recorded"
        return "no process was ever recorded for it"
    reasons: list[str] = []
    for label, ident in idents:
        result, evidence = probe(ident)
        if result in (ALIVE, UNVERIFIED):
            # UNVERIFIED: that pid exists but cannot be identified (e.g. /proc hidden);
            # without proof of death nothing is written down
            return None
        reasons.append(f"{label} {evidence}")
    return "; ".join(reasons)


def find_lost(jobs: Iterable[model.Job], probe: Probe, now: float) -> list[tuple[str, str]]:
    """``[(job id, reason), ...]`` for every active job none of whose processes lives."""
    lost: list[tuple[str, str]] = []
    for job in jobs:
        if not model.is_active(job):
            continue
        why = verdict(job, probe, now)
        if why is not None:
            lost.append((str(job.get("id")), why))
    return lost
