"""``jobgate watch`` as a real process: one line per transition, each once; a SIGKILLed
job reported lost within seconds; ``--session`` and ``--json``; it ends with its session
(signal, parent gone, reader gone); never a double announcement with the
UserPromptSubmit hook; no lock held while it waits."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import Env, kill9, pid_alive, run_hook, start_running

pytestmark = pytest.mark.timeout(30)


class Watch:
    """A running ``jobgate watch``; its stdout lines read by a thread, so no read hangs."""

    def __init__(self, jg: Env, *args: str, env: dict[str, str] | None = None) -> None:
        full = dict(jg.env)
        full.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobgate", "watch", *args],
            cwd=jg.workspace,
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
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
    kill9(job["pid"], job["commandPid"])
    sweep = jg.cli("sweep", "--json")
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
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobgate", "watch"],
        cwd=jg.workspace,
        env=jg.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
