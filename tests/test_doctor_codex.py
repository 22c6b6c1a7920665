"""`jobgate doctor codex`: verdicts, report-only, --fix, backups, damaged files, races.

Every test builds plugin-format state folders in a temp dir and points the command at
them with --state-root; pids come from real processes (live, reaped, zombie, reused).
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

from jobgate import codex_files as cf
from jobgate import doctor_cli, doctor_codex, liveness
from jobgate.errors import JobgateError

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="uses /proc to make zombies and read states"
)

REPO = Path(__file__).resolve().parents[1]
CLI_EXISTS = (REPO / "src" / "jobgate" / "cli.py").exists()

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
        st = liveness.read_proc_stat(p.pid)
        if st is not None and st[0] == "Z":
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


# ------------------------------------------------------------------------ verdicts


def test_dead_pid_is_gone(root: Path) -> None:
    make_workspace(root, [job("task-dead", dead_pid())])
    found = by_id(run_doctor("--state-root", root, "--json").json())["task-dead"]
    assert found["verdict"] == "gone"
    assert "no longer exists" in found["reason"]


def test_zombie_pid_is_gone(root: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    make_workspace(root, [job("task-zombie", zombie_pid(procs))])
    found = by_id(run_doctor("--state-root", root, "--json").json())["task-zombie"]
    assert found["verdict"] == "gone"
    assert "zombie" in found["reason"]


def test_pid_of_process_started_after_the_job_is_reused(
    root: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    pid = live_pid(procs)
    started = iso(start_time(pid) - 60)
    make_workspace(root, [job("task-reused", pid, startedAt=started, createdAt=started)])
    found = by_id(run_doctor("--state-root", root, "--json").json())["task-reused"]
    assert found["verdict"] == "reused"
    assert "another process" in found["reason"] and "60 s after" in found["reason"]


def test_process_started_before_the_job_is_alive_and_left_alone(
    root: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    pid = live_pid(procs)
    time.sleep(0.05)
    ws = make_workspace(root, [job("task-live", pid)])  # startedAt written after spawning
    before = snapshot(root)
    result = run_doctor("--state-root", root, "--fix", "--json")
    found = by_id(result.json())["task-live"]
    assert (found["verdict"], found["fixed"]) == ("alive", False)
    assert result.code == 0
    assert snapshot(root) == before
    assert load(ws / "state.json")["jobs"][0]["status"] == "running"


def test_queued_record_without_pid_is_unverifiable_and_left_alone(root: Path) -> None:
    make_workspace(root, [job("task-queued", None, status="queued")])
    before = snapshot(root)
    result = run_doctor("--state-root", root, "--fix", "--json")
    found = by_id(result.json())["task-queued"]
    assert found["verdict"] == "unverifiable" and not found["fixed"]
    assert result.code == 0
    assert snapshot(root) == before


def test_unreadable_job_time_makes_a_live_pid_unverifiable_but_a_dead_pid_still_gone(
    root: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    make_workspace(
        root,
        [
            job("task-live", live_pid(procs), startedAt="yesterday-ish"),
            job("task-dead", dead_pid(), startedAt="not a time"),
        ],
    )
    found = by_id(run_doctor("--state-root", root, "--json").json())
    assert found["task-live"]["verdict"] == "unverifiable"
    assert '"yesterday-ish" is not a readable ISO-8601 time' in found["task-live"]["reason"]
    assert found["task-dead"]["verdict"] == "gone"


def test_finished_records_are_not_findings(root: Path) -> None:
    make_workspace(
        root,
        [job("task-old", dead_pid(), status="completed"), job("task-x", None, status="failed")],
    )
    result = run_doctor("--state-root", root, "--json")
    assert result.json()["findings"] == []
    assert result.code == 0


def test_tolerance_between_job_time_and_a_real_process_start(
    root: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """The plugin stamps a queued record's createdAt, then spawns its worker: a worker
    that started a second or two after createdAt is that job's, one that started a
    minute after is not."""
    created = time.time() - 1.5
    pid = live_pid(procs)
    fresh = job("task-fresh", pid, status="queued", createdAt=iso(created))
    stale = job("task-stale", pid, status="queued", createdAt=iso(created - 60))
    for record in (fresh, stale):
        del record["startedAt"]
    assert 0 < start_time(pid) - created < doctor_codex.TIME_TOLERANCE_SECONDS
    ws = make_workspace(root, [fresh, stale])
    found = by_id(run_doctor("--state-root", root, "--fix", "--json").json())
    assert found["task-fresh"]["verdict"] == "alive", found["task-fresh"]["reason"]
    assert "within 5 s" in found["task-fresh"]["reason"] and not found["task-fresh"]["fixed"]
    assert found["task-stale"]["verdict"] == "reused" and found["task-stale"]["fixed"]
    jobs = {j["id"]: j for j in load(ws / "state.json")["jobs"]}
    assert (jobs["task-fresh"]["status"], jobs["task-fresh"]["pid"]) == ("queued", pid)
    assert jobs["task-stale"]["status"] == "failed"
    assert procs[0].poll() is None


# ---------------------------------------------------------------- report-only mode


def test_without_fix_nothing_changes_byte_for_byte_and_exit_is_1(
    root: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    pid = live_pid(procs)
    make_workspace(
        root,
        [
            job("task-dead", dead_pid()),
            job("task-zombie", zombie_pid(procs)),
            job("task-reused", pid, startedAt=iso(start_time(pid) - 60)),
        ],
    )
    before = snapshot(root)
    time.sleep(0.01)
    text = run_doctor("--state-root", root)
    as_json = run_doctor("--state-root", root, "--json")
    assert snapshot(root) == before
    assert text.code == as_json.code == doctor_codex.EXIT_STUCK == 1
    assert "3 stuck jobs (2 gone, 1 reused)" in text.out
    assert "--fix" in text.out


def test_human_output_is_a_table_per_workspace_folder(root: Path) -> None:
    a = make_workspace(root, [job("task-a", dead_pid())], name="alpha-1111111111111111")
    b = make_workspace(root, [job("task-b", None, status="queued")], name="beta-2222222222222222")
    out = run_doctor("--state-root", root).out
    assert out.index(str(a)) < out.index("task-a") < out.index(str(b)) < out.index("task-b")
    assert out.count("JOB  ") == 2
    header = next(line for line in out.splitlines() if "VERDICT" in line)
    assert header.split() == ["JOB", "STATUS", "PID", "VERDICT", "ACTION"]


def test_human_header_names_the_workspace_the_plugin_recorded(root: Path) -> None:
    ws = make_workspace(
        root,
        [job("task-a", dead_pid(), workspaceRoot="/home/u/my repo"), job("task-b", dead_pid())],
    )
    unrecorded = job("task-c", dead_pid())
    del unrecorded["workspaceRoot"]
    other = make_workspace(root, [unrecorded], name="x-2222222222222222")
    result = run_doctor("--state-root", root)
    lines = result.out.splitlines()
    assert f"{ws}  (workspace: /home/u/my repo, /home/u/repo)" in lines
    assert str(other) in lines  # nothing recorded: the folder alone
    found = by_id(run_doctor("--state-root", root, "--json").json())
    assert found["task-a"]["workspaceRoot"] == "/home/u/my repo"
    assert found["task-c"]["workspaceRoot"] is None


def test_json_lists_every_finding_with_workspace_job_verdict_and_reason(root: Path) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid()), job("task-q", None, status="queued")])
    report = run_doctor("--state-root", root, "--json").json()
    assert report["stateRoots"] == [str(root)]
    assert report["damaged"] == []
    assert [f["jobId"] for f in report["findings"]] == ["task-dead", "task-q"]
    for f in report["findings"]:
        assert set(f) >= {
            "stateRoot", "workspace", "jobId", "status", "pid", "verdict", "reason", "fixed"
        }  # fmt: skip
        assert f["workspace"] == str(ws) and f["stateRoot"] == str(root)
        assert f["fixed"] is False


# ---------------------------------------------------------------------------- --fix


def test_fix_rewrites_stuck_records_in_the_plugin_failure_shape_keeping_everything_else(
    root: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    pid = live_pid(procs)
    dead = dead_pid()
    records = [
        job("task-dead", dead),
        job("task-reused", pid, status="queued", createdAt=iso(start_time(pid) - 60)),
        job("task-done", None, status="completed", phase="done"),
    ]
    del records[1]["startedAt"]
    ws = make_workspace(root, records)
    original = load(ws / "state.json")
    original_dead_job = load(ws / "jobs" / "task-dead.json")

    result = run_doctor("--state-root", root, "--fix", "--json")

    assert result.code == 0
    report = by_id(result.json())
    assert report["task-dead"]["fixed"] and report["task-reused"]["fixed"]
    state = load(ws / "state.json")
    assert state["version"] == 1 and state["config"] == original["config"]
    assert list(state) == list(original)
    for before, after in zip(original["jobs"], state["jobs"], strict=True):
        if before["status"] == "completed":
            assert after == before
            continue
        assert after["status"] == "failed" and after["phase"] == "failed"
        assert after["pid"] is None
        assert cf.parse_iso(after["completedAt"]) is not None
        assert after["updatedAt"] == after["completedAt"]
        assert "jobgate doctor codex" in after["errorMessage"]
        changed = {"status", "phase", "pid", "updatedAt", "completedAt", "errorMessage"}
        assert {k: v for k, v in after.items() if k not in changed} == {
            k: v for k, v in before.items() if k not in changed
        }
        # existing keys keep their place; new keys are appended in plugin order
        assert list(after)[: len(before)] == list(before)
    assert f"pid {dead} no longer exists" in state["jobs"][0]["errorMessage"]
    assert "belongs to another process" in state["jobs"][1]["errorMessage"]
    # the plugin's own style: 2-space indent, final newline, non-ASCII kept
    assert (ws / "state.json").read_text(encoding="utf-8") == plugin_dump(state)
    # the job file gets the same failure shape and keeps its extra fields
    job_file = load(ws / "jobs" / "task-dead.json")
    assert job_file["status"] == "failed" and job_file["pid"] is None
    assert job_file["rendered"] == original_dead_job["rendered"]
    assert job_file["errorMessage"] == state["jobs"][0]["errorMessage"]
    assert list(job_file)[: len(original_dead_job)] == list(original_dead_job)


def test_fix_never_signals_the_process_that_reused_the_pid(
    root: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    pid = live_pid(procs)
    make_workspace(root, [job("task-reused", pid, startedAt=iso(start_time(pid) - 60))])
    assert run_doctor("--state-root", root, "--fix").code == 0
    assert procs[0].poll() is None
    info = liveness.proc_info(pid)
    assert info is not None and info["state"] not in ("Z", "X")


def test_fix_keeps_a_backup_of_the_original_bytes_with_the_original_mode(root: Path) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid())])
    os.chmod(ws / "state.json", 0o640)
    original = (ws / "state.json").read_bytes()
    report = run_doctor("--state-root", root, "--fix", "--json").json()
    backups = sorted(ws.glob("state.json.bak-*"))
    assert len(backups) == 1
    assert backups[0].read_bytes() == original
    assert str(backups[0]) in report["backups"]
    assert (ws / "state.json").stat().st_mode & 0o777 == 0o640
    assert backups[0].stat().st_mode & 0o777 == 0o640
    assert len(list((ws / "jobs").glob("task-dead.json.bak-*"))) == 1
    assert not [p for p in ws.rglob("*") if ".tmp-" in p.name]


def test_fix_replaces_files_atomically_a_reader_of_the_old_file_sees_it_whole(
    root: Path,
) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid())])
    paths = [ws / "state.json", ws / "jobs" / "task-dead.json"]
    old = {p: (p.read_bytes(), p.stat().st_ino) for p in paths}
    with contextlib.ExitStack() as stack:
        readers = {p: stack.enter_context(p.open("rb")) for p in paths}  # the plugin, reading
        assert run_doctor("--state-root", root, "--fix").code == 0
        for p in paths:
            data, inode = old[p]
            assert p.stat().st_ino != inode, f"{p.name} was rewritten in place"
            assert readers[p].read() == data  # the old file, complete
        assert load(paths[0])["jobs"][0]["status"] == "failed"
        assert load(paths[1])["status"] == "failed"


ROOT_ONLY = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="needs root: only root can hand files to another user (uid 1000) to set up",
)
USER = (1000, 1000)


def _give_to_user(top: Path) -> None:
    for path in [top, *top.rglob("*")]:
        try:
            os.chown(path, *USER, follow_symlinks=False)
        except OSError as exc:  # e.g. a user namespace without uid 1000
            pytest.skip(f"cannot chown to {USER}: {exc}")
        os.chmod(path, 0o700 if path.is_dir() else 0o600)


@ROOT_ONLY
def test_fix_run_as_root_keeps_the_users_owner_and_mode_on_files_backups_and_logs(
    root: Path,
) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid()), job("task-nolog", dead_pid())])
    (ws / "jobs" / "task-nolog.log").unlink()  # doctor creates it: it must be the user's too
    _give_to_user(root)
    assert run_doctor("--state-root", root, "--fix").code == 0
    backups = sorted(ws.rglob("*.bak-*"))
    assert [b.name.split(".bak-")[0] for b in backups] == [
        "task-dead.json", "task-nolog.json", "state.json"
    ]  # fmt: skip
    assert (ws / "jobs" / "task-nolog.log").exists()
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == USER, f"{path} is owned by {st.st_uid}:{st.st_gid}"
        if path.is_file():
            assert st.st_mode & 0o777 == 0o600, f"{path} has mode {st.st_mode & 0o777:o}"
    assert load(ws / "state.json")["jobs"][0]["status"] == "failed"


@ROOT_ONLY
def test_a_user_who_cannot_give_files_away_still_gets_the_file_replaced() -> None:
    """Not root: chown to the original owner fails with EPERM; that is ignored and the
    replacement is the user's own (run in a forked child that dropped to uid 1000).

    pytest's tmp dirs sit in a root-only folder, so this one is made directly in the
    system temp dir (sticky, world-writable) and removed afterwards."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="jobgate-doctor-test-"))
    try:
        ws = make_workspace(top, [])
        _give_to_user(top)
        state = ws / "state.json"
        os.chown(state, 1001, 1001)
        os.chmod(state, 0o644)
        old = state.read_bytes()
        new = old.replace(b'"version": 1', b'"version": 2')
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 2
            try:
                os.setgroups([])
                os.setgid(USER[1])
                os.setuid(USER[0])
                code = 0 if cf.replace_if_unchanged(state, old, new) else 3
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert state.read_bytes() == new
        st = state.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (*USER, 0o644)
    finally:
        shutil.rmtree(top)


def test_fix_appends_a_line_to_the_jobs_log(root: Path) -> None:
    dead = dead_pid()
    ws = make_workspace(root, [job("task-dead", dead)])
    log = ws / "jobs" / "task-dead.log"
    before = log.read_text()
    run_doctor("--state-root", root, "--fix")
    after = log.read_text()
    assert after.startswith(before)
    new = after[len(before) :]
    assert new.count("\n") == 1 and new.startswith("[")
    stamp, message = new[1:].split("] ", 1)
    assert cf.parse_iso(stamp) is not None
    assert "jobgate doctor codex" in message and f"pid {dead}" in message


def test_log_file_outside_the_workspace_folder_is_not_written(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.log"
    outside.write_text("keep\n")
    ws = make_workspace(root, [job("task-dead", dead_pid(), logFile=str(outside))])
    run_doctor("--state-root", root, "--fix")
    assert outside.read_text() == "keep\n"
    assert "jobgate doctor codex" in (ws / "jobs" / "task-dead.log").read_text()


def test_second_fix_run_finds_nothing_to_fix(root: Path) -> None:
    ws = make_workspace(root, [job("task-a", dead_pid()), job("task-b", dead_pid())])
    assert run_doctor("--state-root", root, "--fix").code == 0
    after_first = snapshot(root)
    second = run_doctor("--state-root", root, "--fix", "--json")
    assert second.code == 0
    assert second.json()["findings"] == [] and second.json()["backups"] == []
    assert snapshot(root) == after_first
    assert len(list(ws.glob("state.json.bak-*"))) == 1


def test_fix_keeps_the_files_own_indent_and_missing_final_newline(root: Path) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid())])
    state = load(ws / "state.json")
    (ws / "state.json").write_text(json.dumps(state, indent=4, ensure_ascii=False))
    run_doctor("--state-root", root, "--fix")
    text = (ws / "state.json").read_text(encoding="utf-8")
    assert not text.endswith("\n")
    assert text == json.dumps(load(ws / "state.json"), indent=4, ensure_ascii=False)
    assert load(ws / "state.json")["jobs"][0]["status"] == "failed"


def test_job_file_that_already_records_an_outcome_is_kept_and_copied_to_the_index(
    root: Path,
) -> None:
    ws = make_workspace(root, [job("task-done", dead_pid())])
    finished = load(ws / "jobs" / "task-done.json")
    finished.update(status="completed", phase="done", pid=None, completedAt=iso())
    (ws / "jobs" / "task-done.json").write_text(plugin_dump(finished))
    job_bytes = (ws / "jobs" / "task-done.json").read_bytes()
    result = run_doctor("--state-root", root, "--fix", "--json")
    assert result.code == 0
    record = load(ws / "state.json")["jobs"][0]
    assert (record["status"], record["phase"], record["pid"]) == ("completed", "done", None)
    assert record["completedAt"] == finished["completedAt"]
    assert "errorMessage" not in record
    assert (ws / "jobs" / "task-done.json").read_bytes() == job_bytes


def test_missing_job_file_is_fine(root: Path) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid())], job_files=False)
    assert run_doctor("--state-root", root, "--fix").code == 0
    assert load(ws / "state.json")["jobs"][0]["status"] == "failed"
    assert not (ws / "jobs" / "task-dead.json").exists()


def test_unsafe_job_id_never_reaches_outside_the_jobs_folder(root: Path) -> None:
    ws = make_workspace(root, [job("../escape", dead_pid(), logFile="/etc/passwd")])
    decoy = ws / "escape.json"
    decoy.write_text(plugin_dump({"id": "../escape", "status": "running"}))
    decoy_bytes = decoy.read_bytes()
    result = run_doctor("--state-root", root, "--fix", "--json")
    assert result.code == 0
    assert load(ws / "state.json")["jobs"][0]["status"] == "failed"
    assert decoy.read_bytes() == decoy_bytes
    assert not (ws / "escape.log").exists()
    assert "not a safe file name" in by_id(result.json())["../escape"]["action"]


# ------------------------------------------------------------------ damaged files


DAMAGE = {
    "invalid JSON": (b'{"version": 1, "jobs": [', "invalid JSON"),
    "top level not an object": (b"[]\n", "top level is array"),
    "jobs not a list": (b'{"version": 1, "jobs": {"id": "x"}}\n', '"jobs" is object'),
    "duplicate key": (b'{"version": 1, "jobs": [], "jobs": []}\n', 'duplicate key "jobs"'),
    "not UTF-8": (b'{"version": 1, "jobs": ["\xff"]}\n', "not UTF-8"),
}


@pytest.mark.parametrize("content,reason", DAMAGE.values(), ids=list(DAMAGE))
def test_damaged_state_file_is_reported_and_left_untouched(
    root: Path, content: bytes, reason: str
) -> None:
    ws = make_workspace(root, [])
    (ws / "state.json").write_bytes(content)
    before = snapshot(root)
    result = run_doctor("--state-root", root, "--fix", "--json")
    assert snapshot(root) == before
    assert result.code == 0
    [damage] = result.json()["damaged"]
    assert damage["path"] == str(ws / "state.json") and reason in damage["reason"]
    assert reason in run_doctor("--state-root", root).out


BAD_RECORDS = {
    "job not an object": ("just a string", "jobs[1] is string, expected an object"),
    "pid a string": ({"id": "task-s", "status": "running", "pid": "123"}, 'pid "123" (string)'),
    "pid a boolean": ({"id": "task-b", "status": "running", "pid": True}, "pid true (boolean)"),
    "status null": ({"id": "task-n", "status": None, "pid": 5}, "has status null (null)"),
    "pid a float": ({"id": "task-f", "status": "queued", "pid": 1.5}, "pid 1.5 (number)"),
    "status missing": ({"id": "task-m", "pid": 5}, "has no status"),
}


@pytest.mark.parametrize("bad,reason", BAD_RECORDS.values(), ids=list(BAD_RECORDS))
def test_damaged_record_leaves_its_whole_file_untouched_and_says_why(
    root: Path, bad: Any, reason: str
) -> None:
    make_workspace(root, [job("task-dead", dead_pid()), bad])
    before = snapshot(root)
    result = run_doctor("--state-root", root, "--fix", "--json")
    assert snapshot(root) == before
    report = result.json()
    assert any(reason in d["reason"] for d in report["damaged"]), report["damaged"]
    # the stuck job beside it is still reported, but not fixed: exit 1
    found = by_id(report)["task-dead"]
    assert found["verdict"] == "gone" and not found["fixed"]
    assert "damaged" in found["action"]
    assert result.code == 1
    assert reason in run_doctor("--state-root", root).out  # same spelling for humans


def test_damaged_job_file_is_left_untouched_while_the_index_is_fixed(root: Path) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid())])
    (ws / "jobs" / "task-dead.json").write_bytes(b"{not json")
    result = run_doctor("--state-root", root, "--fix", "--json")
    assert result.code == 0
    assert (ws / "jobs" / "task-dead.json").read_bytes() == b"{not json"
    assert load(ws / "state.json")["jobs"][0]["status"] == "failed"
    assert [d["path"] for d in result.json()["damaged"]] == [str(ws / "jobs" / "task-dead.json")]


def test_symlinked_state_file_is_not_followed(root: Path, tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text(plugin_dump({"version": 1, "jobs": [job("task-dead", dead_pid())]}))
    ws = root / "repo-0123456789abcdef"
    ws.mkdir()
    (ws / "state.json").symlink_to(real)
    before = real.read_bytes()
    report = run_doctor("--state-root", root, "--fix", "--json").json()
    assert real.read_bytes() == before
    assert "symbolic link" in report["damaged"][0]["reason"]


def test_symlinked_workspace_folder_is_refused(root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    real = make_workspace(elsewhere, [job("task-dead", dead_pid())])
    link = root / "repo-0123456789abcdef"
    link.symlink_to(real, target_is_directory=True)
    before = snapshot(elsewhere)
    result = run_doctor("--state-root", root, "--fix", "--json")
    assert snapshot(elsewhere) == before
    report = result.json()
    assert report["findings"] == [] and report["backups"] == []
    assert report["damaged"] == [{"path": str(link), "reason": "is a symbolic link; not followed"}]
    assert f"{link}: is a symbolic link" in run_doctor("--state-root", root).out


# ------------------------------------------------------------------- concurrency


def _plugin_writes_during_fix(
    monkeypatch: pytest.MonkeyPatch, state_path: Path, times: int
) -> list[str]:
    """Make the 'plugin' add a job to state.json right after each backup is taken,
    i.e. after doctor read the file and before it replaces it."""
    added: list[str] = []
    real_backup = cf.write_backup

    def backup_then_race(path: Path, data: bytes, stamp: str) -> Path:
        made = real_backup(path, data, stamp)
        if path == state_path and len(added) < times:
            doc = load(state_path)
            new_id = f"task-new-{len(added)}"
            doc["jobs"].insert(0, job(new_id, None, status="queued"))
            state_path.write_text(plugin_dump(doc))
            added.append(new_id)
        return made

    monkeypatch.setattr(cf, "write_backup", backup_then_race)
    return added


def test_file_changed_by_the_plugin_during_fix_is_reread_and_nothing_is_lost(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid())])
    added = _plugin_writes_during_fix(monkeypatch, ws / "state.json", times=1)
    result = run_doctor("--state-root", root, "--fix", "--json")
    assert result.code == 0 and added == ["task-new-0"]
    jobs = {j["id"]: j for j in load(ws / "state.json")["jobs"]}
    assert jobs["task-new-0"]["status"] == "queued"  # the plugin's write survived
    assert jobs["task-dead"]["status"] == "failed"  # and the fix was applied on top
    assert len(list(ws.glob("state.json.bak-*"))) == 2  # one per version replaced/attempted


def test_file_that_keeps_changing_is_not_fixed_and_reported(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid())])
    added = _plugin_writes_during_fix(monkeypatch, ws / "state.json", times=1000)
    result = run_doctor("--state-root", root, "--fix", "--json")
    assert result.code == 1
    assert len(added) == doctor_codex.MAX_WRITE_ATTEMPTS
    found = by_id(result.json())["task-dead"]
    assert not found["fixed"] and "kept changing" in found["action"]
    jobs = load(ws / "state.json")["jobs"]
    assert [j["id"] for j in jobs][: len(added)] == list(reversed(added))
    assert next(j for j in jobs if j["id"] == "task-dead")["status"] == "running"


def _plugin_writes_job_file_during_fix(
    monkeypatch: pytest.MonkeyPatch, job_path: Path, change: dict[str, Any]
) -> list[bytes]:
    """Make the 'plugin' update a job file once, right after doctor backed it up, i.e.
    after doctor read it and before it replaces it. Returns the bytes the plugin wrote."""
    written: list[bytes] = []
    real_backup = cf.write_backup

    def backup_then_race(path: Path, data: bytes, stamp: str) -> Path:
        made = real_backup(path, data, stamp)
        if path == job_path and not written:
            doc = load(job_path)
            doc.update(change)
            job_path.write_text(plugin_dump(doc))
            written.append(job_path.read_bytes())
        return made

    monkeypatch.setattr(cf, "write_backup", backup_then_race)
    return written


def test_job_file_changed_by_the_plugin_during_fix_is_reread_and_nothing_is_lost(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid())])
    path = ws / "jobs" / "task-dead.json"
    written = _plugin_writes_job_file_during_fix(
        monkeypatch, path, {"rendered": "partial output\nmore output", "threadId": "thr-9"}
    )
    result = run_doctor("--state-root", root, "--fix", "--json")
    assert result.code == 0 and written
    doc = load(path)
    assert doc["rendered"] == "partial output\nmore output" and doc["threadId"] == "thr-9"
    assert doc["status"] == "failed" and doc["pid"] is None
    assert "job file updated" in by_id(result.json())["task-dead"]["action"]
    assert len(list(path.parent.glob("task-dead.json.bak-*"))) == 2  # one per version seen


def test_job_file_finished_by_the_plugin_during_fix_is_left_as_the_plugin_wrote_it(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(root, [job("task-dead", dead_pid())])
    path = ws / "jobs" / "task-dead.json"
    written = _plugin_writes_job_file_during_fix(
        monkeypatch,
        path,
        {"status": "completed", "phase": "done", "pid": None, "result": {"ok": True}},
    )
    result = run_doctor("--state-root", root, "--fix", "--json")
    assert written and path.read_bytes() == written[0]
    action = by_id(result.json())["task-dead"]["action"]
    assert 'job file already says "completed", left as is' in action


# ---------------------------------------------------------------- finding state


def test_state_root_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    result = run_doctor("--state-root", tmp_path / "nope")
    assert result.code == 2
    assert "nope" in result.err and result.out == ""


def test_empty_state_root_is_a_usage_error_not_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workspace(tmp_path, [job("task-dead", dead_pid())])
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    result = run_doctor("--state-root", "", "--fix")
    assert result.code == 2 and result.out == ""
    assert len(result.err.strip().splitlines()) == 1 and "empty" in result.err
    assert snapshot(tmp_path) == before


def test_state_root_that_is_a_file_is_not_a_directory(tmp_path: Path) -> None:
    state = make_workspace(tmp_path, [job("task-dead", dead_pid())]) / "state.json"
    result = run_doctor("--state-root", state)
    assert result.code == 2 and result.out == ""
    assert result.err.strip() == f"jobgate: --state-root {state}: not a directory"


def test_plugin_data_folder_as_state_root_means_its_state_folder_and_says_so(
    tmp_path: Path,
) -> None:
    data = tmp_path / "codex-openai-codex"
    ws = make_workspace(data / "state", [job("task-dead", dead_pid())])
    report = run_doctor("--state-root", data, "--json").json()
    assert report["stateRoots"] == [str(data / "state")]
    assert report["workspaces"] == [str(ws)] and list(by_id(report)) == ["task-dead"]
    assert len(report["notes"]) == 1 and str(data / "state") in report["notes"][0]
    text = run_doctor("--state-root", data).out
    assert text.splitlines()[0] == report["notes"][0] and "plugin data folder" in text


def test_state_root_without_workspace_folders_says_so_plainly(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "not-a-workspace").mkdir(parents=True)
    result = run_doctor("--state-root", empty)
    assert result.code == 0
    assert f"No workspace folder (a folder holding state.json) in {empty}." in result.out
    assert run_doctor("--state-root", empty, "--json").json()["emptyStateRoots"] == [str(empty)]


def test_state_root_option_is_repeatable_and_a_workspace_folder_is_accepted(
    tmp_path: Path,
) -> None:
    one = tmp_path / "one"
    two = tmp_path / "two"
    make_workspace(one, [job("task-1", dead_pid())])
    ws2 = make_workspace(two, [job("task-2", dead_pid())])
    report = run_doctor("--state-root", one, "--state-root", ws2, "--json").json()
    assert report["stateRoots"] == [str(one), str(ws2)]
    assert sorted(by_id(report)) == ["task-1", "task-2"]


def test_any_subfolder_with_state_json_is_a_workspace_folder(root: Path) -> None:
    make_workspace(root, [job("task-1", dead_pid())], name="odd name")
    (root / "no-state-here").mkdir()
    (root / "stray.txt").write_text("x")
    report = run_doctor("--state-root", root, "--json").json()
    assert report["workspaces"] == [str(root / "odd name")]


def test_default_state_roots_cover_plugin_data_codex_plugins_in_home_and_temp_dir(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    config = tmp_path / "config"
    for top in (home / ".claude", config):
        for plugin in ("codex-openai-codex", "other"):
            (top / "plugins" / "data" / plugin).mkdir(parents=True)
    env = {"CLAUDE_PLUGIN_DATA": str(tmp_path / "pd"), "CLAUDE_CONFIG_DIR": str(config)}
    search = doctor_codex.default_search(env=env, home=home, tmpdir=str(tmp_path / "t"))
    data = home / ".claude" / "plugins" / "data"
    assert search.roots == [
        tmp_path / "pd" / "state",
        config / "plugins" / "data" / "codex-openai-codex" / "state",
        data / "codex-openai-codex" / "state",
        tmp_path / "t" / "codex-companion",
    ]  # another plugin's data folder is not searched
    assert search.places == [
        str(tmp_path / "pd" / "state"),
        str(config / "plugins" / "data" / "*codex*" / "state"),
        str(data / "*codex*" / "state"),
        str(tmp_path / "t" / "codex-companion"),
    ]
    bare = doctor_codex.default_state_roots(env={}, home=home, tmpdir=str(tmp_path / "t"))
    assert bare == [data / "codex-openai-codex" / "state", tmp_path / "t" / "codex-companion"]


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLAUDE_PLUGIN_DATA",)}
    for name in ("home", "tmp", "plugin-data"):
        (tmp_path / name).mkdir(exist_ok=True)
    env.update(
        HOME=str(tmp_path / "home"),
        TMPDIR=str(tmp_path / "tmp"),
        CLAUDE_PLUGIN_DATA=str(tmp_path / "plugin-data"),
    )
    return env


@pytest.mark.skipif(not CLI_EXISTS, reason="src/jobgate/cli.py does not exist yet")
def test_cli_subprocess_finds_and_fixes_state_in_the_default_places(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    env = _isolated_env(tmp_path)
    in_data = make_workspace(tmp_path / "plugin-data" / "state", [job("task-a", dead_pid())])
    in_home = make_workspace(
        tmp_path / "home" / ".claude" / "plugins" / "data" / "codex-x" / "state",
        [job("task-b", zombie_pid(procs))],
    )
    in_tmp = make_workspace(tmp_path / "tmp" / "codex-companion", [job("task-c", dead_pid())])

    report = run_doctor("--json", env=env)
    assert report.code == 1, report.err
    assert sorted(f["jobId"] for f in report.json()["findings"]) == ["task-a", "task-b", "task-c"]

    fixed = run_doctor("--fix", env=env)
    assert fixed.code == 0, fixed.err
    assert "Fixed 3 jobs" in fixed.out
    for ws in (in_data, in_home, in_tmp):
        assert load(ws / "state.json")["jobs"][0]["status"] == "failed"
    assert run_doctor(env=env).code == 0

    help_text = subprocess.run(
        [sys.executable, "-m", "jobgate", "doctor", "codex", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "examples:" in help_text and "exit status:" in help_text


@pytest.mark.skipif(not CLI_EXISTS, reason="src/jobgate/cli.py does not exist yet")
def test_cli_subprocess_searches_claude_config_dir_codex_plugins_only(tmp_path: Path) -> None:
    env = _isolated_env(tmp_path)
    config = tmp_path / "config"
    env["CLAUDE_CONFIG_DIR"] = str(config)
    data = config / "plugins" / "data"
    codex = make_workspace(data / "openai-codex" / "state", [job("task-a", dead_pid())])
    # another plugin's look-alike state must never be rewritten in Codex's failure shape
    other = make_workspace(data / "someone-else" / "state", [job("task-o", dead_pid())])
    other_before = snapshot(other)

    fixed = run_doctor("--fix", "--json", env=env)
    assert fixed.code == 0, fixed.err
    report = fixed.json()
    assert [f["jobId"] for f in report["findings"]] == ["task-a"]
    assert load(codex / "state.json")["jobs"][0]["status"] == "failed"
    assert snapshot(other) == other_before
    assert report["searched"] == [
        str(tmp_path / "plugin-data" / "state"),
        str(data / "*codex*" / "state"),
        str(tmp_path / "home" / ".claude" / "plugins" / "data" / "*codex*" / "state"),
        str(tmp_path / "tmp" / "codex-companion"),
    ]  # patterns that matched nothing are listed too
    assert report["stateRoots"] == [str(data / "openai-codex" / "state")]


@pytest.mark.skipif(not CLI_EXISTS, reason="src/jobgate/cli.py does not exist yet")
def test_cli_subprocess_empty_state_root_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = run_doctor("--state-root", "", env=_isolated_env(tmp_path))
    assert result.code == 2 and result.out == ""
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


@pytest.mark.skipif(not CLI_EXISTS, reason="src/jobgate/cli.py does not exist yet")
def test_cli_subprocess_bad_state_root_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = run_doctor("--state-root", tmp_path / "missing", env=_isolated_env(tmp_path))
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_help_explains_verdicts_tolerance_exit_status_with_an_example() -> None:
    parser = argparse.ArgumentParser(prog="jobgate")
    doctor_cli.add_parser(parser.add_subparsers())
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args(["doctor", "codex", "--help"])
    help_text = out.getvalue()
    for verdict in ("gone", "reused", "alive", "unverifiable"):
        assert verdict in help_text
    assert f"tolerance of {doctor_codex.TIME_TOLERANCE_SECONDS:g} seconds" in help_text
    unverifiable = help_text[help_text.index("  unverifiable") : help_text.index("No process")]
    assert "start" in unverifiable and "time unreadable" in unverifiable
    assert "$CLAUDE_CONFIG_DIR/plugins/data/*codex*/state" in help_text
    assert "~/.claude/plugins/data/*codex*/state" in help_text
    assert "exit status:" in help_text and "1  stuck jobs remain" in help_text
    assert "jobgate doctor codex --fix" in help_text


def test_nothing_found_anywhere_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAUDE_PLUGIN_DATA", str(tmp_path / "pd"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    result = run_doctor()
    assert result.code == 0
    assert "No Codex companion state found" in result.out
    assert str(tmp_path / "pd" / "state") in result.out
    assert str(tmp_path / "home" / ".claude" / "plugins" / "data" / "*codex*" / "state") in (
        result.out
    )
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    searched = run_doctor("--json").json()["searched"]
    assert searched == [
        str(tmp_path / "pd" / "state"),
        str(tmp_path / "home" / ".claude" / "plugins" / "data" / "*codex*" / "state"),
        str(tmp_path / "codex-companion"),
    ]
