"""``jobgate hook EVENT`` end to end, with real background jobs: Stop names only jobs that
really run and waitForJobs blocks a bounded number of times, every bad input fails open,
and the help and ``--cwd`` work (the Stop note's stdout fields, StopFailure and Claude
Code's own background tasks: test_stop_note.py; session-start/-end: test_sessions.py;
user-prompt-submit: test_announcements.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Env, assert_fail_open, hook_payload, kill9, run_hook, start_running

pytestmark = pytest.mark.timeout(90)


def _config(jg: Env, **settings: Any) -> None:
    for key, value in settings.items():
        text = json.dumps(value) if not isinstance(value, str) else value
        proc = jg.cli("config", "set", key, text)
        assert proc.returncode == 0, proc.stderr


# -- stop ----------------------------------------
def test_stop_names_each_running_job_of_the_session_and_how_to_act(jg: Env) -> None:
    a = start_running(jg, "sleep", "300", session="s1", name="build")
    b = start_running(jg, "sleep", "300", session="s1")
    other = start_running(jg, "sleep", "300", session="s2")
    proc = run_hook(jg, "stop", session="s1")
    assert proc.returncode == 0
    assert "decision" not in json.loads(proc.stdout)  # a note, not a block
    lines = proc.stderr.splitlines()
    assert len(lines) == 2
    assert any(f"{a['id']} (build)" in line for line in lines)
    for job in (a, b):
        assert f"jobgate status {job['id']}" in proc.stderr
        assert f"jobgate cancel {job['id']}" in proc.stderr
    assert other["id"] not in proc.stderr


def test_stop_never_names_a_killed_job_and_records_it_lost(jg: Env) -> None:
    live = start_running(jg, "sleep", "300", session="s1")
    dead = start_running(jg, "sleep", "300", session="s1")
    kill9(dead["pid"], dead["commandPid"])
    proc = run_hook(jg, "stop", session="s1")
    assert proc.returncode == 0
    assert dead["id"] not in proc.stderr + proc.stdout
    assert live["id"] in proc.stderr
    record = jg.job(dead["id"])
    assert record["status"] == "failed" and record["phase"] == "lost"
    assert f"pid {dead['pid']}" in record["errorMessage"]


def test_stop_with_the_lock_held_still_never_names_a_dead_job(jg: Env) -> None:
    dead = start_running(jg, "sleep", "300", session="s1")
    kill9(dead["pid"], dead["commandPid"])
    store = jg.store()
    with store.lock():
        started = time.monotonic()
        proc = run_hook(jg, "stop", session="s1")
        elapsed = time.monotonic() - started
        assert proc.returncode == 0 and proc.stdout == ""
        assert dead["id"] not in proc.stderr
        assert elapsed < 5
        # read-only view: nothing could be written while the lock was held
        assert store.read_index()[0]["status"] == "running"
    run_hook(jg, "stop", session="s1")
    assert jg.job(dead["id"])["phase"] == "lost"


def test_stop_without_a_session_sees_every_job_and_honours_the_env_session(jg: Env) -> None:
    a = start_running(jg, "sleep", "300", session="s1")
    b = start_running(jg, "sleep", "300", session="s2")
    everything = run_hook(jg, "stop", session=None)
    assert a["id"] in everything.stderr and b["id"] in everything.stderr
    from_env = run_hook(jg, "stop", session=None, extra_env={"JOBGATE_SESSION_ID": "s2"})
    assert a["id"] not in from_env.stderr and b["id"] in from_env.stderr


@pytest.mark.parametrize("event", ["stop", "user-prompt-submit", "session-end"])
def test_a_hook_in_a_fresh_workspace_prints_nothing_and_creates_no_state(
    jg: Env, event: str
) -> None:
    proc = run_hook(jg, event)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert not jg.home.exists()


def test_stop_uses_the_payload_cwd_not_the_process_cwd(jg: Env, tmp_path: Path) -> None:
    job = start_running(jg, "sleep", "300", session="s1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = jg.cli("hook", "stop", input=json.dumps(hook_payload(jg, "stop", "s1")), cwd=elsewhere)
    assert job["id"] in proc.stderr
    payload = hook_payload(jg, "stop", "s1", cwd=str(elsewhere))
    assert job["id"] not in run_hook(jg, "stop", payload).stderr


# -- waitForJobs -----------------------------------------------------------------------------
def _blocked(proc: subprocess.CompletedProcess[str]) -> dict[str, Any] | None:
    """The Stop hook's block (``decision``, ``reason``), or None when it let the stop
    through (with or without a ``systemMessage`` note)."""
    assert proc.returncode == 0, proc.stderr
    if not proc.stdout.strip():
        return None
    out: dict[str, Any] = json.loads(proc.stdout)
    if "decision" not in out:
        assert set(out) == {"systemMessage"}, out
        return None
    assert out["decision"] == "block" and out["reason"]
    return out


def test_wait_for_jobs_blocks_at_most_max_stop_blocks_times_in_a_row(jg: Env) -> None:
    _config(jg, waitForJobs=True, maxStopBlocks=2)
    job = start_running(jg, "sleep", "300", session="s1")
    results = [
        _blocked(run_hook(jg, "stop", session="s1", stop_hook_active=i > 0)) for i in range(4)
    ]
    assert [r is not None for r in results] == [True, True, False, False]
    first = results[0]
    assert first is not None
    assert job["id"] in first["reason"] and "jobgate wait" in first["reason"]
    # a new user prompt ends the row: the next Stop may block again
    run_hook(jg, "user-prompt-submit", session="s1", prompt="go on")
    assert _blocked(run_hook(jg, "stop", session="s1")) is not None
    # once the job is gone the row is forgotten, not kept forever
    kill9(job["pid"], job["commandPid"])
    assert _blocked(run_hook(jg, "stop", session="s1")) is None
    state = json.loads((jg.state_dir() / "hooks-state.json").read_text())
    assert "s1" not in state["sessions"]


def test_wait_for_jobs_never_blocks_for_a_dead_job_or_another_sessions_job(jg: Env) -> None:
    _config(jg, waitForJobs=True)
    dead = start_running(jg, "sleep", "300", session="s1")
    start_running(jg, "sleep", "300", session="s2")
    kill9(dead["pid"], dead["commandPid"])
    proc = run_hook(jg, "stop", session="s1")
    assert _blocked(proc) is None
    assert proc.stderr == ""


def test_wait_for_jobs_starts_a_new_row_when_another_job_starts(jg: Env) -> None:
    _config(jg, waitForJobs=True, maxStopBlocks=1)
    start_running(jg, "sleep", "300", session="s1")
    assert _blocked(run_hook(jg, "stop", session="s1")) is not None
    assert _blocked(run_hook(jg, "stop", session="s1", stop_hook_active=True)) is None
    second = start_running(jg, "sleep", "300", session="s1")
    again = _blocked(run_hook(jg, "stop", session="s1", stop_hook_active=True))
    assert again is not None and second["id"] in again["reason"]


def test_wait_for_jobs_off_by_default_never_blocks(jg: Env) -> None:
    start_running(jg, "sleep", "300", session="s1")
    assert _blocked(run_hook(jg, "stop", session="s1")) is None


# -- output ----------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        {"systemMessage": 'quote " backslash \\ tab \t nl \n esc \x1b del \x7f'},
        {"reason": "ü ß € 中文 🚀 \U0010ffff", "decision": "block"},
        {"surrogate": "\udcff", "empty": ""},
        {"hookSpecificOutput": {"hookEventName": "X", "n": [1, -2, True, False, None]}},
    ],
)
def test_hook_output_is_json_that_reads_back_the_same(value: dict[str, Any]) -> None:
    from jobgate.state.jsonload import dumps  # what the hook shell prints with

    text = dumps(value)
    assert text.isascii() and "\n" not in text
    assert json.loads(text) == value


# -- fail open ----------------------------------------
@pytest.mark.parametrize(
    ("event", "payload", "fragment"),
    [
        ("stop", "not json", "not valid JSON"),
        ("stop", "", "empty"),
        ("stop", "[1, 2]", "not a JSON object"),
        ("stop", '"text"', "not a JSON object"),
        ("stop", "\xff\xfe", "not valid JSON"),
        ("stop", '{"session_id": 5}', "session_id"),
        ("stop", '{"hook_event_name": "SessionEnd"}', "SessionEnd"),
        ("stop", '{"cwd": "/no/such/dir/anywhere", "hook_event_name": "Stop"}', "does not exist"),
        ("session-end", '{"stop_hook_active": 1}', "stop_hook_active"),
        ("stop", "{}", "no 'hook_event_name' field"),
        ("stop", '{"session_id": "s1", "hook_event_name": "Stop"}', "no 'cwd' field"),
        ("session-end", '{"session_id": "s1", "cwd": "/"}', "no 'hook_event_name' field"),
        ("user-prompt-submit", "{", "not valid JSON"),
        ("pre-tool-use", "{}", "unknown hook event"),
    ],
)
def test_bad_input_fails_open_with_one_line(
    jg: Env, event: str, payload: str, fragment: str
) -> None:
    line = assert_fail_open(run_hook(jg, event, payload))
    assert fragment in line
    assert line.startswith(f"jobgate hook {event}: ")


def test_missing_event_and_extra_arguments_fail_open(jg: Env) -> None:
    assert "missing EVENT" in assert_fail_open(jg.cli("hook", input="{}"))
    extra = jg.cli("hook", "stop", "--now", input="{}")
    assert "unexpected arguments" in assert_fail_open(extra)


def test_stop_fails_open_on_an_unreadable_config(jg: Env) -> None:
    start_running(jg, "sleep", "300", session="s1")
    (jg.state_dir() / "config.json").write_text("{broken")
    assert "config" in assert_fail_open(run_hook(jg, "stop"))


def test_stop_fails_open_on_a_symlinked_state_dir(jg: Env, tmp_path: Path) -> None:
    start_running(jg, "sleep", "300", session="s1")
    state = jg.state_dir()
    real = tmp_path / "moved"
    state.rename(real)
    state.symlink_to(real)
    assert "symlink" in assert_fail_open(run_hook(jg, "stop"))


def test_a_damaged_hook_state_file_is_treated_as_empty(jg: Env) -> None:
    _config(jg, waitForJobs=True)
    start_running(jg, "sleep", "300", session="s1")
    (jg.state_dir() / "hooks-state.json").write_text("{nope")
    assert _blocked(run_hook(jg, "stop")) is not None
    state = json.loads((jg.state_dir() / "hooks-state.json").read_text())
    assert state["sessions"]["s1"]["stopBlocks"] == 1


def test_hook_state_never_touches_the_settings(jg: Env) -> None:
    _config(jg, waitForJobs=True, maxStopBlocks=5)
    before = (jg.state_dir() / "config.json").read_text()
    start_running(jg, "sleep", "300", session="s1")
    run_hook(jg, "stop")
    run_hook(jg, "user-prompt-submit")
    assert (jg.state_dir() / "config.json").read_text() == before


# -- help ----------------------------------------
def test_hook_help_shows_the_events_and_examples(jg: Env) -> None:
    proc = jg.cli("hook", "--help")
    assert proc.returncode == 0
    for word in ("stop", "session-start", "session-end", "user-prompt-submit", "examples:"):
        assert word in proc.stdout


def test_main_help_lists_the_hook_command(jg: Env) -> None:
    proc = jg.cli("--help")
    assert proc.returncode == 0
    assert "hook" in proc.stdout and "Claude Code hook" in proc.stdout


def test_hook_through_argparse_with_a_global_cwd(jg: Env, tmp_path: Path) -> None:
    job = start_running(jg, "sleep", "300", session="s1")
    proc = jg.cli(
        "--cwd", str(jg.workspace), "hook", "stop", input='{"session_id": "s1"}', cwd=tmp_path
    )
    assert proc.returncode == 0 and job["id"] in proc.stderr


@pytest.mark.parametrize("where", ["before", "after", "equals"])
def test_hook_by_hand_names_the_workspace_with_cwd_after_hook(jg: Env, where: str) -> None:
    job = start_running(jg, "sleep", "300", session="s1")
    ws = str(jg.workspace)
    args = {
        "before": ["hook", "--cwd", ws, "stop"],
        "after": ["hook", "stop", "--cwd", ws],
        "equals": ["hook", f"--cwd={ws}", "stop"],
    }[where]
    proc = jg.cli(*args, input='{"session_id": "s1"}', cwd="/")
    assert proc.returncode == 0 and job["id"] in json.loads(proc.stdout)["systemMessage"]
    assert job["id"] in proc.stderr and "fails open" not in proc.stderr


def test_hook_help_examples_really_run(jg: Env, tmp_path: Path) -> None:
    """Every `echo ... | jobgate hook ...` example in `jobgate hook --help` does its work."""
    import re
    import shlex

    help_text = jg.cli("hook", "--help").stdout
    examples = re.findall(r"^  (echo .*\| .*jobgate hook .*)$", help_text, re.MULTILINE)
    assert len(examples) >= 2, help_text
    env_file = tmp_path / "env"
    for line in examples:
        line = line.replace("/repo", shlex.quote(str(jg.workspace)))
        line = line.replace("/tmp/env", shlex.quote(str(env_file)))
        line = line.replace("jobgate hook", f"{shlex.quote(sys.executable)} -m jobgate hook")
        proc = subprocess.run(
            ["sh", "-c", line], env=jg.env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert "fails open" not in proc.stderr, (line, proc.stderr)
    assert "export JOBGATE_SESSION_ID=" in env_file.read_text()
