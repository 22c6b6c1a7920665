#!/usr/bin/env python3
"""jobgate benchmarks: one run, one machine, every number next to a bare interpreter start.

Usage::

    python benchmarks/bench.py [--quick] [--json] [--imports [--markdown]] [--rounds N]

Measures the jobgate installed in the *running* interpreter's environment: the console
script next to ``sys.executable`` (``<venv>/bin/jobgate``), else ``python -m jobgate``.

1. baseline: wall time of ``python -I -S -c pass`` (the same interpreter);
2. ``jobgate status --json`` with 50 and with 1,000 retained jobs (plus ``--all`` with
   1,000, for the cost of printing every record);
3. ``jobgate hook stop`` with 50 jobs in state (review gate off), if the installed
   jobgate has the ``hook`` command;
4. one liveness probe (``jobgate.proc.liveness.probe``) in-process, next to psutil's
   ``Process(pid).create_time()``;
5. ``jobgate run --background -- true`` return time; how soon ``jobgate wait`` notices a
   job killed from outside;
6. locked read-modify-write transactions per second with 8 concurrent writer processes,
   and a check that none was lost.

The subprocess cases (1-3) run interleaved, round by round, so drift in the machine's
speed hits them all alike. State is written with jobgate's own ``Store`` and ``model``
functions into a temporary ``JOBGATE_HOME``; running jobs point at live ``sleep``
processes (identities from ``jobgate.proc.liveness.capture``), so every status call probes
real processes. Everything lives in one temp dir that is removed at the end, and every
process started here is ended and reaped.

Only the standard library and psutil (a jobgate dependency) are used. This is not part of
the test suite: targets are checked by hand (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: looks at a timed command's result: None if it did what it should, else what went wrong
Checker = Callable[[subprocess.CompletedProcess[bytes]], "str | None"]

SESSION = "bench"
#: the Claude Code plugin in this checkout (its hooks.json is what Claude Code runs)
PLUGIN_ROOT = Path(__file__).resolve().parent.parent / "plugins" / "jobgate"
WRITERS = 8
LIVE_SLEEP_SECONDS = "900"  # the sleeps are killed at the end; this only bounds a crash


# -- small helpers ---------------------------------------------------------------------
def log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


@dataclass
class Row:
    """One line of the results table."""

    name: str
    unit: str  # "ms", "us" or "tx/s"
    median: float | None = None
    p90: float | None = None
    ratio: float | None = None  # median / baseline median (subprocess rows)
    target: str = ""
    ok: bool | None = None  # None: no target, or not measured
    note: str = ""
    samples: list[float] = field(default_factory=list)


def ms_row(name: str, times: list[float], spread: float | None, note: str) -> Row:
    """A row of wall times in ms: their median, ``spread`` in the p90 column."""
    median = statistics.median(times) if times else None
    return Row(name, "ms", median, spread, note=note, samples=times)


@dataclass
class Case:
    """A command timed as a whole process, interleaved with the other cases."""

    key: str
    label: str
    argv: list[str]
    cwd: str
    stdin: bytes | None = None
    check: Checker | None = None
    times: list[float] = field(default_factory=list)


def jobgate_command() -> tuple[list[str], str]:
    """The installed jobgate: the console script beside the interpreter, else ``-m``."""
    script = Path(sys.executable).parent / ("jobgate.exe" if os.name == "nt" else "jobgate")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], f"console script {script}"
    return [sys.executable, "-m", "jobgate"], f"{sys.executable} -m jobgate"


def install_kind() -> str:
    """'editable' or 'regular' (from the installed distribution's direct_url.json)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("jobgate")
    except metadata.PackageNotFoundError:
        return "not installed (imported from sys.path)"
    raw = dist.read_text("direct_url.json")
    if raw:
        try:
            if json.loads(raw).get("dir_info", {}).get("editable"):
                return "editable"
        except ValueError:
            pass
    return "regular"


def fs_type(path: str) -> str:
    """The filesystem type of the mount holding ``path`` (Linux), for fsync context."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and path.startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def machine_facts(tmp: str, command_desc: str) -> dict[str, Any]:
    import psutil

    import jobgate

    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable,
        "platform": platform.platform(),
        "kernel": platform.release(),
        "jobgate": f"{jobgate.__version__} ({install_kind()} install, {jobgate.__file__})",
        "jobgateCommand": command_desc,
        "psutil": psutil.__version__,
        "tempDir": f"{tmp} ({fs_type(tmp)})",
        "loadAvgStart": load_avg(),
    }


def load_avg() -> str:
    """1/5/15-minute load averages: other work on the machine inflates every number."""
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def subprocess_env(home: str) -> dict[str, str]:
    env = dict(os.environ)
    env["JOBGATE_HOME"] = home
    # Users' installs have byte code caches (pip compiles them; an editable install writes
    # them on first use). With PYTHONDONTWRITEBYTECODE set, every edited module would be
    # recompiled on every run, which measures the compiler, not jobgate.
    for key in (
        "JOBGATE_SESSION_ID",
        "CLAUDE_ENV_FILE",
        "PYTHONPROFILEIMPORTTIME",
        "PYTHONDONTWRITEBYTECODE",
    ):
        env.pop(key, None)
    # the plugin's hook script finds `jobgate` on PATH: make it this environment's
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["CLAUDE_PLUGIN_ROOT"] = str(PLUGIN_ROOT)
    return env


def plugin_stop_command() -> tuple[str | None, str | None]:
    """The Stop hook's command line from the checkout's plugin (``hooks.json``)."""
    path = PLUGIN_ROOT / "hooks" / "hooks.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        command = data["hooks"]["Stop"][0]["hooks"][0]["command"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        return None, f"no Stop command in {path} ({exc.__class__.__name__})"
    return str(command), None


def make_workspace(path: Path) -> str:
    """A workspace folder that looks like a git checkout (the root lookup stops here)."""
    (path / ".git").mkdir(parents=True)
    return str(path)


# -- state -----------------------------------------------------------------------------
class Sleepers:
    """Live processes whose identities running jobs record; all ended in :meth:`close`."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self) -> dict[str, Any]:
        from jobgate.proc import liveness

        proc = subprocess.Popen(
            ["sleep", LIVE_SLEEP_SECONDS],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        ident = liveness.capture(proc.pid)
        if ident is None:
            raise RuntimeError(f"could not capture the identity of sleep pid {proc.pid}")
        return ident

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        self.procs.clear()


def _finished_output(i: int, ok: bool) -> str:
    lines = [f"collected {20 + i % 7} items", ""]
    lines += [f"tests/test_mod{i}_{k}.py ....................  [{k * 10}%]" for k in range(1, 11)]
    lines.append(f"{20 + i % 7} passed in {1 + i % 9}.{i % 100:02d}s" if ok else "1 failed")
    return "\n".join(lines) + "\n"


def build_state(ws: str, n_jobs: int, n_running: int, sleepers: Sleepers) -> str:
    """Write ``n_jobs`` retained jobs (the newest ``n_running`` of them running) for
    workspace ``ws`` with jobgate's own store; returns the state dir."""
    from jobgate.proc import liveness
    from jobgate.state import model
    from jobgate.state.store import Store, log_line
    from jobgate.state.workspace import state_dir_for

    root, state_dir = state_dir_for(ws)
    store = Store(state_dir, root)
    store.ensure()
    with store.lock():
        store.write_config({"maxJobs": 100_000, "stopReviewGate": False})
    now = time.time()
    boot = liveness.boot_id()
    host = liveness.host_name()
    jobs: list[dict[str, Any]] = []
    for i in range(n_jobs):
        t = now - (n_jobs - i) * 90.0  # one job every 90 s, oldest first
        running = i >= n_jobs - n_running
        kind = "task" if i % 3 == 0 else "run"
        command = (
            ["codex", "exec", "--skip-git-repo-check", f"review change {i}"]
            if kind == "task"
            else ["pytest", "-q", f"tests/test_mod{i}.py"]
        )
        job_id = model.new_id(kind, t)
        session = SESSION if running or i % 2 == 0 else "other-session"
        job = model.new_job(
            job_id=job_id,
            command=command,
            cwd=ws,
            kind=kind,
            name=f"{kind} {i}",
            session_id=session,
            log_file=store.log_path(job_id),
            now=t,
        )
        if running:
            worker, cmd = sleepers.spawn(), sleepers.spawn()
            job = model.mark_running(job, worker=worker, command=cmd, now=t + 0.1)
        else:
            # identities of processes that are long gone, as a finished record keeps them
            fake = {"startTime": round(t, 3), "bootId": boot, "host": host}
            worker = {"pid": 200_000 + 2 * i, "startTicks": 10_000 + i, **fake}
            cmd = {"pid": 200_001 + 2 * i, "startTicks": 10_001 + i, **fake}
            job = model.mark_running(job, worker=worker, command=cmd, now=t + 0.1)
            if i % 10 == 9:
                job = model.mark_cancel_requested(job, now=t + 30)
            ok = i % 7 != 3
            job = model.mark_exited(
                job,
                exit_code=0 if ok else 1,
                signal=None,
                output=_finished_output(i, ok),
                now=t + 60,
            )
        jobs.append(job)
    with store.transaction() as tx:
        for job in jobs:  # oldest first: put() inserts at the front, newest ends first
            tx.put(job)
    for job in jobs:
        log_line(job["logFile"], f"jobgate: job {job['id']} created")
        log_line(job["logFile"], "jobgate: command started")
        if model.is_finished(job):
            log_line(job["logFile"], f"jobgate: command ended ({job['status']})")
    return str(state_dir)


# -- checks for the timed commands --------------------------------------------------------
def check_status(expect_running: int, expect_listed: int | None) -> Checker:
    def check(proc: subprocess.CompletedProcess[bytes]) -> str | None:
        if proc.returncode != 0:
            return f"exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}"
        try:
            jobs = json.loads(proc.stdout)["jobs"]
        except (ValueError, KeyError, TypeError) as exc:
            return f"unexpected output ({exc})"
        running = sum(1 for j in jobs if j.get("status") == "running")
        if running != expect_running:
            return f"{running} running jobs reported, expected {expect_running}"
        if expect_listed is not None and len(jobs) != expect_listed:
            return f"{len(jobs)} jobs listed, expected {expect_listed}"
        return None

    return check


def check_hook(proc: subprocess.CompletedProcess[bytes]) -> str | None:
    err = proc.stderr.decode(errors="replace")
    if "Traceback" in err:
        return "traceback: " + err.strip().splitlines()[-1]
    if proc.returncode != 0:
        return f"exit {proc.returncode}: {err.strip()[:200]}"
    if proc.stdout.strip():
        return f"printed a decision (gate should be off): {proc.stdout[:200]!r}"
    return None


def hook_available() -> str | None:
    """None if ``jobgate hook stop`` exists in the installed jobgate, else why not."""
    import importlib.util

    try:
        if importlib.util.find_spec("jobgate.claude.shell") is None:
            return "jobgate.claude.shell is not installed"
    except (ImportError, ValueError) as exc:
        return f"jobgate.claude.shell cannot be found ({exc})"
    return None


def time_once(case: Case, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        case.argv,
        input=case.stdin,
        stdin=None if case.stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        cwd=case.cwd,
        env=env,
        timeout=60,
        check=False,
    )
    return time.perf_counter() - t0, proc


def run_interleaved(cases: list[Case], env: dict[str, str], rounds: int) -> dict[str, str]:
    """Warm each case up (and check its output), then time them round-robin.

    Returns ``{case key: problem}`` for cases that failed their check (dropped).
    """
    problems: dict[str, str] = {}
    for case in cases:
        for _ in range(2):  # byte-code caches, page cache
            _dt, proc = time_once(case, env)
            problem = case.check(proc) if case.check else None
            if problem:
                problems[case.key] = problem
                break
    live = [c for c in cases if c.key not in problems]
    for r in range(rounds):
        order = live[r % len(live) :] + live[: r % len(live)] if live else []
        for case in order:
            dt, _proc = time_once(case, env)
            case.times.append(dt * 1000.0)
    return problems


# -- liveness probe -------------------------------------------------------------------------
def bench_probe(sleepers: Sleepers, number: int) -> tuple[Row, Row]:
    import psutil

    from jobgate.proc import liveness

    ident = sleepers.spawn()
    pid = ident["pid"]
    verdict = liveness.probe(ident)
    if verdict[0] != liveness.ALIVE:
        raise RuntimeError(f"probe of a live sleep said {verdict}")
    probe = liveness.probe
    per_call = [
        t / number * 1e6 for t in timeit.repeat(lambda: probe(ident), number=number, repeat=7)
    ]
    jg = Row(
        "liveness.probe(identity), live pid",
        "us",
        statistics.median(per_call),
        max(per_call),
        target="< 20 us (Linux)",
        note=f"in-process, {number} calls x 7 repeats; p90 column = slowest repeat",
        samples=per_call,
    )
    jg.ok = jg.median is not None and jg.median < 20.0
    n_ps = max(1000, number // 5)
    ps = [
        t / n_ps * 1e6
        for t in timeit.repeat(lambda: psutil.Process(pid).create_time(), number=n_ps, repeat=7)
    ]
    ps_row = Row(
        "psutil.Process(pid).create_time() (contrast)",
        "us",
        statistics.median(ps),
        max(ps),
        note=f"in-process, {n_ps} calls x 7 repeats; excludes psutil's import",
        samples=ps,
    )
    return jg, ps_row


# -- run --background -------------------------------------------------------------------------
def wait_job_done(state_dir: str, job_id: str, timeout: float = 30.0) -> str | None:
    """Wait until ``job_id`` is finished and its worker is gone; None, or what is wrong."""
    from jobgate.proc import liveness
    from jobgate.state import model
    from jobgate.state.store import Store

    store = Store(state_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.read_job(job_id)
        if job is not None and model.is_finished(job):
            idents = [job.get("workerProcess"), job.get("commandProcess")]
            if not any(liveness.is_alive(i) for i in idents if isinstance(i, dict)):
                return None
        time.sleep(0.01)
    return f"job {job_id} did not finish within {timeout:g}s"


def bench_run_background(
    jg: list[str], env: dict[str, str], ws: str, runs: int
) -> tuple[Row, str | None]:
    from jobgate.state.workspace import state_dir_for

    _root, state_dir = state_dir_for(ws)
    argv = [*jg, "run", "--background", "--", "true"]
    times: list[float] = []
    problem: str | None = None
    for i in range(runs + 2):  # two warm-up runs
        t0 = time.perf_counter()
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=ws,
            env=env,
            timeout=60,
            check=False,
        )
        dt = (time.perf_counter() - t0) * 1000.0
        out = proc.stdout.decode(errors="replace").splitlines()
        if proc.returncode != 0 or not out:
            problem = f"exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}"
            break
        if i >= 2:
            times.append(dt)
        # let the job finish before the next start (not timed), so runs do not overlap
        problem = wait_job_done(state_dir, out[0].strip())
        if problem:
            break
    row = ms_row(
        "run --background -- true (return)",
        times,
        p90(times) if times else None,
        f"{len(times)} runs; each job waited for (untimed) before the next",
    )
    row.target = "< 150 ms"
    row.ok = row.median is not None and row.median < 150.0 and problem is None
    return row, problem


# -- wait notices an outside kill -------------------------------------------------------------
def bench_wait_notices_kill(
    jg: list[str], env: dict[str, str], ws: str, runs: int
) -> tuple[Row, str | None]:
    """Time from SIGKILL of a running job's worker and command (from outside, nothing
    recorded) until a waiting ``jobgate wait JOB`` exits with 1."""
    import json as _json
    import signal as _signal

    from jobgate.state import model
    from jobgate.state.store import Store
    from jobgate.state.workspace import state_dir_for

    _root, state_dir = state_dir_for(ws)
    store = Store(state_dir)
    times: list[float] = []
    problem: str | None = None
    for _ in range(runs):
        proc = subprocess.run(
            [*jg, "run", "--background", "--json", "--", "sleep", "300"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=ws,
            env=env,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            problem = f"run exit {proc.returncode}: {proc.stderr.decode(errors='replace')}"
            break
        job_id = _json.loads(proc.stdout)["id"]
        deadline = time.monotonic() + 30
        job = store.read_job(job_id)
        while not (job and job.get("commandPid")) and time.monotonic() < deadline:
            time.sleep(0.01)
            job = store.read_job(job_id)
        if not job or not job.get("commandPid"):
            problem = f"job {job_id} never started its command"
            break
        waiter = subprocess.Popen(
            [*jg, "wait", job_id, "--timeout", "60"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ws,
            env=env,
        )
        time.sleep(0.5)  # the waiter is polling by now
        t0 = time.perf_counter()
        for pid in (job["pid"], job["commandPid"]):
            try:
                os.kill(pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            code = waiter.wait(timeout=30)
        except subprocess.TimeoutExpired:
            waiter.kill()
            waiter.wait()
            problem = f"wait did not notice the kill of {job_id} within 30 s"
            break
        times.append((time.perf_counter() - t0) * 1000.0)
        final = store.read_job(job_id) or {}
        if code != 1 or final.get("phase") != model.PHASE_LOST:
            problem = f"wait exited {code}; job phase {final.get('phase')!r} (expected lost)"
            break
    row = ms_row(
        "wait notices an outside SIGKILL",
        times,
        max(times) if times else None,
        f"{len(times)} runs; p90 column = slowest; worker and command killed, wait exits 1",
    )
    row.target = "< 1000 ms"
    row.ok = bool(times) and max(times) < 1000.0 and problem is None
    return row, problem


# -- concurrent writers -----------------------------------------------------------------------
def writer_main(state_dir: str, job_id: str, shared_id: str, k: int) -> int:
    """A writer process: K locked read-modify-writes bumping its own and a shared counter."""
    from jobgate.state import model
    from jobgate.state.store import Store

    store = Store(state_dir)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    for _ in range(k):
        with store.transaction() as tx:
            for jid in (job_id, shared_id):
                job = tx.get(jid)
                if job is None:
                    raise SystemExit(f"writer: job {jid} missing")
                tx.put(model.touch(job, benchCounter=int(job.get("benchCounter", 0)) + 1))
    return 0


def bench_writers(ws: str, k: int) -> tuple[Row, str | None]:
    from jobgate.state import model
    from jobgate.state.store import Store
    from jobgate.state.workspace import state_dir_for

    root, state_dir = state_dir_for(ws)
    store = Store(state_dir, root)
    store.ensure()
    ids = [model.new_id("writer") for _ in range(WRITERS)]
    shared = model.new_id("shared")
    with store.transaction() as tx:
        for jid in [*ids, shared]:
            job = model.new_job(job_id=jid, command=["true"], cwd=ws, log_file=store.log_path(jid))
            job = model.mark_exited(job, exit_code=0, signal=None)
            tx.put(dict(job, benchCounter=0))
    procs: list[subprocess.Popen[str]] = []
    try:
        for jid in ids:
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--_writer", state_dir, jid, shared, str(k)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a writer process did not start")
        t0 = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        codes = [proc.wait(timeout=300) for proc in procs]
        wall = time.perf_counter() - t0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    total = WRITERS * k
    problem = None if all(c == 0 for c in codes) else f"writer exit codes {codes}"
    index = {j["id"]: j for j in store.read_index()}
    lost = 0
    for jid, want in [*((i, k) for i in ids), (shared, total)]:
        for rec in (index.get(jid) or {}, store.read_job(jid) or {}):
            lost += want - int(rec.get("benchCounter", 0))
    if lost:
        problem = (problem + "; " if problem else "") + f"{lost} counter updates lost"
    row = Row(
        f"{WRITERS} concurrent writers, locked RMW",
        "tx/s",
        total / wall,
        None,
        target="no update lost",
        ok=problem is None,
        note=(
            f"{WRITERS} x {k} transactions in {wall:.2f}s, each bumping 2 records "
            f"(own + shared); lost updates: {lost}"
        ),
    )
    return row, problem


# -- import time ------------------------------------------------------------------------------
def import_breakdown(
    jg: list[str],
    env: dict[str, str],
    ws: str,
    tail: list[str],
    stdin: bytes | None = None,
    runs: int = 5,
    top: int = 15,
) -> dict[str, Any]:
    """``python -X importtime`` of ``jobgate <tail>`` in ``ws``: median µs per module."""
    argv = [sys.executable, "-X", "importtime", *(jg if len(jg) == 1 else ["-m", "jobgate"])]
    argv += tail
    self_us: dict[str, list[int]] = {}
    cum_us: dict[str, list[int]] = {}
    depth: dict[str, int] = {}
    totals: list[int] = []
    for _ in range(runs + 1):
        proc = subprocess.run(
            argv, input=stdin, cwd=ws, env=env, capture_output=True, timeout=60, check=False
        )
        total = 0
        rows: list[tuple[str, int, int, int]] = []
        for line in proc.stderr.decode(errors="replace").splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            body = line[len("import time:") :]
            self_text, cum_text, name = body.split("|", 2)
            mod = name.rstrip()
            level = (len(mod) - len(mod.lstrip())) // 2
            rows.append((mod.strip(), int(self_text), int(cum_text), level))
            total += int(self_text)
        if not rows:
            continue
        totals.append(total)
        for mod, s, c, level in rows:
            self_us.setdefault(mod, []).append(s)
            cum_us.setdefault(mod, []).append(c)
            depth[mod] = min(depth.get(mod, level), level)
    if not totals:
        return {}
    totals = totals[1:] or totals  # the first run may compile byte code
    med_self = {m: statistics.median(v) for m, v in self_us.items()}
    med_cum = {m: statistics.median(v) for m, v in cum_us.items()}
    top_level = sorted(((m, v) for m, v in med_cum.items() if depth[m] == 0), key=lambda x: -x[1])[
        :top
    ]
    by_self = sorted(med_self.items(), key=lambda x: -x[1])[:top]
    return {
        "command": " ".join(argv),
        "totalSelfUs": statistics.median(totals),
        "topLevelCumulativeUs": top_level,
        "topSelfUs": by_self,
        "modules": len(med_self),
    }


# -- output -------------------------------------------------------------------------------
def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "tx/s":
        return f"{value:,.0f}"
    if unit == "us":
        return f"{value:.2f}"
    return f"{value:.1f}"


def table(rows: list[Row]) -> str:
    head = ["measurement", "median", "p90", "unit", "x base", "target", "ok"]
    lines = [head]
    for r in rows:
        status = (
            "n/a"
            if r.ok is None and r.median is None
            else ("-" if r.ok is None else ("PASS" if r.ok else "FAIL"))
        )
        lines.append(
            [
                r.name,
                fmt(r.median, r.unit),
                fmt(r.p90, r.unit),
                r.unit,
                f"{r.ratio:.2f}" if r.ratio is not None else "",
                r.target,
                status,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        cells = [
            c.ljust(widths[i]) if i in (0, 3, 5, 6) else c.rjust(widths[i])
            for i, c in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [f"  {r.name}: {r.note}" for r in rows if r.note]
    return "\n".join(out) + "\n\nnotes:\n" + "\n".join(notes)


def markdown(
    facts: dict[str, Any],
    rows: list[Row],
    problems: dict[str, str],
    imports: dict[str, dict[str, Any]],
) -> str:
    """The results as Markdown, for the block between the markers in docs/performance.md."""
    out = ["Machine and run:", ""]
    out += [f"- {key}: `{value}`" for key, value in facts.items()]
    out += ["", "| measurement | median | p90 | unit | × baseline | target | result |"]
    out.append("| --- | ---: | ---: | --- | ---: | --- | --- |")
    for r in rows:
        if r.median is None:
            result = "not available"
        else:
            result = "—" if r.ok is None else ("**pass**" if r.ok else "**FAIL**")
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        out.append(
            f"| {r.name} | {fmt(r.median, r.unit)} | {fmt(r.p90, r.unit)} | {r.unit} "
            f"| {ratio} | {r.target} | {result} |"
        )
    out += ["", "Notes:", ""] + [f"- {r.name}: {r.note}" for r in rows if r.note]
    if problems:
        out += ["", "Problems:", ""] + [f"- {k}: {v}" for k, v in problems.items()]
    for label, info in imports.items():
        if not info:
            continue
        out += [
            "",
            f"Import time of `{label}` (`{info['command']}`), medians of 5 runs; "
            f"total self time of {info['modules']} modules: "
            f"{info['totalSelfUs'] / 1000:.1f} ms",
            "",
            "```",
            "top-level imports, cumulative:",
        ]
        out += [f"  {us / 1000:6.2f} ms  {mod}" for mod, us in info["topLevelCumulativeUs"]]
        out.append("modules by self time:")
        out += [f"  {us / 1000:6.2f} ms  {mod}" for mod, us in info["topSelfUs"]]
        out.append("```")
    return "\n".join(out)


# -- main -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer runs (~10 s)")
    parser.add_argument("--json", action="store_true", help="print a JSON object on stdout")
    parser.add_argument(
        "--imports",
        action="store_true",
        help="also break down the import time of status --json and hook stop",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the results as Markdown (for docs/performance.md)",
    )
    parser.add_argument("--rounds", type=int, help="timed rounds per subprocess case")
    parser.add_argument("--_writer", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._writer:
        state_dir, job_id, shared_id, k = args._writer
        return writer_main(state_dir, job_id, shared_id, int(k))

    rounds = args.rounds or (10 if args.quick else 30)
    bg_runs = 8 if args.quick else 20
    writer_k = 25 if args.quick else 100
    probe_n = 5_000 if args.quick else 50_000

    jg, jg_desc = jobgate_command()
    started = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="jobgate-bench-")
    home = os.path.join(tmp, "home")
    os.environ["JOBGATE_HOME"] = home  # for the in-process Store/state_dir_for calls
    os.environ.pop("JOBGATE_SESSION_ID", None)
    env = subprocess_env(home)
    sleepers = Sleepers()
    rows: list[Row] = []
    problems: dict[str, str] = {}
    imports: dict[str, dict[str, Any]] = {}

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        facts = machine_facts(tmp, jg_desc)
        log(f"jobgate: {facts['jobgate']}; command: {jg_desc}")
        ws50 = make_workspace(Path(tmp) / "ws50")
        ws1000 = make_workspace(Path(tmp) / "ws1000")
        wshook = make_workspace(Path(tmp) / "wshook")
        wsrun = make_workspace(Path(tmp) / "wsrun")
        wswrite = make_workspace(Path(tmp) / "wswrite")
        log("writing state: 50 jobs (3 running), 1,000 jobs (5 running), hook: 50 jobs")
        build_state(ws50, 50, 3, sleepers)
        build_state(ws1000, 1000, 5, sleepers)
        build_state(wshook, 50, 3, sleepers)

        payload = json.dumps(
            {
                "session_id": SESSION,
                "cwd": wshook,
                "hook_event_name": "Stop",
                "stop_hook_active": False,
                "transcript_path": "/dev/null",
            }
        ).encode()
        cases = [
            Case(
                "baseline",
                "python -I -S -c pass (baseline)",
                [sys.executable, "-I", "-S", "-c", "pass"],
                ws50,
            ),
            Case("site", "python -c pass (with site)", [sys.executable, "-c", "pass"], ws50),
            Case(
                "rejson",
                "python -c 'import re, json' (with site)",
                [sys.executable, "-c", "import re, json"],
                ws50,
            ),
            Case(
                "status50",
                "status --json, 50 jobs (3 running)",
                [*jg, "status", "--json"],
                ws50,
                check=check_status(3, 3 + 10),
            ),
            Case(
                "status1000",
                "status --json, 1,000 jobs (5 running)",
                [*jg, "status", "--json"],
                ws1000,
                check=check_status(5, 5 + 10),
            ),
            Case(
                "status1000all",
                "status --json --all, 1,000 jobs",
                [*jg, "status", "--json", "--all"],
                ws1000,
                check=check_status(5, 1000),
            ),
        ]
        hook_problem = hook_available()
        plugin_cmd, plugin_problem = plugin_stop_command()
        if hook_problem is None and plugin_cmd is not None:
            cases.append(
                Case(
                    "pluginhook",
                    "plugin Stop hook (sh -c hooks.json command), 50 jobs",
                    ["sh", "-c", plugin_cmd],
                    wshook,
                    stdin=payload,
                    check=check_hook,
                )
            )
        if hook_problem is None:
            cases.append(
                Case(
                    "hook",
                    "hook stop, 50 jobs (3 running)",
                    [*jg, "hook", "stop"],
                    wshook,
                    stdin=payload,
                    check=check_hook,
                )
            )
        log(f"timing subprocess cases, {rounds} interleaved rounds")
        problems.update(run_interleaved(cases, env, rounds))
        if hook_problem is not None:
            problems["hook"] = hook_problem
            problems["pluginhook"] = hook_problem
        elif plugin_problem is not None:
            problems["pluginhook"] = plugin_problem
        by_key = {c.key: c for c in cases}
        base = by_key["baseline"]
        base_med = statistics.median(base.times) if base.times else None
        targets = {"status50": 4.0, "hook": 3.0}
        for key, label in [
            ("baseline", "python -I -S -c pass (baseline)"),
            ("site", "python -c pass (with site)"),
            ("rejson", "python -c 'import re, json' (with site)"),
            ("status50", "status --json, 50 jobs (3 running)"),
            ("status1000", "status --json, 1,000 jobs (5 running)"),
            ("status1000all", "status --json --all, 1,000 jobs"),
            ("hook", "hook stop, 50 jobs (3 running)"),
            ("pluginhook", "plugin Stop hook (sh -c hooks.json command), 50 jobs"),
        ]:
            case = by_key.get(key)
            row = Row(label, "ms")
            if key in problems or case is None or not case.times:
                row.note = f"not available: {problems.get(key, 'not measured')}"
                rows.append(row)
                continue
            row.median = statistics.median(case.times)
            row.p90 = p90(case.times)
            row.samples = case.times
            if base_med:
                row.ratio = row.median / base_med
            if key in targets:
                row.target = f"<= {targets[key]:g}x baseline"
                row.ok = row.ratio is not None and row.ratio <= targets[key]
            if key == "baseline":
                row.note = f"{len(case.times)} runs, interleaved with the rows below"
            elif key == "site":
                row.note = "floor of any console script in this environment (no target)"
            elif key == "pluginhook":
                row.note = (
                    "what Claude Code runs: the Stop command of plugins/jobgate/hooks/hooks.json "
                    "via sh -c, jobgate found on PATH (no target)"
                )
            elif key == "rejson":
                row.note = (
                    "floor of a console script that speaks JSON: pip's script template "
                    "imports re, and json needs it too (no target)"
                )
            rows.append(row)

        log(f"liveness probe, {probe_n} calls x 7")
        rows.extend(bench_probe(sleepers, probe_n))

        log(f"run --background, {bg_runs} runs")
        row, problem = bench_run_background(jg, env, wsrun, bg_runs)
        if problem:
            row.note += f"; PROBLEM: {problem}"
            problems["runBackground"] = problem
        rows.append(row)

        log("wait notices an outside kill, 5 runs")
        row, problem = bench_wait_notices_kill(jg, env, wsrun, 5)
        if problem:
            row.note += f"; PROBLEM: {problem}"
            problems["waitNotices"] = problem
        rows.append(row)

        log(f"{WRITERS} writers x {writer_k} transactions")
        row, problem = bench_writers(wswrite, writer_k)
        if problem:
            row.note += f"; PROBLEM: {problem}"
            problems["writers"] = problem
        rows.append(row)

        if args.imports:
            log("import-time breakdown of status --json and hook stop (50 jobs)")
            imports["status --json"] = import_breakdown(jg, env, ws50, ["status", "--json"])
            if "hook" not in problems:
                imports["hook stop"] = import_breakdown(jg, env, wshook, ["hook", "stop"], payload)
    finally:
        sleepers.close()
        shutil.rmtree(tmp, ignore_errors=True)

    elapsed = time.perf_counter() - started
    facts["loadAvgEnd"] = load_avg()
    try:
        busy = max(os.getloadavg()[0], float(str(facts["loadAvgStart"]).split()[0]))
    except (OSError, AttributeError, ValueError):
        busy = 0.0
    if busy > 0.5 * (os.cpu_count() or 1):
        problems["load"] = (
            f"the machine was busy (1-minute load {busy:.2f} on {os.cpu_count()} CPUs): "
            "absolute numbers are inflated and noisy; re-run on a quiet machine"
        )
    facts["benchSeconds"] = round(elapsed, 1)
    facts["mode"] = "quick" if args.quick else "full"
    facts["rounds"] = rounds
    if args.markdown:
        print(markdown(facts, rows, problems, imports))
    elif args.json:
        out = {
            "machine": facts,
            "results": [asdict(r) for r in rows],
            "problems": problems,
            "imports": imports,
        }
        print(json.dumps(out, indent=2))
    else:
        print("machine:")
        for key, value in facts.items():
            print(f"  {key}: {value}")
        print()
        print(table(rows))
        for label, info in imports.items():
            if not info:
                continue
            print(f"\nimport time of {label} ({info['command']}), medians of 5 runs:")
            print(
                f"  total self time of {info['modules']} modules: "
                f"{info['totalSelfUs'] / 1000:.1f} ms"
            )
            print("  top-level imports by cumulative time:")
            for mod, us in info["topLevelCumulativeUs"]:
                print(f"    {us / 1000:7.2f} ms  {mod}")
            print("  modules by self time:")
            for mod, us in info["topSelfUs"]:
                print(f"    {us / 1000:7.2f} ms  {mod}")
        if problems:
            print("\nproblems:")
            for key, value in problems.items():
                print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
