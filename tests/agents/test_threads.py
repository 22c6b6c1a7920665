"""Agent threads through ``jobgate task``: the agent's session id recorded on the job,
shown by ``result``, continued by ``task --resume``; ``--model``/``--effort`` reaching
the agent. The agents are the contract fakes of :mod:`fake_agents` (never a model)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import fake_agents
import pytest

from conftest import Env
from jobgate.state import model


@pytest.fixture
def bindir(jg: Env, tmp_path: Path) -> Path:
    """Fake ``codex`` and ``claude`` first on PATH."""
    d = tmp_path / "agentbin"
    d.mkdir()
    fake_agents.install(d / "codex", fake_agents.CODEX)
    fake_agents.install(d / "claude", fake_agents.CLAUDE)
    jg.env["PATH"] = str(d) + os.pathsep + jg.env.get("PATH", "")
    return d


def _task(jg: Env, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``jobgate task --json ARGS`` in the foreground; its final record."""
    proc = jg.cli("task", "--json", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    job: dict[str, Any] = json.loads(proc.stdout)["job"]
    return job


def _fails(jg: Env, *args: str) -> str:
    """``jobgate task ARGS`` fails with one line and records nothing new: that line."""
    before = jg.cli_json("status", "--all")["jobs"]
    proc = jg.cli("task", *args)
    assert proc.returncode != 0, proc.stdout
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert jg.cli_json("status", "--all")["jobs"] == before
    return lines[0]


def _session_of_run(program: Path, n: int = -1) -> list[str]:
    return list(fake_agents.runs(program)[n]["argv"])


def test_codex_session_id_from_its_banner_is_recorded_and_shown_by_result(
    jg: Env, bindir: Path
) -> None:
    job = _task(jg, "fix the bug")
    sid = job["agentSessionId"]
    assert len(sid) == 36 and job["threadFormat"] == "codex"
    assert job["output"] == "FINAL MESSAGE for: fix the bug"
    text = jg.cli("result", job["id"]).stdout
    assert f"agent session: {sid} (continue it: codex resume {sid}" in text
    assert f"jobgate task --resume {job['id']} PROMPT" in text
    as_json = jg.cli_json("result", job["id"])
    assert as_json["agentSessionId"] == sid and as_json["job"]["agentSessionId"] == sid
    assert as_json["continueCommand"] == f"codex resume {sid}"
    assert as_json["continueArgv"] == ["codex", "resume", sid]
    # light enough for the index: status shows it without reading the job file
    [summary] = jg.cli_json("status", "--all")["jobs"]
    assert summary["agentSessionId"] == sid


def test_background_codex_task_records_its_session_id_too(jg: Env, bindir: Path) -> None:
    proc = jg.cli("task", "--background", "--json", "go")
    assert proc.returncode == 0, proc.stderr
    job = jg.wait_for(json.loads(proc.stdout)["id"], lambda j: not model.is_active(j))
    assert job["status"] == "completed" and len(job["agentSessionId"]) == 36


def test_codex_json_events_give_the_thread_id_and_the_final_message(jg: Env, bindir: Path) -> None:
    # a user profile of codex exec --json, without a final-message file
    profile = ["codex", "exec", "--json", "--skip-git-repo-check", "--", "{prompt}"]
    assert jg.cli("config", "set", "agents.codexjson", json.dumps(profile)).returncode == 0
    job = _task(jg, "--agent", "codexjson", "explain")
    log = jg.cli("log", job["id"]).stdout.splitlines()
    thread = json.loads(next(line for line in log if line.startswith("{")))
    assert thread["type"] == "thread.started"
    assert job["agentSessionId"] == thread["thread_id"]
    assert job["output"] == "FINAL MESSAGE for: explain"  # the agent_message, not the JSONL


def test_claude_session_id_is_recorded_with_its_resume_command(jg: Env, bindir: Path) -> None:
    job = _task(jg, "--agent", "claude", "hello")
    sid = job["agentSessionId"]
    assert job["output"] == "claude answer 1 to: hello"
    assert jg.cli_json("result", job["id"])["continueCommand"] == f"claude --resume {sid}"


def test_resume_without_a_job_continues_the_newest_task_that_has_a_thread(
    jg: Env, bindir: Path
) -> None:
    first = _task(jg, "one")
    _task(jg, "--agent", "claude", "other agent")
    jg.cli("run", "--", "true")  # not a task: never a candidate
    second = _task(jg, "two")
    _task(jg, "no id", env={"FAKE_NO_SESSION": "1"})  # newest, but its agent told no id
    resumed = _task(jg, "--resume", "and now?")
    argv = _session_of_run(bindir / "codex")
    assert argv[:3] == ["exec", "resume", "--skip-git-repo-check"]
    assert argv[-3:] == ["--", second["agentSessionId"], "and now?"]
    assert "--sandbox" not in argv  # exec resume takes none
    assert resumed["resumedFrom"] == second["id"] and resumed["agent"] == "codex"
    assert resumed["agentSessionId"] == second["agentSessionId"]  # the same thread, on
    assert resumed["output"] == "FINAL MESSAGE for: and now? (turn 2 of the thread)"
    # naming a job continues that one, with the agent it ran
    again = _task(jg, "--resume", first["id"], "back to one")
    assert again["resumedFrom"] == first["id"]
    assert again["output"].endswith("(turn 2 of the thread)")


def test_resume_continues_a_claude_thread_with_its_agent(jg: Env, bindir: Path) -> None:
    first = _task(jg, "--agent", "claude", "hi")
    resumed = _task(jg, "--resume", first["id"], "more")
    argv = _session_of_run(bindir / "claude")
    assert argv[:4] == ["-p", "--resume", first["agentSessionId"], "--output-format"]
    assert resumed["agent"] == "claude" and resumed["output"] == "claude answer 2 to: more"
    assert resumed["agentSessionId"] == first["agentSessionId"]


def test_resume_without_a_job_stays_inside_the_session(jg: Env, bindir: Path) -> None:
    mine = _task(jg, "--session", "s1", "mine")
    _task(jg, "--session", "s2", "theirs")
    resumed = _task(jg, "--session", "s1", "--resume", "go on")
    assert resumed["resumedFrom"] == mine["id"]
    line = _fails(jg, "--session", "s3", "--resume", "go on")
    assert "no task of session s3 has an agent session to continue" in line


def test_resume_of_a_job_whose_agent_never_reported_an_id_names_the_job(
    jg: Env, bindir: Path
) -> None:
    silent = _task(jg, "quiet", env={"FAKE_NO_SESSION": "1"})
    assert "agentSessionId" not in silent
    line = _fails(jg, "--resume", silent["id"], "go on")
    assert f"job {silent['id']} has no agent session to continue" in line
    assert "never reported a session id" in line and "--fresh" in line
    run = json.loads(jg.cli("run", "--json", "--", "true").stdout)["job"]
    assert "not an agent task" in _fails(jg, "--resume", run["id"], "go on")
    assert "no task of this workspace" in _fails(jg, "--resume", "go on")


def test_resume_refuses_a_lone_job_id_taken_as_the_prompt(jg: Env, bindir: Path) -> None:
    job = _task(jg, "one")
    line = _fails(jg, "--resume", job["id"])
    assert f"jobgate task --resume {job['id']} PROMPT" in line


def test_a_second_word_without_resume_and_resume_with_fresh_are_refused(
    jg: Env, bindir: Path
) -> None:
    job = _task(jg, "one")
    assert "--resume" in _fails(jg, job["id"], "two words")
    proc = jg.cli("task", "--resume", "--fresh", "x")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr


def test_resume_with_another_agent_is_refused(jg: Env, bindir: Path) -> None:
    job = _task(jg, "one")
    line = _fails(jg, "--resume", "--agent", "claude", job["id"], "go on")
    assert "ran agent 'codex', not 'claude'" in line


def test_fresh_starts_a_new_thread_even_after_one_exists(jg: Env, bindir: Path) -> None:
    first = _task(jg, "one")
    fresh = _task(jg, "--fresh", "two")
    assert _session_of_run(bindir / "codex")[:2] == ["exec", "--skip-git-repo-check"]
    assert fresh["agentSessionId"] != first["agentSessionId"] and "resumedFrom" not in fresh


def test_model_and_effort_reach_codex_and_vanish_with_their_flags_when_not_given(
    jg: Env, bindir: Path
) -> None:
    plain = _task(jg, "x")
    argv = _session_of_run(bindir / "codex")
    assert "--model" not in argv and not any("reasoning_effort" in a for a in argv)
    assert "model" not in plain and "effort" not in plain
    job = _task(jg, "--model", "o3", "--effort", "high", "y")
    argv = _session_of_run(bindir / "codex")
    assert argv[argv.index("--model") + 1] == "o3"
    assert "--config=model_reasoning_effort=high" in argv
    assert job["model"] == "o3" and job["effort"] == "high"
    log = jg.cli("log", job["id"]).stdout
    assert "model: o3" in log and "reasoning effort: high" in log  # what the fake understood
    _task(jg, "--resume", "--model", "o4", "z")  # exec resume takes them as well
    argv = _session_of_run(bindir / "codex")
    assert argv[:2] == ["exec", "resume"] and argv[argv.index("--model") + 1] == "o4"


def test_model_and_effort_reach_claude(jg: Env, bindir: Path) -> None:
    _task(jg, "-a", "claude", "--model", "sonnet", "--effort", "low", "x")
    argv = _session_of_run(bindir / "claude")
    assert argv == ["-p", "--output-format", "json", "--model", "sonnet", "--effort", "low", "x"]


def test_user_profiles_keep_working_and_refuse_options_they_cannot_pass(
    jg: Env, bindir: Path
) -> None:
    mine = [str(bindir / "claude"), "-p", "{prompt}"]  # an old-style profile, unchanged
    assert jg.cli("config", "set", "agents.mine", json.dumps(mine)).returncode == 0
    job = _task(jg, "-a", "mine", "hi")
    assert job["output"].strip() == "claude answer 1 to: hi"  # plain text: no id, no harm
    assert "agentSessionId" not in job
    line = _fails(jg, "-a", "mine", "--model", "opus", "hi")
    assert "agent profile 'mine' has no {model} placeholder" in line
    line = _fails(jg, "--effort=-x", "hi")
    assert "--effort '-x'" in line
    custom = [str(bindir / "codex"), "exec", "--skip-git-repo-check", "--json", "{prompt}"]
    assert jg.cli("config", "set", "agents.other", json.dumps(custom)).returncode == 0
    other = _task(jg, "-a", "other", "hey")  # a codex by path: its thread is read too
    assert other["output"] == "FINAL MESSAGE for: hey" and other["agentSessionId"]


def test_job_and_prompt_may_come_around_options_but_unknown_options_are_still_refused(
    jg: Env, bindir: Path
) -> None:
    first = _task(jg, "one")
    again = _task(jg, "--resume", first["id"], "--model", "o3", "two")
    assert again["resumedFrom"] == first["id"] and again["model"] == "o3"
    assert fake_agents.received(bindir / "codex")["argv"][-1] == "two"
    line = _fails(jg, "--resume", first["id"], "--bogus", "two")
    assert "unrecognized arguments: --bogus" in line
    assert "one PROMPT only" in _fails(jg, "--resume", first["id"], "--model", "o3", "a", "b")


def test_a_lost_task_can_be_resumed_from_the_session_id_its_log_holds(
    jg: Env, bindir: Path
) -> None:
    import signal

    proc = jg.cli("task", "--background", "--json", "long one", env={"FAKE_SLEEP": "60"})
    assert proc.returncode == 0, proc.stderr
    job_id = json.loads(proc.stdout)["id"]
    running = jg.wait_for(
        job_id, lambda j: "session id:" in jg.cli("log", job_id).stdout and bool(j["commandPid"])
    )
    for pid in (running["commandPid"], running["pid"]):  # worker and agent die from outside
        os.kill(pid, signal.SIGKILL)
    lost = jg.wait_for(job_id, lambda j: not model.is_active(j))
    assert lost["phase"] == "lost" and "agentSessionId" not in lost
    assert "no task of this workspace" in _fails(jg, "--resume", "go on")  # none recorded
    resumed = _task(jg, "--resume", job_id, "pick it up")
    argv = fake_agents.received(bindir / "codex")["argv"]
    assert argv[:2] == ["exec", "resume"] and argv[-2] == resumed["agentSessionId"]
    assert resumed["resumedFrom"] == job_id
    assert resumed["output"].endswith("(turn 2 of the thread)")
