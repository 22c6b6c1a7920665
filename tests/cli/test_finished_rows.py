"""``status --all`` shows finished jobs from rows kept rendered beside the index
(``finished.rows``): whatever state the cache is in (missing, current, behind a log that
grew, of a rewritten log, torn, of another version), the text is the one rendering every
parsed job gives, and a log that grew costs only its new lines."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Env, dead_identity, kill9, start_running
from jobgate.cli import finished_rows, render
from jobgate.state import index, jsonload, log_rewrite, model
from jobgate.state.store import Store, write_json
from state.test_index_format import read_only_home  # noqa: F401  (a fixture)

T0 = time.time() - 86_400


def _finished(job_id: str, at: float, status: str = model.COMPLETED, **extra: Any) -> model.Job:
    job = model.new_job(
        job_id=job_id,
        command=["pytest", "-q", f"tests/{job_id}.py"],
        cwd="/",
        log_file=f"/nonexistent/{job_id}.log",
        now=T0 + at,
    )
    code = 0 if status == model.COMPLETED else 1
    job.update(status=status, startedAt=job["createdAt"], exitCode=code)
    job.update({"completedAt": model.now_iso(T0 + at + 61 + at % 7000), **extra})
    return job


#: rows of every kind: errors under failed ones, lost, timed out, names to escape and cut,
#: wide characters, no name at all
KINDS: list[dict[str, Any]] = [
    {},
    {"status": model.FAILED, "errorMessage": "command exited with code 1"},
    {"status": model.CANCELLED},
    {"status": model.FAILED, "phase": model.PHASE_LOST, "errorMessage": "worker gone\n\x1b[2J"},
    {"status": model.FAILED, "phase": "timeout", "errorMessage": "timed out after 5s"},
    {"name": "tab\there \x1e rs \u202e and a very long name " + "x" * 80},
    {"name": "評価 レビュー 変更"},
    {"name": None},
]


def _seed(store: Store, ids: list[str], start: float = 0.0) -> None:
    for n, job_id in enumerate(ids):
        kind = dict(KINDS[n % len(KINDS)])
        with store.transaction() as tx:
            tx.put(_finished(job_id, start + n * 90, **kind))


def _expected(store: Store) -> str:
    """``status --all`` as rendering every parsed job gives it (the cache unused)."""
    jobs = store.read_index()
    return render.status_text(jobs, show_all=True, workspace_root=store.workspace_root)


def _shown(jg: Env) -> str:
    proc = jg.cli("status", "--all")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


def _cache(store: Store) -> Path:
    return Path(store.state_dir) / finished_rows.NAME


def _head(store: Store) -> dict[str, Any]:
    head: dict[str, Any] = json.loads(_cache(store).read_bytes().split(b"\n", 1)[0])
    return head


def test_status_all_shows_what_rendering_every_job_shows_and_keeps_the_rows(jg: Env) -> None:
    store = jg.store()
    _seed(store, [f"run-{n:03d}" for n in range(24)])
    expected = _expected(store)
    assert not _cache(store).exists()
    assert _shown(jg) == expected
    assert _head(store)["rows"] == 24
    before = os.stat(_cache(store))
    assert _shown(jg) == expected  # from the cache, as it is
    after = os.stat(_cache(store))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert "tab\\there \\x1e rs \\u202e" in expected and "評価" in expected  # escaped, kept
    assert "      worker gone\\n\\x1b[2J" in expected


def test_jobs_finished_since_are_parsed_alone_and_put_in_their_place(
    jg: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = jg.store()
    _seed(store, [f"run-{n:03d}" for n in range(30)], start=1000)
    assert _shown(jg) == _expected(store)
    # one created before every cached job, one between them, one newest, and one that
    # was logged again (as the prompt hook does when it announces it)
    _seed(store, ["run-early"], start=0)
    _seed(store, ["run-middle"], start=1000 + 15 * 90 + 1)
    _seed(store, ["task-newest-with-a-longer-id"], start=10_000)
    with store.transaction() as tx:
        again = tx.get("run-007")
        assert again is not None
        tx.put(model.touch(again, announcedAt=model.now_iso()))

    found, parsed = _rows_parsing(store, monkeypatch)
    assert found is not None and found.count == 33
    assert parsed == 1 + 4  # the cache's header, and the four new lines
    assert _head(store)["rows"] == 33
    text = _shown(jg)
    assert text == _expected(store)
    assert text.count("run-007 ") == 1
    ids = [line.split()[0] for line in text.splitlines() if line.startswith("  ")]
    assert ids[0] == "task-newest-with-a-longer-id" and ids[-1] == "run-early"
    assert ids.index("run-middle") == ids.index("run-015") - 1


@pytest.mark.parametrize("cached", [True, False])
def test_a_job_logged_twice_shows_once_with_its_last_line(jg: Env, cached: bool) -> None:
    store = jg.store()
    _seed(store, ["run-a", "run-b", "run-c"])
    if cached:
        assert _shown(jg) == _expected(store)
    with store.transaction() as tx:  # logged again, with a change its row shows
        job = tx.get("run-b")
        assert job is not None
        tx.put(model.touch(job, name="renamed after the end"))
    assert len(Path(store.finished_path).read_bytes().splitlines()) == 4
    text = _shown(jg)
    assert text == _expected(store)
    assert text.count("run-b ") == 1 and "renamed after the end" in text
    _cache(store).unlink()  # rendered from the log with both lines in it
    assert _shown(jg) == text


@pytest.mark.parametrize("note", [True, False], ids=["by its note", "in one pass"])
def test_a_rewritten_log_reuses_the_rows_of_the_lines_it_kept(
    jg: Env, monkeypatch: pytest.MonkeyPatch, note: bool
) -> None:
    store = jg.store()
    _seed(store, ["run-oldest-with-the-longest-id", *(f"run-{n:03d}" for n in range(11))])
    assert _shown(jg) == _expected(store)
    with store.lock():
        store.write_config({"maxJobs": 5})
    with store.transaction() as tx:  # retention: the log is rewritten, another file
        tx.keep_at_most()
    assert len(store.read_index()) == 5
    if not note:
        (Path(store.state_dir) / log_rewrite.NAME).unlink()
    found, parsed = _rows_parsing(store, monkeypatch)
    assert found is not None and found.count == 5 and found.width == len("run-000")
    # the cache's header (and the rewrite's note): every kept line's row was reused
    assert parsed == (2 if note else 1)
    assert _shown(jg) == _expected(store)  # the id column narrowed with the longest gone
    assert _head(store)["rows"] == 5
    assert _head(store)["ino"] == os.stat(store.finished_path).st_ino


def _rows_parsing(store: Store, monkeypatch: pytest.MonkeyPatch) -> tuple[render.Rows | None, int]:
    """``finished_rows.rows`` of a fresh snapshot, and how many documents it parsed."""
    snap = store.snapshot()
    parsed = _count_parses(monkeypatch)
    found = finished_rows.rows(snap)
    monkeypatch.undo()
    return found, len(parsed)


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every document ``jsonload.loads`` parses from now on (until ``undo``)."""
    parsed: list[bytes] = []
    loads = jsonload.loads

    def counting(data: Any) -> Any:
        parsed.append(bytes(data))
        return loads(data)

    monkeypatch.setattr(jsonload, "loads", counting)
    return parsed


@pytest.mark.parametrize(
    "damage",
    ["torn", "garbage", "header only", "a row too many", "another version", "empty"],
)
def test_a_damaged_cache_costs_a_render_never_a_wrong_row(jg: Env, damage: str) -> None:
    store = jg.store()
    _seed(store, [f"run-{n:03d}" for n in range(10)])
    expected = _expected(store)
    assert _shown(jg) == expected
    cache = _cache(store)
    data = cache.read_bytes()
    head, _, body = data.partition(b"\n")
    bogus = b"2000-01-01T00:00:00Z\trun-bogus\t  run-bogus  completed  1s\n"
    damaged = {
        "torn": data[: len(data) // 2],
        "garbage": b"\x00" * len(data),
        "header only": head + b"\n",
        "a row too many": head + b"\n" + body + bogus,
        "another version": head.replace(b'"render":"', b'"render":"0.0.0-old:') + b"\n" + bogus,
        "empty": b"",
    }[damage]
    cache.write_bytes(damaged)
    assert _shown(jg) == expected
    assert cache.read_bytes() == data  # repaired


def test_a_read_only_state_dir_shows_the_rows_and_writes_nothing(
    jg: Env,
    read_only_home: Path,  # noqa: F811
) -> None:
    store = jg.store()
    _seed(store, [f"run-{n:03d}" for n in range(9)])
    expected = _expected(store)
    assert _shown(jg) == expected
    assert not _cache(store).exists()


def test_a_row_whose_elapsed_time_runs_on_is_never_cached(jg: Env) -> None:
    store = jg.store()
    _seed(store, ["run-a", "run-b"])
    with store.transaction() as tx:  # finished, but with no end time to count to
        tx.put(_finished("run-c", 500, completedAt=None))
    assert finished_rows.rows(store.snapshot()) is None
    text = _shown(jg)
    assert text == _expected(store)  # the elapsed time is days: the same at both reads
    assert not _cache(store).exists()


def test_a_finished_line_a_killed_writer_left_past_the_cursor_is_shown(jg: Env) -> None:
    store = jg.store()
    _seed(store, ["run-a", "run-b"])
    assert _shown(jg) == _expected(store)
    head_before = _head(store)
    ended = _finished("run-d", 400)
    with store.transaction() as tx:
        tx.put({**ended, "status": model.RUNNING, "workerProcess": dead_identity()})
    write_json(store.job_path("run-d"), ended)
    with open(store.finished_path, "ab") as fh:  # the writer killed before its commit
        fh.write(index.lines_text([model.summary(ended)]))
    assert store.snapshot().recovered  # past the cursor
    text = _shown(jg)
    assert text == _expected(store)
    assert text.count("run-d ") == 1 and "run-d  completed" in text
    assert _head(store) == head_before  # the cache holds commits only


def test_no_jobs_reads_as_before(jg: Env) -> None:
    store = jg.store()
    text = _shown(jg)
    assert text == _expected(store) and "no jobs yet" in text


def test_a_job_killed_with_sigkill_shows_lost_once_beside_the_kept_rows(jg: Env) -> None:
    store = jg.store()
    _seed(store, ["run-a", "run-b"])
    job = start_running(jg, "sleep", "300")
    assert _shown(jg).count("running (1):") == 1  # the kept rows are current now
    kill9(int(job["workerProcess"]["pid"]), int(job["commandPid"]))
    text = _shown(jg)  # found dead by this call, written down, its row put in place
    assert text == _expected(store)
    assert text.count(job["id"]) == 1 and "running: none" in text
    assert f"{job['id']}  failed (lost)" in text


def test_a_job_logged_again_with_another_created_time_still_shows_once(jg: Env) -> None:
    # rows are replaced by their sort key (createdAt, id); a line that moved the key
    # leaves the old row in place, and the count of rows against the cursor's count of
    # jobs sends the call to the one pass
    store = jg.store()
    _seed(store, [f"run-{n:03d}" for n in range(8)])
    assert _shown(jg) == _expected(store)
    with store.transaction() as tx:
        job = tx.get("run-003")
        assert job is not None
        tx.put(model.touch(job, createdAt=model.now_iso(T0 + 50_000), name="moved"))
    text = _shown(jg)
    assert text == _expected(store)
    assert text.count("run-003 ") == 1 and "moved" in text
    assert _head(store)["rows"] == 8
