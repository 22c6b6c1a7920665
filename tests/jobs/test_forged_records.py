"""A job record anyone edited may name any live process: its identity (pid + start time)
is public in /proc/<pid>/stat. cancel signals only processes that carry the job's mark
(``JOBGATE_JOB_ID``, ``JOBGATE_WORKER_OF``), reports the others, and records the job as
it would one whose processes are gone (issue 14, item 2).

No test here can signal this machine's pid 1, even with the code wrong: its identity is
only handed to the tree collector (which signals nothing), or to a cancel run as a user
id no process has (the kernel refuses that user's signals to pid 1). A cancel run as
root gets the pid 1 of a pid namespace of its own (which cannot see ours). The signal
checks use a decoy: a ``sleep`` of the test's own, in a session of its own, unmarked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import SRC, Env, dead_identity, kill9, pid_alive, start_running
from jobgate.proc import liveness
from jobgate.proc import tree as proctree
from jobgate.state import model

LINUX_ONLY = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the marks are read from /proc/<pid>/environ"
)
pytestmark = LINUX_ONLY


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is no job's: no mark in its environment, its own session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBGATE_")}
    proc = subprocess.Popen(
        ["sleep", "300"], env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _identity(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    ident = liveness.capture(proc.pid)
    assert ident is not None
    return ident


def _forge(jg: Env, job_id: str, **fields: Any) -> None:
    """Write a record as an editor of the state dir would: job file and index."""
    store = jg.store()
    job = model.new_job(
        job_id=job_id, command=["sleep", "300"], cwd="/", log_file=store.log_path(job_id)
    )
    with store.transaction() as tx:
        tx.put(model.touch(job, **fields))


def _cancel(jg: Env, job_id: str, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = jg.cli("cancel", job_id, "--grace", "0.5", "--json", *extra)
    assert "Traceback" not in proc.stderr, proc.stderr
    outcome: dict[str, Any] = json.loads(proc.stdout)
    return proc.returncode, outcome


@pytest.mark.parametrize("forged", ["command", "worker", "both"])
def test_cancel_never_signals_a_live_unmarked_process_a_forged_record_names(
    jg: Env, stranger: subprocess.Popen[bytes], forged: str
) -> None:
    ident = _identity(stranger)
    fields: dict[str, Any] = {"status": model.RUNNING, "phase": "running"}
    if forged in ("command", "both"):
        fields.update(commandPid=ident["pid"], commandProcess=ident)
    if forged in ("worker", "both"):
        fields.update(pid=ident["pid"], workerProcess=ident)
    if forged == "command":
        fields.update(workerProcess=dead_identity())
    _forge(jg, "forged-a", **fields)

    code, outcome = _cancel(jg, "forged-a")
    assert stranger.poll() is None, "cancel signalled a process the record merely named"
    assert outcome["signalled"] == [] and outcome["killed"] == []
    lines = []
    if forged in ("command", "both"):
        lines.append(
            f"command pid {stranger.pid} matches the record but does not carry "
            "JOBGATE_JOB_ID=forged-a: not signalled"
        )
    if forged in ("worker", "both"):
        lines.append(
            f"worker pid {stranger.pid} matches the record but does not carry "
            "JOBGATE_WORKER_OF=forged-a: not signalled"
        )
    assert all(line in outcome["problems"] for line in lines), outcome["problems"]
    # recorded as a job whose processes are gone (as for a reused pid): lost, with why
    assert code == 1
    assert outcome["job"]["status"] == "failed" and outcome["job"]["phase"] == "lost"
    assert lines[0] in outcome["job"]["errorMessage"]
    time.sleep(0.2)
    assert pid_alive(stranger.pid)


def test_an_edited_record_of_a_real_job_spares_the_stranger_and_still_ends_the_job(
    jg: Env, stranger: subprocess.Popen[bytes]
) -> None:
    """The worker is the job's (it carries JOBGATE_WORKER_OF): its own tree, the real
    command included, is ended; the stranger the edited record calls the command is not."""
    job = start_running(jg, "sleep", "300")
    real_command = psutil.Process(job["commandPid"])
    ident = _identity(stranger)
    store = jg.store()
    with store.transaction() as tx:
        record = tx.get(job["id"])
        tx.put(model.touch(record, commandPid=ident["pid"], commandProcess=ident))

    proc = jg.cli("cancel", job["id"], "--grace", "1", "--json")
    outcome = json.loads(proc.stdout)
    assert stranger.poll() is None, "cancel signalled the process the edited record named"
    assert stranger.pid not in outcome["signalled"]
    assert any(
        p.startswith(f"command pid {stranger.pid} matches the record but does not carry")
        for p in outcome["problems"]
    ), outcome["problems"]
    assert real_command.pid in outcome["signalled"]
    deadline = time.monotonic() + 20
    while pid_alive(real_command.pid):
        assert time.monotonic() < deadline, "the real command outlived the cancel"
        time.sleep(0.05)
    assert jg.job(job["id"])["status"] in ("cancelled", "failed")
    assert pid_alive(stranger.pid)


def test_the_tree_collector_never_selects_pid_1_or_an_unmarked_root(
    stranger: subprocess.Popen[bytes],
) -> None:
    """Called directly (it signals nothing): a forged record with pid 1's identity once
    made it select pid 1 and every process on the machine under it."""
    pid1 = liveness.capture(1)
    assert pid1 is not None and liveness.probe(pid1)[0] == liveness.ALIVE
    picked = proctree.collect([pid1], "forged-b")
    assert 1 not in [p.pid for p in picked]
    assert picked == []  # nor any of its descendants: the root was refused
    verdict, evidence = proctree.check_mark(pid1, "forged-b")
    assert verdict in (proctree.UNMARKED, proctree.UNREADABLE)
    assert evidence.startswith("pid 1 matches the record but")

    decoy = _identity(stranger)
    assert proctree.collect([decoy], "forged-b") == []
    assert proctree.check_mark(decoy, "forged-b", (model.JOB_ENV,)) == (
        proctree.UNMARKED,
        f"pid {stranger.pid} matches the record but does not carry JOBGATE_JOB_ID=forged-b",
    )


def test_a_forged_foreground_record_never_gets_the_process_it_names_signalled(
    jg: Env, stranger: subprocess.Popen[bytes]
) -> None:
    """A foreground job's worker is the user's ``jobgate run``, which carries no mark of
    its job: cancel never signals it. One that does not go away is left as it is (it may
    be a real one, still recording the end), and the job with it."""
    ident = _identity(stranger)
    _forge(jg, "forged-c", pid=ident["pid"], workerProcess=ident, foreground=True)
    code, outcome = _cancel(jg, "forged-c")
    assert stranger.poll() is None, "cancel signalled what a foreground record named"
    assert outcome["signalled"] == []
    assert any(
        p.startswith(f"worker pid {stranger.pid} matches the record of this foreground job")
        for p in outcome["problems"]
    ), outcome["problems"]
    assert code == 1 and outcome["job"]["status"] == model.QUEUED


def test_cancel_of_a_real_foreground_job_ends_its_command_and_the_run_records_it(
    jg: Env,
) -> None:
    """Regression guard for the rule above (passes before the fix too): a genuine
    foreground job is still cancelled fully, from another terminal."""
    fg = subprocess.Popen(
        [sys.executable, "-m", "jobgate", "run", "--", "sleep", "300"],
        cwd=jg.workspace,
        env=jg.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            jobs = jg.cli_json("status", "--all")["jobs"]
            if jobs and jobs[0]["status"] == "running" and jobs[0].get("commandPid"):
                break
            assert time.monotonic() < deadline, "the foreground job never started"
            time.sleep(0.1)
        job = jobs[0]
        code, outcome = _cancel(jg, job["id"])
        assert code == 0, outcome
        assert outcome["signalled"] == [job["commandPid"]]
        assert outcome["problems"] == []
        assert fg.wait(timeout=20) == 128 + signal.SIGTERM
        assert jg.job(job["id"])["status"] == "cancelled"
    finally:
        if fg.poll() is None:
            fg.kill()
            fg.wait()


def test_a_command_that_cleared_its_environment_is_still_its_workers_and_ended(
    jg: Env,
) -> None:
    """Regression guard (passes before the fix too): ``env -i`` drops the mark, but the
    command is still the child of the job's marked worker, so it is ended at once."""
    job = start_running(jg, "env", "-i", "sleep", "300")
    deadline = time.monotonic() + 20
    while psutil.Process(job["commandPid"]).name() != "sleep":
        assert time.monotonic() < deadline, "the command never became sleep"
        time.sleep(0.02)
    assert "JOBGATE_JOB_ID" not in psutil.Process(job["commandPid"]).environ()
    code, outcome = _cancel(jg, job["id"])
    assert code == 0 and outcome["problems"] == [], outcome
    assert job["commandPid"] in outcome["signalled"]
    assert jg.job(job["id"])["status"] == "cancelled"


# -- pid 1 through cancel: in a pid namespace of its own, and as a plain user ------------

#: writes a record naming pid 1 as the job's worker and command, the way an editor of the
#: state dir could (``liveness.capture(1)``: the identity is public)
FORGE_PID_1 = """\
import os
from jobgate.proc import liveness
from jobgate.state import model
from jobgate.state.store import Store
from jobgate.state.workspace import state_dir_name
root = os.path.realpath(".")
store = Store(os.path.join(os.environ["JOBGATE_HOME"], state_dir_name(root)), root)
store.ensure()
one = liveness.capture(1)
job = model.new_job(job_id=JOB_ID, command=["sleep", "300"], cwd=root,
                    log_file=store.log_path(JOB_ID))
with store.transaction() as tx:
    tx.put(model.mark_running(job, worker=one, command=one))
"""

#: pid 1 of a new pid namespace: forges a record naming itself, then has a jobgate inside
#: the namespace cancel it, and prints what cancel printed. (A namespace's init ignores
#: every signal it has no handler for, so even a wrong cancel would not end it early.)
BOX_INIT = (
    "import subprocess, sys\n"
    "JOB_ID = 'forged-e'\n"
    + FORGE_PID_1
    + "done = subprocess.run([sys.executable, '-m', 'jobgate', 'cancel', JOB_ID, '--grace',\n"
    "                       '0.5', '--json'], capture_output=True, text=True)\n"
    "sys.stdout.write(done.stdout)\n"
    "sys.stderr.write(done.stderr)\n"
    "raise SystemExit(done.returncode)\n"
)


def _pid_1_problems(outcome: dict[str, Any], job_id: str) -> None:
    for label in ("command", "worker"):
        assert any(
            p.startswith(f"{label} pid 1 matches the record but")
            and f"={job_id}" in p
            and p.endswith("not signalled")
            for p in outcome["problems"]
        ), outcome["problems"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a pid namespace")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_cancel_in_a_pid_namespace_reports_a_record_naming_its_pid_1_and_spares_it(
    jg: Env,
) -> None:
    jg.store()  # the state dir exists before the namespace's jobgate opens it
    box = subprocess.run(
        ["unshare", "-p", "-f", "-m", "--mount-proc", sys.executable, "-c", BOX_INIT],
        env=jg.env,
        cwd=jg.workspace,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in box.stderr, box.stderr
    outcome = json.loads(box.stdout)
    assert outcome["signalled"] == [] and outcome["killed"] == []
    _pid_1_problems(outcome, "forged-e")
    assert "does not carry JOBGATE_JOB_ID=forged-e" in " ".join(outcome["problems"])
    # its environment was read and is not the job's: recorded lost, as a reused pid is
    assert box.returncode == 1
    assert outcome["job"]["status"] == "failed" and outcome["job"]["phase"] == "lost"


# -- as a plain user ----------------------------------------------------------------------


class PlainUser:
    """A user id no process has and no passwd entry names, with a jobgate home of its
    own: whatever a command run as it signals, it can only reach its own processes."""

    def __init__(self, uid: int, base: Path) -> None:
        self.uid = uid
        self.base = base
        self.workspace = base / "ws"
        self.executable = sys.executable
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(base),
            "JOBGATE_HOME": str(base / "home"),
            "PYTHONPATH": os.pathsep.join([SRC, *_site_packages()]),
        }

    def find_python(self) -> str | None:
        """Settle on an interpreter this user may run that imports jobgate and psutil
        (ours may live under a home only root can enter: then the system's of the same
        version, with our site-packages on its path); None, with the reason, if none."""
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        errors = []
        candidates = [sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"]
        for candidate in dict.fromkeys([*candidates, shutil.which(version)]):
            if candidate is not None and not os.path.exists(candidate):
                continue
            if candidate is None:
                continue
            self.executable = candidate
            try:
                probe = self.python("-c", "import jobgate, psutil")
            except OSError as exc:
                errors.append(f"{candidate}: {exc.strerror}")
                continue
            if probe.returncode == 0:
                return None
            errors.append(f"{candidate}: {probe.stderr.strip().splitlines()[-1:]}")
        return "; ".join(errors) or "no interpreter"

    def python(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.executable, *args)

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            cwd=self.workspace,
            env=self.env,
            user=self.uid,
            group=self.uid,
            extra_groups=[],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def jobgate(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.python("-m", "jobgate", *args)

    def processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["uids"]):
            uids = proc.info["uids"]
            if uids is not None and self.uid in (uids.real, uids.effective, uids.saved):
                found.append(proc)
        return found


def _site_packages() -> list[str]:
    import site

    return [p for p in site.getsitepackages() if os.path.isdir(p)]


def _unused_uid() -> int | None:
    import pwd

    taken = {p.pw_uid for p in pwd.getpwall()}
    for proc in psutil.process_iter(["uids"]):
        uids = proc.info["uids"]
        if uids is not None:
            taken.update((uids.real, uids.effective, uids.saved))
    return next((uid for uid in range(61000, 62000) if uid not in taken), None)


@pytest.fixture
def plain_user() -> Iterator[PlainUser]:
    if os.geteuid() != 0:
        pytest.skip("needs root to run commands as a user id no process has")
    uid = _unused_uid()
    if uid is None:
        pytest.skip("no unused user id in 61000-61999")
    base = Path(tempfile.mkdtemp(prefix="jobgate-plain-user-"))
    user = PlainUser(uid, base)
    try:
        user.workspace.mkdir()
        for path in (base, user.workspace):
            os.chown(path, uid, uid)
        why = user.find_python()
        if why is not None:
            pytest.skip(f"user {uid} has no interpreter that imports jobgate: {why}")
        yield user
    finally:
        try:
            kill9(*(p.pid for p in user.processes()))
        finally:
            shutil.rmtree(base, ignore_errors=True)


def test_cancel_as_a_plain_user_reports_a_record_naming_pid_1_and_signals_nothing(
    plain_user: PlainUser,
) -> None:
    # the guard that makes this test safe: this user may not signal pid 1 at all
    check = plain_user.python("-c", "import os; os.kill(1, 0)")
    assert "PermissionError" in check.stderr, "the plain user could signal pid 1"
    made = plain_user.python("-c", "JOB_ID = 'forged-d'\n" + FORGE_PID_1)
    assert made.returncode == 0, made.stderr
    proc = plain_user.jobgate("cancel", "forged-d", "--grace", "0.5", "--json")
    assert "Traceback" not in proc.stderr, proc.stderr
    outcome = json.loads(proc.stdout)
    assert outcome["signalled"] == [] and outcome["killed"] == []
    _pid_1_problems(outcome, "forged-d")
    # its environment cannot be read by this user: not provably someone else's either,
    # so the record stays as it is (as for a pid whose start time cannot be read)
    assert proc.returncode == 1 and outcome["job"]["status"] == model.RUNNING


def test_a_plain_users_own_job_is_readable_to_it_and_cancelled_fully(
    plain_user: PlainUser,
) -> None:
    """Regression guard (passes before the fix too): without root, jobgate still reads
    the marks of the user's own worker and command, so cancel ends them."""
    started = plain_user.jobgate("run", "--background", "--json", "--", "sleep", "300")
    assert started.returncode == 0, started.stderr
    job_id = json.loads(started.stdout)["id"]
    deadline = time.monotonic() + 30
    while True:
        status = json.loads(plain_user.jobgate("status", job_id, "--json").stdout)["job"]
        if status["status"] == "running" and status.get("commandPid"):
            break
        assert time.monotonic() < deadline, "the plain user's job never started"
        time.sleep(0.1)
    proc = plain_user.jobgate("cancel", job_id, "--grace", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout)
    assert outcome["problems"] == [] and status["commandPid"] in outcome["signalled"]
    assert outcome["job"]["status"] == "cancelled"
    assert not pid_alive(status["commandPid"])
