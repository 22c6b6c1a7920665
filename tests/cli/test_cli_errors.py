"""Bad input changes nothing and gets one clear line on stderr, a non-zero exit and no
traceback; state dirs are private and unsafe ones are refused (issue 2, items 6 and 7).
When the system refuses (read-only, disk full, lock busy) writers exit 1 with one line
naming the file, and readers still answer from a read-only view."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Env, pid_alive, run_hook, start_running
from jobgate.state.workspace import state_dir_name

JOB_COMMANDS = ("status", "result", "log", "wait", "cancel")

#: (ref, words the one error line must contain)
BAD_REFS: list[tuple[str, str]] = [
    ("no-such-job", "no job matches"),
    ("run-", "ambiguous"),  # both jobs' ids start with it
    ("../../etc/passwd", "invalid job reference"),
    ("/etc/passwd", "invalid job reference"),
    ("..", "invalid job reference"),
    ("a/b", "invalid job reference"),
    ("", "invalid job reference"),
]


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and dir under ``root``: content hash (files) and mode."""
    out: dict[str, tuple[str, int]] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = (
                hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else "-"
            )
            out[str(path.relative_to(root))] = (digest, stat.S_IMODE(st.st_mode))
    return out


def assert_one_clear_error(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """Non-zero exit, nothing on stdout, exactly one ``jobgate: error:`` line on stderr
    (with ``--json``: one ``{"error": ..., "exitCode": ...}`` line)."""
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == "", proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    args = proc.args if isinstance(proc.args, list) else []
    if "--json" in args[: args.index("--") if "--" in args else len(args)]:
        error = json.loads(line)
        assert error["exitCode"] == proc.returncode, line
        line = error["error"]
    else:
        assert line.startswith("jobgate: error: "), line
    for word in words:
        assert word in line, (word, line)
    return line


@pytest.fixture
def two_jobs(jg: Env) -> Iterator[Env]:
    """An env with two finished jobs whose ids share the prefix ``run-``."""
    for _ in range(2):
        proc = jg.cli("run", "--", "true")
        assert proc.returncode == 0, proc.stderr
    assert jg.cli("config", "set", "maxJobs", "10").returncode == 0
    ids = [j["id"] for j in jg.cli_json("status", "--all")["jobs"]]
    assert len(ids) == 2 and all(i.startswith("run-") for i in ids)
    yield jg


@pytest.mark.parametrize("command", JOB_COMMANDS)
def test_bad_job_refs_change_nothing_and_get_one_clear_line(two_jobs: Env, command: str) -> None:
    jg = two_jobs
    before = snapshot(jg.home)
    for ref, words in BAD_REFS:
        proc = jg.cli(command, ref, timeout=20)
        assert_one_clear_error(proc, words, repr(ref))
        assert proc.returncode == 2, (command, ref, proc.returncode)
    assert snapshot(jg.home) == before


@pytest.mark.parametrize("command", JOB_COMMANDS)
def test_bad_job_ref_in_a_fresh_workspace_creates_no_state(jg: Env, command: str) -> None:
    for ref in ("no-such-job", "../../etc/passwd"):
        assert_one_clear_error(jg.cli(command, ref, timeout=20))
    assert not jg.home.exists()


def test_unknown_config_key_is_refused_for_get_and_set(two_jobs: Env) -> None:
    jg = two_jobs
    before = snapshot(jg.home)
    assert_one_clear_error(jg.cli("config", "set", "noSuchKey", "1"), "unknown config key")
    assert_one_clear_error(jg.cli("config", "get", "noSuchKey"), "unknown config key")
    assert_one_clear_error(jg.cli("config", "get", "agents.no-such-agent"), "no-such-agent")
    assert snapshot(jg.home) == before


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("maxJobs", "-1"),
        ("maxJobs", "abc"),
        ("maxJobs", "1.5"),
        ("maxJobs", "0"),  # would prune every job the moment it ends, its outcome unread
        ("stopReviewGate", "maybe"),
        ("reviewTimeout", "0"),
        ("reviewTimeout", "nan"),
        ("reviewTimeout", "1e-320"),
        ("reviewTimeout", "0.05"),
        ("maxStopBlocks", "0"),
        ("agents.x", '["no", "placeholder"]'),
    ],
)
def test_bad_config_value_is_refused_and_the_stored_value_kept(
    two_jobs: Env, key: str, value: str
) -> None:
    jg = two_jobs
    before = snapshot(jg.home)
    assert_one_clear_error(jg.cli("config", "set", key, value), f"bad value for {key}")
    assert snapshot(jg.home) == before
    assert jg.cli_json("config", "get", "maxJobs") == {"maxJobs": 10}


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [("maxJobs", "-1", "bad value for maxJobs"), ("noSuchKey", "1", "unknown config key")],
)
def test_bad_config_set_in_a_fresh_workspace_creates_no_state(
    jg: Env, key: str, value: str, words: str
) -> None:
    assert_one_clear_error(jg.cli("config", "set", key, value), words)
    assert not jg.home.exists()


def test_empty_program_name_is_refused_and_records_no_job(two_jobs: Env) -> None:
    jg = two_jobs
    before = snapshot(jg.home)
    for args in (["run", "--", ""], ["run", "--background", "--", "", "x"]):
        assert_one_clear_error(jg.cli(*args), "program name is empty")
    assert snapshot(jg.home) == before


@pytest.mark.parametrize(
    ("args", "points_at"),
    [
        (["status", "--bogus"], "jobgate status --help"),
        (["wait", "x", "--bogus"], "jobgate wait --help"),
        (["config", "set", "maxJobs", "3", "--bogus"], "jobgate config set --help"),
    ],
)
def test_unknown_flag_points_at_the_subcommands_own_help(
    jg: Env, args: list[str], points_at: str
) -> None:
    assert points_at in assert_one_clear_error(jg.cli(*args), "unrecognized arguments")
    assert not jg.home.exists()


@pytest.mark.parametrize(
    "args",
    [["run", "--"], ["run"], ["run", "--background", "--"], ["run", "--background", "--json"]],
    ids=" ".join,
)
def test_run_without_a_command_records_no_job(two_jobs: Env, args: list[str]) -> None:
    jg = two_jobs
    before = snapshot(jg.home)
    assert_one_clear_error(jg.cli(*args), "missing command")
    assert snapshot(jg.home) == before


@pytest.mark.parametrize(
    "args",
    [
        ["--cwd", "{missing}", "status"],
        ["status", "--cwd", "{missing}"],
        ["run", "--cwd", "{missing}", "--", "true"],
        ["run", "--background", "--cwd", "{missing}", "--", "true"],
        ["config", "set", "--cwd", "{missing}", "maxJobs", "3"],
    ],
    ids=lambda a: " ".join(a).replace("{missing}", "MISSING"),
)
def test_cwd_that_does_not_exist_is_a_clear_error(
    two_jobs: Env, tmp_path: Path, args: list[str]
) -> None:
    jg = two_jobs
    missing = str(tmp_path / "no" / "such" / "dir")
    before = snapshot(jg.home)
    argv = [missing if a == "{missing}" else a for a in args]
    assert_one_clear_error(jg.cli(*argv), "does not exist", missing)
    assert snapshot(jg.home) == before


@pytest.mark.parametrize(
    "args",
    [["--cwd", "/etc/passwd", "status"], ["run", "--cwd", "/etc/passwd", "--", "true"]],
    ids=" ".join,
)
def test_cwd_that_is_a_file_says_it_is_not_a_directory(two_jobs: Env, args: list[str]) -> None:
    jg = two_jobs
    before = snapshot(jg.home)
    proc = jg.cli(*args)
    line = assert_one_clear_error(proc, "is not a directory: /etc/passwd")
    assert "does not exist" not in line
    assert proc.returncode == 2  # bad input
    assert snapshot(jg.home) == before


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["no-such-command"],
        ["status", "--no-such-flag"],
        ["wait", "x", "--timeout", "soon"],
        ["cancel", "x", "--grace", "-1"],
        ["log", "x", "--tail", "-3"],
        ["log"],
        ["config"],
        ["config", "set", "maxJobs"],
    ],
    ids=lambda a: " ".join(a) or "nothing",
)
def test_usage_errors_are_one_line_pointing_at_help(jg: Env, args: list[str]) -> None:
    line = assert_one_clear_error(jg.cli(*args))
    assert "--help" in line
    assert not jg.home.exists()


HELP_COMMANDS = [
    [],
    ["run"],
    ["status"],
    ["result"],
    ["log"],
    ["wait"],
    ["cancel"],
    ["sweep"],
    ["config", "get"],
    ["config", "set"],
    ["task"],
    ["hook"],
    ["doctor", "codex"],
]


@pytest.mark.parametrize("args", HELP_COMMANDS, ids=lambda a: " ".join(a) or "jobgate")
def test_help_prints_usage_with_an_example_and_exits_zero(jg: Env, args: list[str]) -> None:
    proc = jg.cli(*args, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: jobgate")
    assert proc.stderr == ""
    assert re.search(r"^examples?:$", proc.stdout, re.MULTILINE), proc.stdout
    assert "\n  jobgate " in proc.stdout  # the example is a command line


# -- permissions --------------------------------------------------------------------------------
def _state_dir_path(jg: Env) -> Path:
    return jg.home / state_dir_name(os.path.realpath(jg.workspace))


STATE_COMMANDS: list[list[str]] = [
    ["status"],
    ["status", "--json"],
    ["run", "--", "true"],
    ["run", "--background", "--", "true"],
    ["config", "get"],
    ["config", "set", "maxJobs", "3"],
    ["sweep"],
]


def test_state_dir_that_is_a_symlink_is_refused(jg: Env, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    jg.home.mkdir(mode=0o700)
    _state_dir_path(jg).symlink_to(elsewhere, target_is_directory=True)
    for args in STATE_COMMANDS:
        proc = jg.cli(*args)
        assert_one_clear_error(proc, "symlink")
        assert proc.returncode == 1, args  # the system refusing, not a call made wrong
    assert list(elsewhere.iterdir()) == []


def test_state_dir_owned_by_another_user_is_refused(jg: Env) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a dir to another user (chown to uid 65534) needs root")
    assert jg.cli("config", "set", "maxJobs", "3").returncode == 0
    state_dir = jg.state_dir()
    os.chown(state_dir, 65534, 65534)
    before = snapshot(jg.home)
    for args in STATE_COMMANDS:
        proc = jg.cli(*args)
        assert_one_clear_error(proc, "owned by uid 65534")
        assert proc.returncode == 1, args
    assert snapshot(jg.home) == before


def test_a_relative_jobgate_home_is_refused_instead_of_landing_in_the_checkout(jg: Env) -> None:
    sub = jg.workspace / "sub"
    sub.mkdir()
    for cwd in (jg.workspace, sub):
        proc = jg.cli("run", "--", "true", env={"JOBGATE_HOME": "state-here"}, cwd=cwd)
        assert_one_clear_error(proc, "JOBGATE_HOME must be an absolute path", "state-here")
        assert proc.returncode == 1
    assert not (jg.workspace / "state-here").exists()
    assert not (sub / "state-here").exists()


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000 for the test (and the CLI it runs): only jobgate's own modes count."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_created_dirs_are_0700_and_files_0600(jg: Env, open_umask: None) -> None:
    brief = jg.start("sh", "-c", "echo secret output")
    jg.wait_for(brief["id"], lambda j: j["status"] == "completed")
    assert jg.cli("run", "--", "sh", "-c", "echo more").returncode == 0
    assert jg.cli("config", "set", "maxJobs", "5").returncode == 0
    state_dir = jg.state_dir()
    names = ("active.json", "finished.jsonl", "config.json", "state.lock")
    files = [state_dir / n for n in names]
    files += sorted((state_dir / "jobs").glob("*.json"))
    files += sorted((state_dir / "jobs").glob("*.log"))
    assert len(files) == 4 + 2 + 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in (jg.home, state_dir, state_dir / "jobs"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_reading_commands_in_a_fresh_workspace_create_no_state(jg: Env) -> None:
    for args in (["status"], ["status", "--json"], ["config", "get"], ["sweep"]):
        proc = jg.cli(*args)
        assert proc.returncode == 0, (args, proc.stderr)
    assert_one_clear_error(jg.cli("result"), "no finished job")
    assert_one_clear_error(jg.cli("wait"), "no active job")
    assert not jg.home.exists()


# -- the system refuses: read-only, disk full, lock busy (exit 1, not 2) ----------------
class Mounts:
    """Mounts for one test, all undone at its end: a small tmpfs, a read-only view."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.points: list[Path] = []

    def _mount(self, *args: str) -> None:
        proc = subprocess.run(["mount", *args], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount here (needs root): {proc.stderr.strip()}")

    def tmpfs(self, where: Path, size: str = "512k") -> None:
        where.mkdir(mode=0o700, exist_ok=True)
        self._mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where))
        self.points.append(where)

    def readonly_view(self, jg: Env) -> Path:
        """A read-only bind mount of ``jg``'s state root, made ``jg``'s state root for
        the CLI; jobs already running keep writing through the writable original."""
        view = self.tmp_path / "read-only-state-root"
        view.mkdir()
        self._mount("--bind", str(jg.home), str(view))
        self.points.append(view)
        self._mount("-o", "remount,bind,ro", str(view))
        jg.env["JOBGATE_HOME"] = str(view)
        return view


@pytest.fixture
def mounts(jg: Env, tmp_path: Path) -> Iterator[Mounts]:
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("needs Linux mount(8) to make a read-only or full state root")
    m = Mounts(tmp_path)
    try:
        yield m
    finally:
        for point in reversed(m.points):
            # lazy: a job's process killed only by jg's teardown may still hold its log
            subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)


def _dead_running_job(jg: Env, session: str | None = None) -> dict[str, Any]:
    """A job recorded ``running`` whose worker and command were SIGKILLed from outside."""
    job = start_running(jg, "sleep", "300", session=session)
    for pid in (job["pid"], job["commandPid"]):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(job["pid"]) or pid_alive(job["commandPid"]):
        assert time.monotonic() < deadline, "the killed job's processes did not die"
        time.sleep(0.02)
    return job


def _one_readonly_warning(stderr: str, lock: Path) -> None:
    warnings = [ln for ln in stderr.splitlines() if ln.startswith("jobgate: warning: ")]
    assert len(warnings) == 1, stderr
    assert f"Read-only file system ({lock})" in warnings[0]
    assert "Traceback" not in stderr


def test_readers_on_a_read_only_state_dir_show_a_dead_job_lost_and_warn_once(
    jg: Env, mounts: Mounts
) -> None:
    dead = _dead_running_job(jg)
    lock = mounts.readonly_view(jg) / jg.state_dir().name / "state.lock"
    job_id = dead["id"]
    cases: list[tuple[list[str], int, str]] = [
        (["status"], 0, "failed (lost)"),
        (["status", "--json"], 0, '"phase":"lost"'),
        (["status", job_id], 0, "phase:       lost"),
        (["result", job_id], 1, "error: lost: worker pid"),
        (["log", job_id], 0, "jobgate: running, command pid"),
        (["wait", job_id], 1, "failed (lost)"),
        (["wait", job_id, "--json"], 1, '"phase": "lost"'),
    ]
    for args, code, shown in cases:
        proc = jg.cli(*args)
        assert proc.returncode == code, (args, proc.stderr)
        assert shown in proc.stdout, (args, proc.stdout)
        _one_readonly_warning(proc.stderr, lock)
    # nothing was written: the index on disk still says running
    active = json.loads((jg.state_dir() / "active.json").read_text())
    assert [j["status"] for j in active["jobs"] if j["id"] == job_id] == ["running"]


def test_wait_on_a_read_only_state_dir_warns_once_however_often_it_polls(
    jg: Env, mounts: Mounts
) -> None:
    live = start_running(jg, "sleep", "300")
    _dead_running_job(jg)  # found dead (and not recordable) on every poll
    lock = mounts.readonly_view(jg) / jg.state_dir().name / "state.lock"
    proc = jg.cli("wait", live["id"], "--timeout", "1")
    assert proc.returncode == 124, proc.stderr
    _one_readonly_warning(proc.stderr, lock)
    assert f"timed out waiting for {live['id']}" in proc.stderr


def test_stop_hook_on_a_read_only_state_dir_never_names_a_dead_job(jg: Env, mounts: Mounts) -> None:
    live = start_running(jg, "sleep", "300", session="s1")
    dead = _dead_running_job(jg, session="s1")
    lock = mounts.readonly_view(jg) / jg.state_dir().name / "state.lock"
    proc = run_hook(jg, "stop", session="s1")
    assert proc.returncode == 0
    note = json.loads(proc.stdout)
    assert "decision" not in note and live["id"] in note["systemMessage"]
    assert dead["id"] not in note["systemMessage"]
    assert live["id"] in proc.stderr
    assert dead["id"] not in proc.stderr
    assert "fails open" not in proc.stderr
    _one_readonly_warning(proc.stderr, lock)


def test_a_read_only_state_dir_with_an_unreadable_index_is_read_from_the_job_files(
    jg: Env, mounts: Mounts
) -> None:
    dead = _dead_running_job(jg)
    (jg.state_dir() / "active.json").write_bytes(b"{broken")
    view = mounts.readonly_view(jg)
    proc = jg.cli("status", "--json")
    assert proc.returncode == 0, proc.stderr
    (job,) = json.loads(proc.stdout)["jobs"]
    assert (job["id"], job["phase"]) == (dead["id"], "lost")
    warnings = proc.stderr.splitlines()
    assert len(warnings) == 2, proc.stderr  # cannot write; the index is unreadable
    assert all(w.startswith("jobgate: warning: ") for w in warnings)
    assert "Read-only file system" in warnings[0]
    assert "active.json is unreadable" in warnings[1]
    assert (view / jg.state_dir().name / "active.json").read_bytes() == b"{broken"


def test_writers_on_a_read_only_state_dir_exit_1_naming_the_file(
    jg: Env, mounts: Mounts, tmp_path: Path
) -> None:
    dead = _dead_running_job(jg)
    state_dir = mounts.readonly_view(jg) / jg.state_dir().name
    lock = state_dir / "state.lock"
    for args, first_write in (
        (["run", "--", "true"], f"({lock})"),
        # a background start writes the job's log first, before it spawns or locks
        (["run", "--background", "--", "true"], f"({state_dir / 'jobs'}/run-"),
        (["config", "set", "maxJobs", "3"], f"({lock})"),
        (["sweep"], f"({lock})"),  # its point is to write the dead job down
        (["cancel", dead["id"]], f"({lock})"),
    ):
        proc = jg.cli(*args)
        assert_one_clear_error(proc, f"Read-only file system {first_write}")
        assert proc.returncode == 1, (args, proc.stderr)
    other = tmp_path / "other-workspace"
    other.mkdir()
    proc = jg.cli("run", "--", "true", cwd=other)
    assert_one_clear_error(proc, "cannot create state dir", "Read-only file system")
    assert proc.returncode == 1


def test_a_full_disk_exits_1_naming_the_file_and_leaves_no_temp_file(
    jg: Env, mounts: Mounts
) -> None:
    mounts.tmpfs(jg.home)
    assert jg.cli("run", "--", "true").returncode == 0
    before = [j["id"] for j in jg.cli_json("status")["jobs"]]
    with open(jg.home / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    jobs_dir = jg.state_dir() / "jobs"
    for args in (["run", "--", "true"], ["config", "set", "maxJobs", "3"]):
        proc = jg.cli(*args)
        line = assert_one_clear_error(proc, "No space left on device (")
        assert proc.returncode == 1, (args, proc.stderr)
        named = line.split("(", 1)[1].rstrip(")")
        assert named.startswith(str(jg.state_dir())), line
        assert not os.path.basename(named).endswith(".tmp"), line  # the real file
    assert not [p for p in jg.home.rglob("*.tmp")]
    assert [j["id"] for j in jg.cli_json("status")["jobs"]] == before
    assert jobs_dir.is_dir()


def test_a_busy_lock_exits_1_naming_the_lock(
    jg: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobgate.cli import main as cli
    from jobgate.state.store import Store

    store = jg.store()
    monkeypatch.setenv("JOBGATE_HOME", str(jg.home))
    monkeypatch.setattr(Store.lock, "__defaults__", (0.2,))  # not the default 30 s
    with store.lock():  # a real flock: a second open file description must wait
        code = cli.main(["config", "set", "--cwd", str(jg.workspace), "maxJobs", "3"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err == f"jobgate: error: timed out after 0.2s waiting for the lock {store.lock_path}\n"
