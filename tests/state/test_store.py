"""The store against real files: atomic writes, transactions, pruning, ids, modes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import blocked_on
from jobgate.state import model
from jobgate.state.errors import JobgateError, LockTimeout
from jobgate.state.locking import QUEUE_SUFFIX as QUEUE
from jobgate.state.store import Store, atomic_write, read_json

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run the test with umask 000, so only jobgate's own modes protect its files."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _job(job_id: str, status: str = model.COMPLETED, created: float = 1e9) -> dict[str, Any]:
    job = model.new_job(
        job_id=job_id, command=["true"], cwd="/", log_file=f"/nonexistent/{job_id}.log", now=created
    )
    job["status"] = status
    return job


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _temp_files(folder: str | Path) -> list[str]:
    return [n for n in os.listdir(folder) if n.endswith(".tmp")]


# -- atomic_write -------------------------------------------------------------------------
def test_atomic_write_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_bytes(b"old content\n")
    for i in range(20):
        atomic_write(str(target), f"version {i}\n".encode())
    assert target.read_bytes() == b"version 19\n"
    assert _temp_files(tmp_path) == []


def test_atomic_write_swaps_in_a_new_file_so_an_open_reader_keeps_the_old_one(
    tmp_path: Path,
) -> None:
    target = tmp_path / "f.json"
    old = b"x" * 200_000
    target.write_bytes(old)
    inode_before = os.stat(target).st_ino
    with open(target, "rb") as reader:
        atomic_write(str(target), b"new\n")
        # an in-place rewrite would truncate what this reader sees
        assert reader.read() == old
    assert os.stat(target).st_ino != inode_before
    assert target.read_bytes() == b"new\n"


def test_atomic_write_that_cannot_replace_keeps_the_target_and_removes_its_temp_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "a-directory"
    target.mkdir()
    (target / "inside").write_text("keep")
    with pytest.raises(OSError):
        atomic_write(str(target), b"data")
    assert (target / "inside").read_text() == "keep"
    assert _temp_files(tmp_path) == []


def test_atomic_write_makes_a_private_file_even_over_a_world_readable_one(
    tmp_path: Path, open_umask: None
) -> None:
    target = tmp_path / "f.json"
    target.write_bytes(b"{}")
    os.chmod(target, 0o644)
    atomic_write(str(target), b"{}")
    assert _mode(target) == 0o600


# -- transactions ---------------------------------------------------------------------------
def test_transaction_commits_job_file_and_index_on_clean_exit(store: Store) -> None:
    with store.transaction() as tx:
        tx.put(_job("run-a"))
    assert [j["id"] for j in store.read_index()] == ["run-a"]
    job = store.read_job("run-a")
    assert job is not None and job["status"] == model.COMPLETED
    index = read_json(store.index_path)
    assert index["version"] == 2 and index["jobs"] == []  # run-a is finished: in the log
    (line,) = Path(store.finished_path).read_bytes().splitlines()
    assert json.loads(line)["id"] == "run-a"


def test_transaction_writes_nothing_when_its_block_raises(store: Store) -> None:
    with store.transaction() as tx:
        tx.put(_job("run-a"))
    before = Path(store.index_path).read_bytes()
    with pytest.raises(ValueError), store.transaction() as tx:
        tx.put(_job("run-b"))
        tx.put(dict(_job("run-a"), name="changed"))
        raise ValueError("boom")
    assert Path(store.index_path).read_bytes() == before
    assert not os.path.exists(store.job_path("run-b"))
    assert os.path.exists(store.job_path("run-a"))
    assert store.read_job("run-a") == _job("run-a")


def test_transaction_releases_the_lock_after_an_exception(store: Store) -> None:
    with pytest.raises(ValueError), store.transaction():
        raise ValueError("boom")
    with store.transaction(timeout=0.5) as tx:
        tx.put(_job("run-a"))
    assert store.read_job("run-a") is not None


_TRY_LOCK = """
import sys
import time
sys.path.insert(0, sys.argv[1])
from jobgate.state.store import LockTimeout, Store
try:
    with Store(sys.argv[2]).lock(timeout=0.3):
        print("acquired")
except LockTimeout:
    print("timeout")
"""


def _try_lock_in_other_process(store: Store) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _TRY_LOCK, SRC, store.state_dir],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()


def test_transaction_lock_excludes_other_processes_until_it_ends(store: Store) -> None:
    with store.transaction() as tx:
        assert _try_lock_in_other_process(store) == "timeout"
        tx.put(_job("run-a"))
    assert _try_lock_in_other_process(store) == "acquired"


def test_transaction_get_merges_the_job_file_under_the_index_summary(store: Store) -> None:
    job = _job("run-a")
    job["output"] = "big output"
    with store.transaction() as tx:
        tx.put(job)
    assert "output" not in store.read_index()[0]  # heavy keys stay out of the index
    with store.transaction() as tx:
        full = tx.get("run-a")
    assert full is not None and full["output"] == "big output"


# -- pruning --------------------------------------------------------------------------------
def test_pruning_keeps_every_active_job_and_the_newest_finished_ones(store: Store) -> None:
    base = 1_700_000_000.0
    active = [_job(f"run-active{i}", model.RUNNING, created=base + i) for i in range(3)]
    finished = [_job(f"run-done{i:02d}", model.COMPLETED, created=base + 10 + i) for i in range(10)]
    with store.transaction() as tx:
        for job in active + finished:
            tx.put(job)
    for job in active + finished:
        Path(store.log_path(job["id"])).write_text("log\n")
    # the active jobs are the *oldest*: pruning by age alone would drop them
    with store.transaction() as tx:
        tx.max_finished = 4
    kept = {j["id"] for j in store.read_index()}
    newest_finished = {f"run-done{i:02d}" for i in range(6, 10)}
    assert kept == {j["id"] for j in active} | newest_finished
    for job in active + finished:
        expect = job["id"] in kept
        assert os.path.exists(store.job_path(job["id"])) == expect, job["id"]
        assert os.path.exists(store.log_path(job["id"])) == expect, job["id"]


def test_pruning_to_zero_still_keeps_active_jobs(store: Store) -> None:
    with store.transaction() as tx:
        tx.put(_job("run-q", model.QUEUED))
        tx.put(_job("run-done", model.FAILED))
        tx.max_finished = 0
    assert [j["id"] for j in store.read_index()] == ["run-q"]
    assert not os.path.exists(store.job_path("run-done"))


# -- ids ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad_id", ["../secret", "../../etc/passwd", "/etc/passwd", "..", "a/b", "", ".hidden"]
)
def test_read_job_rejects_ids_that_escape_the_jobs_dir(store: Store, bad_id: str) -> None:
    secret = Path(store.state_dir) / "secret.json"
    secret.write_text(json.dumps({"id": "../secret"}))
    with pytest.raises(JobgateError):
        store.read_job(bad_id)
    with pytest.raises(JobgateError), store.transaction() as tx:
        tx.put(_job(bad_id))
    assert store.read_index() == []


def test_read_job_warns_and_skips_an_unreadable_job_file(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(store.job_path("run-bad")).write_bytes(b"{not json")
    assert store.read_job("run-bad") is None
    err = capsys.readouterr().err
    assert "run-bad.json" in err and len(err.splitlines()) == 1


# -- modes ----------------------------------------------------------------------------------
def test_store_files_are_0600_and_dirs_0700_whatever_the_umask(
    tmp_path: Path, open_umask: None
) -> None:
    s = Store(str(tmp_path / "root" / "ws-0123456789abcdef"), str(tmp_path))
    with s.transaction() as tx:
        tx.put(_job("run-a"))
    with s.lock():
        s.write_config({"maxJobs": 3})
    for folder in (s.state_dir, s.jobs_dir, os.path.dirname(s.state_dir)):
        assert _mode(folder) == 0o700, folder
    for path in (s.index_path, s.config_path, s.lock_path, s.job_path("run-a")):
        assert _mode(path) == 0o600, path


def test_ensure_tightens_an_existing_open_state_dir(tmp_path: Path) -> None:
    state_dir = tmp_path / "root" / "ws-0123456789abcdef"
    state_dir.mkdir(parents=True)
    os.chmod(state_dir, 0o755)
    Store(str(state_dir)).ensure()
    assert _mode(state_dir) == 0o700


def test_lock_free_read_of_a_fresh_state_dir_is_empty_and_creates_nothing(
    store: Store,
) -> None:
    assert store.read_index() == []
    assert not os.path.exists(store.index_path)
    assert not os.path.exists(store.lock_path)


# -- temp files left by killed writers --------------------------------------------------------
def test_a_pruning_commit_removes_old_temp_files_of_killed_writers_but_not_fresh_ones(
    store: Store,
) -> None:
    hour_ago = time.time() - 3600
    stale = [
        Path(store.state_dir) / ".active.json.4242.deadbeef.tmp",
        Path(store.jobs_dir) / ".run-a.json.4242.cafe0001.tmp",
    ]
    fresh = Path(store.state_dir) / ".config.json.4343.feedf00d.tmp"
    unrelated = Path(store.state_dir) / "notes.tmp"  # not one of atomic_write's names
    for path in [*stale, fresh, unrelated]:
        path.write_bytes(b"{half")
    for path in [*stale, unrelated]:
        os.utime(path, (hour_ago, hour_ago))
    with store.transaction() as tx:  # no pruning: nothing listed, nothing swept
        tx.put(_job("run-a"))
    assert all(p.exists() for p in stale)
    with store.transaction() as tx:  # pruning: the folders are listed and swept
        tx.put(_job("run-b", created=2e9))
        tx.max_finished = 1
    assert [p for p in stale if p.exists()] == []
    assert fresh.exists() and unrelated.exists()


def test_retention_removes_old_logs_and_final_message_files_no_record_names(
    store: Store,
) -> None:
    jobs = Path(store.jobs_dir)
    with store.transaction() as tx:
        running = _job("run-kept", status=model.RUNNING)
        tx.put(dict(running, resultFile=str(jobs / "aa.last-message")))
    old = time.time() - 3600
    files = {
        "run-kept.log": True,  # its job is in the index
        "aa.last-message": True,  # named by a record
        "run-orphan.log": False,  # left by a launch that never committed
        "bb.last-message": False,  # a task whose record never committed
        "run-fileonly.json": True,  # job files are never removed here
        "run-fileonly.log": True,  # ... nor the log beside one
        "notes.txt": True,  # not ours to judge
    }
    for name in files:
        (jobs / name).write_text("x\n")
        os.utime(jobs / name, (old, old))
    (jobs / "run-fresh.log").write_text("a launch in progress\n")  # too young to judge
    files["run-fresh.log"] = True
    with store.transaction() as tx:  # as at the end of a job: a write that prunes
        tx.put(_job("run-other"))
        tx.put(_job("run-newer", created=2e9))
        tx.max_finished = 1
    assert {n for n in files if (jobs / n).exists()} == {n for n, keep in files.items() if keep}


def test_retention_knows_a_final_message_file_named_through_a_symlinked_state_root(
    tmp_path: Path,
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    by_link = Store(str(link / "ws-0123456789abcdef"), str(tmp_path))
    by_link.ensure()
    message = Path(by_link.jobs_dir) / "aa.last-message"
    with by_link.transaction() as tx:  # a task started with JOBGATE_HOME=link
        tx.put(dict(_job("task-x", model.RUNNING), resultFile=str(message)))
    message.write_text("partial\n")
    old = time.time() - 3600
    os.utime(message, (old, old))
    by_real = Store(str(real / "ws-0123456789abcdef"), str(tmp_path))
    with by_real.transaction() as tx:  # a job ending, seen with JOBGATE_HOME=real
        tx.put(_job("run-y"))
        tx.max_finished = 50
    assert message.exists()


WAIT_AND_RECORD = (
    "import sys, time\n"
    "from jobgate.state.store import Store\n"
    "with Store(sys.argv[1]).lock(timeout=60):\n"
    "    with open(sys.argv[2], 'a') as fh:\n"
    "        fh.write(sys.argv[3] + '\\n')\n"
    "    time.sleep(0.02)\n"
)


def _blocked_lock_waiters(store: Store) -> int:
    """Writers waiting for ``store``'s lock: the head of the queue waits in flock on the
    lock file, the others for a byte of the queue file."""
    return blocked_on(store.lock_path, store.lock_path + QUEUE)


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="needs Linux /proc/locks")
def test_writers_waiting_for_the_lock_are_served_about_in_arrival_order(
    store: Store, tmp_path: Path
) -> None:
    order = tmp_path / "order"
    order.touch()
    env = dict(os.environ, PYTHONPATH=SRC)
    procs = []
    try:
        with store.lock():
            for i in range(5):
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            WAIT_AND_RECORD,
                            store.state_dir,
                            str(order),
                            str(i),
                        ],
                        env=env,
                    )
                )
                deadline = time.monotonic() + 5
                while _blocked_lock_waiters(store) < i + 1 and time.monotonic() < deadline:
                    time.sleep(0.005)  # the next arrives once this one waits in the kernel
                assert _blocked_lock_waiters(store) == i + 1, f"writer {i} never waited"
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    served = [int(x) for x in order.read_text().split()]
    assert sorted(served) == list(range(5))
    inversions = sum(1 for a in range(5) for b in range(a + 1, 5) if served[a] > served[b])
    assert inversions <= 2, served  # a sleeping poller would serve them in any order


def test_a_lock_wait_off_the_main_thread_still_times_out_and_later_succeeds(
    store: Store,
) -> None:
    import threading

    results: list[str] = []

    def attempt() -> None:
        try:
            with store.lock(timeout=0.3):
                results.append("acquired")
        except LockTimeout:
            results.append("timeout")

    with store.lock():
        t = threading.Thread(target=attempt)
        t.start()
        t.join(30)
    t = threading.Thread(target=attempt)
    t.start()
    t.join(30)
    assert results == ["timeout", "acquired"]


def test_a_timed_lock_wait_leaves_no_alarm_behind(store: Store) -> None:
    import signal

    before = signal.getsignal(signal.SIGALRM)
    code = (
        "import signal, sys\n"
        "from jobgate.state.store import Store\n"
        "try:\n"
        "    Store(sys.argv[1]).lock(timeout=0.2).__enter__()\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__)\n"
        "print(signal.getsignal(signal.SIGALRM) == signal.SIG_DFL, signal.getitimer(0)[0])\n"
    )
    with store.lock():
        proc = subprocess.run(
            [sys.executable, "-c", code, store.state_dir],
            env=dict(os.environ, PYTHONPATH=SRC),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.stdout.split() == ["LockTimeout", "True", "0.0"], proc.stderr
    assert signal.getsignal(signal.SIGALRM) == before


def test_retention_removes_old_job_files_of_launches_that_never_committed(
    store: Store,
) -> None:
    """``run --background`` writes its job's file before it takes the lock: an active
    record that no index names is a launch killed before its commit, and no job."""
    jobs = Path(store.jobs_dir)
    with store.transaction() as tx:
        tx.put(_job("run-kept", status=model.RUNNING))
    old = time.time() - 3600
    files = {
        "run-uncommitted": (model.QUEUED, old, False),
        "run-uncommitted2": (model.RUNNING, old, False),
        "run-launching": (model.RUNNING, time.time(), True),  # may be committed any moment
        "run-finishedfile": (model.COMPLETED, old, True),  # an end written before its index
    }
    for job_id, (status, mtime, _keep) in files.items():
        path = jobs / f"{job_id}.json"
        path.write_text(json.dumps(_job(job_id, status=status)))
        os.utime(path, (mtime, mtime))
    with store.transaction() as tx:  # a write that prunes, so it sweeps
        tx.put(_job("run-other"))
        tx.put(_job("run-newer", created=2e9))
        tx.max_finished = 1
    for job_id, (_status, _mtime, keep) in files.items():
        assert (jobs / f"{job_id}.json").exists() == keep, job_id
    assert (jobs / "run-kept.json").exists()


def test_a_commit_fsyncs_nothing_while_it_holds_the_lock_and_all_it_wrote_before_it_returns(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting for the disk under the lock makes every waiter wait for it too; a caller
    that acknowledges a change (prints a job id) must find it durable by then."""
    import fcntl

    if not sys.platform.startswith("linux"):
        pytest.skip("names a descriptor's file through /proc/self/fd (Linux)")
    synced: list[str] = []
    under_lock: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        probe = os.open(store.lock_path, os.O_RDWR)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            under_lock.append(path)
        finally:
            os.close(probe)  # (a lock it got is dropped with the descriptor)
        synced.append(path)
        real_fsync(fd)

    with store.transaction() as tx:  # the first commit creates the files
        tx.put(_job("run-first", status=model.RUNNING))
    monkeypatch.setattr(os, "fsync", spy)
    with store.transaction() as tx:  # a start ...
        tx.put(_job("run-a", status=model.RUNNING))
    assert under_lock == []
    assert {store.index_path, store.state_dir, store.jobs_dir} <= set(synced)
    assert store.job_path("run-a") in synced
    synced.clear()
    with store.transaction() as tx:  # ... and an end
        tx.put(_job("run-a", status=model.COMPLETED))
    assert under_lock == []
    assert {store.index_path, store.finished_path, store.job_path("run-a")} <= set(synced)
