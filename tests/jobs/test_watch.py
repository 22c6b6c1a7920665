"""``jobgate watch``'s parts: the pure transitions (each at most once per job), and the
watcher with real jobs in a real store — a busy lock leaves a claim pending, a dead job
is written down by the probe — and what tells it to stop (a signal, a reader gone)."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

from conftest import Env, kill9, start_running
from jobgate.claude import announcements
from jobgate.jobs import idle, transitions, watch
from jobgate.jobs.transitions import Seen, look
from jobgate.state import model

pytestmark = pytest.mark.timeout(30)


def _job(job_id: str, status: str, **fields: Any) -> dict[str, Any]:
    job = {"id": job_id, "status": status, "createdAt": f"2026-12-01T00:00:0{job_id[-1]}.000Z"}
    if status != model.QUEUED:
        job["startedAt"] = job["createdAt"]
    job.update(fields)
    return job


def _names(events: list[transitions.Event]) -> list[tuple[str, str]]:
    return [(e.event, e.job["id"]) for e in events]


# -- transitions (pure) --------------------------------------------------------------------
def test_queued_then_running_is_one_started_line() -> None:
    seen, events = look(Seen(), [], [], None)
    assert events == []
    seen, events = look(seen, [_job("j1", "queued")], [], None)
    assert events == []
    seen, events = look(seen, [_job("j1", "running")], [], None)
    assert _names(events) == [("started", "j1")]
    seen, events = look(seen, [_job("j1", "running")], [], None)
    assert events == []


def test_the_baseline_reports_nothing_unless_asked_to_replay_ends() -> None:
    active = [_job("j1", "running")]
    done = [_job("j2", "completed", exitCode=0), _job("j3", "failed", announcedAt="x")]
    seen, events = look(Seen(), active, done, None)
    assert events == []
    _seen, events = look(seen, active, done, None)
    assert events == []  # known: nothing new
    _seen, replayed = look(Seen(), active, done, None, replay=True)
    assert _names(replayed) == [("finished", "j2")]  # unannounced ends only, no started


def test_a_job_seen_only_finished_gets_its_started_then_its_end() -> None:
    seen, _ = look(Seen(), [], [], None)
    _seen, events = look(seen, [], [_job("j1", "completed", exitCode=0)], None)
    assert _names(events) == [("started", "j1"), ("finished", "j1")]
    never_ran = _job("j2", "cancelled")
    del never_ran["startedAt"]
    _seen, events = look(seen, [], [never_ran], None)
    assert _names(events) == [("finished", "j2")]


def test_a_lost_job_is_lost_not_finished_and_its_end_comes_once() -> None:
    seen, _ = look(Seen(), [_job("j1", "running")], [], None)
    lost = _job("j1", "failed", phase=model.PHASE_LOST, errorMessage="lost: pid 1 is gone")
    seen, events = look(seen, [], [lost], None)
    assert _names(events) == [("lost", "j1")]
    relogged = dict(lost, announcedAt="2026-12-01T00:00:09.000Z")
    seen, events = look(seen, [], [relogged, lost], None)
    assert events == []


def test_ends_come_oldest_first_then_starts() -> None:
    seen, _ = look(Seen(), [_job("j1", "running"), _job("j2", "running")], [], None)
    newest_first = [_job("j2", "completed"), _job("j1", "failed")]
    _seen, events = look(seen, [_job("j3", "running")], newest_first, None)
    assert _names(events) == [("finished", "j1"), ("finished", "j2"), ("started", "j3")]


def test_an_announced_end_is_never_reported() -> None:
    seen, _ = look(Seen(), [_job("j1", "running")], [], None)
    _seen, events = look(seen, [], [_job("j1", "completed", announcedAt="x")], None)
    assert events == []


def test_a_session_sees_only_its_background_jobs() -> None:
    mine = _job("j1", "running", sessionId="s1")
    theirs = _job("j2", "running", sessionId="s2")
    in_front = _job("j3", "running", sessionId="s1", foreground=True)
    seen, _ = look(Seen(), [], [], "s1")
    seen, events = look(seen, [mine, theirs, in_front], [], "s1")
    assert _names(events) == [("started", "j1")]
    assert seen.active == {"j1": "running"}


def test_vanished_names_the_active_jobs_a_look_cannot_find() -> None:
    seen, _ = look(Seen(), [_job("j1", "running"), _job("j2", "running")], [], None)
    assert transitions.vanished(seen, [_job("j1", "running")], []) == ["j2"]
    assert transitions.vanished(seen, [], [_job("j2", "failed")]) == ["j1"]


def test_the_memory_of_ended_jobs_is_bounded() -> None:
    seen, _ = look(Seen(), [], [], None)
    many = [_job(f"j{i}", "completed") for i in range(transitions.REMEMBER + 50)]
    seen, events = look(seen, [], list(reversed(many)), None)
    assert len(events) == 2 * len(many)
    assert len(seen.ended) == transitions.REMEMBER
    assert "j0" not in seen.ended and f"j{len(many) - 1}" in seen.ended


# -- the watcher, with real jobs ------------------------------------------------------------
def test_a_busy_lock_leaves_the_claim_pending_until_it_is_free(jg: Env) -> None:
    store = jg.store()
    watcher = watch.Watcher(store, "s1", claim=announcements.claim, lock_timeout=0.2)
    assert watcher.look() == []
    job = jg.start("true", session="s1")
    jg.wait_for(job["id"], lambda j: j["status"] == "completed")
    with store.lock(5):
        events = watcher.look()
    assert [e.event for e in events] == ["started"]
    assert watcher.pending
    assert not jg.job(job["id"]).get("announcedAt")
    events = watcher.look()
    assert _names(events) == [("finished", job["id"])]
    assert events[0].job["announcedAt"]
    assert not watcher.pending
    assert watcher.look() == []


def test_the_probe_writes_a_dead_job_down_and_the_next_look_reports_it(jg: Env) -> None:
    job = start_running(jg, "sleep", "300")
    store = jg.store()
    watcher = watch.Watcher(store)
    assert watcher.look() == []
    assert watcher.probe() is False  # alive: nothing written
    assert not watcher.changed()
    kill9(job["pid"], job["commandPid"])
    deadline = time.monotonic() + 5
    while not watcher.probe():
        assert time.monotonic() < deadline, "the probe never found the job dead"
        time.sleep(0.05)
    assert watcher.changed()
    assert store.read_job(job["id"])["phase"] == model.PHASE_LOST
    assert _names(watcher.look()) == [("lost", job["id"])]


def test_a_claim_never_marks_a_foreground_or_unfinished_job(jg: Env) -> None:
    fg = jg.cli("run", "--session", "s1", "--", "true")
    assert fg.returncode == 0, fg.stderr
    running = start_running(jg, "sleep", "300", session="s1")
    store = jg.store()
    fg_id = next(j["id"] for j in store.snapshot().finished() if j.get("foreground"))
    assert announcements.claim(store, [fg_id, running["id"], "run-nope"], 1.0) == []
    assert not store.read_job(fg_id).get("announcedAt")


# -- when to stop ------------------------------------------------------------------------------
def test_a_signal_wakes_the_stopper_at_once() -> None:
    before = signal.getsignal(signal.SIGHUP)
    with idle.Stopper() as stopper:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGHUP)).start()
        started = time.monotonic()
        assert stopper.wait(10) is True
        assert time.monotonic() - started < 2
        assert stopper.reason == "got SIGHUP"
    assert signal.getsignal(signal.SIGHUP) == before


def test_the_guard_sees_its_pipe_reader_go() -> None:
    r, w = os.pipe()
    try:
        guard = idle.SessionGuard(w)
        assert guard.gone() is None
        os.close(r)
        r = -1
        assert guard.gone() == "nothing reads its output any more"
    finally:
        os.close(w)
        if r >= 0:
            os.close(r)


def test_the_guard_does_not_watch_a_file(tmp_path: Any) -> None:
    with open(tmp_path / "out", "w") as fh:
        guard = idle.SessionGuard(fh.fileno())
        assert guard.gone() is None


def test_the_command_line_knows_the_same_events_and_tick() -> None:
    from jobgate.cli import watch as cli_watch

    assert cli_watch.EVENTS == transitions.EVENTS
    assert cli_watch.TICK == watch.TICK


# -- the loop ----------------------------------------------------------------------------------
class _BaselineTold(watch.Watcher):
    """A watcher that says when its first look, the baseline, is done."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.baseline = threading.Event()

    def look(self) -> list[transitions.Event]:
        events = super().look()
        self.baseline.set()
        return events


@pytest.mark.parametrize("notify", [True, False], ids=["inotify", "stat-every-tick"])
def test_the_loop_reports_a_job_and_stops_on_a_signal(jg: Env, notify: bool) -> None:
    store = jg.store()
    seen: list[tuple[str, str]] = []
    watcher = _BaselineTold(store)

    def later() -> None:
        # started after the baseline look: a job already running then gets no "started"
        assert watcher.baseline.wait(30)
        job = jg.start("sh", "-c", "sleep 0.3")
        jg.wait_for(job["id"], lambda j: j["status"] == "completed")
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=later)
    with idle.Stopper() as stopper:
        helper.start()
        why = watch.run(
            watcher,
            lambda e: seen.append((e.event, e.job["id"])),
            stopper,
            tick=0.1,
            notify=notify,
        )
    helper.join()
    assert why == "got SIGTERM"
    assert [event for event, _ in seen] == ["started", "finished"]


def test_the_notifier_wakes_on_a_change_and_sees_its_folder_go(tmp_path: Any) -> None:
    folder = tmp_path / "state"
    notifier = idle.Notifier()
    if notifier.fd < 0:
        pytest.skip("no inotify here")
    try:
        assert notifier.watch(str(folder)) is False  # not there yet
        folder.mkdir()
        assert notifier.watch(str(folder)) is True
        assert notifier.drain() is False
        (folder / "active.json.tmp").write_text("{}")
        os.replace(folder / "active.json.tmp", folder / "active.json")
        assert notifier.drain() is True
        (folder / "active.json").unlink()
        folder.rmdir()
        assert notifier.drain() is True
        assert notifier.watching is False
    finally:
        notifier.close()


@pytest.mark.skipif(not idle.ExitWatch().available, reason="no pidfds here (Linux 5.3+)")
def test_a_pin_fires_when_its_process_exits_and_moves_to_a_live_one(jg: Env) -> None:
    import select

    job = start_running(jg, "sleep", "300")
    exits = idle.ExitWatch()
    try:
        assert exits.sync([job]) == []
        (fd,) = exits.fds()
        poll = select.poll()
        poll.register(fd, select.POLLIN)
        assert poll.poll(0) == []
        kill9(job["pid"])  # the worker, pinned first
        assert poll.poll(5000)
        assert exits.fired({fd}) == [job["id"]]
        assert exits.sync([job]) == []  # pinned again: on the command, which lives
        assert exits.fds()
        (fd,) = exits.fds()
        poll = select.poll()
        poll.register(fd, select.POLLIN)
        kill9(job["commandPid"])
        assert poll.poll(5000)
        assert exits.fired({fd}) == [job["id"]]
        assert exits.sync([job]) == [job]  # nothing left alive to pin: probe it
        assert exits.sync([]) == [] and exits.fds() == []
    finally:
        exits.close()
