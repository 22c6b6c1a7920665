"""Whole-process wall time of the commands that sit on hot paths, each next to a bare
interpreter start: ``python -I -S -c pass`` (the baseline every ratio is against), two
other interpreter floors, ``jobgate status --json`` with 50 and 1,000 retained jobs, and
the Stop hook (``jobgate hook stop`` and the plugin's own hook command line).

The cases run interleaved, round by round (:func:`benchmarks.timing.run_interleaved`), so
drift in the machine's speed hits them all alike.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from benchmarks.environment import plugin_stop_command
from benchmarks.fixtures import SESSION
from benchmarks.timing import Case, Checker, Row, log, p90, run_interleaved

#: every row of this measurement, in table order: case key -> label
LABELS = {
    "baseline": "python -I -S -c pass (baseline)",
    "site": "python -c pass (with site)",
    "rejson": "python -c 'import re, json' (with site)",
    "status50": "status --json, 50 jobs (3 running)",
    "status1000": "status --json, 1,000 jobs (5 running)",
    "status1000all": "status --json --all, 1,000 jobs",
    "hook": "hook stop, 50 jobs (3 running)",
    "pluginhook": "plugin Stop hook (sh -c hooks.json command), 50 jobs",
}
#: the targets, as at most this many times the baseline's median
TARGETS = {"status50": 4.0, "hook": 3.0}
#: fixed notes of the rows without a target (the baseline's says how many runs it had)
NOTES = {
    "site": "floor of any console script in this environment (no target)",
    "pluginhook": (
        "what Claude Code runs: the Stop command of plugins/jobgate/hooks/hooks.json "
        "via sh -c, jobgate found on PATH (no target)"
    ),
    "rejson": (
        "floor of a console script that speaks JSON: pip's script template "
        "imports re, and json needs it too (no target)"
    ),
}


# -- checks for the timed commands --------------------------------------------------------
def check_status(expect_running: int, expect_listed: int | None) -> Checker:
    def check(proc: subprocess.CompletedProcess[bytes]) -> str | None:
        if proc.returncode != 0:
            return f"exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}"
        try:
            jobs = json.loads(proc.stdout)["jobs"]
        except (ValueError, KeyError, TypeError) as exc:
            return f"unexpected output ({exc})"
        running = sum(1 for j in jobs if j.get("status") == "running")
        if running != expect_running:
            return f"{running} running jobs reported, expected {expect_running}"
        if expect_listed is not None and len(jobs) != expect_listed:
            return f"{len(jobs)} jobs listed, expected {expect_listed}"
        return None

    return check


def check_hook(proc: subprocess.CompletedProcess[bytes]) -> str | None:
    err = proc.stderr.decode(errors="replace")
    if "Traceback" in err:
        return "traceback: " + err.strip().splitlines()[-1]
    if proc.returncode != 0:
        return f"exit {proc.returncode}: {err.strip()[:200]}"
    if proc.stdout.strip():
        # a note for the user (systemMessage) is fine; a decision is not: the gate is off
        import json

        try:
            decision = json.loads(proc.stdout).get("decision")
        except (ValueError, AttributeError):
            return f"printed something that is not a hook's JSON: {proc.stdout[:200]!r}"
        if decision is not None:
            return f"printed a decision (gate should be off): {proc.stdout[:200]!r}"
    return None


def hook_argv(jg: list[str]) -> list[str]:
    """What the plugin's hook.sh runs for the Stop hook: ``jobgate-hook stop`` where it is
    installed beside the console script ``jg``, else ``jobgate hook stop``."""
    import os
    from pathlib import Path

    fast = Path(jg[0]).with_name("jobgate-hook")
    if len(jg) == 1 and fast.is_file() and os.access(fast, os.X_OK):
        return [str(fast), "stop"]
    return [*jg, "hook", "stop"]


def hook_case(label: str, jg: list[str], ws: str, payload: bytes) -> Case:
    """The Stop hook (:func:`hook_argv`) in ``ws`` with a Stop ``payload``, its output
    checked."""
    return Case("hook", label, hook_argv(jg), ws, stdin=payload, check=check_hook)


def hook_available() -> str | None:
    """None if ``jobgate hook stop`` exists in the installed jobgate, else why not."""
    import importlib.util

    try:
        if importlib.util.find_spec("jobgate.claude.shell") is None:
            return "jobgate.claude.shell is not installed"
    except (ImportError, ValueError) as exc:
        return f"jobgate.claude.shell cannot be found ({exc})"
    return None


def stop_payload(ws: str) -> bytes:
    """What Claude Code writes on the Stop hook's stdin, for a session in ``ws``."""
    return json.dumps(
        {
            "session_id": SESSION,
            "cwd": ws,
            "hook_event_name": "Stop",
            "stop_hook_active": False,
            "transcript_path": "/dev/null",
        }
    ).encode()


# -- the measurement ----------------------------------------------------------------------
def bench_startup(
    jg: list[str],
    env: dict[str, str],
    rounds: int,
    ws50: str,
    ws1000: str,
    wshook: str,
    payload: bytes,
) -> tuple[list[Row], dict[str, str]]:
    """Time every case of :data:`LABELS` in ``rounds`` interleaved rounds.

    ``ws50`` and ``wshook`` hold 50 jobs (3 running), ``ws1000`` 1,000 (5 running); the
    hook cases get ``payload`` on stdin. Returns the rows and ``{case key: problem}`` for
    the cases that could not be measured.
    """
    cases = [
        Case("baseline", LABELS["baseline"], [sys.executable, "-I", "-S", "-c", "pass"], ws50),
        Case("site", LABELS["site"], [sys.executable, "-c", "pass"], ws50),
        Case("rejson", LABELS["rejson"], [sys.executable, "-c", "import re, json"], ws50),
        Case(
            "status50",
            LABELS["status50"],
            [*jg, "status", "--json"],
            ws50,
            check=check_status(3, 3 + 10),
        ),
        Case(
            "status1000",
            LABELS["status1000"],
            [*jg, "status", "--json"],
            ws1000,
            check=check_status(5, 5 + 10),
        ),
        Case(
            "status1000all",
            LABELS["status1000all"],
            [*jg, "status", "--json", "--all"],
            ws1000,
            check=check_status(5, 1000),
        ),
    ]
    hook_problem = hook_available()
    plugin_cmd, plugin_problem = plugin_stop_command()
    if hook_problem is None and plugin_cmd is not None:
        cases.append(
            Case(
                "pluginhook",
                LABELS["pluginhook"],
                ["sh", "-c", plugin_cmd],
                wshook,
                stdin=payload,
                check=check_hook,
            )
        )
    if hook_problem is None:
        cases.append(hook_case(LABELS["hook"], jg, wshook, payload))
    log(f"timing subprocess cases, {rounds} interleaved rounds")
    problems = run_interleaved(cases, env, rounds)
    if hook_problem is not None:
        problems["hook"] = hook_problem
        problems["pluginhook"] = hook_problem
    elif plugin_problem is not None:
        problems["pluginhook"] = plugin_problem
    return startup_rows(cases, problems), problems


def startup_rows(cases: list[Case], problems: dict[str, str]) -> list[Row]:
    """One row per key of :data:`LABELS`, with its ratio to the baseline's median."""
    by_key = {c.key: c for c in cases}
    base = by_key["baseline"]
    base_med = statistics.median(base.times) if base.times else None
    rows: list[Row] = []
    for key, label in LABELS.items():
        case = by_key.get(key)
        row = Row(label, "ms")
        if key in problems or case is None or not case.times:
            row.note = f"not available: {problems.get(key, 'not measured')}"
            rows.append(row)
            continue
        row.median = statistics.median(case.times)
        row.p90 = p90(case.times)
        row.samples = case.times
        if base_med:
            row.ratio = row.median / base_med
        if key in TARGETS:
            row.target = f"<= {TARGETS[key]:g}x baseline"
            row.ok = row.ratio is not None and row.ratio <= TARGETS[key]
        if key == "baseline":
            row.note = f"{len(case.times)} runs, interleaved with the rows below"
        else:
            row.note = NOTES.get(key, "")
        rows.append(row)
    return rows
