"""Read a workspace's jobs and write down any that are found dead (invariant 3).

The common path costs one lock-free read of the active jobs and one ``/proc`` probe per
active job: nothing is locked or written unless a job is found lost, and finished jobs
are read only as far as the caller asks (``finished=``).

When the state dir cannot be written (a read-only file system, no permission, a full
disk), a reader still answers: the dead jobs are shown as lost in what it prints, nothing
is written, and one warning per process says so (see :func:`load`).
"""

from __future__ import annotations

import time

from jobgate.jobs import reconcile
from jobgate.proc import liveness
from jobgate.state import model
from jobgate.state.store import CorruptFile, LockTimeout, Snapshot, Store, log_line, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: how long a fast, must-not-fail reader (the Stop hook) waits for the lock before it
#: settles for a read-only view
HOOK_LOCK_TIMEOUT = 0.25


def write_refused(code: int | None) -> bool:
    """Whether a write failed because the state dir is readable but cannot be changed
    (read-only, no permission, full, over quota)."""
    import errno  # only once a write has failed

    refused = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC}
    return code in refused or code == getattr(errno, "EDQUOT", errno.ENOSPC)


#: set once this process has warned that it could not write what it found (``wait``
#: and ``log --follow`` load again and again; they say it once)
_warned_unwritable = False


def load(
    store: Store,
    *,
    finished: int | None = None,
    persist: bool = True,
    lock_timeout: float = 30.0,
    readonly_fallback: bool = False,
    unwritable_fallback: bool = True,
) -> tuple[list[model.Job], list[tuple[str, str]]]:
    """``(jobs, lost)``: the active jobs with every dead one marked lost, then finished
    jobs (see :func:`_load`). A reader that writes is also one that starts what the queue
    allows (:mod:`jobgate.jobs.dispatch`): whoever looks, after a worker was killed
    before it could start the next job, starts it. The cost when nothing is queued: one
    pass over the active jobs."""
    jobs, lost = _load(
        store,
        finished=finished,
        persist=persist,
        lock_timeout=lock_timeout,
        readonly_fallback=readonly_fallback,
        unwritable_fallback=unwritable_fallback,
    )
    if persist and any(j.get("status") == model.QUEUED and "queueRank" in j for j in jobs):
        from jobgate.jobs import dispatch

        try:
            active = [j for j in jobs if model.is_active(j)]
            changed = dispatch.advance(store, active, lock_timeout=lock_timeout)
        except OSError as exc:
            if not unwritable_fallback or not write_refused(exc.errno):
                raise
            changed = []
        if changed:
            jobs, more = _load(store, finished=finished, persist=False)
            lost = lost + [x for x in more if x not in lost]
    return jobs, lost


def _load(
    store: Store,
    *,
    finished: int | None = None,
    persist: bool = True,
    lock_timeout: float = 30.0,
    readonly_fallback: bool = False,
    unwritable_fallback: bool = True,
) -> tuple[list[model.Job], list[tuple[str, str]]]:
    """``(jobs, lost)``: the active jobs with every dead one marked lost, then finished
    jobs: all of them (``finished=None``), or the ``finished`` most recently finished
    (0: none, so the call costs what is active). A job found dead by this call is in
    ``jobs`` whatever ``finished`` says.

    ``lost`` lists ``(job id, reason)`` for what was found dead on this call. With
    ``persist`` the change is written (index, job file, log line) under the lock. If
    the lock cannot be had in ``lock_timeout`` and ``readonly_fallback`` is set, the
    lost jobs are marked in the returned view only, so a dead job is still never
    reported as running. Likewise, with ``unwritable_fallback`` (the default: for
    readers), when the system refuses the write (:func:`write_refused`: read-only file
    system, permission denied, disk full): one warning on stderr per process, nothing
    written. Commands whose point is to write (``sweep``, ``cancel``) turn it off and
    fail with the system's error instead.
    """
    now = time.time()
    snap: Snapshot | None
    try:
        snap = store.snapshot()
    except CorruptFile:
        snap = None  # the locked path quarantines and rebuilds it
    lost: list[tuple[str, str]] = []
    if snap is not None:
        lost = reconcile.find_lost(snap.active, liveness.probe, now)
        if not lost:
            return snap.active + snap.finished(finished), []
        if not persist:
            return _mark_in_view(snap.active, lost, now) + snap.finished(finished), lost
    elif not persist:
        # read-only (sweep --dry-run): judge the jobs the rebuild would find, and say so
        return _view_of_job_files(store, now, finished)
    try:
        return _persist(store, lock_timeout, finished)
    except LockTimeout:
        if not readonly_fallback or snap is None:
            raise
    except OSError as exc:
        if not unwritable_fallback or not write_refused(exc.errno):
            raise
        _warn_unwritable(exc)
        if snap is None:
            return _view_of_job_files(store, now, finished)
    # could not write: what was found above, marked in the view only (never "running")
    return _mark_in_view(snap.active, lost, now) + snap.finished(finished), lost


def _view_of_job_files(
    store: Store, now: float, finished: int | None
) -> tuple[list[model.Job], list[tuple[str, str]]]:
    """The index a rebuild would make of an unreadable one, dead jobs marked in view."""
    warn(
        f"the job index {store.index_path} is unreadable or missing; it will be rebuilt "
        "from the job files by the next command that writes"
    )
    jobs = store.rebuild_index_from_jobs()
    active = [j for j in jobs if model.is_active(j)]
    done = [j for j in jobs if not model.is_active(j)]
    lost = reconcile.find_lost(active, liveness.probe, now)
    return _mark_in_view(active, lost, now) + done[:finished], lost


def _warn_unwritable(exc: OSError) -> None:
    global _warned_unwritable
    if _warned_unwritable:
        return
    _warned_unwritable = True
    where = f" ({exc.filename})" if exc.filename else ""
    warn(
        f"cannot record what was found in the state dir: {exc.strerror or exc}{where}; "
        "dead jobs are shown as lost, nothing was written"
    )


def _mark_in_view(
    jobs: list[model.Job], lost: list[tuple[str, str]], now: float
) -> list[model.Job]:
    reasons = dict(lost)
    return [
        model.mark_lost(j, reasons[j["id"]], now) if j.get("id") in reasons else j for j in jobs
    ]


def _persist(
    store: Store, lock_timeout: float, finished: int | None
) -> tuple[list[model.Job], list[tuple[str, str]]]:
    ended: dict[str, model.Job] = {}
    with store.transaction(lock_timeout) as tx:
        now = time.time()
        lost = reconcile.find_lost(tx.jobs, liveness.probe, now)
        for job_id, reason in list(lost):
            full = tx.get(job_id)
            if full is None:
                continue
            if model.is_finished(full):
                # its end reached the job file, and its writer was killed before the
                # index: the end stands, it is no loss
                lost.remove((job_id, reason))
            else:
                full = model.mark_lost(full, reason, now)
            tx.put(full)
            ended[job_id] = model.summary(full)
    for job_id, reason in lost:
        try:
            log_line(store.log_path(job_id), f"jobgate: job marked failed (lost): {reason}")
        except Exception:  # an odd id in a hand-edited index must not fail a reader
            pass
    snap = store.snapshot()
    done = snap.finished(finished)
    shown = {j["id"] for j in done}
    return snap.active + [j for i, j in ended.items() if i not in shown] + done, lost


def lookup(store: Store, jobs: list[model.Job], job_id: str) -> model.Job | None:
    """The job ``job_id`` as in ``jobs`` (a :func:`load`), else as the index has it."""
    return find_job(jobs, job_id) or store.snapshot().lookup(job_id)


#: at most this many job files are read to tell the jobs a prefix names apart
PREFIX_READS = 50


def resolve(store: Store, jobs: list[model.Job], ref: str) -> model.Job:
    """The job ``ref`` names (an exact id, else a unique id prefix) among ``jobs`` (a
    :func:`load`, perhaps of the active jobs only) and every other job of the index,
    without reading all of it; errors as :func:`jobgate.state.model.resolve_ref`."""
    if not model.is_safe_id(ref):
        return model.resolve_ref([], ref)  # raises the invalid-reference error
    found = find_job(jobs, ref)
    if found is not None:
        return found
    snap = store.snapshot()
    found = snap.lookup(ref)  # an exact id: its job file, else its bytes in the log
    if found is not None:
        return found
    pool = {str(j["id"]): j for j in jobs if str(j.get("id", "")).startswith(ref)}
    names = [i for i in store.job_ids() if i.startswith(ref) and i not in pool and i != ref]
    for job_id in names[:PREFIX_READS]:
        job = snap.lookup(job_id)
        if job is not None:
            pool[job_id] = job
    matches = list(pool.values())
    # past PREFIX_READS, the unread names count as matches for the error message
    matches += [{"id": i} for i in names[PREFIX_READS:]]
    return model.resolve_ref(matches, ref)


def find_job(jobs: list[model.Job], job_id: str) -> model.Job | None:
    for job in jobs:
        if job.get("id") == job_id:
            return job
    return None


def full_record(store: Store, summary: model.Job) -> dict[str, Any]:
    """The job file merged under the (possibly fresher) index summary — unless the file
    holds the job's end and the summary does not: the end is written to the file first,
    so a reader that read ``active.json`` just before that commit (and perhaps the next
    ones) and the file after it must not show an ended job running (with fields of its
    end, such as ``retriedBy``, beside it); the file is the newer record, as
    :meth:`jobgate.state.transaction.Transaction.get` has it."""
    full = store.read_job(str(summary["id"])) or {}
    if model.is_finished(full) and not model.is_finished(summary):
        return full
    merged = dict(full)
    merged.update(summary)
    return merged
