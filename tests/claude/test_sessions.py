"""``jobgate hook session-start`` and ``session-end`` end to end: session-start exports a
safely quoted id, session-end cancels only its session's jobs (whole trees)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Env, assert_fail_open, hook_payload, kill9, pid_alive, run_hook, start_running

pytestmark = pytest.mark.timeout(90)


# -- session-start ----------------------------------------
HOSTILE_ID = 'a\'b; rm -rf x $(y) `z` "q" \\ end'


def test_session_start_writes_a_quoted_export_that_sh_sources_back(jg: Env, tmp_path: Path) -> None:
    env_file = tmp_path / "claude-env.sh"
    env_file.write_text("export OTHER=1")  # no trailing newline: ours must not glue on
    proc = run_hook(
        jg, "session-start", session=HOSTILE_ID, extra_env={"CLAUDE_ENV_FILE": str(env_file)}
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    marker = tmp_path / "x"
    marker.mkdir()
    out = subprocess.run(
        ["sh", "-c", '. "$1" && printf "%s|%s" "$JOBGATE_SESSION_ID" "$OTHER"', "sh", env_file],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert out.stdout == f"{HOSTILE_ID}|1"
    assert marker.exists()  # the id's "rm -rf x" was never run


def test_session_start_without_claude_env_file_does_nothing(jg: Env, tmp_path: Path) -> None:
    env = dict(jg.env)
    env.pop("CLAUDE_ENV_FILE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "jobgate", "hook", "session-start"],
        input=json.dumps(hook_payload(jg, "session-start")),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert not jg.home.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]


def test_session_start_without_a_session_id_fails_open(jg: Env, tmp_path: Path) -> None:
    env_file = tmp_path / "env.sh"
    proc = run_hook(jg, "session-start", session=None, extra_env={"CLAUDE_ENV_FILE": str(env_file)})
    assert "session_id" in assert_fail_open(proc)
    assert not env_file.exists()


@pytest.mark.parametrize("escape", ["\\udcff", "\\ud800", "a\\udfffb"])
def test_session_start_refuses_a_session_id_that_is_not_unicode_text(
    jg: Env, tmp_path: Path, escape: str
) -> None:
    """A lone surrogate (a JSON escape, never a real session id) would reach the env
    file as a byte that is not UTF-8, sourced by every later command of the session."""
    env_file = tmp_path / "env.sh"
    env_file.write_bytes(b"export OTHER=1\n")
    payload = json.dumps(hook_payload(jg, "session-start", session="PLACEHOLDER"))
    payload = payload.replace('"PLACEHOLDER"', f'"{escape}"')
    proc = jg.cli("hook", "session-start", input=payload, env={"CLAUDE_ENV_FILE": str(env_file)})
    assert "'session_id' is not valid Unicode text" in assert_fail_open(proc)
    assert env_file.read_bytes() == b"export OTHER=1\n"


# -- session-end ----------------------------------------
def test_session_end_cancels_only_the_sessions_jobs_and_records_session_ended(jg: Env) -> None:
    mine = [start_running(jg, "sleep", "300", session="s1") for _ in range(2)]
    other = start_running(jg, "sleep", "300", session="s2")
    proc = run_hook(jg, "session-end", session="s1", reason="prompt_input_exit")
    assert proc.returncode == 0 and proc.stdout == ""
    for job in mine:
        record = jg.wait_for(job["id"], lambda j: j["status"] != "running", timeout=20)
        assert record["status"] == "cancelled"
        assert record["errorMessage"] == "session ended"
        assert not pid_alive(job["commandPid"])
        assert job["id"] in proc.stderr
    assert jg.job(other["id"])["status"] == "running"
    assert pid_alive(other["commandPid"])
    listed = {j["id"] for j in jg.cli_json("status", "--all")["jobs"]}
    assert {j["id"] for j in [*mine, other]} <= listed  # records kept


def test_session_end_ends_the_whole_process_tree(jg: Env, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    job = start_running(jg, "sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait", session="s1")
    deadline = time.monotonic() + 10
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int(pidfile.read_text())
    run_hook(jg, "session-end", session="s1")
    jg.wait_for(job["id"], lambda j: j["status"] == "cancelled", timeout=20)
    deadline = time.monotonic() + 10
    while pid_alive(grandchild):
        assert time.monotonic() < deadline, "grandchild survived session end"
        time.sleep(0.05)


def test_session_end_records_a_dead_job_lost_instead_of_cancelling_it(jg: Env) -> None:
    dead = start_running(jg, "sleep", "300", session="s1")
    kill9(dead["pid"], dead["commandPid"])
    proc = run_hook(jg, "session-end", session="s1")
    assert proc.returncode == 0 and proc.stdout == ""
    assert jg.job(dead["id"])["phase"] == "lost"


def test_session_end_without_any_session_cancels_nothing(jg: Env) -> None:
    job = start_running(jg, "sleep", "300", session="s1")
    proc = run_hook(jg, "session-end", session=None)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no job was cancelled" in proc.stderr
    assert jg.job(job["id"])["status"] == "running"
