"""``status --all --json`` passes the finished log's lines through unparsed when their
CRC proves them jobgate's own, and parses them when it does not: either way the output
is one valid JSON document with every job once, active first (newest first), then the
finished ones in the order they finished."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from conftest import Env, start_running
from jobgate.state import model
from jobgate.state.store import Store

T0 = time.time() - 3600


def _finished(job_id: str, at: float, **extra: Any) -> model.Job:
    job = model.new_job(
        job_id=job_id, command=["true"], cwd="/", log_file=f"/nonexistent/{job_id}.log", now=T0 + at
    )
    job.update(status=model.COMPLETED, exitCode=0, completedAt=job["createdAt"], **extra)
    return job


def _seed(store: Store, ids: list[str]) -> None:
    for n, job_id in enumerate(ids):
        with store.transaction() as tx:
            tx.put(_finished(job_id, n))


def _all(jg: Env) -> tuple[list[dict[str, Any]], str]:
    proc = jg.cli("status", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    jobs: list[dict[str, Any]] = json.loads(proc.stdout)["jobs"]
    return jobs, proc.stdout


def test_all_jobs_come_out_once_active_first_then_finished_in_the_order_they_finished(
    jg: Env,
) -> None:
    store = jg.store()
    _seed(store, ["run-f1", "run-f2", "run-f3"])
    live = start_running(jg, "sleep", "300")
    jobs, text = _all(jg)
    assert [j["id"] for j in jobs] == [live["id"], "run-f1", "run-f2", "run-f3"]
    assert jobs[1]["status"] == "completed" and jobs[0]["status"] == "running"
    # one job per line, each line a whole JSON object
    job_lines = [line.strip().rstrip(",") for line in text.splitlines()[4:-2]]
    assert [json.loads(line)["id"] for line in job_lines] == [j["id"] for j in jobs]


def test_a_job_logged_twice_comes_out_once_with_its_last_record(jg: Env) -> None:
    store = jg.store()
    _seed(store, ["run-f1", "run-f2"])
    with store.transaction() as tx:  # as the prompt hook does when it announces a job
        job = tx.get("run-f1")
        assert job is not None
        tx.put(model.touch(job, announcedAt=model.now_iso()))
    assert len(Path(store.finished_path).read_bytes().splitlines()) == 3
    jobs, _text = _all(jg)
    assert [j["id"] for j in jobs] == ["run-f2", "run-f1"]
    assert jobs[1]["announcedAt"] is not None
    # the count in the cursor stayed that of distinct jobs
    assert json.loads(Path(store.index_path).read_bytes())["finished"]["count"] == 2


def test_a_hand_edited_log_fails_the_crc_and_is_parsed_into_valid_output(jg: Env) -> None:
    store = jg.store()
    _seed(store, ["run-f1", "run-f2"])
    log = Path(store.finished_path)
    # same length, other bytes: a line no longer what jobgate wrote (and not JSON)
    data = log.read_bytes()
    at = data.index(b'"run-f1"')
    log.write_bytes(data[:at] + b"#" + data[at + 1 :])
    proc = jg.cli("status", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    jobs = json.loads(proc.stdout)["jobs"]  # still one valid document
    assert [j["id"] for j in jobs] == ["run-f2"]
    assert "unreadable line" in proc.stderr


def test_an_old_job_is_found_by_exact_id_through_its_bytes_when_its_file_is_gone(
    jg: Env,
) -> None:
    store = jg.store()
    # ids where one is a prefix of another: the exact one must win
    _seed(store, ["run-x1", "run-x1a", "run-x2"])
    Path(store.job_path("run-x1")).unlink()
    shown = jg.cli_json("status", "run-x1")["job"]
    assert shown["id"] == "run-x1" and shown["status"] == "completed"
    assert jg.cli_json("status", "run-x1a")["job"]["id"] == "run-x1a"
