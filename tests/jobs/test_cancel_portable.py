"""cancel on the portable backend (``JOBGATE_PLATFORM=portable``, the psutil path macOS
uses): descendants that left the job's tree are found by their mark through psutil's
``environ()``, re-checked before each signal, and ended (issue 13)."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import psutil

from conftest import Env


def _portable_env(jg: Env) -> Env:
    jg.env["JOBGATE_PLATFORM"] = "portable"
    return jg


def _running(jg: Env, *command: str) -> dict[str, Any]:
    brief = jg.start(*command)
    return jg.wait_for(brief["id"], lambda j: j["status"] == "running" and j.get("commandPid"))


def _marked(job_id: str, count: int) -> list[psutil.Process]:
    """Poll (30 s) until ``count`` live processes carry the job's mark."""
    deadline = time.monotonic() + 30
    while True:
        found = []
        for proc in psutil.process_iter():
            try:
                if (
                    proc.environ().get("JOBGATE_JOB_ID") == job_id
                    and proc.status() != psutil.STATUS_ZOMBIE
                ):
                    found.append(proc)
            except psutil.Error:
                continue
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def _all_dead(procs: list[psutil.Process], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.Error:
                continue
        if not alive:
            return True
        time.sleep(0.05)
    return False


def test_cancel_on_the_portable_backend_ends_setsid_and_double_forked_descendants(
    jg: Env,
) -> None:
    _portable_env(jg)
    # one left by setsid in a subshell that exits at once, one by a double fork: both
    # are reparented to init, outside the command's tree
    job = _running(jg, "sh", "-c", "(setsid sleep 300 &); (sh -c 'sleep 301 &' &); exec sleep 302")
    procs = _marked(job["id"], 3)
    strays = [p for p in procs if p.pid != job["commandPid"] and p.ppid() != job["commandPid"]]
    assert len(strays) >= 2, procs
    proc = jg.cli("cancel", job["id"], "--grace", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert _all_dead(procs)
    assert jg.job(job["id"])["status"] == "cancelled"


def test_cancel_of_a_lost_job_on_the_portable_backend_ends_its_survivors(jg: Env) -> None:
    _portable_env(jg)
    job = _running(jg, "sh", "-c", "(setsid sleep 300 &); exec sleep 301")
    stray = [p for p in _marked(job["id"], 2) if p.pid != job["commandPid"]]
    assert len(stray) == 1
    for pid in (job["pid"], job["commandPid"]):  # killed from outside: the job is lost
        os.kill(pid, signal.SIGKILL)
    jg.wait_for(job["id"], lambda j: j["phase"] == "lost")
    assert stray[0].is_running()
    proc = jg.cli("cancel", job["id"], "--grace", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["signalled"] == [stray[0].pid]
    assert _all_dead(stray)


def test_the_portable_backend_never_signals_a_process_whose_mark_is_anothers(
    jg: Env, portable: Any
) -> None:
    """A process carrying another job's mark is never taken for this job's stray."""
    _portable_env(jg)
    mine = _running(jg, "sh", "-c", "(setsid sleep 300 &); exec sleep 301")
    other = _running(jg, "sh", "-c", "(setsid sleep 300 &); exec sleep 301")
    theirs = _marked(other["id"], 2)
    from jobgate.proc import tree

    found = {p.pid for p in tree.collect([], mine["id"])}
    assert found and not found & {p.pid for p in theirs}
    assert jg.cli("cancel", mine["id"], "--grace", "1").returncode == 0
    assert all(p.is_running() for p in theirs)
