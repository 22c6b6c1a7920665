"""Concurrent ``jobgate run --background -- true`` callers in one workspace (``--scaling``):
N caller processes started together, each making the same number of calls one after the
other; calls per second in total, p50 / p99 latency of a call, failures, and whether every
job a call acknowledged (printed its id) is in ``jobgate status --json --all`` afterwards.

The callers are this benchmark's script run again: ``bench.py --_caller WS CALLS SECONDS``
ends up in :func:`caller_main`. Each N gets a fresh workspace (``maxJobs`` far above what
is started, so nothing is pruned) and is bounded in time: callers stop starting calls
after ``SECONDS`` and are killed a little later. Every background job is waited for
before the workspace is removed, and any worker still alive after that is killed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.environment import load_avg
from benchmarks.fixtures import Sleepers, build_state, make_workspace
from benchmarks.run_background import wait_job_done
from benchmarks.timing import Case, log, time_once
from benchmarks.writers import BENCH_SCRIPT

CALLERS = (2, 8, 32)
CALLS_EACH = 50
#: a caller starts no call after this many seconds, and one still running then is cut off
#: (killed, neither counted nor a failure); a caller is killed 15 s after that
ABORT_SECONDS = 180.0
#: a single call failing to return in this long counts as a failure
CALL_TIMEOUT = 60.0
#: how long the jobs get to finish once the callers are done
DRAIN_SECONDS = 120.0
#: bare interpreter starts timed (on the quiet machine) before each N
BASELINE_RUNS = 20


@dataclass
class CallersResult:
    """One N: a row of the concurrency table."""

    callers: int
    calls_each: int
    calls: int = 0  # calls made (fewer than callers x calls_each if aborted)
    failures: int = 0  # non-zero exits and timeouts
    first_failure: str = ""
    wall_seconds: float | None = None
    calls_per_second: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    baseline_ms: float | None = None  # bare interpreter median, just before
    load_before: str = ""  # 1/5/15-minute load averages just before (others' work shows)
    acknowledged: int = 0
    missing: int | None = None  # acknowledged ids not in status --json --all
    statuses: dict[str, int] = field(default_factory=dict)  # after the jobs drained
    leftover_killed: int = 0  # workers still alive after the drain (killed)
    aborted: bool = False
    problems: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def first_line(data: bytes) -> str:
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[0][:200] if lines else ""


def caller_main(ws: str, calls: int, seconds: float) -> int:
    """A caller process: ``calls`` runs of ``jobgate run --background -- true`` after a
    "go" on stdin; one JSON line on stdout at the end."""
    from benchmarks.environment import jobgate_command

    jg, _desc = jobgate_command()
    argv = [*jg, "run", "--background", "--", "true"]
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    deadline = time.monotonic() + seconds
    lat: list[float] = []
    codes: list[int] = []
    ids: list[str] = []
    errors: list[str] = []
    aborted = False
    for _ in range(calls):
        left = deadline - time.monotonic()
        if left <= 0:
            aborted = True
            break
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                cwd=ws,
                timeout=min(CALL_TIMEOUT, left),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            if exc.timeout < CALL_TIMEOUT:  # cut off by the time limit: no failure of its own
                aborted = True
                break
            lat.append((time.perf_counter() - t0) * 1000.0)
            codes.append(-1)
            errors.append(f"timed out after {exc.timeout:g}s")
            continue
        lat.append((time.perf_counter() - t0) * 1000.0)
        codes.append(proc.returncode)
        out = proc.stdout.decode(errors="replace").splitlines()
        if proc.returncode == 0 and out:
            ids.append(out[0].strip())
        else:
            errors.append(f"exit {proc.returncode}: {first_line(proc.stderr)}")
    report = {"lat": lat, "codes": codes, "ids": ids, "errors": errors, "aborted": aborted}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0


def _workers_of(state_dir: str) -> list[int]:
    """Pids of live jobgate workers of this state dir (their argv names it)."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = proc.info["cmdline"] or []
        except (psutil.Error, KeyError):
            continue
        if proc.info["pid"] != os.getpid() and state_dir in cmdline:
            pids.append(int(proc.info["pid"]))
    return pids


def _drain(state_dir: str, result: CallersResult) -> None:
    """Wait for every job in the index to finish, count the outcomes, then kill (and
    count) any worker of this state dir still alive."""
    import psutil

    from jobgate.state.store import Store

    deadline = time.monotonic() + DRAIN_SECONDS
    jobs = Store(state_dir).read_index()
    for job in jobs:
        problem = wait_job_done(state_dir, str(job["id"]), max(0.1, deadline - time.monotonic()))
        if problem and len(result.problems) < 5:
            result.problems.append(problem)
    statuses: dict[str, int] = {}
    for job in Store(state_dir).read_index():
        key = str(job.get("status"))
        if job.get("phase") == "lost":
            key += " (lost)"
        statuses[key] = statuses.get(key, 0) + 1
    result.statuses = statuses
    end = time.monotonic() + 10.0
    pids = _workers_of(state_dir)
    while pids and time.monotonic() < end:
        time.sleep(0.1)
        pids = _workers_of(state_dir)
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            continue
        result.leftover_killed += 1
    if pids:
        result.problems.append(f"{len(pids)} worker(s) still alive after the drain, killed")


def bench_callers(
    jg: list[str],
    env: dict[str, str],
    tmp: str,
    n: int,
    calls_each: int = CALLS_EACH,
    abort_seconds: float = ABORT_SECONDS,
) -> CallersResult:
    """N callers x ``calls_each`` runs of ``run --background -- true`` in a new workspace."""
    from jobgate.state.workspace import state_dir_for

    result = CallersResult(n, calls_each, load_before=load_avg())
    ws = make_workspace(Path(tmp) / f"callers-{n}")
    _root, state_dir = state_dir_for(ws)
    build_state(ws, 0, 0, Sleepers())  # config (maxJobs far above) and an empty index
    bare = Case("baseline", "bare", [sys.executable, "-I", "-S", "-c", "pass"], ws)
    times = [time_once(bare, env)[0] * 1000.0 for _ in range(BASELINE_RUNS + 2)][2:]
    result.baseline_ms = statistics.median(times)
    procs: list[subprocess.Popen[str]] = []
    lat: list[float] = []
    ids: list[str] = []
    try:
        for _ in range(n):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(BENCH_SCRIPT),
                        "--_caller",
                        ws,
                        str(calls_each),
                        str(abort_seconds),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    cwd=ws,
                    env=env,
                    text=True,
                    start_new_session=True,  # killpg ends a caller and its jobgate call
                )
            )
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a caller process did not start")
        log(f"concurrency: {n} callers x {calls_each} run --background calls")
        t0 = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        hard_deadline = time.monotonic() + abort_seconds + 15.0
        for proc in procs:
            try:
                out, _err = proc.communicate(timeout=max(0.1, hard_deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                result.aborted = True
                result.problems.append("a caller was killed at the time limit")
                continue
            try:
                report = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                result.problems.append(f"a caller reported nothing (exit {proc.returncode})")
                continue
            lat += report["lat"]
            ids += report["ids"]
            result.failures += sum(1 for c in report["codes"] if c != 0)
            if report["errors"] and not result.first_failure:
                result.first_failure = report["errors"][0]
            result.aborted = result.aborted or bool(report["aborted"])
        wall = time.perf_counter() - t0
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    result.calls = len(lat)
    result.latencies_ms = lat
    result.acknowledged = len(ids)
    result.wall_seconds = wall
    if lat:
        result.calls_per_second = len(lat) / wall
        result.p50_ms = statistics.median(lat)
        result.p99_ms = percentile(lat, 99)
    if result.aborted:
        result.problems.append(f"aborted after {abort_seconds:g}s: {len(lat)} calls made")
    try:
        status = subprocess.run(
            [*jg, "status", "--json", "--all"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=ws,
            env=env,
            timeout=60,
            check=False,
        )
        listed = {str(j.get("id")) for j in json.loads(status.stdout)["jobs"]}
        result.missing = sum(1 for i in ids if i not in listed)
    except (subprocess.TimeoutExpired, ValueError, KeyError, TypeError) as exc:
        result.problems.append(f"status --json --all failed: {exc.__class__.__name__}")
    log(f"concurrency: {n} callers: waiting for the jobs to finish")
    try:
        _drain(state_dir, result)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        shutil.rmtree(ws, ignore_errors=True)
    return result
