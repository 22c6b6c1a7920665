"""Writers that wait for the state lock get it in the order they came (issue 15: "waiting
writers are served in arrival order"), a writer killed while it waits does not hold up
the ones behind it, and the queue file does not grow without end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import Env, blocked_on
from jobgate.state.locking import QUEUE_SUFFIX as QUEUE

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/locks") or os.name != "posix",
    reason="tells that a writer waits for the lock from /proc/locks (Linux)",
)

#: holds the state lock until its stdin closes; says "held" once it has it
HOLD = (
    "import sys\n"
    "from jobgate.state.files import StateDir\n"
    "with StateDir(sys.argv[1], sys.argv[2]).lock(timeout=60):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)

#: waits for the lock (argv[5] seconds at most: then exits 3); once it has it, appends its
#: name to a file and holds it a moment
WAITER = (
    "import sys, time\n"
    "from jobgate.state.files import StateDir, LockTimeout\n"
    "try:\n"
    "    with StateDir(sys.argv[1], sys.argv[2]).lock(timeout=float(sys.argv[5])):\n"
    "        with open(sys.argv[3], 'a') as f:\n"
    "            f.write(sys.argv[4] + '\\n')\n"
    "        time.sleep(0.02)\n"
    "except LockTimeout:\n"
    "    sys.exit(3)\n"
)


def _wait_for(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _queue_size(queue: Path) -> int:
    try:
        return queue.stat().st_size
    except FileNotFoundError:
        return 0


def _start_holder(jg: Env) -> subprocess.Popen[str]:
    store = jg.store()
    store.ensure()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, store.state_dir, store.workspace_root],
        env=jg.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    return holder


def _waiter(jg: Env, order_file: Path, name: str, timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """A process that waits for the lock, then writes ``name`` to ``order_file``."""
    store = jg.store()
    argv = [sys.executable, "-c", WAITER, store.state_dir, store.workspace_root]
    return subprocess.Popen(
        [*argv, str(order_file), name, str(timeout)],
        env=jg.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )


def _queue_waiters(
    jg: Env, names: list[str], order_file: Path, timeouts: dict[str, float] | None = None
) -> dict[str, subprocess.Popen[bytes]]:
    """Start one waiter per name, each only once the one before it has queued (its byte
    is in the queue file), so their arrival order is known; ``timeouts``: how long some
    of them wait at most."""
    store = jg.store()
    files = [store.lock_path, store.lock_path + QUEUE]
    waiters: dict[str, subprocess.Popen[bytes]] = {}
    for name in names:
        before = len(waiters)
        waiters[name] = _waiter(jg, order_file, name, (timeouts or {}).get(name, 60.0))
        _wait_for(lambda n=before: blocked_on(*files) > n, f"waiter {name} to wait for the lock")
    return waiters


def _reap(procs: list[subprocess.Popen[str]] | list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@contextmanager
def _queued(
    jg: Env, names: list[str], order_file: Path, timeouts: dict[str, float] | None = None
) -> Iterator[tuple[subprocess.Popen[str], dict[str, subprocess.Popen[bytes]]]]:
    """The lock held, and a waiter queued behind it per name, in that order; every one
    of them reaped at the end."""
    holder = _start_holder(jg)
    waiters: dict[str, subprocess.Popen[bytes]] = {}
    try:
        waiters.update(_queue_waiters(jg, names, order_file, timeouts))
        yield holder, waiters
    finally:
        _reap([holder])
        _reap(list(waiters.values()))


def _release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()


def _settled(jg: Env, waiting: int) -> tuple[int, int]:
    """``(in flock, in the queue file)`` once ``waiting`` writers wait again (a writer
    woken by one before it that left blocks again), a moment later."""
    store = jg.store()
    lock_file, queue_file = store.lock_path, store.lock_path + QUEUE
    _wait_for(lambda: blocked_on(lock_file, queue_file) == waiting, "the waiters to settle")
    time.sleep(0.2)
    return blocked_on(lock_file), blocked_on(queue_file)


def test_waiting_writers_get_the_lock_in_the_order_they_came(jg: Env, tmp_path: Path) -> None:
    order_file = tmp_path / "order"
    names = [f"w{i}" for i in range(8)]
    with _queued(jg, names, order_file) as (holder, waiters):
        _release(holder)
        for proc in waiters.values():
            assert proc.wait(timeout=60) == 0
        assert order_file.read_text().split() == names


def test_a_writer_killed_while_it_waits_does_not_hold_up_the_ones_behind_it(
    jg: Env, tmp_path: Path
) -> None:
    order_file = tmp_path / "order"
    with _queued(jg, ["a", "b", "c", "d"], order_file) as (holder, waiters):
        os.kill(waiters["b"].pid, signal.SIGKILL)
        waiters["b"].wait(timeout=30)
        _release(holder)
        for name in ("a", "c", "d"):
            assert waiters[name].wait(timeout=60) == 0
        assert order_file.read_text().split() == ["a", "c", "d"]


def test_a_writer_behind_a_killed_one_waits_in_the_queue_not_beside_the_head(
    jg: Env, tmp_path: Path
) -> None:
    """Once "b" is gone, "c" must not block in ``flock`` beside "a" (where a release wakes
    both and either may win): it waits in the queue until "a" has had the lock."""
    with _queued(jg, ["a", "b", "c", "d"], tmp_path / "order") as (_holder, waiters):
        assert _settled(jg, 4) == (1, 3)
        os.kill(waiters["b"].pid, signal.SIGKILL)
        waiters["b"].wait(timeout=30)
        assert _settled(jg, 3) == (1, 2)


def test_a_writer_behind_one_that_timed_out_still_waits_for_the_ones_before(
    jg: Env, tmp_path: Path
) -> None:
    order_file = tmp_path / "order"
    with _queued(jg, ["a", "b", "c"], order_file, {"b": 3.0}) as (holder, waiters):
        assert waiters["b"].wait(timeout=30) == 3  # gave up, leaving the queue out of turn
        assert _settled(jg, 2) == (1, 1)
        _release(holder)
        for name in ("a", "c"):
            assert waiters[name].wait(timeout=60) == 0
        assert order_file.read_text().split() == ["a", "c"]


def test_the_queue_file_is_emptied_once_nobody_waits(jg: Env, tmp_path: Path) -> None:
    order_file = tmp_path / "order"
    with _queued(jg, ["x", "y", "z"], order_file) as (holder, waiters):
        queue = Path(jg.store().lock_path + QUEUE)
        assert _queue_size(queue) == 3
        _release(holder)
        for proc in waiters.values():
            assert proc.wait(timeout=60) == 0
        assert _queue_size(queue) == 0
        assert oct(queue.stat().st_mode & 0o777) == oct(0o600)


def test_a_queue_file_that_cannot_be_written_only_costs_the_order(jg: Env, tmp_path: Path) -> None:
    """The queue is a courtesy: with no way to queue (its path taken by a folder), writers
    still get the lock one at a time, through flock alone."""
    order_file = tmp_path / "order"
    store = jg.store()
    store.ensure()
    os.mkdir(store.lock_path + QUEUE)
    holder = _start_holder(jg)
    waiters: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("p", "q"):
            waiters.append(_waiter(jg, order_file, name))
        time.sleep(0.3)
        assert not order_file.exists()  # nobody got past the holder
        assert holder.stdin is not None
        holder.stdin.close()
        for proc in waiters:
            assert proc.wait(timeout=60) == 0
        assert sorted(order_file.read_text().split()) == ["p", "q"]
    finally:
        _reap([holder])
        _reap(waiters)
