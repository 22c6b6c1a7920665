"""`jobgate doctor codex`: verdicts (gone, reused, alive, unverifiable) and report-only mode.

Every test builds plugin-format state folders in a temp dir and points the command at
them with --state-root; pids come from real processes (live, reaped, zombie, reused).
The harness is tests/codex_plugin_fixtures.py; --fix is in test_doctor_codex_fix.py,
finding the state roots in test_doctor_codex_roots.py.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from codex_plugin_fixtures import (
    by_id,
    dead_pid,
    iso,
    job,
    live_pid,
    load,
    make_workspace,
    run_doctor,
    snapshot,
    start_time,
    zombie_pid,
)

from jobgate.codex import doctor as doctor_codex

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
