"""How the commands on hot paths scale with the state (``--scaling``): for workspaces of
10 / 100 / 1,000 / 10,000 retained finished jobs, and of 10 and 100 running ones, the
whole-process wall time of ``hook stop``, ``status --json`` (and ``--all``), ``result``
of one finished job and ``run --background -- true``, each as a ratio to a bare
interpreter start timed in the same interleaved rounds, and the peak RSS of ``hook stop``.

Each workspace is built (:func:`benchmarks.fixtures.build_state`), measured and removed
before the next, so a size's rounds only ever interleave with each other. ``maxJobs`` is
set far above the size: nothing is pruned. Every job ``run --background`` starts is
waited for (untimed) and then removed again under the store lock, so every round sees
the same number of retained jobs.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.fixtures import Sleepers, build_state, make_workspace
from benchmarks.run_background import wait_job_done
from benchmarks.startup import check_status, hook_argv, hook_available, hook_case, stop_payload
from benchmarks.timing import Case, Checker, Row, log, p90, peak_rss_kb, run_interleaved

FINISHED_SIZES = (10, 100, 1_000, 10_000)
RUNNING_SIZES = (10, 100)
#: finished jobs next to the running ones (so ``result`` has one to read)
FINISHED_WITH_RUNNING = 10
#: finished jobs ``status --json`` lists without ``--all`` (jobgate.cli.render.RECENT_FINISHED)
RECENT_FINISHED = 10
#: untimed runs of ``hook stop`` (and of the baseline) for the peak RSS, after the timing
RSS_RUNS = 5

#: the measured commands, in column order: case key -> label
COLUMNS = {
    "hook": "hook stop",
    "status": "status --json",
    "statusall": "status --json --all",
    "statusallhuman": "status --all",
    "statusallwarm": "status --all, rows current",
    "statusallcold": "status --all, no rows kept",
    "result": "result <oldest finished>",
    "run": "run --background -- true",
}


@dataclass
class SizeResult:
    """One workspace size: a row of the scaling table."""

    label: str
    finished: int
    running: int
    rounds: int
    build_seconds: float
    baseline: Row
    cases: dict[str, Row] = field(default_factory=dict)
    #: median peak RSS in KiB of ``RSS_RUNS`` runs: "baseline" and "hook"
    rss_kb: dict[str, float | None] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def size_label(finished: int, running: int) -> str:
    if running:
        return f"{running:,} running + {finished:,} finished"
    return f"{finished:,} finished"


def check_result(proc: subprocess.CompletedProcess[bytes]) -> str | None:
    # 1 is the result of a job that failed: still a full answer
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        return f"exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[:200]}"
    return None


def undo_run(state_dir: str, root: str) -> Checker:
    """The ``after`` of the ``run --background`` case: wait for the job it started to
    finish (worker gone), then remove it, so the retained count stays as built."""

    def after(proc: subprocess.CompletedProcess[bytes]) -> str | None:
        from jobgate.state.store import Store

        out = proc.stdout.decode(errors="replace").splitlines()
        if proc.returncode != 0 or not out:
            err = proc.stderr.decode(errors="replace").strip()
            return f"exit {proc.returncode}: {err[:200]}"
        job_id = out[0].strip()
        problem = wait_job_done(state_dir, job_id, timeout=60.0)
        if problem:
            return problem
        with Store(state_dir, root).transaction() as tx:
            if tx.get(job_id) is None:
                return f"job {job_id} is not in the index after it finished"
            tx.remove(job_id)
        return None

    return after


def drop_rows(state_dir: str) -> Checker:
    """An ``after`` that removes ``status --all``'s kept rows (the next call renders all)."""

    def after(_proc: subprocess.CompletedProcess[bytes]) -> str | None:
        from jobgate.cli.finished_rows import NAME

        Path(state_dir, NAME).unlink(missing_ok=True)
        return None

    return after


def bench_size(
    jg: list[str], env: dict[str, str], tmp: str, finished: int, running: int, rounds: int
) -> SizeResult:
    """Build one workspace, time every case of :data:`COLUMNS` in ``rounds`` interleaved
    rounds with the baseline, measure the hook's peak RSS, remove the workspace."""
    import time

    from jobgate.state.store import Store
    from jobgate.state.workspace import state_dir_for

    label = size_label(finished, running)
    ws = make_workspace(Path(tmp) / f"scale-{finished}f-{running}r")
    root, state_dir = state_dir_for(ws)
    sleepers = Sleepers()
    try:
        log(f"scaling: {label}: writing state")
        t0 = time.perf_counter()
        build_state(ws, finished + running, running, sleepers)
        build_seconds = time.perf_counter() - t0
        index = Store(state_dir, root).read_index()
        oldest = next(j["id"] for j in reversed(index) if j.get("status") != "running")
        payload = stop_payload(ws)
        bare = [sys.executable, "-I", "-S", "-c", "pass"]
        cases = [
            Case("baseline", "python -I -S -c pass", bare, ws),
            Case(
                "status",
                COLUMNS["status"],
                [*jg, "status", "--json"],
                ws,
                check=check_status(running, running + min(finished, RECENT_FINISHED)),
            ),
            Case(
                "statusall",
                COLUMNS["statusall"],
                [*jg, "status", "--json", "--all"],
                ws,
                check=check_status(running, running + finished),
            ),
            Case("result", COLUMNS["result"], [*jg, "result", oldest], ws, check=check_result),
            Case(
                "run",
                COLUMNS["run"],
                [*jg, "run", "--background", "--", "true"],
                ws,
                after=undo_run(state_dir, root),
            ),
            # right after run's undo rewrote the log: the kept rows reused by line CRC
            Case("statusallhuman", COLUMNS["statusallhuman"], [*jg, "status", "--all"], ws),
            Case(
                "statusallwarm",
                COLUMNS["statusallwarm"],
                [*jg, "status", "--all"],
                ws,
                after=drop_rows(state_dir),
            ),
            Case("statusallcold", COLUMNS["statusallcold"], [*jg, "status", "--all"], ws),
        ]
        hook_problem = hook_available()
        if hook_problem is None:
            cases.insert(1, hook_case(COLUMNS["hook"], jg, ws, payload))
        log(f"scaling: {label}: {rounds} interleaved rounds of {len(cases)} cases")
        problems = run_interleaved(cases, env, rounds)
        if hook_problem is not None:
            problems["hook"] = hook_problem
        rss: dict[str, list[float]] = {"baseline": [], "hook": []}
        if "hook" not in problems:
            log(f"scaling: {label}: peak RSS, {RSS_RUNS} runs")
            for _ in range(RSS_RUNS):
                for key, argv, stdin in (
                    ("baseline", bare, None),
                    ("hook", hook_argv(jg), payload),
                ):
                    kb, problem = peak_rss_kb(argv, ws, env, stdin)
                    if problem:
                        problems[f"{key}Rss"] = problem
                    elif kb is not None:
                        rss[key].append(kb)
    finally:
        sleepers.close()
        shutil.rmtree(state_dir, ignore_errors=True)
        shutil.rmtree(ws, ignore_errors=True)

    by_key = {c.key: c for c in cases}
    base_times = by_key["baseline"].times
    base_med = statistics.median(base_times) if base_times else None
    baseline = Row(
        "python -I -S -c pass (baseline)",
        "ms",
        base_med,
        p90(base_times) if base_times else None,
        ratio=1.0 if base_med else None,
        note=f"{len(base_times)} runs",
        samples=base_times,
    )
    result = SizeResult(label, finished, running, rounds, round(build_seconds, 2), baseline)
    result.problems = problems
    for key, col in COLUMNS.items():
        case = by_key.get(key)
        row = Row(col, "ms")
        if case is None or not case.times or key in problems:
            row.note = f"not available: {problems.get(key, 'not measured')}"
        else:
            row.median = statistics.median(case.times)
            row.p90 = p90(case.times)
            row.samples = case.times
            row.ratio = row.median / base_med if base_med else None
            row.note = f"{len(case.times)} runs"
            if key == "result":
                row.note += f"; the oldest finished job ({oldest}), last in the index"
            if key == "run":
                row.note += "; each job waited for and removed again (untimed)"
            if key == "statusallhuman":
                row.note += "; run's removal has just rewritten the log"
        result.cases[key] = row
    result.rss_kb = {k: (statistics.median(v) if v else None) for k, v in rss.items()}
    return result
