"""``completedAt`` is when the command ended, not when its end was written (issue 14,
item 11c): the worker takes the time as the command ends and records that, however late
the write (the lock held by another writer, a full disk retried)."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import Env, pid_alive, start_running
from jobgate.state.model import parse_iso


def test_an_end_recorded_late_keeps_the_commands_end_as_completed_at(
    jg: Env, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    job = start_running(jg, "sh", "-c", f"while [ ! -e '{go}' ]; do sleep 0.02; done")
    with jg.store().lock():  # the worker cannot write the end until this block ends
        go.touch()
        ended = time.time()
        deadline = time.monotonic() + 10
        while pid_alive(job["commandPid"]):
            assert time.monotonic() < deadline, "the command did not end"
            time.sleep(0.02)
        time.sleep(1.5)
        released = time.time()
    done = jg.wait_for(job["id"], lambda j: j["status"] == "completed")
    completed = parse_iso(done["completedAt"])
    updated = parse_iso(done["updatedAt"])
    assert completed is not None and updated is not None
    # the command's end (it polls for the file every 20 ms), not the write 1.5 s later
    assert ended - 0.05 <= completed <= ended + 0.75, (ended, done["completedAt"])
    assert completed < released - 0.5
    assert updated >= released - 0.01  # the write itself is dated as written
