"""``jobgate watch`` as a real process: one line per transition, each once; a SIGKILLed
job reported lost within seconds; ``--session`` and ``--json``; it ends with its session
(signal, parent gone, reader gone); never a double announcement with the
UserPromptSubmit hook; no lock held while it waits."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import SRC, Env, kill9, pid_alive, run_hook, start_running

pytestmark = pytest.mark.timeout(30)


class Watch:
    """A running ``jobgate watch``; its stdout lines read by a thread, so no read hangs."""

    def __init__(self, jg: Env, *args: str, env: dict[str, str] | None = None) -> None:
        full = dict(jg.env)
        full.update(env or {})
        self.proc = jg.popen("watch", *args, env=full)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.ready()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def ready(self) -> None:
        """Wait until the watcher has made its baseline look: it then sleeps in select
        (seen in ``/proc/PID/wchan``; where that is hidden, give it a second and a half)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.stderr()
            try:
                with open(f"/proc/{self.proc.pid}/wchan") as fh:
                    where = fh.read()
            except OSError:
                where = "0"
            if "select" in where or "poll" in where:
                return
            if where in ("", "0"):
                time.sleep(1.5)
                return
            time.sleep(0.05)
        raise AssertionError("jobgate watch never settled")

    def next(self, timeout: float = 10) -> str:
        """The next line; fails the test after ``timeout`` seconds."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from jobgate watch in {timeout}s: {self.seen}") from None
        assert line is not None, f"jobgate watch ended: {self.stderr()}"
        self.seen.append(line)
        return line

    def until(self, predicate: Any, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.next(max(0.01, deadline - time.monotonic()))
            if predicate(line):
                return line

    def rest(self, quiet: float = 1.5) -> list[str]:
        """Every line that comes before ``quiet`` seconds pass without one."""
        out = []
        while True:
            try:
                line = self.lines.get(timeout=quiet)
            except queue.Empty:
                return out
            if line is None:
                return out
            self.seen.append(line)
            out.append(line)

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        return code, self.stderr()

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def watches() -> Iterator[list[Watch]]:
    started: list[Watch] = []
    try:
        yield started
    finally:
        for w in started:
            w.close()


def _watch(jg: Env, watches: list[Watch], *args: str, **kw: Any) -> Watch:
    w = Watch(jg, *args, **kw)
    watches.append(w)
    return w


def _events(lines: list[str], job_id: str) -> list[str]:
    return [json.loads(line)["event"] for line in lines if json.loads(line)["job"]["id"] == job_id]


# -- lines ---------------------------------------------------------------------------------
def test_a_job_gets_one_started_and_one_finished_line(jg: Env, watches: list[Watch]) -> None:
    w = _watch(jg, watches, "--json")
    job = jg.start("sh", "-c", "sleep 0.7; exit 3", name="three")
    first = json.loads(w.next())
    assert first["event"] == "started" and first["job"]["id"] == job["id"]
    assert first["job"]["status"] == "running"
    end = json.loads(w.until(lambda line: json.loads(line)["event"] != "started"))
    assert end["event"] == "finished"
    assert end["job"]["id"] == job["id"]
    assert end["job"]["status"] == "failed" and end["job"]["exitCode"] == 3
    w.rest()
    assert _events(w.seen, job["id"]) == ["started", "finished"]
    code, err = w.stop()
    assert code == 0 and "Traceback" not in err


def test_human_lines_name_the_job_its_outcome_and_how_to_read_it(
    jg: Env, watches: list[Watch]
) -> None:
    w = _watch(jg, watches)
    job = jg.start("sh", "-c", "sleep 0.5", name="nap")
    assert w.next().startswith(f"started {job['id']} (nap), pid ")
    assert w.next() == (
        f"finished {job['id']} (nap): completed, exit 0; read it: jobgate result {job['id']}"
    )


def test_a_job_that_ends_between_two_looks_still_gets_both_lines(
    jg: Env, watches: list[Watch]
) -> None:
    w = _watch(jg, watches, "--json")
    job = jg.start("true")
    jg.wait_for(job["id"], lambda j: j["status"] == "completed")
    w.until(lambda line: json.loads(line)["event"] == "finished")
    w.rest()
    assert _events(w.seen, job["id"]) == ["started", "finished"]


def test_jobs_running_when_watch_starts_get_no_started_line(jg: Env, watches: list[Watch]) -> None:
    before = start_running(jg, "sleep", "300")
    w = _watch(jg, watches, "--json")
    after = jg.start("sleep", "300")
    line = json.loads(w.next())
    assert (line["event"], line["job"]["id"]) == ("started", after["id"])
    assert w.rest() == []
    assert _events(w.seen, before["id"]) == []


def test_a_sigkilled_job_is_written_down_and_reported_lost_within_seconds(
    jg: Env, watches: list[Watch]
) -> None:
    job = start_running(jg, "sleep", "300")
    w = _watch(jg, watches, "--json")
    killed = time.monotonic()
    kill9(job["pid"], job["commandPid"])
    line = json.loads(w.next(timeout=8))
    took = time.monotonic() - killed
    assert line["event"] == "lost" and line["job"]["id"] == job["id"], line
    assert took < 5, f"reported after {took:.1f}s"
    assert "lost: worker pid" in line["job"]["errorMessage"]
    # watch wrote it down (read straight from the job file: no other reader ran)
    record = jg.store().read_job(job["id"])
    assert record["status"] == "failed" and record["phase"] == "lost"
    assert w.rest() == []


def test_a_job_recorded_lost_by_another_reader_is_reported_lost_once(
    jg: Env, watches: list[Watch]
) -> None:
    job = start_running(jg, "sleep", "300")
    w = _watch(jg, watches, "--json")
    w.proc.send_signal(signal.SIGSTOP)  # so that the sweep, not watch, notices first
    kill9(job["pid"], job["commandPid"])
    sweep = jg.cli("sweep", "--json")
    w.proc.send_signal(signal.SIGCONT)
    assert sweep.returncode == 0, sweep.stderr
    assert job["id"] in sweep.stdout  # the sweep wrote it down, not watch
    line = json.loads(w.next(timeout=8))
    assert (line["event"], line["job"]["id"]) == ("lost", job["id"])
    w.rest(quiet=3)  # past a probe round: watch finds nothing more to say
    assert _events(w.seen, job["id"]) == ["lost"]


# -- --session --------------------------------------------------------------------------------
def test_session_shows_only_that_sessions_jobs(jg: Env, watches: list[Watch]) -> None:
    by_flag = _watch(jg, watches, "--session", "s1", "--json")
    by_env = _watch(jg, watches, "--json", env={"JOBGATE_SESSION_ID": "s1"})
    every = _watch(jg, watches, "--json")
    theirs = jg.start("sh", "-c", "sleep 0.3", session="s2")
    mine = jg.start("sh", "-c", "sleep 0.6", session="s1")
    jg.wait_for(mine["id"], lambda j: j["status"] == "completed")
    jg.wait_for(theirs["id"], lambda j: j["status"] == "completed")
    by_flag.rest()
    by_env.rest(quiet=0.3)
    every.rest(quiet=0.3)
    # each end is claimed by one of the two session watchers: the other never says it
    ends = _events(by_flag.seen, mine["id"]) + _events(by_env.seen, mine["id"])
    assert sorted(ends) == ["finished", "started", "started"]
    assert _events(by_flag.seen, theirs["id"]) == _events(by_env.seen, theirs["id"]) == []
    assert _events(every.seen, theirs["id"]) == ["started", "finished"]


def test_json_lines_are_one_object_each_with_the_jobs_summary(
    jg: Env, watches: list[Watch]
) -> None:
    w = _watch(jg, watches, "--json", "--session", "s1")
    job = jg.start("sh", "-c", "sleep 0.4; echo out", name="line\nbreak", session="s1")
    started = json.loads(w.next())
    finished = json.loads(w.next())
    for obj in (started, finished):
        assert set(obj) == {"event", "job"}
        assert obj["job"]["id"] == job["id"] and obj["job"]["name"] == "line\nbreak"
        assert obj["job"]["sessionId"] == "s1"
        assert "output" not in obj["job"]  # the summary: heavy keys stay in the job file
    assert finished["job"]["status"] == "completed" and finished["job"]["exitCode"] == 0
    assert finished["job"]["announcedAt"]  # claimed for the session before it was printed
    assert all(line.count("\n") == 0 for line in w.seen)


# -- the session's end -------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_ends_it_cleanly(jg: Env, watches: list[Watch], sig: int) -> None:
    start_running(jg, "sleep", "300")
    w = _watch(jg, watches)
    w.proc.send_signal(sig)
    code = w.proc.wait(timeout=5)
    err = w.stderr()
    assert code == 0, err
    assert "Traceback" not in err and "watch ended: got SIG" in err


def test_it_ends_when_its_parent_dies(jg: Env) -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "p = subprocess.Popen([sys.executable, '-m', 'jobgate', 'watch'],"
            " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(60)\n",
        ],
        cwd=jg.workspace,
        env=jg.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(1.5)  # past its start-up
        assert pid_alive(child)
        kill9(parent.pid)
        parent.wait()
        deadline = time.monotonic() + 5
        while pid_alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pid_alive(child), "watch outlived its parent"
    finally:
        kill9(parent.pid)
        parent.wait()


def test_it_ends_when_nothing_reads_its_output(jg: Env) -> None:
    proc = jg.popen("watch")
    try:
        time.sleep(1.5)  # past its start-up
        assert proc.poll() is None
        assert proc.stdout is not None
        proc.stdout.close()  # the reader is gone, as when Claude Code is killed
        code = proc.wait(timeout=5)
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert code == 0, err
        assert "nothing reads its output" in err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


# -- announcements ----------------------------------------------------------------------------
def _announced_by_hook(jg: Env) -> list[str]:
    proc = run_hook(jg, "user-prompt-submit", session="s1", prompt="next")
    assert proc.returncode == 0, proc.stderr
    if not proc.stdout.strip():
        return []
    text = json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"]
    return [line.split()[1] for line in text.splitlines() if line.startswith("- ")]


def test_a_job_is_announced_once_across_watch_and_the_prompt_hook(
    jg: Env, watches: list[Watch]
) -> None:
    w = _watch(jg, watches, "--json", "--session", "s1")
    jobs = [jg.start("sh", "-c", f"sleep {0.1 * i:.1f}", session="s1") for i in range(6)]
    by_hook: list[str] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # prompts keep coming while the jobs finish
        by_hook += _announced_by_hook(jg)
        if all(jg.job(j["id"])["status"] == "completed" for j in jobs):
            break
    by_hook += _announced_by_hook(jg)
    w.rest()
    by_watch = [json.loads(s)["job"]["id"] for s in w.seen if json.loads(s)["event"] == "finished"]
    assert sorted(by_hook + by_watch) == sorted(j["id"] for j in jobs), (by_hook, by_watch)


def test_watch_never_reports_a_job_already_announced(jg: Env, watches: list[Watch]) -> None:
    told = jg.start("true", session="s1")
    jg.wait_for(told["id"], lambda j: j["status"] == "completed")
    assert _announced_by_hook(jg) == [told["id"]]
    untold = jg.start("true", session="s1")
    jg.wait_for(untold["id"], lambda j: j["status"] == "completed")
    w = _watch(jg, watches, "--json", "--session", "s1")
    # the session's unannounced end is told at once (as the next prompt would), once
    line = json.loads(w.next())
    assert (line["event"], line["job"]["id"]) == ("finished", untold["id"])
    assert w.rest() == []
    assert _announced_by_hook(jg) == []
    every = _watch(jg, watches, "--json")
    assert every.rest() == []  # no session: no replay, and nothing told twice


# -- no lock while idle ------------------------------------------------------------------------
def test_watch_holds_no_lock_while_it_waits(jg: Env, watches: list[Watch]) -> None:
    for _ in range(3):
        start_running(jg, "sleep", "300")
    _watch(jg, watches, "--session", "s1")
    _watch(jg, watches)
    store = jg.store()
    deadline = time.monotonic() + 4  # two probe rounds of both watchers
    taken = 0
    while time.monotonic() < deadline:
        with store.lock(0.2):  # raises LockTimeout if a watcher held it for 0.2 s
            taken += 1
        time.sleep(0.02)
    assert taken > 50


def test_events_picks_the_lines_and_a_bad_list_is_refused(jg: Env, watches: list[Watch]) -> None:
    w = _watch(jg, watches, "--events", "finished,lost", "--interval", "0.2")
    job = jg.start("sh", "-c", "sleep 0.3")
    assert w.next().startswith(f"finished {job['id']}")
    assert w.rest(quiet=0.5) == []
    bad = jg.cli("watch", "--events", "started,done")
    assert bad.returncode == 2 and "expected some of started, finished, lost" in bad.stderr


# -- the plugin monitor ------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "plugins" / "jobgate"
BASE_PATH = "/usr/bin:/bin"


def _monitor() -> dict[str, Any]:
    manifest = json.loads((PLUGIN / ".claude-plugin" / "plugin.json").read_text("utf-8"))
    (entry,) = manifest["experimental"]["monitors"]
    return dict(entry)


def _shim(tmp_path: Path) -> Path:
    """A folder with an executable ``jobgate`` that runs this checkout's jobgate."""
    folder = tmp_path / "shim-bin"
    folder.mkdir()
    exe = folder / "jobgate"
    exe.write_text(f'#!/bin/sh\nPYTHONPATH="{SRC}" exec "{sys.executable}" -m jobgate "$@"\n')
    exe.chmod(0o755)
    return folder


def _run_monitor(jg: Env, path: str, **env: str) -> subprocess.Popen[str]:
    """The monitor as Claude Code 2.1.197 runs it: ``${CLAUDE_PLUGIN_ROOT}`` replaced in
    its command, which a shell runs in the session's folder, stdout a pipe to Claude."""
    full = dict(jg.env)
    full.update(env, PATH=path, CLAUDE_PLUGIN_ROOT=str(PLUGIN))
    command = _monitor()["command"].replace("${CLAUDE_PLUGIN_ROOT}", str(PLUGIN))
    return subprocess.Popen(
        ["sh", "-c", command],
        cwd=jg.workspace,
        env=full,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_plugin_declares_one_monitor_that_runs_the_watch_script() -> None:
    entry = _monitor()
    assert entry["when"] == "always" and entry["name"] and entry["description"]
    assert entry["command"] == '"${CLAUDE_PLUGIN_ROOT}/scripts/watch.sh"'
    script = PLUGIN / "scripts" / "watch.sh"
    assert os.access(script, os.X_OK) and script.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    assert "exec jobgate watch --session" in text and "--events finished,lost" in text


def test_the_monitor_pushes_a_finished_job_of_its_session_once(jg: Env, tmp_path: Path) -> None:
    path = f"{_shim(tmp_path)}:{BASE_PATH}"
    proc = _run_monitor(jg, path, CLAUDE_CODE_SESSION_ID="s1")
    try:
        time.sleep(1.5)  # past its start-up
        theirs = jg.start("true", session="s2")
        mine = jg.start("sh", "-c", "sleep 0.3; exit 4", name="four", session="s1")
        jg.wait_for(mine["id"], lambda j: j["status"] == "failed")
        jg.wait_for(theirs["id"], lambda j: j["status"] == "completed")
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"finished {mine['id']} (four): failed, exit 4"), line
        assert jg.job(mine["id"])["announcedAt"]
        assert _announced_by_hook(jg) == []  # the next prompt does not repeat it
        proc.stdout.close()  # Claude Code is gone
        assert proc.wait(timeout=8) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert not jg.job(theirs["id"]).get("announcedAt")


@pytest.mark.parametrize("case", ["no jobgate on PATH", "no session id"])
def test_the_monitor_pushes_nothing_and_exits_0_without_what_it_needs(
    jg: Env, tmp_path: Path, case: str
) -> None:
    if case == "no jobgate on PATH":
        proc = _run_monitor(jg, BASE_PATH, CLAUDE_CODE_SESSION_ID="s1")
    else:
        proc = _run_monitor(jg, f"{_shim(tmp_path)}:{BASE_PATH}")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("jobgate plugin: ")


def test_the_real_client_validates_the_plugin_with_its_monitor(tmp_path: Path) -> None:
    found = [
        p
        for p in (
            REPO / "tests" / "e2e" / "node_modules" / ".bin" / "claude",
            shutil.which("claude"),
        )
        if p and os.access(p, os.X_OK)
    ]
    if not found:
        pytest.skip("no Claude Code client here (tests/e2e installs the pinned one with npm ci)")
    env = dict(os.environ, HOME=str(tmp_path), DISABLE_AUTOUPDATER="1", DISABLE_TELEMETRY="1")
    env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
    for target in (PLUGIN, REPO):
        proc = subprocess.run(
            [str(found[0]), "plugin", "validate", "--strict", str(target)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def _wakeups(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc/PID/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify, pidfds: Linux")
def test_it_does_not_wake_up_while_nothing_happens(jg: Env, watches: list[Watch]) -> None:
    running = [start_running(jg, "sleep", "300") for _ in range(3)]
    w = _watch(jg, watches)
    before = _wakeups(w.proc.pid)
    time.sleep(3)  # six ticks of 0.5 s, a probe round: none of them needed
    assert _wakeups(w.proc.pid) - before <= 1
    job = jg.start("true")  # a change still wakes it at once
    assert w.next(timeout=5).startswith(f"started {job['id']}")
    kill9(running[0]["pid"], running[0]["commandPid"])  # and so does a death
    assert w.until(lambda line: line.startswith("lost"), timeout=5).startswith(
        f"lost {running[0]['id']}"
    )


def test_a_job_whose_worker_dies_runs_on_until_its_command_dies(
    jg: Env, watches: list[Watch]
) -> None:
    job = start_running(jg, "sleep", "300")
    w = _watch(jg, watches, "--json")
    kill9(job["pid"])  # the worker: its command runs on, so the job does
    assert w.rest(quiet=2.5) == []
    assert jg.store().snapshot().lookup(job["id"])["status"] == "running"  # type: ignore[index]
    kill9(job["commandPid"])
    line = json.loads(w.next(timeout=5))
    assert (line["event"], line["job"]["id"]) == ("lost", job["id"])
