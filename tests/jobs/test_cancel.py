"""cancel ends the whole tree, re-verifies identity first, and never signals a stranger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import (
    Env,
    can_force_pid_reuse,
    dead_identity,
    kill_box,
    native_only,
    spawn_with_pid,
    started_job_named,
)
from jobgate.jobs import control
from jobgate.proc import liveness
from jobgate.state import model


def _running(jg: Env, *command: str, session: str | None = None) -> dict[str, Any]:
    brief = jg.start(*command, session=session)
    return jg.wait_for(brief["id"], lambda j: j["status"] == "running" and j.get("commandPid"))


def _job_processes(job_id: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("JOBGATE_JOB_ID") == job_id and proc.status() != "zombie":
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _wait_count(job_id: str, count: int, timeout: float = 15) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        procs = _job_processes(job_id)
        if len(procs) >= count:
            return procs
        assert time.monotonic() < deadline, f"only {procs} started"
        time.sleep(0.05)


def _all_dead(procs: list[psutil.Process]) -> bool:
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def test_cancel_ends_descendants_that_left_the_group_and_ignore_term(jg: Env) -> None:
    script = (
        "setsid sh -c 'trap \"\" TERM; sleep 300' & "  # new session, ignores TERM
        "(trap '' TERM; sleep 300) & "  # same group, ignores TERM
        "sleep 300 & wait"
    )
    job = _running(jg, "sh", "-c", script)
    procs = _wait_count(job["id"], 5)
    assert len({p.pid for p in procs}) >= 5
    sessions = {os.getsid(p.pid) for p in procs}
    assert len(sessions) >= 2  # one descendant really moved to another session
    proc = jg.cli("cancel", job["id"], "--grace", "0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    assert _all_dead(procs)
    final = jg.job(job["id"])
    assert final["status"] == "cancelled"
    assert final["completedAt"]


def test_cancel_finds_orphaned_setsid_descendants(jg: Env) -> None:
    # the subshell exits at once, so the setsid'd sleep is reparented to init and no
    # longer a descendant of the command
    job = _running(jg, "sh", "-c", "(setsid sleep 300 &); exec sleep 300")
    procs = _wait_count(job["id"], 2)
    stray = [p for p in procs if p.ppid() != job["commandPid"] and p.pid != job["commandPid"]]
    assert stray, procs
    assert jg.cli("cancel", job["id"], "--grace", "1").returncode == 0
    assert _all_dead(procs)


def test_cancel_of_a_finished_job_exits_1_and_names_its_status(jg: Env) -> None:
    brief = jg.start("true")
    jg.wait_for(brief["id"], lambda j: j["status"] == "completed")
    proc = jg.cli("cancel", brief["id"])
    assert proc.returncode == 1
    assert "status: completed" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_cancel_without_id_takes_the_sessions_only_active_job(jg: Env) -> None:
    mine = _running(jg, "sleep", "300", session="s-1")
    other = _running(jg, "sleep", "300", session="s-2")
    proc = jg.cli("cancel", "--grace", "1", env={"JOBGATE_SESSION_ID": "s-1"})
    assert proc.returncode == 0, proc.stderr
    assert jg.job(mine["id"])["status"] == "cancelled"
    assert jg.job(other["id"])["status"] == "running"
    _running(jg, "sleep", "300", session="s-2")
    several = jg.cli("cancel", env={"JOBGATE_SESSION_ID": "s-2"})
    assert several.returncode == 2
    assert "name one by id" in several.stderr
    jg.cli("cancel", other["id"], "--grace", "0.5")


def test_cancel_marks_cancelled_even_when_the_worker_already_died(jg: Env) -> None:
    job = _running(jg, "sleep", "300")
    os.kill(job["pid"], signal.SIGKILL)
    proc = jg.cli("cancel", job["id"], "--grace", "1")
    assert proc.returncode == 0, proc.stderr
    assert jg.job(job["id"])["status"] == "cancelled"
    assert not liveness.is_alive({"pid": job["commandPid"], **jg.job(job["id"])["commandProcess"]})


@pytest.mark.skipif(can_force_pid_reuse() is not None, reason=str(can_force_pid_reuse()))
def test_cancel_never_signals_a_reused_pid(jg: Env) -> None:
    store = jg.store()
    worker = dead_identity()
    command = dead_identity()
    time.sleep(0.05)
    strangers = [
        spawn_with_pid(worker["pid"], ["sleep", "300"]),
        spawn_with_pid(command["pid"], ["sleep", "300"]),
    ]
    try:
        job = model.new_job(
            job_id="reuse-c", command=["x"], cwd="/", log_file=store.log_path("reuse-c")
        )
        job = model.mark_running(job, worker=worker, command=command)
        with store.transaction() as tx:
            tx.put(job)
        # call cancel directly: no reconciliation in front of it, so the identity
        # check right before signalling is what must protect the strangers
        outcome = control.cancel(store, "reuse-c", grace=0.5)
        assert outcome["signalled"] == []
        assert any("now belongs to another process" in p for p in outcome["problems"])
        assert outcome["job"]["status"] == "failed"
        assert outcome["job"]["phase"] == "lost"
        for stranger in strangers:
            assert stranger.poll() is None, "a stranger was signalled"
        # and through the CLI (whose reading finds the reuse first): reported, not killed
        again = model.mark_running(
            model.new_job(
                job_id="reuse-d", command=["x"], cwd="/", log_file=store.log_path("reuse-d")
            ),
            worker=worker,
            command=command,
        )
        with store.transaction() as tx:
            tx.put(again)
        cli = jg.cli("cancel", "reuse-d")
        assert cli.returncode == 1
        assert "nothing was signalled" in cli.stderr
        assert f"pid {command['pid']} now belongs to another process" in cli.stderr
        assert "reuse-d: failed" in cli.stdout
        assert all(s.poll() is None for s in strangers)
    finally:
        for stranger in strangers:
            stranger.kill()
            stranger.wait()


def test_worker_that_sees_cancel_before_starting_never_runs_the_command(jg: Env) -> None:
    store = jg.store()
    marker = jg.workspace / "ran"
    job = model.new_job(
        job_id="pre-cancel",
        command=["touch", str(marker)],
        cwd=str(jg.workspace),
        log_file=store.log_path("pre-cancel"),
    )
    with store.transaction() as tx:
        tx.put(model.mark_cancel_requested(job))
    from jobgate.jobs import worker

    assert worker.run_job(store, "pre-cancel") == 1
    assert not marker.exists()
    got = store.read_job("pre-cancel")
    assert got is not None and got["status"] == "cancelled"


def test_cancel_of_a_lost_job_ends_the_processes_of_its_tree_that_outlived_it(jg: Env) -> None:
    job = _running(jg, "sh", "-c", "sleep 300 & exec sleep 301")
    stray = [p for p in _wait_count(job["id"], 2) if p.pid != job["commandPid"]]
    assert len(stray) == 1
    for pid in (job["pid"], job["commandPid"]):  # killed from outside: the job is lost
        os.kill(pid, signal.SIGKILL)
    lost = jg.wait_for(job["id"], lambda j: j["phase"] == "lost")
    assert stray[0].is_running() and stray[0].status() != psutil.STATUS_ZOMBIE

    proc = jg.cli("cancel", job["id"], "--grace", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout)
    assert outcome["signalled"] == [stray[0].pid]
    assert outcome["job"]["status"] == "failed"  # the record keeps what happened
    assert _all_dead(stray)
    assert jg.job(job["id"])["errorMessage"] == lost["errorMessage"]
    again = jg.cli("cancel", job["id"])
    assert again.returncode == 1 and "not active (status: failed)" in again.stderr


def test_a_job_started_inside_another_job_is_its_own_and_outlives_the_outer_cancel(
    jg: Env,
) -> None:
    inner_start = (
        f"{sys.executable} -m jobgate run --background --session s2 --name inner -- sleep 300"
    )
    outer = _running(jg, "sh", "-c", f"{inner_start}; exec sleep 300", session="s1")
    inner = started_job_named(jg, "inner")

    assert jg.cli("cancel", outer["id"], "--grace", "1").returncode == 0
    assert jg.job(outer["id"])["status"] == "cancelled"
    still = jg.job(inner["id"])
    assert still["status"] == "running", still  # not "lost": nobody touched it
    assert liveness.is_alive(still["commandProcess"]) and liveness.is_alive(still["workerProcess"])
    assert jg.cli("cancel", inner["id"], "--grace", "1").returncode == 0


SUBREAPER = """\
import ctypes, subprocess, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
subprocess.call([sys.executable, "-m", "jobgate", "run", "--background", "--name", "inner",
                 "--", "sleep", "300"], stdout=subprocess.DEVNULL)
time.sleep(300)
"""


def _wait_adopted(pid: int, parent: int) -> None:
    """Wait until ``pid``'s parent is ``parent``: a worker's launcher commits its job
    before it exits, so the job can be seen running while the launcher is still the
    worker's parent; once it is gone the subreaper adopts the worker."""
    deadline = time.monotonic() + 20
    while psutil.Process(pid).ppid() != parent:
        assert time.monotonic() < deadline, f"{pid} was never adopted by {parent}"
        time.sleep(0.02)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER")
def test_an_inner_job_adopted_by_a_subreaper_in_the_outer_tree_survives_the_outer_cancel(
    jg: Env,
) -> None:
    """tini -s, dumb-init, a shell's pid 1: orphans of the outer tree get re-parented into
    it, inner job's worker included; cancelling the outer job must still spare it."""
    outer = _running(jg, sys.executable, "-c", SUBREAPER)
    inner = started_job_named(jg, "inner")
    _wait_adopted(inner["pid"], outer["commandPid"])  # adopted into the outer tree

    assert jg.cli("cancel", outer["id"], "--grace", "1").returncode == 0
    still = jg.job(inner["id"])
    assert still["status"] == "running", still
    assert liveness.is_alive(still["workerProcess"]) and liveness.is_alive(still["commandProcess"])
    assert jg.cli("cancel", inner["id"], "--grace", "1").returncode == 0


def test_cancel_ends_a_command_whose_main_thread_exited_while_others_run(jg: Env) -> None:
    from conftest import MAIN_THREAD_EXITS

    job = _running(jg, sys.executable, "-c", MAIN_THREAD_EXITS)
    deadline = time.monotonic() + 20
    proc = psutil.Process(job["commandPid"])
    while proc.status() != psutil.STATUS_ZOMBIE:  # main thread gone, one thread runs
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert jg.job(job["id"])["status"] == "running"
    assert jg.cli("cancel", job["id"], "--grace", "1").returncode == 0
    deadline = time.monotonic() + 20
    while proc.is_running() and proc.num_threads() > 1:
        assert time.monotonic() < deadline, "its threads outlived the cancel"
        time.sleep(0.02)


def test_descendants_carrying_another_jobs_mark_are_still_ended_by_cancel(jg: Env) -> None:
    """A mark alone proves nothing: only a real, recorded background job is spared."""
    job = _running(
        jg,
        "sh",
        "-c",
        "env JOBGATE_JOB_ID=decoy sleep 301 & env JOBGATE_WORKER_OF=decoy2 sleep 302 & "
        "exec sleep 303",
    )
    cmd = psutil.Process(job["commandPid"])
    deadline = time.monotonic() + 20
    while len(cmd.children()) < 2:
        assert time.monotonic() < deadline, "the decoys never started"
        time.sleep(0.02)
    decoys = cmd.children()
    assert jg.cli("cancel", job["id"], "--grace", "1").returncode == 0
    deadline = time.monotonic() + 20
    while not _all_dead(decoys):
        assert time.monotonic() < deadline, "a decoy outlived the cancel"
        time.sleep(0.05)


def test_a_foreground_job_inside_a_job_is_ended_with_it_even_if_it_ignores_term(
    jg: Env,
) -> None:
    inner = (
        f"{sys.executable} -m jobgate run --name inner -- "
        "sh -c 'trap \"\" TERM; sleep 301; sleep 302'"
    )
    outer = _running(jg, "sh", "-c", inner)
    inner_job = started_job_named(jg, "inner")
    inner_tree = [psutil.Process(inner_job["commandPid"])]
    inner_tree += inner_tree[0].children(recursive=True)
    assert jg.cli("cancel", outer["id"], "--grace", "1").returncode == 0
    deadline = time.monotonic() + 20
    while not _all_dead(inner_tree):
        assert time.monotonic() < deadline, "the foreground inner job outlived the cancel"
        time.sleep(0.05)


@native_only("pid namespaces (NSpid)")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a pid namespace")
def test_cancel_from_the_host_never_signals_the_host_process_with_a_container_pid(
    jg: Env,
) -> None:
    """A job recorded inside a pid namespace has pids that name other processes out
    here: cancel must reach the job through its namespace, never by the raw number."""
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
    box = None
    try:
        start = f"{sys.executable} -m jobgate run --background --name boxed -- sleep 301"
        script = f"echo {victim.pid - 3} > /proc/sys/kernel/ns_last_pid; {start}; exec sleep 302"
        box = subprocess.Popen(
            ["unshare", "-p", "-f", "-m", "--mount-proc", "sh", "-c", script],
            env=jg.env,
            cwd=jg.workspace,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        job = started_job_named(jg, "boxed")
        if victim.pid not in (job["commandPid"], job["pid"]):
            pytest.skip("could not give the boxed job the host victim's pid number")
        assert jg.cli("cancel", job["id"], "--grace", "1").returncode == 0
        assert victim.poll() is None, "cancel signalled a host process by a container pid"
        assert jg.job(job["id"])["status"] == "cancelled"
    finally:
        victim.kill()
        victim.wait()
        if box is not None:
            kill_box(box)


def test_an_inner_job_of_another_workspace_adopted_by_a_subreaper_survives_the_outer_cancel(
    jg: Env, tmp_path: Path
) -> None:
    other = tmp_path / "other-ws"
    other.mkdir()
    script = SUBREAPER.replace(
        '"run", "--background"', f'"--cwd", {str(other)!r}, "run", "--background"'
    )
    assert script != SUBREAPER
    outer = _running(jg, sys.executable, "-c", script)
    inner = started_job_named(jg, "inner", cwd=other)
    _wait_adopted(inner["pid"], outer["commandPid"])
    assert jg.cli("cancel", outer["id"], "--grace", "1").returncode == 0
    still = json.loads(jg.cli("--cwd", str(other), "status", inner["id"], "--json").stdout)
    assert still["job"]["status"] == "running", still
    assert jg.cli("--cwd", str(other), "cancel", inner["id"], "--grace", "1").returncode == 0


FORGER = """\
import json, os, subprocess, sys, time
sys.path.insert(0, os.environ["JOBGATE_SRC"])
from jobgate.proc import liveness
mode, state_dir = sys.argv[1], sys.argv[2]  # ... STATE_DIR JOB_ID, as a worker's argv ends
os.makedirs(state_dir, exist_ok=True)
ident = liveness.capture(os.getpid())
if mode == "bad-namespace":
    ident["pidNs"] = ["not", "a", "string"]
with open(os.path.join(state_dir, "state.json"), "w") as fh:
    json.dump({"version": 1, "jobs": [{"id": "evil1", "workerProcess": ident}]}, fh)
subprocess.Popen(["sleep", "304"])
time.sleep(300)
"""


@pytest.mark.parametrize("mode", ["matching", "bad-namespace"])
def test_a_process_that_forges_a_worker_claim_is_still_ended_by_cancel(
    jg: Env, tmp_path: Path, mode: str
) -> None:
    """Its command line names a state dir whose record 'proves' it is another job's
    worker. It still carries this job's mark, so it is this job's and is ended."""
    evil = tmp_path / "evil-state"
    job = _running(
        jg,
        "env",
        "JOBGATE_WORKER_OF=evil1",
        f"JOBGATE_SRC={Path(model.__file__).parents[2]}",
        sys.executable,
        "-c",
        FORGER,
        mode,
        str(evil),
        "evil1",
    )
    procs = _wait_count(job["id"], 2)
    proc = jg.cli("cancel", job["id"], "--grace", "1")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    deadline = time.monotonic() + 20
    while not _all_dead(procs):
        assert time.monotonic() < deadline, "the forger's tree outlived the cancel"
        time.sleep(0.05)
