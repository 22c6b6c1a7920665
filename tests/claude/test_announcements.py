"""``jobgate hook user-prompt-submit`` end to end: finished jobs are announced exactly
once, also with concurrent prompts, and a foreground job never."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import Env, hook_payload, kill9, run_hook, start_running

pytestmark = pytest.mark.timeout(90)


# -- user-prompt-submit ----------------------------------------
def _context(proc: subprocess.CompletedProcess[str]) -> str | None:
    assert proc.returncode == 0, proc.stderr
    if not proc.stdout.strip():
        return None
    out = json.loads(proc.stdout)
    assert out["hookSpecificOutput"]["hookEventName"] == "UserPromptSubmit"
    text: str = out["hookSpecificOutput"]["additionalContext"]
    return text


def test_user_prompt_submit_announces_each_finished_job_exactly_once(jg: Env) -> None:
    done = jg.start("true", session="s1", name="quick")
    jg.wait_for(done["id"], lambda j: j["status"] == "completed")
    lost = start_running(jg, "sleep", "300", session="s1")
    running = start_running(jg, "sleep", "300", session="s1")
    theirs = jg.start("true", session="s2")
    jg.wait_for(theirs["id"], lambda j: j["status"] == "completed")
    kill9(lost["pid"], lost["commandPid"])

    first = _context(run_hook(jg, "user-prompt-submit", session="s1", prompt="hi"))
    assert first is not None
    assert f"{done['id']} (quick): completed" in first
    assert f"jobgate result {done['id']}" in first
    assert f"{lost['id']}" in first and "failed" in first
    assert running["id"] not in first
    assert theirs["id"] not in first
    assert _context(run_hook(jg, "user-prompt-submit", session="s1", prompt="again")) is None
    assert jg.job(done["id"])["announcedAt"]

    kill9(running["pid"], running["commandPid"])
    later = _context(run_hook(jg, "user-prompt-submit", session="s1", prompt="and now"))
    assert later is not None and running["id"] in later and done["id"] not in later


def test_user_prompt_submit_never_announces_a_foreground_job(jg: Env) -> None:
    fg = jg.cli("run", "--session", "s1", "--name", "fg", "--", "true")
    assert fg.returncode == 0, fg.stderr
    bg = jg.start("true", session="s1", name="bg")
    jg.wait_for(bg["id"], lambda j: j["status"] == "completed")
    told = _context(run_hook(jg, "user-prompt-submit", session="s1", prompt="hi"))
    assert told is not None and f"{bg['id']} (bg)" in told
    assert "(fg)" not in told


def test_concurrent_prompts_announce_a_job_only_once(jg: Env) -> None:
    done = jg.start("true", session="s1")
    jg.wait_for(done["id"], lambda j: j["status"] == "completed")
    data = json.dumps(hook_payload(jg, "user-prompt-submit", "s1", prompt="x"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jobgate", "hook", "user-prompt-submit"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=jg.env,
            cwd=jg.workspace,
        )
        for _ in range(6)
    ]
    outs = [p.communicate(data, timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(done["id"] in out for out, _err in outs) == 1, outs
