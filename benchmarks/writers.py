"""Locked read-modify-write transactions per second with concurrent writer processes, and
a check that no update was lost.

The writers are this benchmark's script run again: ``bench.py --_writer STATE_DIR JOB_ID
SHARED_ID K`` ends up in :func:`writer_main`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from benchmarks.timing import Row

WRITERS = 8
#: the script a writer process runs (it hands ``--_writer`` to :func:`writer_main`)
BENCH_SCRIPT = Path(__file__).with_name("bench.py")


def writer_main(state_dir: str, job_id: str, shared_id: str, k: int) -> int:
    """A writer process: K locked read-modify-writes bumping its own and a shared counter."""
    from jobgate.state import model
    from jobgate.state.store import Store

    store = Store(state_dir)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    for _ in range(k):
        with store.transaction() as tx:
            for jid in (job_id, shared_id):
                job = tx.get(jid)
                if job is None:
                    raise SystemExit(f"writer: job {jid} missing")
                tx.put(model.touch(job, benchCounter=int(job.get("benchCounter", 0)) + 1))
    return 0


def bench_writers(ws: str, k: int) -> tuple[Row, str | None]:
    from jobgate.state import model
    from jobgate.state.store import Store
    from jobgate.state.workspace import state_dir_for

    root, state_dir = state_dir_for(ws)
    store = Store(state_dir, root)
    store.ensure()
    ids = [model.new_id("writer") for _ in range(WRITERS)]
    shared = model.new_id("shared")
    with store.transaction() as tx:
        for jid in [*ids, shared]:
            job = model.new_job(job_id=jid, command=["true"], cwd=ws, log_file=store.log_path(jid))
            job = model.mark_exited(job, exit_code=0, signal=None)
            tx.put(dict(job, benchCounter=0))
    procs: list[subprocess.Popen[str]] = []
    try:
        for jid in ids:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(BENCH_SCRIPT),
                        "--_writer",
                        state_dir,
                        jid,
                        shared,
                        str(k),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a writer process did not start")
        t0 = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        codes = [proc.wait(timeout=300) for proc in procs]
        wall = time.perf_counter() - t0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    total = WRITERS * k
    problem = None if all(c == 0 for c in codes) else f"writer exit codes {codes}"
    index = {j["id"]: j for j in store.read_index()}
    lost = 0
    for jid, want in [*((i, k) for i in ids), (shared, total)]:
        for rec in (index.get(jid) or {}, store.read_job(jid) or {}):
            lost += want - int(rec.get("benchCounter", 0))
    if lost:
        problem = (problem + "; " if problem else "") + f"{lost} counter updates lost"
    row = Row(
        f"{WRITERS} concurrent writers, locked RMW",
        "tx/s",
        total / wall,
        None,
        target="no update lost",
        ok=problem is None,
        note=(
            f"{WRITERS} x {k} transactions in {wall:.2f}s, each bumping 2 records "
            f"(own + shared); lost updates: {lost}"
        ),
    )
    return row, problem
