"""A hand-edited config.json: a value jobgate cannot use is said out loud (never silently
the default), and a damaged file always has a way out (``config unset``, ``config reset``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Env

WARNING = (
    "jobgate: warning: config.json: stopReviewGate: bad value 1 (expected true or false); "
    "using the default false"
)


def _config_file(jg: Env) -> Path:
    assert jg.cli("config", "set", "waitForJobs", "true").returncode == 0
    return jg.state_dir() / "config.json"


def _write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data))


def test_a_wrong_typed_value_is_warned_about_once_naming_key_value_and_default(jg: Env) -> None:
    config = _config_file(jg)
    _write(config, {"stopReviewGate": 1, "waitForJobs": True})
    proc = jg.cli("run", "--", "true")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [WARNING]  # once, though the run reads it twice


def test_a_wrong_typed_number_is_warned_about_too(jg: Env) -> None:
    _write(_config_file(jg), {"maxJobs": "x"})
    proc = jg.cli("config", "get", "maxJobs")
    assert proc.returncode == 0 and proc.stdout == "50\n"
    [line] = proc.stderr.splitlines()
    assert line.startswith('jobgate: warning: config.json: maxJobs: bad value "x" (expected')
    assert line.endswith("using the default 50")


def test_config_get_shows_the_unusable_value_beside_the_default_in_use(jg: Env) -> None:
    _write(_config_file(jg), {"stopReviewGate": 1, "waitForJobs": True})
    proc = jg.cli("config", "get")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    [gate] = [ln for ln in lines if ln.startswith("stopReviewGate = ")]
    assert gate == "stopReviewGate = false  # config.json: " + WARNING.split("config.json: ")[1]
    assert "waitForJobs = true" in lines
    assert proc.stderr.splitlines() == [WARNING]


def test_config_unset_removes_one_key_and_keeps_the_others(jg: Env) -> None:
    config = _config_file(jg)
    _write(config, {"stopReviewGate": 1, "waitForJobs": True})
    proc = jg.cli("config", "unset", "stopReviewGate")
    assert proc.returncode == 0, proc.stderr
    assert "stopReviewGate" in proc.stdout
    assert json.loads(config.read_text()) == {"waitForJobs": True}
    after = jg.cli("config", "get")
    assert after.returncode == 0 and after.stderr == ""


def test_config_unset_of_an_unknown_key_is_one_line_exit_2_and_changes_nothing(jg: Env) -> None:
    config = _config_file(jg)
    before = config.read_bytes()
    proc = jg.cli("config", "unset", "noSuchKey")
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith("jobgate: error: unknown config key 'noSuchKey'")
    assert proc.stdout == "" and config.read_bytes() == before


def test_config_unset_removes_an_unknown_key_found_in_the_file(jg: Env) -> None:
    config = _config_file(jg)
    _write(config, {"typoKey": 1, "waitForJobs": True})
    assert "typoKey" in jg.cli("config", "get").stderr
    assert jg.cli("config", "unset", "typoKey").returncode == 0
    assert json.loads(config.read_text()) == {"waitForJobs": True}


@pytest.mark.parametrize("content", [b"{broken", b"[1, 2]"], ids=["not-json", "not-an-object"])
def test_an_unparseable_config_names_the_way_out_and_reset_moves_it_aside(
    jg: Env, content: bytes
) -> None:
    config = _config_file(jg)
    config.write_bytes(content)
    refused = jg.cli("run", "--", "true")
    assert refused.returncode == 2
    [line] = refused.stderr.splitlines()
    assert "config.json" in line and "jobgate config reset" in line
    assert jg.cli_json("status", "--all")["jobs"] == []  # nothing ran

    proc = jg.cli("config", "reset")
    assert proc.returncode == 0, proc.stderr
    [backup] = list(config.parent.glob("config.json.bak-*"))
    assert str(backup) in proc.stdout
    assert backup.read_bytes() == content  # kept byte for byte
    assert not config.exists()
    assert jg.cli("run", "--", "true").returncode == 0
    assert jg.cli_json("config", "get")["waitForJobs"] is False  # the defaults again


def test_config_reset_without_a_config_file_changes_nothing(jg: Env) -> None:
    proc = jg.cli("config", "reset", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"movedTo": None}
    assert not jg.home.exists()  # no state dir was made for it
