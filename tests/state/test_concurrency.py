"""Many real writer processes at once lose nothing; writers killed with SIGKILL at
random moments never leave an unreadable file (issue 2, "What must hold" 4)."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import Env
from jobgate.state import model
from jobgate.state.store import Store

SRC = str(Path(__file__).resolve().parents[2] / "src")

WRITERS = 8
UPDATES = 50
SHARED = "run-shared"

#: one writer: waits for the go file, then does UPDATES read-modify-write transactions,
#: each adding one job of its own and bumping its own counter on the shared job; every
#: tenth update also sets a config key of its own under the lock (as `config set` does).
_WRITER = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from jobgate.state import model
from jobgate.state.store import Store

state_dir, me, updates, go = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
store = Store(state_dir)
while not os.path.exists(go):
    time.sleep(0.001)
for n in range(updates):
    with store.transaction() as tx:
        shared = tx.get("run-shared")
        counts = dict(shared["counts"])
        counts[str(me)] = counts.get(str(me), 0) + 1
        tx.put(model.touch(shared, counts=counts))
        job = model.new_job(
            job_id=f"run-w{me}-{n:03d}", command=["true"], cwd="/", log_file="/dev/null"
        )
        tx.put(model.touch(job, status="completed", writer=me, seq=n))
    if n % 10 == 0:
        with store.lock():
            config = store.read_config()
            config[f"agents.w{me}n{n}"] = ["x", "{prompt}"]
            store.write_config(config)
"""


#: a lock-free reader: until the stop file exists, parses the index, config.json and
#: the newest indexed job files; a half-written file would fail json.loads. Prints its
#: count of rounds.
_READER = """
import json, os, sys, time
state_dir, stop = sys.argv[1], sys.argv[2]
reads = 0
while not os.path.exists(stop):
    with open(os.path.join(state_dir, "active.json"), "rb") as fh:
        index = json.loads(fh.read())
    try:
        with open(os.path.join(state_dir, "finished.jsonl"), "rb") as fh:
            log = fh.read()
            ino = os.fstat(fh.fileno()).st_ino
    except FileNotFoundError:
        log, ino = b"", 0
    # every complete line parses (a line being appended may not be complete yet)
    done = [json.loads(line) for line in log[: log.rfind(b"\\n") + 1].splitlines()]
    for entry in done[-8:]:  # the newest, the ones being written
        # a finished job's file is written before its line (and removed only by a
        # pruning rewrite of the log, which gives the log a new inode)
        try:
            with open(os.path.join(state_dir, "jobs", entry["id"] + ".json"), "rb") as fh:
                assert json.loads(fh.read())["id"] == entry["id"]
        except FileNotFoundError:
            assert os.stat(os.path.join(state_dir, "finished.jsonl")).st_ino != ino
            break
    try:
        with open(os.path.join(state_dir, "config.json"), "rb") as fh:
            assert isinstance(json.loads(fh.read()), dict)
    except FileNotFoundError:
        pass
    reads += 1
    time.sleep(0.002)  # leave the CPUs to the writers
print(reads)
"""


def _shared_job() -> dict[str, Any]:
    job = model.new_job(job_id=SHARED, command=["true"], cwd="/", log_file="/dev/null")
    return model.touch(job, status=model.COMPLETED, counts={})


WAIT_NOTICE = "jobgate: waiting for the state lock held by "


def test_eight_processes_times_fifty_concurrent_updates_lose_nothing(jg: Env) -> None:
    store: Store = jg.store()
    with store.transaction() as tx:
        tx.put(_shared_job())
    go = jg.home / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, SRC, store.state_dir, str(i), str(UPDATES), str(go)],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(WRITERS)
    ]
    stop = jg.home / "stop"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", _READER, store.state_dir, str(stop)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    go.touch()
    # real `config set` and `status` commands race the writers too
    setters = []
    for key, value in (
        ("agents.cli1", '["a", "{prompt}"]'),
        ("stopReviewGate", "true"),
        ("reviewTimeout", "120"),
        ("maxStopBlocks", "5"),
    ):
        setters.append(jg.cli("config", "set", key, value))
        setters.append(jg.cli("status", "--all", "--json"))
    errors = [p.communicate(timeout=90)[1] for p in writers]
    stop.touch()
    read_results = [p.communicate(timeout=30) for p in readers]
    assert [p.returncode for p in writers] == [0] * WRITERS, errors
    # behind eight busy writers a command may wait over a second: it then says whom it
    # waits for (arrival order means it waits its turn); nothing else may be on stderr
    said = [
        "".join(s for s in p.stderr.splitlines(True) if not s.startswith(WAIT_NOTICE))
        for p in setters
    ]
    assert [(p.returncode, err) for p, err in zip(setters, said, strict=True)] == [(0, "")] * len(
        setters
    )
    assert [p.returncode for p in readers] == [0, 0], read_results
    assert all(int(out) > 0 for out, _err in read_results)

    index = {j["id"]: j for j in store.read_index()}
    expected = {f"run-w{w}-{n:03d}" for w in range(WRITERS) for n in range(UPDATES)}
    assert expected - set(index) == set(), "jobs lost from the index"
    for job_id in expected:
        job = store.read_job(job_id)
        assert job is not None and job["status"] == model.COMPLETED, job_id
    want_counts = {str(w): UPDATES for w in range(WRITERS)}
    assert index[SHARED]["counts"] == want_counts
    shared = store.read_job(SHARED)
    assert shared is not None and shared["counts"] == want_counts

    config = store.read_config()
    for w in range(WRITERS):
        for n in range(0, UPDATES, 10):
            assert config.get(f"agents.w{w}n{n}") == ["x", "{prompt}"], (w, n)
    assert config["agents.cli1"] == ["a", "{prompt}"]
    assert config["stopReviewGate"] is True
    assert config["reviewTimeout"] == 120
    assert config["maxStopBlocks"] == 5


#: a writer that hammers transactions until killed: adds a job (pruning keeps 5
#: finished, so job and log files are also deleted), bumps a counter on the shared job,
#: and rewrites config.json; prints "ready" once it has been through that once, so the
#: kill that follows lands amid its work however slow the machine is (a fixed delay
#: after start killed every writer before its first commit on a loaded machine). The
#: shared job is active, so pruning never drops it.
_HAMMER = """
import os, sys
sys.path.insert(0, sys.argv[1])
from jobgate.state import model
from jobgate.state.store import Store, log_line

store = Store(sys.argv[2])
tag = sys.argv[3]
n = 0
while True:
    n += 1
    job_id = f"run-k{tag}-{n}"
    with store.transaction() as tx:
        tx.max_finished = 5
        shared = tx.get("run-shared")
        tx.put(model.touch(shared, counter=shared["counter"] + 1, filler="x" * 4000))
        job = model.new_job(
            job_id=job_id, command=["true"], cwd="/", log_file=store.log_path(job_id)
        )
        tx.put(model.touch(job, status="completed", filler="y" * 4000))
        log_line(store.log_path(job_id), "written")
    with store.lock():
        config = store.read_config()
        config["maxJobs"] = n
        config["stopReviewGate"] = n % 2 == 0
        store.write_config(config)
    if n == 1:
        sys.stdout.write("ready\\n")
        sys.stdout.flush()
"""


def _check_readable_and_consistent(store: Store) -> int:
    """Every state file parses and the index agrees with the job files; the counter."""
    state = Path(store.state_dir)
    active = json.loads((state / "active.json").read_bytes())
    assert isinstance(active, dict) and isinstance(active["jobs"], list)
    log = (state / "finished.jsonl").read_bytes()
    assert log.endswith(b"\n")
    index = {"jobs": active["jobs"] + [json.loads(line) for line in log.splitlines()]}
    config = json.loads((state / "config.json").read_bytes())
    assert isinstance(config, dict) and isinstance(config["maxJobs"], int)
    for path in (state / "jobs").glob("*.json"):
        job = json.loads(path.read_bytes())
        assert job["id"] == path.stem
    ids = [j["id"] for j in index["jobs"]]
    assert len(ids) == len(set(ids)), "duplicate index entries"
    assert SHARED in ids
    for entry in index["jobs"]:
        if model.is_active(entry):
            # a new job's file is renamed into place after the commit: a writer killed
            # in between leaves an active record that is whole without it
            continue
        # a finished job's file is written before its line in the log
        job = json.loads((state / "jobs" / f"{entry['id']}.json").read_bytes())
        assert job["id"] == entry["id"]
    assert len(ids) <= 1 + 5  # the shared job and the 5 finished ones pruning keeps
    shared = next(j for j in index["jobs"] if j["id"] == SHARED)
    counter: int = shared["counter"]
    return counter


def _read_ready(proc: subprocess.Popen[bytes], timeout: float) -> None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "writer did not start"
    assert proc.stdout.readline() == b"ready\n"


def test_writers_killed_at_random_moments_never_leave_an_unreadable_file(jg: Env) -> None:
    store: Store = jg.store()
    with store.transaction() as tx:
        # active, so pruning never drops it
        tx.put(model.touch(_shared_job(), counter=0, status=model.RUNNING))
    with store.lock():
        store.write_config({"maxJobs": 1})
    rng = random.Random(20261124)
    iterations = 300
    budget = time.monotonic() + 50
    last_counter = 0
    done = 0
    for i in range(iterations):
        if time.monotonic() > budget:
            break
        proc = subprocess.Popen(
            [sys.executable, "-c", _HAMMER, SRC, store.state_dir, str(i)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            _read_ready(proc, 10)
            time.sleep(rng.uniform(0, 0.030))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.stdout is not None
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        counter = _check_readable_and_consistent(store)
        assert counter >= last_counter, "a committed update was lost"
        last_counter = counter
        done += 1
    assert done >= 150, f"only {done} kill iterations fit in the time budget"
    assert last_counter >= 50, "the writers barely committed anything before being killed"
    # temp files the killed writers left are removed by a later pruning commit once
    # they are old
    folders = (Path(store.state_dir), Path(store.jobs_dir))
    for path in [p for folder in folders for p in folder.glob(".*.tmp")]:
        os.utime(path, (0, 0))
    with store.transaction() as tx:
        tx.put(model.touch(tx.get(SHARED) or {}, counter=last_counter + 1))
        for n in range(2):
            done_job = model.new_job(
                job_id=f"run-last-{n}", command=["true"], cwd="/", log_file="/dev/null"
            )
            tx.put(model.touch(done_job, status=model.COMPLETED))
        tx.max_finished = 1
    assert [p for folder in folders for p in folder.glob(".*.tmp")] == []
    # after all that, the store is still fully usable through the CLI
    status = jg.cli_json("status", "--all")
    assert any(j["id"] == SHARED for j in status["jobs"])
    assert jg.cli("config", "set", "maxJobs", "9").returncode == 0
    _check_readable_and_consistent(store)
