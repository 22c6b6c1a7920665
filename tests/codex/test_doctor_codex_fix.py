"""`jobgate doctor codex --fix`: the rewrite, backups, owners, logs, damaged files, races.

Every test builds plugin-format state folders in a temp dir (tests/codex_plugin_fixtures.py)
and points the command at them with --state-root.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from codex_plugin_fixtures import (
    by_id,
    dead_pid,
    iso,
    job,
    live_pid,
    load,
    make_workspace,
    plugin_dump,
    run_doctor,
    snapshot,
    start_time,
)

from jobgate.codex import doctor as doctor_codex
from jobgate.codex import files as cf
from jobgate.proc import liveness

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


def _plugin_edits_after_backup(
    monkeypatch: pytest.MonkeyPatch,
    path: Path,
    edit: Callable[[dict[str, Any], int], None],
    times: int = 1,
) -> list[bytes]:
    """Make the 'plugin' rewrite ``path`` (``edit(doc, n)`` for its n-th write) right
    after doctor backed it up, i.e. after doctor read it and before it replaces it, at
    most ``times`` times. Returns the bytes of each write."""
    written: list[bytes] = []
    real_backup = cf.write_backup

    def backup_then_race(target: Path, data: bytes, stamp: str) -> Path:
        made = real_backup(target, data, stamp)
        if target == path and len(written) < times:
            doc = load(path)
            edit(doc, len(written))
            path.write_text(plugin_dump(doc))
            written.append(path.read_bytes())
        return made

    monkeypatch.setattr(cf, "write_backup", backup_then_race)
    return written


def _plugin_writes_during_fix(
    monkeypatch: pytest.MonkeyPatch, state_path: Path, times: int
) -> list[str]:
    """The 'plugin' adds a queued job to state.json at each of its writes; their ids."""
    added: list[str] = []

    def add_job(doc: dict[str, Any], n: int) -> None:
        added.append(f"task-new-{n}")
        doc["jobs"].insert(0, job(added[-1], None, status="queued"))

    _plugin_edits_after_backup(monkeypatch, state_path, add_job, times)
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
    """The 'plugin' updates a job file once, with ``change``; the bytes it wrote."""
    return _plugin_edits_after_backup(monkeypatch, job_path, lambda doc, _n: doc.update(change))


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
