"""``status --all``'s kept rows across a rewrite of the finished log (retention, a
removal): carried by the rewrite's note (``finished.rewrite``) where it fits, so only the
lines the rows have not seen are parsed; one pass, never a wrong row, where it does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.test_finished_rows import (
    _cache,
    _expected,
    _finished,
    _head,
    _rows_parsing,
    _seed,
    _shown,
)
from conftest import Env
from jobgate.state import log_rewrite, model
from jobgate.state.store import Store


def _note(store: Store) -> dict[str, Any]:
    note: dict[str, Any] = json.loads((Path(store.state_dir) / log_rewrite.NAME).read_bytes())
    return note


def test_jobs_finishing_in_a_rewrite_are_the_only_lines_parsed(
    jg: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = jg.store()
    _seed(store, [f"run-{n:03d}" for n in range(12)])
    assert _shown(jg) == _expected(store)
    with store.lock():
        store.write_config({"maxJobs": 6})
    with store.transaction() as tx:  # two jobs finish, one is logged again, eight pruned
        tx.put(_finished("run-new-1", 20_000))
        tx.put(_finished("run-new-2", 20_090, status=model.FAILED, errorMessage="boom"))
        again = tx.get("run-011")
        assert again is not None
        tx.put(model.touch(again, name="announced"))
        tx.keep_at_most()
    assert len(_note(store)["dropped"]) == 8
    found, parsed = _rows_parsing(store, monkeypatch)
    assert found is not None and found.count == 6
    assert parsed == 2 + 3  # the header, the note, the three lines this commit logged
    text = _shown(jg)
    assert text == _expected(store) and "announced" in text and "boom" in text


def test_a_log_that_grew_after_its_rewrite_is_carried_then_merged(
    jg: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = jg.store()
    _seed(store, [f"run-{n:03d}" for n in range(20)])
    assert _shown(jg) == _expected(store)
    with store.transaction() as tx:  # a removal rewrites the log
        tx.remove("run-004")
    _seed(store, ["run-later-1", "run-later-2"], start=5000)  # appended since
    found, parsed = _rows_parsing(store, monkeypatch)
    assert found is not None and found.count == 21
    assert parsed == 2 + 2  # the header, the note, the two appended lines
    text = _shown(jg)
    assert text == _expected(store) and "run-004" not in text and "run-later-2" in text
    assert _head(store)["bytes"] == os.stat(store.finished_path).st_size


def test_rows_a_few_commits_behind_a_rewrite_are_carried_by_its_marks(
    jg: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = jg.store()
    _seed(store, [f"run-{n:03d}" for n in range(10)])
    assert _shown(jg) == _expected(store)
    rendered = _head(store)
    _seed(store, ["run-unseen-1", "run-unseen-2"], start=3000)  # the rows never saw these
    with store.transaction() as tx:
        again = tx.get("run-005")
        assert again is not None
        tx.put(model.touch(again, name="logged again"))
    with store.transaction() as tx:
        tx.remove("run-002")
    assert _note(store)["before"]["bytes"] > rendered["bytes"]
    found, parsed = _rows_parsing(store, monkeypatch)
    assert found is not None and found.count == 11
    assert parsed == 2 + 3  # the header, the note, the three lines logged since
    text = _shown(jg)
    assert text == _expected(store) and "run-unseen-2" in text and "logged again" in text


@pytest.mark.parametrize("behind", ["further than the marks", "a wrong CRC at a mark"])
def test_rows_the_note_cannot_carry_cost_one_pass_never_a_wrong_row(
    jg: Env, monkeypatch: pytest.MonkeyPatch, behind: str
) -> None:
    store = jg.store()
    _seed(store, [f"run-{n:03d}" for n in range(10)])
    assert _shown(jg) == _expected(store)
    if behind == "further than the marks":
        monkeypatch.setattr(log_rewrite, "MARKS", 2)
    else:  # rows of another log that had the same inode: the CRC at the mark differs
        head = _head(store)
        data = _cache(store).read_bytes()
        data = data.replace(b'"crc":%d' % head["crc"], b'"crc":%d' % (head["crc"] ^ 1), 1)
        row = next(x for x in data.split(b"\n") if b"\trun-001\t" in x)
        created, job_id, _line_crc, text = row.split(b"\t", 3)
        other = b"\t".join((created, job_id, b"7", text.replace(b"failed", b"cancelled")))
        _cache(store).write_bytes(data.replace(row, other))
    _seed(store, ["run-unseen-1", "run-unseen-2", "run-unseen-3"], start=3000)
    with store.transaction() as tx:
        tx.remove("run-002")
    monkeypatch.undo()
    assert log_rewrite.read_note(store.state_dir) is not None
    text = _shown(jg)
    assert text == _expected(store) and "run-002" not in text


@pytest.mark.parametrize(
    "damage", ["torn", "garbage", "kept offset off by one", "a dropped id left out", "no ids"]
)
def test_a_damaged_note_costs_the_pass_never_a_wrong_row(jg: Env, damage: str) -> None:
    store = jg.store()
    _seed(store, [f"run-{n:03d}" for n in range(10)])
    assert _shown(jg) == _expected(store)
    with store.transaction() as tx:
        tx.put(_finished("run-new", 9000))
        tx.remove("run-003")
        tx.remove("run-007")
    path = Path(store.state_dir) / log_rewrite.NAME
    data = path.read_bytes()
    note = json.loads(data)
    if damage == "kept offset off by one":
        note["kept"] -= 1
    elif damage == "a dropped id left out":
        note["dropped"] = ["run-003"]
    elif damage == "no ids":
        note["dropped"] = [1, 2]
    damaged = {"torn": data[: len(data) // 2], "garbage": b"\x00" * 40}.get(damage)
    path.write_bytes(damaged if damaged is not None else json.dumps(note).encode())
    text = _shown(jg)
    assert text == _expected(store)
    assert "run-003" not in text and "run-007" not in text and "run-new" in text


#: a writer that removes a job (a log rewrite) and is SIGKILLed right after it wrote the
#: rewrite's note, before its commit (active.json) is in place
KILLED_AFTER_THE_NOTE = """\
import os, signal, sys
from jobgate.state import log_rewrite
from jobgate.state.store import Store

write = log_rewrite._write_note
def write_then_die(path, note):
    write(path, note)
    os.kill(os.getpid(), signal.SIGKILL)
log_rewrite._write_note = write_then_die
with Store(sys.argv[1], sys.argv[2]).transaction() as tx:
    tx.remove(sys.argv[3])
"""


def test_a_writer_killed_between_its_note_and_its_commit_leaves_rows_that_never_lie(
    jg: Env,
) -> None:
    store = jg.store()
    _seed(store, [f"run-{n:03d}" for n in range(12)])
    assert _shown(jg) == _expected(store)
    argv = [sys.executable, "-c", KILLED_AFTER_THE_NOTE, store.state_dir, str(jg.workspace)]
    proc = subprocess.run([*argv, "run-004"], env=jg.env, capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert (Path(store.state_dir) / log_rewrite.NAME).exists()  # the note, and no commit
    assert store.snapshot().rescanned  # the cursor names the log the rewrite replaced
    text = _shown(jg)
    assert text == _expected(store)
    assert text.count("  run-") == 11 and "run-004" not in text  # as the new log has it
    _seed(store, ["run-next"], start=5000)  # the next writer rewrites what is there
    assert not (Path(store.state_dir) / log_rewrite.NAME).exists()
    text = _shown(jg)
    assert text == _expected(store) and "run-next" in text and "run-004" not in text
