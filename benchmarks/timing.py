"""Timing helpers shared by the measurements: result rows, medians and p90, and
whole-process timing of commands interleaved round by round."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: looks at a timed command's result: None if it did what it should, else what went wrong
Checker = Callable[[subprocess.CompletedProcess[bytes]], "str | None"]


def log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


@dataclass
class Row:
    """One line of the results table."""

    name: str
    unit: str  # "ms", "us" or "tx/s"
    median: float | None = None
    p90: float | None = None
    ratio: float | None = None  # median / baseline median (subprocess rows)
    target: str = ""
    ok: bool | None = None  # None: no target, or not measured
    note: str = ""
    samples: list[float] = field(default_factory=list)


def ms_row(name: str, times: list[float], spread: float | None, note: str) -> Row:
    """A row of wall times in ms: their median, ``spread`` in the p90 column."""
    median = statistics.median(times) if times else None
    return Row(name, "ms", median, spread, note=note, samples=times)


@dataclass
class Case:
    """A command timed as a whole process, interleaved with the other cases."""

    key: str
    label: str
    argv: list[str]
    cwd: str
    stdin: bytes | None = None
    check: Checker | None = None
    times: list[float] = field(default_factory=list)


def time_once(case: Case, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        case.argv,
        input=case.stdin,
        stdin=None if case.stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        cwd=case.cwd,
        env=env,
        timeout=60,
        check=False,
    )
    return time.perf_counter() - t0, proc


def run_interleaved(cases: list[Case], env: dict[str, str], rounds: int) -> dict[str, str]:
    """Warm each case up (and check its output), then time them round-robin.

    Returns ``{case key: problem}`` for cases that failed their check (dropped).
    """
    problems: dict[str, str] = {}
    for case in cases:
        for _ in range(2):  # byte-code caches, page cache
            _dt, proc = time_once(case, env)
            problem = case.check(proc) if case.check else None
            if problem:
                problems[case.key] = problem
                break
    live = [c for c in cases if c.key not in problems]
    for r in range(rounds):
        order = live[r % len(live) :] + live[: r % len(live)] if live else []
        for case in order:
            dt, _proc = time_once(case, env)
            case.times.append(dt * 1000.0)
    return problems
