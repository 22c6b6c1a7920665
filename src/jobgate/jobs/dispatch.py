"""Start what the queue allows, without a daemon: called by whoever ends a job or
notices one ended (the finishing worker, every reader through
:func:`jobgate.jobs.refresh.load`, cancel), and right after a job is queued.

Nothing is spawned while the lock is held (the rule since issue 15):

1. a lock-free look at the active jobs decides whether anything could start (the
   common case, nothing to do, costs one pass over the active summaries);
2. under the lock the plan (:func:`jobgate.jobs.queue.plan`) is decided again on fresh
   records; jobs whose dependency failed are ended ``failed``/``dependency``; the jobs
   to start get a claim (a random token, our pid, the time) and phase ``starting``;
3. outside the lock each claimed job's worker is spawned, waiting at its gate;
4. under the lock again, each worker's identity is recorded on its job if the claim is
   still ours (a claim older than :data:`~jobgate.jobs.queue.CLAIM_GRACE_SECONDS` may have
   been taken over); then the gates open. A worker whose identity was not recorded finds
   another (or no) worker in its record and runs nothing (:mod:`jobgate.jobs.worker`).

A claimer killed between 2 and 4 leaves a claim that expires: the job waits again and the
next reader claims it.
"""

from __future__ import annotations

import os
import time

from jobgate.jobs import queue
from jobgate.state import model
from jobgate.state.errors import JobgateError, LockTimeout
from jobgate.state.fileio import CorruptFile
from jobgate.state.store import Store, log_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from jobgate.proc.detach import Started
    from jobgate.state.files import Snapshot
    from jobgate.state.transaction import Transaction


def limits(store: Store) -> queue.Limits:
    """The workspace's slot limits; unlimited when ``config.json`` cannot be used."""
    from jobgate.state import config as config_mod

    try:
        return queue.limits_of(config_mod.effective(store.read_config()))
    except (JobgateError, OSError, ValueError):
        return queue.Limits()


def status_lookup(store: Store) -> queue.StatusOf:
    """A finished job's status by id, from a snapshot read only when first asked."""
    snaps: list[Snapshot] = []

    def status_of(job_id: str) -> str | None:
        if not model.is_safe_id(job_id):
            return None
        if not snaps:
            snaps.append(store.snapshot())
        found = snaps[0].lookup(job_id)
        return None if found is None else str(found.get("status"))

    return status_of


def _tx_lookup(tx: Transaction) -> queue.StatusOf:
    def status_of(job_id: str) -> str | None:
        if not model.is_safe_id(job_id):
            return None
        found = tx.get(job_id)
        return None if found is None else str(found.get("status"))

    return status_of


def pending(active: Iterable[model.Job]) -> bool:
    """Whether any queued queue job is there to think about (the cheap first test)."""
    return any(j.get("status") == model.QUEUED and queue.is_queue_job(j) for j in active)


def advance(
    store: Store, active: list[model.Job] | None = None, *, lock_timeout: float = 30.0
) -> list[str]:
    """Start every queued job whose slot and dependencies allow; end those whose
    dependency failed. ``active``: the active jobs as the caller just read them (saves a
    read). Returns the ids of the jobs started or ended. A busy lock (past ``lock_timeout``)
    starts nothing: the next reader will."""
    started: list[str] = []
    for _round in range(8):  # a failed dependency may fail (or free) the next ones
        try:
            if active is None:
                active = store.snapshot().active
        except CorruptFile:
            return started
        if not pending(active):
            return started
        lim = limits(store)
        first = queue.plan(active, status_lookup(store), lim, time.time())
        if not first.start and not first.fail:
            return started
        try:
            ids, failed = _claim_and_start(store, lim, lock_timeout)
        except LockTimeout:
            return started
        started += ids + failed
        if not failed:
            return started
        active = None
    return started


def _claim_and_start(
    store: Store, lim: queue.Limits, lock_timeout: float
) -> tuple[list[str], list[str]]:
    from jobgate.jobs import workers
    from jobgate.proc import liveness

    token = os.urandom(8).hex()
    claimed: list[model.Job] = []
    failed: list[tuple[str, str]] = []
    with store.transaction(lock_timeout) as tx:
        now = time.time()
        decided = queue.plan(tx.jobs, _tx_lookup(tx), lim, now)
        for job_id, message in decided.fail:
            full = tx.get(job_id)
            if full is not None:
                tx.put(queue.mark_dependency_failed(full, message, now))
                failed.append((job_id, message))
        for job_id in decided.start:
            full = tx.get(job_id)
            if full is None:
                continue
            claim = {"token": token, "pid": os.getpid(), "at": now}
            full = model.touch(full, now, claim=claim, phase=queue.PHASE_STARTING)
            tx.put(full)
            claimed.append(full)
        if failed:
            tx.keep_at_most(spare=failed[0][0])
    for job_id, message in failed:
        _log(store, job_id, f"jobgate: job failed before it started: {message}")
    spawned: list[tuple[model.Job, Started | None, int, int, str]] = []
    try:
        for job in claimed:
            gate_r, gate_w = os.pipe()
            try:
                child = workers.spawn_worker(store, job, str(job.get("cwd") or "/"), gate_r)
                spawned.append((job, child, gate_r, gate_w, ""))
            except JobgateError as exc:
                os.close(gate_w)
                spawned.append((job, None, gate_r, -1, exc.message))
            finally:
                os.close(gate_r)
        recorded: list[str] = []
        with store.transaction(float("inf")) as tx:
            for job, proc, _r, _w, error in spawned:
                current = tx.get(str(job["id"]))
                if current is None or not _still_ours(current, token):
                    continue
                if proc is None:
                    tx.put(model.mark_failed(model.touch(current, claim=None), error))
                    continue
                ident = liveness.capture(proc.pid) or {"pid": proc.pid}
                tx.put(
                    model.touch(
                        current, pid=proc.pid, workerProcess=ident, claim=None, phase="queued"
                    )
                )
                recorded.append(str(job["id"]))
    finally:
        for _job, _proc, _r, gate_w, _e in spawned:
            if gate_w >= 0:
                os.close(gate_w)  # opens the gate: recorded, or not (it then runs nothing)
    return recorded, [i for i, _m in failed]


def _still_ours(job: model.Job, token: str) -> bool:
    claim = job.get("claim")
    return (
        model.is_active(job)
        and not job.get("cancelRequestedAt")
        and not queue.has_process(job)
        and isinstance(claim, dict)
        and claim.get("token") == token
    )


def _log(store: Store, job_id: str, text: str) -> None:
    try:
        log_line(store.log_path(job_id), text)
    except (OSError, JobgateError):
        pass
