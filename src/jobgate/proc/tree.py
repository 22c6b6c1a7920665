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

from jobgate.proc import liveness
from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    import psutil

    #: ``spare(process, its environment)``: True when the process is someone else's
    Spare = Callable[[psutil.Process, dict[str, str]], bool]


def collect(
    roots: list[dict[str, Any]],
    job_id: str | None,
    spare: Spare | None = None,
) -> list[psutil.Process]:
    """Live, identity-verified processes of a job: ``roots`` (identities) and their
    descendants, plus env-marked strays. Reused pids are never included. ``spare``
    (given a process and its environment) names those that belong to someone else —
    a background job started from inside this one — to leave out with their subtrees
    (see :mod:`jobgate.jobs.claims`)."""
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
        for pid in liveness.backend.marked_pids(f"{model.JOB_ENV}={job_id}".encode()):
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
