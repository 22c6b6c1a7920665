"""Job ids: never the same for two jobs, in one process or across launchers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SRC
from jobgate.state import model
from jobgate.state.store import Store


def _drawn(monkeypatch: pytest.MonkeyPatch, *ids: str) -> None:
    """Make ``model.new_id`` draw ``ids`` in turn, as if the random tail repeated."""
    draws: Iterator[str] = iter(ids)
    monkeypatch.setattr(model, "new_id", lambda kind, t=None: next(draws))


def test_ids_claimed_in_one_millisecond_never_repeat(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 24 random bits: among 20,000 ids of one millisecond some tail repeats in all but
    # one run in 100,000; the claim draws again
    drawn = model.new_id
    monkeypatch.setattr(model, "new_id", lambda kind, t=None: drawn(kind, 1_700_000_000.0))
    ids = [store.new_job_id("task") for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("task-") and model.is_safe_id(i) for i in ids)


def test_an_id_drawn_again_is_not_given_to_a_second_job(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _drawn(monkeypatch, "run-a-1", "run-a-1", "run-a-2")
    first = store.new_job_id("run")
    second = store.new_job_id("run")
    assert (first, second) == ("run-a-1", "run-a-2")
    assert os.path.getsize(store.log_path(first)) == 0  # claimed: an empty log


def test_an_id_whose_job_file_is_there_without_its_log_is_not_reused(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(store.job_path("run-a-1")).write_text("{}")
    _drawn(monkeypatch, "run-a-1", "run-a-2")
    assert store.new_job_id("run") == "run-a-2"
    assert not os.path.exists(store.log_path("run-a-1"))


CLAIMER = """
import random, sys
from jobgate.state import model
from jobgate.state.store import Store
# four launchers drawing from four ids: without the claim two would share one
model.new_id = lambda kind, t=None: f"run-x-{random.randrange(4)}"
store = Store(sys.argv[1], sys.argv[2])
sys.stdin.read()  # all start together
print(store.new_job_id("run"))
"""


def test_launchers_drawing_the_same_ids_at_once_each_get_their_own(store: Store) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    for _round in range(5):
        for name in os.listdir(store.jobs_dir):
            os.unlink(os.path.join(store.jobs_dir, name))
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", CLAIMER, store.state_dir, store.workspace_root],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(4)
        ]
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
        assert [p.wait(timeout=30) for p in procs] == [0] * 4
        got = [p.stdout.read().strip() for p in procs if p.stdout is not None]
        assert sorted(got) == [f"run-x-{i}" for i in range(4)]
