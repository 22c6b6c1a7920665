"""Retention and ``keepReason`` (pure): a finished job that holds one is never pruned,
and :func:`jobgate.state.retention.held_back` names the jobs kept only for it."""

from __future__ import annotations

from jobgate.state import model, retention


def _finished(i: int, **extra: object) -> model.Job:
    return {
        "id": f"run-{i:03d}",
        "status": "completed",
        "createdAt": f"2026-01-01T00:00:{i:02d}.000Z",
        **extra,
    }


def test_a_job_with_a_keep_reason_survives_pruning_and_is_named_as_held_back() -> None:
    jobs = [_finished(i) for i in range(5)] + [_finished(9, keepReason="its worktree")]
    pinned = _finished(0, keepReason="its worktree holds the job's change")
    jobs[0] = pinned
    kept, dropped = retention.prune(jobs, keep_finished=2)
    assert [j["id"] for j in kept] == ["run-000", "run-004", "run-009"]
    assert {j["id"] for j in dropped} == {"run-001", "run-002", "run-003"}
    # the newest (run-009) is kept by the count anyway; only run-000 is held back
    assert [j["id"] for j in retention.held_back(jobs, keep_finished=2)] == ["run-000"]


def test_without_keep_reasons_pruning_is_unchanged() -> None:
    jobs = [_finished(i) for i in range(5)]
    kept, _dropped = retention.prune(jobs, keep_finished=2, spare=frozenset({"run-000"}))
    assert [j["id"] for j in kept] == ["run-000", "run-003", "run-004"]
    assert retention.held_back(jobs, keep_finished=2) == []
