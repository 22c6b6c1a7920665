"""What the Stop hook writes to stdout, run as ``jobgate hook stop`` with real jobs: the
running-work note as ``systemMessage`` (Claude Code shows a hook's stderr with exit 0
nowhere), the review gate's "allowed because" notes there too, one JSON object also when
it blocks; Claude Code's own background tasks (``background_tasks``) named and waited
for like jobs; and StopFailure, which names the jobs but never blocks or reviews."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import Env, hook_payload, kill9, native_only, run_hook, start_running

pytestmark = pytest.mark.timeout(90)


def _config(jg: Env, **settings: Any) -> None:
    for key, value in settings.items():
        proc = jg.cli(
            "config", "set", key, str(value).lower() if isinstance(value, bool) else str(value)
        )
        assert proc.returncode == 0, proc.stderr


def _out(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The hook's stdout: exactly one JSON object on one line."""
    assert proc.returncode == 0, proc.stderr
    assert "fails open" not in proc.stderr, proc.stderr
    assert proc.stdout.endswith("\n") and proc.stdout.count("\n") == 1, proc.stdout
    out: dict[str, Any] = json.loads(proc.stdout)
    assert isinstance(out, dict)
    return out


def _reviewer(tmp_path: Path, first_line: str, *, exit_code: int = 0) -> str:
    script = tmp_path / "reviewer.py"
    script.write_text(
        "import pathlib, sys\n"
        f"pathlib.Path({str(tmp_path / 'reviewed')!r}).write_text(sys.stdin.read())\n"
        f"print({first_line!r})\n"
        f"sys.exit({exit_code})\n"
    )
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def _task(task_id: str, **fields: Any) -> dict[str, Any]:
    """A ``background_tasks`` entry as Claude Code 2.1.197 sends it."""
    task: dict[str, Any] = {
        "id": task_id,
        "type": "shell",
        "status": "running",
        "description": f"the {task_id} task",
        "command": f"npm run {task_id}",
    }
    task.update(fields)
    return task


def _failure(jg: Env, **fields: Any) -> subprocess.CompletedProcess[str]:
    """``jobgate hook stop-failure`` with a StopFailure payload like Claude Code's."""
    payload = hook_payload(jg, "stop", hook_event_name="StopFailure", error="rate_limit")
    payload.update(error_details="429 Too Many Requests", last_assistant_message="partial")
    payload.update(fields)
    return jg.cli("hook", "stop-failure", input=json.dumps(payload))


# -- the note --------------------------------------------------------------------------------
def test_running_jobs_reach_the_user_as_a_system_message_and_stay_on_stderr(jg: Env) -> None:
    job = start_running(jg, "sleep", "300", session="s1", name="build")
    proc = run_hook(jg, "stop", session="s1")
    out = _out(proc)
    assert set(out) == {"systemMessage"}  # a note: no decision, nothing for the model
    note = out["systemMessage"]
    assert f"{job['id']} (build) is still running" in note
    assert f"jobgate status {job['id']}" in note and f"jobgate cancel {job['id']}" in note
    assert proc.stderr.splitlines() == note.splitlines()  # verbose mode / transcript


def test_a_wait_block_and_the_note_are_one_json_object(jg: Env) -> None:
    _config(jg, waitForJobs=True)
    job = start_running(jg, "sleep", "300", session="s1")
    out = _out(run_hook(jg, "stop", session="s1"))
    assert out["decision"] == "block"
    assert f"Background jobs are still running: {job['id']}" in out["reason"]
    assert f"{job['id']} (sleep 300) is still running" in out["systemMessage"]


def test_the_end_of_a_row_of_blocks_is_told_to_the_user(jg: Env) -> None:
    _config(jg, waitForJobs=True, maxStopBlocks=1)
    job = start_running(jg, "sleep", "300", session="s1")
    assert _out(run_hook(jg, "stop", session="s1"))["decision"] == "block"
    out = _out(run_hook(jg, "stop", session="s1", stop_hook_active=True))
    assert "decision" not in out
    assert "waitForJobs: not blocking again" in out["systemMessage"]
    assert job["id"] in out["systemMessage"]


def test_a_job_name_with_control_characters_never_reaches_the_terminal_raw(jg: Env) -> None:
    start_running(jg, "sleep", "300", session="s1", name="evil\x1b[2J\x07name")
    note = _out(run_hook(jg, "stop", session="s1"))["systemMessage"]
    assert "\x1b" not in note and "\x07" not in note
    assert "evil\\x1b[2J\\x07name" in note


def test_a_dead_job_is_never_in_the_note(jg: Env) -> None:
    live = start_running(jg, "sleep", "300", session="s1")
    dead = start_running(jg, "sleep", "300", session="s1")
    kill9(dead["pid"], dead["commandPid"])
    note = _out(run_hook(jg, "stop", session="s1", background_tasks=[]))["systemMessage"]
    assert live["id"] in note and dead["id"] not in note


@native_only("the Stop hook's Linux path imports no psutil; psutil itself imports re and enum")
def test_printing_the_note_imports_neither_json_nor_re(jg: Env) -> None:
    """The Stop hook runs at every turn, and prints its note at each one a job runs:
    writing that JSON must not cost ``import json`` (and its ``re``, ``enum``)."""
    job = start_running(jg, "sleep", "300", session="s1", name='a "quoted" \\ name, ü 🚀')
    payload = json.dumps(hook_payload(jg, "stop", "s1"))
    proc = jg.cli("hook", "stop", input=payload, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.returncode == 0, proc.stderr
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "jobgate.claude.shell" in imported  # the measure works
    assert not imported & {"json", "re", "enum"}, sorted(imported & {"json", "re", "enum"})
    note = json.loads(proc.stdout)["systemMessage"]
    assert f'{job["id"]} (a "quoted" \\ name, ü 🚀) is still running' in note


# -- the review gate's notes ---------------------------------------------------------------------
def test_the_reviewers_allow_is_shown_to_the_user(jg: Env, tmp_path: Path) -> None:
    _config(jg, stopReviewGate=True, reviewCommand=_reviewer(tmp_path, "ALLOW: tests pass"))
    out = _out(run_hook(jg, "stop", last_assistant_message="done"))
    assert out == {"systemMessage": "jobgate: review gate: allowed (tests pass)"}


def test_a_broken_reviewer_allowed_under_stop_hook_active_tells_the_user_why(
    jg: Env, tmp_path: Path
) -> None:
    _config(jg, stopReviewGate=True, reviewCommand=_reviewer(tmp_path, "", exit_code=3))
    proc = run_hook(jg, "stop", stop_hook_active=True, last_assistant_message="done")
    out = _out(proc)
    assert "decision" not in out
    note = out["systemMessage"]
    assert "allowing the stop because stop_hook_active is true" in note
    assert "jobgate config set stopReviewGate false" in note
    assert note in proc.stderr


def test_a_review_block_carries_the_running_jobs_note_in_the_same_object(
    jg: Env, tmp_path: Path
) -> None:
    _config(jg, stopReviewGate=True, reviewCommand=_reviewer(tmp_path, "BLOCK: add a test"))
    job = start_running(jg, "sleep", "300", session="s1")
    out = _out(run_hook(jg, "stop", session="s1", last_assistant_message="done"))
    assert out["decision"] == "block" and "add a test" in out["reason"]
    assert job["id"] in out["systemMessage"]


# -- Claude Code's own background tasks ------------------------------------------------------
def test_claude_codes_background_tasks_are_named_in_the_note(jg: Env) -> None:
    tasks = [_task("b1"), _task("a2", type="subagent", command=None, description="explore")]
    out = _out(run_hook(jg, "stop", background_tasks=tasks))
    assert set(out) == {"systemMessage"}
    note = out["systemMessage"]
    assert "Claude Code background task b1 (shell: npm run b1) is still running" in note
    assert "a2 (subagent: explore)" in note


def test_wait_for_jobs_blocks_on_claude_codes_background_tasks_a_bounded_number_of_times(
    jg: Env,
) -> None:
    _config(jg, waitForJobs=True, maxStopBlocks=2)
    tasks = [_task("bg1")]
    results = [
        _out(run_hook(jg, "stop", background_tasks=tasks, stop_hook_active=i > 0)) for i in range(3)
    ]
    assert [r.get("decision") for r in results] == ["block", "block", None]
    reason = results[0]["reason"]
    assert "Your own background tasks are still running: bg1 (shell: npm run bg1)" in reason
    assert "TaskOutput" in reason and "TaskStop" in reason
    assert "`jobgate wait ID`" not in reason  # no jobgate job runs
    # the task ended: nothing to wait for, and the row is forgotten
    assert run_hook(jg, "stop", background_tasks=[]).stdout == ""
    state = json.loads((jg.state_dir() / "hooks-state.json").read_text())
    assert "s1" not in state["sessions"]


def test_jobs_and_background_tasks_are_one_row_and_a_change_starts_a_new_one(jg: Env) -> None:
    _config(jg, waitForJobs=True, maxStopBlocks=1)
    job = start_running(jg, "sleep", "300", session="s1")
    both = _out(run_hook(jg, "stop", session="s1", background_tasks=[_task("t1")]))
    assert job["id"] in both["reason"] and "t1 (shell" in both["reason"]
    again = _out(
        run_hook(jg, "stop", session="s1", background_tasks=[_task("t1")], stop_hook_active=True)
    )
    assert "decision" not in again  # maxStopBlocks = 1 for this set
    # t1 finished, the job still runs: another set of work, a new row
    alone = _out(run_hook(jg, "stop", session="s1", background_tasks=[], stop_hook_active=True))
    assert alone["decision"] == "block" and "t1" not in alone["reason"]


@pytest.mark.parametrize(
    "task",
    [
        _task("m1", type="monitor", command=None, description="PR checks"),
        _task("w1", command="jobgate watch --session s1 --json"),
        _task(
            "w2", command='"/home/u/.claude/plugins/cache/jobgate/jobgate/0.1.0/scripts/watch.sh"'
        ),
        _task("d1", status="completed"),
    ],
)
def test_watchers_and_ended_tasks_never_count_as_work(jg: Env, task: dict[str, Any]) -> None:
    _config(jg, waitForJobs=True)
    proc = run_hook(jg, "stop", background_tasks=[task, _task("real")])
    out = _out(proc)
    assert "real (shell: npm run real)" in out["reason"]
    for text in (out["reason"], out["systemMessage"], proc.stderr):
        assert f"{task['id']} (" not in text


@pytest.mark.parametrize(
    "tasks",
    ["b1", {"id": "b1"}, [1, "b1", None, ["x"]], [{"id": 7, "status": None, "type": 3}]],
)
def test_a_malformed_background_tasks_field_never_disables_the_hook(jg: Env, tasks: Any) -> None:
    job = start_running(jg, "sleep", "300", session="s1")
    out = _out(run_hook(jg, "stop", session="s1", background_tasks=tasks))
    assert job["id"] in out["systemMessage"]


# -- StopFailure --------------------------------------------------------------------------------
def test_stop_failure_never_blocks_even_with_wait_for_jobs_on_and_jobs_running(jg: Env) -> None:
    _config(jg, waitForJobs=True, maxStopBlocks=5)
    job = start_running(jg, "sleep", "300", session="s1")
    for _ in range(3):
        proc = _failure(jg, background_tasks=[_task("t1")])
        out = _out(proc)
        assert "decision" not in out and "reason" not in out
        assert "API error (rate_limit)" in out["systemMessage"]
        assert job["id"] in out["systemMessage"] and job["id"] in proc.stderr
    # no Stop block was counted for it: the next real Stop starts its row at 1
    first = _out(run_hook(jg, "stop", session="s1"))
    assert "block 1 of at most 5" in first["reason"]


def test_stop_failure_never_runs_the_review_gate(jg: Env, tmp_path: Path) -> None:
    _config(jg, stopReviewGate=True, reviewCommand=_reviewer(tmp_path, "BLOCK: no"))
    start_running(jg, "sleep", "300", session="s1")
    assert "decision" not in _out(_failure(jg))
    assert not (tmp_path / "reviewed").exists()
    assert _out(run_hook(jg, "stop", session="s1"))["decision"] == "block"  # Stop does
    assert (tmp_path / "reviewed").exists()


def test_stop_failure_with_nothing_running_prints_nothing(jg: Env) -> None:
    proc = _failure(jg, error="server_error")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_stop_failure_refuses_a_stop_payload(jg: Env) -> None:
    proc = jg.cli("hook", "stop-failure", input=json.dumps(hook_payload(jg, "stop")))
    assert proc.returncode == 0 and proc.stdout == ""
    assert "is for the 'Stop' hook, not 'StopFailure'" in proc.stderr
