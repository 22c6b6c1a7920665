"""`--worktree` on `jobgate task` and `jobgate run`, and `jobgate diff/apply/discard`,
with real git repositories, real jobs and the fake agent (tests/agents/fake_agent.py)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from gitrepos import agent_workspace, git, recorded_runs, tree_fingerprint

from conftest import Env

#: the built-in codex profile, but allowed to write (a task that edits files)
WRITING_CODEX = [
    "codex",
    "exec",
    "--skip-git-repo-check",
    "--sandbox",
    "workspace-write",
    "--output-last-message",
    "{lastMessageFile}",
    "--",
    "{prompt}",
]


@pytest.fixture
def repo(jg: Env, tmp_path: Path) -> Path:
    """The workspace as a git repository with one commit; the fake agents on PATH."""
    files = {"a.txt": "one\ntwo\nthree\n", "src/m.py": "x = 1\n"}
    agent_workspace(jg.env, jg.workspace, tmp_path, files)
    proc = jg.cli("config", "set", "agents.codex", json.dumps(WRITING_CODEX))
    assert proc.returncode == 0, proc.stderr
    return jg.workspace


def _task(jg: Env, prompt: str, write: str, *extra: str) -> dict[str, Any]:
    proc = jg.cli(
        "task", "--worktree", "--background", "--json", *extra, prompt, env={"FAKE_WRITE": write}
    )
    assert proc.returncode == 0, proc.stderr
    brief: dict[str, Any] = json.loads(proc.stdout)
    return brief


def _finished(jg: Env, job_id: str) -> dict[str, Any]:
    return jg.wait_for(job_id, lambda j: j["status"] not in ("queued", "running"), timeout=60)


def test_two_parallel_worktree_tasks_writing_the_same_file_each_keep_their_own_change(
    jg: Env, repo: Path
) -> None:
    before = tree_fingerprint(repo, with_git=False)
    starts = [
        jg.popen(
            "task", "--worktree", "--background", "--json", f"task {who}",
            env={**jg.env, "FAKE_WRITE": f"same.txt=written by {who}\n"},
        )
        for who in ("A", "B")
    ]  # fmt: skip
    briefs = []
    for start in starts:  # started together: both worktrees are made at the same time
        out, err = start.communicate(timeout=120)
        assert start.returncode == 0, err
        briefs.append(json.loads(out))
    a, b = briefs
    for brief in (a, b):
        assert _finished(jg, brief["id"])["status"] == "completed"

    for brief, who in ((a, "A"), (b, "B")):
        job = jg.job(brief["id"])
        path = Path(job["worktreePath"])
        assert path.parent.parent == jg.state_dir()  # <state dir>/worktrees/<id>
        assert job["worktreeBranch"] == f"jobgate/{brief['id']}"
        assert job["worktreeBase"] == git(repo, "rev-parse", "HEAD").strip()
        assert (path / "same.txt").read_text() == f"written by {who}\n"
        diff = jg.cli("diff", brief["id"])
        assert diff.returncode == 0, diff.stderr
        assert f"+written by {who}" in diff.stdout
        assert "written by " + ("B" if who == "A" else "A") not in diff.stdout
    runs = {r["prompt"]: r["cwd"] for r in recorded_runs(Path(jg.env["FAKE_RECORD"]))}
    assert runs["task A"] != runs["task B"]
    assert tree_fingerprint(repo, with_git=False) == before  # the checkout was never written


def test_a_worktree_job_from_a_subfolder_runs_in_that_folder_of_its_worktree(
    jg: Env, repo: Path
) -> None:
    proc = jg.cli(
        "run", "--worktree", "--background", "--json", "--", sys.executable, "-c",
        "import os; open('here.txt', 'w').write(os.getcwd())",
        cwd=repo / "src",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    job = _finished(jg, json.loads(proc.stdout)["id"])
    assert job["cwd"] == os.path.join(job["worktreePath"], "src")
    assert (Path(job["worktreePath"]) / "src" / "here.txt").exists()
    assert not (repo / "src" / "here.txt").exists()


def test_a_dirty_tree_is_told_the_worktree_starts_from_head_without_its_changes(
    jg: Env, repo: Path
) -> None:
    (repo / "a.txt").write_text("uncommitted edit\n")
    proc = jg.cli("run", "--worktree", "--", "true")
    assert proc.returncode == 0, proc.stderr
    assert "starts from HEAD" in proc.stderr and "without them" in proc.stderr
    job = jg.cli_json("status", "--all")["jobs"][0]
    assert (Path(job["worktreePath"]) / "a.txt").read_text() == "one\ntwo\nthree\n"


def test_worktree_outside_a_git_repository_is_one_line_and_records_nothing(
    jg: Env, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for args in (["run", "--worktree", "--", "true"], ["task", "--worktree", "do it"]):
        proc = jg.cli("--cwd", str(plain), *args)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"jobgate: error: not a git repository: {os.path.realpath(plain)}"
        ]
    status = jg.cli("--cwd", str(plain), "status", "--all", "--json")
    assert status.returncode != 0 or json.loads(status.stdout)["jobs"] == []


def test_a_task_whose_agent_is_missing_leaves_no_worktree_and_no_branch(
    jg: Env, repo: Path
) -> None:
    proc = jg.cli("task", "--worktree", "--agent", "nosuch", "do it")
    assert proc.returncode == 2
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "branch", "--list", "jobgate/*") == ""


def test_diff_of_a_job_without_a_worktree_is_one_clear_line(jg: Env, repo: Path) -> None:
    job = jg.start("true")
    proc = jg.cli("diff", job["id"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"jobgate: error: job {job['id']} has no worktree (only jobs started with --worktree "
        "have one)"
    ]


def test_apply_brings_the_change_in_and_then_discard_needs_no_force(jg: Env, repo: Path) -> None:
    brief = _task(jg, "edit", "new.txt=from the job\n")
    _finished(jg, brief["id"])
    index = (repo / ".git" / "index").read_bytes()

    proc = jg.cli("apply", brief["id"], "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["changed"] == ["new.txt"]
    assert (repo / "new.txt").read_text() == "from the job\n"
    assert (repo / ".git" / "index").read_bytes() == index

    proc = jg.cli("discard", brief["id"])
    assert proc.returncode == 0, proc.stderr
    job = jg.job(brief["id"])
    assert not Path(job["worktreePath"]).exists()
    assert job["worktreeRemovedAt"] and "keepReason" not in job
    assert git(repo, "worktree", "prune", "--dry-run", "-v") == ""
    assert git(repo, "branch", "--list", "jobgate/*") == ""
    assert jg.cli("diff", brief["id"]).returncode == 2  # discarded: one clear line


def test_apply_of_a_conflicting_change_leaves_the_users_tree_byte_for_byte(
    jg: Env, repo: Path
) -> None:
    brief = _task(jg, "edit", "a.txt=one\nTWO from the job\nthree\n")
    _finished(jg, brief["id"])
    (repo / "a.txt").write_text("one\ntwo from the user\nthree\n")
    (repo / "untracked.txt").write_text("mine\n")
    before = tree_fingerprint(repo)

    proc = jg.cli("apply", brief["id"])

    assert proc.returncode == 1
    assert "a.txt" in proc.stderr and "nothing was changed" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert tree_fingerprint(repo) == before
    as_json = jg.cli("apply", brief["id"], "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["conflicts"] == ["a.txt"]
    assert tree_fingerprint(repo) == before


def test_discard_refuses_a_change_never_applied_without_force(jg: Env, repo: Path) -> None:
    brief = _task(jg, "edit", "new.txt=unapplied\n")
    job = _finished(jg, brief["id"])
    proc = jg.cli("discard", brief["id"])
    assert proc.returncode == 1
    assert "never applied" in proc.stderr and "new.txt" in proc.stderr
    assert Path(job["worktreePath"]).exists()
    assert jg.cli("discard", brief["id"], "--force").returncode == 0
    assert not Path(job["worktreePath"]).exists()


def test_a_running_jobs_worktree_is_never_removed_not_even_with_force(jg: Env, repo: Path) -> None:
    proc = jg.cli("run", "--worktree", "--background", "--json", "--", "sleep", "60")
    job_id = json.loads(proc.stdout)["id"]
    job = jg.wait_for(job_id, lambda j: j["status"] == "running")
    for args in (["discard", job_id], ["discard", job_id, "--force"]):
        refused = jg.cli(*args)
        assert refused.returncode == 1
        assert "never removed" in refused.stderr
    assert Path(job["worktreePath"]).is_dir()
    assert jg.cli("cancel", job_id, "--grace", "1").returncode == 0
    assert Path(job["worktreePath"]).is_dir()  # cancelling removes nothing either


def test_a_job_found_dead_is_no_longer_running_and_may_be_discarded(jg: Env, repo: Path) -> None:
    from conftest import kill9

    proc = jg.cli("run", "--worktree", "--background", "--json", "--", "sleep", "60")
    job_id = json.loads(proc.stdout)["id"]
    job = jg.wait_for(job_id, lambda j: j["status"] == "running" and bool(j.get("commandPid")))
    kill9(job["commandPid"], job["pid"])
    deadline = time.monotonic() + 30
    while (refused := jg.cli("discard", job_id)).returncode != 0:
        assert time.monotonic() < deadline, refused.stderr
        time.sleep(0.2)
    assert not Path(job["worktreePath"]).exists()


def test_retention_keeps_a_job_whose_worktree_holds_its_change_and_says_so(
    jg: Env, repo: Path
) -> None:
    assert jg.cli("config", "set", "maxJobs", "1").returncode == 0
    brief = _task(jg, "edit", "kept.txt=keep me\n")
    _finished(jg, brief["id"])
    for _ in range(3):
        proc = jg.cli("run", "--", "true")
        assert proc.returncode == 0
    ids = [j["id"] for j in jg.cli_json("status", "--all")["jobs"]]
    assert len(ids) == 2 and brief["id"] in ids  # the newest run, and the job kept
    assert f"kept job {brief['id']} past maxJobs: its worktree holds" in proc.stderr
    assert Path(jg.job(brief["id"])["worktreePath"]).is_dir()


def test_the_session_ending_cancels_a_worktree_job_but_keeps_its_worktree(
    jg: Env, repo: Path
) -> None:
    from conftest import run_hook

    proc = jg.cli(
        "run", "--worktree", "--background", "--json", "--session", "s1", "--", "sleep", "60"
    )
    job_id = json.loads(proc.stdout)["id"]
    job = jg.wait_for(job_id, lambda j: j["status"] == "running" and bool(j.get("commandPid")))
    ended = run_hook(jg, "session-end", session="s1", reason="prompt_input_exit")
    assert ended.returncode == 0, ended.stderr
    assert jg.wait_for(job_id, lambda j: j["status"] == "cancelled")["status"] == "cancelled"
    assert Path(job["worktreePath"]).is_dir()
    assert job["worktreePath"] in git(repo, "worktree", "list", "--porcelain")


def test_a_worktree_no_record_names_is_swept_by_the_next_worktree_launch(
    jg: Env, repo: Path
) -> None:
    """A launcher killed between `git worktree add` and its commit leaves a worktree and a
    branch that no record names; the next `--worktree` launch removes both once they are
    old, and leaves recorded jobs' worktrees alone."""
    kept = _task(jg, "keep", "k.txt")
    _finished(jg, kept["id"])
    folder = Path(jg.store().state_dir) / "worktrees"
    orphan = folder / "task-orphan1-000000"
    git(repo, "worktree", "add", "--quiet", "-b", "jobgate/task-orphan1-000000", str(orphan))
    young = folder / "task-orphan2-000000"
    git(repo, "worktree", "add", "--quiet", "-b", "jobgate/task-orphan2-000000", str(young))
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    os.utime(folder / kept["id"], (old, old))

    proc = jg.cli("run", "--worktree", "--", "true")
    assert proc.returncode == 0, proc.stderr

    listed = git(repo, "worktree", "list", "--porcelain")
    assert str(orphan) not in listed and not orphan.exists()
    assert "jobgate/task-orphan1-000000" not in git(repo, "branch", "--list", "jobgate/*")
    assert str(young) in listed  # too young: perhaps a launch in progress
    assert (folder / kept["id"]).is_dir() and str(folder / kept["id"]) in listed
    assert git(repo, "worktree", "prune", "--dry-run", "--verbose") == ""
