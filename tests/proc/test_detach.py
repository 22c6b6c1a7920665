"""A detached start: its own session, the directory and environment asked for, stdin and
stdout on /dev/null, stderr where asked, only the descriptors named passed on, and a
failed start an OSError in the caller, as subprocess.Popen would have it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from jobgate.proc import detach

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="posix_spawn and /proc: POSIX only"),
    pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="the probe reads /proc"),
]


def _start_sleeper(tmp_path: Path, pass_fds: tuple[int, ...] = ()) -> detach.Started:
    fd = os.open(tmp_path / "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return detach.start(
            [shutil.which("sleep") or "/bin/sleep", "30"],
            cwd=str(tmp_path),
            env={"PROBE_VAR": "x y"},
            stderr_fd=fd,
            pass_fds=pass_fds,
        )
    finally:
        os.close(fd)


def _end(started: detach.Started) -> None:
    started.kill()
    if isinstance(started, subprocess.Popen):
        started.wait(timeout=60)
    else:
        os.waitpid(started.pid, 0)


def _fds(pid: int) -> dict[int, str]:
    """The open descriptors of ``pid`` once it runs its program (not our interpreter any
    more) and its dynamic loader has closed the shared libraries it opened to map them."""
    deadline = time.monotonic() + 30
    while True:
        fds = {}
        if os.readlink(f"/proc/{pid}/exe") != os.readlink("/proc/self/exe"):
            for name in os.listdir(f"/proc/{pid}/fd"):
                try:
                    fds[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
                except OSError:
                    pass
            if fds and not any(".so" in Path(target).name for target in fds.values()):
                return fds
        if time.monotonic() > deadline:
            return fds  # what is there: the assertions say what is wrong with it
        time.sleep(0.01)


def _zombies() -> int:
    return sum(c.status() == psutil.STATUS_ZOMBIE for c in psutil.Process().children())


def test_a_detached_process_runs_in_its_own_session_where_and_with_what_it_was_given(
    tmp_path: Path,
) -> None:
    started = _start_sleeper(tmp_path)
    try:
        fds = _fds(started.pid)
        assert os.getsid(started.pid) == started.pid
        assert os.readlink(f"/proc/{started.pid}/cwd") == str(tmp_path)
        assert Path(f"/proc/{started.pid}/environ").read_bytes() == b"PROBE_VAR=x y\0"
        assert fds == {0: os.devnull, 1: os.devnull, 2: str(tmp_path / "stderr")}
    finally:
        _end(started)


def test_only_the_descriptors_named_reach_a_detached_process(tmp_path: Path) -> None:
    passed_r, passed_w = os.pipe()
    stray_r, stray_w = os.pipe()
    os.set_inheritable(stray_r, True)  # inheritable, yet not named: must not get through
    try:
        started = _start_sleeper(tmp_path, pass_fds=(passed_r,))
        try:
            fds = _fds(started.pid)
        finally:
            _end(started)
    finally:
        for fd in (passed_r, passed_w, stray_r, stray_w):
            os.close(fd)
    assert sorted(fds) == [0, 1, 2, passed_r]


def test_a_detached_process_gets_sigpipe_back_at_its_default(tmp_path: Path) -> None:
    # Python ignores SIGPIPE for itself; an ignored signal stays ignored across exec
    started = _start_sleeper(tmp_path)
    try:
        _fds(started.pid)
        status = Path(f"/proc/{started.pid}/status").read_text().splitlines()
    finally:
        _end(started)
    ignored = int(next(line for line in status if line.startswith("SigIgn:")).split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))


def test_a_program_that_is_not_there_is_an_oserror_in_the_caller(tmp_path: Path) -> None:
    zombies = _zombies()
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        with pytest.raises(FileNotFoundError):
            detach.start(
                [str(tmp_path / "no-such-program")],
                cwd=str(tmp_path),
                env={},
                stderr_fd=fd,
                pass_fds=(),
            )
        with pytest.raises(FileNotFoundError) as raised:
            detach.start(
                ["/bin/sh", "-c", "true"],
                cwd=str(tmp_path / "gone"),
                env={},
                stderr_fd=fd,
                pass_fds=(),
            )
    finally:
        os.close(fd)
    assert raised.value.filename == str(tmp_path / "gone")
    assert _zombies() == zombies  # each failed child was reaped


def test_with_other_threads_running_the_start_uses_popen_not_posix_spawn(tmp_path: Path) -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        started = _start_sleeper(tmp_path)
    finally:
        stop.set()
        other.join()
    try:
        assert isinstance(started, subprocess.Popen)
        assert os.getsid(started.pid) == started.pid
        assert _fds(started.pid) == {0: os.devnull, 1: os.devnull, 2: str(tmp_path / "stderr")}
    finally:
        _end(started)


def test_without_posix_spawns_session_option_the_start_falls_back_to_popen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_setsid(*_args: object, **_kw: object) -> int:
        raise NotImplementedError("The setsid option is not supported on this platform")

    monkeypatch.setattr(os, "posix_spawn", no_setsid)
    here = os.getcwd()
    started = _start_sleeper(tmp_path)
    try:
        assert isinstance(started, subprocess.Popen)
        assert os.getsid(started.pid) == started.pid
        assert os.readlink(f"/proc/{started.pid}/cwd") == str(tmp_path)
        assert os.getcwd() == here  # the directory changed for the call was changed back
    finally:
        _end(started)


def test_a_started_process_is_killed_while_it_is_still_our_unreaped_child(
    tmp_path: Path,
) -> None:
    # the launcher kills a worker that never reported: its pid cannot be anyone else's
    # until we reap it, so the signal reaches that worker and no stranger
    started = _start_sleeper(tmp_path)
    started.kill()
    _pid, status = os.waitpid(started.pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
