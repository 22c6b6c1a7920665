"""Shared fixtures: an isolated state root per test, a CLI runner, and reaping of every
process a test (or the jobs it started) leaves behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

#: the `jobgate doctor codex` tests' harness: its fixtures (procs, root) for every test module
pytest_plugins = ["codex_plugin_fixtures"]

SRC = str(Path(__file__).resolve().parent.parent / "src")


class Env:
    """An isolated jobgate environment: its own state root and workspace dir."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "state-root"
        self.workspace = tmp_path / "ws"
        self.workspace.mkdir()
        self.env = dict(os.environ)
        self.env["JOBGATE_HOME"] = str(self.home)
        self.env.pop("JOBGATE_SESSION_ID", None)
        self.env.pop("CLAUDE_PLUGIN_DATA", None)
        self.env["PYTHONPATH"] = SRC + os.pathsep + self.env.get("PYTHONPATH", "")

    def popen(self, *args: str, **kw: Any) -> subprocess.Popen[str]:
        """Start ``python -m jobgate ARGS`` in the workspace (stdin closed, stdout and
        stderr piped, text); ``kw`` overrides any of that. The caller reaps it."""
        options: dict[str, Any] = dict(
            cwd=self.workspace,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        options.update(kw)
        return subprocess.Popen([sys.executable, "-m", "jobgate", *args], **options)

    def cli(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m jobgate ARGS`` in the workspace; stdout/stderr captured."""
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        return subprocess.run(
            [sys.executable, "-m", "jobgate", *args],
            cwd=str(cwd or self.workspace),
            env=full_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def cli_json(self, *args: str, **kw: Any) -> Any:
        proc = self.cli(*args, "--json", **kw)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def start(
        self, *command: str, name: str | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Start a background job; returns the ``--json`` brief (id, status, pid...)."""
        args = ["run", "--background", "--json"]
        if name:
            args += ["--name", name]
        if session:
            args += ["--session", session]
        proc = self.cli(*args, "--", *command)
        assert proc.returncode == 0, proc.stderr
        brief: dict[str, Any] = json.loads(proc.stdout)
        return brief

    def job(self, job_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.cli_json("status", job_id)["job"]
        return data

    def wait_for(
        self, job_id: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        """Poll ``status JOB`` until ``predicate(job)``; fail the test on timeout."""
        deadline = time.monotonic() + timeout
        job = self.job(job_id)
        while not predicate(job):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on {job_id}: {job}")
            time.sleep(0.1)
            job = self.job(job_id)
        return job

    def store(self) -> Any:
        """A :class:`jobgate.state.store.Store` for this env's workspace (created)."""
        from jobgate.state.store import Store
        from jobgate.state.workspace import state_dir_name

        root = os.path.realpath(self.workspace)
        store = Store(str(self.home / state_dir_name(root)), root)
        store.ensure()
        return store

    def state_dir(self) -> Path:
        dirs = [p for p in self.home.iterdir() if p.is_dir()] if self.home.exists() else []
        assert len(dirs) == 1, dirs
        return dirs[0]


def _jobgate_processes_under(root: str) -> list[psutil.Process]:
    """Processes whose command line or environment mention ``root`` (our test state)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if root in cmdline:
                found.append(proc)
                continue
            if proc.pid == os.getpid():
                continue
            env = proc.environ()
            if env.get("JOBGATE_HOME") == root:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


@pytest.fixture
def jg(tmp_path: Path) -> Iterator[Env]:
    """An isolated jobgate env; every process it started is killed afterwards."""
    env = Env(tmp_path)
    try:
        yield env
    finally:
        reap_marked(str(env.home))


@pytest.fixture
def store(tmp_path: Path) -> Any:
    """A store whose state dir exists, in the test's own folder (no CLI, no env)."""
    from jobgate.state.store import Store

    s = Store(str(tmp_path / "root" / "ws-0123456789abcdef"), str(tmp_path))
    s.ensure()
    return s


def reap_marked(root: str) -> None:
    """Kill every process of this test's jobs; again, a few times, for processes that a
    dying one was still starting (a `jobgate run --background` inside a job)."""
    for _round in range(5):
        if not _reap_once(root):
            return
        time.sleep(0.2)


def _reap_once(root: str) -> bool:
    me = psutil.Process()
    mine = {p.pid for p in me.children(recursive=True)}
    procs = _jobgate_processes_under(root)
    jobs_env: list[psutil.Process] = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid in mine or proc.pid == me.pid:
                continue
            if "JOBGATE_JOB_ID" in proc.environ() and proc.environ().get("JOBGATE_HOME") == root:
                jobs_env.append(proc)
        except (psutil.Error, OSError):
            continue
    found = [p for p in procs + jobs_env if _not_zombie(p)]
    for proc in found:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    children = [c for c in me.children(recursive=True) if _not_zombie(c)]
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(me.children(recursive=True), timeout=3)
    return bool(found or children)


def _not_zombie(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def portable() -> Iterator[Any]:
    """The portable (psutil) backend in this process, as macOS runs it, whichever backend
    the suite runs on; the one chosen at import is put back afterwards. Yields the
    :mod:`jobgate.proc.liveness` module."""
    from jobgate.proc import _portable, liveness

    previous = liveness.use_backend(_portable)
    try:
        yield liveness
    finally:
        liveness.use_backend(previous)


def native_only(why: str) -> pytest.MarkDecorator:
    """Skip a test on the portable backend (``JOBGATE_PLATFORM=portable``, the psutil
    path macOS uses), saying ``why`` it needs Linux's own (``/proc``) backend. Every such
    skip is listed in docs/platforms.md."""
    from jobgate.proc import liveness

    return pytest.mark.skipif(
        liveness.is_portable(), reason=f"needs the Linux /proc backend: {why}"
    )


def can_force_pid_reuse() -> str | None:
    """None if this machine lets a test choose the next pid, else the reason it cannot."""
    if not sys.platform.startswith("linux"):
        return "pid reuse needs Linux /proc/sys/kernel/ns_last_pid"
    if os.geteuid() != 0:
        return "forcing pid reuse needs root (writes /proc/sys/kernel/ns_last_pid)"
    if not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK):
        return "/proc/sys/kernel/ns_last_pid is not writable here"
    return None


def spawn_with_pid(pid: int, argv: list[str], attempts: int = 50) -> subprocess.Popen[bytes]:
    """Start ``argv`` as a process whose pid is exactly ``pid`` (real pid reuse).

    Writes ``pid - 1`` to ``/proc/sys/kernel/ns_last_pid`` right before forking; other
    processes forking at the same moment can steal the pid, so it retries.
    """
    for _ in range(attempts):
        with open("/proc/sys/kernel/ns_last_pid", "w") as fh:
            fh.write(str(pid - 1))
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    raise RuntimeError(f"could not get pid {pid} after {attempts} attempts")


def dead_identity() -> dict[str, Any]:
    """The identity of a process that has exited and been reaped (its pid is free)."""
    from jobgate.proc import liveness

    proc = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
    ident = liveness.capture(proc.pid)
    assert ident is not None
    proc.kill()
    proc.wait()
    return ident


# -- Claude Code hook helpers (tests/test_hook*.py, tests/test_plugin.py) ----------------
#: a program whose main thread exits while another thread runs on (state Z, threads > 1)
MAIN_THREAD_EXITS = (
    "import ctypes, threading, time\n"
    "threading.Thread(target=time.sleep, args=(60,)).start()\n"
    "print('ready', flush=True)\n"
    "ctypes.CDLL(None).pthread_exit(None)\n"
)


HOOK_EVENT_NAMES = {
    "stop": "Stop",
    "session-start": "SessionStart",
    "session-end": "SessionEnd",
    "user-prompt-submit": "UserPromptSubmit",
}


def hook_payload(env: Env, event: str, session: str | None = "s1", **fields: Any) -> dict[str, Any]:
    """A payload like the one Claude Code sends to ``event``'s command hook."""
    payload: dict[str, Any] = {
        "cwd": str(env.workspace),
        "hook_event_name": HOOK_EVENT_NAMES[event],
        "transcript_path": os.devnull,
    }
    if session is not None:
        payload["session_id"] = session
    payload.update(fields)
    return payload


def run_hook(
    env: Env,
    event: str,
    payload: Any = None,
    *,
    session: str | None = "s1",
    extra_env: dict[str, str] | None = None,
    timeout: float = 60,
    **fields: Any,
) -> subprocess.CompletedProcess[str]:
    """``jobgate hook EVENT`` with ``payload`` (default: :func:`hook_payload`) on stdin;
    a ``str`` payload is sent as is."""
    if payload is None:
        payload = hook_payload(env, event, session, **fields)
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return env.cli("hook", event, input=data, env=extra_env, timeout=timeout)


def start_running(
    env: Env, *command: str, session: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """Start a background job and wait until its command runs (``commandPid`` known)."""
    brief = env.start(*command, session=session, name=name)
    return env.wait_for(
        brief["id"], lambda j: j["status"] == "running" and bool(j.get("commandPid"))
    )


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_box(box: subprocess.Popen[Any]) -> None:
    """End an ``unshare -p -f`` started by a test: its child is pid 1 of the new pid
    namespace, which ignores every signal from outside but SIGKILL, and would outlive
    the ``unshare`` process."""
    try:
        inside = psutil.Process(box.pid).children(recursive=True)
    except psutil.Error:
        inside = []
    for proc in inside:
        try:
            proc.kill()
        except psutil.Error:
            pass
    box.kill()
    box.wait()


def started_job_named(env: Env, name: str, *, cwd: str | Path | None = None) -> dict[str, Any]:
    """Poll ``status --all`` (of ``cwd``'s workspace) until the job called ``name`` has a
    running command; fail the test after 30 s. For jobs a test starts indirectly (from
    inside another job, a subreaper, a pid namespace)."""
    args = (
        ["status", "--all", "--json"]
        if cwd is None
        else ["--cwd", str(cwd), "status", "--all", "--json"]
    )
    deadline = time.monotonic() + 30
    while True:
        proc = env.cli(*args)
        jobs = json.loads(proc.stdout)["jobs"] if proc.returncode == 0 else []
        found = [j for j in jobs if j.get("name") == name and j.get("commandPid")]
        if found:
            job: dict[str, Any] = found[0]
            return job
        assert time.monotonic() < deadline, f"the job {name!r} never started"
        time.sleep(0.1)


def blocked_on(*paths: str) -> int:
    """How many lock requests on these files wait right now, flock or record locks alike
    (Linux ``/proc/locks``: a blocked request is a ``->`` line naming the file's inode)."""
    inodes = set()
    for path in paths:
        try:
            inodes.add(os.stat(path).st_ino)
        except FileNotFoundError:
            continue
    count = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" not in fields:
            continue
        where = fields[fields.index("->") + 5]  # after type, advisory, mode, pid
        if int(where.rsplit(":", 1)[1]) in inodes:
            count += 1
    return count


def kill9(*pids: int) -> None:
    """SIGKILL each pid that still exists (from outside, as the OOM killer would)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def assert_fail_open(proc: subprocess.CompletedProcess[str]) -> str:
    """A hook that failed open: exit 0, nothing on stdout, one line (no traceback) on
    stderr, which is returned."""
    assert proc.returncode == 0
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]
