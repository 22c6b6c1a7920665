"""Collect a job's process tree and end it: TERM, a grace period, then KILL.

The tree is collected *before* the first signal: the verified root process, all its
descendants (psutil, by parent links), and every process of this user whose environment
carries ``JOBGATE_JOB_ID=<id>`` (the backend's ``marked_pids``: ``/proc/<pid>/environ``
on Linux, psutil's ``environ()`` elsewhere) — which finds descendants that called
``setsid`` and were orphaned when their parent exited. Each process's identity (pid + start time) is
re-checked right before every signal; psutil also refuses to signal a pid that has
been reused since the ``Process`` object was made.

A root is taken only if it carries the job's mark (:func:`check_mark`): an identity is
public (``/proc/<pid>/stat``), so a record anyone edited can name any live process — pid
1 included — and a matching identity proves nothing about whose it is. What jobgate
starts for a job carries ``JOBGATE_JOB_ID=<id>`` (the command) or
``JOBGATE_WORKER_OF=<id>`` (the background worker) from its first instruction; a
process whose environment lacks it, or cannot be read, is never a root.

Caveat: processes of another user are seen but can only be signalled with the rights
to do so (EPERM is reported, not hidden).
"""

from __future__ import annotations

import os
import signal

from jobgate.proc import liveness
from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    import psutil

    #: ``spare(process, its environment)``: True when the process is someone else's
    Spare = Callable[[psutil.Process, dict[str, str]], bool]


#: verdicts of :func:`check_mark`
MARKED = "marked"
UNMARKED = "unmarked"
UNREADABLE = "unreadable"
GONE = "gone"

#: the marks a job's own processes carry: its command's and its background worker's
JOB_MARKS = (model.JOB_ENV, model.WORKER_ENV)


def check_mark(
    ident: dict[str, Any], job_id: str, names: tuple[str, ...] = JOB_MARKS
) -> tuple[str, str]:
    """Is the live process ``ident`` job ``job_id``'s by its mark: an environment entry
    ``NAME=<job_id>`` for one of ``names``? Returns ``(verdict, evidence)``:

    - :data:`MARKED`: it carries one; or, when ``names`` includes the command's mark, it
      is the child of a process carrying ``JOBGATE_WORKER_OF=<job_id>`` (the command the
      job's worker started, which may have dropped its mark: ``env -i``);
    - :data:`UNMARKED`: its environment was read and carries none;
    - :data:`UNREADABLE`: its environment cannot be read here (another user's or a
      setuid process, psutil's ``AccessDenied``): it cannot be shown to be the job's;
    - :data:`GONE`: it is not (or no longer) alive.

    The identity is probed again after the environment is read, so what was read was
    that process's and not that of one that took its pid meanwhile.
    """
    wanted = " or ".join(f"{name}={job_id}" for name in names)
    pid = ident.get("pid")
    local = liveness.localize(ident)  # verified alive, with the pid to use here
    if local is None:
        return GONE, f"pid {pid} is gone"
    entries = liveness.backend.environ_entries(local["pid"])
    carries = entries is not None and not {_entry(n, job_id) for n in names}.isdisjoint(entries)
    verdict = UNREADABLE if entries is None else UNMARKED
    if carries or (model.JOB_ENV in names and _child_of_worker(local["pid"], job_id)):
        verdict = MARKED
    if liveness.probe(local)[0] != liveness.ALIVE:
        return GONE, f"pid {pid} is gone"
    if verdict == UNREADABLE:
        return verdict, (
            f"pid {pid} matches the record but its environment cannot be read here, "
            f"so it cannot be shown to carry {wanted}"
        )
    if verdict == UNMARKED:
        return verdict, f"pid {pid} matches the record but does not carry {wanted}"
    return verdict, f"pid {pid} carries {wanted}"


def _entry(name: str, job_id: str) -> bytes:
    return os.fsencode(f"{name}={job_id}")


def _child_of_worker(pid: int, job_id: str) -> bool:
    """Whether ``pid``'s parent carries ``JOBGATE_WORKER_OF=<job_id>``. Its parent is
    read again after the parent's environment: unchanged, it was alive all along (a
    child whose parent dies is re-parented at once), so that environment was its."""
    import psutil

    try:
        proc = psutil.Process(pid)
        parent = proc.ppid()
        env = liveness.backend.environ_entries(parent) if parent > 0 else None
        return (
            env is not None and _entry(model.WORKER_ENV, job_id) in env and (proc.ppid() == parent)
        )
    except psutil.Error:
        return False


def collect(
    roots: list[dict[str, Any]],
    job_id: str,
    spare: Spare | None = None,
) -> list[psutil.Process]:
    """Live, identity-verified processes of job ``job_id``: ``roots`` (identities) that
    carry its mark (:func:`check_mark`; any other is left out) and their descendants,
    plus env-marked strays. Reused pids are never included. ``spare`` (given a process
    and its environment) names those that belong to someone else — a background job
    started from inside this one — to leave out with their subtrees (see
    :mod:`jobgate.jobs.claims`)."""
    import psutil

    procs: dict[int, psutil.Process] = {}
    for recorded in roots:
        ident = liveness.localize(recorded)  # verified alive, with the pid to use here
        if ident is None:
            continue
        try:
            root = psutil.Process(ident["pid"])
            # the pid could have been reused between the probe and making the Process
            # object (which pins whatever owns the pid now): probe again, after; and
            # whoever edited the record may have named any process: only a marked one
            # is this job's
            if liveness.probe(ident)[0] != liveness.ALIVE:
                continue
            if check_mark(ident, job_id)[0] != MARKED:
                continue
            procs[root.pid] = root
            for child in root.children(recursive=True):
                procs.setdefault(child.pid, child)
        except psutil.Error:
            continue
    if job_id:
        for pid in liveness.backend.marked_pids(f"{model.JOB_ENV}={job_id}".encode()):
            if pid in procs:
                continue
            try:
                proc = psutil.Process(pid)
                # the pid was found by a scan: read the mark again through this Process
                # object (pinned to the process that owns the pid now), then check it
                # is still that process, so a pid reused since the scan is left out
                if proc.environ().get(model.JOB_ENV) != job_id or not proc.is_running():
                    continue
                procs[pid] = proc
                for child in proc.children(recursive=True):
                    procs.setdefault(child.pid, child)
            except psutil.Error:
                continue
    procs.pop(os.getpid(), None)
    if spare is not None:
        _drop_spared(procs, spare)
    return list(procs.values())


def _drop_spared(procs: dict[int, psutil.Process], spare: Spare) -> None:
    """Leave out of ``procs`` every process ``spare`` claims for someone else, with its
    subtree."""
    import psutil

    for pid, proc in list(procs.items()):
        if pid not in procs:
            continue
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if not spare(proc, env):
            continue
        procs.pop(pid, None)
        try:
            for child in proc.children(recursive=True):
                procs.pop(child.pid, None)
        except psutil.Error:
            continue


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
