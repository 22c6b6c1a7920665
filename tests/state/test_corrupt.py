"""Damaged files are quarantined or skipped, never silently reset (issue 2, item 5)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import Env

BAD_INDEXES: dict[str, bytes] = {
    "garbage bytes": b"\x00\xff\xfe garbage \x80",
    "truncated JSON": b'{"version": 1, "jobs": [{"id": "run-',
    "empty file": b"",
    "a list": b"[1, 2, 3]",
    "jobs not a list": b'{"version": 1, "jobs": {"id": "x"}}',
    "a job that is not an object": b'{"version": 1, "jobs": [42]}',
    "a job without an id": b'{"version": 1, "jobs": [{"status": "running"}]}',
    # jobgate never writes such ids; pruning one would aim outside jobs/
    "an id escaping jobs/": b'{"version": 1, "jobs": [{"id": "../../etc/x", "status": "failed"}]}',
}


def _two_finished_jobs(jg: Env) -> list[str]:
    ids = []
    for word in ("one", "two"):
        proc = jg.cli("run", "--name", word, "--", "sh", "-c", f"echo {word}")
        assert proc.returncode == 0, proc.stderr
    for job in jg.cli_json("status", "--all")["jobs"]:
        ids.append(job["id"])
    assert len(ids) == 2
    return sorted(ids)


def _assert_told_once(stderr: str, state_dir: Path) -> Path:
    """One warning line naming the quarantine file, no traceback; returns that file."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if "active.json" in line]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("jobgate: warning:"), stderr
    quarantined = sorted(state_dir.glob("active.json.corrupt-*"))
    assert len(quarantined) == 1, quarantined
    assert quarantined[0].name in lines[0]
    return quarantined[0]


@pytest.mark.parametrize("damage", sorted(BAD_INDEXES))
def test_unreadable_index_is_quarantined_and_rebuilt_by_status(jg: Env, damage: str) -> None:
    ids = _two_finished_jobs(jg)
    assert jg.cli("config", "set", "maxJobs", "7").returncode == 0
    state_dir = jg.state_dir()
    (state_dir / "active.json").write_bytes(BAD_INDEXES[damage])

    proc = jg.cli("status", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    quarantined = _assert_told_once(proc.stderr, state_dir)
    assert quarantined.read_bytes() == BAD_INDEXES[damage]  # kept as it was, for a human
    assert sorted(j["id"] for j in json.loads(proc.stdout)["jobs"]) == ids
    # the rebuilt index is on disk, so the next reader is not warned again
    assert json.loads((state_dir / "active.json").read_bytes())["jobs"] == []
    assert sorted(j["id"] for j in jg.store().read_index()) == ids
    again = jg.cli("status")
    assert again.returncode == 0 and again.stderr == ""
    # settings live outside the index and survive its loss
    assert jg.cli_json("config", "get", "maxJobs") == {"maxJobs": 7}


def test_unreadable_index_is_quarantined_when_run_starts_a_job(jg: Env) -> None:
    ids = _two_finished_jobs(jg)
    assert jg.cli("config", "set", "stopReviewGate", "true").returncode == 0
    state_dir = jg.state_dir()
    (state_dir / "active.json").write_bytes(b'{"version": 1, "jobs": [')

    proc = jg.cli("run", "--", "true")
    assert proc.returncode == 0, proc.stderr
    _assert_told_once(proc.stderr, state_dir)
    jobs = jg.cli_json("status", "--all")["jobs"]
    assert len(jobs) == 3 and set(ids) <= {j["id"] for j in jobs}
    assert jg.cli_json("config", "get", "stopReviewGate") == {"stopReviewGate": True}


def test_background_run_with_unreadable_index_records_the_new_job_too(jg: Env) -> None:
    ids = _two_finished_jobs(jg)
    state_dir = jg.state_dir()
    (state_dir / "active.json").write_bytes(b"\x00\x00\x00")
    proc = jg.cli("run", "--background", "--json", "--", "true")
    assert proc.returncode == 0, proc.stderr
    _assert_told_once(proc.stderr, state_dir)
    new_id = json.loads(proc.stdout)["id"]
    jg.wait_for(new_id, lambda j: j["status"] == "completed")
    assert {j["id"] for j in jg.cli_json("status", "--all")["jobs"]} == {*ids, new_id}


def test_readers_racing_on_an_unreadable_index_quarantine_it_once(jg: Env) -> None:
    ids = _two_finished_jobs(jg)
    state_dir = jg.state_dir()
    (state_dir / "active.json").write_bytes(b"{broken")
    readers = [jg.popen("status", "--all", "--json") for _ in range(6)]
    outputs = [p.communicate(timeout=60) for p in readers]
    assert [p.returncode for p in readers] == [0] * len(readers), outputs
    for stdout, _stderr in outputs:
        assert sorted(j["id"] for j in json.loads(stdout)["jobs"]) == ids
    warned = [err for _out, err in outputs if err]
    assert len(warned) == 1, warned
    assert [p.read_bytes() for p in state_dir.glob("active.json.corrupt-*")] == [b"{broken"]


def test_two_quarantines_in_the_same_second_keep_both_damaged_files(jg: Env) -> None:
    _two_finished_jobs(jg)
    state_dir = jg.state_dir()
    for damage in (b"first damage", b"second damage"):
        (state_dir / "active.json").write_bytes(damage)
        assert jg.cli("status").returncode == 0
    kept = {p.read_bytes() for p in state_dir.glob("active.json.corrupt-*")}
    assert kept == {b"first damage", b"second damage"}


def test_corrupt_job_file_is_skipped_with_a_warning_when_rebuilding(jg: Env) -> None:
    ids = _two_finished_jobs(jg)
    state_dir = jg.state_dir()
    bad, good = ids
    (state_dir / "jobs" / f"{bad}.json").write_bytes(b'{"id": "half')
    (state_dir / "active.json").write_bytes(b"garbage")

    proc = jg.cli("status", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert [j["id"] for j in json.loads(proc.stdout)["jobs"]] == [good]
    assert any(f"{bad}.json" in line for line in proc.stderr.splitlines()), proc.stderr
    assert (state_dir / "jobs" / f"{bad}.json").read_bytes() == b'{"id": "half'


def test_rebuild_ignores_job_files_whose_names_are_not_job_ids(jg: Env) -> None:
    ids = _two_finished_jobs(jg)
    state_dir = jg.state_dir()
    (state_dir / "jobs" / "-odd.json").write_text(json.dumps({"id": "-odd"}))
    (state_dir / "active.json").write_bytes(b"garbage")
    proc = jg.cli("status", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(j["id"] for j in json.loads(proc.stdout)["jobs"]) == ids


def test_index_with_an_escaping_id_is_quarantined_before_pruning_can_use_it(jg: Env) -> None:
    _two_finished_jobs(jg)
    assert jg.cli("config", "set", "maxJobs", "1").returncode == 0
    state_dir = jg.state_dir()
    victim = jg.home / "victim.json"
    victim.write_text("{}")
    entry = {"id": "../../victim", "status": "completed", "createdAt": "2000-01-01T00:00:00Z"}
    (state_dir / "active.json").write_text(json.dumps({"version": 1, "jobs": [entry]}))
    proc = jg.cli("run", "--", "true")
    assert proc.returncode == 0, proc.stderr
    _assert_told_once(proc.stderr, state_dir)
    assert victim.read_text() == "{}"


def test_corrupt_job_file_of_an_indexed_job_is_not_fatal(jg: Env) -> None:
    ids = _two_finished_jobs(jg)
    state_dir = jg.state_dir()
    (state_dir / "jobs" / f"{ids[0]}.json").write_bytes(b"\xff not json")
    for args in (("status", ids[0]), ("result", ids[0]), ("status", "--all")):
        proc = jg.cli(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    shown = jg.cli_json("status", ids[0])["job"]
    assert shown["id"] == ids[0] and shown["status"] == "completed"  # from the index


@pytest.mark.parametrize(
    "content", [b'{"maxJobs": 7', b"\x00\xff", b"[1, 2]"], ids=["truncated", "binary", "list"]
)
def test_corrupt_config_is_a_clear_error_and_is_never_overwritten(jg: Env, content: bytes) -> None:
    assert jg.cli("config", "set", "maxJobs", "7").returncode == 0
    config = jg.state_dir() / "config.json"
    config.write_bytes(content)
    commands = [["config", "get"], ["config", "get", "maxJobs"], ["config", "set", "maxJobs", "9"]]
    for args in commands:
        proc = jg.cli(*args)
        assert proc.returncode != 0, args
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("jobgate: error:"), proc.stderr
        assert "config.json" in lines[0]
        assert proc.stdout == ""
        assert config.read_bytes() == content, args


def test_sweep_dry_run_on_an_unreadable_index_warns_and_judges_the_job_files(jg: Env) -> None:
    import signal

    job = jg.start("sleep", "300")
    job = jg.wait_for(job["id"], lambda j: bool(j.get("commandPid")))
    for pid in (job["pid"], job["commandPid"]):
        os.kill(pid, signal.SIGKILL)
    state_dir = jg.state_dir()
    index = state_dir / "active.json"
    index.write_bytes(b"{broken")
    before = sorted(p.name for p in state_dir.iterdir())

    proc = jg.cli("sweep", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "unreadable" in proc.stderr and "Traceback" not in proc.stderr
    assert [c["id"] for c in json.loads(proc.stdout)["changed"]] == [job["id"]]
    assert index.read_bytes() == b"{broken"  # a dry run moves nothing aside
    assert sorted(p.name for p in state_dir.iterdir()) == before


def test_only_the_newest_few_quarantined_index_copies_are_kept(jg: Env) -> None:
    from jobgate.state.transaction import KEEP_CORRUPT_COPIES

    _two_finished_jobs(jg)
    state_dir = jg.state_dir()
    for n in range(KEEP_CORRUPT_COPIES + 3):
        old = state_dir / f"active.json.corrupt-20260101T0000{n:02d}Z"
        old.write_bytes(b"old damage")
        os.utime(old, (1_700_000_000 + n, 1_700_000_000 + n))
    (state_dir / "active.json").write_bytes(b"fresh damage")
    assert jg.cli("run", "--", "true").returncode == 0
    copies = sorted(p.name for p in state_dir.glob("active.json.corrupt-*"))
    assert len(copies) == KEEP_CORRUPT_COPIES
    assert any((state_dir / c).read_bytes() == b"fresh damage" for c in copies)
    assert "active.json.corrupt-20260101T000000Z" not in copies  # the oldest went first
