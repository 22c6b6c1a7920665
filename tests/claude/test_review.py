"""The review gate's runner (:func:`jobgate.claude.review.run`) on its own: a command
line it cannot parse, a timeout that ends the whole reviewer group, a stray process
holding stdout, a verdict given before exit."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest

from conftest import pid_alive

pytestmark = pytest.mark.timeout(90)


def test_review_module_reports_an_unparsable_command_line() -> None:
    from jobgate.claude import review

    outcome = review.run("reviewer 'unterminated", "p", timeout=5, cwd=".")
    assert outcome["verdict"] == "error" and "cannot be parsed" in outcome["text"]


def test_review_module_kills_the_reviewers_whole_group_on_timeout(tmp_path: Path) -> None:
    from jobgate.claude import review

    pidfile = tmp_path / "child.pid"
    command = f"sh -c 'sleep 60 & echo $! > {shlex.quote(str(pidfile))}; wait'"
    outcome = review.run(command, "p", timeout=1, cwd=str(tmp_path))
    assert outcome["verdict"] == "error"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child):
        assert time.monotonic() < deadline, "the reviewer's child survived the timeout"
        time.sleep(0.05)


def _reap_pidfile(pidfile: Path) -> None:
    """Kill the stray process a test reviewer left behind (it was told to outlive it)."""
    import os
    import signal

    try:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def test_a_reviewers_stray_process_holding_stdout_cannot_stretch_the_timeout(
    tmp_path: Path,
) -> None:
    from jobgate.claude import review

    pidfile = tmp_path / "stray.pid"
    # the stray moves to its own session (out of reach of the group kill) and keeps the
    # reviewer's stdout open for 30 s; the reviewer itself never answers
    command = "sh -c 'setsid sleep 30 & echo $! > " + shlex.quote(str(pidfile)) + "; sleep 60'"
    try:
        started = time.monotonic()
        outcome = review.run(command, "p", timeout=1, cwd=str(tmp_path))
        took = time.monotonic() - started
    finally:
        _reap_pidfile(pidfile)
    assert outcome["verdict"] == "error" and "reviewTimeout (1s)" in outcome["text"]
    assert took < 15, f"review.run took {took:.1f}s with a 1 s reviewTimeout"


def test_a_verdict_given_before_exit_counts_even_if_a_child_keeps_stdout_open(
    tmp_path: Path,
) -> None:
    from jobgate.claude import review

    pidfile = tmp_path / "stray.pid"
    command = "sh -c 'sleep 30 & echo $! > " + shlex.quote(str(pidfile)) + '; echo "ALLOW: ok"\''
    try:
        outcome = review.run(command, "p", timeout=20, cwd=str(tmp_path))
    finally:
        _reap_pidfile(pidfile)
    assert outcome == {"verdict": "allow", "text": "ok"}
