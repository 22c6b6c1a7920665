"""A job's recorded state follows its real processes: kills from outside, a worker
that dies while its command lives on, legacy and never-started records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import Env, can_force_pid_reuse, dead_identity, spawn_with_pid
from jobgate.state import model


def _running(jg: Env, *command: str) -> dict[str, Any]:
    brief = jg.start(*command)
    return jg.wait_for(brief["id"], lambda j: j["status"] == "running" and j.get("commandPid"))


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _is_lost(job: dict[str, Any]) -> bool:
    return job["status"] == "failed" and job["phase"] == "lost"


def test_sigkill_of_worker_and_command_marks_job_lost_with_evidence(jg: Env) -> None:
    job = _running(jg, "sleep", "300")
    _kill(job["pid"])
    _kill(job["commandPid"])
    lost = jg.wait_for(job["id"], _is_lost, timeout=10)
    assert f"worker pid {job['pid']}" in lost["errorMessage"]
    assert f"command pid {job['commandPid']}" in lost["errorMessage"]
    assert lost["completedAt"]
    log = jg.cli("log", job["id"]).stdout
    assert "marked failed (lost)" in log


def test_sigkill_of_the_command_alone_is_recorded_by_the_worker(jg: Env) -> None:
    job = _running(jg, "sleep", "300")
    _kill(job["commandPid"])
    done = jg.wait_for(job["id"], lambda j: j["status"] != "running")
    assert done["status"] == "failed"
    assert done["phase"] == "failed"  # recorded, not lost
    assert done["exitCode"] == 128 + 9


def test_job_stays_running_while_its_command_outlives_a_killed_worker(jg: Env) -> None:
    job = _running(jg, "sleep", "300")
    _kill(job["pid"])
    # the worker is gone, the command is not: the job is still really running
    time.sleep(0.3)
    for _ in range(3):
        again = jg.job(job["id"])
        assert again["status"] == "running", again
    # and cancel still ends it
    proc = jg.cli("cancel", job["id"], "--grace", "1")
    assert proc.returncode == 0, proc.stderr
    assert jg.job(job["id"])["status"] == "cancelled"
    assert not _alive(job["commandPid"])


def test_job_is_lost_once_the_orphaned_command_dies_too(jg: Env) -> None:
    job = _running(jg, "sleep", "300")
    _kill(job["pid"])
    time.sleep(0.2)
    assert jg.job(job["id"])["status"] == "running"
    _kill(job["commandPid"])
    lost = jg.wait_for(job["id"], _is_lost, timeout=10)
    assert f"command pid {job['commandPid']}" in lost["errorMessage"]


def test_killing_the_tracked_pids_tree_from_outside_makes_the_job_lost(jg: Env) -> None:
    job = _running(jg, "sh", "-c", "sleep 300 & sleep 300; wait")
    root = psutil.Process(job["pid"])
    deadline = time.monotonic() + 10
    tree = [root, *root.children(recursive=True)]
    while len(tree) < 3:  # the shell may not have started both sleeps yet
        assert time.monotonic() < deadline, tree
        time.sleep(0.02)
        tree = [root, *root.children(recursive=True)]
    for proc in tree:
        proc.send_signal(signal.SIGKILL)
    lost = jg.wait_for(job["id"], _is_lost, timeout=10)
    assert "lost" in lost["errorMessage"]


def test_wait_notices_a_job_killed_from_outside_quickly(jg: Env) -> None:
    job = _running(jg, "sleep", "300")
    waiter = subprocess.Popen(
        [*_cli(jg), "wait", job["id"], "--timeout", "60"],
        cwd=jg.workspace,
        env=jg.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(0.5)
        killed_at = time.monotonic()
        _kill(job["pid"])
        _kill(job["commandPid"])
        out, err = waiter.communicate(timeout=30)
        took = time.monotonic() - killed_at
    finally:
        waiter.kill()
        waiter.wait()
    assert waiter.returncode == 1, err
    assert "lost" in out
    # it polls every 0.2 s; generous bound so a loaded machine does not flake
    assert took < 15


def test_wait_times_out_with_124_while_job_runs(jg: Env) -> None:
    job = _running(jg, "sleep", "300")
    proc = jg.cli("wait", job["id"], "--timeout", "0.5")
    assert proc.returncode == 124
    assert jg.job(job["id"])["status"] == "running"


def test_wait_exits_0_for_completed_and_1_for_failed(jg: Env) -> None:
    ok = jg.start("sh", "-c", "sleep 0.2")
    bad = jg.start("sh", "-c", "exit 4")
    assert jg.cli("wait", ok["id"], "--timeout", "30").returncode == 0
    assert jg.cli("wait", bad["id"], "--timeout", "30").returncode == 1


def test_log_follow_streams_and_ends_when_the_job_is_lost(jg: Env) -> None:
    job = _running(jg, "sh", "-c", "echo first-line; exec sleep 300")
    follower = subprocess.Popen(
        [*_cli(jg), "log", job["id"], "--follow"],
        cwd=jg.workspace,
        env=jg.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(0.5)
        assert follower.poll() is None  # still following a live job
        _kill(job["pid"])
        _kill(job["commandPid"])
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
        follower.wait()
    assert follower.returncode == 1  # a lost job is no success
    assert "first-line" in out
    assert "lost" in err


def test_log_tail_prints_only_the_last_lines(jg: Env) -> None:
    brief = jg.start("sh", "-c", "for i in 1 2 3 4 5 6; do echo line$i; done")
    jg.wait_for(brief["id"], lambda j: j["status"] == "completed")
    out = jg.cli("log", brief["id"], "--tail", "2").stdout.splitlines()
    assert len(out) == 2
    assert "line6" in "".join(jg.cli("log", brief["id"]).stdout)


def test_legacy_running_record_without_pid_is_lost(jg: Env) -> None:
    store = jg.store()
    job = model.new_job(
        job_id="legacy-1", command=["x"], cwd="/", log_file=store.log_path("legacy-1")
    )
    job = dict(job, status="running", phase="running")
    with store.transaction() as tx:
        tx.put(job)
    got = jg.job("legacy-1")
    assert _is_lost(got)
    assert "no process was ever recorded" in got["errorMessage"]


def test_legacy_record_with_a_bare_live_pid_is_not_trusted(jg: Env) -> None:
    store = jg.store()
    job = model.new_job(
        job_id="legacy-2", command=["x"], cwd="/", log_file=store.log_path("legacy-2")
    )
    job = dict(job, status="running", phase="running", pid=os.getpid())
    with store.transaction() as tx:
        tx.put(job)
    got = jg.job("legacy-2")
    assert _is_lost(got)
    assert "start time was never recorded" in got["errorMessage"]


def test_queued_record_that_never_got_a_process_is_lost_after_grace(jg: Env) -> None:
    store = jg.store()
    old = time.time() - model.QUEUED_GRACE_SECONDS - 5
    fresh = model.new_job(
        job_id="q-fresh", command=["x"], cwd="/", log_file=store.log_path("q-fresh")
    )
    stale = model.new_job(
        job_id="q-stale", command=["x"], cwd="/", log_file=store.log_path("q-stale"), now=old
    )
    with store.transaction() as tx:
        tx.put(fresh)
        tx.put(stale)
    assert jg.job("q-fresh")["status"] == "queued"
    got = jg.job("q-stale")
    assert _is_lost(got)
    assert "no process was ever recorded" in got["errorMessage"]


def test_status_lists_running_jobs_first_with_log_lines(jg: Env) -> None:
    done = jg.start("sh", "-c", "echo finished-one")
    jg.wait_for(done["id"], lambda j: j["status"] == "completed")
    job = _running(jg, "sh", "-c", "echo hello-from-job; exec sleep 300")
    jg.wait_for(job["id"], lambda j: True)
    time.sleep(0.2)
    text = jg.cli("status").stdout
    assert text.index(job["id"]) < text.index(done["id"])
    assert "hello-from-job" in text
    listed = jg.cli_json("status")["jobs"]
    assert [j["id"] for j in listed] == [job["id"], done["id"]]


def test_sweep_reports_and_records_dead_jobs_and_dry_run_changes_nothing(jg: Env) -> None:
    store = jg.store()
    ident = dead_identity()
    job = model.new_job(job_id="sw-1", command=["x"], cwd="/", log_file=store.log_path("sw-1"))
    job = model.mark_running(job, worker=ident, command=None)
    with store.transaction() as tx:
        tx.put(job)
    before = Path(store.index_path).read_bytes()
    dry = jg.cli_json("sweep", "--dry-run")
    assert dry["dryRun"] is True
    assert [c["id"] for c in dry["changed"]] == ["sw-1"]
    assert Path(store.index_path).read_bytes() == before
    real = jg.cli_json("sweep")
    assert [c["id"] for c in real["changed"]] == ["sw-1"]
    assert f"pid {ident['pid']} is gone" in real["changed"][0]["reason"]
    assert jg.cli_json("sweep")["changed"] == []
    full = store.read_job("sw-1")
    assert full is not None and _is_lost(full)


@pytest.mark.skipif(can_force_pid_reuse() is not None, reason=str(can_force_pid_reuse()))
def test_record_whose_pid_was_reused_is_lost_and_names_the_reuse(jg: Env) -> None:
    store = jg.store()
    ident = dead_identity()
    time.sleep(0.05)
    stranger = spawn_with_pid(ident["pid"], ["sleep", "300"])
    try:
        job = model.new_job(
            job_id="reused-1", command=["x"], cwd="/", log_file=store.log_path("reused-1")
        )
        job = model.mark_running(job, worker=ident, command=None)
        with store.transaction() as tx:
            tx.put(job)
        got = jg.job("reused-1")
        assert _is_lost(got)
        assert f"pid {ident['pid']} now belongs to another process" in got["errorMessage"]
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cli(jg: Env) -> list[str]:
    import sys

    return [sys.executable, "-m", "jobgate"]


def _all_ids(jg: Env) -> list[str]:
    return [j["id"] for j in jg.cli_json("status", "--all")["jobs"]]


def test_max_jobs_keeps_exactly_that_many_finished_jobs_once_they_end(jg: Env) -> None:
    assert jg.cli("config", "set", "maxJobs", "2").returncode == 0
    running = _running(jg, "sleep", "300")  # active: never pruned, never counted
    ids = []
    for n in range(4):
        proc = jg.cli("run", "--name", f"n{n}", "--", "true")
        assert proc.returncode == 0, proc.stderr
        ids.append(jg.cli_json("result")["job"]["id"])
    assert sorted(_all_ids(jg)) == sorted([running["id"], ids[-2], ids[-1]])
    background = jg.start("true")
    assert jg.cli("wait", background["id"], "--timeout", "30").returncode == 0
    assert sorted(_all_ids(jg)) == sorted([running["id"], ids[-1], background["id"]])


def test_max_jobs_one_keeps_just_the_job_that_ended_last_and_it_can_be_read(jg: Env) -> None:
    assert jg.cli("config", "set", "maxJobs", "1").returncode == 0
    first = jg.start("true")
    assert jg.cli("wait", first["id"], "--timeout", "30").returncode == 0
    second = jg.start("sh", "-c", "echo the answer")
    assert jg.cli("wait", second["id"], "--timeout", "30").returncode == 0
    assert _all_ids(jg) == [second["id"]]
    assert "the answer" in jg.cli("result", second["id"]).stdout


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_a_worker_killed_right_after_spawning_never_leaves_an_unrecorded_command(
    jg: Env, tmp_path: Path
) -> None:
    """SIGKILL the worker the moment its child appears (before or after it committed the
    command's identity): either the command never ran, or the record names it."""
    outcomes = set()
    for n in range(8):
        marker = tmp_path / f"ran-{n}"
        brief = jg.start("sh", "-c", f"echo > {marker}; exec sleep 30")
        deadline = time.monotonic() + 20
        while not _children(brief["pid"]):
            assert time.monotonic() < deadline, "the worker never started its command"
        _kill(brief["pid"])
        outcomes.add(_settled(jg, brief["id"], marker))
    assert outcomes <= {"ran", "held"}  # which of the two is up to the scheduler


def _settled(jg: Env, job_id: str, marker: Path, timeout: float = 20) -> str:
    """Poll until the job is in one of the two honest states; fail if it never is."""
    deadline = time.monotonic() + timeout
    while True:
        job = jg.job(job_id)
        strays = [
            p.pid
            for p in psutil.process_iter(["pid", "status"])
            if p.info["status"] != psutil.STATUS_ZOMBIE
            and _env_of(p).get("JOBGATE_JOB_ID") == job_id
        ]
        if _is_lost(job) and not strays and not marker.exists():
            return "held"  # killed before the command was released: nothing ran
        if job["status"] == "running" and strays == [job["commandPid"]] and marker.exists():
            _kill(job["commandPid"])  # released: the command runs, and the record names it
            return "ran"
        assert time.monotonic() < deadline, (job, strays, marker.exists())
        time.sleep(0.05)


def _env_of(proc: psutil.Process) -> dict[str, str]:
    try:
        return proc.environ()
    except psutil.Error:
        return {}


def _small_tmpfs(path: Path) -> str | None:
    """Mount a 512 KiB tmpfs at ``path``; None, else why it cannot be done here."""
    if os.geteuid() != 0:
        return "needs root to mount a small tmpfs"
    path.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "none", str(path)],
        capture_output=True,
        timeout=30,
    )
    return None if proc.returncode == 0 else f"cannot mount tmpfs: {proc.stderr!r}"


def test_a_full_disk_when_the_command_ends_delays_its_outcome_but_does_not_lose_it(
    jg: Env, tmp_path: Path
) -> None:
    home = tmp_path / "small-home"
    why = _small_tmpfs(home)
    if why is not None:
        pytest.skip(why)
    filler = home / "filler"
    try:
        jg.home = home
        jg.env["JOBGATE_HOME"] = str(home)
        job = _running(jg, "sh", "-c", "echo the-output; sleep 1")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:  # fill the disk while the command still runs
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        time.sleep(3)  # the command ended meanwhile; its end could not be written
        assert jg.job(job["id"])["status"] == "running"
        filler.unlink()
        done = jg.wait_for(job["id"], lambda j: not model.is_active(j), timeout=30)
        assert done["status"] == "completed" and done["exitCode"] == 0
        assert "the-output" in jg.cli("result", job["id"]).stdout
    finally:
        from conftest import reap_marked

        reap_marked(str(home))
        subprocess.run(["umount", "-l", str(home)], capture_output=True, timeout=30)


def test_a_worker_never_runs_a_job_whose_record_never_reached_the_index(
    jg: Env, tmp_path: Path
) -> None:
    """A job file without an index entry (what a launch that failed to commit left,
    before job files of new jobs were written under a temp name until the commit): its
    worker must run nothing unseen."""
    from jobgate.state.fileio import write_json

    assert jg.cli("run", "--", "true").returncode == 0  # an index that does not name it
    store = jg.store()
    marker = tmp_path / "ran"
    job = model.new_job(
        job_id="run-orphan-1",
        command=["sh", "-c", f"echo > {marker}"],
        cwd=str(tmp_path),
        log_file=store.log_path("run-orphan-1"),
    )
    write_json(store.job_path(job["id"]), job)  # the job file, and no index entry
    worker = subprocess.run(
        [sys.executable, "-m", "jobgate.jobs.worker", store.state_dir, job["id"]],
        env=jg.env,
        capture_output=True,
        timeout=60,
    )
    assert worker.returncode == 1
    assert not marker.exists()
    assert "no record for this job; nothing run" in Path(store.log_path(job["id"])).read_text()
    assert job["id"] not in [j["id"] for j in store.read_index()]
