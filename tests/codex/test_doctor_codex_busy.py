"""`doctor codex --fix` over a state.json another process holds open (Windows refuses to
replace such a file): retried briefly, then "NOT fixed" naming the file, and the
plugin's files unchanged. The Windows sharing violation is injected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from codex_plugin_fixtures import by_id, dead_pid, job, load, make_workspace, run_doctor

from jobgate.state import replacing


def _held_open(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    exc = PermissionError(13, "The process cannot access the file")
    exc.winerror = 32  # type: ignore[attr-defined]  # ERROR_SHARING_VIOLATION
    raise exc


def test_fix_of_a_state_file_held_open_says_so_and_changes_nothing(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid())])
    before = (ws / "state.json").read_bytes()
    slept: list[float] = []
    monkeypatch.setattr(replacing.os, "replace", _held_open)
    monkeypatch.setattr(replacing.time, "sleep", slept.append)
    result = run_doctor("--state-root", root, "--fix", "--json")
    found = by_id(result.json())["task-dead"]
    assert found["fixed"] is False
    assert found["action"].startswith(f"NOT fixed: could not rewrite {ws / 'state.json'}")
    assert "another process has the file open" in found["action"]
    assert "nothing was changed" in found["action"]
    assert result.code == 1
    assert slept == list(replacing.RETRY_DELAYS)
    assert (ws / "state.json").read_bytes() == before
    assert load(ws / "state.json")["jobs"][0]["status"] == "running"
    assert not [p for p in ws.iterdir() if ".tmp" in p.name]
