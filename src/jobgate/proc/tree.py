"""Collect a job's process tree and end it: TERM, a grace period, then KILL.

The tree is collected *before* the first signal: the verified root process, all its
descendants (psutil, by parent links), and on Linux every process whose environment
carries ``JOBGATE_JOB_ID=<id>`` — which finds descendants that called ``setsid`` and
were orphaned when their parent exited. Each process's identity (pid + start time) is
re-checked right before every signal; psutil also refuses to signal a pid that has
been reused since the ``Process`` object was made.

Caveat: processes of another user are seen but can only be signalled with the rights
to do so (EPERM is reported, not hidden).
"""

from __future__ import annotations

import os
import signal
import sys

from jobgate.proc import liveness
from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import psutil


def _marked_processes(job_id: str) -> list[int]:
    """Linux: pids whose environment holds ``JOBGATE_JOB_ID=<job_id>``."""
    if not sys.platform.startswith("linux"):
        return []
    needle = f"{model.JOB_ENV}={job_id}".encode()
    found: list[int] = []
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(pid)
    return found


def collect(
    roots: list[dict[str, Any]],
    job_id: str | None,
    others: list[dict[str, Any]] | None = None,
) -> list[psutil.Process]:
    """Live, identity-verified processes of a job: ``roots`` (identities) and their
    descendants, plus env-marked strays. Reused pids are never included. ``others``
    (the workspace's job records) lets it leave out background jobs started from inside
    this one (see :func:`_drop_other_jobs`)."""
    import psutil

    procs: dict[int, psutil.Process] = {}
    for recorded in roots:
        ident = liveness.localize(recorded)  # verified alive, with the pid to use here
        if ident is None:
            continue
        try:
            root = psutil.Process(ident["pid"])
            # the pid could have been reused between the probe and making the Process
            # object (which pins whatever owns the pid now): probe again, after
            if liveness.probe(ident)[0] != liveness.ALIVE:
                continue
            procs[root.pid] = root
            for child in root.children(recursive=True):
                procs.setdefault(child.pid, child)
        except psutil.Error:
            continue
    if job_id:
        for pid in _marked_processes(job_id):
            if pid in procs:
                continue
            try:
                proc = psutil.Process(pid)
                procs[pid] = proc
                for child in proc.children(recursive=True):
                    procs.setdefault(child.pid, child)
            except psutil.Error:
                continue
    procs.pop(os.getpid(), None)
    if job_id and others:
        _drop_other_jobs(procs, job_id, others)
    return list(procs.values())


def _drop_other_jobs(
    procs: dict[int, psutil.Process], job_id: str, others: list[dict[str, Any]]
) -> None:
    """Leave out of ``procs`` the background jobs started from inside this one, each
    with its subtree: a process that is, by its recorded and still matching identity,
    another background job's worker (``JOBGATE_WORKER_OF``) or command
    (``JOBGATE_JOB_ID``). Those are jobs of their own (and a subreaper in this tree may
    have adopted them). A mark alone proves nothing: a descendant that merely carries
    another id, or one naming a foreground job (which runs inside this job, in step
    with it), stays part of this job's tree and is ended with it."""
    import psutil

    theirs = {
        pid: claim for job in others if job.get("id") != job_id for pid, claim in _claims(job)
    }
    for pid, proc in list(procs.items()):
        if pid not in procs:
            continue
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if env.get(model.JOB_ENV) == job_id:
            continue  # carries this job's own mark: never another job's (launch strips it)
        claim = theirs.get(pid) or _worker_of_another_workspace(proc, job_id)
        if claim is None:
            continue
        if env.get(claim["mark"]) != claim["id"] or not liveness.is_alive(claim["ident"]):
            continue
        procs.pop(pid, None)
        try:
            for child in proc.children(recursive=True):
                procs.pop(child.pid, None)
        except psutil.Error:
            continue


#: a state.json larger than this, named by some process's command line, is not read
FOREIGN_INDEX_MAX_BYTES = 16 << 20


def _worker_of_another_workspace(proc: psutil.Process, job_id: str) -> dict[str, Any] | None:
    """A background worker's claim on ``proc`` when it serves a job of *another*
    workspace: its command line names that workspace's state dir and its job, whose
    record (read from there) holds the worker identity to check. Anything odd about
    that state dir (not ours, too big, not jobgate's JSON) means no claim: the process
    is then ended with this job's tree."""
    try:
        return _claim_from_state_dir(proc, job_id)
    except Exception:  # a process's command line is anyone's to write
        return None


def _claim_from_state_dir(proc: psutil.Process, job_id: str) -> dict[str, Any] | None:
    import psutil

    try:
        argv = proc.cmdline()
    except psutil.Error:
        return None
    if len(argv) < 3 or argv[-1] == job_id:
        return None
    try:
        st = os.stat(os.path.join(argv[-2], "state.json"))
    except OSError:
        return None
    if st.st_uid != os.geteuid() or st.st_size > FOREIGN_INDEX_MAX_BYTES:
        return None
    from jobgate.state.store import Store

    for job in Store(argv[-2]).read_index():
        if job.get("id") == argv[-1]:
            for pid, claim in _claims(job):
                if pid == proc.pid and claim["mark"] == model.WORKER_ENV:
                    return claim
    return None


def _claims(job: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """``(pid here, claim)`` for each live process of an active background ``job``: its
    worker and command, each with the environment mark it must carry. A foreground job
    runs inside whoever started it and claims nothing."""
    if not model.is_active(job) or job.get("foreground"):
        return []
    out = []
    for key, mark in (("workerProcess", model.WORKER_ENV), ("commandProcess", model.JOB_ENV)):
        ident = job.get(key)
        if isinstance(ident, dict) and isinstance(ident.get("pid"), int):
            local = liveness.localize(ident)  # verified alive, with its pid here
            if local is not None:
                out.append((local["pid"], {"ident": local, "mark": mark, "id": job.get("id")}))
    return out


def _signal_all(procs: list[psutil.Process], sig: int) -> list[str]:
    import psutil

    problems: list[str] = []
    for proc in procs:
        try:
            # psutil re-checks that this pid still has the start time it had when the
            # Process object was created, and raises NoSuchProcess if it was reused.
            if not proc.is_running() or _exited(proc):
                continue
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            problems.append(f"not allowed to signal pid {proc.pid}")
    return problems


def terminate_tree(procs: list[psutil.Process], grace: float) -> tuple[list[int], list[str]]:
    """TERM every process, wait ``grace`` seconds, KILL the survivors.

    Returns ``(pids that got KILL, problems)``.
    """
    if not procs:
        return [], []
    problems = _signal_all(procs, signal.SIGTERM)
    alive = wait_gone(procs, grace)
    killed = [p.pid for p in alive]
    if alive:
        problems += _signal_all(alive, getattr(signal, "SIGKILL", signal.SIGTERM))
        wait_gone(alive, 5.0)
    return killed, problems


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll until every process has exited (a zombie counts as exited: in a container
    whose init does not reap, it never disappears); returns those still running."""
    import time

    deadline = time.monotonic() + max(timeout, 0.0)
    alive = [p for p in procs if _still_running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _still_running(p)]
    return alive


def _still_running(proc: psutil.Process) -> bool:
    import psutil

    try:
        return proc.is_running() and not _exited(proc)
    except psutil.Error:
        return False


def _exited(proc: psutil.Process) -> bool:
    """A zombie whose threads have all exited. (A process whose main thread called
    ``pthread_exit`` shows as a zombie while its other threads still run: it is alive
    and a signal to it reaches them.)"""
    import psutil

    return proc.status() == psutil.STATUS_ZOMBIE and proc.num_threads() <= 1
