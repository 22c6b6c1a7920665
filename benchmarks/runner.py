"""jobgate benchmarks: one run, one machine, every number next to a bare interpreter start.

The runner: parses the flags, sets up one temp dir (``JOBGATE_HOME``, workspaces, state,
live processes), runs each measurement module in turn, removes everything again and
prints the report. A new measurement is a module returning :class:`~benchmarks.timing.Row`
objects, called from :func:`main`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.concurrent_runs import CALLERS, CALLS_EACH, bench_callers, caller_main
from benchmarks.environment import (
    busy_problem,
    jobgate_command,
    load_avg,
    machine_facts,
    subprocess_env,
)
from benchmarks.fixtures import Sleepers, build_state, make_workspace
from benchmarks.import_time import import_breakdown
from benchmarks.liveness_probe import bench_probe
from benchmarks.report import json_report, markdown, print_text, scaling_json, scaling_tables
from benchmarks.run_background import bench_run_background
from benchmarks.scaling import FINISHED_SIZES, FINISHED_WITH_RUNNING, RUNNING_SIZES, bench_size
from benchmarks.startup import bench_startup, stop_payload
from benchmarks.timing import Row, log, rss_floor_kb, rss_tool
from benchmarks.wait_notices_kill import bench_wait_notices_kill
from benchmarks.writers import WRITERS, bench_writers, writer_main


def int_list(text: str) -> list[int]:
    """``"10,100"`` -> ``[10, 100]``; ``""`` -> ``[]``."""
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"negative number in {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer runs (~10 s)")
    parser.add_argument("--json", action="store_true", help="print a JSON object on stdout")
    parser.add_argument(
        "--imports",
        action="store_true",
        help="also break down the import time of status --json and hook stop",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the results as Markdown (for docs/performance.md)",
    )
    parser.add_argument("--rounds", type=int, help="timed rounds per subprocess case")
    scaling = parser.add_argument_group(
        "--scaling",
        "instead of the table above: how the hot commands scale with the jobs in state, "
        "and concurrent run --background callers (minutes; every option takes a "
        "comma-separated list, '' for none)",
    )
    scaling.add_argument(
        "--scaling", action="store_true", help="measure the scaling and concurrency tables"
    )
    scaling.add_argument(
        "--sizes",
        type=int_list,
        default=list(FINISHED_SIZES),
        help="retained finished jobs per workspace (default: %(default)s)",
    )
    scaling.add_argument(
        "--running",
        type=int_list,
        default=list(RUNNING_SIZES),
        help=f"running jobs per workspace, next to {FINISHED_WITH_RUNNING} finished "
        "(default: %(default)s)",
    )
    scaling.add_argument(
        "--writers",
        type=int_list,
        default=list(CALLERS),
        help="concurrent run --background callers (default: %(default)s)",
    )
    scaling.add_argument(
        "--calls",
        type=int,
        default=CALLS_EACH,
        help="run --background calls per caller (default: %(default)s)",
    )
    parser.add_argument("--_writer", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--_caller", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._writer:
        state_dir, job_id, shared_id, k = args._writer
        return writer_main(state_dir, job_id, shared_id, int(k))
    if args._caller:
        ws, calls, seconds = args._caller
        return caller_main(ws, int(calls), float(seconds))
    if args.scaling:
        return run_scaling(args)

    rounds = args.rounds or (10 if args.quick else 30)
    bg_runs = 8 if args.quick else 20
    writer_k = 25 if args.quick else 100
    probe_n = 5_000 if args.quick else 50_000

    jg, jg_desc = jobgate_command()
    started = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="jobgate-bench-")
    home = os.path.join(tmp, "home")
    os.environ["JOBGATE_HOME"] = home  # for the in-process Store/state_dir_for calls
    os.environ.pop("JOBGATE_SESSION_ID", None)
    env = subprocess_env(home)
    sleepers = Sleepers()
    rows: list[Row] = []
    problems: dict[str, str] = {}
    imports: dict[str, dict[str, Any]] = {}

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    def add(key: str, row: Row, problem: str | None) -> None:
        if problem:
            row.note += f"; PROBLEM: {problem}"
            problems[key] = problem
        rows.append(row)

    signal.signal(signal.SIGTERM, on_term)
    try:
        facts = machine_facts(tmp, jg_desc)
        log(f"jobgate: {facts['jobgate']}; command: {jg_desc}")
        ws50 = make_workspace(Path(tmp) / "ws50")
        ws1000 = make_workspace(Path(tmp) / "ws1000")
        wshook = make_workspace(Path(tmp) / "wshook")
        wsrun = make_workspace(Path(tmp) / "wsrun")
        wswrite = make_workspace(Path(tmp) / "wswrite")
        log("writing state: 50 jobs (3 running), 1,000 jobs (5 running), hook: 50 jobs")
        build_state(ws50, 50, 3, sleepers)
        build_state(ws1000, 1000, 5, sleepers)
        build_state(wshook, 50, 3, sleepers)
        payload = stop_payload(wshook)

        startup_rows, startup_problems = bench_startup(
            jg, env, rounds, ws50, ws1000, wshook, payload
        )
        rows.extend(startup_rows)
        problems.update(startup_problems)

        log(f"liveness probe, {probe_n} calls x 7")
        rows.extend(bench_probe(sleepers, probe_n))

        log(f"run --background, {bg_runs} runs")
        add("runBackground", *bench_run_background(jg, env, wsrun, bg_runs))

        log("wait notices an outside kill, 5 runs")
        add("waitNotices", *bench_wait_notices_kill(jg, env, wsrun, 5))

        log(f"{WRITERS} writers x {writer_k} transactions")
        add("writers", *bench_writers(wswrite, writer_k))

        if args.imports:
            log("import-time breakdown of status --json and hook stop (50 jobs)")
            imports["status --json"] = import_breakdown(jg, env, ws50, ["status", "--json"])
            if "hook" not in problems:
                imports["hook stop"] = import_breakdown(jg, env, wshook, ["hook", "stop"], payload)
    finally:
        sleepers.close()
        shutil.rmtree(tmp, ignore_errors=True)

    elapsed = time.perf_counter() - started
    facts["loadAvgEnd"] = load_avg()
    busy = busy_problem(str(facts["loadAvgStart"]))
    if busy is not None:
        problems["load"] = busy
    facts["benchSeconds"] = round(elapsed, 1)
    facts["mode"] = "quick" if args.quick else "full"
    facts["rounds"] = rounds
    if args.markdown:
        print(markdown(facts, rows, problems, imports))
    elif args.json:
        print(json_report(facts, rows, problems, imports))
    else:
        print_text(facts, rows, problems, imports)
    return 0


def run_scaling(args: argparse.Namespace) -> int:
    """``--scaling``: the scaling table (one workspace size at a time) and the
    concurrency table, in one temp dir removed at the end."""
    rounds = args.rounds or (5 if args.quick else 20)
    jg, jg_desc = jobgate_command()
    started = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="jobgate-bench-")
    home = os.path.join(tmp, "home")
    os.environ["JOBGATE_HOME"] = home  # for the in-process Store/state_dir_for calls
    os.environ.pop("JOBGATE_SESSION_ID", None)
    env = subprocess_env(home)
    sizes = [(n, 0) for n in args.sizes] + [(FINISHED_WITH_RUNNING, r) for r in args.running]
    size_results = []
    caller_results = []
    problems: dict[str, str] = {}

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        facts = machine_facts(tmp, jg_desc)
        log(f"jobgate: {facts['jobgate']}; command: {jg_desc}")
        facts["rssTool"] = rss_tool()
        facts["rssFloorKiB"] = rss_floor_kb(tmp, env)
        for finished, running in sizes:
            res = bench_size(jg, env, tmp, finished, running, rounds)
            problems.update({f"{res.label}: {k}": v for k, v in res.problems.items()})
            size_results.append(res)
        # the concurrency table loads the machine itself: judge the load before it
        facts["loadAvgBeforeCallers"] = load_avg()
        busy = busy_problem(str(facts["loadAvgStart"]))
        for n in args.writers:
            cres = bench_callers(jg, env, tmp, n, args.calls)
            problems.update({f"{n} callers ({i + 1})": p for i, p in enumerate(cres.problems)})
            caller_results.append(cres)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    facts["loadAvgEnd"] = load_avg()
    if busy is not None:
        problems["load"] = busy
    facts["benchSeconds"] = round(time.perf_counter() - started, 1)
    facts["mode"] = "scaling" + (" quick" if args.quick else "")
    facts["rounds"] = rounds
    if args.json:
        print(scaling_json(facts, size_results, caller_results, problems))
    else:
        print(scaling_tables(facts, size_results, caller_results, problems, md=args.markdown))
    return 0
