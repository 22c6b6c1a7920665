"""A liveness probe on each backend of the platform seam: the Linux ``/proc`` path and the
portable psutil path (what macOS runs; forced here as ``JOBGATE_PLATFORM=portable``
would), in one process against the same live ``sleep``. Also the whole Stop hook both
ways (``hook stop`` with one running job), where the portable path pays psutil's import.

    python benchmarks/bench_probe.py [--number 20000] [--rounds 15]

Prints one Markdown table (µs per probe: median of 7 repeats, and the slowest repeat;
ms per hook run: median of ``--rounds`` interleaved runs)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

SRC = str(Path(__file__).resolve().parent.parent / "src")
sys.path.insert(0, SRC)


def probe_us(backend_name: str, number: int) -> tuple[float, float, str]:
    from jobgate.proc import _linux, _portable, liveness

    previous = liveness.use_backend(_portable if backend_name == "portable" else _linux)
    sleeper = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL)
    try:
        ident = liveness.capture(sleeper.pid)
        assert ident is not None and liveness.probe(ident)[0] == liveness.ALIVE
        probe = liveness.probe
        times = [
            t / number * 1e6 for t in timeit.repeat(lambda: probe(ident), number=number, repeat=7)
        ]
        return statistics.median(times), max(times), str(ident.get("startSource"))
    finally:
        sleeper.kill()
        sleeper.wait()
        liveness.use_backend(previous)


def hook_ms(rounds: int) -> dict[str, float]:
    """``jobgate hook stop`` wall time with one running job, per backend, interleaved."""
    top = Path(tempfile.mkdtemp(prefix="jobgate-bench-probe-"))
    os.chmod(top, 0o700)
    ws = top / "ws"
    (ws / ".git").mkdir(parents=True)
    env = dict(os.environ, JOBGATE_HOME=str(top / "home"), PYTHONPATH=SRC)
    env.pop("JOBGATE_PLATFORM", None)
    cli = [sys.executable, "-m", "jobgate"]
    started = subprocess.run(
        [*cli, "run", "--background", "--json", "--session", "b", "--", "sleep", "300"],
        cwd=ws, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    job_id = json.loads(started.stdout)["id"]
    payload = json.dumps({"session_id": "b", "cwd": str(ws), "hook_event_name": "Stop"})
    runs: dict[str, list[float]] = {"linux": [], "portable": []}
    try:
        for _ in range(rounds):
            for name in runs:
                run_env = dict(env, JOBGATE_PLATFORM=name)
                t0 = time.perf_counter()
                subprocess.run(
                    [*cli, "hook", "stop"], cwd=ws, env=run_env, input=payload,
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                runs[name].append((time.perf_counter() - t0) * 1e3)
    finally:
        subprocess.run([*cli, "cancel", job_id, "--grace", "1"], cwd=ws, env=env,
                       capture_output=True, check=False)  # fmt: skip
    return {name: statistics.median(times) for name, times in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20000, help="probes per repeat")
    parser.add_argument("--rounds", type=int, default=15, help="hook runs per backend")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("compares the Linux /proc backend with the portable one: run it on Linux")
    rows = []
    for name in ("linux", "portable"):
        median, slowest, source = probe_us(name, args.number)
        rows.append((name, median, slowest, source))
    hooks = hook_ms(args.rounds)
    print("| backend | startSource | probe, median (µs) | slowest repeat (µs) | hook stop (ms) |")
    print("| --- | --- | --- | --- | --- |")
    for name, median, slowest, source in rows:
        print(f"| {name} | `{source}` | {median:.1f} | {slowest:.1f} | {hooks[name]:.1f} |")
    print(f"\n{args.number} probes x 7 repeats per backend; hook stop: median of "
          f"{args.rounds} interleaved runs, one running job.")  # fmt: skip


if __name__ == "__main__":
    main()
