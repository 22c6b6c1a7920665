"""How soon a waiting ``jobgate wait JOB`` notices that the job's processes were killed
from outside (nothing recorded by anyone) and exits with 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from benchmarks.timing import Row, ms_row


def bench_wait_notices_kill(
    jg: list[str], env: dict[str, str], ws: str, runs: int
) -> tuple[Row, str | None]:
    """Time from SIGKILL of a running job's worker and command (from outside, nothing
    recorded) until a waiting ``jobgate wait JOB`` exits with 1."""
    from jobgate.state import model
    from jobgate.state.store import Store
    from jobgate.state.workspace import state_dir_for

    _root, state_dir = state_dir_for(ws)
    store = Store(state_dir)
    times: list[float] = []
    problem: str | None = None
    for _ in range(runs):
        proc = subprocess.run(
            [*jg, "run", "--background", "--json", "--", "sleep", "300"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=ws,
            env=env,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            problem = f"run exit {proc.returncode}: {proc.stderr.decode(errors='replace')}"
            break
        job_id = json.loads(proc.stdout)["id"]
        deadline = time.monotonic() + 30
        job = store.read_job(job_id)
        while not (job and job.get("commandPid")) and time.monotonic() < deadline:
            time.sleep(0.01)
            job = store.read_job(job_id)
        if not job or not job.get("commandPid"):
            problem = f"job {job_id} never started its command"
            break
        waiter = subprocess.Popen(
            [*jg, "wait", job_id, "--timeout", "60"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ws,
            env=env,
        )
        time.sleep(0.5)  # the waiter is polling by now
        t0 = time.perf_counter()
        for pid in (job["pid"], job["commandPid"]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            code = waiter.wait(timeout=30)
        except subprocess.TimeoutExpired:
            waiter.kill()
            waiter.wait()
            problem = f"wait did not notice the kill of {job_id} within 30 s"
            break
        times.append((time.perf_counter() - t0) * 1000.0)
        final = store.read_job(job_id) or {}
        if code != 1 or final.get("phase") != model.PHASE_LOST:
            problem = f"wait exited {code}; job phase {final.get('phase')!r} (expected lost)"
            break
    row = ms_row(
        "wait notices an outside SIGKILL",
        times,
        max(times) if times else None,
        f"{len(times)} runs; p90 column = slowest; worker and command killed, wait exits 1",
    )
    row.target = "< 1000 ms"
    row.ok = bool(times) and max(times) < 1000.0 and problem is None
    return row, problem
