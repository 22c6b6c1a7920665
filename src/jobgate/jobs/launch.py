"""Create jobs and start them: in the foreground, or with a detached worker.

Background start, so the record is never visible without a process identity (invariant
2) and nothing is spawned while the lock is held:

1. spawn the worker (:mod:`jobgate.jobs.worker`) in its own session, stdio away from the
   caller (stdin and stdout to /dev/null, stderr to the job log), so a caller that waits
   for its pipes to close (a test runner, a hook) is never held. It waits at a gate: a
   pipe whose write end only the launcher holds;
2. hand the worker the record; it forks the command held at a gate of its own and
   reports the command's pid (:mod:`jobgate.jobs.handshake`);
3. capture both identities (pid + start time) and commit the record, already
   ``running``, in one short locked transaction;
4. tell the worker and close the gate. The worker releases the command only if the
   commit happened (a launcher killed before it leaves a worker that runs nothing).
"""

from __future__ import annotations

import os

from jobgate.jobs import handshake, workers
from jobgate.proc import liveness
from jobgate.state import config as config_mod
from jobgate.state import model
from jobgate.state.durable import replace_with
from jobgate.state.errors import EXIT_FAILED, JobgateError
from jobgate.state.fileio import _unlink_quietly, json_bytes
from jobgate.state.store import Store, log_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _check_command(command: list[str]) -> None:
    if not command:
        raise JobgateError("missing command: give it after --, e.g. jobgate run -- make test")
    if not command[0]:
        raise JobgateError("the command's program name is empty (jobgate run -- '' ...)")


def _new_record(
    store: Store,
    command: list[str],
    *,
    cwd: str,
    kind: str,
    name: str | None,
    session_id: str | None,
    extra: dict[str, Any] | None,
    job_id: str | None = None,
) -> model.Job:
    """A new job's record (not yet committed), after checking its command and making
    sure the state dir exists: the start shared by every kind of launch."""
    _check_command(command)
    store.ensure()
    job_id = job_id or store.new_job_id(kind)
    job = model.new_job(
        job_id=job_id,
        command=command,
        cwd=cwd,
        kind=kind,
        name=name,
        session_id=session_id,
        log_file=store.log_path(job_id),
    )
    if extra:
        job.update(extra)
    return job


def max_jobs(store: Store) -> int:
    """The workspace's ``maxJobs``, for a launch's commit to prune to."""
    return int(config_mod.effective(store.read_config())["maxJobs"])


def start_background(
    store: Store,
    command: list[str],
    *,
    cwd: str,
    kind: str = "run",
    name: str | None = None,
    session_id: str | None = None,
    extra: dict[str, Any] | None = None,
    job_id: str | None = None,
) -> model.Job:
    """Record a job and start its detached worker; returns the committed record.
    ``job_id``: an id made beforehand (:func:`jobgate.state.model.new_id`), for a job
    whose resources are named after it (a worktree's branch)."""
    job = _new_record(
        store,
        command,
        cwd=cwd,
        kind=kind,
        name=name,
        session_id=session_id,
        extra=extra,
        job_id=job_id,
    )
    log_path = job["logFile"]
    log_line(log_path, f"jobgate: job {job['id']} created")
    # The worker is spawned before the lock is taken, so the critical section is only the
    # commit. It gets the record, forks the command held at its own gate and reports it
    # (jobgate.jobs.handshake); the record is then committed once, already running with
    # both identities, and the worker is told to release the command. Killed anywhere in
    # between, nothing runs that no record names.
    gate_r, gate_w = os.pipe()
    report_r, report_w = os.pipe()
    try:
        proc = workers.spawn_worker(store, job, cwd, gate_r, report_w)
    except BaseException:
        for fd in (gate_w, report_r):
            os.close(fd)
        raise
    finally:
        os.close(gate_r)
        os.close(report_w)
    try:
        ident = liveness.capture(proc.pid) or {"pid": proc.pid}
        job = model.touch(job, pid=proc.pid, workerProcess=ident)
        try:
            said = handshake.exchange(gate_w, report_r, job, handshake.REPORT_TIMEOUT)
        except handshake.WorkerSilent:
            proc.kill()  # our unreaped child: its pid cannot be anyone else's
            raise JobgateError(
                f"the jobgate worker did not start within {handshake.REPORT_TIMEOUT:g} s "
                "(machine overloaded?); nothing was run",
                EXIT_FAILED,
            ) from None
        verdict = b""
        if said.pid is not None:
            child = liveness.capture(said.pid) or {"pid": said.pid}
            job = model.mark_running(job, worker=ident, command=child, output_offset=said.offset)
            verdict = handshake.COMMITTED_RUNNING
        elif said.error is not None:
            job = model.mark_failed(job, said.error)
            verdict = handshake.COMMITTED_FAILED
        # else the worker died before it said anything: the record is committed queued
        # with its identity, and whoever looks next finds it lost, with the evidence
        keep = max_jobs(store)  # read before the lock: the critical section is the commit
        # its file, written before the lock: until the index names it, a job file holding
        # an active record is no job (StateDir.lookup), so the commit is active.json
        # alone (the file is made durable with it, after the lock). Not before the first
        # commit: job files beside no index are what a lost index looks like (the commit
        # then writes it)
        path = store.job_path(job["id"])
        early = os.path.exists(store.index_path)
        if early:
            replace_with(path, json_bytes(job), sync=False)
        try:
            with store.transaction() as tx:
                tx.max_finished = keep
                tx.put(job)
                if early:
                    tx.sync_on_commit(path)
        except BaseException:
            if early and not _named(store, job["id"]):
                _unlink_quietly(path)  # the launch never committed: no job file either
            raise
        if verdict:
            handshake.send_verdict(gate_w, verdict)
    finally:
        os.close(gate_w)  # opens the gate: committed, or not (then the worker runs nothing)
        os.close(report_r)
    return job


def _named(store: Store, job_id: str) -> bool:
    """Whether the index names the job (True when that cannot be read: keep its file)."""
    try:
        return store.snapshot().lookup(job_id) is not None
    except Exception:
        return True


def run_foreground(
    store: Store,
    command: list[str],
    *,
    cwd: str,
    kind: str = "run",
    name: str | None = None,
    session_id: str | None = None,
    extra: dict[str, Any] | None = None,
    stdout_to_stderr: bool = False,
    job_id: str | None = None,
) -> tuple[model.Job, int]:
    """Run the command here, output passing through (all of it to stderr with
    ``stdout_to_stderr``); returns (record, exit code)."""
    from jobgate.jobs import worker

    job = _new_record(
        store,
        command,
        cwd=cwd,
        kind=kind,
        name=name,
        session_id=session_id,
        extra=extra,
        job_id=job_id,
    )
    me = liveness.capture(os.getpid())
    keep = max_jobs(store)  # read before the lock: the critical section is the commit
    with store.transaction() as tx:
        tx.max_finished = keep
        # ``foreground``: whoever ran it saw its output and exit code as it ended, so the
        # user-prompt-submit hook never announces it as a finished background job
        tx.put(model.touch(job, pid=os.getpid(), workerProcess=me, foreground=True))
    code = worker.run_job(store, job["id"], foreground=True, stdout_to_stderr=stdout_to_stderr)
    with store.transaction() as tx:
        final = tx.get(job["id"]) or job
    return final, code


def enqueue(
    store: Store,
    command: list[str],
    *,
    cwd: str,
    kind: str = "run",
    name: str | None = None,
    session_id: str | None = None,
    extra: dict[str, Any] | None = None,
    group: str | None = None,
    after: list[str] | None = None,
    after_any: bool = False,
    job_id: str | None = None,
) -> model.Job:
    """Record a queued job (:mod:`jobgate.jobs.queue`) and start what the queue allows
    now, it perhaps included; returns its record as it is then. ``after``: ids of jobs
    it waits for, each checked under the lock (an unknown one, or a cycle, is refused
    and nothing is recorded)."""
    from jobgate.jobs import dispatch, queue

    job = _new_record(
        store,
        command,
        cwd=cwd,
        kind=kind,
        name=name,
        session_id=session_id,
        extra=extra,
        job_id=job_id,
    )
    deps = list(dict.fromkeys(after or []))
    keep = max_jobs(store)  # read before the lock: the critical section is the commit
    with store.transaction() as tx:
        tx.max_finished = keep
        for dep in deps:
            if tx.get(dep) is None:
                raise JobgateError(f"--after: no job {dep!r} in this workspace")
        edges = {str(j["id"]): [str(a) for a in j.get("after") or []] for j in tx.jobs}
        edges[job["id"]] = deps
        cycle = queue.find_cycle(edges, job["id"])
        if cycle is not None:
            raise JobgateError("--after would make a cycle: " + " -> ".join(cycle))
        fields: dict[str, Any] = {
            "phase": queue.PHASE_WAITING,
            "queueRank": queue.next_rank(tx.jobs, group or queue.DEFAULT_GROUP),
        }
        if group:
            fields["group"] = group
        if deps:
            fields["after"] = deps
            fields["afterAny"] = bool(after_any)
        job = model.touch(job, **fields)
        tx.put(job)
    log_line(job["logFile"], f"jobgate: job {job['id']} queued")
    dispatch.advance(store)
    return store.snapshot().lookup(job["id"]) or job
