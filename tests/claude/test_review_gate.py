"""The Stop review gate with a fake reviewer program: ALLOW, BLOCK, crash, empty output,
garbage, a timeout, a missing program, and the rules that keep it from looping."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Env, pid_alive, run_hook, start_running

pytestmark = pytest.mark.timeout(90)

REVIEWER = """\
import os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "reviewer.pid"), "w") as fh:
    fh.write(str(os.getpid()))
with open(os.path.join(here, "reviewer.stdin"), "w") as fh:
    fh.write(sys.stdin.read())
with open(os.path.join(here, "reviewer.env"), "w") as fh:
    fh.write(os.environ.get("JOBGATE_IN_REVIEW", ""))
mode = sys.argv[1]
if mode == "allow":
    print("ALLOW: the change is complete")
elif mode == "block":
    print("BLOCK: the new function has no test")
    print("details that are ignored")
elif mode == "crash":
    sys.stderr.write("Traceback: something broke\\nRuntimeError: reviewer exploded\\n")
    sys.exit(3)
elif mode == "empty":
    pass
elif mode == "garbage":
    print("I think it is mostly fine?")
elif mode == "sleep":
    time.sleep(60)
"""


@pytest.fixture
def reviewer(tmp_path: Path) -> Path:
    folder = tmp_path / "reviewer dir"  # a space: the command line must be quoted right
    folder.mkdir()
    script = folder / "reviewer.py"
    script.write_text(REVIEWER)
    return script


def _gate(jg: Env, reviewer: Path, mode: str, **settings: Any) -> None:
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(reviewer))} {mode}"
    values = {"stopReviewGate": "true", "reviewCommand": command, **settings}
    for key, value in values.items():
        proc = jg.cli("config", "set", key, str(value))
        assert proc.returncode == 0, proc.stderr


def _stop(jg: Env, **fields: Any) -> tuple[dict[str, Any] | None, str]:
    """Run the Stop hook: ``(its block or None, its stderr)``."""
    fields.setdefault("last_assistant_message", "I added parse_config() and all tests pass.")
    proc = run_hook(jg, "stop", **fields)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback (most recent call last)" not in proc.stderr
    out = json.loads(proc.stdout) if proc.stdout.strip() else None
    if out is not None and "decision" not in out:
        assert set(out) == {"systemMessage"}, out  # a note for the user, no block
        return None, proc.stderr
    if out is not None:
        assert out["decision"] == "block"
        assert isinstance(out["reason"], str) and out["reason"]
    return out, proc.stderr


def test_allow_lets_claude_stop(jg: Env, reviewer: Path) -> None:
    _gate(jg, reviewer, "allow")
    out, err = _stop(jg)
    assert out is None
    assert "allowed (the change is complete)" in err


def test_the_reviewer_gets_the_last_assistant_message_on_stdin(jg: Env, reviewer: Path) -> None:
    _gate(jg, reviewer, "allow")
    _stop(jg, last_assistant_message="Refactored the parser; see src/parse.py")
    prompt = (reviewer.parent / "reviewer.stdin").read_text()
    assert "Refactored the parser; see src/parse.py" in prompt
    assert "ALLOW:" in prompt and "BLOCK:" in prompt
    assert (reviewer.parent / "reviewer.env").read_text() == "1"


def test_block_blocks_with_the_reviewers_reason(jg: Env, reviewer: Path) -> None:
    _gate(jg, reviewer, "block")
    out, _err = _stop(jg)
    assert out is not None
    assert "the new function has no test" in out["reason"]
    assert "details that are ignored" not in out["reason"]


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [
        ("crash", "exited with code 3: RuntimeError: reviewer exploded"),
        ("empty", "printed nothing"),
        ("garbage", "I think it is mostly fine?"),
    ],
)
def test_a_failing_reviewer_blocks_saying_what_happened_and_how_to_turn_it_off(
    jg: Env, reviewer: Path, mode: str, fragment: str
) -> None:
    _gate(jg, reviewer, mode)
    out, _err = _stop(jg)
    assert out is not None
    assert fragment in out["reason"]
    assert "jobgate config set stopReviewGate false" in out["reason"]


@pytest.mark.parametrize("mode", ["crash", "empty", "garbage"])
def test_a_failing_reviewer_allows_when_stop_hook_active_and_says_why(
    jg: Env, reviewer: Path, mode: str
) -> None:
    _gate(jg, reviewer, mode)
    out, err = _stop(jg, stop_hook_active=True)
    assert out is None
    lines = err.splitlines()
    assert len(lines) == 1
    assert "stop_hook_active" in lines[0]
    assert "stopReviewGate false" in lines[0]


def test_a_reviewer_that_times_out_is_killed_and_blocks(jg: Env, reviewer: Path) -> None:
    _gate(jg, reviewer, "sleep", reviewTimeout=1)
    started = time.monotonic()
    out, _err = _stop(jg)
    assert time.monotonic() - started < 20
    assert out is not None
    assert "reviewTimeout (1s)" in out["reason"]
    pid = int((reviewer.parent / "reviewer.pid").read_text())
    assert not pid_alive(pid)


def test_a_timeout_with_stop_hook_active_allows(jg: Env, reviewer: Path) -> None:
    _gate(jg, reviewer, "sleep", reviewTimeout=0.5)
    out, err = _stop(jg, stop_hook_active=True)
    assert out is None
    assert "reviewTimeout" in err and "stop_hook_active" in err


def test_a_missing_reviewer_program_is_named(jg: Env) -> None:
    for key, value in {
        "stopReviewGate": "true",
        "reviewCommand": "no-such-reviewer-program-xyz --review",
    }.items():
        assert jg.cli("config", "set", key, value).returncode == 0
    out, _err = _stop(jg)
    assert out is not None
    assert "'no-such-reviewer-program-xyz' was not found" in out["reason"]


def test_reviewer_blocks_are_capped_in_a_row_and_allow_resets_the_row(
    jg: Env, reviewer: Path
) -> None:
    _gate(jg, reviewer, "block", maxStopBlocks=2)
    outcomes = [_stop(jg, stop_hook_active=i > 0) for i in range(3)]
    assert [out is not None for out, _err in outcomes] == [True, True, False]
    assert "maxStopBlocks = 2" in outcomes[2][1]
    _gate(jg, reviewer, "allow")
    assert _stop(jg)[0] is None
    _gate(jg, reviewer, "block", maxStopBlocks=2)
    assert _stop(jg)[0] is not None


def test_the_gate_is_skipped_inside_a_review(jg: Env, reviewer: Path) -> None:
    _gate(jg, reviewer, "block")
    proc = run_hook(jg, "stop", extra_env={"JOBGATE_IN_REVIEW": "1"})
    assert proc.returncode == 0 and proc.stdout == ""
    assert "skipped" in proc.stderr
    assert not (reviewer.parent / "reviewer.pid").exists()


def test_the_gate_is_off_by_default(jg: Env, reviewer: Path) -> None:
    assert (
        jg.cli("config", "set", "reviewCommand", f"{sys.executable} {reviewer} block").returncode
        == 0
    )
    out, err = _stop(jg)
    assert out is None and err == ""
    assert not (reviewer.parent / "reviewer.pid").exists()


def test_wait_for_jobs_blocks_before_the_reviewer_runs(jg: Env, reviewer: Path) -> None:
    _gate(jg, reviewer, "allow", waitForJobs="true")
    job = start_running(jg, "sleep", "300", session="s1")
    out, _err = _stop(jg)
    assert out is not None and job["id"] in out["reason"]
    assert not (reviewer.parent / "reviewer.pid").exists()


def test_review_runs_in_the_payloads_directory(jg: Env, tmp_path: Path) -> None:
    script = tmp_path / "cwd_reviewer.py"
    script.write_text("import os; print('ALLOW: ' + os.getcwd())")
    sub = jg.workspace / "sub"
    sub.mkdir()
    (jg.workspace / ".git").mkdir()
    for key, value in {
        "stopReviewGate": "true",
        "reviewCommand": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}",
    }.items():
        assert jg.cli("config", "set", key, value).returncode == 0
    proc = run_hook(jg, "stop", cwd=str(sub))
    assert f"allowed ({sub.resolve()})" in proc.stderr
