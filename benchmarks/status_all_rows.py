"""``status --all`` at 10,000 retained jobs while jobs keep finishing: the state of
its kept rows (``finished.rows``) that the scaling table cannot show, "the log grew".

Each round runs one ``jobgate run -- true`` (untimed: its job stays, so the log grows by
a line), then times the bare interpreter, ``status --all`` (the log grew since the rows
were kept) and ``status --all`` again (the rows current), interleaved. The scaling
table (``bench.py --scaling``) has the other states: after a log rewrite, and none.

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


def _timed(argv: list[str], cwd: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True, timeout=60)
    return 1000 * (time.perf_counter() - t0)


def measure(jobs: int, rounds: int) -> dict[str, dict[str, float]]:
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
        times: dict[str, list[float]] = {"bare": [], "grew": [], "current": []}
        for _ in range(rounds):
            run = [jobgate, "run", "--", "true"]
            subprocess.run(run, cwd=ws, env=env, stdout=subprocess.DEVNULL, check=True)
            times["bare"].append(_timed([sys.executable, "-I", "-S", "-c", "pass"], ws, env))
            times["grew"].append(_timed([jobgate, "status", "--all"], ws, env))
            times["current"].append(_timed([jobgate, "status", "--all"], ws, env))
    finally:
        sleepers.close()
        shutil.rmtree(tmp, ignore_errors=True)
    bare = statistics.median(times["bare"])
    return {
        key: {"ms": round(statistics.median(v), 1), "x": round(statistics.median(v) / bare, 2)}
        for key, v in times.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=10_000, help="retained finished jobs")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    found = measure(args.jobs, args.rounds)
    if args.json:
        print(json.dumps({"jobs": args.jobs, "rounds": args.rounds, **found}))
    else:
        labels = {"bare": "python -I -S -c pass", "grew": "status --all, the log grew by one"}
        labels["current"] = "status --all, rows current"
        for key, row in found.items():
            print(f"{labels[key]}: {row['ms']} ms ({row['x']}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
