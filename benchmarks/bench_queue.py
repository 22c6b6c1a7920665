#!/usr/bin/env python3
"""The queue's speed (issue 11), next to a bare interpreter start on the same machine.

Usage::

    python benchmarks/bench_queue.py [--rounds N] [--json]

Measures the jobgate of the running interpreter's environment (``<venv>/bin/jobgate``,
else ``python -m jobgate``), in a temporary ``JOBGATE_HOME`` removed at the end:

1. baseline: wall time of ``python -I -S -c pass``;
2. slot freed by a job's end → the next queued job's command running (the finishing
   worker starts it): from the first job's recorded ``completedAt`` (when its command
   ended) to the first instruction of the next job's command (``date +%s.%N``);
3. slot freed by a SIGKILLed worker (nobody recorded the end) + one reader call
   (``jobgate status``): from the start of that call to the next command running;
4. launch of 100 queued jobs (``jobgate run --queue -- true`` while the one slot is
   taken): the median of one launch and the total;
5. ``jobgate status --json`` with 100 queued jobs, next to 0 queued;
6. the Stop hook (``jobgate hook stop``) with 0, 100 and 300 queued jobs: flat.

Every process started here is ended and reaped. Not part of the test suite; targets are
checked by hand (docs/performance.md, the queue section).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _jobgate() -> list[str]:
    script = Path(sys.executable).with_name("jobgate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jobgate"]


class Bench:
    def __init__(self, root: str) -> None:
        self.root = root
        self.env = dict(os.environ, JOBGATE_HOME=os.path.join(root, "home"))
        self.env.pop("JOBGATE_SESSION_ID", None)
        # byte-code is written and reused, as for any installed jobgate: without it every
        # start recompiles the modules it imports (a dev shell's PYTHONDONTWRITEBYTECODE)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.jg = _jobgate()

    def workspace(self, name: str) -> str:
        ws = os.path.join(self.root, name)
        os.makedirs(ws)
        return ws

    def run(self, ws: str, *args: str, stdin: bytes | None = None) -> tuple[float, str]:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*self.jg, *args],
            cwd=ws,
            env=self.env,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=120,
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"jobgate {' '.join(args)}: exit {proc.returncode}: {proc.stderr!r}")
        return elapsed, proc.stdout.decode()

    def store(self, ws: str):  # type: ignore[no-untyped-def]
        from jobgate.state.store import Store
        from jobgate.state.workspace import state_dir_for

        os.environ["JOBGATE_HOME"] = self.env["JOBGATE_HOME"]
        root, state_dir = state_dir_for(ws)
        return Store(state_dir, root)

    def cancel_all(self, ws: str) -> None:
        self.run(ws, "cancel", "--all", "--grace", "1")


def _baseline(rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _wait_file(path: str, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as fh:
                text = fh.read().strip()
            if text:
                return float(text)
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {path}")
        time.sleep(0.002)


def _stamp(path: str) -> list[str]:
    return ["sh", "-c", f"date +%s.%N > {path}.tmp && mv {path}.tmp {path}"]


def bench_end(b: Bench, rounds: int) -> list[float]:
    """Job end → next queued command running (started by the finishing worker)."""
    from jobgate.state import model

    ws = b.workspace("end")
    b.run(ws, "config", "set", "maxParallel", "1")
    store = b.store(ws)
    out = []
    for i in range(rounds + 1):  # the first round writes the byte-code: not counted
        first = json.loads(b.run(ws, "run", "--queue", "--json", "--", "sleep", "0.3")[1])
        marker = os.path.join(b.root, f"end-{i}")
        b.run(ws, "run", "--queue", "--", *_stamp(marker))
        ran = _wait_file(marker)
        ended = store.snapshot().lookup(first["id"])
        assert ended is not None and ended.get("completedAt"), ended
        out.append(ran - (model.parse_iso(ended["completedAt"]) or 0.0))
    return out[1:]


def bench_killed(b: Bench, rounds: int) -> tuple[list[float], list[float]]:
    """SIGKILLed worker and command, then one ``jobgate status``: → next command running."""
    ws = b.workspace("killed")
    b.run(ws, "config", "set", "maxParallel", "1")
    store = b.store(ws)
    latency, reader = [], []
    for i in range(rounds + 1):  # the first round writes the byte-code: not counted
        first = json.loads(b.run(ws, "run", "--queue", "--json", "--", "sleep", "300")[1])
        marker = os.path.join(b.root, f"killed-{i}")
        b.run(ws, "run", "--queue", "--", *_stamp(marker))
        deadline = time.monotonic() + 30
        while True:
            job = store.snapshot().lookup(first["id"])
            if job and job.get("status") == "running" and job.get("commandPid"):
                break
            if time.monotonic() > deadline:
                raise SystemExit("the first job never ran")
            time.sleep(0.01)
        for pid in (job["pid"], job["commandPid"]):
            os.kill(pid, signal.SIGKILL)
        for pid in (job["pid"], job["commandPid"]):
            while _alive(pid):
                time.sleep(0.002)
        t0 = time.time()
        took, _out = b.run(ws, "status")
        latency.append(_wait_file(marker) - t0)
        reader.append(took)
    return latency[1:], reader[1:]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def bench_launch_and_status(
    b: Bench, n: int, rounds: int
) -> tuple[list[float], float, list[float], list[float], dict[int, list[float]]]:
    ws = b.workspace("many")
    b.run(ws, "config", "set", "maxParallel", "1")
    payload = json.dumps(
        {
            "session_id": "bench-session",
            "cwd": ws,
            "hook_event_name": "Stop",
            "stop_hook_active": False,
            "transcript_path": "/dev/null",
        }
    ).encode()
    b.run(ws, "run", "--queue", "--", "sleep", "600")  # holds the only slot
    hook: dict[int, list[float]] = {0: [], n: [], 3 * n: []}
    for warm in (["status", "--json"], ["queue"]):  # byte-code written before timing
        b.run(ws, *warm)
    b.run(ws, "hook", "stop", stdin=payload)
    status_empty = [b.run(ws, "status", "--json")[0] for _ in range(rounds)]
    hook[0] = [b.run(ws, "hook", "stop", stdin=payload)[0] for _ in range(rounds)]
    launches = []
    t0 = time.perf_counter()
    for _ in range(n):
        launches.append(b.run(ws, "run", "--queue", "--", "true")[0])
    total = time.perf_counter() - t0
    status_full = [b.run(ws, "status", "--json")[0] for _ in range(rounds)]
    hook[n] = [b.run(ws, "hook", "stop", stdin=payload)[0] for _ in range(rounds)]
    _add_queued(b.store(ws), ws, 2 * n)  # written directly: the launches were timed above
    hook[3 * n] = [b.run(ws, "hook", "stop", stdin=payload)[0] for _ in range(rounds)]
    b.cancel_all(ws)
    return launches, total, status_empty, status_full, hook


def _add_queued(store, ws: str, count: int) -> None:  # type: ignore[no-untyped-def]
    """``count`` more waiting queue jobs, committed with jobgate's own Store."""
    from jobgate.jobs import queue
    from jobgate.state import model

    with store.transaction() as tx:
        rank = queue.next_rank(tx.jobs, queue.DEFAULT_GROUP)
        for i in range(count):
            job_id = model.new_id("run")
            job = model.new_job(
                job_id=job_id, command=["true"], cwd=ws, log_file=store.log_path(job_id)
            )
            tx.put(model.touch(job, phase=queue.PHASE_WAITING, queueRank=rank + i))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="jobgate-bench-queue-")
    b = Bench(root)
    try:
        base = _baseline(args.rounds * 2)
        end = bench_end(b, args.rounds)
        killed, reader = bench_killed(b, args.rounds)
        launches, total, st0, st100, hook = bench_launch_and_status(b, 100, args.rounds)
    finally:
        try:
            for ws in ("end", "killed", "many"):
                if os.path.isdir(os.path.join(root, ws)):
                    b.cancel_all(os.path.join(root, ws))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    bare = base * 1000
    target = "target < 200 ms"
    rows = [
        ("baseline: python -I -S -c pass", bare, 1.0, ""),
        ("job end -> next queued command running", ms(end), None, target),
        ("SIGKILLed worker + one `status` -> next command running", ms(killed), None, target),
        ("  that `status` call (whole process)", ms(reader), ms(reader) / bare, ""),
        ("launch of 1 queued job (of 100)", ms(launches), ms(launches) / bare, f"{total:.0f}s"),
        ("status --json, 0 queued", ms(st0), ms(st0) / bare, ""),
        ("status --json, 100 queued", ms(st100), ms(st100) / bare, ""),
    ]
    for size, values in hook.items():
        rows.append((f"hook stop, {size} queued", ms(values), ms(values) / bare, "flat"))
    if args.json:
        keys = ("case", "ms", "ratio", "note")
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
        return 0
    print(f"{'case':<58} {'median ms':>10} {'x bare':>7}  note")
    for name, value, ratio, note in rows:
        shown = f"{ratio:.1f}x" if ratio is not None else ""
        print(f"{name:<58} {value:>10.1f} {shown:>7}  {note}")
    return 0


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    if sys.path and Path(sys.path[0] or ".").resolve() == here:
        sys.path[0] = str(here.parent)
    raise SystemExit(main())
