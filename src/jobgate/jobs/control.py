"""Acting on jobs: pick one, cancel it, wait for it.

Cancel (invariants 4 and 5):

1. under the lock, note ``cancelRequestedAt`` (a worker that has not started the
   command yet then never starts it; one that sees the command die records
   ``cancelled``);
2. probe each recorded identity; a pid now owned by another process is reported and
   the job marked lost — that process is never signalled. Nor is a live process that
   matches the record but lacks the job's mark (``JOBGATE_JOB_ID=<id>`` for the
   command, ``JOBGATE_WORKER_OF=<id>`` for a background worker; see
   :func:`jobgate.proc.tree.check_mark`): an identity is public, so whoever can edit a
   job file can name any process, pid 1 included. A readable environment without the
   mark is another process's (as a reused pid: the job is marked lost); one that cannot
   be read is neither proven ours nor proven another's (as an unverified pid: the job
   stays as it is);
3. collect the whole tree before the first signal, TERM it, wait ``grace``, KILL;
4. record ``cancelled`` (unless the worker already did).

A foreground job's worker is the user's own ``jobgate run`` process: its environment
was fixed before the job existed, so it carries no mark of it and nothing proves a
record's foreground worker is that process. It is never signalled: cancel ends the
command, and the foreground ``jobgate run`` records the end itself and exits (in its
terminal, its user still has Ctrl-C). Until it has, a live foreground worker is a
process that may be the job's: with no other process of the job found, the job stays as
it is.
"""

from __future__ import annotations

import time

from jobgate.jobs import refresh
from jobgate.proc import liveness
from jobgate.state import model
from jobgate.state.errors import EXIT_FAILED, JobgateError
from jobgate.state.store import Store, log_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: how often ``wait`` and ``log --follow`` look at the job again
POLL_SECONDS = 0.2

#: the mark a recorded process must carry to be signalled as the job's (a bare
#: ``recorded`` pid is never probed alive, but would be accepted with either)
MARKS = {
    "command": (model.JOB_ENV,),
    "worker": (model.WORKER_ENV,),
    "recorded": (model.JOB_ENV, model.WORKER_ENV),
}


def pick(
    jobs: list[model.Job],
    ref: str | None,
    *,
    session_id: str | None = None,
    want: str = "any",
) -> model.Job:
    """The job a command acts on.

    With ``ref``: that job. Without: for ``want="active"`` the only active job of the
    session (an error if there are none or several); for ``want="finished"`` the newest
    finished job of the session; for ``want="any"`` the newest job.
    """
    if ref is not None:
        return model.resolve_ref(jobs, ref)
    pool = [j for j in model.sort_newest_first(jobs)]
    if session_id:
        pool = [j for j in pool if j.get("sessionId") == session_id]
    if want == "active":
        active = [j for j in pool if model.is_active(j)]
        if not active:
            raise JobgateError("no active job to act on", EXIT_FAILED)
        if len(active) > 1:
            ids = ", ".join(str(j["id"]) for j in active)
            raise JobgateError(f"several jobs are active ({ids}); name one by id")
        return active[0]
    if want == "finished":
        pool = [j for j in pool if model.is_finished(j)]
        if not pool:
            raise JobgateError("no finished job yet", EXIT_FAILED)
        return pool[0]
    if not pool:
        raise JobgateError("no jobs in this workspace yet", EXIT_FAILED)
    return pool[0]


def cancel(
    store: Store,
    job_id: str,
    *,
    grace: float = 5.0,
    reason: str = "cancelled by user",
) -> dict[str, Any]:
    """End the job's whole process tree and record it ``cancelled``.

    Returns ``{"job": record, "signalled": [pids], "killed": [pids], "problems": [...]}``.
    Raises :class:`JobgateError` (exit 1) when the job is not active.
    """
    from jobgate.jobs import claims
    from jobgate.proc import tree as proctree

    with store.transaction() as tx:
        job = tx.get(job_id)
        if job is None:
            raise JobgateError(f"no job {job_id!r}")
        if not model.is_active(job):
            raise JobgateError(
                f"job {job_id} is not active (status: {job.get('status')})", EXIT_FAILED
            )
        tx.put(model.mark_cancel_requested(job, reason=reason))

    problems: list[str] = []
    alive: dict[str, dict[str, Any]] = {}
    unverified = False
    for label, ident in _recorded_processes(job):
        verdict, evidence = liveness.probe(ident)
        if verdict in (liveness.REUSED, liveness.UNVERIFIED):
            problems.append(f"{label} {evidence}; it was not signalled")
            unverified = unverified or verdict == liveness.UNVERIFIED
        elif verdict == liveness.ALIVE:
            alive[label] = ident
    # a foreground worker is never signalled (see the module docstring): only waited for
    foreground = alive.pop("worker") if job.get("foreground") and "worker" in alive else None
    for label, ident in list(alive.items()):
        mark, evidence = proctree.check_mark(ident, job_id, MARKS[label])
        if mark != proctree.MARKED:
            del alive[label]  # not the job's, or not provably: never signalled
            if mark != proctree.GONE:
                problems.append(f"{label} {evidence}: not signalled")
            unverified = unverified or mark == proctree.UNREADABLE
    # the workspace's jobs: background jobs started inside this one are spared
    spare = claims.spare_other_jobs(job_id, _others(store))
    procs = []
    if "command" in alive:
        # the command's tree (and env-marked strays) is what we end; a live worker
        # is spared so it can record the end itself
        procs = proctree.collect([alive["command"]], job_id, spare)
        for kept in (alive.get("worker"), foreground):
            here = liveness.localize(kept) if kept is not None else None
            if here is not None:
                procs = [p for p in procs if p.pid != here["pid"]]
    elif "worker" not in alive:
        procs = proctree.collect([], job_id, spare)  # strays only
    signalled = [p.pid for p in procs]
    killed, sig_problems = proctree.terminate_tree(procs, grace)
    problems += sig_problems
    log_path = store.log_path(job_id)
    log_line(log_path, f"jobgate: cancel: signalled {signalled or 'no process'}")

    worker = alive.get("worker")
    waited = worker or foreground
    if waited is not None:
        # give the worker a moment to record the end itself, then end it too (a
        # background one: a foreground ``jobgate run`` is never signalled)
        deadline = time.monotonic() + 3.0
        while liveness.is_alive(waited) and time.monotonic() < deadline:
            time.sleep(0.05)
        if worker is not None and liveness.is_alive(worker):
            leftover = proctree.collect([worker], job_id, spare)
            signalled += [p.pid for p in leftover]
            more_killed, more_problems = proctree.terminate_tree(leftover, 1.0)
            killed += more_killed
            problems += more_problems

    foreground_left = liveness.is_alive(foreground)
    with store.transaction() as tx:
        final = tx.get(job_id) or job
        if not model.is_active(final):
            pass  # the worker recorded the end itself
        elif not alive and (unverified or foreground_left):
            # a process that may be the job's still exists and could not be identified or
            # signalled: recording an end now would be a guess, so the job stays as it is
            if foreground_left:
                pid = (foreground or {}).get("pid")
                problems.append(
                    f"worker pid {pid} matches the record of this foreground job, whose "
                    "jobgate process carries no mark of it: not signalled (a real one "
                    "records the end itself once its command ends)"
                )
        elif not alive and problems:
            final = model.mark_lost(final, "; ".join(problems))
            tx.put(final)
        else:
            final = model.mark_cancelled(final, reason)
            tx.put(final)
        tx.keep_at_most(spare=job_id)
    log_line(log_path, f"jobgate: job {final.get('status')}: {final.get('errorMessage')}")
    from jobgate.jobs import dispatch

    dispatch.advance(store)  # its slot is free, and jobs that waited for it fail
    return {"job": final, "signalled": signalled, "killed": killed, "problems": problems}


def end_leftovers(store: Store, job_id: str, *, grace: float = 5.0) -> dict[str, Any]:
    """End what is left of a job that is no longer active: processes that still carry
    its ``JOBGATE_JOB_ID`` (descendants of its command that outlived it, e.g. after the
    worker and command were killed from outside and the job was recorded lost).

    Only a descendant of the job's command inherits that mark, so no stranger is among
    them; each is still re-checked right before its signal (Linux; elsewhere nothing is
    found). Returns ``{"signalled": [pids], "killed": [pids], "problems": [...]}``.
    """
    from jobgate.jobs import claims
    from jobgate.proc import tree as proctree

    procs = proctree.collect([], job_id, claims.spare_other_jobs(job_id, _others(store)))
    signalled = [p.pid for p in procs]
    killed, problems = proctree.terminate_tree(procs, grace)
    if signalled:
        log_line(
            store.log_path(job_id),
            f"jobgate: cancel: ended leftover processes of the finished job: {signalled}",
        )
    return {"signalled": signalled, "killed": killed, "problems": problems}


def wait(store: Store, job_id: str, timeout: float | None) -> model.Job | None:
    """Block until the job is finished (a dead job is found and recorded lost within
    about :data:`POLL_SECONDS`); the final record, or None on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        jobs, _lost = refresh.load(store, finished=0)
        job = refresh.lookup(store, jobs, job_id)
        if job is None:
            raise JobgateError(f"job {job_id} is no longer in the state (pruned?)")
        if model.is_finished(job):
            return job
        if deadline is not None and time.monotonic() >= deadline:
            return None
        pause = POLL_SECONDS
        if deadline is not None:
            pause = max(0.0, min(pause, deadline - time.monotonic()))
        time.sleep(pause)


def _others(store: Store) -> list[model.Job]:
    """The workspace's job records as they are now (for telling apart jobs started from
    inside the one being ended); [] if the index cannot be read."""
    try:
        return store.read_active()
    except Exception:
        return []


def _recorded_processes(job: model.Job) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for label, key in (("command", "commandProcess"), ("worker", "workerProcess")):
        ident = job.get(key)
        if isinstance(ident, dict) and isinstance(ident.get("pid"), int):
            out.append((label, ident))
    if not out:
        out = [("recorded", ident) for ident in model.identities(job)]
    return out
