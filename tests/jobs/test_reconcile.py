"""Pure reconciliation decisions, with a scripted probe."""

from __future__ import annotations

import time
from typing import Any

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
