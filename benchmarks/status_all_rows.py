"""``status --all`` at 10,000 retained jobs while jobs keep finishing: the state of
its kept rows (``finished.rows``) that the scaling table cannot show, "the log grew".

Each round runs one ``jobgate run -- true`` (untimed: its job stays, so the log grows by
a line), then times the bare interpreter, ``status --all`` (the log grew since the rows
were kept) and ``status --all`` again (the rows current), interleaved. The scaling
table (``bench.py --scaling``) has the other states: after a log rewrite, and none.
Then, ``--prunes`` times (5), retention: ``maxJobs`` set to a tenth under what is kept,
one ``jobgate run -- true`` (untimed; its commit prunes, rewriting the log), then the
bare interpreter and ``status --all`` (the rows carried over by the rewrite's note).

    python -m benchmarks.status_all_rows                  # 10,000 retained, 15 rounds
    python -m benchmarks.status_all_rows --jobs 1000 --rounds 5 --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.fixtures import Sleepers, build_state, make_workspace
from benchmarks.timing import run_exact


def _timed(argv: list[str], cwd: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = run_exact(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, timeout=60)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv)
    return 1000 * (time.perf_counter() - t0)


def measure(jobs: int, rounds: int, prunes: int = 5) -> dict[str, dict[str, float]]:
    """Median ms and ratio to the bare interpreter of each timed command."""
    jobgate = shutil.which("jobgate", path=os.path.dirname(sys.executable)) or "jobgate"
    tmp = tempfile.mkdtemp(prefix="jobgate-rows-")
    env = dict(os.environ, JOBGATE_HOME=os.path.join(tmp, "home"))
    os.environ["JOBGATE_HOME"] = env["JOBGATE_HOME"]  # build_state writes there too
    sleepers = Sleepers()
    try:
        ws = make_workspace(Path(tmp) / "ws")
        build_state(ws, jobs, 0, sleepers)
        os.sync()  # the fixture's files written out first: no writeback under the timing
        subprocess.run([jobgate, "status", "--all"], cwd=ws, env=env, stdout=subprocess.DEVNULL)
        times: dict[str, list[float]] = {
            key: [] for key in ("bare", "grew", "current", "pbare", "pruned")
        }
        for _ in range(rounds):
            run = [jobgate, "run", "--", "true"]
            subprocess.run(run, cwd=ws, env=env, stdout=subprocess.DEVNULL, check=True)
            times["bare"].append(_timed([sys.executable, "-I", "-S", "-c", "pass"], ws, env))
            times["grew"].append(_timed([jobgate, "status", "--all"], ws, env))
            times["current"].append(_timed([jobgate, "status", "--all"], ws, env))
        kept = jobs + rounds
        for _ in range(prunes):
            kept = kept * 10 // 11
            config = [jobgate, "config", "set", "maxJobs", str(kept)]
            subprocess.run(config, cwd=ws, env=env, stdout=subprocess.DEVNULL, check=True)
            run = [jobgate, "run", "--", "true"]
            subprocess.run(run, cwd=ws, env=env, stdout=subprocess.DEVNULL, check=True)
            times["pbare"].append(_timed([sys.executable, "-I", "-S", "-c", "pass"], ws, env))
            times["pruned"].append(_timed([jobgate, "status", "--all"], ws, env))
    finally:
        sleepers.close()
        shutil.rmtree(tmp, ignore_errors=True)
    out = {}
    for key, v in times.items():
        if not v:
            continue
        bare = statistics.median(times["pbare" if key in ("pbare", "pruned") else "bare"])
        out[key] = {
            "ms": round(statistics.median(v), 1),
            "x": round(statistics.median(v) / bare, 2),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=10_000, help="retained finished jobs")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--prunes", type=int, default=5, help="rounds of retention pruning")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    found = measure(args.jobs, args.rounds, args.prunes)
    if args.json:
        print(json.dumps({"jobs": args.jobs, "rounds": args.rounds, **found}))
    else:
        labels = {"bare": "python -I -S -c pass", "grew": "status --all, the log grew by one"}
        labels["current"] = "status --all, rows current"
        labels["pbare"] = "python -I -S -c pass (during the prunes)"
        labels["pruned"] = "status --all, retention pruned a tenth"
        for key, row in found.items():
            print(f"{labels[key]}: {row['ms']} ms ({row['x']}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
