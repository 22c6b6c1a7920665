"""jobgate.agents.git against real repositories: the change git shows, worktrees, and a
three-way apply that changes nothing on a conflict."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitrepos import GIT_ENV, git, git_bytes, init, tree_fingerprint

from jobgate.agents import git as jgit
from jobgate.state.errors import JobgateError


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    yield


def test_uncommitted_change_is_staged_unstaged_and_untracked_exactly_as_git_shows_it(
    tmp_path: Path,
) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\n", "b.txt": "bee\n", "gone.txt": "x\n"})
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "a.txt").write_text("one\nstaged\n")
    git(repo, "add", "a.txt")
    (repo / "a.txt").write_text("one\nstaged\nunstaged\n")
    (repo / "b.txt").write_text("bee changed\n")
    (repo / "new.txt").write_text("untracked\n")
    (repo / "noise.log").write_text("ignored\n")
    (repo / "gone.txt").unlink()
    index_before = (repo / ".git" / "index").read_bytes()

    change = jgit.uncommitted(str(repo))

    assert (repo / ".git" / "index").read_bytes() == index_before
    assert set(change.files) == {".gitignore", "a.txt", "b.txt", "gone.txt", "new.txt"}
    text = change.diff.decode()
    assert "+unstaged" in text and "+staged" in text and "+untracked" in text
    assert "ignored" not in text
    # exactly git's diff: what `git add -A && git diff --cached HEAD` prints
    git(repo, "add", "-A")
    expected = git_bytes(repo, "diff", "--cached", "--binary", "--no-renames", "HEAD")
    assert change.diff == expected


def test_uncommitted_change_never_writes_the_users_index(tmp_path: Path) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\n"})
    (repo / "a.txt").write_text("two\n")
    (repo / "u.txt").write_text("new\n")
    git(repo, "add", "a.txt")
    before = tree_fingerprint(repo)
    jgit.uncommitted(str(repo))
    assert tree_fingerprint(repo) == before


def test_a_repository_without_commits_shows_every_file_as_new(tmp_path: Path) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\n"}, commit=False)
    change = jgit.uncommitted(str(repo))
    assert change.files == ("a.txt",)
    assert b"new file mode" in change.diff
    assert jgit.head(str(repo)) is None


def test_a_clean_tree_has_an_empty_change(tmp_path: Path) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\n"})
    assert jgit.uncommitted(str(repo)).empty


def test_outside_a_repository_is_one_clear_line(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(JobgateError, match=r"^not a git repository: .*plain$"):
        jgit.toplevel(str(plain))


def test_an_unknown_base_ref_is_one_clear_line(tmp_path: Path) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\n"})
    for ref in ("no-such-branch", "--output=/tmp/x", ""):
        with pytest.raises(JobgateError, match=r"^unknown base ref"):
            jgit.branch_change(str(repo), ref)


def test_branch_change_runs_from_the_merge_base_not_the_bases_tip(tmp_path: Path) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\n"})
    git(repo, "switch", "-q", "-c", "feature")
    (repo / "f.txt").write_text("feature work\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feature")
    git(repo, "switch", "-q", "main")
    (repo / "m.txt").write_text("later on main\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "main moves on")
    git(repo, "switch", "-q", "feature")

    change = jgit.branch_change(str(repo), "main")

    assert change.files == ("f.txt",)
    assert change.diff == git_bytes(repo, "diff", "--binary", "--no-renames", "main...HEAD")


def _worktree(repo: Path, tmp_path: Path, name: str = "wt") -> tuple[str, str]:
    path = str(tmp_path / name)
    base = jgit.head(str(repo))
    assert base is not None
    jgit.worktree_add(str(repo), path, f"jobgate/{name}", base)
    return path, base


def test_a_jobs_change_is_committed_and_uncommitted_work_in_its_worktree(tmp_path: Path) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\n"})
    path, base = _worktree(repo, tmp_path)
    Path(path, "committed.txt").write_text("c\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "agent commit")
    Path(path, "a.txt").write_text("one\nedited\n")
    Path(path, "untracked.txt").write_text("u\n")

    change = jgit.change_since(path, base)

    assert set(change.files) == {"a.txt", "committed.txt", "untracked.txt"}


def test_worktree_remove_leaves_no_stale_entry_even_when_its_folder_is_gone(
    tmp_path: Path,
) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\n"})
    path, _base = _worktree(repo, tmp_path)
    import shutil

    shutil.rmtree(path)  # removed by hand
    jgit.worktree_remove(str(repo), path, "jobgate/wt")
    assert jgit.worktrees(str(repo)) == [str(repo)]
    assert git(repo, "worktree", "prune", "--dry-run", "-v") == ""
    assert git(repo, "branch", "--list", "jobgate/*") == ""


def _job_edit(repo: Path, tmp_path: Path, name: str, text: str, wt: str = "wt") -> bytes:
    path, base = _worktree(repo, tmp_path, wt)
    Path(path, name).write_text(text)
    return jgit.change_since(path, base).diff


def test_three_way_apply_merges_edits_to_other_lines_of_the_same_file(tmp_path: Path) -> None:
    lines = "".join(f"line {i}\n" for i in range(20))
    repo = init(tmp_path / "r", {"a.txt": lines})
    diff = _job_edit(repo, tmp_path, "a.txt", lines.replace("line 2\n", "line 2 by job\n"))
    (repo / "a.txt").write_text(lines.replace("line 17\n", "line 17 by user\n"))
    index = (repo / ".git" / "index").read_bytes()

    outcome = jgit.apply_three_way(str(repo), diff)

    assert outcome.ok and outcome.changed == ("a.txt",)
    text = (repo / "a.txt").read_text()
    assert "line 2 by job\n" in text and "line 17 by user\n" in text
    assert (repo / ".git" / "index").read_bytes() == index  # the index is not written


def test_a_conflicting_apply_changes_nothing_byte_for_byte_and_names_the_file(
    tmp_path: Path,
) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\ntwo\nthree\n", "b.txt": "bee\n"})
    path, base = _worktree(repo, tmp_path)
    Path(path, "a.txt").write_text("one\nTWO by job\nthree\n")
    Path(path, "b.txt").write_text("bee by job\n")  # this one would apply cleanly
    Path(path, "c.txt").write_text("new by job\n")
    diff = jgit.change_since(path, base).diff
    (repo / "a.txt").write_text("one\ntwo by user\nthree\n")
    (repo / "u.txt").write_text("user's untracked file\n")
    git(repo, "add", "u.txt")
    before = tree_fingerprint(repo)

    outcome = jgit.apply_three_way(str(repo), diff)

    assert not outcome.ok
    assert outcome.conflicts == ("a.txt",)
    assert tree_fingerprint(repo) == before


def test_a_new_file_where_the_user_has_one_is_a_conflict_that_changes_nothing(
    tmp_path: Path,
) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\n", ".gitignore": "*.out\n"})
    diff = _job_edit(repo, tmp_path, "x.out", "job's\n")  # git add -A skips it: ignored
    assert diff == b""
    diff = _job_edit(repo, tmp_path, "same.txt", "job's\n", wt="wt2")
    (repo / "same.txt").write_text("user's\n")
    before = tree_fingerprint(repo)
    outcome = jgit.apply_three_way(str(repo), diff)
    assert outcome.conflicts == ("same.txt",)
    assert tree_fingerprint(repo) == before


def test_binary_files_round_trip_through_apply(tmp_path: Path) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\n"})
    path, base = _worktree(repo, tmp_path)
    blob = bytes(range(256)) * 4
    Path(path, "blob.bin").write_bytes(blob)
    outcome = jgit.apply_three_way(str(repo), jgit.change_since(path, base).diff)
    assert outcome.ok
    assert (repo / "blob.bin").read_bytes() == blob
    assert os.path.exists(path)


def test_is_dirty_reads_the_tree_without_rewriting_the_index(tmp_path: Path) -> None:
    repo = init(tmp_path / "r", {"a.txt": "one\n", "same.txt": "same\n"})
    (repo / "a.txt").write_text("two\n")
    # same content, other stat data: a plain `git status` would refresh and rewrite the index
    os.utime(repo / "same.txt", (1, 1))
    before = tree_fingerprint(repo)
    assert jgit.is_dirty(str(repo))
    assert tree_fingerprint(repo) == before
