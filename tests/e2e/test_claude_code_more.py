"""More of jobgate's plugin under the real Claude Code client (``claude -p``): the review
gate's verdicts reaching the model, SessionEnd sparing other sessions' jobs, and a
``waitForJobs`` stop that goes through once its job has ended."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from conftest import pid_alive
from e2e.claude_env import VENV_BIN, ClaudeEnv, hook_responses
from e2e.scripted_api import Text, ToolUse, messages_with

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

FEEDBACK = "Stop hook feedback:"


def _reviewer(cc: ClaudeEnv, name: str, body: str) -> str:
    """A reviewer script in the temp workspace's parent (not in the repo under review);
    returns the ``reviewCommand`` that runs it."""
    script = cc.root / name
    script.write_text("#!/bin/sh\ncat >/dev/null\n" + body)
    script.chmod(0o755)
    return str(script)


def _feedback(api_main: list[dict], needle: str = FEEDBACK) -> list[str]:
    return messages_with(api_main[-1], needle, role="user") if api_main else []


def test_review_gate_block_reaches_the_model_as_stop_feedback(cc: ClaudeEnv) -> None:
    cc.jobgate("config", "set", "stopReviewGate", "true")
    cc.jobgate("config", "set", "maxStopBlocks", "1")
    cc.jobgate(
        "config",
        "set",
        "reviewCommand",
        _reviewer(cc, "review.sh", "echo 'BLOCK: fix the typo in notes.txt'\n"),
    )
    api = cc.serve([Text("I wrote notes.txt."), Text("Fixed the typo.")])
    _, events = cc.print_run("write notes", "--session-id", str(uuid.uuid4()))

    main = api.main_requests()
    assert len(main) == 2, [r.path for r in api.requests]
    [text] = _feedback(main)
    assert text.startswith(FEEDBACK), text
    assert "fix the typo in notes.txt" in text
    assert "review gate" in text
    stops = hook_responses(events, "Stop")
    assert len(stops) == 2, stops
    # the second BLOCK is overruled by maxStopBlocks = 1: the stop goes through, noted
    assert "not blocking" in stops[-1]["stderr"], stops[-1]
    assert events[-1]["type"] == "result"


def test_a_broken_reviewer_blocks_at_most_once_then_lets_the_session_end(cc: ClaudeEnv) -> None:
    cc.jobgate("config", "set", "stopReviewGate", "true")
    cc.jobgate("config", "set", "maxStopBlocks", "5")
    cc.jobgate(
        "config",
        "set",
        "reviewCommand",
        _reviewer(cc, "broken.sh", "echo 'garbage, no verdict'\nexit 3\n"),
    )
    api = cc.serve([Text("All done."), Text("Told the user.")])
    _, events = cc.print_run("do the thing", "--session-id", str(uuid.uuid4()))

    main = api.main_requests()
    feedback = _feedback(main)
    assert len(feedback) <= 1, feedback
    assert len(feedback) == 1  # blocked once, so the broken gate is noticed
    assert "could not review this turn" in feedback[0], feedback[0]
    assert len(main) == 2
    stops = hook_responses(events, "Stop")
    assert len(stops) == 2, stops
    assert "stop_hook_active" in stops[-1]["stderr"], stops[-1]
    assert events[-1]["type"] == "result"


def test_session_end_cancels_only_its_own_jobs(cc: ClaudeEnv) -> None:
    other = subprocess.run(
        [str(VENV_BIN / "jobgate"), "run", "--background", "--name", "other", "--", "sleep", "60"],
        cwd=cc.workspace,
        env={**cc.env, "JOBGATE_SESSION_ID": "other"},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert other.returncode == 0, other
    other_id = other.stdout.split()[0]
    try:
        api = cc.serve(
            [
                ToolUse.bash("jobgate run --background --name mine -- sleep 60"),
                Text("Started a job."),
            ]
        )
        sid = str(uuid.uuid4())
        cc.print_run("start a job", "--session-id", sid)
        assert len(api.main_requests()) == 2

        by_name = {j["name"]: j for j in cc.jobs()}
        assert set(by_name) == {"mine", "other"}, by_name
        mine, theirs = by_name["mine"], by_name["other"]
        assert mine["sessionId"] == sid and theirs["sessionId"] == "other"
        assert theirs["id"] == other_id
        assert mine["status"] == "cancelled", mine
        assert theirs["status"] == "running", theirs
        full = json.loads(cc.jobgate("status", other_id, "--json").stdout)["job"]
        assert full.get("pid") and pid_alive(full["pid"]), full
        if full.get("commandPid"):
            assert pid_alive(full["commandPid"]), full
        mine_full = json.loads(cc.jobgate("status", mine["id"], "--json").stdout)["job"]
        for key in ("pid", "commandPid"):
            if mine_full.get(key):
                assert not pid_alive(mine_full[key]), (key, mine_full)
    finally:
        cc.jobgate("cancel", other_id, check=False)


def test_once_the_job_ends_the_stop_goes_through(cc: ClaudeEnv) -> None:
    cc.jobgate("config", "set", "waitForJobs", "true")
    cc.jobgate("config", "set", "maxStopBlocks", "20")
    script: list = [
        ToolUse.bash("jobgate run --background --name e2e-short -- sleep 3"),
        Text("Started a short job."),
    ]
    for _ in range(20):  # each Stop block: let time pass, then try to stop again
        script += [ToolUse.bash("sleep 1"), Text("Waited a second.")]
    api = cc.serve(script)
    _, events = cc.print_run("start a short job", "--session-id", str(uuid.uuid4()))

    [job] = cc.jobs()
    assert job["status"] == "completed", job
    main = api.main_requests()
    feedback = _feedback(main)
    assert 1 <= len(feedback) < 20, feedback
    assert all(f"Background jobs are still running: {job['id']}" in f for f in feedback)
    stops = hook_responses(events, "Stop")
    assert len(stops) == len(feedback) + 1, stops
    last = stops[-1]
    assert "decision" not in (last.get("stdout") or ""), last
    assert "not blocking again" not in (last.get("stderr") or ""), last
    assert api.turns_left() > 0
    assert events[-1]["type"] == "result"
