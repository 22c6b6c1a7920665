"""Background launches wait for their turn in the launch queue (``jobgate.cli.admission``,
issue 15: throughput at 32 launchers no lower than at 2): a real launch waits for the
one ahead of it, goes the moment that one is killed, never waits longer than the limit,
and anything that is no background launch, or a queue that is off, never waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Env
from jobgate.cli import admission

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/locks") or os.name != "posix",
    reason="tells that a launch waits from /proc/locks (Linux)",
)

#: takes a place in the launch queue of the state root in argv[1]; says "in" once it has
#: it, then holds it until killed or its stdin closes
HOLD_PLACE = (
    "import sys\n"
    "from jobgate.state.tickets import Ticket\n"
    "t = Ticket.take(sys.argv[1])\n"
    "print('in' if t is not None else 'none', flush=True)\n"
    "sys.stdin.read()\n"
)


def _blocked_on(path: Path) -> int:
    """How many record-lock requests on ``path`` wait right now (``/proc/locks``)."""
    try:
        inode = path.stat().st_ino
    except FileNotFoundError:
        return 0
    count = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and int(fields[fields.index("->") + 5].rsplit(":", 1)[1]) == inode:
            count += 1
    return count


def _hold_place(jg: Env) -> subprocess.Popen[str]:
    jg.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_PLACE, str(jg.home / admission.QUEUE_NAME)],
        env=jg.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "in\n"
    return holder


def test_is_launch_means_a_launch_subcommand_with_background_before_the_command() -> None:
    assert admission.is_launch(["run", "--background", "--", "true"])
    assert admission.is_launch(["task", "-b", "fix it"])
    assert admission.is_launch(["review", "--background"])
    assert not admission.is_launch(["run", "--", "echo", "--background"])
    assert not admission.is_launch(["run", "--", "true"])
    assert not admission.is_launch(["status", "--background"])
    assert not admission.is_launch([])


def test_a_launch_waits_for_the_one_ahead_and_goes_when_it_is_killed(tmp_path: Path) -> None:
    jg = Env(tmp_path)
    jg.cli("status")  # the state root exists: the queue is used
    holder = _hold_place(jg)
    queue = jg.home / admission.QUEUE_NAME
    env = dict(jg.env, **{admission.SLOTS_ENV: "1"})
    launch = jg.popen("run", "--background", "--", "true", env=env)
    try:
        deadline = time.monotonic() + 30
        while _blocked_on(queue) == 0:
            assert launch.poll() is None, "the launch did not wait for its turn"
            assert time.monotonic() < deadline, "the launch never queued"
            time.sleep(0.01)
        assert launch.poll() is None
        holder.send_signal(signal.SIGKILL)  # the kernel lets its place go
        out, err = launch.communicate(timeout=60)
        assert launch.returncode == 0, err
        job_id = out.splitlines()[0]
        assert jg.cli("wait", job_id, "--timeout", "30").returncode == 0
    finally:
        for proc in (holder, launch):
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert queue.stat().st_size == 0  # the last one out emptied the queue


#: admits a launch with a short limit and prints the place it got and how long it waited
ADMIT_SHORT = (
    "import time\n"
    "from jobgate.cli import admission\n"
    "admission.WAIT_LIMIT = 0.3\n"
    "start = time.monotonic()\n"
    "place = admission.admit(['run', '-b', '--', 'true'])\n"
    "print(place.number if place else None, time.monotonic() - start)\n"
)


def test_no_place_is_waited_for_longer_than_the_limit(tmp_path: Path) -> None:
    # in a process of its own: pytest-timeout holds SIGALRM here, and the bounded wait
    # needs the timer (without it the wait is unbounded, as documented)
    jg = Env(tmp_path)
    holder = _hold_place(jg)
    env = dict(jg.env, **{admission.SLOTS_ENV: "1"})
    try:
        got = subprocess.run(
            [sys.executable, "-c", ADMIT_SHORT],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        number, waited = got.stdout.split()
        assert number == "1"
        assert float(waited) >= 0.3  # it waited for the holder ahead, then went anyway
    finally:
        holder.kill()
        holder.communicate()


def test_other_commands_an_unset_queue_or_no_state_root_never_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jg = Env(tmp_path)
    monkeypatch.setenv("JOBGATE_HOME", str(jg.home))
    assert admission.admit(["run", "-b", "--", "true"]) is None  # no state root yet
    assert not jg.home.exists()  # and none was made early
    holder = _hold_place(jg)
    try:
        monkeypatch.setenv(admission.SLOTS_ENV, "0")
        assert admission.admit(["run", "-b", "--", "true"]) is None
        monkeypatch.setenv(admission.SLOTS_ENV, "1")
        assert admission.admit(["status"]) is None
        assert admission.admit(["run", "--", "true"]) is None
        monkeypatch.setenv("JOBGATE_HOME", "relative/dir")
        assert admission.admit(["run", "-b", "--", "true"]) is None
    finally:
        holder.kill()
        holder.communicate()
