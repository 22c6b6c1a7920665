"""Special files never hang or crash a command (issue 14, item 3).

A FIFO, a symlink or a device put where jobgate keeps a state file or a job log: reads
open it without following the symlink or waiting on the FIFO and treat it as unreadable
(the index is rebuilt, the job file skipped, the config refused, the log not shown),
reads are bounded, and appends to a job log land only in a regular file.

Real FIFOs (``os.mkfifo``) and real symlinks to ``/dev/zero``. Every command runs with a
20 s timeout (a hang fails the test instead of the suite) and a 1 GiB address space (an
unbounded read fails with MemoryError instead of eating the machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Env, hook_payload, start_running
from jobgate.state import fileio

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo (POSIX)")

#: how long a command may take before it counts as hung
PROMPT = 20.0
#: address space each command gets: far more than it needs, far less than the machine
ADDRESS_SPACE = 1 << 30


def _limited() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _cli(jg: Env, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``jobgate ARGS`` in the workspace; fails the test if it hangs or crashes."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "jobgate", *args],
            cwd=str(jg.workspace),
            env=jg.env,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PROMPT,
            preexec_fn=_limited,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"jobgate {' '.join(args)} hung (still running after {PROMPT:g}s)")
    assert "Traceback" not in proc.stderr, (args, proc.stderr)
    assert "MemoryError" not in proc.stderr, (args, proc.stderr)
    return proc


def _hook_stop(jg: Env) -> subprocess.CompletedProcess[str]:
    return _cli(jg, "hook", "stop", input=json.dumps(hook_payload(jg, "stop")))


def _finished_job(jg: Env) -> str:
    proc = jg.cli("run", "--name", "done", "--", "sh", "-c", "echo out")
    assert proc.returncode == 0, proc.stderr
    (job,) = jg.cli_json("status", "--all")["jobs"]
    return str(job["id"])


def _fifo(path: Path) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    os.mkfifo(path)


def _zero(path: Path) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to("/dev/zero")


SPECIALS: dict[str, Callable[[Path], None]] = {"fifo": _fifo, "symlink to /dev/zero": _zero}
#: what a command that cannot read the special file says it is
SAYS = {"fifo": "a FIFO, not a regular file", "symlink to /dev/zero": "a symlink (not followed)"}


# -- active.json, finished.jsonl, config.json, job files ------------------------------------
INDEX_READERS: dict[str, Callable[[Env], subprocess.CompletedProcess[str]]] = {
    "status": lambda jg: _cli(jg, "status"),
    "status --all --json": lambda jg: _cli(jg, "status", "--all", "--json"),
    "run --background": lambda jg: _cli(jg, "run", "--background", "--", "true"),
    "hook stop": _hook_stop,
}


@pytest.mark.parametrize("command", sorted(INDEX_READERS))
def test_an_active_json_that_is_a_fifo_is_rebuilt_not_waited_on(jg: Env, command: str) -> None:
    job_id = _finished_job(jg)
    index = jg.state_dir() / "active.json"
    _fifo(index)
    proc = INDEX_READERS[command](jg)
    assert proc.returncode == 0, proc.stderr
    if command != "hook stop":  # a hook's stderr is the user's screen: it may stay quiet
        assert "a FIFO, not a regular file" in proc.stderr, proc.stderr
    assert index.is_file() and not index.is_symlink()  # rebuilt from the job files
    assert job_id in _cli(jg, "status", "--all", "--json").stdout


@pytest.mark.parametrize("special", sorted(SPECIALS))
def test_a_finished_log_that_is_not_a_regular_file_is_rebuilt_not_read(
    jg: Env, special: str
) -> None:
    job_id = _finished_job(jg)
    log = jg.state_dir() / "finished.jsonl"
    SPECIALS[special](log)
    proc = _cli(jg, "status", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    assert job_id in proc.stdout
    assert log.is_file() and not log.is_symlink()
    assert job_id.encode() in log.read_bytes()


def test_a_config_json_that_is_a_fifo_is_refused_not_waited_on(jg: Env) -> None:
    _finished_job(jg)
    _fifo(jg.state_dir() / "config.json")
    for args in (["config", "get"], ["run", "--", "true"]):
        proc = _cli(jg, *args)
        assert proc.returncode != 0
        assert "config.json" in proc.stderr and "a FIFO" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_job_file_that_is_a_fifo_is_skipped_not_waited_on(jg: Env) -> None:
    job_id = _finished_job(jg)
    _fifo(jg.state_dir() / "jobs" / f"{job_id}.json")
    proc = _cli(jg, "status", job_id, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["job"]["id"] == job_id  # from the index's summary
    assert _cli(jg, "result", job_id).returncode in (0, 1)


# -- job logs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("special", sorted(SPECIALS))
def test_a_finished_jobs_log_that_is_not_a_regular_file_hangs_and_crashes_nothing(
    jg: Env, special: str
) -> None:
    job_id = _finished_job(jg)
    SPECIALS[special](jg.state_dir() / "jobs" / f"{job_id}.log")
    for args in (["status"], ["status", job_id], ["status", "--all", "--json"], ["result", job_id]):
        proc = _cli(jg, *args)
        assert proc.returncode == 0, (args, proc.stderr)
    assert "out" in _cli(jg, "result", job_id).stdout  # the output kept in the job file
    for args in (["log", job_id], ["log", "--tail", "5", job_id]):
        proc = _cli(jg, *args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stdout == ""
        (line,) = proc.stderr.strip().splitlines()
        assert "cannot show the log" in line and SAYS[special] in line, line


@pytest.mark.parametrize("special", sorted(SPECIALS))
def test_a_running_jobs_log_that_is_not_a_regular_file_hangs_and_crashes_nothing(
    jg: Env, special: str
) -> None:
    job = start_running(jg, "sleep", "60")
    job_id = str(job["id"])
    SPECIALS[special](jg.state_dir() / "jobs" / f"{job_id}.log")
    for args in (["status"], ["status", job_id], ["status", "--json"]):
        proc = _cli(jg, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert job_id in proc.stdout
    shown = _cli(jg, "log", "--follow", job_id)
    assert shown.returncode == 1 and SAYS[special] in shown.stderr, shown.stderr
    hook = _hook_stop(jg)
    assert hook.returncode == 0, hook.stderr
    # cancel appends its lines to the log: not to a FIFO nobody reads (that open would
    # block), not through the symlink
    assert _cli(jg, "cancel", job_id).returncode == 0


def test_lines_appended_to_a_job_log_never_land_in_the_file_its_symlink_names(
    jg: Env, tmp_path: Path
) -> None:
    """The issue's case: root appended cancel's lines to another user's file."""
    target = tmp_path / "someone-elses-file"
    target.write_bytes(b"theirs\n")
    job = start_running(jg, "sleep", "60")
    job_id = str(job["id"])
    log = jg.state_dir() / "jobs" / f"{job_id}.log"
    log.unlink()
    log.symlink_to(target)
    assert _cli(jg, "cancel", job_id).returncode == 0
    jg.wait_for(job_id, lambda j: j["status"] == "cancelled")
    assert target.read_bytes() == b"theirs\n"
    assert log.is_symlink()  # left as found: not replaced, not followed


def test_append_line_skips_a_fifo_even_when_someone_reads_it(tmp_path: Path) -> None:
    fifo = tmp_path / "job.log"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        fileio.append_line(str(fifo), "jobgate: a line")
        assert os.read(reader, 100) == b""  # the end of an empty FIFO: nothing written
    finally:
        os.close(reader)


def test_append_line_does_not_create_the_file_a_dangling_symlink_names(tmp_path: Path) -> None:
    target = tmp_path / "not-there-yet"
    (tmp_path / "job.log").symlink_to(target)
    fileio.log_line(str(tmp_path / "job.log"), "jobgate: a line")
    assert not target.exists()


# -- bounds -----------------------------------------------------------------------------------
def test_a_json_state_file_over_the_cap_is_too_large_not_read(tmp_path: Path) -> None:
    big = tmp_path / "active.json"
    with open(big, "wb") as fh:
        fh.truncate(fileio.MAX_JSON_BYTES + 1)  # sparse: costs no disk, nor time
    with pytest.raises(fileio.CorruptFile, match="too large"):
        fileio.read_json(str(big))


def _release_later(fifo: Path) -> threading.Timer:
    """A safety net for code that would wait on ``fifo``: a writer opens and closes it in
    2 s, so such code fails the test then instead of hanging until the suite's timeout."""

    def release() -> None:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # nobody waits on it: nothing to release

    timer = threading.Timer(2.0, release)
    timer.start()
    return timer


def test_read_json_says_a_fifo_is_a_fifo_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    os.mkfifo(path)
    timer = _release_later(path)
    try:
        with pytest.raises(fileio.CorruptFile) as caught:
            fileio.read_json(str(path))
    finally:
        timer.cancel()
    assert caught.value.reason == "a FIFO, not a regular file"


def test_read_json_says_a_directory_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    with pytest.raises(fileio.CorruptFile) as caught:
        fileio.read_json(str(tmp_path / "config.json"))
    assert caught.value.reason == "a directory, not a regular file"  # reads after "was"


def test_read_json_follows_no_symlink_even_to_valid_json(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text('{"maxJobs": 3}')
    (tmp_path / "config.json").symlink_to(real)
    with pytest.raises(fileio.CorruptFile, match="symlink"):
        fileio.read_json(str(tmp_path / "config.json"))
    assert fileio.read_json(str(real)) == {"maxJobs": 3}
