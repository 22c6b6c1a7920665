"""A job's life past its command, with real processes: --timeout and --stall end the
whole tree and say why, restart and --retries make linked attempts, cancel --all and
wait JOB.../--all act on several jobs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from conftest import Env
from jobgate.state import model


def _bg(jg: Env, *args: str) -> dict[str, Any]:
    proc = jg.cli("run", "--background", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    brief: dict[str, Any] = json.loads(proc.stdout)
    return brief


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_timeout_ends_the_whole_tree_and_records_failed_timeout(jg: Env, tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    job = _bg(jg, "--timeout", "1s", "--", "sh", "-c", f"sleep 300 & echo $! > {child_pid}; wait")
    done = jg.wait_for(job["id"], model.is_finished, timeout=60)
    assert done["status"] == "failed" and done["phase"] == "timeout", done
    assert "timed out" in done["errorMessage"]
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 20
    while not _gone(pid):
        assert time.monotonic() < deadline, f"grandchild {pid} outlived the timeout"
        time.sleep(0.05)


def test_stall_ends_a_silent_job_but_not_a_talking_one(jg: Env) -> None:
    silent = _bg(jg, "--stall", "1s", "--", "sh", "-c", "echo start; sleep 300")
    talking = _bg(
        jg, "--stall", "1.5s", "--", "sh", "-c", "for i in 1 2 3 4 5 6; do echo $i; sleep 0.3; done"
    )
    done = jg.wait_for(silent["id"], model.is_finished, timeout=60)
    assert done["status"] == "failed" and done["phase"] == "stalled", done
    assert jg.wait_for(talking["id"], model.is_finished, timeout=60)["status"] == "completed"


def test_the_workspace_timeout_setting_applies_without_the_option(jg: Env) -> None:
    assert jg.cli("config", "set", "timeout", "1s").returncode == 0
    job = _bg(jg, "--", "sleep", "300")
    done = jg.wait_for(job["id"], model.is_finished, timeout=60)
    assert done["phase"] == "timeout"


def test_restart_of_a_lost_or_cancelled_job_makes_a_linked_new_job(jg: Env) -> None:
    old = _bg(jg, "--name", "again", "--", "sleep", "300")
    jg.wait_for(old["id"], lambda j: j["status"] == "running")
    assert jg.cli("cancel", old["id"], "--grace", "1").returncode == 0
    proc = jg.cli("restart", old["id"], "--json")
    assert proc.returncode == 0, proc.stderr
    fresh = json.loads(proc.stdout)
    assert fresh["retryOf"] == old["id"]
    record = jg.job(fresh["id"])
    assert record["name"] == "again" and record["command"] == ["sleep", "300"]
    assert record["cwd"] == os.path.realpath(jg.workspace)
    assert jg.job(old["id"])["retriedBy"] == fresh["id"]
    assert jg.cli("restart", fresh["id"]).returncode == 1  # still running: refused
    jg.cli("cancel", fresh["id"], "--grace", "1")


def test_retries_run_a_failing_job_again_and_every_attempt_is_recorded(
    jg: Env, tmp_path: Path
) -> None:
    count = tmp_path / "count"
    script = f"echo x >> {count}; [ $(wc -l < {count}) -ge 3 ]"
    first = _bg(jg, "--retries", "3", "--", "sh", "-c", script)
    deadline = time.monotonic() + 60
    job = jg.job(first["id"])
    attempts = [job]
    while True:
        assert time.monotonic() < deadline, attempts
        nxt = attempts[-1].get("retriedBy")
        if nxt:
            attempts.append(jg.job(nxt))
            continue
        if attempts[-1]["status"] == "completed":
            break
        time.sleep(0.2)
        attempts[-1] = jg.job(attempts[-1]["id"])
    assert [a["status"] for a in attempts] == ["failed", "failed", "completed"]
    assert attempts[2]["attempt"] == 3
    assert attempts[2]["attempts"] == [attempts[0]["id"], attempts[1]["id"]]
    assert attempts[1]["retryOf"] == attempts[0]["id"]


def test_cancel_all_ends_every_active_job_queued_ones_first(jg: Env) -> None:
    jg.cli("config", "set", "maxParallel", "1")
    running = _bg(jg, "--queue", "--", "sleep", "300")
    queued = _bg(jg, "--queue", "--", "sleep", "300")
    jg.wait_for(running["id"], lambda j: j["status"] == "running")
    proc = jg.cli("cancel", "--all", "--grace", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    ids = [o["job"]["id"] for o in json.loads(proc.stdout)["cancelled"]]
    assert ids == [queued["id"], running["id"]]
    assert jg.job(queued["id"])["startedAt"] is None  # never started in the freed slot


def test_wait_many_exits_0_only_if_all_completed(jg: Env) -> None:
    ok = _bg(jg, "--", "sh", "-c", "sleep 0.3")
    bad = _bg(jg, "--", "sh", "-c", "sleep 0.3; exit 3")
    assert jg.cli("wait", ok["id"], bad["id"], "--timeout", "60").returncode == 1
    ok2 = _bg(jg, "--", "true")
    assert jg.cli("wait", ok2["id"], ok["id"], "--timeout", "60").returncode == 0
    slow = _bg(jg, "--", "sleep", "300")
    assert jg.cli("wait", "--all", "--timeout", "0.5").returncode == 124
    jg.cli("cancel", slow["id"], "--grace", "1")
    done = jg.cli("wait", "--all", "--json", "--timeout", "60")
    assert done.returncode == 0 and json.loads(done.stdout)["jobs"] == []


def test_tasks_queue_and_take_their_agent_profiles_limits(jg: Env) -> None:
    assert jg.cli("config", "set", "agents.nap", '["sleep", "{prompt}"]').returncode == 0
    assert jg.cli("config", "set", "agents.nap.timeout", "1s").returncode == 0
    assert jg.cli("config", "set", "maxParallel", "1").returncode == 0
    first = jg.cli("task", "--agent", "nap", "--queue", "--json", "300")
    second = jg.cli("task", "--agent", "nap", "--queue", "--json", "0.1")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert two["kind"] == "task" and two["queue"]["reason"] == "slot"
    assert jg.wait_for(one["id"], model.is_finished, timeout=60)["phase"] == "timeout"
    assert jg.wait_for(two["id"], model.is_finished, timeout=60)["status"] == "completed"
