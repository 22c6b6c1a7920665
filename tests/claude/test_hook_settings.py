"""The Stop hook reads a hand-edited ``config.json`` value it cannot use as the default,
and says so: one warning on stderr naming the key (issue 14, item 7), as every other
reader of the settings does; the hook still does its work (it fails open)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from conftest import Env, run_hook, start_running

pytestmark = pytest.mark.timeout(90)


def _hand_edit(jg: Env, **settings: Any) -> None:
    """Write ``config.json`` as a person would, past ``config set``'s validation."""
    (jg.state_dir() / "config.json").write_text(json.dumps(settings))


def _warnings(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("jobgate: warning: ")]


def test_stop_warns_once_naming_a_wrong_typed_setting_and_uses_its_default(jg: Env) -> None:
    job = start_running(jg, "sleep", "300", session="s1")
    # 1 is not true or false (config set would take the text "1": the file holds a number)
    _hand_edit(jg, waitForJobs=1, stopReviewGate="sometimes")
    proc = run_hook(jg, "stop", session="s1")
    assert proc.returncode == 0
    out = json.loads(proc.stdout)
    assert "decision" not in out  # the defaults, false: no block, no review
    assert job["id"] in out["systemMessage"] and job["id"] in proc.stderr  # its own notice
    assert _warnings(proc) == [
        "jobgate: warning: config.json: waitForJobs: bad value 1 (expected true or false); "
        "using the default false",
        'jobgate: warning: config.json: stopReviewGate: bad value "sometimes" '
        "(expected true or false); using the default false",
    ]
    assert "Traceback" not in proc.stderr and "fails open" not in proc.stderr


def test_stop_with_a_bad_max_stop_blocks_warns_and_still_blocks_with_the_default(
    jg: Env,
) -> None:
    start_running(jg, "sleep", "300", session="s1")
    _hand_edit(jg, waitForJobs=True, maxStopBlocks=[3])
    blocks = []
    for i in range(4):
        proc = run_hook(jg, "stop", session="s1", stop_hook_active=i > 0)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr
        assert _warnings(proc) == [
            "jobgate: warning: config.json: maxStopBlocks: bad value [3] "
            "(expected a whole number >= 1); using the default 3"
        ]
        blocks.append(json.loads(proc.stdout).get("decision") == "block")
    assert blocks == [True, True, True, False]  # the default: 3 blocks in a row
