"""Exit codes a script can rely on: ``result`` and ``log --follow`` say 1 for a job that
did not complete, as ``wait`` does, while still printing what they print."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import Env, kill9, start_running


def test_result_of_a_failed_job_prints_it_and_exits_1(jg: Env) -> None:
    assert jg.cli("run", "--", "sh", "-c", "echo boom; exit 3").returncode == 3
    proc = jg.cli("result")
    assert proc.returncode == 1, proc.stderr
    assert "boom" in proc.stdout
    as_json = jg.cli("result", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["job"]["status"] == "failed"


def test_result_of_a_cancelled_job_prints_it_and_exits_1(jg: Env) -> None:
    job = start_running(jg, "sleep", "300")
    assert jg.cli("cancel", job["id"], "--grace", "1").returncode == 0
    proc = jg.cli("result", job["id"], "--json")
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["job"]["status"] == "cancelled"


def test_result_of_a_completed_job_exits_0(jg: Env) -> None:
    assert jg.cli("run", "--", "sh", "-c", "echo fine").returncode == 0
    proc = jg.cli("result")
    assert proc.returncode == 0, proc.stderr
    assert "fine" in proc.stdout


def _follow(jg: Env, job_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobgate", "log", job_id, "--follow"],
        cwd=jg.workspace,
        env=jg.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def test_log_follow_of_a_job_that_ends_lost_exits_1(jg: Env) -> None:
    job = start_running(jg, "sh", "-c", "echo first-line; exec sleep 300")
    follower = _follow(jg, job["id"])
    try:
        time.sleep(0.5)
        assert follower.poll() is None  # still following a live job
        kill9(job["pid"], job["commandPid"])
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
        follower.wait()
    assert follower.returncode == 1
    assert "first-line" in out and "lost" in err


def test_log_follow_of_a_job_that_completes_exits_0(jg: Env) -> None:
    job = start_running(jg, "sh", "-c", "echo hi; sleep 1")
    follower = _follow(jg, job["id"])
    try:
        out, _err = follower.communicate(timeout=30)
    finally:
        follower.kill()
        follower.wait()
    assert follower.returncode == 0
    assert "hi" in out
