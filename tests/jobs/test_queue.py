"""The daemonless queue: slots, groups, order, dependencies, claims, and that whoever
looks starts what may start (real processes; the pure plan on plain records)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Env
from jobgate.jobs import queue
from jobgate.state import model


# -- the pure plan -------------------------------------------------------------------
def _q(job_id: str, rank: float, group: str | None = None, **more: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": job_id,
        "status": "queued",
        "phase": "waiting",
        "queueRank": rank,
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    if group:
        job["group"] = group
    job.update(more)
    return job


def _running(job_id: str, group: str | None = None) -> dict[str, Any]:
    job: dict[str, Any] = {"id": job_id, "status": "running", "workerProcess": {"pid": 1}}
    if group:
        job["group"] = group
    return job


def _none(_job_id: str) -> str | None:
    return None


def test_plan_starts_queued_jobs_in_rank_order_up_to_the_groups_slots() -> None:
    jobs = [_q("c", 3), _q("a", 1), _q("b", 2), _running("r")]
    plan = queue.plan(jobs, _none, queue.Limits(default=2), now=0)
    assert plan.start == ["a"]
    assert [(w.job["id"], w.reason) for w in plan.waiting] == [
        ("a", queue.READY),
        ("b", queue.SLOT),
        ("c", queue.SLOT),
    ]
    assert [w.position for w in plan.waiting] == [1, 2, 3]


def test_plan_without_a_limit_starts_everything_as_today() -> None:
    plan = queue.plan([_q("a", 1), _q("b", 2), _running("r")], _none, queue.Limits(), now=0)
    assert plan.start == ["a", "b"]


def test_plan_groups_have_their_own_slots() -> None:
    jobs = [_running("r", "gpu"), _q("g1", 1, "gpu"), _q("d1", 2)]
    plan = queue.plan(jobs, _none, queue.Limits(default=5, groups={"gpu": 1}), now=0)
    assert plan.start == ["d1"]
    assert {w.job["id"]: w.reason for w in plan.waiting}["g1"] == queue.SLOT


def test_plan_dependencies_wait_fail_or_run_anyway() -> None:
    statuses = {"ok": "completed", "bad": "failed"}
    jobs = [
        _q("w", 1, after=["dep"]),
        _q("f", 2, after=["ok", "bad"]),
        _q("any", 3, after=["bad"], afterAny=True),
        _q("go", 4, after=["ok"]),
        _running("dep"),
    ]
    plan = queue.plan(jobs, statuses.get, queue.Limits(), now=0)
    assert plan.start == ["any", "go"]
    assert plan.fail == [("f", "dependency bad is failed")]
    assert {w.job["id"]: w.reason for w in plan.waiting}["w"] == queue.DEPENDENCY


def test_a_live_claim_holds_a_slot_and_an_expired_one_waits_again() -> None:
    claimed = _q("a", 1, claim={"token": "t", "pid": 1, "at": 100.0})
    jobs = [claimed, _q("b", 2)]
    fresh = queue.plan(jobs, _none, queue.Limits(default=1), now=101.0)
    assert fresh.start == []
    later = queue.plan(jobs, _none, queue.Limits(default=1), now=100.0 + 60)
    assert later.start == ["a"]


def test_rank_before_places_a_job_between_its_neighbours() -> None:
    jobs = [_q("a", 1), _q("b", 2), _q("c", 3)]
    rank = queue.rank_before([j for j in jobs if j["id"] != "c"], jobs[1], "default")
    assert 1 < rank < 2
    assert queue.rank_before(jobs, None, "default") < 1


def test_find_cycle_names_the_path() -> None:
    assert queue.find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}, "a") == ["a", "b", "c", "a"]
    assert queue.find_cycle({"a": ["b"], "b": []}, "a") is None


# -- real processes ------------------------------------------------------------------
def _queue(jg: Env, *args: str) -> dict[str, Any]:
    proc = jg.cli("run", "--queue", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    brief: dict[str, Any] = json.loads(proc.stdout)
    return brief


def _record(jg: Env, job_id: str) -> dict[str, Any]:
    """The job as stored, read without running any jobgate command (no reader)."""
    store = jg.store()
    found = store.snapshot().lookup(job_id)
    assert found is not None
    return dict(found)


def _poll(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _kill(pid: object) -> None:
    if isinstance(pid, int):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_queued_jobs_respect_max_parallel_and_all_run(jg: Env, tmp_path: Path) -> None:
    jg.cli("config", "set", "maxParallel", "1")
    gate = tmp_path / "go"
    first = _queue(jg, "--", "sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done")
    second = _queue(jg, "--", "true")
    assert second["status"] == "queued" and second["queue"]["reason"] == "slot"
    listed = jg.cli_json("queue")["queue"]
    assert [e["id"] for e in listed] == [second["id"]]
    assert "1 of 1" in listed[0]["detail"]
    gate.touch()
    done = jg.wait_for(second["id"], lambda j: j["status"] == "completed")
    assert jg.job(first["id"])["status"] == "completed"
    assert done["queueRank"] >= 1


def test_the_next_queued_job_starts_within_one_reader_call_after_the_worker_is_killed(
    jg: Env, tmp_path: Path
) -> None:
    jg.cli("config", "set", "maxParallel", "1")
    first = _queue(jg, "--", "sleep", "300")
    marker = tmp_path / "second-ran"
    second = _queue(jg, "--", "sh", "-c", f"touch {marker}; sleep 300")
    running = jg.wait_for(first["id"], lambda j: j["status"] == "running" and j.get("commandPid"))
    assert _record(jg, second["id"])["status"] == "queued"
    _kill(running["pid"])
    _kill(running["commandPid"])
    _poll(lambda: not os.path.exists(f"/proc/{running['commandPid']}/stat") or _zombie(running))
    assert not marker.exists()
    proc = jg.cli("status")  # one reader call, any command
    assert proc.returncode == 0, proc.stderr
    assert _record(jg, first["id"])["phase"] == "lost"
    started = _record(jg, second["id"])
    assert started.get("workerProcess"), started
    _poll(marker.exists)
    jg.cli("cancel", second["id"], "--grace", "1")


def _zombie(job: dict[str, Any]) -> bool:
    try:
        with open(f"/proc/{job['commandPid']}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_wait_on_a_queued_job_starts_it_when_its_turn_comes(jg: Env, tmp_path: Path) -> None:
    jg.cli("config", "set", "maxParallel", "1")
    first = _queue(jg, "--", "sleep", "300")
    second = _queue(jg, "--", "true")
    running = jg.wait_for(first["id"], lambda j: j["status"] == "running" and j.get("commandPid"))
    waiter = jg.popen("wait", second["id"], "--timeout", "60")
    try:
        time.sleep(0.5)
        _kill(running["pid"])  # nobody is left to start the next job but the waiter
        _kill(running["commandPid"])
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()
    assert waiter.returncode == 0, err
    assert "completed" in out


def test_a_failed_dependency_fails_the_job_with_phase_dependency(jg: Env) -> None:
    bad = jg.start("false")
    jg.wait_for(bad["id"], lambda j: j["status"] == "failed")
    after = _queue(jg, "--after", bad["id"], "--", "true")
    done = jg.wait_for(after["id"], lambda j: j["status"] != "queued")
    assert done["status"] == "failed" and done["phase"] == "dependency"
    assert bad["id"] in done["errorMessage"]
    anyway = _queue(jg, "--after", bad["id"], "--after-any", "--", "true")
    assert jg.wait_for(anyway["id"], model.is_finished)["status"] == "completed"


def test_a_job_after_a_running_one_starts_when_it_completes(jg: Env, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    dep = jg.start("sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done")
    after = _queue(jg, "--after", dep["id"], "--", "true")
    assert after["queue"]["reason"] == "dependency"
    gate.touch()
    assert jg.wait_for(after["id"], model.is_finished)["status"] == "completed"


def test_after_an_unknown_job_is_refused_and_nothing_is_recorded(jg: Env) -> None:
    jg.start("true")
    before = jg.cli_json("status", "--all")["jobs"]
    proc = jg.cli("run", "--after", "run-nosuchjob", "--", "true")
    assert proc.returncode == 2
    assert "run-nosuchjob" in proc.stderr
    assert len(jg.cli_json("status", "--all")["jobs"]) == len(before)


def test_cancel_of_a_queued_job_removes_it_from_the_queue(jg: Env) -> None:
    jg.cli("config", "set", "maxParallel", "1")
    first = _queue(jg, "--", "sleep", "300")
    second = _queue(jg, "--", "sleep", "300")
    proc = jg.cli("cancel", second["id"])
    assert proc.returncode == 0, proc.stderr
    assert jg.cli_json("queue")["queue"] == []
    assert _record(jg, second["id"])["status"] == "cancelled"
    jg.cli("cancel", first["id"], "--grace", "1")


def test_queue_move_first_and_before_change_the_start_order(jg: Env) -> None:
    jg.cli("config", "set", "maxParallel", "1")
    first = _queue(jg, "--", "sleep", "300")
    ids = [_queue(jg, "--", "true")["id"] for _ in range(3)]
    assert jg.cli("queue", "move", ids[2], "--first").returncode == 0
    assert jg.cli("queue", "move", ids[1], "--before", ids[0]).returncode == 0
    order = [e["id"] for e in jg.cli_json("queue")["queue"]]
    assert order == [ids[2], ids[1], ids[0]]
    assert jg.cli("queue", "move", first["id"], "--first").returncode == 1  # not waiting
    assert jg.cli("cancel", "--all", "--grace", "1").returncode == 0
    assert jg.cli_json("queue")["queue"] == []


def test_group_slots_are_separate(jg: Env) -> None:
    jg.cli("config", "set", "groups.gpu.maxParallel", "1")
    a = _queue(jg, "--group", "gpu", "--", "sleep", "300")
    b = _queue(jg, "--group", "gpu", "--", "true")
    c = _queue(jg, "--", "true")  # default group: unlimited
    assert b["queue"]["reason"] == "slot" and b["queue"]["group"] == "gpu"
    assert jg.wait_for(c["id"], model.is_finished)["status"] == "completed"
    assert _record(jg, b["id"])["status"] == "queued"
    jg.cli("cancel", a["id"], "--grace", "1")
    assert jg.wait_for(b["id"], model.is_finished)["status"] == "completed"


def test_a_claimer_killed_before_it_spawned_leaves_a_job_that_starts_later(jg: Env) -> None:
    store = jg.store()
    job = model.new_job(
        job_id=model.new_id("run"),
        command=["true"],
        cwd=str(jg.workspace),
        log_file="",
    )
    job["logFile"] = store.log_path(job["id"])
    stale = time.time() - queue.CLAIM_GRACE_SECONDS - 1
    job.update(queueRank=1.0, phase="starting", claim={"token": "x", "pid": 1, "at": stale})
    with store.transaction() as tx:
        tx.put(job)
    assert jg.wait_for(job["id"], model.is_finished)["status"] == "completed"


@pytest.mark.parametrize("bad", ["0", "x", "-1"])
def test_bad_max_parallel_is_refused(jg: Env, bad: str) -> None:
    assert jg.cli("config", "set", "maxParallel", bad).returncode == 2


def test_the_stop_hooks_note_names_waiting_jobs_in_one_line_however_many() -> None:
    from jobgate.claude import hooks

    active = [_q(f"q{i}", i) for i in range(100)] + [_running("r")]
    notes = hooks.running_notices(active)
    assert len(notes) == 2
    assert "r is still running" in notes[0].replace("job ", "")
    assert "100 job(s) wait in the queue" in notes[1]


@pytest.mark.parametrize(
    "bad",
    [
        ["--timeout", "0"],
        ["--timeout", "soon"],
        ["--stall", "1h30"],
        ["--group", "a b"],
        ["--retries", "-1"],
        ["--after-any"],
        ["--after", ","],
        ["--retries", "2"],  # a foreground run: its retries would run unseen
    ],
)
def test_bad_queue_and_lifecycle_options_are_refused_and_record_nothing(
    jg: Env, bad: list[str]
) -> None:
    proc = jg.cli("run", *bad, "--", "true")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not jg.home.exists() or not list(jg.home.glob("*/jobs/*.json"))


def test_a_job_waiting_in_the_queue_past_the_grace_period_is_never_written_down_lost(
    jg: Env,
) -> None:
    """DESIGN invariant 2 as the queue has it: a queued record with no process is active
    only for a grace period, unless it waits in the queue, which needs no process. A
    job that waited an hour behind a real running job stays queued through every reader,
    and starts once the slot frees."""
    jg.cli("config", "set", "maxParallel", "1")
    busy = _queue(jg, "--", "sleep", "300")
    jg.wait_for(busy["id"], lambda j: j["status"] == "running")
    waiting = _queue(jg, "--", "true")
    store = jg.store()
    an_hour_ago = model.now_iso(time.time() - 3600)
    with store.transaction() as tx:
        job = tx.get(waiting["id"])
        assert job is not None and job["status"] == "queued"
        tx.put(model.touch(job, createdAt=an_hour_ago))
    assert jg.cli("status").returncode == 0
    assert jg.cli("hook", "stop", input="{}").returncode == 0
    shown = jg.job(waiting["id"])
    assert (shown["status"], shown.get("phase")) == ("queued", "waiting")
    assert jg.cli("cancel", busy["id"], "--grace", "1").returncode == 0
    assert jg.wait_for(waiting["id"], model.is_finished)["status"] == "completed"
