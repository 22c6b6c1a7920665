"""Every SessionStart and SessionEnd Claude Code sends, run as ``jobgate hook ...`` with real
background jobs: SessionEnd cancels a session's jobs only when the session really ends
(``sessionEndCancels``; ``clear`` and ``resume`` end a conversation, not the work), never
for a subagent; SessionStart re-exports the current session id at every source, one line
in the env file."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import Env, assert_fail_open, pid_alive, run_hook, start_running

pytestmark = pytest.mark.timeout(120)

#: Claude Code 2.1.197's SessionEnd reasons, and whether the client exits with each
EXITS = {
    "prompt_input_exit": True,
    "logout": True,
    "other": True,
    "bypass_permissions_disabled": True,
    "clear": False,
    "resume": False,
}


def _set(jg: Env, key: str, value: str) -> None:
    proc = jg.cli("config", "set", key, value)
    assert proc.returncode == 0, proc.stderr


def _end(jg: Env, session: str, reason: str, **fields: object) -> str:
    """Run session-end; its stderr (it never prints to stdout)."""
    proc = run_hook(jg, "session-end", session=session, reason=reason, **fields)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    assert "fails open" not in proc.stderr, proc.stderr
    return proc.stderr


# -- SessionEnd -----------------------------------------------------------------------------
def test_by_default_only_the_reasons_that_exit_the_client_cancel_jobs(jg: Env) -> None:
    jobs = {reason: start_running(jg, "sleep", "300", session=f"s-{reason}") for reason in EXITS}
    for reason in EXITS:
        _end(jg, f"s-{reason}", reason)
    for reason, exits in EXITS.items():
        job = jobs[reason]
        if exits:
            record = jg.wait_for(job["id"], lambda j: j["status"] == "cancelled", timeout=20)
            assert record["errorMessage"] == "session ended"
            assert not pid_alive(job["commandPid"])
        else:
            assert jg.job(job["id"])["status"] == "running", reason
            assert pid_alive(job["commandPid"]), reason


@pytest.mark.parametrize("reason", ["clear", "resume"])
def test_clear_and_resume_keep_the_jobs_and_say_so(jg: Env, reason: str) -> None:
    job = start_running(jg, "sleep", "300", session="s1")
    err = _end(jg, "s1", reason)
    assert f"1 job(s) keep running ({job['id']})" in err
    assert f"reason {reason!r} ends a conversation, not the session" in err
    assert "jobgate cancel ID" in err
    assert jg.job(job["id"])["status"] == "running" and pid_alive(job["commandPid"])


def test_always_cancels_at_clear_too(jg: Env) -> None:
    _set(jg, "sessionEndCancels", "always")
    job = start_running(jg, "sleep", "300", session="s1")
    _end(jg, "s1", "clear")
    record = jg.wait_for(job["id"], lambda j: j["status"] == "cancelled", timeout=20)
    assert record["errorMessage"] == "session ended"
    assert not pid_alive(job["commandPid"])


def test_never_keeps_the_jobs_even_when_the_client_exits(jg: Env) -> None:
    _set(jg, "sessionEndCancels", "never")
    job = start_running(jg, "sleep", "300", session="s1")
    err = _end(jg, "s1", "prompt_input_exit")
    assert "sessionEndCancels is never" in err
    assert jg.job(job["id"])["status"] == "running" and pid_alive(job["commandPid"])


def test_a_reason_jobgate_does_not_know_cancels_nothing(jg: Env) -> None:
    job = start_running(jg, "sleep", "300", session="s1")
    err = _end(jg, "s1", "some_future_reason")
    assert "'some_future_reason' is not known to end the session" in err
    assert jg.job(job["id"])["status"] == "running" and pid_alive(job["commandPid"])


@pytest.mark.parametrize("mode", ["exit-only", "always"])
def test_a_subagents_session_end_never_cancels_its_parent_sessions_jobs(jg: Env, mode: str) -> None:
    _set(jg, "sessionEndCancels", mode)
    _set(jg, "waitForJobs", "true")
    job = start_running(jg, "sleep", "300", session="s1")
    run_hook(jg, "stop", session="s1")  # a wait-block: the session's hook state has a row
    before = (jg.state_dir() / "hooks-state.json").read_text()
    err = _end(jg, "s1", "other", agent_id="a1b2c3", agent_type="general-purpose")
    assert "no job was cancelled: it comes from a subagent (agent_id a1b2c3)" in err
    assert jg.job(job["id"])["status"] == "running" and pid_alive(job["commandPid"])
    assert (jg.state_dir() / "hooks-state.json").read_text() == before  # the parent's, kept


def test_a_hand_edited_bad_session_end_setting_is_warned_about_and_exit_only_used(
    jg: Env,
) -> None:
    job = start_running(jg, "sleep", "300", session="s1")
    (jg.state_dir() / "config.json").write_text(json.dumps({"sessionEndCancels": "sometimes"}))
    err = _end(jg, "s1", "clear")
    assert (
        'jobgate: warning: config.json: sessionEndCancels: bad value "sometimes" '
        '(expected one of: exit-only, always, never); using the default "exit-only"'
    ) in err
    assert jg.job(job["id"])["status"] == "running"


def test_session_end_cancels_setting_is_validated_by_config_set(jg: Env) -> None:
    proc = jg.cli("config", "set", "sessionEndCancels", "sometimes")
    assert proc.returncode == 2
    assert "expected one of: exit-only, always, never" in proc.stderr
    assert jg.cli_json("config", "get")["sessionEndCancels"] == "exit-only"
    _set(jg, "sessionEndCancels", "ALWAYS")
    assert jg.cli_json("config", "get")["sessionEndCancels"] == "always"


# -- SessionStart ---------------------------------------------------------------------------
def _sourced(env_file: Path) -> str:
    out = subprocess.run(
        ["sh", "-c", '. "$1" && printf "%s|%s" "$JOBGATE_SESSION_ID" "$OTHER"', "sh", env_file],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def _ours(env_file: Path) -> list[str]:
    return [ln for ln in env_file.read_text().splitlines() if "JOBGATE_SESSION_ID" in ln]


def test_session_start_re_exports_the_current_id_at_every_source(jg: Env, tmp_path: Path) -> None:
    env_file = tmp_path / "sessionstart-hook-0.sh"
    env_file.write_text("export OTHER=1")  # another line, without its newline
    env = {"CLAUDE_ENV_FILE": str(env_file)}
    for source, sid in [("startup", "s1"), ("compact", "s1"), ("clear", "s2"), ("resume", "s1")]:
        proc = run_hook(jg, "session-start", session=sid, extra_env=env, source=source)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), source
        assert _sourced(env_file) == f"{sid}|1", source
        assert _ours(env_file) == [f"export JOBGATE_SESSION_ID='{sid}'"], source
    assert env_file.read_text() == "export OTHER=1\nexport JOBGATE_SESSION_ID='s1'\n"


def test_session_start_through_a_symlinked_env_file_keeps_the_link(jg: Env, tmp_path: Path) -> None:
    target = tmp_path / "real-env.sh"
    target.write_text("export JOBGATE_SESSION_ID='old'\nexport OTHER=2\n")
    target.chmod(0o640)
    link = tmp_path / "link-env.sh"
    link.symlink_to(target)
    proc = run_hook(
        jg, "session-start", session="new", extra_env={"CLAUDE_ENV_FILE": str(link)}, source="clear"
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert link.is_symlink()
    assert target.read_text() == "export OTHER=2\nexport JOBGATE_SESSION_ID='new'\n"
    assert os.stat(target).st_mode & 0o777 == 0o640


def test_session_start_with_a_source_that_is_not_a_string_fails_open(
    jg: Env, tmp_path: Path
) -> None:
    env_file = tmp_path / "env.sh"
    proc = run_hook(
        jg, "session-start", extra_env={"CLAUDE_ENV_FILE": str(env_file)}, source=["clear"]
    )
    assert "'source' is not a string" in assert_fail_open(proc)
    assert not env_file.exists()
