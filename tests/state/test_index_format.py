"""The version 2 index on disk (active.json + finished.jsonl) against what killed
writers, hand edits and version 1 leave behind: readers answer right, writers repair."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Env, dead_identity, kill9, pid_alive, start_running
from jobgate.state import index, model
from jobgate.state.store import Store, write_json

T0 = time.time() - 3600  # seeded jobs are older than any the CLI starts


def _job(job_id: str, status: str = model.COMPLETED, at: float = 0.0, **extra: Any) -> model.Job:
    job = model.new_job(
        job_id=job_id, command=["true"], cwd="/", log_file=f"/nonexistent/{job_id}.log", now=T0 + at
    )
    job.update(status=status, **extra)
    if status in model.FINISHED:
        job.update(exitCode=0 if status == model.COMPLETED else 1, completedAt=job["createdAt"])
    return job


def _commit(store: Store, *jobs: model.Job, keep: bool = False) -> None:
    """One commit, as a worker recording an end makes it (``keep``: with retention)."""
    with store.transaction() as tx:
        for job in jobs:
            tx.put(job)
            if keep:
                tx.keep_at_most(spare=job["id"])


def _append(store: Store, data: bytes) -> None:
    """Append to the log by hand, as a writer killed before replacing active.json."""
    with open(store.finished_path, "ab") as fh:
        fh.write(data)


def _active(store: Store) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(Path(store.index_path).read_bytes())
    return doc


def _log_ids(store: Store) -> list[str]:
    return [json.loads(line)["id"] for line in Path(store.finished_path).read_bytes().splitlines()]


def _assert_cursor_matches_log(store: Store, count: int) -> None:
    st = os.stat(store.finished_path)
    expected = {"dev": st.st_dev, "ino": st.st_ino, "bytes": st.st_size, "count": count}
    cursor = _active(store)["finished"]
    assert {k: cursor.get(k) for k in expected} == expected
    assert Path(store.finished_path).read_bytes().endswith(b"\n")


def _listed(jg: Env) -> dict[str, str]:
    """``status --all --json``: each job's id and status (fails on any stderr)."""
    proc = jg.cli("status", "--all", "--json")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return {j["id"]: j["status"] for j in json.loads(proc.stdout)["jobs"]}


# -- 1. killed between the log append and the active.json replace --------------------------
def test_a_finished_line_logged_before_a_killed_commit_is_finished_for_readers_and_folded_in(
    jg: Env,
) -> None:
    store = jg.store()
    _commit(store, _job("run-a"))
    running = _job("run-b", model.RUNNING, at=1, workerProcess=dead_identity())
    _commit(store, running)
    ended = model.mark_exited(running, exit_code=0, signal=None)
    write_json(store.job_path("run-b"), ended)  # a commit writes job files first, then logs
    _append(store, index.lines_text([model.summary(ended)]))
    before = Path(store.index_path).read_bytes()
    assert [j["id"] for j in _active(store)["jobs"]] == ["run-b"]  # stale: still "running"

    snap = store.snapshot()
    assert snap.active == [] and store.read_active() == []
    assert [(j["id"], j["status"]) for j in snap.finished()] == [
        ("run-b", "completed"),
        ("run-a", "completed"),
    ]
    assert [j["id"] for j in snap.finished(1)] == ["run-b"]
    assert _listed(jg) == {"run-a": "completed", "run-b": "completed"}
    assert Path(store.index_path).read_bytes() == before  # readers wrote nothing

    _commit(store, _job("run-c", at=2))
    assert _active(store)["jobs"] == []
    assert _log_ids(store) == ["run-a", "run-b", "run-c"]
    _assert_cursor_matches_log(store, count=3)


# -- 2. a torn last line -------------------------------------------------------------------
@pytest.mark.parametrize("after_a_complete_line", [True, False])
def test_a_torn_last_line_is_ignored_by_readers_and_cut_by_the_next_writer(
    jg: Env, after_a_complete_line: bool
) -> None:
    store = jg.store()
    _commit(store, _job("run-a"))
    committed = Path(store.finished_path).read_bytes()
    whole = index.lines_text([_job("run-b", at=1)]) if after_a_complete_line else b""
    _append(store, whole + b'{"id":"run-torn","status":"compl')
    expected = ["run-a", "run-b"] if after_a_complete_line else ["run-a"]

    assert [j["id"] for j in store.snapshot().finished()][::-1] == expected
    assert set(_listed(jg)) == set(expected)

    _commit(store, _job("run-c", at=2))
    data = Path(store.finished_path).read_bytes()
    assert data.startswith(committed + whole) and b"run-torn" not in data
    assert _log_ids(store) == [*expected, "run-c"]
    _assert_cursor_matches_log(store, count=len(expected) + 1)
    assert _listed(jg) == dict.fromkeys([*expected, "run-c"], "completed")


# -- 3. a cursor that does not describe the log --------------------------------------------
@pytest.mark.parametrize("how", ["log replaced by a copy", "cursor past the end"])
def test_a_cursor_naming_another_file_makes_readers_rescan_and_the_writer_rewrite(
    jg: Env, how: str
) -> None:
    store = jg.store()
    _commit(store, _job("run-a"))
    _commit(store, _job("run-b", at=1))
    if how == "log replaced by a copy":
        copy = store.finished_path + ".copy"
        shutil.copyfile(store.finished_path, copy)
        os.replace(copy, store.finished_path)  # same bytes, another inode
    else:
        doc = _active(store)
        doc["finished"]["bytes"] += 1000
        Path(store.index_path).write_text(json.dumps(doc))

    inode = os.stat(store.finished_path).st_ino
    snap = store.snapshot()
    assert snap.rescanned
    assert [j["id"] for j in snap.finished()] == ["run-b", "run-a"]
    assert _listed(jg) == {"run-a": "completed", "run-b": "completed"}

    _commit(store, _job("run-c", at=2))
    assert os.stat(store.finished_path).st_ino != inode  # rewritten whole, not appended to
    assert _log_ids(store) == ["run-a", "run-b", "run-c"]
    _assert_cursor_matches_log(store, count=3)
    assert not store.snapshot().rescanned


# -- 4. killed after writing the job file, before the index --------------------------------
def test_an_end_that_reached_only_the_job_file_is_recorded_not_marked_lost(jg: Env) -> None:
    job = start_running(jg, "sleep", "30")
    job_id = job["id"]
    kill9(job["pid"], job["commandPid"])
    deadline = time.monotonic() + 10
    while pid_alive(job["pid"]) or pid_alive(job["commandPid"]):
        assert time.monotonic() < deadline, "the killed job's processes did not die"
        time.sleep(0.02)
    store = jg.store()
    # what the worker writes at the end: its job file under the (fresher) active summary
    (summary,) = [j for j in _active(store)["jobs"] if j["id"] == job_id]
    record = {**(store.read_job(job_id) or {}), **summary}
    assert record["status"] == "running"
    write_json(store.job_path(job_id), model.mark_exited(record, exit_code=0, signal=None))
    assert [j["status"] for j in _active(store)["jobs"]] == ["running"]

    (shown,) = [j for j in jg.cli_json("status")["jobs"] if j["id"] == job_id]
    assert (shown["status"], shown["phase"], shown["exitCode"]) == ("completed", "done", 0)
    assert _active(store)["jobs"] == []
    assert _log_ids(store) == [job_id]
    assert store.snapshot().lookup(job_id)["status"] == "completed"  # type: ignore[index]
    assert "lost" not in Path(store.log_path(job_id)).read_text()
    assert jg.cli("result", job_id).returncode == 0


def test_an_active_jobs_later_changes_go_to_the_index_alone_and_every_reader_sees_them(
    jg: Env,
) -> None:
    """Started, claimed, cancel requested: an active job's summary is its whole record,
    so such a commit replaces active.json and leaves the job file (written when the job
    was created, written again when it ends) alone; readers merge the two."""
    store = jg.store()
    store.ensure()
    job = _job("run-act-1", model.QUEUED, workerProcess=dead_identity())
    _commit(store, job)
    path = Path(store.job_path("run-act-1"))
    before = path.stat()
    started = model.touch(job, status=model.RUNNING, phase="running", commandPid=4242)
    _commit(store, started)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [j["status"] for j in _active(store)["jobs"]] == ["running"]
    with store.transaction() as tx:
        full = tx.get("run-act-1")
    assert full is not None and (full["status"], full["commandPid"]) == ("running", 4242)
    # its end is written to the file as well
    _commit(store, model.touch(started, status=model.COMPLETED, exitCode=0, output="done"))
    on_disk = json.loads(path.read_bytes())
    assert (on_disk["status"], on_disk["commandPid"], on_disk["output"]) == (
        "completed",
        4242,
        "done",
    )


# -- 5. a version 1 state dir ----------------------------------------------------------------
def _v1_layout(store: Store) -> bytes:
    """A version 1 state dir: state.json (newest first) with a running job whose
    processes are dead and two finished ones, and their job files; returns its bytes."""
    dead = _job(
        "run-v1-dead",
        model.RUNNING,
        at=2,
        workerProcess=dead_identity(),
        commandProcess=dead_identity(),
    )
    jobs = [dead, _job("run-v1-ok", at=1), _job("run-v1-bad", model.FAILED)]
    for job in jobs:
        write_json(store.job_path(job["id"]), job)
    data = json.dumps({"version": 1, "jobs": jobs}, indent=2).encode()
    Path(store.legacy_path).write_bytes(data)
    return data


V1_SHOWN = {"run-v1-dead": "failed", "run-v1-ok": "completed", "run-v1-bad": "failed"}


@pytest.fixture
def read_only_home(jg: Env, tmp_path: Path) -> Iterator[Path]:
    """A read-only bind mount of ``jg``'s state root, made its state root for the CLI."""
    jg.store()  # the state root exists, to be bound
    view = tmp_path / "read-only-home"
    view.mkdir()
    for args in (["--bind", str(jg.home), str(view)], ["-o", "remount,bind,ro", str(view)]):
        proc = subprocess.run(["mount", *args], capture_output=True, text=True)
        if proc.returncode != 0:
            subprocess.run(["umount", "-l", str(view)], capture_output=True)
            pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    jg.env["JOBGATE_HOME"] = str(view)
    try:
        yield view
    finally:
        jg.env["JOBGATE_HOME"] = str(jg.home)
        subprocess.run(["umount", "-l", str(view)], capture_output=True)


def test_a_read_only_reader_of_a_version_1_index_lists_every_job_dead_ones_lost(
    jg: Env, read_only_home: Path
) -> None:
    store = jg.store()
    original = _v1_layout(store)
    snap = store.snapshot()  # lock-free: as it is on disk
    assert [j["id"] for j in snap.active] == ["run-v1-dead"]
    assert [j["id"] for j in snap.finished()] == ["run-v1-ok", "run-v1-bad"]

    proc = jg.cli("status", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    jobs = {j["id"]: j for j in json.loads(proc.stdout)["jobs"]}
    assert {i: j["status"] for i, j in jobs.items()} == V1_SHOWN
    assert jobs["run-v1-dead"]["phase"] == "lost"
    assert "Read-only file system" in proc.stderr  # could not write it down: said so
    assert Path(store.legacy_path).read_bytes() == original
    assert sorted(os.listdir(store.state_dir)) == ["jobs", "state.json"]


def test_the_first_writer_migrates_a_version_1_index_keeping_a_copy_and_every_job(
    jg: Env,
) -> None:
    store = jg.store()
    original = _v1_layout(store)
    assert _listed(jg) == V1_SHOWN  # the dead job is written down: this is the first writer

    assert not os.path.exists(store.legacy_path)
    (kept,) = Path(store.state_dir).glob("state.json.v1-*")
    assert kept.read_bytes() == original
    assert _active(store)["jobs"] == []
    assert sorted(_log_ids(store)) == sorted(V1_SHOWN)
    _assert_cursor_matches_log(store, count=3)
    assert _listed(jg) == V1_SHOWN
    assert store.snapshot().lookup("run-v1-dead")["phase"] == "lost"  # type: ignore[index]


# -- 6. retention in batches -------------------------------------------------------------------
def _files_of(store: Store, job_id: str) -> list[bool]:
    return [os.path.exists(store.job_path(job_id)), os.path.exists(store.log_path(job_id))]


def _run_true(jg: Env, store: Store) -> list[str]:
    """One quick foreground job; the log's ids afterwards, oldest first."""
    proc = jg.cli("run", "--", "true")
    assert proc.returncode == 0, proc.stderr
    return _log_ids(store)


def test_retention_rewrites_the_log_only_past_a_tenth_over_max_jobs_keeping_the_newest(
    jg: Env,
) -> None:
    assert jg.cli("config", "set", "maxJobs", "10").returncode == 0
    store = jg.store()
    ids = _run_true(jg, store)
    inode = os.stat(store.finished_path).st_ino
    for n in range(2, 12):  # up to maxJobs + maxJobs // 10 = 11: appended, never rewritten
        ids = _run_true(jg, store)
        assert len(ids) == len(set(ids)) == n
        assert os.stat(store.finished_path).st_ino == inode
    assert all(all(_files_of(store, i)) for i in ids)

    kept = _run_true(jg, store)  # the 12th: pruned (rewritten) to the newest 10
    assert os.stat(store.finished_path).st_ino != inode
    assert len(kept) == len(set(kept)) == 10 and kept[:9] == ids[2:]
    for job_id in ids[:2]:
        assert _files_of(store, job_id) == [False, False], job_id
    assert all(all(_files_of(store, i)) for i in kept)
    _assert_cursor_matches_log(store, count=10)
    assert set(_listed(jg)) == set(kept)
    assert len(_run_true(jg, store)) == 11  # the next batch starts over
    assert len(_run_true(jg, store)) == 10


def test_retention_of_few_jobs_has_no_slack(jg: Env) -> None:
    assert jg.cli("config", "set", "maxJobs", "3").returncode == 0
    store = jg.store()
    ids = [_run_true(jg, store) for _ in range(3)][-1]
    assert len(ids) == 3
    for _ in range(2):
        kept = _run_true(jg, store)
        assert len(kept) == 3 and kept[:2] == ids[1:]
        assert _files_of(store, ids[0]) == [False, False]
        _assert_cursor_matches_log(store, count=3)
        ids = kept


# -- 7. job references through the job files ----------------------------------------------------
def test_job_refs_find_old_finished_jobs_by_prefix_and_by_exact_id_without_a_job_file(
    jg: Env,
) -> None:
    store = jg.store()
    _commit(store, _job("run-old-aaa1"), _job("run-old-aab2", at=1))
    _commit(store, *(_job(f"run-new-{i:02d}", at=10 + i) for i in range(12)))

    proc = jg.cli("result", "run-old-aaa", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["job"]["id"] == "run-old-aaa1"

    proc = jg.cli("result", "run-old-aa")
    assert proc.returncode == 2
    assert "ambiguous job reference 'run-old-aa'" in proc.stderr
    assert "run-old-aaa1" in proc.stderr and "run-old-aab2" in proc.stderr

    os.unlink(store.job_path("run-old-aab2"))
    proc = jg.cli("result", "run-old-aab2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["job"]["status"] == "completed"
    assert jg.cli_json("status", "run-old-aab2")["job"]["id"] == "run-old-aab2"


# -- 8. a launch killed before its commit ---------------------------------------------------------
def test_a_temp_job_file_of_an_uncommitted_launch_is_no_job(jg: Env) -> None:
    store = jg.store()
    _commit(store, _job("run-a"))
    ghost = _job("run-ghost", model.QUEUED, at=1, pid=os.getpid())
    tmp = Path(store.jobs_dir) / ".run-ghost.json.4242.deadbeef.tmp"
    tmp.write_bytes(json.dumps(ghost).encode())
    Path(store.log_path("run-ghost")).write_text("jobgate: job run-ghost created\n")

    assert _listed(jg) == {"run-a": "completed"}
    assert store.job_ids() == ["run-a"]
    proc = jg.cli("status", "run-ghost")
    assert proc.returncode == 2
    assert "no job matches 'run-ghost'" in proc.stderr
    assert tmp.exists()  # a young temp file is left alone


# -- 9. no active.json beside job files -----------------------------------------------------------
def test_a_missing_index_beside_job_files_is_warned_about_once_and_rebuilt(jg: Env) -> None:
    store = jg.store()
    _commit(store, _job("run-a"), _job("run-b", at=1))
    os.unlink(store.index_path)

    proc = jg.cli("status", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    assert {j["id"] for j in json.loads(proc.stdout)["jobs"]} == {"run-a", "run-b"}
    warned = proc.stderr.splitlines()
    assert len(warned) == 1 and "missing" in warned[0], proc.stderr
    assert "Traceback" not in proc.stderr

    assert _active(store)["jobs"] == []
    assert sorted(_log_ids(store)) == ["run-a", "run-b"]
    _assert_cursor_matches_log(store, count=2)
    assert _listed(jg) == {"run-a": "completed", "run-b": "completed"}  # no warning again
