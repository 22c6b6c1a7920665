"""`jobgate run`: foreground pass-through and exit codes, background start."""

from __future__ import annotations

import json

from conftest import Env


def test_foreground_run_passes_output_and_exit_code_and_records_failure(jg: Env) -> None:
    proc = jg.cli("run", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert proc.returncode == 3
    # each stream stays itself: `jobgate run -- cmd 2>/dev/null` drops only the errors
    assert proc.stdout == "out\n" and proc.stderr == "err\n"
    jobs = jg.cli_json("status", "--all")["jobs"]
    assert len(jobs) == 1
    assert jobs[0]["status"] == "failed" and jobs[0]["exitCode"] == 3
    log = jg.cli("log", jobs[0]["id"]).stdout  # the log keeps both
    assert "out\n" in log and "err\n" in log


def test_foreground_run_records_completed_with_output_as_result(jg: Env) -> None:
    proc = jg.cli("run", "--name", "hello", "--", "sh", "-c", "echo hello world")
    assert proc.returncode == 0, proc.stderr
    result = jg.cli_json("result")["job"]
    assert result["status"] == "completed"
    assert result["exitCode"] == 0
    assert result["output"] == "hello world\n"


def test_foreground_killed_by_signal_exits_128_plus_signal(jg: Env) -> None:
    proc = jg.cli("run", "--", "sh", "-c", "kill -KILL $$")
    assert proc.returncode == 128 + 9
    job = jg.cli_json("status", "--all")["jobs"][0]
    assert job["status"] == "failed" and job["exitCode"] == 137 and job["signal"] == 9


def test_background_run_prints_id_first_and_json_has_int_pid(jg: Env) -> None:
    proc = jg.cli("run", "--background", "--", "true")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("run-")
    brief = jg.start("sh", "-c", "echo hi")
    assert set(brief) >= {"id", "status", "pid"}
    assert isinstance(brief["pid"], int) and brief["pid"] > 0
    job = jg.wait_for(brief["id"], lambda j: j["status"] == "completed")
    assert job["exitCode"] == 0
    assert json.loads(jg.cli("result", brief["id"], "--json").stdout)["job"]["output"] == "hi\n"


def test_missing_program_fails_the_job_with_a_clear_message(jg: Env) -> None:
    proc = jg.cli("run", "--", "no-such-program-xyz")
    assert proc.returncode == 127
    assert "command not found: no-such-program-xyz" in proc.stderr
    assert "Traceback" not in proc.stderr
    job = jg.cli_json("status", "--all")["jobs"][0]
    assert job["status"] == "failed"
