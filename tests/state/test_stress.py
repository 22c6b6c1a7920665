"""A stress of the whole launch path through the CLI: 32 concurrent launchers, each
starting background jobs in one workspace, while launchers and workers are SIGKILLed at
random. Afterwards every job a launcher acknowledged (printed its id, exited 0) is in
the index, every record settles to a final status with its job file agreeing, and no
record names a job that was never acknowledged unless it committed (issue 15)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import psutil

from conftest import Env

LAUNCHERS = 32
JOBS_EACH = 3
FINAL = {"completed", "failed", "cancelled"}

#: one launcher: waits for the go file, then runs `jobgate run --background` JOBS_EACH
#: times, printing each acknowledged id on its own line (flushed), nothing else
_LAUNCHER = """
import os, subprocess, sys, time
go, n = sys.argv[1], int(sys.argv[2])
while not os.path.exists(go):
    time.sleep(0.002)
for _ in range(n):
    proc = subprocess.run(
        [sys.executable, "-m", "jobgate", "run", "--background", "--", "true"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if proc.returncode == 0:
        print(proc.stdout.split()[0], flush=True)
    else:
        print("FAILED " + (proc.stderr.strip().splitlines() or ["?"])[-1], flush=True)
"""


def _workers_of(root: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["environ"]):
        env = proc.info.get("environ") or {}
        if "JOBGATE_WORKER_OF" in env and env.get("JOBGATE_HOME") == root:
            found.append(proc)
    return found


def test_launchers_and_workers_killed_at_random_lose_no_acknowledged_job(jg: Env) -> None:
    rng = random.Random(1515)
    assert jg.cli("config", "set", "maxJobs", "1000").returncode == 0  # retention aside
    go = jg.home.parent / "go"
    launchers = [
        subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(go), str(JOBS_EACH)],
            cwd=str(jg.workspace),
            env=jg.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(LAUNCHERS)
    ]
    doomed = set(rng.sample(range(LAUNCHERS), 6))  # these launchers die mid-run
    killed: set[int] = set()
    killed_workers = 0
    try:
        go.touch()
        deadline = time.monotonic() + 120
        while any(p.poll() is None for p in launchers) and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.05, 0.25))
            for i in list(doomed):
                if launchers[i].poll() is None and rng.random() < 0.3:
                    # the launcher and whatever jobgate command it is running right now
                    for child in psutil.Process(launchers[i].pid).children(recursive=True):
                        try:
                            if "JOBGATE_WORKER_OF" not in child.environ():
                                child.kill()
                        except psutil.Error:  # already gone, or a zombie: nothing to kill
                            pass
                    launchers[i].kill()
                    doomed.discard(i)
                    killed.add(i)
            workers = _workers_of(str(jg.home))
            if workers and rng.random() < 0.5:
                victim = rng.choice(workers)
                try:
                    victim.kill()  # from outside, as the OOM killer would
                    killed_workers += 1
                except psutil.Error:
                    pass
        outputs = [p.communicate(timeout=60)[0] for p in launchers]
    finally:
        for p in launchers:
            if p.poll() is None:
                p.kill()
                p.wait()
    acknowledged = {line for out in outputs for line in out.split("\n") if line.startswith("run-")}
    failures = [
        line
        for i, out in enumerate(outputs)
        if i not in killed  # a killed launcher's own call died with it
        for line in out.split("\n")
        if line.startswith("FAILED")
    ]
    assert failures == []  # nobody refused: no lock timeout under 32 launchers
    assert len(acknowledged) >= (LAUNCHERS - len(killed)) * JOBS_EACH

    # every record settles: finished by its worker, or written down lost once it died
    deadline = time.monotonic() + 90
    while True:
        jobs = jg.cli_json("status", "--all")["jobs"]
        if all(j["status"] in FINAL for j in jobs) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    by_id = {j["id"]: j for j in jobs}
    assert acknowledged <= by_id.keys()
    assert [j["id"] for j in jobs if j["status"] not in FINAL] == []
    assert killed_workers > 0  # the stress really killed workers from outside
    lost = [j for j in jobs if j.get("phase") == "lost"]
    assert all(j["status"] == "failed" and j.get("errorMessage") for j in lost)
    store = jg.store()
    for job_id, summary in by_id.items():
        with open(store.job_path(job_id), encoding="utf-8") as fh:
            full = json.load(fh)
        assert full["status"] == summary["status"], job_id
        if job_id in acknowledged and summary["status"] == "completed":
            assert full["exitCode"] == 0
    # a worker whose job ended exits: none is left behind
    deadline = time.monotonic() + 30
    while _workers_of(str(jg.home)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _workers_of(str(jg.home))
    for proc in left:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    assert left == []
