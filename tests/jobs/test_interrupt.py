"""Ctrl-C of a foreground ``jobgate run``: the user stopped it on purpose, so it is
recorded ``cancelled`` (not ``failed``) and jobgate still exits 130 like a shell."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from conftest import Env, pid_alive


def _foreground(jg: Env, *command: str) -> subprocess.Popen[bytes]:
    # its own process group, as a terminal's foreground job: Ctrl-C goes to the group
    return subprocess.Popen(
        [sys.executable, "-m", "jobgate", "run", "--", *command],
        cwd=jg.workspace,
        env=jg.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _running_job(jg: Env, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = jg.cli_json("status", "--all")["jobs"]
        if jobs and jobs[0]["status"] == "running" and jobs[0].get("commandPid"):
            job: dict[str, Any] = jobs[0]
            return job
        time.sleep(0.1)
    raise AssertionError("the foreground job never started")


def test_ctrl_c_of_a_foreground_run_is_recorded_cancelled_and_exits_130(jg: Env) -> None:
    fg = _foreground(jg, "sleep", "30")
    try:
        job = _running_job(jg)
        os.killpg(fg.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        fg.communicate(timeout=30)
    finally:
        if fg.poll() is None:
            fg.kill()
        fg.wait()
    assert fg.returncode == 130
    final = jg.job(job["id"])
    assert final["status"] == "cancelled", final
    assert final["phase"] == "cancelled"
    assert "interrupted" in final["errorMessage"]
    assert final["exitCode"] == 130 and final["signal"] == signal.SIGINT
    assert not pid_alive(job["commandPid"])


def test_a_command_that_exits_0_on_ctrl_c_is_still_completed(jg: Env) -> None:
    fg = _foreground(jg, "sh", "-c", "trap 'kill $!; exit 0' INT; sleep 30 & wait")
    try:
        job = _running_job(jg)
        time.sleep(0.3)  # the trap is set once sh runs
        os.killpg(fg.pid, signal.SIGINT)
        fg.communicate(timeout=30)
    finally:
        if fg.poll() is None:
            fg.kill()
        fg.wait()
    assert fg.returncode == 0
    assert jg.job(job["id"])["status"] == "completed"
