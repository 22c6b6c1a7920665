"""A writer that waits for the state lock says so, once, naming the holder (issue 14,
item 11b); the hooks' short waits never do, and a background worker says it in its log."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import Env, run_hook, start_running

#: holds the state lock until its stdin closes; says "held" once it has it
HOLD = (
    "import sys\n"
    "from jobgate.state.store import Store\n"
    "with Store(sys.argv[1], sys.argv[2]).lock():\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)


@contextmanager
def holding(jg: Env) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds the workspace's state lock until its stdin is closed
    (:func:`release`), or the block ends."""
    store = jg.store()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, store.state_dir, store.workspace_root],
        env=jg.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert _line(proc.stdout, 20) == "held\n"
        yield proc
    finally:
        release(proc)


def release(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    proc.wait(timeout=10)


def _line(stream: object, timeout: float) -> str:
    """One line of ``stream`` within ``timeout`` seconds ("" if none came)."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        return ""
    return str(stream.readline())  # type: ignore[attr-defined]


def test_a_writer_waiting_for_the_lock_names_its_holder_and_goes_on_once_it_is_free(
    jg: Env,
) -> None:
    quiet = start_running(jg, "sleep", "300", session="s1")
    with holding(jg) as holder:
        _wait_behind(jg, holder, quiet["id"])
    jobs = jg.cli_json("status")["jobs"]
    assert [j["status"] for j in jobs if j["id"] != quiet["id"]] == ["completed"]


def _wait_behind(jg: Env, holder: subprocess.Popen[str], running: str) -> None:
    """``run -- true`` waits for ``holder``'s lock, says so, and runs once it is released;
    meanwhile the Stop hook (which names the job ``running``) says nothing of the lock."""
    started = time.monotonic()
    waiter = jg.popen("run", "--", "true")
    try:
        notice = _line(waiter.stderr, 15)
        waited = time.monotonic() - started
        assert notice == (
            f"jobgate: waiting for the state lock held by pid {holder.pid} (python -c)\n"
        )
        assert waited >= 0.9  # not at once: only a wait of about a second is worth a word
        assert waiter.poll() is None  # still waiting: the lock is still held
        # the Stop hook's short wait for the same lock is never told, and stays fast
        hook_started = time.monotonic()
        hook = run_hook(jg, "stop", session="s1")
        assert time.monotonic() - hook_started < 5
        assert hook.returncode == 0
        assert running in json.loads(hook.stdout)["systemMessage"]  # a note, no block
        assert "decision" not in json.loads(hook.stdout)
        assert running in hook.stderr and "waiting for the state lock" not in hook.stderr
        release(holder)
        _out, err = waiter.communicate(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, err
    assert err == ""  # said once


def test_a_background_worker_waiting_to_record_the_end_says_so_in_its_log(
    jg: Env, tmp_path: Path
) -> None:
    from jobgate.state.locking import holder_label

    go = tmp_path / "go"
    job = start_running(jg, "sh", "-c", f"while [ ! -e '{go}' ]; do sleep 0.02; done")
    with jg.store().lock():  # this test's own process holds it
        go.touch()
        time.sleep(1.5)
    done = jg.wait_for(job["id"], lambda j: j["status"] == "completed")
    log = Path(done["logFile"]).read_text()
    lines = [ln for ln in log.splitlines() if "waiting for the state lock" in ln]
    assert len(lines) == 1, log
    # a timestamped log line of jobgate's own (never raw on the worker's stderr, the log)
    assert lines[0].startswith("[") and lines[0][25:] == (
        f"] jobgate: waiting for the state lock held by pid {os.getpid()} ({holder_label()})"
    ), log
