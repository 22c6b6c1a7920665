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
