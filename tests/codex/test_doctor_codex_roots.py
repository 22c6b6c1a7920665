"""`jobgate doctor codex`: finding the state roots (--state-root, the default places),
the real CLI as a subprocess, and --help.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from codex_plugin_fixtures import (
    by_id,
    dead_pid,
    job,
    load,
    make_workspace,
    run_doctor,
    snapshot,
    zombie_pid,
)

from jobgate.cli import doctor as doctor_cli
from jobgate.codex import doctor as doctor_codex

REPO = Path(__file__).resolve().parents[2]
CLI_EXISTS = (REPO / "src" / "jobgate" / "cli" / "main.py").exists()


# ---------------------------------------------------------------- finding state


def test_state_root_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    result = run_doctor("--state-root", tmp_path / "nope")
    assert result.code == 2
    assert "nope" in result.err and result.out == ""


def test_empty_state_root_is_a_usage_error_not_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workspace(tmp_path, [job("task-dead", dead_pid())])
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    result = run_doctor("--state-root", "", "--fix")
    assert result.code == 2 and result.out == ""
    assert len(result.err.strip().splitlines()) == 1 and "empty" in result.err
    assert snapshot(tmp_path) == before


def test_state_root_that_is_a_file_is_not_a_directory(tmp_path: Path) -> None:
    state = make_workspace(tmp_path, [job("task-dead", dead_pid())]) / "state.json"
    result = run_doctor("--state-root", state)
    assert result.code == 2 and result.out == ""
    assert result.err.strip() == f"jobgate: --state-root {state}: not a directory"


def test_plugin_data_folder_as_state_root_means_its_state_folder_and_says_so(
    tmp_path: Path,
) -> None:
    data = tmp_path / "codex-openai-codex"
    ws = make_workspace(data / "state", [job("task-dead", dead_pid())])
    report = run_doctor("--state-root", data, "--json").json()
    assert report["stateRoots"] == [str(data / "state")]
    assert report["workspaces"] == [str(ws)] and list(by_id(report)) == ["task-dead"]
    assert len(report["notes"]) == 1 and str(data / "state") in report["notes"][0]
    text = run_doctor("--state-root", data).out
    assert text.splitlines()[0] == report["notes"][0] and "plugin data folder" in text


def test_state_root_without_workspace_folders_says_so_plainly(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "not-a-workspace").mkdir(parents=True)
    result = run_doctor("--state-root", empty)
    assert result.code == 0
    assert f"No workspace folder (a folder holding state.json) in {empty}." in result.out
    assert run_doctor("--state-root", empty, "--json").json()["emptyStateRoots"] == [str(empty)]


def test_state_root_option_is_repeatable_and_a_workspace_folder_is_accepted(
    tmp_path: Path,
) -> None:
    one = tmp_path / "one"
    two = tmp_path / "two"
    make_workspace(one, [job("task-1", dead_pid())])
    ws2 = make_workspace(two, [job("task-2", dead_pid())])
    report = run_doctor("--state-root", one, "--state-root", ws2, "--json").json()
    assert report["stateRoots"] == [str(one), str(ws2)]
    assert sorted(by_id(report)) == ["task-1", "task-2"]


def test_any_subfolder_with_state_json_is_a_workspace_folder(root: Path) -> None:
    make_workspace(root, [job("task-1", dead_pid())], name="odd name")
    (root / "no-state-here").mkdir()
    (root / "stray.txt").write_text("x")
    report = run_doctor("--state-root", root, "--json").json()
    assert report["workspaces"] == [str(root / "odd name")]


def test_default_state_roots_cover_plugin_data_codex_plugins_in_home_and_temp_dir(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    config = tmp_path / "config"
    for top in (home / ".claude", config):
        for plugin in ("codex-openai-codex", "other"):
            (top / "plugins" / "data" / plugin).mkdir(parents=True)
    env = {"CLAUDE_PLUGIN_DATA": str(tmp_path / "pd"), "CLAUDE_CONFIG_DIR": str(config)}
    search = doctor_codex.default_search(env=env, home=home, tmpdir=str(tmp_path / "t"))
    data = home / ".claude" / "plugins" / "data"
    assert search.roots == [
        tmp_path / "pd" / "state",
        config / "plugins" / "data" / "codex-openai-codex" / "state",
        data / "codex-openai-codex" / "state",
        tmp_path / "t" / "codex-companion",
    ]  # another plugin's data folder is not searched
    assert search.places == [
        str(tmp_path / "pd" / "state"),
        str(config / "plugins" / "data" / "*codex*" / "state"),
        str(data / "*codex*" / "state"),
        str(tmp_path / "t" / "codex-companion"),
    ]
    bare = doctor_codex.default_state_roots(env={}, home=home, tmpdir=str(tmp_path / "t"))
    assert bare == [data / "codex-openai-codex" / "state", tmp_path / "t" / "codex-companion"]


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLAUDE_PLUGIN_DATA",)}
    for name in ("home", "tmp", "plugin-data"):
        (tmp_path / name).mkdir(exist_ok=True)
    env.update(
        HOME=str(tmp_path / "home"),
        TMPDIR=str(tmp_path / "tmp"),
        CLAUDE_PLUGIN_DATA=str(tmp_path / "plugin-data"),
    )
    return env


@pytest.mark.skipif(not CLI_EXISTS, reason="src/jobgate/cli/main.py does not exist yet")
def test_cli_subprocess_finds_and_fixes_state_in_the_default_places(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    env = _isolated_env(tmp_path)
    in_data = make_workspace(tmp_path / "plugin-data" / "state", [job("task-a", dead_pid())])
    in_home = make_workspace(
        tmp_path / "home" / ".claude" / "plugins" / "data" / "codex-x" / "state",
        [job("task-b", zombie_pid(procs))],
    )
    in_tmp = make_workspace(tmp_path / "tmp" / "codex-companion", [job("task-c", dead_pid())])

    report = run_doctor("--json", env=env)
    assert report.code == 1, report.err
    assert sorted(f["jobId"] for f in report.json()["findings"]) == ["task-a", "task-b", "task-c"]

    fixed = run_doctor("--fix", env=env)
    assert fixed.code == 0, fixed.err
    assert "Fixed 3 jobs" in fixed.out
    for ws in (in_data, in_home, in_tmp):
        assert load(ws / "state.json")["jobs"][0]["status"] == "failed"
    assert run_doctor(env=env).code == 0

    help_text = subprocess.run(
        [sys.executable, "-m", "jobgate", "doctor", "codex", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "examples:" in help_text and "exit status:" in help_text


@pytest.mark.skipif(not CLI_EXISTS, reason="src/jobgate/cli/main.py does not exist yet")
def test_cli_subprocess_searches_claude_config_dir_codex_plugins_only(tmp_path: Path) -> None:
    env = _isolated_env(tmp_path)
    config = tmp_path / "config"
    env["CLAUDE_CONFIG_DIR"] = str(config)
    data = config / "plugins" / "data"
    codex = make_workspace(data / "openai-codex" / "state", [job("task-a", dead_pid())])
    # another plugin's look-alike state must never be rewritten in Codex's failure shape
    other = make_workspace(data / "someone-else" / "state", [job("task-o", dead_pid())])
    other_before = snapshot(other)

    fixed = run_doctor("--fix", "--json", env=env)
    assert fixed.code == 0, fixed.err
    report = fixed.json()
    assert [f["jobId"] for f in report["findings"]] == ["task-a"]
    assert load(codex / "state.json")["jobs"][0]["status"] == "failed"
    assert snapshot(other) == other_before
    assert report["searched"] == [
        str(tmp_path / "plugin-data" / "state"),
        str(data / "*codex*" / "state"),
        str(tmp_path / "home" / ".claude" / "plugins" / "data" / "*codex*" / "state"),
        str(tmp_path / "tmp" / "codex-companion"),
    ]  # patterns that matched nothing are listed too
    assert report["stateRoots"] == [str(data / "openai-codex" / "state")]


@pytest.mark.skipif(not CLI_EXISTS, reason="src/jobgate/cli/main.py does not exist yet")
def test_cli_subprocess_empty_state_root_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = run_doctor("--state-root", "", env=_isolated_env(tmp_path))
    assert result.code == 2 and result.out == ""
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


@pytest.mark.skipif(not CLI_EXISTS, reason="src/jobgate/cli/main.py does not exist yet")
def test_cli_subprocess_bad_state_root_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = run_doctor("--state-root", tmp_path / "missing", env=_isolated_env(tmp_path))
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_help_explains_verdicts_tolerance_exit_status_with_an_example() -> None:
    parser = argparse.ArgumentParser(prog="jobgate")
    doctor_cli.add_parser(parser.add_subparsers())
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args(["doctor", "codex", "--help"])
    help_text = out.getvalue()
    for verdict in ("gone", "reused", "alive", "unverifiable"):
        assert verdict in help_text
    assert f"tolerance of {doctor_codex.TIME_TOLERANCE_SECONDS:g} seconds" in help_text
    unverifiable = help_text[help_text.index("  unverifiable") : help_text.index("No process")]
    assert "start" in unverifiable and "time unreadable" in unverifiable
    assert "$CLAUDE_CONFIG_DIR/plugins/data/*codex*/state" in help_text
    assert "~/.claude/plugins/data/*codex*/state" in help_text
    assert "exit status:" in help_text and "1  stuck jobs remain" in help_text
    assert "jobgate doctor codex --fix" in help_text


def test_nothing_found_anywhere_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAUDE_PLUGIN_DATA", str(tmp_path / "pd"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    result = run_doctor()
    assert result.code == 0
    assert "No Codex companion state found" in result.out
    assert str(tmp_path / "pd" / "state") in result.out
    assert str(tmp_path / "home" / ".claude" / "plugins" / "data" / "*codex*" / "state") in (
        result.out
    )
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    searched = run_doctor("--json").json()["searched"]
    assert searched == [
        str(tmp_path / "pd" / "state"),
        str(tmp_path / "home" / ".claude" / "plugins" / "data" / "*codex*" / "state"),
        str(tmp_path / "codex-companion"),
    ]
