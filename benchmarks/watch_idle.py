"""What ``jobgate watch`` costs while nothing happens: CPU seconds over a minute with ten
running jobs, as a ratio to the CPU one bare interpreter start takes.

Four watchers run side by side beside the same ten jobs (all in one session): the
default (``jobgate watch``: every job), the plugin monitor's (``--session S --events
finished,lost --interval 2``), and the plugin monitor of another session, which has no
running job to probe (a Claude Code session's usual state); and the loop as it runs
where inotify and pidfds are missing (a stat every 0.5 s, a probe every 2 s). Each one's
CPU is read from ``/proc/PID/schedstat`` (nanoseconds on the CPU; psutil's
``cpu_times`` elsewhere) after it has settled, and again a minute later; its wake-ups
are its voluntary context switches over that minute. The bare start is ``python -I -S
-c pass``: its CPU (user + system, from the children's rusage) averaged over 20 runs.

Beside them, over the same minute, the floor: a bare interpreter that only wakes up as
often (``select`` on a pipe with the same timeout, nothing else). On a VM a wake-up
alone costs a Python process 0.1–3 ms of CPU (the most when the machine is otherwise
idle), so the floor says how much of a watcher's cost is its waking, not its work.

    python benchmarks/watch_idle.py [--seconds 60] [--jobs 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python benchmarks/watch_idle.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.environment import jobgate_command

SESSION = "bench-watch"
CONFIGS = {
    "jobgate watch (every job)": [],
    "plugin monitor (--session S --events finished,lost --interval 2)": [
        "--session",
        SESSION,
        "--events",
        "finished,lost",
        "--interval",
        "2",
    ],
    "plugin monitor of a session with no running job": [
        "--session",
        "another-session",
        "--events",
        "finished,lost",
        "--interval",
        "2",
    ],
}


#: the watch loop as on a system without inotify and pidfds (stat every 0.5 s, probe every
#: 2 s), run in a bare process of its own
FALLBACK = (
    "from jobgate.cli import commands\n"
    "from jobgate.jobs import idle, watch\n"
    "import argparse\n"
    "_root, store = commands.open_store(argparse.Namespace())\n"
    "with idle.Stopper() as stopper:\n"
    "    watch.run(watch.Watcher(store), print, stopper, idle.SessionGuard(), notify=False)\n"
)

#: a process that only wakes up every TICK seconds (the floor a watcher cannot go under)
FLOOR = "import os, select\nr, w = os.pipe()\nwhile True:\n    select.select([r], [], [], {tick})\n"
FLOORS = {"floor: bare wake-ups every 0.5 s": 0.5, "floor: bare wake-ups every 2 s": 2.0}


def cpu_ns(pid: int) -> int:
    """Nanoseconds ``pid`` has spent on a CPU so far."""
    try:
        with open(f"/proc/{pid}/schedstat") as fh:
            return int(fh.read().split()[0])
    except OSError:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return int((times.user + times.system) * 1e9)


def wakeups(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("voluntary_ctxt_switches:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def bare_start_cpu(runs: int = 20) -> float:
    """CPU seconds (user + system) of one ``python -I -S -c pass``, averaged."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(runs):
        subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used / runs


def start_jobs(jg: list[str], env: dict[str, str], cwd: str, count: int) -> list[str]:
    ids = []
    run = [*jg, "run", "--background", "--session", SESSION]
    for i in range(count):
        out = subprocess.run(
            [*run, "--name", f"idle{i}", "--", "sleep", "900"],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        )
        ids.append(out.stdout.split()[0])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = subprocess.run(
            [*jg, "status", "--json"], env=env, cwd=cwd, capture_output=True, text=True
        )
        jobs = json.loads(status.stdout)["jobs"]
        if sum(j["status"] == "running" and bool(j.get("commandPid")) for j in jobs) == count:
            return ids
        time.sleep(0.2)
    raise RuntimeError("the jobs never all ran")


def measure(seconds: float, count: int) -> dict[str, Any]:
    jg, jg_desc = jobgate_command()
    tmp = tempfile.mkdtemp(prefix="jobgate-watch-idle-")
    env = dict(os.environ, JOBGATE_HOME=os.path.join(tmp, "home"))
    env.pop("JOBGATE_SESSION_ID", None)
    ws = os.path.join(tmp, "ws")
    os.mkdir(ws)
    watchers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        bare = bare_start_cpu()
        ids = start_jobs(jg, env, ws, count)
        for name, extra in CONFIGS.items():
            watchers[name] = subprocess.Popen(
                [*jg, "watch", *extra],
                env=env,
                cwd=ws,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        watchers["fallback: no inotify, no pidfds (stat every 0.5 s, probe every 2 s)"] = (
            subprocess.Popen(
                [sys.executable, "-c", FALLBACK],
                env=env,
                cwd=ws,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        )
        for name, tick in FLOORS.items():
            watchers[name] = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", FLOOR.format(tick=tick)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        time.sleep(3)  # past their start-up and first probe
        start = {n: (cpu_ns(p.pid), wakeups(p.pid)) for n, p in watchers.items()}
        time.sleep(seconds)
        end = {n: (cpu_ns(p.pid), wakeups(p.pid)) for n, p in watchers.items()}
        rows = []
        for name, proc in watchers.items():
            assert proc.poll() is None, f"{name} ended"
            used = (end[name][0] - start[name][0]) / 1e9 * 60 / seconds
            w0, w1 = start[name][1], end[name][1]
            rows.append(
                {
                    "watcher": name,
                    "cpuSecondsPerMinute": round(used, 4),
                    "ratioToBareStart": round(used / bare, 2) if bare else None,
                    "wakeupsPerMinute": None
                    if w0 is None or w1 is None
                    else round((w1 - w0) * 60 / seconds),
                }
            )
        return {
            "jobs": count,
            "seconds": seconds,
            "bareStartCpuSeconds": round(bare, 4),
            "jobgate": jg_desc,
            "runningJobs": len(ids),
            "watchers": rows,
        }
    finally:
        for proc in watchers.values():
            proc.terminate()
        for proc in watchers.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        _end_jobs(env["JOBGATE_HOME"])
        shutil.rmtree(tmp, ignore_errors=True)


def _end_jobs(home: str) -> None:
    """Kill every process whose environment names this run's state root (the jobs)."""
    import psutil

    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid != os.getpid() and proc.environ().get("JOBGATE_HOME") == home:
                proc.kill()
        except (psutil.Error, OSError):
            continue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0, help="idle time measured")
    parser.add_argument("--jobs", type=int, default=10, help="running jobs watched")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = measure(args.seconds, args.jobs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"jobgate watch idle for {result['seconds']:.0f} s with {result['jobs']} running jobs; "
        f"bare interpreter start: {result['bareStartCpuSeconds'] * 1000:.1f} ms CPU"
    )
    for row in result["watchers"]:
        print(
            f"  {row['watcher']}: {row['cpuSecondsPerMinute'] * 1000:.1f} ms CPU per minute "
            f"({row['ratioToBareStart']}x a bare start), "
            f"{row['wakeupsPerMinute']} wake-ups per minute"
            + (
                f", {row['cpuSecondsPerMinute'] / row['wakeupsPerMinute'] * 1e6:.0f} us each"
                if row["wakeupsPerMinute"]
                else ""
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
