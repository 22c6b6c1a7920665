"""Workspace root and state dir resolution."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import platformdirs
import pytest

from conftest import Env
from jobgate.state import workspace
from jobgate.state.errors import JobgateError


def test_workspace_root_is_the_git_top_level(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    deep = tmp_path / "repo" / "a" / "b"
    deep.mkdir(parents=True)
    assert workspace.find_workspace_root(str(deep)) == os.path.realpath(tmp_path / "repo")


def test_workspace_root_without_git_is_the_directory_itself(tmp_path: Path) -> None:
    assert workspace.find_workspace_root(str(tmp_path)) == os.path.realpath(tmp_path)


def test_missing_workspace_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JobgateError, match="does not exist"):
        workspace.find_workspace_root(str(tmp_path / "nope"))


def test_workspace_path_that_is_a_file_is_not_called_missing(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(JobgateError, match=r"is not a directory: .*notes\.txt$"):
        workspace.find_workspace_root(str(a_file))


def test_state_dir_name_is_slug_and_sha256_prefix_of_realpath(tmp_path: Path) -> None:
    root = tmp_path / "My Repo!"
    root.mkdir()
    digest = hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:16]
    assert workspace.state_dir_name(str(root)) == f"My-Repo-{digest}"


def test_state_root_prefers_jobgate_home_and_ignores_claude_plugin_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JOBGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAUDE_PLUGIN_DATA", str(tmp_path / "plugin"))
    assert workspace.state_root() == str(tmp_path / "home")
    monkeypatch.delenv("JOBGATE_HOME")
    with_plugin = workspace.state_root()
    monkeypatch.delenv("CLAUDE_PLUGIN_DATA")
    assert workspace.state_root() == with_plugin


def test_default_state_root_matches_platformdirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JOBGATE_HOME", raising=False)
    for xdg in (None, str(tmp_path / "xdg")):
        if xdg is None:
            monkeypatch.delenv("XDG_STATE_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_STATE_HOME", xdg)
        expected = platformdirs.user_state_dir("jobgate", appauthor=False)
        assert workspace.state_root() == expected


def test_a_hook_and_a_terminal_see_the_same_jobs(jg: Env) -> None:
    brief = jg.start("true")
    as_hook = jg.cli(
        "status", "--json", env={"CLAUDE_PLUGIN_DATA": str(jg.workspace.parent / "pd")}
    )
    assert brief["id"] in as_hook.stdout


def test_subdirectory_of_a_repo_shares_the_repos_state(jg: Env) -> None:
    (jg.workspace / ".git").mkdir()
    sub = jg.workspace / "pkg" / "mod"
    sub.mkdir(parents=True)
    brief = jg.start("true")
    jg.wait_for(brief["id"], lambda j: j["status"] == "completed")
    listed = jg.cli("status", "--json", cwd=sub)
    assert brief["id"] in listed.stdout
    assert jg.cli("--cwd", str(sub), "status", "--json").stdout == listed.stdout


def test_state_root_reached_through_a_symlink_is_accepted(tmp_path: Path) -> None:
    real = tmp_path / "real-root"
    real.mkdir()
    link = tmp_path / "link-root"
    link.symlink_to(real)
    env = Env(tmp_path)
    env.env["JOBGATE_HOME"] = str(link)
    proc = env.cli("run", "--", "true")
    assert proc.returncode == 0, proc.stderr
    assert len(list(real.iterdir())) == 1
