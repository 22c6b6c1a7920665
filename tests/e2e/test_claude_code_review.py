"""``jobgate review --agent claude`` running the real, pinned Claude Code client against
the scripted Messages API: the client accepts the review profile's flags, the prompt it
sends carries git's diff, and the tools it offers the model cannot edit anything."""

from __future__ import annotations

import json

import pytest

from e2e.claude_env import ClaudeEnv
from e2e.scripted_api import Text

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

EDITING_TOOLS = {"Edit", "Write", "NotebookEdit", "Bash"}


def test_a_claude_review_runs_read_only_with_the_diff_in_its_prompt(cc: ClaudeEnv) -> None:
    (cc.workspace / "README").write_text("an e2e workspace, edited\n")
    (cc.workspace / "added.txt").write_text("a new, untracked file\n")
    cc.jobgate("config", "set", "agents.claude", json.dumps([str(cc.claude), "-p", "{prompt}"]))
    api = cc.serve([Text("Looks fine.\nVerdict: approve")])

    proc = cc.jobgate("review", "--agent", "claude", "--json", check=False)

    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    job = json.loads(proc.stdout)["job"]
    assert job["kind"] == "review" and job["status"] == "completed"
    carrying = [
        r.body
        for r in api.requests
        if r.body and "+a new, untracked file" in json.dumps(r.body.get("messages"))
    ]
    assert carrying, [r.path for r in api.requests]
    for body in carrying:
        tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        assert not tools & EDITING_TOOLS, tools
        assert {"Read", "Grep", "Glob"} <= tools  # it can still read what was cut
