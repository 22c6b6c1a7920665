"""The harness of the `jobgate doctor codex` tests: run the command, make real processes
(live, reaped, zombie, reused pids) and write Codex companion plugin state folders.

conftest.py loads this module as a plugin (``pytest_plugins``), which makes its fixtures
(``procs``, ``root``) available to every test module; the helpers are imported by name
(``from codex_plugin_fixtures import run_doctor, job, ...``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jobgate.cli import doctor as doctor_cli
from jobgate.codex import doctor as doctor_codex
from jobgate.codex import files as cf
from jobgate.proc import liveness
from jobgate.state.errors import JobgateError

# --------------------------------------------------------------------------- harness


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.out)
        return data


def run_doctor(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """Run `jobgate doctor codex ARGS` in-process, through add_parser + handler only.

    Mirrors what the main CLI does with a JobgateError (one line on stderr, its code).
    Pass ``env`` to run it as a real subprocess through ``python -m jobgate`` instead.
    """
    argv = ["doctor", "codex", *map(str, args)]
    if env is not None:
        proc = subprocess.run(
            [sys.executable, "-m", "jobgate", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)
    parser = argparse.ArgumentParser(prog="jobgate")
    doctor_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = ns.handler(ns)
        except JobgateError as exc:
            err.write(f"jobgate: {exc.message}\n")
            code = exc.exit_code
    return Result(code, out.getvalue(), err.getvalue())


# ------------------------------------------------------------------------ processes


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every process a test starts goes here; all are killed and reaped afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for p in started:
            with contextlib.suppress(OSError):
                p.kill()
            p.wait(timeout=10)


def start_time(pid: int) -> float:
    info = liveness.proc_info(pid)
    assert info is not None
    return float(info["startTime"])


def live_pid(procs: list[subprocess.Popen[bytes]]) -> int:
    p = subprocess.Popen(["sleep", "300"])
    procs.append(p)
    return p.pid


def dead_pid() -> int:
    """A pid whose process has exited and been reaped (and not been reused since)."""
    for _ in range(20):
        p = subprocess.Popen(["true"])
        p.wait()
        if liveness.proc_info(p.pid) is None:
            return p.pid
    raise AssertionError("could not get an unused pid")


def zombie_pid(procs: list[subprocess.Popen[bytes]]) -> int:
    """A child that has been killed but not reaped (state Z) until teardown."""
    p = subprocess.Popen(["sleep", "300"])
    procs.append(p)
    os.kill(p.pid, 9)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = liveness.proc_info(p.pid)  # through the seam: either backend
        if info is not None and info["state"] == "Z":
            return p.pid
        time.sleep(0.01)
    raise AssertionError("child never became a zombie")


# --------------------------------------------------------------------- plugin files


def iso(t: float | None = None) -> str:
    return cf.iso_now(t)


def plugin_dump(doc: Any) -> str:
    """What the plugin writes: JSON.stringify(doc, null, 2) + newline."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def job(job_id: str, pid: int | None, *, status: str = "running", **extra: Any) -> dict[str, Any]:
    now = iso()
    record: dict[str, Any] = {
        "id": job_id,
        "kind": "task",
        "kindLabel": "rescue",
        "title": f"Codex {job_id}",
        "workspaceRoot": "/home/u/repo",
        "jobClass": "task",
        "summary": "fix the flaky test ✓",
        "write": True,
        "createdAt": now,
        "updatedAt": now,
        "sessionId": "sess-1",
        "status": status,
        "startedAt": now,
        "phase": "running",
        "pid": pid,
        "threadId": None,
    }
    record.update(extra)
    return record


def make_workspace(
    root: Path,
    jobs: list[Any],
    *,
    name: str = "repo-0123456789abcdef",
    job_files: bool = True,
) -> Path:
    ws = root / name
    (ws / "jobs").mkdir(parents=True, exist_ok=True)
    for record in jobs:
        if isinstance(record, dict) and "logFile" not in record and cf_safe(record.get("id")):
            record["logFile"] = str(ws / "jobs" / f"{record['id']}.log")
    state = {"version": 1, "config": {"stopReviewGate": True, "extra": [1, 2]}, "jobs": jobs}
    (ws / "state.json").write_text(plugin_dump(state), encoding="utf-8")
    for record in jobs:
        if isinstance(record, dict) and cf_safe(record.get("id")):
            (ws / "jobs" / f"{record['id']}.log").write_text(
                f"[{iso()}] Starting {record['id']}.\n", encoding="utf-8"
            )
            if job_files:
                full = {**record, "result": None, "rendered": "partial output"}
                (ws / "jobs" / f"{record['id']}.json").write_text(plugin_dump(full))
    return ws


def cf_safe(job_id: object) -> bool:
    return doctor_codex.safe_job_id(job_id)


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def snapshot(top: Path) -> dict[str, tuple[str, int, int]]:
    """Every file under ``top``: content hash, mtime (ns) and mode."""
    result: dict[str, tuple[str, int, int]] = {}
    for path in sorted(top.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        result[str(path.relative_to(top))] = (digest, st.st_mtime_ns, st.st_mode)
    return result


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "codex-companion"
    r.mkdir()
    return r


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["jobId"]: f for f in report["findings"]}
