"""The queue's invariants under load: 8 concurrent writers (jobgate commands queueing
jobs and reading the state), some SIGKILLed at random moments, and workers killed at
random. Never more than maxParallel of a group hold a slot, not in the records and not
in the real processes; once a reader looked, no free slot with a runnable job queued;
in the end every job ran or was written down, none stranded."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from typing import Any

import psutil

from conftest import Env
from jobgate.jobs import queue
from jobgate.state import model

WRITERS = 8
LOAD_SECONDS = 15.0
LIMITS = {"default": 2, "b": 1}


def _slot_holders(jobs: list[dict[str, Any]], now: float) -> dict[str, int]:
    used: dict[str, int] = {}
    for job in jobs:
        if queue.holds_slot(job, now) and queue.is_queue_job(job):
            used[queue.group_of(job)] = used.get(queue.group_of(job), 0) + 1
    return used


def _live_commands(ids: dict[str, str]) -> dict[str, int]:
    """Per group: how many distinct queue jobs have a live command process now."""
    seen: dict[str, set[str]] = {}
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] != "sleep" or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            job_id = proc.environ().get(model.JOB_ENV)
        except psutil.Error:
            continue
        if job_id in ids:
            seen.setdefault(ids[job_id], set()).add(job_id)
    return {g: len(s) for g, s in seen.items()}


def test_queue_invariants_hold_under_concurrent_writers_and_kills(jg: Env) -> None:
    assert jg.cli("config", "set", "maxParallel", str(LIMITS["default"])).returncode == 0
    assert jg.cli("config", "set", "groups.b.maxParallel", str(LIMITS["b"])).returncode == 0
    store = jg.store()
    rng = random.Random(11)
    stop = threading.Event()
    worst: dict[str, int] = {}
    worst_live: dict[str, int] = {}
    groups: dict[str, str] = {}
    errors: list[str] = []

    def observe() -> None:
        while not stop.is_set():
            try:
                active = store.snapshot().active
            except Exception as exc:  # a torn read would be a defect too
                errors.append(repr(exc))
                continue
            for job in active:
                groups[str(job["id"])] = queue.group_of(job)
            for g, n in _slot_holders(active, time.time()).items():
                worst[g] = max(worst.get(g, 0), n)
            for g, n in _live_commands(dict(groups)).items():
                worst_live[g] = max(worst_live.get(g, 0), n)
            time.sleep(0.02)

    def write(me: int) -> None:
        r = random.Random(me)
        deadline = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < deadline:
            roll = r.random()
            if roll < 0.6:
                group = ["--group", "b"] if r.random() < 0.4 else []
                args = ["run", "--queue", *group, "--", "sleep", f"{r.uniform(0.1, 0.6):.2f}"]
            else:
                args = ["status"]
            proc = jg.popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.random() < 0.25:  # SIGKILLed at a random moment of its work
                time.sleep(r.uniform(0.0, 0.4))
                proc.send_signal(signal.SIGKILL)
            proc.wait()

    def kill_workers() -> None:
        deadline = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.3, 1.0))
            try:
                running = [j for j in store.snapshot().active if j.get("status") == "running"]
            except Exception:
                continue
            if running:
                victim = rng.choice(running)
                for pid in (victim.get("pid"), victim.get("commandPid")):
                    if isinstance(pid, int):
                        try:
                            psutil.Process(pid).send_signal(signal.SIGKILL)
                        except psutil.Error:
                            pass

    observer = threading.Thread(target=observe)
    observer.start()
    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    threads.append(threading.Thread(target=kill_workers))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # once a reader looked: no group has a free slot while a runnable job of it waits.
    # Workers still end jobs after the writers stopped (each then starts the next one in
    # a commit of its own), so a slot seen free just after a look may have been freed
    # after it: look again, a few times; a reader that fills no slot fails every time.
    for _look in range(5):
        assert jg.cli("status").returncode == 0
        now = time.time()
        active = store.snapshot().active
        plan = queue.plan(active, lambda _i: None, queue.Limits(2, {"b": 1}), now)
        # only a claim of a killed claimer may hold one back, briefly
        held = [j for j in active if j.get("claim") and not queue.has_process(j)]
        if not plan.start or held:
            break
        time.sleep(0.2)
    assert not plan.start or held, (
        f"free slot with runnable jobs after a reader looked: {plan.start}"
    )

    # drain: readers alone bring every job to an end (expired claims included)
    deadline = time.monotonic() + 60
    while store.snapshot().active:
        assert time.monotonic() < deadline, store.snapshot().active
        jg.cli("status")
        time.sleep(0.2)
    stop.set()
    observer.join()

    assert not errors
    assert worst, "the observer saw no queued job hold a slot"
    for g, n in worst.items():
        assert n <= LIMITS[g], (g, n, worst)
    for g, n in worst_live.items():
        assert n <= LIMITS[g], (g, n, worst_live)
    finished = store.snapshot().finished()
    assert len(finished) >= 10, "too few jobs ran to mean anything"
    completed = [j for j in finished if j["status"] == "completed"]
    assert completed
    for job in finished:
        assert job["status"] in ("completed", "failed"), job
        if job["status"] == "failed":
            assert job["phase"] in ("lost", "failed"), job
