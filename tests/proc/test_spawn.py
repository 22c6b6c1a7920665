"""A command held at its gate: alive (identity capturable) but not running until
released; a gate closed without release means it never runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from jobgate.proc import liveness, spawn


def _held(tmp_path: Path, *argv: str) -> spawn.HeldCommand:
    return spawn.start_held(
        list(argv),
        cwd=str(tmp_path),
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_held_command_does_not_run_until_released_and_keeps_its_identity(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    held = _held(tmp_path, "sh", "-c", f"echo yes > {marker}; echo out")
    ident = liveness.capture(held.pid)
    assert ident is not None
    time.sleep(0.3)
    assert not marker.exists()  # alive, identified, and still waiting
    assert held.release("sh") is None
    out, _err = held.proc.communicate(timeout=30)
    assert held.proc.returncode == 0 and out == b"out\n" and marker.exists()
    # exec in place: the process that ran the command is the one whose identity we took
    assert ident["pid"] == held.pid


def test_an_abandoned_command_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    held = _held(tmp_path, "sh", "-c", f"echo yes > {marker}")
    held.abandon()
    assert held.proc.returncode == spawn.NOT_RELEASED
    assert not marker.exists()


def test_a_held_command_whose_worker_dies_never_runs(tmp_path: Path) -> None:
    """The gate's only writer is the worker: SIGKILL it and the held command exits."""
    marker = tmp_path / "ran"
    code = (
        "import os, sys, time; from jobgate.proc import spawn; "
        f"h = spawn.start_held(['sh', '-c', 'echo > {marker}'], cwd=None, env=dict(os.environ)); "
        "print(h.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(Path(spawn.__file__).parents[2])),
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 20
        while liveness.capture(child) is not None:  # None: gone or a zombie
            assert time.monotonic() < deadline, "the held command outlived its worker"
            time.sleep(0.02)
        assert not marker.exists()
    finally:
        parent.kill()
        parent.wait()


def test_a_missing_program_is_reported_on_release(tmp_path: Path) -> None:
    held = _held(tmp_path, "no-such-program-xyz", "arg")
    assert held.release("no-such-program-xyz") == "command not found: no-such-program-xyz"
    held.proc.communicate(timeout=30)
    assert held.proc.returncode == 127


def test_arguments_that_are_not_utf8_reach_the_command_byte_for_byte(tmp_path: Path) -> None:
    raw = os.fsdecode(b"caf\xe9 \xff")
    held = _held(tmp_path, "printf", "%s", raw)
    assert held.release("printf") is None
    out, _err = held.proc.communicate(timeout=30)
    assert out == b"caf\xe9 \xff"


def _sigign_mask(out: bytes) -> int:
    line = next(ln for ln in out.decode().splitlines() if ln.startswith("SigIgn:"))
    return int(line.split()[1], 16)


def test_the_command_gets_default_sigpipe_sigxfsz_and_sighup_whatever_we_ignore(
    tmp_path: Path,
) -> None:
    import signal

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as the background worker does
    try:
        held = _held(tmp_path, "sh", "-c", "grep SigIgn /proc/self/status; yes | head -1")
    finally:
        signal.signal(signal.SIGHUP, before)
    assert held.release("sh") is None
    out, _err = held.proc.communicate(timeout=30)  # `yes` ends on SIGPIPE, so this ends
    mask = _sigign_mask(out)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGHUP):
        assert not mask & (1 << (sig - 1)), f"{sig!r} is ignored in the command"
    assert out.endswith(b"y\n")


def test_the_command_gets_the_environment_it_was_given_and_nothing_more(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    env["LANG"] = "C"  # Python coerces the C locale and sets LC_CTYPE for itself
    held = spawn.start_held(
        ["env"], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert held.release("env") is None
    out, _err = held.proc.communicate(timeout=30)
    got = dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)
    assert "LC_CTYPE" not in got and got["LANG"] == "C"


def test_a_script_whose_interpreter_is_missing_is_named_as_such(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/no/such/interpreter\necho hi\n")
    script.chmod(0o755)
    held = _held(tmp_path, str(script))
    error = held.release(str(script))
    held.proc.communicate(timeout=30)
    assert error == f"cannot run {script}: the interpreter on its #! line was not found"


# -- fork_held: the background worker's way (a fork of the worker, no interpreter) -------
def _forked(tmp_path: Path, *argv: str) -> tuple[spawn.ForkedCommand, Path]:
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return spawn.fork_held(list(argv), env=dict(os.environ), out_fd=fd), out
    finally:
        os.close(fd)


def test_a_forked_held_command_waits_for_its_release_and_keeps_its_identity(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    held, out = _forked(tmp_path, "sh", "-c", f"echo yes > {marker}; echo out; echo err >&2")
    ident = liveness.capture(held.pid)
    assert ident is not None
    time.sleep(0.3)
    assert not marker.exists()
    assert held.release("sh") is None
    assert held.wait() == 0 and marker.exists()
    assert out.read_text() == "out\nerr\n"  # stdout and stderr both to the given file
    assert liveness.capture(held.pid) is None and ident["pid"] == held.pid


def test_a_forked_held_command_runs_in_a_session_of_its_own(tmp_path: Path) -> None:
    held, out = _forked(tmp_path, "sh", "-c", "cat /proc/$$/stat")
    assert held.release("sh") is None
    assert held.wait() == 0
    session = int(out.read_text().rpartition(")")[2].split()[3])  # field 6: the session
    assert session == held.pid != os.getsid(0)


def test_an_abandoned_forked_command_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    held, _out = _forked(tmp_path, "sh", "-c", f"echo yes > {marker}")
    held.abandon()
    assert held.returncode == spawn.NOT_RELEASED and not marker.exists()


def test_a_forked_command_whose_worker_dies_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = (
        "import os, sys, time; from jobgate.proc import spawn; "
        f"h = spawn.fork_held(['sh', '-c', 'echo > {marker}'], env=dict(os.environ), out_fd=2); "
        "print(h.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(Path(spawn.__file__).parents[2])),
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 20
        while liveness.capture(child) is not None:
            assert time.monotonic() < deadline, "the held command outlived its worker"
            time.sleep(0.02)
        assert not marker.exists()
    finally:
        parent.kill()
        parent.wait()


def test_a_forked_command_inherits_no_descriptor_but_its_stdio(tmp_path: Path) -> None:
    """The worker's pipes to its launcher must not leak into the command: a launcher
    reading its report pipe to end of file would wait for the command to end."""
    keep_r, keep_w = os.pipe()
    os.set_inheritable(keep_w, True)  # even one marked inheritable
    try:
        held, out = _forked(tmp_path, "sh", "-c", "ls /proc/self/fd")
        assert held.release("sh") is None
        assert held.wait() == 0
    finally:
        os.close(keep_r)
        os.close(keep_w)
    fds = sorted(int(n) for n in out.read_text().split())
    assert fds[:3] == [0, 1, 2] and len(fds) <= 4  # ls's own directory descriptor at most


def test_a_missing_program_in_a_forked_command_is_reported_on_release(tmp_path: Path) -> None:
    held, _out = _forked(tmp_path, "no-such-program-xyz")
    assert held.release("no-such-program-xyz") == "command not found: no-such-program-xyz"
    assert held.wait() == 127


def test_a_forked_command_gets_default_sigpipe_sigxfsz_and_sighup(tmp_path: Path) -> None:
    import signal

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as the background worker does
    try:
        held, out = _forked(tmp_path, "sh", "-c", "grep SigIgn /proc/self/status; yes | head -1")
    finally:
        signal.signal(signal.SIGHUP, before)
    assert held.release("sh") is None
    assert held.wait() == 0
    mask = _sigign_mask(out.read_bytes())
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGHUP):
        assert not mask & (1 << (sig - 1)), f"{sig!r} is ignored in the command"


def test_a_forked_command_killed_by_a_signal_waits_like_popen(tmp_path: Path) -> None:
    held, _out = _forked(tmp_path, "sh", "-c", "kill -TERM $$")
    assert held.release("sh") is None
    assert held.wait() == -15 and held.wait() == -15  # reaped once, remembered
