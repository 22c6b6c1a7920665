"""jobgate's plugin under the real Claude Code client (``claude -p``), its model replaced
by a scripted Messages API: what the hooks really do to a session, seen from the requests
that reach the model and from the client's own event stream."""

from __future__ import annotations

import json
import uuid

import pytest

from conftest import pid_alive
from e2e.claude_env import ClaudeEnv, hook_responses
from e2e.scripted_api import Text, ToolUse, messages_with, tool_results

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ANNOUNCED = "jobgate: background jobs that finished since the last prompt:"


def test_session_start_exports_the_session_id_to_the_bash_tool(cc: ClaudeEnv) -> None:
    api = cc.serve([ToolUse.bash('echo "sid=$JOBGATE_SESSION_ID"'), Text("ok")])
    sid = str(uuid.uuid4())
    _, events = cc.print_run("show the session id", "--session-id", sid)

    main = api.main_requests()
    assert len(main) == 2, [r.path for r in api.requests]
    assert f"sid={sid}" in tool_results(main[1]), tool_results(main[1])
    assert events[-1]["type"] == "result" and events[-1]["session_id"] == sid


def test_stop_waits_for_a_running_job_then_session_end_cancels_it(cc: ClaudeEnv) -> None:
    cc.jobgate("config", "set", "waitForJobs", "true")
    cc.jobgate("config", "set", "maxStopBlocks", "2")
    api = cc.serve(
        [
            ToolUse.bash("jobgate run --background --name e2e-sleep -- sleep 30"),
            Text("Started a background job."),
        ]
    )
    sid = str(uuid.uuid4())
    _, events = cc.print_run("start a job", "--session-id", sid)

    [job] = cc.jobs()
    assert job["name"] == "e2e-sleep"
    assert job["sessionId"] == sid  # started under the session SessionStart exported
    main = api.main_requests()
    assert job["id"] in tool_results(main[1])[0]

    # Stop blocked maxStopBlocks times: each block reached the model as the next request
    feedback = messages_with(main[-1], "Stop hook feedback:", role="user")
    assert len(feedback) == 2, feedback
    for n, text in enumerate(feedback, 1):
        assert text.startswith("Stop hook feedback:\n"), text
        assert f"Background jobs are still running: {job['id']}" in text
        assert f"block {n} of at most 2 in a row" in text
    assert len(main) == 4  # the tool call, its result, then one request per block
    stops = hook_responses(events, "Stop")
    assert len(stops) == 3, stops
    assert "not blocking again" in stops[-1]["stderr"]

    # SessionEnd (the end of every -p run) cancelled the job: record and processes
    assert job["status"] == "cancelled", job
    assert "session ended" in json.dumps(job)
    full = json.loads(cc.jobgate("status", job["id"], "--json").stdout)["job"]
    for key in ("pid", "commandPid"):
        if full.get(key):
            assert not pid_alive(full[key]), (key, full)


def test_a_finished_job_is_announced_once_at_the_next_prompt(cc: ClaudeEnv) -> None:
    api = cc.serve(
        [
            ToolUse.bash(
                "id=$(jobgate run --background --name e2e-quick -- echo hi | head -n 1) && "
                'jobgate wait "$id" >/dev/null && echo "job=$id"'
            ),
            Text("The job finished."),
            Text("Noted."),
            Text("Nothing new."),
        ]
    )
    sid = str(uuid.uuid4())
    cc.print_run("run a quick job", "--session-id", sid)
    [job] = cc.jobs()
    assert job["status"] == "completed", job
    first = api.main_requests()
    assert f"job={job['id']}" in tool_results(first[-1])
    assert not any(messages_with(body, ANNOUNCED) for body in first)

    cc.print_run("what happened?", "--resume", sid)
    second = api.main_requests()[len(first) :]
    assert len(second) == 1
    [notice] = messages_with(second[0], ANNOUNCED)
    assert f"{job['id']} (e2e-quick): completed (exit 0)" in notice
    assert f"jobgate result {job['id']}" in notice
    roles = [m["role"] for m in second[0]["messages"] if ANNOUNCED in json.dumps(m)]
    assert roles == ["system"], roles

    cc.print_run("anything else?", "--resume", sid)
    third = api.main_requests()[len(first) + len(second) :]
    assert len(third) == 1
    # the notice from the second prompt is history now; no new one came
    assert len(messages_with(third[0], ANNOUNCED)) == 1
    assert cc.jobs()[0].get("announcedAt")


def test_the_stop_note_reaches_the_user_as_a_system_message(cc: ClaudeEnv) -> None:
    cc.serve(
        [
            ToolUse.bash("jobgate run --background --name e2e-note -- sleep 30"),
            Text("Started it."),
        ]
    )
    _, events = cc.print_run("start a job", "--session-id", str(uuid.uuid4()))
    [job] = cc.jobs()

    [stop] = hook_responses(events, "Stop")
    assert stop["exit_code"] == 0
    out = json.loads(stop["stdout"])
    assert job["id"] in out["systemMessage"], out
    assert "decision" not in out  # waitForJobs is off: a note, not a block
