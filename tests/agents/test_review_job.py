"""`jobgate review`: a read-only agent run over exactly git's diff, with real git
repositories and the fake agents (tests/agents/fake_agent.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from gitrepos import agent_workspace, git, git_bytes, recorded_runs, tree_fingerprint

from conftest import Env
from jobgate.agents import git as jgit
from jobgate.agents import review


@pytest.fixture
def repo(jg: Env, tmp_path: Path) -> Path:
    return agent_workspace(
        jg.env, jg.workspace, tmp_path, {"a.txt": "one\n", "lib/b.py": "B = 1\n"}
    )


def _runs(jg: Env) -> list[dict[str, Any]]:
    return recorded_runs(Path(jg.env["FAKE_RECORD"]))


def _diff_in(prompt: str) -> str:
    start = prompt.index("<diff>\n") + len("<diff>\n")
    return prompt[start : prompt.rindex("</diff>")]


def test_the_prompt_carries_exactly_gits_diff_untracked_files_included(jg: Env, repo: Path) -> None:
    (repo / "a.txt").write_text("one\nstaged\n")
    git(repo, "add", "a.txt")
    (repo / "a.txt").write_text("one\nstaged\nand unstaged\n")
    (repo / "brand-new.txt").write_text("untracked content\n")
    before = tree_fingerprint(repo)

    proc = jg.cli("review", "--json")

    assert proc.returncode == 0, proc.stderr
    assert tree_fingerprint(repo) == before  # the index too: nothing of the user's changed
    (run,) = _runs(jg)
    diff = _diff_in(run["prompt"])
    assert "brand-new.txt" in diff and "+untracked content" in diff
    git(repo, "add", "-A")
    assert diff.encode() == git_bytes(repo, "diff", "--cached", "--binary", "--no-renames", "HEAD")


def test_a_review_runs_read_only_and_result_json_carries_findings_and_verdict(
    jg: Env, repo: Path
) -> None:
    (repo / "a.txt").write_text("changed\n")
    proc = jg.cli("review", "--background", "--json")
    assert proc.returncode == 0, proc.stderr
    brief = json.loads(proc.stdout)
    assert brief["kind"] == "review" and brief["id"].startswith("review-")
    assert jg.cli("wait", brief["id"], "--timeout", "60").returncode == 0

    (run,) = _runs(jg)
    argv = run["argv"]
    assert argv[argv.index("--sandbox") + 1] == "read-only"
    schema = json.loads(Path(argv[argv.index("--output-schema") + 1]).read_text())
    assert schema == review.SCHEMA
    result = jg.cli_json("result", brief["id"])
    assert result["review"]["verdict"] == "concerns"
    assert result["review"]["findings"] == [
        {"file": "a.txt", "line": 1, "severity": "medium", "text": "looks wrong"}
    ]
    text = jg.cli("result", brief["id"]).stdout
    assert "verdict: concerns" in text and "- [medium] a.txt:1: looks wrong" in text


def test_a_claude_review_is_denied_every_editing_tool(jg: Env, repo: Path) -> None:
    (repo / "a.txt").write_text("changed\n")
    proc = jg.cli("review", "--agent", "claude")
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(jg)
    argv = run["argv"]
    assert argv[argv.index("--permission-mode") + 1] == "dontAsk"
    denied = next(a for a in argv if a.startswith("--disallowedTools="))
    assert {"Edit", "Write", "NotebookEdit", "Bash"} <= set(denied.split("=", 1)[1].split(","))
    result = jg.cli_json("result")
    assert result["review"] == {"verdict": "approve", "summary": None, "findings": None}


def test_nothing_to_review_is_one_line_no_job_exit_0(jg: Env, repo: Path) -> None:
    proc = jg.cli("review")
    assert proc.returncode == 0
    assert proc.stdout.strip().splitlines() == [
        "nothing to review: no uncommitted changes (staged, unstaged or untracked)"
    ]
    assert _runs(jg) == []
    status = jg.cli("status", "--all", "--json")
    assert status.returncode != 0 or json.loads(status.stdout)["jobs"] == []


def test_an_unknown_base_ref_is_one_line_and_starts_nothing(jg: Env, repo: Path) -> None:
    (repo / "a.txt").write_text("changed\n")
    proc = jg.cli("review", "--base", "no-such-branch")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["jobgate: error: unknown base ref: no-such-branch"]
    assert _runs(jg) == []


def test_review_outside_a_git_repository_is_one_line(jg: Env, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = jg.cli("--cwd", str(plain), "review")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"jobgate: error: not a git repository: {os.path.realpath(plain)}"
    ]


def test_base_review_covers_the_branch_since_its_merge_base(jg: Env, repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "feature")
    (repo / "feature.txt").write_text("feature\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feature")
    (repo / "dirty.txt").write_text("not committed: not part of the branch\n")
    proc = jg.cli("review", "--base", "main")
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(jg)
    diff = _diff_in(run["prompt"])
    assert diff.encode() == git_bytes(repo, "diff", "--binary", "--no-renames", "main...HEAD")
    assert "since it forked from main" in run["prompt"]


def test_adversarial_review_challenges_the_design_and_appends_the_focus(
    jg: Env, repo: Path
) -> None:
    (repo / "a.txt").write_text("changed\n")
    proc = jg.cli("review", "--adversarial", "the retry logic", "disk full")
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(jg)
    assert "simpler alternative" in run["prompt"]
    assert "Focus especially on: the retry logic disk full" in run["prompt"]
    assert jg.cli_json("status", "--all")["jobs"][0]["adversarial"] is True


def test_a_diff_too_large_is_cut_with_a_marker_naming_the_files_to_read(
    jg: Env, repo: Path
) -> None:
    (repo / "a.txt").write_text("small change\n")
    (repo / "huge.txt").write_text("".join(f"line {i} of a big file\n" for i in range(20000)))
    (repo / "zz-after.txt").write_text("after the big one\n")
    proc = jg.cli("review", "--json")
    assert proc.returncode == 0, proc.stderr  # the prompt fits in one argument
    (run,) = _runs(jg)
    prompt = run["prompt"]
    assert len(prompt.encode()) < 128 * 1024
    assert "+small change" in prompt  # a.txt, before the cut, is whole
    marker = prompt[prompt.index(review.CUT_MARKER) :]
    assert "huge.txt" in marker and "zz-after.txt" in marker and "a.txt" not in marker
    assert "Read these files yourself" in marker
    job = jg.cli_json("status", "--all")["jobs"][0]
    assert job["reviewCut"] is True


def test_fit_cuts_inside_the_first_file_at_a_line_when_it_alone_is_too_big(
    tmp_path: Path,
) -> None:
    change = jgit.Change(b"diff --git a/x b/x\n" + b"+line\n" * 100, ("x",))
    shown, unread = review.fit(change, limit=50)
    assert shown.endswith(b"\n") and len(shown) <= 50
    assert unread == ("x",)
    assert review.fit(change, limit=10_000) == (change.diff, ())


def test_review_with_an_agent_without_a_read_only_profile_is_refused(jg: Env, repo: Path) -> None:
    (repo / "a.txt").write_text("changed\n")
    jg.cli("config", "set", "agents.mine", json.dumps(["mine", "{prompt}"]))
    proc = jg.cli("review", "--agent", "mine")
    assert proc.returncode == 2
    assert "has no read-only review profile" in proc.stderr
    assert _runs(jg) == []


def test_structured_reads_the_schemas_json_and_a_text_reviews_verdict_line() -> None:
    as_json = json.dumps(
        {
            "verdict": "reject",
            "summary": "s",
            "findings": [{"file": "f.py", "line": 3, "severity": "high", "text": "t"}],
        }
    )
    found = review.structured(as_json)
    assert found is not None and found["verdict"] == "reject"
    assert found["findings"] == [{"file": "f.py", "line": 3, "severity": "high", "text": "t"}]
    text = review.structured("All good overall.\n\n**Verdict: approve**\n")
    assert text == {"verdict": "approve", "summary": None, "findings": None}
    assert review.structured("no verdict here") is None
    assert review.structured("Verdict: maybe") is None
    assert review.structured(None) is None


def test_a_review_queues_behind_a_busy_slot_and_runs_when_it_frees(jg: Env, repo: Path) -> None:
    (repo / "a.txt").write_text("changed\n")
    assert jg.cli("config", "set", "maxParallel", "1").returncode == 0
    blocker = json.loads(jg.cli("run", "--background", "--json", "--", "sleep", "300").stdout)
    proc = jg.cli("review", "--queue", "--json")
    assert proc.returncode == 0, proc.stderr
    brief = json.loads(proc.stdout)
    assert (brief["kind"], brief["status"]) == ("review", "queued")
    assert brief["queue"]["position"] == 1
    assert _runs(jg) == []  # no agent ran while the slot was taken
    assert jg.cli("cancel", blocker["id"], "--grace", "1").returncode == 0
    assert jg.cli("wait", brief["id"], "--timeout", "60").returncode == 0
    (run,) = _runs(jg)
    assert "read-only" in run["argv"]
