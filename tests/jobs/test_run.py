"""`jobgate run`: foreground pass-through and exit codes, background start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import Env


def test_foreground_run_passes_output_and_exit_code_and_records_failure(jg: Env) -> None:
    proc = jg.cli("run", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert proc.returncode == 3
    # each stream stays itself: `jobgate run -- cmd 2>/dev/null` drops only the errors
    assert proc.stdout == "out\n" and proc.stderr == "err\n"
    jobs = jg.cli_json("status", "--all")["jobs"]
    assert len(jobs) == 1
    assert jobs[0]["status"] == "failed" and jobs[0]["exitCode"] == 3
    log = jg.cli("log", jobs[0]["id"]).stdout  # the log keeps both
    assert "out\n" in log and "err\n" in log


def test_foreground_run_records_completed_with_output_as_result(jg: Env) -> None:
    proc = jg.cli("run", "--name", "hello", "--", "sh", "-c", "echo hello world")
    assert proc.returncode == 0, proc.stderr
    result = jg.cli_json("result")["job"]
    assert result["status"] == "completed"
    assert result["exitCode"] == 0
    assert result["output"] == "hello world\n"


def test_foreground_killed_by_signal_exits_128_plus_signal(jg: Env) -> None:
    proc = jg.cli("run", "--", "sh", "-c", "kill -KILL $$")
    assert proc.returncode == 128 + 9
    job = jg.cli_json("status", "--all")["jobs"][0]
    assert job["status"] == "failed" and job["exitCode"] == 137 and job["signal"] == 9


def test_background_run_prints_id_first_and_json_has_int_pid(jg: Env) -> None:
    proc = jg.cli("run", "--background", "--", "true")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("run-")
    brief = jg.start("sh", "-c", "echo hi")
    assert set(brief) >= {"id", "status", "pid"}
    assert isinstance(brief["pid"], int) and brief["pid"] > 0
    job = jg.wait_for(brief["id"], lambda j: j["status"] == "completed")
    assert job["exitCode"] == 0
    assert json.loads(jg.cli("result", brief["id"], "--json").stdout)["job"]["output"] == "hi\n"


def test_missing_program_fails_the_job_with_a_clear_message(jg: Env) -> None:
    proc = jg.cli("run", "--", "no-such-program-xyz")
    assert proc.returncode == 127
    assert "command not found: no-such-program-xyz" in proc.stderr
    assert "Traceback" not in proc.stderr
    job = jg.cli_json("status", "--all")["jobs"][0]
    assert job["status"] == "failed"


def test_result_of_a_running_job_is_a_clear_error_naming_wait(jg: Env) -> None:
    brief = jg.start("sleep", "300")
    # running, not still queued (on a busy machine the worker may not have started yet)
    jg.wait_for(brief["id"], lambda j: j["status"] == "running")
    proc = jg.cli("result", brief["id"])
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"jobgate wait {brief['id']}" in proc.stderr and "still running" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_status_json_names_the_workspace_and_state_dir_and_lists_newest_first(jg: Env) -> None:
    first = jg.cli("run", "--name", "first", "--", "true")
    second = jg.cli("run", "--name", "second", "--", "true")
    assert first.returncode == 0 and second.returncode == 0
    view = jg.cli_json("status")
    assert view["workspaceRoot"] == str(jg.workspace.resolve())
    assert view["stateDir"] == str(jg.state_dir())
    assert [j["name"] for j in view["jobs"]] == ["second", "first"]
    one = jg.cli_json("status", view["jobs"][1]["id"])
    assert set(one) == {"job"} and one["job"]["name"] == "first"


def test_status_all_lists_more_finished_jobs_than_the_default_view(jg: Env) -> None:
    for n in range(14):
        assert jg.cli("run", "--name", f"job{n:02d}", "--", "true").returncode == 0
    short = jg.cli("status").stdout
    full = jg.cli("status", "--all").stdout
    assert "job13" in short and "job00" not in short
    assert all(f"job{n:02d}" in full for n in range(14))


def test_foreground_run_json_prints_only_the_record_and_passes_output_to_stderr(jg: Env) -> None:
    proc = jg.cli("run", "--json", "--", "sh", "-c", "echo out; echo err >&2")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)["job"]  # `jobgate run --json -- cmd | jq` works
    assert record["status"] == "completed"
    # two pipes: their relative order is up to the scheduler, their content is not
    assert sorted(record["output"].splitlines()) == ["err", "out"]
    assert sorted(proc.stderr.splitlines()) == ["err", "out"]


def test_output_without_a_final_newline_stays_apart_from_jobgates_own_lines(jg: Env) -> None:
    proc = jg.cli("run", "--", "printf", "%s", "no newline at the end")
    assert proc.returncode == 0 and proc.stdout == "no newline at the end"
    job = jg.cli_json("result")["job"]
    assert job["output"] == "no newline at the end"
    log = jg.cli("log", job["id"]).stdout.splitlines()
    assert "no newline at the end" in log  # a line of its own in the log
    assert log[-1].endswith("jobgate: command exited with code 0")


def test_bytes_that_are_not_utf8_are_kept_in_the_result(jg: Env) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jobgate", "run", "--", "printf", "caf\\351\\n"],
        cwd=jg.workspace,
        env=jg.env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout == b"caf\xe9\n"
    result = subprocess.run(
        [sys.executable, "-m", "jobgate", "result"],
        cwd=jg.workspace,
        env=jg.env,
        capture_output=True,
        timeout=60,
    )
    assert b"caf\xe9\n" in result.stdout  # the byte itself, not U+FFFD


def test_foreground_run_with_stdout_closed_still_runs_and_records(jg: Env) -> None:
    code = "import sys; from jobgate.cli.main import main; raise SystemExit(main(sys.argv[1:]))"
    proc = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -c "{code}" run -- echo into-the-log >&-'],
        cwd=jg.workspace,
        env=jg.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    job = jg.cli_json("result")["job"]
    assert job["status"] == "completed" and job["output"] == "into-the-log\n"


def _launch_while_locked(jg: Env, marker: Path) -> tuple[subprocess.Popen[str], int]:
    """Start ``run --background -- touch MARKER`` while the test holds the state lock;
    returns the launcher and the pid of the worker it spawned (found by its mark)."""
    import time

    import psutil

    launcher = subprocess.Popen(
        [sys.executable, "-m", "jobgate", "run", "--background", "--", "touch", str(marker)],
        cwd=str(jg.workspace),
        env=jg.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for proc in psutil.Process(launcher.pid).children():
            try:
                if "JOBGATE_WORKER_OF" in proc.environ():
                    return launcher, proc.pid
            except psutil.Error:
                continue
        time.sleep(0.02)
    launcher.kill()
    launcher.wait()
    raise AssertionError("the launcher never spawned its worker")


def test_run_background_spawns_its_worker_before_taking_the_lock_and_it_waits_for_the_commit(
    jg: Env, tmp_path: Path
) -> None:
    import time

    store = jg.store()
    marker = tmp_path / "ran"
    with store.lock():
        launcher, _worker = _launch_while_locked(jg, marker)
        time.sleep(0.5)  # the worker exists, the launcher waits for the lock
        assert launcher.poll() is None
        assert not marker.exists()  # the command has not run: nothing is committed yet
        assert store.read_index() == []
    out, err = launcher.communicate(timeout=30)
    assert launcher.returncode == 0, err
    job_id = out.split()[0]
    assert jg.wait_for(job_id, lambda j: j["status"] == "completed")["exitCode"] == 0
    assert marker.exists()


def test_a_launcher_killed_before_its_commit_leaves_a_worker_that_runs_nothing(
    jg: Env, tmp_path: Path
) -> None:
    import psutil

    store = jg.store()
    marker = tmp_path / "ran"
    with store.lock():
        launcher, worker = _launch_while_locked(jg, marker)
        launcher.kill()  # SIGKILL while it waits for the lock: nothing committed
        launcher.communicate(timeout=30)
        # the gate's write end died with the launcher: the worker wakes, needs the lock
        # to look for its record, and finds none once it has it
    try:
        psutil.Process(worker).wait(timeout=30)
    except psutil.NoSuchProcess:
        pass
    assert store.read_index() == []
    assert not marker.exists()


def test_the_worker_boots_the_jobgate_that_launched_it() -> None:
    from jobgate.jobs import workers

    parent = Path(workers._package_parent())
    assert (parent / "jobgate" / "__init__.py").is_file()
    assert (parent / "jobgate" / "jobs" / "workers.py").samefile(workers.__file__)
