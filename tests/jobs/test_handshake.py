"""The launch handshake (jobgate.jobs.handshake): a background job is committed once,
already running with both identities, and a launcher killed on either side of that
commit leaves nothing running that no record names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import SRC, Env
from jobgate.jobs import handshake

#: a launcher that does what jobgate.jobs.launch.start_background does, step by step, and
#: kills itself (SIGKILL) where it is told: after the worker reported (nothing committed)
#: or after the commit (no verdict sent)
LAUNCHER = r"""
import json, os, sys
from jobgate.jobs import handshake, workers
from jobgate.proc import liveness
from jobgate.state import model
from jobgate.state.store import Store

state_dir, cwd, marker, die = sys.argv[1:5]
store = Store(state_dir)
store.ensure()
job_id = model.new_id("run")
job = model.new_job(
    job_id=job_id, command=["sh", "-c", f"echo ran > {marker}"], cwd=cwd,
    log_file=store.log_path(job_id),
)
gate_r, gate_w = os.pipe()
report_r, report_w = os.pipe()
proc = workers.spawn_worker(store, job, cwd, gate_r, report_w)
os.close(gate_r)
os.close(report_w)
ident = liveness.capture(proc.pid)
job = model.touch(job, pid=proc.pid, workerProcess=ident)
said = handshake.exchange(gate_w, report_r, job, 60)
print(json.dumps({"id": job_id, "worker": proc.pid, "held": said.pid}), flush=True)
if die == "after-report":
    os.kill(os.getpid(), 9)
child = liveness.capture(said.pid)
job = model.mark_running(job, worker=ident, command=child, output_offset=said.offset)
with store.transaction() as tx:
    tx.put(job)
os.kill(os.getpid(), 9)
"""


def _launch_and_die(jg: Env, marker: Path, die: str) -> dict[str, Any]:
    store = jg.store()
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, store.state_dir, str(jg.workspace), str(marker), die],
        env=dict(jg.env, PYTHONPATH=SRC),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr
    said: dict[str, Any] = json.loads(proc.stdout.splitlines()[0])
    assert isinstance(said["held"], int), "the worker did not report its held command"
    return said


def _gone(*pids: int, timeout: float = 30) -> None:
    for pid in pids:
        try:
            psutil.Process(pid).wait(timeout=timeout)
        except psutil.NoSuchProcess:
            pass


def test_a_background_job_is_committed_once_already_running_with_both_identities(
    jg: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobgate.jobs import launch
    from jobgate.state.transaction import Transaction

    store = jg.store()
    puts: list[dict[str, Any]] = []
    real_put = Transaction.put

    def spy(self: Transaction, job: dict[str, Any]) -> None:
        puts.append(dict(job))
        real_put(self, job)

    monkeypatch.setattr(Transaction, "put", spy)
    job = launch.start_background(store, ["sleep", "30"], cwd=str(jg.workspace))
    assert len(puts) == 1  # one commit by the launcher, none by the worker to start
    first = puts[0]
    assert first["status"] == "running"
    assert first["workerProcess"]["pid"] == first["pid"]
    held = first["commandProcess"]["pid"]
    assert held != first["pid"] and psutil.pid_exists(held)
    # the pid on record is the command's own once released (exec in place)
    deadline = time.monotonic() + 30
    while psutil.Process(held).name() != "sleep":
        assert time.monotonic() < deadline, "the held command was never released"
        time.sleep(0.02)
    assert jg.cli("cancel", job["id"], "--grace", "1").returncode == 0


def test_a_launcher_killed_after_the_report_and_before_its_commit_runs_nothing(
    jg: Env, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    said = _launch_and_die(jg, marker, "after-report")
    _gone(said["held"], said["worker"])
    assert not marker.exists()
    store = jg.store()
    assert store.snapshot().lookup(said["id"]) is None
    log = Path(store.log_path(said["id"])).read_text()
    assert "worker found no record for this job; nothing run" in log


def test_a_launcher_killed_after_its_commit_and_before_the_verdict_still_runs_the_job(
    jg: Env, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    said = _launch_and_die(jg, marker, "after-commit")
    job = jg.wait_for(said["id"], lambda j: j["status"] == "completed")
    assert job["exitCode"] == 0 and job["commandProcess"]["pid"] == said["held"]
    assert marker.read_text() == "ran\n"


def _pipes_to(argv: list[str]) -> tuple[subprocess.Popen[bytes], int, int]:
    """A stand-in worker on the other end of the handshake's two pipes."""
    gate_r, gate_w = os.pipe()
    report_r, report_w = os.pipe()
    proc = subprocess.Popen([*argv, str(gate_r), str(report_w)], pass_fds=(gate_r, report_w))
    os.close(gate_r)
    os.close(report_w)
    return proc, gate_w, report_r


def test_a_worker_that_dies_before_it_reports_gives_an_empty_report() -> None:
    proc, gate_w, report_r = _pipes_to([sys.executable, "-c", "import os; os._exit(3)"])
    try:
        said = handshake.exchange(gate_w, report_r, {"id": "run-x", "command": ["true"]}, 30)
    finally:
        os.close(gate_w)
        os.close(report_r)
        proc.wait()
    assert said.pid is None and said.error is None


def test_a_worker_that_never_reports_is_given_up_on_at_the_timeout() -> None:
    proc, gate_w, report_r = _pipes_to([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = time.monotonic()
        with pytest.raises(handshake.WorkerSilent):
            handshake.exchange(gate_w, report_r, {"id": "run-x", "command": ["true"]}, 0.5)
        assert time.monotonic() - started < 10
    finally:
        os.close(gate_w)
        os.close(report_r)
        proc.kill()
        proc.wait()


def test_a_spec_larger_than_a_pipe_reaches_the_worker_whole() -> None:
    """A task's prompt is in its command: the spec may be far bigger than the 64 KiB a
    pipe holds, and the launcher must not block writing it."""
    echo = (
        "import sys, os; from jobgate.jobs import handshake; "
        "g, r = int(sys.argv[1]), int(sys.argv[2]); spec = handshake.read_spec(g); "
        "handshake.report(r, pid=len(spec['command'][1]), offset=7)"
    )
    proc, gate_w, report_r = _pipes_to([sys.executable, "-c", echo])
    prompt = "p" * 300_000
    try:
        said = handshake.exchange(gate_w, report_r, {"id": "run-x", "command": ["a", prompt]}, 30)
    finally:
        os.close(gate_w)
        os.close(report_r)
        proc.wait()
    assert said.pid == len(prompt) and said.offset == 7


def test_a_report_that_is_not_the_protocol_is_no_report() -> None:
    assert handshake.parse_report(b"P 12 34\n").pid == 12
    assert handshake.parse_report(b"E cannot run x: no such file\n").error == (
        "cannot run x: no such file"
    )
    for junk in (b"", b"P twelve\n", b"hello\n", b"E \n"):
        said = handshake.parse_report(junk)
        assert said.pid is None and said.error is None


def test_a_launch_whose_commit_fails_leaves_no_job_file_and_runs_nothing(
    jg: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job file is written before the lock (the index exists by then): a commit that
    fails (disk full) takes it away again, and the worker releases nothing."""
    import errno

    from jobgate.jobs import launch
    from jobgate.state.transaction import Transaction

    store = jg.store()
    first = launch.start_background(store, ["true"], cwd=str(jg.workspace))  # the index
    jg.wait_for(first["id"], lambda j: j["status"] == "completed")

    def full(self: Transaction) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", store.index_path)

    monkeypatch.setattr(Transaction, "_commit", full)
    marker = tmp_path / "ran"
    before = set(os.listdir(store.jobs_dir))
    with pytest.raises(OSError):
        launch.start_background(store, ["sh", "-c", f"echo > {marker}"], cwd=str(jg.workspace))
    monkeypatch.undo()
    new = set(os.listdir(store.jobs_dir)) - before
    assert [n for n in new if n.endswith(".json")] == []  # only the log of what happened
    (log,) = [n for n in new if n.endswith(".log")]
    deadline = time.monotonic() + 30
    text = ""
    while "nothing run" not in text:
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
        text = (Path(store.jobs_dir) / log).read_text()
    assert not marker.exists()
