"""Timing helpers shared by the measurements: result rows, medians and p90, and
whole-process timing of commands interleaved round by round."""

from __future__ import annotations

import functools
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    #: run after every run of the case, untimed (e.g. wait for the job it started and
    #: undo it); a problem it returns drops the case from the later rounds
    after: Checker | None = None
    times: list[float] = field(default_factory=list)


def run_exact(
    argv: list[str], *, timeout: float, input: bytes | None = None, **popen: Any
) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run(argv, input=input, timeout=timeout, **popen)``, but returning as
    soon as the process has ended: ``subprocess`` waits for a process with a timeout by
    polling, sleeping 0.5, 1, 2, ... up to 50 ms in between, so a process whose output
    is not piped (no EOF to wait on) was timed at the next poll (measured: every call
    between 32 and 64 ms came out as 64 ms). Here the wait blocks in ``waitpid`` and a
    timer kills the process at ``timeout`` (then :class:`subprocess.TimeoutExpired`)."""
    import threading

    if input is not None:
        popen["stdin"] = subprocess.PIPE
    proc = subprocess.Popen(argv, **popen)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        out, err = proc.communicate(input)  # no timeout: a blocking wait
    finally:
        timer.cancel()
    if killed.is_set():
        raise subprocess.TimeoutExpired(argv, timeout, out, err)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def time_once(case: Case, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    t0 = time.perf_counter()
    proc = run_exact(
        case.argv,
        input=case.stdin,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=case.cwd,
        env=env,
        timeout=60,
    )
    return time.perf_counter() - t0, proc


def run_interleaved(cases: list[Case], env: dict[str, str], rounds: int) -> dict[str, str]:
    """Warm each case up (and check its output), then time them round-robin.

    Returns ``{case key: problem}`` for cases that failed their check or their ``after``
    (dropped from then on).
    """
    problems: dict[str, str] = {}
    for case in cases:
        for _ in range(2):  # byte-code caches, page cache
            _dt, proc = time_once(case, env)
            problem = case.check(proc) if case.check else None
            if problem is None and case.after is not None:
                problem = case.after(proc)
            if problem:
                problems[case.key] = problem
                break
    for r in range(rounds):
        live = [c for c in cases if c.key not in problems]
        order = live[r % len(live) :] + live[: r % len(live)] if live else []
        for case in order:
            dt, proc = time_once(case, env)
            case.times.append(dt * 1000.0)
            problem = case.after(proc) if case.after is not None else None
            if problem:
                problems[case.key] = problem
    return problems


#: runs argv[2:] and writes "<its ru_maxrss> <its exit code>" to fd argv[1]: the fallback
#: where there is no GNU time
RSS_WRAPPER = (
    "import os, sys\n"
    "fd = int(sys.argv[1]); os.set_inheritable(fd, False)\n"
    "pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)\n"
    "_pid, status, usage = os.wait4(pid, 0)\n"
    "os.write(fd, f'{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}'.encode())\n"
)
GNU_TIME = "/usr/bin/time"


@functools.lru_cache(maxsize=1)
def rss_tool() -> str:
    """What :func:`peak_rss_kb` runs the child under: GNU time if it is there, else a
    ``python -I -S`` wrapper (:data:`RSS_WRAPPER`)."""
    import os

    if os.access(GNU_TIME, os.X_OK):
        probe = subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", os.devnull, "true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
        if probe.returncode == 0:
            return f"{GNU_TIME} -f %M"
    return "python -I -S wrapper calling os.wait4"


def peak_rss_kb(
    argv: list[str], cwd: str, env: dict[str, str], stdin: bytes | None, timeout: float = 60.0
) -> tuple[float | None, str | None]:
    """Run ``argv`` once and return (its peak resident set size in KiB, problem).

    The child is started by a small process that waits for it with ``wait4`` (GNU time,
    else :data:`RSS_WRAPPER`), never from here: ``RUSAGE_CHILDREN`` here would give the
    largest child of this whole process so far, and Linux counts the memory of the
    process that spawns a child (this one has jobgate and psutil imported) into the
    child's peak at ``exec``. So the spawner's own size is the floor of what can be
    measured: see :func:`rss_floor_kb` (about 1 MiB for GNU time, the size of a bare
    interpreter for the wrapper).
    """
    import os
    import tempfile

    gnu = rss_tool().startswith(GNU_TIME)
    if not gnu and not (hasattr(os, "wait4") and hasattr(os, "posix_spawnp")):
        return None, "no GNU time, and no os.wait4 / os.posix_spawnp"
    with tempfile.NamedTemporaryFile(prefix="jobgate-bench-rss-") as out:
        if gnu:
            cmd = [GNU_TIME, "-f", "%M", "-o", out.name, *argv]
            fds: tuple[int, ...] = ()
        else:
            cmd = [sys.executable, "-I", "-S", "-c", RSS_WRAPPER, str(out.fileno()), *argv]
            fds = (out.fileno(),)
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            pass_fds=fds,
            start_new_session=True,  # a timeout ends the spawner and the child together
        )
        try:
            proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            return None, f"did not end within {timeout:g}s"
        with open(out.name, encoding="utf-8", errors="replace") as fh:
            report = fh.read().split()
    if gnu:  # "%M", after "Command exited with non-zero status N" if it failed
        if proc.returncode != 0:
            return None, f"exit {proc.returncode}"
        report = [report[-1], "0"] if report else []
    if len(report) != 2 or not report[0].isdigit():
        return None, f"no peak RSS reported (exit {proc.returncode})"
    if report[1] != "0":
        return None, f"exit {report[1]}"
    kb = float(report[0])
    return (kb / 1024 if sys.platform == "darwin" and not gnu else kb), None  # bytes on macOS


def rss_floor_kb(cwd: str, env: dict[str, str]) -> float | None:
    """The smallest peak :func:`peak_rss_kb` can report: that of ``true``, which is the
    spawner's own size (Linux counts it into its child's peak at ``exec``)."""
    kb, _problem = peak_rss_kb(["true"], cwd, env, None)
    return kb
