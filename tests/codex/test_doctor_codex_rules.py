"""Pure rules of `jobgate doctor codex` and its careful file helpers (codex_files)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from jobgate.codex import files as cf
from jobgate.codex.rules import (
    ALIVE,
    GONE,
    REUSED,
    TIME_TOLERANCE_SECONDS,
    UNVERIFIABLE,
    Decision,
    ProcFacts,
    apply_fields,
    decide,
    failure_fields,
    record_problem,
    safe_job_id,
)

JOB_START = "2026-11-24T18:08:48.123Z"


def _parse(text: str) -> float:
    value = cf.parse_iso(text)
    assert value is not None
    return value


JOB_T = _parse(JOB_START)


def running(**extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"id": "task-1", "status": "running", "pid": 4242}
    record["startedAt"] = JOB_START
    record.update(extra)
    return record


def proc(offset: float | None, zombie: bool = False) -> ProcFacts:
    return ProcFacts(4242, zombie, None if offset is None else JOB_T + offset)


# ------------------------------------------------------------------------ decide


def test_no_such_process_is_gone() -> None:
    assert decide(running(), None).verdict == GONE


def test_zombie_is_gone_even_if_it_started_before_the_job() -> None:
    assert decide(running(), proc(-100, zombie=True)).verdict == GONE


def test_process_started_before_the_job_is_alive() -> None:
    assert decide(running(), proc(-30)).verdict == ALIVE


def test_process_started_within_tolerance_after_the_job_is_alive() -> None:
    """A queued record is stamped createdAt just before its worker is spawned."""
    record = {"id": "task-q", "status": "queued", "pid": 4242, "createdAt": JOB_START}
    assert decide(record, proc(TIME_TOLERANCE_SECONDS - 0.1)).verdict == ALIVE


def test_process_started_beyond_tolerance_after_the_job_is_reused() -> None:
    decision = decide(running(), proc(TIME_TOLERANCE_SECONDS + 0.5))
    assert decision.verdict == REUSED
    assert "pid 4242" in decision.reason and JOB_START in decision.reason


def test_started_at_is_preferred_over_created_at() -> None:
    record = running(createdAt="2026-11-24T18:00:00Z")  # 8 min before startedAt
    assert decide(record, proc(-1)).verdict == ALIVE
    record = running(startedAt=None, createdAt="2026-11-24T18:00:00Z")
    assert decide(record, proc(-1)).verdict == REUSED


def test_missing_pid_is_unverifiable() -> None:
    assert decide(running(pid=None), None).verdict == UNVERIFIABLE


@pytest.mark.parametrize("bad", ["garbage", "", 17, "2026-13-45T99:00:00Z"])
def test_unreadable_job_time_with_live_pid_is_unverifiable_and_says_so(bad: object) -> None:
    decision = decide(running(startedAt=bad), proc(-10))
    assert decision.verdict == UNVERIFIABLE
    assert "startedAt" in decision.reason


def test_no_job_time_at_all_is_unverifiable() -> None:
    record = {"id": "task-1", "status": "running", "pid": 4242}
    assert decide(record, proc(-10)).verdict == UNVERIFIABLE


def test_unknown_process_start_time_is_unverifiable() -> None:
    assert decide(running(), proc(None)).verdict == UNVERIFIABLE


# ------------------------------------------------------------ record validation


@pytest.mark.parametrize(
    "record,fragment",
    [
        ([], "is array, expected an object"),
        ({"id": "a", "status": 3}, "has status 3 (number)"),
        ({"id": "a", "status": "running", "pid": "12"}, 'pid "12" (string)'),
        ({"id": "a", "status": "running", "pid": True}, "pid true (boolean)"),
        ({"id": "a", "status": None}, "has status null (null)"),
        ({"id": "a", "status": False}, "has status false (boolean)"),
        ({"id": "a"}, "has no status"),
        ({"status": "running", "pid": 5}, "has no id"),
        ({"id": "a", "status": "running", "pid": -3}, "positive integer"),
        ({"id": 7, "status": "queued", "pid": None}, "has id 7"),
    ],
)
def test_malformed_records_are_named_with_a_reason(record: object, fragment: str) -> None:
    problem = record_problem(record)
    assert problem is not None and fragment in problem


def test_values_in_reasons_are_spelled_as_json_not_python() -> None:
    problems = [
        record_problem({"id": "a", "status": "running", "pid": v})
        for v in (True, "7", [None], {"k": False})
    ]
    problems.append(record_problem({"id": None, "status": "queued"}))
    problems.append(decide(running(startedAt="soon"), proc(-10)).reason)
    text = " ".join(p or "" for p in problems)
    for python_only in ("True", "False", "None", "'"):
        assert python_only not in text, text
    for json_spelling in ("true", '"7"', "[null]", '{"k": false}', "id null", '"soon"'):
        assert json_spelling in text, text


def test_long_values_in_reasons_are_cut_short() -> None:
    problem = record_problem({"id": "a", "status": "running", "pid": "9" * 500})
    assert problem is not None and len(problem) < 150 and "…" in problem


def test_finished_records_are_not_checked_beyond_their_status() -> None:
    assert record_problem({"status": "completed", "pid": "whatever"}) is None


@pytest.mark.parametrize("job_id", ["task-abc", "review-mh2x-1a2b", "a.b_c"])
def test_ordinary_job_ids_are_safe(job_id: str) -> None:
    assert safe_job_id(job_id)


@pytest.mark.parametrize("job_id", ["../x", "a/b", "..", ".", "", "a\\b", "x\0y", 5, None])
def test_job_ids_that_could_escape_the_jobs_folder_are_unsafe(job_id: object) -> None:
    assert not safe_job_id(job_id)


# --------------------------------------------------------------- failure shape


def test_failure_fields_are_the_plugins_shape_in_order() -> None:
    fields = failure_fields(Decision(GONE, "pid 4242 no longer exists"), "NOW")
    assert list(fields) == ["status", "phase", "pid", "completedAt", "errorMessage", "updatedAt"]
    assert fields["status"] == fields["phase"] == "failed"
    assert fields["pid"] is None and fields["completedAt"] == fields["updatedAt"] == "NOW"
    assert "pid 4242 no longer exists" in fields["errorMessage"]


def test_outcome_recorded_in_the_job_file_is_copied_instead_of_failure() -> None:
    job_file = {"status": "completed", "phase": "done", "completedAt": "THEN"}
    fields = failure_fields(Decision(GONE, "gone"), "NOW", job_file)
    assert fields == {
        "status": "completed",
        "phase": "done",
        "pid": None,
        "completedAt": "THEN",
        "updatedAt": "NOW",
    }


def test_apply_fields_keeps_key_positions_and_appends_new_keys() -> None:
    record = {"id": "x", "status": "running", "title": "t", "pid": 4}
    apply_fields(record, {"status": "failed", "pid": None, "completedAt": "NOW"})
    assert list(record) == ["id", "status", "title", "pid", "completedAt"]
    assert record["status"] == "failed"


# ------------------------------------------------------------------------ times


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-24T18:08:48.123Z",
        "2026-11-24T18:08:48.123+00:00",
        "2026-11-24T19:08:48.123+01:00",
        "2026-11-24T18:08:48.123000Z",
        "2026-11-24T18:08:48.1230001Z",
        "2026-11-24T18:08:48.123z",
    ],
)
def test_iso_times_parse_in_all_the_spellings_seen(text: str) -> None:
    assert cf.parse_iso(text) == pytest.approx(JOB_T, abs=1e-6)


def test_iso_time_without_fraction_or_offset_is_utc() -> None:
    assert cf.parse_iso("2026-11-24T18:08:48Z") == pytest.approx(JOB_T - 0.123)
    assert cf.parse_iso("2026-11-24T18:08:48") == pytest.approx(JOB_T - 0.123)


@pytest.mark.parametrize("text", ["", "soon", "2026-11-24T18:08:48.Z", None, 12.5, "2026"])
def test_unparseable_times_are_none(text: object) -> None:
    assert cf.parse_iso(text) is None


def test_iso_now_looks_like_the_plugins_times() -> None:
    stamp = cf.iso_now(JOB_T)
    assert stamp == JOB_START


# ------------------------------------------------------------------------- JSON


def test_plugin_style_round_trips_byte_for_byte() -> None:
    doc = {"version": 1, "config": {}, "jobs": [{"a": [], "b": 'é ✓ "q" / \\', "c": 1.5}]}
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    parsed, style = cf.parse_json(text.encode())
    assert style == cf.JsonStyle("  ", True)
    assert cf.dump_json(parsed, style) == text.encode()


def test_compact_and_tab_styles_are_detected() -> None:
    assert cf.detect_style('{"a":1}') == cf.JsonStyle(None, False)
    assert cf.detect_style('{\n\t"a": 1\n}\n') == cf.JsonStyle("\t", True)


def test_nan_and_duplicate_keys_are_problems() -> None:
    with pytest.raises(cf.FileProblem, match="NaN"):
        cf.parse_json(b'{"a": NaN}')
    with pytest.raises(cf.FileProblem, match='duplicate key "a"'):
        cf.parse_json(b'{"a": 1, "a": 2}')


# ------------------------------------------------------------------------ files


def test_replace_if_unchanged_refuses_when_the_file_changed(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    assert not cf.replace_if_unchanged(target, b"something else", b"new")
    assert target.read_bytes() == b"old"
    assert cf.replace_if_unchanged(target, b"old", b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_replace_keeps_the_file_mode(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    os.chmod(target, 0o604)
    assert cf.replace_if_unchanged(target, b"old", b"new")
    assert target.stat().st_mode & 0o777 == 0o604


def test_backups_never_overwrite_each_other(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"v1")
    first = cf.write_backup(target, b"v1", "STAMP")
    second = cf.write_backup(target, b"v2", "STAMP")
    assert first.name == "state.json.bak-STAMP" and second.name == "state.json.bak-STAMP-1"
    assert (first.read_bytes(), second.read_bytes()) == (b"v1", b"v2")


def test_read_bytes_refuses_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_bytes(b"x")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(cf.FileProblem, match="symbolic link"):
        cf.read_bytes(tmp_path / "link")


def test_log_line_is_appended_in_the_plugins_format(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("[t] Starting.\n")
    cf.append_log_line(log, "marked\nfailed", JOB_T)
    assert log.read_text() == f"[t] Starting.\n[{JOB_START}] marked failed\n"
