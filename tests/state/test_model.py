"""Job record transitions and references (pure)."""

from __future__ import annotations

import pytest

from jobgate.state import model, retention
from jobgate.state.errors import JobgateError


def _job(job_id: str = "run-1") -> model.Job:
    return model.new_job(job_id=job_id, command=["echo", "hi"], cwd="/", log_file="/dev/null")


def test_new_ids_are_safe_and_prefixed_by_kind() -> None:
    ids = [model.new_id("task") for _ in range(200)]
    assert all(i.startswith("task-") and model.is_safe_id(i) for i in ids)
    assert model.new_id("Bad Kind!").startswith("badkind-")


@pytest.mark.parametrize("ref", ["../x", "/etc/passwd", "..", "a/b", "", ".hidden", "a\\b"])
def test_refs_that_could_escape_the_state_dir_are_rejected(ref: str) -> None:
    with pytest.raises(JobgateError, match="invalid job reference"):
        model.resolve_ref([_job()], ref)


def test_prefix_resolves_when_unique_and_errors_when_ambiguous() -> None:
    jobs = [_job("run-abc-1"), _job("run-abd-2")]
    assert model.resolve_ref(jobs, "run-abc")["id"] == "run-abc-1"
    with pytest.raises(JobgateError, match="ambiguous"):
        model.resolve_ref(jobs, "run-ab")
    with pytest.raises(JobgateError, match="no job matches"):
        model.resolve_ref(jobs, "zzz")


def test_exit_and_signal_mapping_follows_the_shell() -> None:
    assert model.exit_code_of(0) == (0, None)
    assert model.exit_code_of(3) == (3, None)
    assert model.exit_code_of(-9) == (137, 9)


def test_cancel_requested_before_exit_records_cancelled() -> None:
    job = model.mark_running(_job(), worker={"pid": 1}, command={"pid": 2})
    job = model.mark_cancel_requested(job)
    done = model.mark_exited(job, exit_code=143, signal=15)
    assert done["status"] == model.CANCELLED


def test_a_recorded_cancel_is_not_overwritten_by_the_exit() -> None:
    job = model.mark_cancelled(model.mark_running(_job(), worker={"pid": 1}, command=None))
    done = model.mark_exited(job, exit_code=0, signal=None)
    assert done["status"] == model.CANCELLED
    assert done["exitCode"] == 0


def test_mark_lost_keeps_unknown_fields_and_records_evidence() -> None:
    job = dict(model.mark_running(_job(), worker={"pid": 1}, command=None), custom={"k": 1})
    lost = model.mark_lost(job, "worker pid 1 is gone")
    assert lost["custom"] == {"k": 1}
    assert lost["status"] == model.FAILED and lost["phase"] == model.PHASE_LOST
    assert lost["errorMessage"] == "lost: worker pid 1 is gone"
    assert lost["completedAt"]


def test_prune_never_drops_an_active_job() -> None:
    jobs = []
    for i in range(10):
        job = _job(f"run-{i}")
        job["createdAt"] = f"2026-01-01T00:00:{i:02d}.000Z"
        job["status"] = model.RUNNING if i < 3 else model.COMPLETED
        jobs.append(job)
    kept, dropped = retention.prune(jobs, 2)
    assert {j["id"] for j in kept} == {"run-0", "run-1", "run-2", "run-9", "run-8"}
    assert all(not model.is_active(j) for j in dropped)


def test_iso_times_round_trip() -> None:
    stamp = model.now_iso(1795541713.25)
    assert stamp == "2026-11-24T17:35:13.250Z"
    assert model.parse_iso(stamp) == pytest.approx(1795541713.25)
    assert model.parse_iso("nonsense") is None


def test_a_command_shows_as_the_shell_line_shlex_join_would_write() -> None:
    import random
    import shlex

    rng = random.Random(15)
    alphabet = "ab Z09_@%+=:,./-'\"\\$\n\t\u00fc\udcff*?~#"
    for _ in range(5000):
        argv = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(3)]
        assert model.shell_line(argv) == model.one_line(shlex.join(argv))
