"""The live view (``jobgate top``): what one refresh costs with 10 running and 100
queued jobs, how soon a job SIGKILLed from outside shows as lost (the view woken by its
pidfd, not by the clock), and its CPU while nothing changes (10 running jobs).

Standalone: ``.venv/bin/python -m benchmarks.top_view [--runs N]``; prints one JSON
object. Every process it starts is ended before it exits.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import psutil


def _jobgate(env: dict[str, str], ws: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobgate", *args],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=True,
    )


def _store(ws: str) -> Any:
    from jobgate.state.store import Store
    from jobgate.state.workspace import state_dir_for

    root, state_dir = state_dir_for(ws)
    return Store(state_dir, root)


def refresh_cost(ws: str, runs: int) -> dict[str, float]:
    """Median ms of one refresh in-process: the reconciling read, the last log lines
    (fresh and cached), the lines laid out at 160x50."""
    from jobgate.cli import top_layout
    from jobgate.cli.top import Reader

    store = _store(ws)
    reads: list[float] = []
    layouts: list[float] = []
    for _ in range(runs):
        reader = Reader(store)  # no cached tails: every log read
        t0 = time.perf_counter()
        jobs, lines, _note = reader.read()
        t1 = time.perf_counter()
        top_layout.screen(
            jobs, lines, root=ws, clock="00:00:00", now=time.time(), width=160, height=50
        )
        t2 = time.perf_counter()
        reads.append((t1 - t0) * 1000)
        layouts.append((t2 - t1) * 1000)
    return {
        "readMs": round(statistics.median(reads), 2),
        "layoutMs": round(statistics.median(layouts), 2),
        "jobs": len(jobs),
    }


def kill_to_lost(env: dict[str, str], ws: str, runs: int) -> list[float]:
    """Seconds from SIGKILL of a job's worker and command to the ``top --json`` line that
    shows it lost, with ``--interval 600`` (so only a wake-up can show it)."""
    out: list[float] = []
    for _ in range(runs):
        brief = json.loads(_jobgate(env, ws, "run", "-b", "--json", "--", "sleep", "300").stdout)
        job_id = brief["id"]
        deadline = time.monotonic() + 30
        while True:
            job = json.loads(_jobgate(env, ws, "status", job_id, "--json").stdout)["job"]
            if job.get("commandPid") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        top = subprocess.Popen(
            [sys.executable, "-m", "jobgate", "top", "--json", "--interval", "600"],
            cwd=ws,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert top.stdout is not None
            top.stdout.readline()  # the first view
            t0 = time.perf_counter()
            for pid in (job["pid"], job["commandPid"]):
                os.kill(pid, signal.SIGKILL)
            for line in top.stdout:
                rows = {j["id"]: j for j in json.loads(line)["jobs"]}
                if rows.get(job_id, {}).get("phase") == "lost":
                    out.append(round(time.perf_counter() - t0, 3))
                    break
        finally:
            top.terminate()
            top.wait(timeout=30)
    return out


def idle_cpu(env: dict[str, str], ws: str, seconds: float) -> float:
    """CPU seconds per minute of ``top --json --interval 1`` while nothing changes."""
    top = subprocess.Popen(
        [sys.executable, "-m", "jobgate", "top", "--json"],
        cwd=ws,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)  # started, first views drawn
        proc = psutil.Process(top.pid)
        before = sum(proc.cpu_times()[:2])
        time.sleep(seconds)
        after = sum(proc.cpu_times()[:2])
    finally:
        top.terminate()
        top.wait(timeout=30)
    return round((after - before) * 60 / seconds, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle to measure")
    args = parser.parse_args(argv)
    from jobgate.state import model

    with tempfile.TemporaryDirectory() as tmp:
        ws = os.path.join(tmp, "ws")
        os.mkdir(ws)
        env = dict(os.environ, JOBGATE_HOME=os.path.join(tmp, "home"))
        os.environ["JOBGATE_HOME"] = env["JOBGATE_HOME"]
        try:
            for i in range(10):
                cmd = f"echo line {i}; exec sleep 300"
                _jobgate(env, ws, "run", "-b", "--", "sh", "-c", cmd)
            # first, with no queued job that the 30 s grace could turn lost meanwhile (a
            # hundred jobs lost at once would push the killed one out of the recent five)
            lost = kill_to_lost(env, ws, args.runs)
            result: dict[str, Any] = {"killToLostSeconds": lost}
            result["killToLostMedian"] = statistics.median(lost) if lost else None
            result["idleCpuSecondsPerMinute"] = idle_cpu(env, ws, args.idle)
            store = _store(ws)
            store.ensure()
            with store.transaction() as tx:
                for i in range(100):
                    job_id = f"task-queued-{i:03d}"
                    job = model.new_job(
                        job_id=job_id, command=["true"], cwd=ws, log_file=store.log_path(job_id)
                    )
                    job["queueRank"] = i % 7
                    tx.put(job)
            # (within the 30 s a queued job without a process counts as alive)
            result["refresh"] = refresh_cost(ws, args.runs * 4)
        finally:
            for proc in psutil.process_iter():
                try:
                    if proc.pid == os.getpid():
                        continue
                    if proc.environ().get("JOBGATE_HOME") == env["JOBGATE_HOME"]:
                        proc.kill()
                except (psutil.Error, OSError):
                    continue
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
