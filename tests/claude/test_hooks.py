"""Pure hook decisions (jobgate.claude.hooks): payload checks, Stop blocking rows,
announcements and shell quoting. No processes, no files (the review verdict rules:
test_review_rules.py)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from jobgate.claude import hooks
from jobgate.state import model
from jobgate.state.errors import JobgateError


def _job(job_id: str, status: str = "running", **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": job_id,
        "name": f"name of {job_id}",
        "status": status,
        "createdAt": f"2026-01-01T00:00:0{len(job_id) % 10}.000Z",
    }
    job.update(extra)
    return job


# -- payload ----------------------------------------
@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ([1, 2], "not a JSON object"),
        ("text", "not a JSON object"),
        ({}, "no 'hook_event_name' field"),
        ({"cwd": "/x"}, "no 'hook_event_name' field"),
        ({"hook_event_name": "Stop"}, "no 'cwd' field"),
        ({"hook_event_name": "Stop", "cwd": ""}, "no 'cwd' field"),
        ({"hook_event_name": "SessionEnd"}, "'SessionEnd' hook"),
        ({"hook_event_name": 7}, "'hook_event_name' is not a string"),
        ({"session_id": 5}, "'session_id' is not a string"),
        ({"session_id": ""}, "'session_id' is empty"),
        ({"session_id": "a\0b"}, "NUL"),
        ({"cwd": ["/"]}, "'cwd' is not a string"),
        ({"stop_hook_active": "yes"}, "stop_hook_active"),
        ({"last_assistant_message": {"x": 1}}, "last_assistant_message"),
        ({"source": ["clear"]}, "'source' is not a string"),
        ({"agent_id": 7}, "'agent_id' is not a string"),
    ],
)
def test_check_payload_refuses_unusable_payloads_with_a_reason(payload: Any, fragment: str) -> None:
    base = {"hook_event_name": "Stop", "cwd": "/x"}
    if set(payload) & {"hook_event_name", "cwd"} or not payload:
        base = {}  # the case is about these fields themselves
    with pytest.raises(JobgateError, match=fragment):
        hooks.check_payload("stop", {**base, **payload} if isinstance(payload, dict) else payload)


def test_check_payload_refuses_an_unknown_event() -> None:
    with pytest.raises(JobgateError, match="unknown hook event 'pre-tool-use'"):
        hooks.check_payload("pre-tool-use", {})


def test_check_payload_needs_no_cwd_or_event_name_when_the_workspace_was_named() -> None:
    assert hooks.check_payload("stop", {"session_id": "s"}, cwd_given=True) == {"session_id": "s"}
    with pytest.raises(JobgateError, match="'SessionEnd' hook"):
        hooks.check_payload("stop", {"hook_event_name": "SessionEnd"}, cwd_given=True)


def test_check_payload_accepts_a_minimal_and_a_full_payload() -> None:
    minimal = {"hook_event_name": "Stop", "cwd": "/x"}  # no session: $JOBGATE_SESSION_ID
    assert hooks.check_payload("stop", minimal) == minimal
    full = {
        "session_id": "abc",
        "cwd": "/x",
        "hook_event_name": "Stop",
        "stop_hook_active": True,
        "last_assistant_message": "done",
        "transcript_path": "/t.jsonl",
        "extra": [1],
    }
    assert hooks.check_payload("stop", full) is full


def test_session_comes_from_payload_then_environment_then_none() -> None:
    assert hooks.session_of({"session_id": "p"}, "e") == "p"
    assert hooks.session_of({}, "e") == "e"
    assert hooks.session_of({}, "") is None
    assert hooks.session_of({}, None) is None


def test_session_jobs_filters_by_recorded_session_and_none_means_all() -> None:
    jobs = [_job("a", sessionId="s1"), _job("b", sessionId="s2"), _job("c")]
    assert [j["id"] for j in hooks.session_jobs(jobs, "s1")] == ["a"]
    assert [j["id"] for j in hooks.session_jobs(jobs, None)] == ["a", "b", "c"]
    assert hooks.state_key(None) == hooks.ALL_SESSIONS
    assert hooks.state_key("s1") == "s1"


# -- stop ----------------------------------------
def test_running_notice_names_id_name_and_how_to_act() -> None:
    (line,) = hooks.running_notices([_job("run-1")])
    assert "run-1 (name of run-1)" in line
    assert "jobgate status run-1" in line
    assert "jobgate cancel run-1" in line
    assert "\n" not in line


def test_running_notice_flattens_a_multiline_name() -> None:
    (line,) = hooks.running_notices([_job("run-1", name="one\ntwo")])
    assert "one two" in line and "\n" not in line


def test_wait_blocks_at_most_max_blocks_times_in_a_row_for_the_same_jobs() -> None:
    entry: dict[str, Any] = {}
    reasons = []
    for _ in range(5):
        reason, entry, note = hooks.wait_decision(["b", "a"], entry, 3)
        reasons.append(reason)
    assert [r is not None for r in reasons] == [True, True, True, False, False]
    assert "jobgate wait" in str(reasons[0]) and "a, b" in str(reasons[0])
    assert note is not None and "maxStopBlocks = 3" in note
    assert entry["stopBlocks"] == 3


def test_wait_starts_a_new_row_when_the_set_of_jobs_changes() -> None:
    entry = {"stopJobs": ["a"], "stopBlocks": 3}
    reason, entry, _ = hooks.wait_decision(["a", "c"], entry, 3)
    assert reason is not None
    assert entry == {"stopJobs": ["a", "c"], "stopBlocks": 1}


def test_wait_does_not_block_and_clears_the_row_when_nothing_runs() -> None:
    reason, entry, note = hooks.wait_decision([], {"stopJobs": ["a"], "stopBlocks": 2, "x": 1}, 3)
    assert reason is None and note is None
    assert entry == {"x": 1}


def test_clear_rows_keeps_other_keys() -> None:
    entry = {"stopJobs": ["a"], "stopBlocks": 2, "reviewBlocks": 1, "updatedAt": "t"}
    assert hooks.clear_rows(entry) == {"updatedAt": "t"}


def test_stop_output_is_one_object_a_note_a_block_or_both() -> None:
    assert hooks.stop_output(None, []) is None
    assert hooks.stop_output(None, ["a", "b\x1b[0m  c"]) == {"systemMessage": "a\nb\\x1b[0m c"}
    assert hooks.stop_output("r", ["a"]) == {
        "decision": "block",
        "reason": "r",
        "systemMessage": "a",
    }


def test_claude_tasks_keep_work_in_flight_and_skip_watchers_ended_and_garbage() -> None:
    tasks = [
        {"id": "b1", "type": "shell", "status": "running", "command": "make"},
        {"id": "p1", "type": "subagent", "status": "pending"},
        {"id": "x", "status": None},
        {"id": "m1", "type": "monitor", "status": "running"},
        {"id": "w1", "type": "shell", "status": "running", "command": "jobgate watch --json"},
        {"id": "d1", "type": "shell", "status": "Completed"},
        "b2",
        None,
    ]
    payload = {"background_tasks": tasks}
    assert [t["id"] for t in hooks.claude_tasks(payload)] == ["b1", "p1", "x"]
    assert hooks.claude_tasks({"background_tasks": {"id": "b1"}}) == []
    assert hooks.claude_tasks({}) == []
    (line,) = hooks.task_notices(hooks.claude_tasks({"background_tasks": tasks[:1]}))
    assert line == "jobgate: Claude Code background task b1 (shell: make) is still running"


def test_wait_counts_jobs_and_claude_tasks_in_one_row() -> None:
    task = {"id": "t9", "type": "shell", "status": "running", "command": "make"}
    reason, entry, _ = hooks.wait_decision(["run-a"], {}, 3, [task])
    assert entry["stopJobs"] == ["claude:t9", "run-a"]
    assert reason is not None and "run-a" in reason and "t9 (shell: make)" in reason
    reason, entry, _ = hooks.wait_decision([], entry, 3, [task])
    assert entry == {"stopJobs": ["claude:t9"], "stopBlocks": 1}  # a new set, a new row


# -- session-end ----------------------------------------
@pytest.mark.parametrize(
    ("payload", "mode", "cancels"),
    [
        ({"reason": "prompt_input_exit"}, "exit-only", True),
        ({"reason": "logout"}, "exit-only", True),
        ({"reason": "other"}, "exit-only", True),
        ({"reason": "bypass_permissions_disabled"}, "exit-only", True),
        ({}, "exit-only", True),  # by hand: no reason
        ({"reason": "clear"}, "exit-only", False),
        ({"reason": "resume"}, "exit-only", False),
        ({"reason": "new_in_some_release"}, "exit-only", False),
        ({"reason": "clear"}, "always", True),
        ({"reason": "other"}, "never", False),
        ({"reason": "other", "agent_id": "a1"}, "exit-only", False),
        ({"reason": "other", "agent_id": "a1"}, "always", False),
    ],
)
def test_session_end_cancels_only_when_the_session_really_ends(
    payload: dict[str, Any], mode: str, cancels: bool
) -> None:
    assert hooks.session_end_cancels(payload, mode)[0] is cancels


# -- user-prompt-submit ----------------------------------------
def test_unannounced_lists_finished_jobs_without_announced_at_newest_first() -> None:
    jobs = [
        _job("a", "completed", createdAt="2026-01-01T00:00:01.000Z"),
        _job("b", "failed", createdAt="2026-01-01T00:00:02.000Z"),
        _job("c", "running"),
        _job("d", "cancelled", announcedAt="2026-01-01T00:00:03.000Z"),
    ]
    assert [j["id"] for j in hooks.unannounced(jobs)] == ["b", "a"]


def test_announcement_names_each_job_status_and_how_to_read_it() -> None:
    text = hooks.announcement(
        [
            _job("a", "completed", exitCode=0),
            _job("b", "failed", errorMessage="lost: worker pid 7 is gone\nmore"),
        ]
    )
    assert "a (name of a): completed (exit 0); read it: jobgate result a" in text
    assert "b (name of b): failed (lost: worker pid 7 is gone); read it: jobgate result b" in text


def test_announcement_caps_the_list_and_counts_the_rest() -> None:
    jobs = [_job(f"j{i}", "completed") for i in range(hooks.MAX_ANNOUNCED + 4)]
    text = hooks.announcement(jobs)
    assert text.count("jobgate result") == hooks.MAX_ANNOUNCED
    assert "and 4 more" in text


def test_outputs_have_the_shapes_claude_code_reads() -> None:
    assert hooks.block_output("r") == {"decision": "block", "reason": "r"}
    out = hooks.prompt_output("ctx")
    assert out == {
        "hookSpecificOutput": {"hookEventName": "UserPromptSubmit", "additionalContext": "ctx"}
    }


# -- session-start ----------------------------------------
@pytest.mark.parametrize(
    "value", ["plain", "", "a'b; rm -rf x $(y)", "'", '"$HOME" `id` \\ \n tab\t', "ü-ß"]
)
def test_sh_quote_round_trips_through_a_real_shell(value: str) -> None:
    out = subprocess.run(
        ["sh", "-c", f"printf %s {hooks.sh_quote(value)}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == value


def test_env_export_line_is_one_export_statement() -> None:
    assert hooks.env_export_line("s1") == "export JOBGATE_SESSION_ID='s1'\n"


def test_replace_export_keeps_other_lines_and_one_export_last() -> None:
    line = b"export JOBGATE_SESSION_ID='new'\n"
    old = b"export A=1\n  export JOBGATE_SESSION_ID='x'\nexport B=2\nexport JOBGATE_SESSION_ID='y'"
    assert hooks.replace_export(old, line) == b"export A=1\nexport B=2\n" + line
    assert hooks.replace_export(b"", line) == line
    assert hooks.replace_export(b"export A=1", line) == b"export A=1\n" + line


# -- hook state ----------------------------------------
def test_prune_state_drops_stale_and_malformed_entries() -> None:
    now = 2_000_000_000.0
    fresh = model.now_iso(now - 60)
    stale = model.now_iso(now - hooks.STATE_TTL_SECONDS - 60)
    state = {
        "sessions": {
            "new": {"stopBlocks": 1, "updatedAt": fresh},
            "old": {"stopBlocks": 1, "updatedAt": stale},
            "bad": 7,
        }
    }
    assert hooks.prune_state(state, now) == {
        "version": 1,
        "sessions": {"new": {"stopBlocks": 1, "updatedAt": fresh}},
    }
    assert hooks.prune_state("garbage", now) == {"version": 1, "sessions": {}}  # type: ignore[arg-type]


def test_entry_of_reads_a_copy_and_tolerates_garbage() -> None:
    state = {"sessions": {"s1": {"stopBlocks": 2}}}
    entry = hooks.entry_of(state, "s1")
    entry["stopBlocks"] = 9
    assert state["sessions"]["s1"]["stopBlocks"] == 2
    assert hooks.entry_of({"sessions": []}, "s1") == {}
    assert hooks.entry_of(None, "s1") == {}
