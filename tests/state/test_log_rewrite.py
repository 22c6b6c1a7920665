"""A rewrite of the finished log (retention, a removal) leaves a note that says what it
changed (``finished.rewrite``): the cursors of the log before and after, where the kept
lines end and the ids it dropped; a rewrite from an index it could not trust leaves none."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from conftest import Env
from jobgate.state import log_rewrite
from jobgate.state.store import Store
from state.test_index_format import _active, _commit, _job


def _note(store: Store) -> Path:
    return Path(store.state_dir) / log_rewrite.NAME


def test_a_removal_notes_both_cursors_the_kept_lines_and_the_dropped_id(jg: Env) -> None:
    store = jg.store()
    for n in range(6):
        _commit(store, _job(f"run-{n}", at=n))
    before: dict[str, Any] = _active(store)["finished"]
    with store.transaction() as tx:
        tx.remove("run-2")
        tx.put(_job("run-new", at=10))
    note = json.loads(_note(store).read_bytes())
    after = _active(store)["finished"]
    assert note["before"] == {k: before[k] for k in ("dev", "ino", "bytes", "crc")}
    assert note["after"] == after and note["after"]["ino"] != before["ino"]
    assert note["dropped"] == ["run-2"]
    log = Path(store.finished_path).read_bytes()
    kept, added = log[: note["kept"]], log[note["kept"] :]
    assert [json.loads(x)["id"] for x in kept.splitlines()] == [
        "run-0",
        "run-1",
        "run-3",
        "run-4",
        "run-5",
    ]
    assert [json.loads(x)["id"] for x in added.splitlines()] == ["run-new"]
    assert note["keptCrc"] == zlib.crc32(kept) and zlib.crc32(log) == after["crc"]
    read = log_rewrite.read_note(store.state_dir)
    assert read is not None and read.before == tuple(note["before"].values())
    assert read.after.as_dict() == after and read.dropped == ["run-2"]


def test_retention_notes_every_pruned_id(jg: Env) -> None:
    store = jg.store()
    for n in range(12):
        _commit(store, _job(f"run-{n:02d}", at=n))
    with store.lock():
        store.write_config({"maxJobs": 4})
    _commit(store, _job("run-last", at=20), keep=True)
    note = json.loads(_note(store).read_bytes())
    assert note["dropped"] == [f"run-{n:02d}" for n in range(9)]
    assert note["after"]["count"] == 4 == len(store.read_index())


def test_a_rewrite_of_a_rebuilt_index_leaves_no_note(jg: Env) -> None:
    store = jg.store()
    for n in range(3):
        _commit(store, _job(f"run-{n}", at=n))
    with store.transaction() as tx:
        tx.remove("run-0")
    assert _note(store).exists()
    Path(store.index_path).write_bytes(b"{broken")  # the next writer rebuilds from job files
    with store.transaction() as tx:
        tx.remove("run-1")
    assert not _note(store).exists()
    assert [j["id"] for j in store.read_index()] == ["run-2"]


def test_a_torn_or_foreign_note_reads_as_none(jg: Env) -> None:
    store = jg.store()
    store.ensure()
    for data in (b"", b'{"version":1,"before":', b'{"version":2}', b"[]", b"\xff\xfe"):
        _note(store).write_bytes(data)
        assert log_rewrite.read_note(store.state_dir) is None


def test_marks_give_each_old_line_start_its_crc_and_where_the_lines_past_it_went(
    jg: Env,
) -> None:
    store = jg.store()
    for n in range(8):
        _commit(store, _job(f"run-{n}", at=n))
    _commit(store, _job("run-1", at=1, name="logged again"))  # its last line moves on
    old = Path(store.finished_path).read_bytes()
    with store.transaction() as tx:
        tx.remove("run-6")
        tx.put(_job("run-new", at=10))
    note = json.loads(_note(store).read_bytes())
    new = Path(store.finished_path).read_bytes()
    starts = [0]
    for line in old.splitlines(keepends=True)[:-1]:
        starts.append(starts[-1] + len(line))
    assert [m[0] for m in note["marks"]] == starts
    for at, crc, start in note["marks"]:
        assert crc == zlib.crc32(old[:at])
        # each id's last line in the old log past ``at``, as kept, then this commit's
        past = {json.loads(x)["id"] for x in old[at:].splitlines()} - {"run-6"}
        ids = [json.loads(x)["id"] for x in new[start:].splitlines()]
        assert ids[:-1] == [i for i in _ids(new[: note["kept"]]) if i in past]
        assert ids[-1] == "run-new"


def _ids(data: bytes) -> list[str]:
    return [json.loads(x)["id"] for x in data.splitlines()]


def test_marks_cover_only_the_last_lines(jg: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    store = jg.store()
    for n in range(6):
        _commit(store, _job(f"run-{n}", at=n))
    old = Path(store.finished_path).read_bytes().splitlines(keepends=True)
    monkeypatch.setattr(log_rewrite, "MARKS", 3)
    with store.transaction() as tx:
        tx.remove("run-0")
    note = json.loads(_note(store).read_bytes())
    new = Path(store.finished_path).read_bytes()
    at = [sum(map(len, old[:n])) for n in (3, 4, 5)]  # the last three line starts
    assert [m[0] for m in note["marks"]] == at
    assert [_ids(new[m[2] :]) for m in note["marks"]] == [
        ["run-3", "run-4", "run-5"],
        ["run-4", "run-5"],
        ["run-5"],
    ]
