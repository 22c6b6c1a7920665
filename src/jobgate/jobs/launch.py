"""Create jobs and start them: in the foreground, or with a detached worker.

Background start, all inside one locked transaction so the record is never visible
without a process identity (invariant 2):

1. spawn ``python -m jobgate.jobs.worker STATE_DIR ID`` in its own session, stdio away
   from the caller (stdin and stdout to /dev/null, stderr to the job log), so a
   caller that waits for its pipes to close (a test runner, a hook) is never held;
2. capture the worker's identity (pid + start time) and write the ``queued`` record.

The worker blocks on the lock until that commit, then starts the command.
"""

from __future__ import annotations

import os
import subprocess
import sys

from jobgate.proc import liveness
from jobgate.state import config as config_mod
from jobgate.state import model
from jobgate.state.errors import EXIT_FAILED, JobgateError
from jobgate.state.store import Store, log_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _check_command(command: list[str]) -> None:
    if not command:
        raise JobgateError("missing command: give it after --, e.g. jobgate run -- make test")
    if not command[0]:
        raise JobgateError("the command's program name is empty (jobgate run -- '' ...)")


def _new_record(
    store: Store,
    command: list[str],
    *,
    cwd: str,
    kind: str,
    name: str | None,
    session_id: str | None,
    extra: dict[str, Any] | None,
) -> model.Job:
    job_id = model.new_id(kind)
    job = model.new_job(
        job_id=job_id,
        command=command,
        cwd=cwd,
        kind=kind,
        name=name,
        session_id=session_id,
        log_file=store.log_path(job_id),
    )
    if extra:
        job.update(extra)
    return job


def start_background(
    store: Store,
    command: list[str],
    *,
    cwd: str,
    kind: str = "run",
    name: str | None = None,
    session_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> model.Job:
    """Record a job and start its detached worker; returns the committed record."""
    _check_command(command)
    store.ensure()
    job = _new_record(
        store, command, cwd=cwd, kind=kind, name=name, session_id=session_id, extra=extra
    )
    log_path = job["logFile"]
    with store.transaction() as tx:
        tx.max_finished = config_mod.effective(store.read_config())["maxJobs"]
        log_line(log_path, f"jobgate: job {job['id']} created")
        err_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        # A job started from inside another job's command is a job of its own: its worker
        # must not carry the outer job's mark, or ending the outer job's tree (cancel,
        # session end) would end this one too and leave its record to be found "lost".
        env = {k: v for k, v in os.environ.items() if k != model.JOB_ENV}
        env[model.WORKER_ENV] = job["id"]
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER_BOOT, _package_parent(), store.state_dir, job["id"]],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err_fd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise JobgateError(f"cannot start the jobgate worker: {exc}", EXIT_FAILED) from None
        finally:
            os.close(err_fd)
        ident = liveness.capture(proc.pid) or {"pid": proc.pid}
        job = model.touch(job, pid=proc.pid, workerProcess=ident)
        tx.put(job)
    return job


#: the worker imports this very jobgate (also when it runs from a source tree) without
#: putting anything into the environment that the job's command inherits
_WORKER_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from jobgate.jobs.worker import main; raise SystemExit(main(sys.argv[2:]))"
)


def _package_parent() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_foreground(
    store: Store,
    command: list[str],
    *,
    cwd: str,
    kind: str = "run",
    name: str | None = None,
    session_id: str | None = None,
    extra: dict[str, Any] | None = None,
    stdout_to_stderr: bool = False,
) -> tuple[model.Job, int]:
    """Run the command here, output passing through (all of it to stderr with
    ``stdout_to_stderr``); returns (record, exit code)."""
    from jobgate.jobs import worker

    _check_command(command)
    store.ensure()
    job = _new_record(
        store, command, cwd=cwd, kind=kind, name=name, session_id=session_id, extra=extra
    )
    me = liveness.capture(os.getpid())
    with store.transaction() as tx:
        tx.max_finished = config_mod.effective(store.read_config())["maxJobs"]
        # ``foreground``: whoever ran it saw its output and exit code as it ended, so the
        # user-prompt-submit hook never announces it as a finished background job
        tx.put(model.touch(job, pid=os.getpid(), workerProcess=me, foreground=True))
    code = worker.run_job(store, job["id"], foreground=True, stdout_to_stderr=stdout_to_stderr)
    with store.transaction() as tx:
        final = tx.get(job["id"]) or job
    return final, code
