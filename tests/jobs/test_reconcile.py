"""Pure reconciliation decisions, with a scripted probe."""

from __future__ import annotations

import time
from typing import Any

from conftest import Env
from jobgate.jobs import reconcile
from jobgate.state import model


def _job(job_id: str, **fields: Any) -> dict[str, Any]:
    job = model.new_job(job_id=job_id, command=["x"], cwd="/", log_file="/dev/null")
    job.update(fields)
    return job


def _probe(verdicts: dict[int, str]) -> Any:
    def probe(ident: dict[str, Any]) -> tuple[str, str]:
        verdict = verdicts.get(ident["pid"], "gone")
        return verdict, f"pid {ident['pid']} is {verdict}"

    return probe


def test_job_with_any_live_process_is_not_lost() -> None:
    job = _job("a", status="running", workerProcess={"pid": 1}, commandProcess={"pid": 2})
    assert reconcile.find_lost([job], _probe({2: "alive"}), time.time()) == []


def test_job_with_every_process_dead_is_lost_with_both_reasons() -> None:
    job = _job("a", status="running", workerProcess={"pid": 1}, commandProcess={"pid": 2})
    lost = reconcile.find_lost([job], _probe({2: "reused"}), time.time())
    assert lost == [("a", "worker pid 1 is gone; command pid 2 is reused")]


def test_finished_jobs_are_never_probed() -> None:
    def probe(ident: dict[str, Any]) -> tuple[str, str]:
        raise AssertionError("probed a finished job")

    jobs = [_job(s, status=s, workerProcess={"pid": 1}) for s in model.FINISHED]
    assert reconcile.find_lost(jobs, probe, time.time()) == []


def test_queued_without_identity_is_believed_only_during_grace() -> None:
    now = time.time()
    job = _job("q", createdAt=model.now_iso(now))
    assert reconcile.find_lost([job], _probe({}), now + 1) == []
    later = now + model.QUEUED_GRACE_SECONDS + 1
    assert reconcile.find_lost([job], _probe({}), later)[0][0] == "q"


def test_running_without_any_pid_is_lost() -> None:
    job = _job("r", status="running")
    assert reconcile.find_lost([job], _probe({}), time.time()) == [
        ("r", "no process was ever recorded for it")
    ]


def test_a_job_file_holding_the_end_wins_over_an_older_active_summary(jg: Env) -> None:
    """A lock-free reader may read active.json just before an end's commit and the job
    file (written first) after it, and after the next commit too (a retry's
    ``retriedBy``): it must show the end, not "running" with the end's fields beside it."""
    from jobgate.jobs import refresh
    from jobgate.state.store import write_json

    store = jg.store()
    store.ensure()
    job = model.new_job(job_id="run-torn-1", command=["true"], cwd="/", log_file="/dev/null")
    running = model.touch(job, status=model.RUNNING, phase="running")
    ended = model.touch(model.mark_exited(running, exit_code=1, signal=None), retriedBy="run-x")
    write_json(store.job_path("run-torn-1"), ended)
    shown = refresh.full_record(store, model.summary(running))
    assert (shown["status"], shown["retriedBy"]) == ("failed", "run-x")
    # and a file that is older than the summary stays under it
    write_json(store.job_path("run-torn-1"), job)
    assert refresh.full_record(store, model.summary(running))["status"] == "running"
