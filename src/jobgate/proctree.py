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

from jobgate import liveness

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import psutil


def _marked_processes(job_id: str) -> list[int]:
    """Linux: pids whose environment holds ``JOBGATE_JOB_ID=<job_id>``."""
    if not sys.platform.startswith("linux"):
        return []
    needle = f"JOBGATE_JOB_ID={job_id}".encode()
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


def collect(roots: list[dict[str, Any]], job_id: str | None) -> list[psutil.Process]:
    """Live, identity-verified processes of a job: ``roots`` (identities) and their
    descendants, plus env-marked strays. Reused pids are never included."""
    import psutil

    procs: dict[int, psutil.Process] = {}
    for ident in roots:
        if liveness.probe(ident)[0] != liveness.ALIVE:
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
    if job_id:
        _drop_other_jobs(procs, job_id)
    return list(procs.values())


def _drop_other_jobs(procs: dict[int, psutil.Process], job_id: str) -> None:
    """Remove from ``procs`` every process marked as another job's (its command, with
    ``JOBGATE_JOB_ID`` of another id, or its worker, with ``JOBGATE_WORKER_OF``) and all
    its descendants. A job started from inside this one is a job of its own; so is one
    whose orphaned worker a subreaper in this tree adopted."""
    import psutil

    for pid, proc in list(procs.items()):
        if pid not in procs:
            continue
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        own = env.get("JOBGATE_JOB_ID"), env.get("JOBGATE_WORKER_OF")
        if all(mark in (None, job_id) for mark in own):
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
