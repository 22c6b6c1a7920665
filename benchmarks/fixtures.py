"""What the measurements run against: workspaces, jobgate state built with jobgate's own
``model`` and written in the ``Store``'s layout, and live ``sleep`` processes standing in
for running jobs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

SESSION = "bench"
LIVE_SLEEP_SECONDS = "900"  # the sleeps are killed at the end; this only bounds a crash


def make_workspace(path: Path) -> str:
    """A workspace folder that looks like a git checkout (the root lookup stops here)."""
    (path / ".git").mkdir(parents=True)
    return str(path)


class Sleepers:
    """Live processes whose identities running jobs record; all ended in :meth:`close`."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self) -> dict[str, Any]:
        from jobgate.proc import liveness

        proc = subprocess.Popen(
            ["sleep", LIVE_SLEEP_SECONDS],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        ident = liveness.capture(proc.pid)
        if ident is None:
            raise RuntimeError(f"could not capture the identity of sleep pid {proc.pid}")
        return ident

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        self.procs.clear()


def _finished_output(i: int, ok: bool) -> str:
    lines = [f"collected {20 + i % 7} items", ""]
    lines += [f"tests/test_mod{i}_{k}.py ....................  [{k * 10}%]" for k in range(1, 11)]
    lines.append(f"{20 + i % 7} passed in {1 + i % 9}.{i % 100:02d}s" if ok else "1 failed")
    return "\n".join(lines) + "\n"


def _write_private(path: str, text: str) -> None:
    """Write a new 0600 file as jobgate would leave it, minus the fsync: a fixture needs
    the bytes, not the durability, and 10,000 fsyncs would take minutes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def build_state(ws: str, n_jobs: int, n_running: int, sleepers: Sleepers) -> str:
    """Write ``n_jobs`` retained jobs (the newest ``n_running`` of them running) for
    workspace ``ws``; returns the state dir.

    The records come from jobgate's own ``model`` functions and the files are the ones a
    ``Store`` transaction commits (``active.json`` with the active summaries,
    ``finished.jsonl`` with the finished ones, ``jobs/<id>.json``; ``jobs/<id>.log``),
    but written directly: one transaction per record costs fsyncs per file, which makes
    10,000 jobs take minutes. ``maxJobs`` is set far above ``n_jobs`` so nothing is
    pruned by the commands measured.
    """
    from jobgate.proc import liveness
    from jobgate.state import index, model
    from jobgate.state.fileio import atomic_write, json_text, write_json
    from jobgate.state.store import Store
    from jobgate.state.workspace import state_dir_for

    root, state_dir = state_dir_for(ws)
    store = Store(state_dir, root)
    store.ensure()
    with store.lock():
        store.write_config({"maxJobs": max(100_000, 10 * n_jobs), "stopReviewGate": False})
    now = time.time()
    boot = liveness.boot_id()
    host = liveness.host_name()
    jobs: list[dict[str, Any]] = []
    for i in range(n_jobs):
        t = now - (n_jobs - i) * 90.0  # one job every 90 s, oldest first
        running = i >= n_jobs - n_running
        kind = "task" if i % 3 == 0 else "run"
        command = (
            ["codex", "exec", "--skip-git-repo-check", f"review change {i}"]
            if kind == "task"
            else ["pytest", "-q", f"tests/test_mod{i}.py"]
        )
        job_id = model.new_id(kind, t)
        session = SESSION if running or i % 2 == 0 else "other-session"
        job = model.new_job(
            job_id=job_id,
            command=command,
            cwd=ws,
            kind=kind,
            name=f"{kind} {i}",
            session_id=session,
            log_file=store.log_path(job_id),
            now=t,
        )
        if running:
            worker, cmd = sleepers.spawn(), sleepers.spawn()
            job = model.mark_running(job, worker=worker, command=cmd, now=t + 0.1)
        else:
            # identities of processes that are long gone, as a finished record keeps them
            fake = {"startTime": round(t, 3), "bootId": boot, "host": host}
            worker = {"pid": 200_000 + 2 * i, "startTicks": 10_000 + i, **fake}
            cmd = {"pid": 200_001 + 2 * i, "startTicks": 10_001 + i, **fake}
            job = model.mark_running(job, worker=worker, command=cmd, now=t + 0.1)
            if i % 10 == 9:
                job = model.mark_cancel_requested(job, now=t + 30)
            ok = i % 7 != 3
            job = model.mark_exited(
                job,
                exit_code=0 if ok else 1,
                signal=None,
                output=_finished_output(i, ok),
                now=t + 60,
            )
        jobs.append(job)
        _write_private(store.job_path(job_id), json_text(job, indent=2) + "\n")
        lines = [f"jobgate: job {job_id} created", "jobgate: command started"]
        if model.is_finished(job):
            lines.append(f"jobgate: command ended ({job['status']})")
        stamp = model.now_iso()
        _write_private(job["logFile"], "".join(f"[{stamp}] {line}\n" for line in lines))
    # as commits leave it: active jobs newest first, the finished ones' log oldest first
    active = [model.summary(job) for job in reversed(jobs) if model.is_active(job)]
    done = [model.summary(job) for job in jobs if not model.is_active(job)]
    with store.lock():
        data = index.lines_text(done)
        atomic_write(store.finished_path, data)
        st = os.stat(store.finished_path)
        cursor = index.Cursor(st.st_dev, st.st_ino, st.st_size, len(done), index.crc(data))
        write_json(store.index_path, index.active_document(active, cursor), pretty=False)
    return str(state_dir)
