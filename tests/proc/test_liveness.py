"""Process identity: pid *and* start time, zombies dead, real pid reuse detected."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import (
    MAIN_THREAD_EXITS,
    SRC,
    Env,
    can_force_pid_reuse,
    dead_identity,
    kill_box,
    native_only,
    spawn_with_pid,
    start_running,
    started_job_named,
)
from jobgate.proc import liveness, pidns


def test_live_process_with_matching_identity_is_alive() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        ident = liveness.capture(proc.pid)
        assert ident is not None
        assert liveness.probe(ident)[0] == liveness.ALIVE
    finally:
        proc.kill()
        proc.wait()


def test_captured_start_time_matches_psutil_create_time() -> None:
    # both are ticks since boot plus the kernel's btime, which moves when the wall clock
    # is stepped (a VM resumed, NTP): read it afresh, as psutil does, not as cached by an
    # earlier test in this process (CI once saw exactly 5.0 s between the two)
    from jobgate.proc import _linux

    _linux._btime_cache.clear()
    ident = liveness.capture(os.getpid())
    assert ident is not None
    assert abs(ident["startTime"] - psutil.Process().create_time()) < 1.0


def test_exited_and_reaped_process_is_gone() -> None:
    ident = dead_identity()
    verdict, evidence = liveness.probe(ident)
    assert verdict == liveness.GONE
    assert f"pid {ident['pid']} is gone" == evidence


def test_unreaped_zombie_counts_as_dead() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    ident = liveness.capture(proc.pid)
    assert ident is not None
    proc.kill()
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert psutil.pid_exists(proc.pid)  # kill(pid, 0) alone would say "alive"
        verdict, evidence = liveness.probe(ident)
        assert verdict == liveness.ZOMBIE
        assert "zombie" in evidence
        assert liveness.capture(proc.pid) is None
    finally:
        proc.wait()


def test_same_pid_with_other_start_time_is_reused() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        ident = liveness.capture(proc.pid)
        assert ident is not None
        # a record of a process that started 5 s earlier (kept without the pidfs inode,
        # as recorded by a kernel without pidfs: then start times decide)
        earlier = {k: v for k, v in ident.items() if k != "pidfsIno"}
        forged = dict(
            earlier, startTicks=ident["startTicks"] - 500, startTime=ident["startTime"] - 5
        )
        verdict, evidence = liveness.probe(forged)
        assert verdict == liveness.REUSED
        assert evidence == f"pid {proc.pid} now belongs to another process"
        if "pidfsIno" in ident:  # where recorded, the pidfs inode is the proof that wins
            shifted = dict(ident, startTicks=ident["startTicks"] - 500)
            assert liveness.probe(shifted)[0] == liveness.ALIVE
    finally:
        proc.kill()
        proc.wait()


def test_bare_pid_without_start_time_is_never_called_alive() -> None:
    verdict, _ = liveness.probe({"pid": os.getpid()})
    assert verdict != liveness.ALIVE


def test_identity_from_another_boot_is_dead() -> None:
    ident = liveness.capture(os.getpid())
    assert ident is not None
    if "bootId" not in ident:
        pytest.skip("no boot id on this platform")
    verdict, evidence = liveness.probe(dict(ident, bootId="00000000-0000-0000-0000-000000000000"))
    assert verdict == liveness.REBOOTED
    assert "rebooted" in evidence


@pytest.mark.parametrize("pid", [None, 0, -1, "42", True])
def test_unusable_pid_is_gone(pid: object) -> None:
    assert liveness.probe({"pid": pid, "startTime": 1.0})[0] == liveness.GONE


def test_process_name_with_parentheses_and_spaces_is_parsed(tmp_path: Path) -> None:
    odd = tmp_path / "a) b (c"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", odd)
    child = subprocess.Popen([str(odd), "30"])
    try:
        deadline = time.monotonic() + 10
        while "a) b (c" not in Path(f"/proc/{child.pid}/stat").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        ident = liveness.capture(child.pid)
        assert ident is not None
        assert liveness.probe(ident)[0] == liveness.ALIVE
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(can_force_pid_reuse() is not None, reason=str(can_force_pid_reuse()))
def test_real_pid_reuse_is_detected() -> None:
    old = dead_identity()
    # start times have clock-tick (10 ms) resolution: a pid reused within the same tick
    # would look identical, which needs the pid space to wrap in 10 ms (only possible by
    # forcing it, as here)
    time.sleep(0.05)
    stranger = spawn_with_pid(old["pid"], ["sleep", "30"])
    try:
        assert stranger.pid == old["pid"]
        verdict, evidence = liveness.probe(old)
        assert verdict == liveness.REUSED
        assert evidence == f"pid {old['pid']} now belongs to another process"
        assert liveness.probe(liveness.capture(stranger.pid) or {})[0] == liveness.ALIVE
    finally:
        stranger.kill()
        stranger.wait()


@native_only("pidfs inode numbers")
@pytest.mark.skipif(can_force_pid_reuse() is not None, reason=str(can_force_pid_reuse()))
def test_a_pid_reused_within_the_same_clock_tick_is_still_told_apart() -> None:
    """Start times have 10 ms resolution; where pidfs gives every process its own inode
    number, a stranger that got the pid in the same tick is still not the job's."""
    if liveness.pidfs_inode(os.getpid()) is None:
        pytest.skip("this kernel has no pidfs inode numbers (Linux < 6.9)")
    old = dead_identity()
    assert isinstance(old.get("pidfsIno"), int)
    stranger = spawn_with_pid(old["pid"], ["sleep", "30"])
    try:
        now = liveness.capture(stranger.pid)
        assert now is not None and now["pidfsIno"] != old["pidfsIno"]
        # the record as it would be had the stranger started in the same clock tick
        same_tick = dict(old, startTicks=now["startTicks"], startTime=now["startTime"])
        verdict, evidence = liveness.probe(same_tick)
        assert verdict == liveness.REUSED
        assert evidence == f"pid {old['pid']} now belongs to another process"
        assert liveness.probe(now)[0] == liveness.ALIVE
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another user")
def test_another_users_process_is_alive_when_its_identity_matches() -> None:
    other = subprocess.Popen(["sleep", "30"], user=65534, group=65534)
    try:
        ident = liveness.capture(other.pid)
        assert ident is not None
        assert psutil.Process(other.pid).uids().real == 65534
        assert liveness.probe(ident)[0] == liveness.ALIVE
    finally:
        other.kill()
        other.wait()


def test_identity_recorded_on_another_host_is_not_alive_here() -> None:
    ident = liveness.capture(os.getpid())
    assert ident is not None
    # another machine has another kernel boot id and machine id (or none at all)
    elsewhere = dict(
        ident,
        host="some-other-host",
        bootId="11111111-2222-3333-4444-555555555555",
        machineId="0123456789abcdef0123456789abcdef",
    )
    verdict, evidence = liveness.probe(elsewhere)
    assert verdict == liveness.FOREIGN
    assert "some-other-host" in evidence
    bare = {k: v for k, v in ident.items() if k not in ("bootId", "machineId")}
    assert liveness.probe(dict(bare, host="some-other-host"))[0] == liveness.FOREIGN


def _hidden_proc_reason() -> str | None:
    """Why a mount namespace with an empty /proc cannot be made here (None: it can)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return "no unshare(1) on this machine"
    probe = subprocess.run(
        [unshare, "-m", "sh", "-c", "mount -t tmpfs none /proc"],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return "cannot make a mount namespace with an empty /proc (needs CAP_SYS_ADMIN)"
    return None


def _in_hidden_proc(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run Python ``code`` where /proc is an empty tmpfs; its stdout."""
    script = 'mount -t tmpfs none /proc && exec "$0" "$@"'
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or dict(os.environ, PYTHONPATH=SRC),
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@native_only("hidepid hides /proc entries, which psutil reads as no process")
@pytest.mark.skipif(_hidden_proc_reason() is not None, reason=str(_hidden_proc_reason()))
def test_a_live_process_hidden_from_proc_is_unverified_not_gone() -> None:
    live = subprocess.Popen(["sleep", "30"])
    try:
        ident = liveness.capture(live.pid)
        dead = dead_identity()
        code = (
            "import json, sys; from jobgate.proc import liveness; "
            "print(json.dumps([liveness.probe(json.loads(a)) for a in sys.argv[1:]]))"
        )
        out = json.loads(_in_hidden_proc(code, json.dumps(ident), json.dumps(dead)))
        (live_verdict, live_why), (dead_verdict, _) = out
        assert live_verdict == liveness.UNVERIFIED
        assert f"pid {live.pid} exists" in live_why
        assert dead_verdict == liveness.GONE  # signal 0 still tells a gone pid apart
    finally:
        live.kill()
        live.wait()


@native_only("hidepid hides /proc entries, which psutil reads as no process")
@pytest.mark.skipif(_hidden_proc_reason() is not None, reason=str(_hidden_proc_reason()))
def test_a_reader_that_cannot_see_proc_writes_no_running_job_down_as_lost(jg: Env) -> None:
    job = start_running(jg, "sleep", "30")
    code = "import sys; from jobgate.cli.main import main; raise SystemExit(main(sys.argv[1:]))"
    out = _in_hidden_proc(code, "--cwd", str(jg.workspace), "sweep", "--json", env=jg.env)
    assert json.loads(out)["changed"] == []
    assert jg.job(job["id"])["status"] == "running"


def _can_rename_host() -> str | None:
    if shutil.which("unshare") is None or shutil.which("hostname") is None:
        return "needs unshare(1) and hostname(1)"
    probe = subprocess.run(
        ["unshare", "-u", "sh", "-c", "hostname jobgate-renamed"], capture_output=True, timeout=30
    )
    if probe.returncode != 0:
        return "cannot make a UTS namespace to rename the host (needs CAP_SYS_ADMIN)"
    return None


@pytest.mark.skipif(_can_rename_host() is not None, reason=str(_can_rename_host()))
def test_a_renamed_host_with_the_same_boot_is_still_this_machine() -> None:
    live = subprocess.Popen(["sleep", "30"])
    try:
        ident = liveness.capture(live.pid)
        assert ident is not None and ident.get("bootId"), "needs a boot id (Linux)"
        code = (
            "import json, sys; from jobgate.proc import liveness; "
            "print(json.dumps([liveness.host_name(), liveness.probe(json.loads(sys.argv[1]))]))"
        )
        proc = subprocess.run(
            [
                *["unshare", "-u", "sh", "-c", 'hostname jobgate-renamed && exec "$0" "$@"'],
                *[sys.executable, "-c", code, json.dumps(ident)],
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, PYTHONPATH=SRC),
        )
        assert proc.returncode == 0, proc.stderr
        host, (verdict, _why) = json.loads(proc.stdout)
        assert host == "jobgate-renamed" != ident["host"]
        assert verdict == liveness.ALIVE
    finally:
        live.kill()
        live.wait()


def _unshare_works(*flags: str) -> str | None:
    if shutil.which("unshare") is None:
        return "needs unshare(1)"
    probe = subprocess.run(["unshare", *flags, "--fork", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"unshare {' '.join(flags)} is not possible here: {probe.stderr!r}"
    return None


def _status_from(jg: Env, job_id: str, *unshare: str) -> dict[str, Any]:
    code = "import sys; from jobgate.cli.main import main; raise SystemExit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [
            *["unshare", *unshare, "--fork", sys.executable, "-c", code],
            *["--cwd", str(jg.workspace), "status", job_id, "--json"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=jg.env,
    )
    assert proc.returncode == 0, proc.stderr
    job: dict[str, Any] = json.loads(proc.stdout)["job"]
    return job


@native_only("pidfs inode numbers")
@pytest.mark.skipif(_unshare_works("-T") is not None, reason=str(_unshare_works("-T")))
def test_a_reader_in_another_time_namespace_still_sees_the_job_running(jg: Env) -> None:
    """Start ticks read shifted by a boottime offset; the pidfs inode still proves it."""
    job = start_running(jg, "sleep", "300")
    if "pidfsIno" not in job["commandProcess"]:
        pytest.skip("this kernel has no pidfs inode numbers (Linux < 6.9)")
    seen = _status_from(jg, job["id"], "-T", "--boottime", "1000")
    assert seen["status"] == "running", seen
    assert jg.job(job["id"])["status"] == "running"


@native_only("pid namespaces (NSpid)")
@pytest.mark.skipif(_unshare_works("-p") is not None, reason=str(_unshare_works("-p")))
@pytest.mark.parametrize("mount_proc", [True, False], ids=["own-proc", "host-proc"])
def test_a_reader_in_another_pid_namespace_never_writes_a_running_job_down_as_lost(
    jg: Env, mount_proc: bool
) -> None:
    job = start_running(jg, "sleep", "300")
    flags = ["-p", "-m", "--mount-proc"] if mount_proc else ["-p"]
    seen = _status_from(jg, job["id"], *flags)
    assert seen["status"] == "running", seen  # it cannot see the job's pids: no verdict
    assert jg.job(job["id"])["status"] == "running"


@native_only("pidfs inode numbers")
@pytest.mark.skipif(can_force_pid_reuse() is not None, reason=str(can_force_pid_reuse()))
def test_a_pid_that_now_names_a_thread_of_another_process_is_not_the_job() -> None:
    if liveness.pidfs_inode(os.getpid()) is None:
        pytest.skip("this kernel has no pidfs inode numbers (Linux < 6.9)")
    old = dead_identity()
    code = (
        "import sys, threading, time\n"
        "with open('/proc/sys/kernel/ns_last_pid', 'w') as fh: fh.write(sys.argv[1])\n"
        "t = threading.Thread(target=time.sleep, args=(30,), daemon=True); t.start()\n"
        "print(t.native_id, flush=True); time.sleep(30)\n"
    )
    for _attempt in range(20):
        host = subprocess.Popen(
            [sys.executable, "-c", code, str(old["pid"] - 1)], stdout=subprocess.PIPE
        )
        assert host.stdout is not None
        tid = int(host.stdout.readline())
        if tid == old["pid"]:
            break
        host.kill()
        host.wait()
    else:
        pytest.skip("could not place a thread on the freed pid")
    try:
        st = liveness.read_proc_stat(tid)
        assert st is not None
        # as if the thread had started in the very clock tick of the recorded process
        forged = dict(old, startTicks=st[1])
        verdict, _ = liveness.probe(forged)
        assert verdict == liveness.REUSED
    finally:
        host.kill()
        host.wait()


def test_a_process_whose_main_thread_exited_while_others_run_is_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", MAIN_THREAD_EXITS], stdout=subprocess.PIPE)
    try:
        ident = liveness.capture(proc.pid)
        assert ident is not None and proc.stdout is not None
        proc.stdout.readline()
        deadline = time.monotonic() + 10
        while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert psutil.Process(proc.pid).num_threads() > 1  # a "zombie" that still runs
        assert liveness.probe(ident)[0] == liveness.ALIVE
    finally:
        proc.kill()
        proc.wait()


def _start_in_pid_namespace(jg: Env, script: str) -> subprocess.CompletedProcess[str]:
    """Run ``sh -c script`` as pid 1 of a new pid namespace (with its own /proc)."""
    return subprocess.run(
        ["unshare", "-p", "-f", "-m", "--mount-proc", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=jg.env,
        cwd=jg.workspace,
    )


@native_only("pid namespaces (NSpid)")
@pytest.mark.skipif(_unshare_works("-p") is not None, reason=str(_unshare_works("-p")))
def test_a_job_of_a_pid_namespace_that_is_gone_is_written_down_lost(jg: Env) -> None:
    """A container ran a job and exited: the kernel killed every process in it, so no
    one recorded an end. Readers outside must not believe it runs forever."""
    start = f"{sys.executable} -m jobgate run --background --name boxed -- sleep 300"
    done = _start_in_pid_namespace(jg, f"{start} && sleep 1")
    assert done.returncode == 0, done.stderr
    listed = next(j for j in jg.cli_json("status", "--all")["jobs"] if j["name"] == "boxed")
    job = jg.cli_json("status", listed["id"])["job"]  # the full record: with identities
    assert job["workerProcess"]["pidNs"] != liveness.pid_namespace()
    if liveness.pid_namespace() != pidns.ROOT_PID_NS:
        pytest.skip("only a reader in the initial pid namespace sees every namespace")
    seen = jg.job(job["id"])
    assert seen["status"] == "failed" and seen["phase"] == "lost", seen
    assert "pid namespace no longer exists" in seen["errorMessage"]


@native_only("pid namespaces (NSpid)")
@pytest.mark.skipif(_unshare_works("-p") is not None, reason=str(_unshare_works("-p")))
def test_a_job_running_in_another_pid_namespace_is_seen_running_and_then_lost(
    jg: Env,
) -> None:
    if liveness.pid_namespace() != pidns.ROOT_PID_NS:
        pytest.skip("only a reader in the initial pid namespace sees every namespace")
    start = f"{sys.executable} -m jobgate run --background --name boxed -- sleep 300"
    box = subprocess.Popen(
        ["unshare", "-p", "-f", "-m", "--mount-proc", "sh", "-c", f"{start}; exec sleep 300"],
        env=jg.env,
        cwd=jg.workspace,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        job = started_job_named(jg, "boxed")
        assert jg.job(job["id"])["status"] == "running"  # found through its NSpid
        inside = [
            p
            for p in psutil.process_iter()
            if _env(p).get("JOBGATE_JOB_ID") == job["id"]
            or _env(p).get("JOBGATE_WORKER_OF") == job["id"]
        ]
        assert len(inside) == 2
        for proc in inside:  # killed from outside: the box itself lives on
            proc.kill()
        seen = jg.wait_for(job["id"], lambda j: j["status"] != "running", timeout=20)
        assert seen["phase"] == "lost", seen
    finally:
        kill_box(box)


def _env(proc: psutil.Process) -> dict[str, str]:
    try:
        return proc.environ()
    except psutil.Error:
        return {}


@native_only("pid namespaces (NSpid)")
@pytest.mark.skipif(_unshare_works("-p") is not None, reason=str(_unshare_works("-p")))
@pytest.mark.skipif(shutil.which("nsenter") is None, reason="needs nsenter(1)")
def test_a_process_newer_than_the_cached_namespace_scan_is_not_called_gone() -> None:
    box = subprocess.Popen(
        ["unshare", "-p", "-f", "-m", "--mount-proc", "sleep", "300"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    late = None
    try:
        deadline = time.monotonic() + 20
        while not psutil.Process(box.pid).children():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        init = psutil.Process(box.pid).children()[0].pid
        pidns._scans.clear()
        pidns.scan()  # the scan a reader made a moment ago (still within its TTL)
        late = subprocess.Popen(["nsenter", "-t", str(init), "-p", "-m", "sleep", "300"])
        deadline = time.monotonic() + 20
        while not psutil.Process(late.pid).children():  # nsenter forks into the namespace
            assert time.monotonic() < deadline
            time.sleep(0.02)
        inside = psutil.Process(late.pid).children()[0].pid
        ident = liveness.capture(inside)
        assert ident is not None
        with open(f"/proc/{inside}/status") as fh:
            nspid = next(line for line in fh if line.startswith("NSpid:")).split()
        ident["pid"] = int(nspid[-1])  # as recorded inside the namespace
        ident["pidNs"] = os.readlink(f"/proc/{inside}/ns/pid")
        assert ident["pidNs"] != liveness.pid_namespace()
        verdict, why = liveness.probe(ident)
        assert verdict == liveness.ALIVE, why
    finally:
        if late is not None:
            for child in psutil.Process(late.pid).children():
                child.kill()
            late.kill()
            late.wait()
        kill_box(box)
