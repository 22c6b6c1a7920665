"""How soon ``jobgate run --background -- true`` returns (the detached worker spawned and
the record committed)."""

from __future__ import annotations

import subprocess
import time

from benchmarks.timing import Row, ms_row, p90


def wait_job_done(state_dir: str, job_id: str, timeout: float = 30.0) -> str | None:
    """Wait until ``job_id`` is finished and its worker is gone; None, or what is wrong."""
    from jobgate.proc import liveness
    from jobgate.state import model
    from jobgate.state.store import Store

    store = Store(state_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.read_job(job_id)
        if job is not None and model.is_finished(job):
            idents = [job.get("workerProcess"), job.get("commandProcess")]
            if not any(liveness.is_alive(i) for i in idents if isinstance(i, dict)):
                return None
        time.sleep(0.01)
    return f"job {job_id} did not finish within {timeout:g}s"


def bench_run_background(
    jg: list[str], env: dict[str, str], ws: str, runs: int
) -> tuple[Row, str | None]:
    from jobgate.state.workspace import state_dir_for

    _root, state_dir = state_dir_for(ws)
    argv = [*jg, "run", "--background", "--", "true"]
    times: list[float] = []
    problem: str | None = None
    for i in range(runs + 2):  # two warm-up runs
        t0 = time.perf_counter()
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=ws,
            env=env,
            timeout=60,
            check=False,
        )
        dt = (time.perf_counter() - t0) * 1000.0
        out = proc.stdout.decode(errors="replace").splitlines()
        if proc.returncode != 0 or not out:
            problem = f"exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}"
            break
        if i >= 2:
            times.append(dt)
        # let the job finish before the next start (not timed), so runs do not overlap
        problem = wait_job_done(state_dir, out[0].strip())
        if problem:
            break
    row = ms_row(
        "run --background -- true (return)",
        times,
        p90(times) if times else None,
        f"{len(times)} runs; each job waited for (untimed) before the next",
    )
    row.target = "< 150 ms"
    row.ok = row.median is not None and row.median < 150.0 and problem is None
    return row, problem
