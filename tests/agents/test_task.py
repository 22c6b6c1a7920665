"""`jobgate task`: agent CLIs run as jobs, with fake agents (never a real model).

The fake agents record the argv and stdin they got in a JSON file next to them, so a test
can check exactly what arrived."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import fake_agents
import pytest

from conftest import Env
from jobgate.jobs import output
from jobgate.state import model

NASTY = "fix \"it\" now; $(id) `id` 'q' $HOME *\nsecond line\n\ttabbed {prompt}"

_FAKE = """#!{python}
import json, os, sys
args = sys.argv[1:]
stdin = sys.stdin.read() if sys.stdin is not None else None
with open({record!r}, "w") as fh:
    json.dump({{"argv": args, "stdin": stdin, "cwd": os.getcwd()}}, fh)
print("fake agent output line")
sys.stderr.write("fake agent progress on stderr\\n")
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""


def _write_script(path: Path, template: str) -> Path:
    record = str(path.parent / (path.name + ".argv.json"))
    path.write_text(template.format(python=sys.executable, record=record))
    path.chmod(0o755)
    return path


def _received(script: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((script.parent / (script.name + ".argv.json")).read_text())
    return data


@pytest.fixture
def fake(jg: Env, tmp_path: Path) -> Path:
    """A fake agent configured as profile ``fake``: ``["<script>", "--x", "{prompt}"]``."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir(exist_ok=True)
    script = _write_script(bindir / "fake-agent", _FAKE)
    proc = jg.cli("config", "set", "agents.fake", json.dumps([str(script), "--x", "{prompt}"]))
    assert proc.returncode == 0, proc.stderr
    return script


@pytest.fixture
def codex_on_path(jg: Env, tmp_path: Path) -> Path:
    """A fake ``codex`` executable that shadows any real one: first on PATH."""
    bindir = tmp_path / "codexbin"
    bindir.mkdir()
    script = fake_agents.install(bindir / "codex", fake_agents.CODEX)
    fake_agents.install(bindir / "claude", fake_agents.CLAUDE)
    jg.env["PATH"] = str(bindir) + os.pathsep + jg.env.get("PATH", "")
    return script


def _jobs(jg: Env) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = jg.cli_json("status", "--all")["jobs"]
    return jobs


def test_prompt_with_quotes_dollar_parens_and_newlines_arrives_as_one_argv_element(
    jg: Env, fake: Path
) -> None:
    marker = fake.parent / "pwned"
    prompt = f"{NASTY} $(touch {marker}) `touch {marker}`"
    proc = jg.cli("task", "--agent", "fake", prompt)
    assert proc.returncode == 0, proc.stderr
    assert _received(fake)["argv"] == ["--x", prompt]
    assert not marker.exists()  # nothing was run by a shell
    job = _jobs(jg)[0]
    assert job["kind"] == "task" and job["id"].startswith("task-")
    assert job["agent"] == "fake"
    assert job["command"] == [str(fake), "--x", prompt]


def test_prompt_spliced_into_a_flag_element_of_a_custom_profile(jg: Env, fake: Path) -> None:
    jg.cli("config", "set", "agents.fake", json.dumps([str(fake), "--task={prompt}"]))
    proc = jg.cli("task", "-a", "fake", "a 'b' $(c)")
    assert proc.returncode == 0, proc.stderr
    assert _received(fake)["argv"] == ["--task=a 'b' $(c)"]


def test_foreground_task_passes_output_through_and_exits_with_the_agents_code(
    jg: Env, fake: Path
) -> None:
    proc = jg.cli("task", "--agent", "fake", "do it", env={"FAKE_EXIT": "5"})
    assert proc.returncode == 5
    assert "fake agent output line" in proc.stdout
    job = _jobs(jg)[0]
    assert job["status"] == "failed" and job["exitCode"] == 5
    ok = jg.cli("task", "--agent", "fake", "do it")
    assert ok.returncode == 0, ok.stderr
    result = jg.cli_json("result")["job"]
    assert result["status"] == "completed"
    assert "fake agent output line" in result["output"]


def test_foreground_task_json_prints_only_the_record_and_the_output_on_stderr(
    jg: Env, fake: Path
) -> None:
    proc = jg.cli("task", "--agent", "fake", "--json", "--name", "n1", "--session", "s1", "hi")
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)["job"]  # stdout is one JSON object, nothing else
    assert job["name"] == "n1" and job["sessionId"] == "s1" and job["status"] == "completed"
    assert "fake agent output line" in proc.stderr and "fake agent output line" in job["output"]


def test_agent_stdin_is_empty_even_when_our_stdin_is_a_pipe_with_data(jg: Env, fake: Path) -> None:
    proc = jg.cli("task", "--agent", "fake", "p", input="data an agent must not wait on\n")
    assert proc.returncode == 0, proc.stderr
    assert _received(fake)["stdin"] == ""


def test_prompt_dash_reads_the_prompt_from_stdin(jg: Env, fake: Path) -> None:
    text = "line one with 'quotes' and $(x)\nline two\n\n"
    proc = jg.cli("task", "--agent", "fake", "-", input=text)
    assert proc.returncode == 0, proc.stderr
    got = _received(fake)
    assert got["argv"] == ["--x", "line one with 'quotes' and $(x)\nline two"]
    assert got["stdin"] == ""
    assert _jobs(jg)[0]["name"] == "fake: line one with 'quotes' and $(x)"


def test_empty_prompt_from_stdin_is_refused_and_records_nothing(jg: Env, fake: Path) -> None:
    proc = jg.cli("task", "--agent", "fake", "-", input="\n  \n")
    assert proc.returncode == 2
    assert "empty prompt" in proc.stderr and "Traceback" not in proc.stderr
    assert _jobs(jg) == []


def test_background_codex_task_result_is_its_final_message(jg: Env, codex_on_path: Path) -> None:
    proc = jg.cli("task", "--background", "--json", NASTY)
    assert proc.returncode == 0, proc.stderr
    brief = json.loads(proc.stdout)
    assert set(brief) >= {"id", "status", "pid"} and isinstance(brief["pid"], int)
    assert brief["id"].startswith("task-") and brief["agent"] == "codex"
    job = jg.wait_for(brief["id"], lambda j: not model.is_active(j))
    assert job["status"] == "completed", job
    got = _received(codex_on_path)
    argv = got["argv"]
    assert argv[:2] == ["exec", "--skip-git-repo-check"]
    assert argv[-2:] == ["--", NASTY]
    result_file = argv[argv.index("--output-last-message") + 1]
    assert os.path.dirname(result_file) == str(jg.state_dir() / "jobs")
    assert got["stdin"] == ""

    result = jg.cli("result", brief["id"], "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["job"]["output"] == "FINAL MESSAGE for: " + NASTY
    text = jg.cli("result", brief["id"]).stdout
    assert "FINAL MESSAGE for: " in text and "chatter" not in text and "thinking" not in text
    assert not os.path.exists(result_file)  # its content now lives in the job record
    assert "thinking..." in jg.cli("log", brief["id"]).stdout  # the full output stays in the log


def test_codex_without_a_final_message_file_falls_back_to_its_output(
    jg: Env, codex_on_path: Path
) -> None:
    proc = jg.cli("task", "fix it", env={"FAKE_NO_LAST_MESSAGE": "1", "FAKE_EXIT": "3"})
    assert proc.returncode == 3
    result = jg.cli("result", "--json")
    assert result.returncode == 1  # the result of a failed job
    job = json.loads(result.stdout)["job"]
    assert job["status"] == "failed" and job["exitCode"] == 3
    assert "codex stdout chatter" in job["output"]


def test_background_task_prints_the_id_first(jg: Env, codex_on_path: Path) -> None:
    proc = jg.cli("task", "-b", "--name", "bg", "x")
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.splitlines()[0]
    assert job_id.startswith("task-")
    assert f"jobgate result {job_id}" in proc.stdout
    job = jg.wait_for(job_id, lambda j: not model.is_active(j))
    assert job["name"] == "bg" and job["status"] == "completed"


def test_builtin_claude_profile_result_is_the_answer_of_its_json_output(
    jg: Env, codex_on_path: Path
) -> None:
    claude = codex_on_path.parent / "claude"
    proc = jg.cli("task", "--agent", "claude", "say hi")
    assert proc.returncode == 0, proc.stderr
    assert fake_agents.received(claude)["argv"] == ["-p", "--output-format", "json", "say hi"]
    job = jg.cli_json("result")["job"]
    assert job["agent"] == "claude" and "resultFile" not in job
    assert job["output"] == "claude answer 1 to: say hi"  # not the JSON it printed
    assert '"session_id"' in jg.cli("log", job["id"]).stdout  # which stays in the log


def test_missing_codex_binary_is_one_clear_line_and_leaves_no_job(jg: Env, tmp_path: Path) -> None:
    empty = tmp_path / "emptybin"
    empty.mkdir()
    for args in (["task", "hello"], ["task", "--background", "--json", "hello"]):
        proc = jg.cli(*args, env={"PATH": str(empty)})
        assert proc.returncode == 127
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, proc.stderr
        assert "'codex'" in lines[0] and "npm install -g @openai/codex" in lines[0]
        assert "jobgate config set agents.codex" in lines[0]
        assert proc.stdout == ""
    status = jg.cli("status", "--json", "--all")
    assert status.returncode == 0, status.stderr
    assert not [j for j in json.loads(status.stdout)["jobs"] if model.is_active(j)]
    assert json.loads(status.stdout)["jobs"] == []


def test_missing_custom_agent_program_is_refused_before_any_job(jg: Env, tmp_path: Path) -> None:
    gone = tmp_path / "not-there"
    jg.cli("config", "set", "agents.mine", json.dumps([str(gone), "{prompt}"]))
    proc = jg.cli("task", "--agent", "mine", "--background", "x")
    assert proc.returncode == 127
    assert str(gone) in proc.stderr and "jobgate config set agents.mine" in proc.stderr
    assert _jobs(jg) == []


def test_unknown_agent_is_a_usage_error_naming_the_known_profiles(jg: Env) -> None:
    proc = jg.cli("task", "--agent", "nope", "x")
    assert proc.returncode == 2
    assert "no agent profile named 'nope'" in proc.stderr and "claude, codex" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_task_accepts_cwd_and_runs_the_agent_there(jg: Env, fake: Path, tmp_path: Path) -> None:
    proc = jg.cli("task", "--cwd", str(jg.workspace), "--agent", "fake", "x", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _received(fake)["cwd"] == os.path.realpath(jg.workspace)


def test_worker_reads_a_result_file_only_inside_the_jobs_folder(jg: Env, tmp_path: Path) -> None:
    store = jg.store()
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the job")
    assert output.read_result_file(store, {"resultFile": str(outside)}) is None
    assert outside.exists()
    inside = Path(store.jobs_dir) / "abc.last-message"
    inside.write_text("final")
    assert output.read_result_file(store, {"resultFile": str(inside)}) == "final"
    assert not inside.exists()
    empty = Path(store.jobs_dir) / "empty.last-message"
    empty.write_text("")
    assert output.read_result_file(store, {"resultFile": str(empty)}) is None
    assert output.read_result_file(store, {}) is None


_SLOW_WRITER = """#!{python}
import sys, time
with open(sys.argv[1], "a") as fh:
    fh.write("partial answer")
print("started", flush=True)
time.sleep(60)
"""


def test_final_message_file_is_private_and_removed_with_a_lost_job(jg: Env, tmp_path: Path) -> None:
    import signal

    script = _write_script(tmp_path / "slow-agent", _SLOW_WRITER)
    template = json.dumps([str(script), "{lastMessageFile}", "{prompt}"])
    assert jg.cli("config", "set", "agents.slow", template).returncode == 0
    proc = jg.cli("task", "--agent", "slow", "--background", "--json", "go")
    assert proc.returncode == 0, proc.stderr
    job = jg.wait_for(json.loads(proc.stdout)["id"], lambda j: bool(j.get("commandPid")))
    result_file = Path(job["resultFile"])
    assert result_file.parent == jg.state_dir() / "jobs"
    # created by jobgate before the agent ran, so the agent's umask does not apply
    assert result_file.stat().st_mode & 0o777 == 0o600

    for pid in (job["commandPid"], job["pid"]):  # the whole job dies from outside
        os.kill(pid, signal.SIGKILL)
    lost = jg.wait_for(job["id"], lambda j: not model.is_active(j))
    assert lost["phase"] == "lost"
    assert jg.cli("config", "set", "maxJobs", "1").returncode == 0
    run = jg.cli("run", "--json", "--", "true")  # its end prunes the lost task
    assert run.returncode == 0, run.stderr
    newer = json.loads(run.stdout)["job"]["id"]
    left = sorted(p.name for p in (jg.state_dir() / "jobs").iterdir())
    assert left == [f"{newer}.json", f"{newer}.log"]
