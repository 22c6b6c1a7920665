"""The worker: the process that starts a job's command and records how it ended.

Background jobs run it detached (``python -m jobgate.jobs.worker STATE_DIR JOB_ID``, own
session, stdio away); a foreground ``jobgate run`` runs it in-process, teeing the output.

The command runs in a new session (so it and its process group can be ended as one)
with ``JOBGATE_JOB_ID`` in its environment, which lets ``cancel`` find descendants that
left the group and were orphaned. In the background the command writes straight to the
job log, so it outlives a killed worker (the job then stays running until the command
ends too; see :mod:`jobgate.jobs.reconcile`).
"""

from __future__ import annotations

import os
import sys
import time

from jobgate.jobs import lifecycle
from jobgate.jobs.output import end_line, finish, log_size
from jobgate.proc import liveness, signums
from jobgate.proc.spawn import ForkedCommand, HeldCommand, start_held
from jobgate.state import model
from jobgate.state.fileio import open_log
from jobgate.state.files import LockContext
from jobgate.state.store import Store, log_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: lock timeout of the worker's own writes: it waits as long as it takes, since only it
#: can record that the command started or how it ended
FOREVER = float("inf")

JOB_ENV = model.JOB_ENV
WORKER_ENV = model.WORKER_ENV


def _start_command(
    job: model.Job, log_path: str, foreground: bool
) -> tuple[HeldCommand | None, str | None]:
    """The job's command, started held at its gate (:mod:`jobgate.proc.spawn`), or why not."""
    env = {k: v for k, v in os.environ.items() if k != WORKER_ENV}
    env[JOB_ENV] = str(job["id"])
    argv = [str(a) for a in job.get("command") or []]
    if not argv:
        return None, "no command to run"
    cwd = job.get("cwd") or None
    if cwd is not None and not os.path.isdir(cwd):
        return None, f"the job's directory {cwd} does not exist"
    import subprocess  # not on the background worker's way (jobgate.proc.spawn.fork_held)

    try:
        if foreground:
            held = start_held(
                argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        else:
            fd = open_log(log_path)
            try:
                held = start_held(
                    argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd
                )
            finally:
                os.close(fd)
    except OSError as exc:
        return None, f"cannot run {argv[0]}: {exc.strerror or exc}"
    return held, None


#: what a foreground job ended by Ctrl-C is recorded with (``cancelled``, not ``failed``)
INTERRUPTED = "interrupted (Ctrl-C): the user stopped the foreground run"


def _ended(
    code: int, sig: int | None, output: str, interrupted: bool, ended_at: float, found: model.Job
) -> Callable[[model.Job], model.Job]:
    """The change that records the command's end (``completedAt``: ``ended_at``, however
    late it is written). A foreground command that ended unsuccessfully after the
    user's Ctrl-C was stopped on purpose: ``cancelled``, its exit code and signal kept.
    One that still exited 0 completed."""

    def change(job: model.Job) -> model.Job:
        ended = model.mark_exited(job, exit_code=code, signal=sig, output=output, ended_at=ended_at)
        ended.update(found)
        if interrupted and code != 0 and ended.get("status") == model.FAILED:
            return model.mark_cancelled(ended, INTERRUPTED)
        return ended

    return change


def run_job(
    store: Store, job_id: str, *, foreground: bool = False, stdout_to_stderr: bool = False
) -> int:
    """Start the job's command, record it running, wait, record the end.

    In the foreground the command's stdout and stderr pass through to ours; with
    ``stdout_to_stderr`` (``run --json``) both go to our stderr, so our stdout carries
    nothing but the JSON record.

    Returns the shell-style exit code (128+N when killed by signal N; 127 when the
    command cannot be started; 1 when there is nothing to run).
    """
    me = liveness.capture(os.getpid())
    log_path = store.log_path(job_id)
    held: HeldCommand | None = None
    try:
        with store.transaction(FOREVER) as tx:
            job = tx.get(job_id)
            if job is None:
                # no index entry: the CLI that spawned this worker failed to commit the
                # record (disk full, ...) and told its caller so; nothing may run unseen
                log_line(log_path, "jobgate: worker found no record for this job; nothing run")
                return 1
            if not foreground and not _is_my_job(job):
                # a queue job claimed twice (a slow claimer's claim expired): the other
                # worker is the job's; this one runs nothing
                log_line(log_path, f"jobgate: worker pid {os.getpid()} is not this job's; exiting")
                return 1
            if not model.is_active(job) or job.get("cancelRequestedAt"):
                if model.is_active(job):
                    tx.put(model.mark_cancelled(job))
                log_line(log_path, "jobgate: job was cancelled before it started")
                return 1
            log_line(log_path, f"jobgate: starting {model_command(job)} (worker pid {os.getpid()})")
            offset = log_size(log_path)
            held, error = _start_command(job, log_path, foreground)
            if held is None:
                assert error is not None
                tx.put(
                    model.mark_failed(model.touch(job, pid=os.getpid(), workerProcess=me), error)
                )
            else:
                # held at its gate: alive, so its identity can be captured, but not yet
                # running the command; it runs only once this record is committed
                child = liveness.capture(held.pid) or {"pid": held.pid}
                tx.put(model.mark_running(job, worker=me, command=child, output_offset=offset))
    except BaseException:
        if held is not None:
            held.abandon()  # the record did not commit: the command must never run
        raise
    if held is None:
        assert error is not None
        code = _cannot_run(log_path, error, foreground)
        lifecycle.after_end(store, job_id, stay=not foreground)
        return code
    return _run_held(store, job, held, child, log_path, offset, foreground, stdout_to_stderr)


def _run_held(
    store: Store,
    job: model.Job,
    held: HeldCommand | ForkedCommand,
    child: dict[str, Any],
    log_path: str,
    offset: int,
    foreground: bool = False,
    stdout_to_stderr: bool = False,
) -> int:
    """From a committed start on: release the held command, wait for it, record its end
    and what follows it. Returns the shell-style exit code."""
    job_id = str(job["id"])
    # logged before the release, so no output of the command can come before it (a first
    # output line without its newline would glue to it)
    log_line(log_path, f"jobgate: running, command pid {held.pid}")
    forwarded: list[int] = []
    if foreground:
        assert isinstance(held, HeldCommand)
        # from the release on, Ctrl-C & co. must reach the command, not end jobgate
        # and leave the command running unseen
        from jobgate.jobs.foreground import forward_signals  # imports signal

        forwarded = forward_signals(held.proc)
    program = str((job.get("command") or ["?"])[0])
    if os.sep in program and job.get("cwd"):
        program = os.path.join(str(job["cwd"]), program)
    error = held.release(program, os.environ.get("PATH"))
    wait = held.proc.wait if isinstance(held, HeldCommand) else held.wait
    if error is not None:
        wait()
        _record_end(store, job_id, lambda j: model.mark_failed(j, error))
        code = _cannot_run(log_path, error, foreground)
        lifecycle.after_end(store, job_id, stay=not foreground)
        return code
    watchdog = lifecycle.Watchdog(store, job, child, log_path)
    watchdog.start()

    if foreground:
        assert isinstance(held, HeldCommand)
        from jobgate.jobs.foreground import pump, stream

        out = stream(sys.stderr if stdout_to_stderr else sys.stdout)
        pump(held.proc, log_path, out, stream(sys.stderr))
    returncode = wait()
    ended_at = time.time()  # the end's time, not the (maybe much later) write's
    watchdog.stop()
    code, sig = model.exit_code_of(returncode)
    # agent tasks (jobgate.agents.task): the agent's final message and session id
    output, found = finish(store, job, log_path, offset)
    what = f"killed by signal {sig}" if sig else f"exited with code {code}"
    interrupted = signums.number("SIGINT") in forwarded
    ended = _ended(code, sig, output, interrupted, ended_at, found)
    _record_end(store, job_id, lambda j: lifecycle.limit_hit(ended(j), watchdog.hit))
    end_line(log_path)
    log_line(log_path, f"jobgate: command {what}" + (" after Ctrl-C" if interrupted else ""))
    lifecycle.after_end(store, job_id, stay=not foreground)
    return code


def run_launched(store: Store, job_id: str, gate_r: int, report_w: int) -> int:
    """The background worker's side of :mod:`jobgate.jobs.handshake`: take the job from
    the launcher, fork its command held at its gate, report it, and run it once the
    launcher has committed it ``running`` (or, if the launcher died, once the index shows
    this command on record)."""
    from jobgate.jobs import handshake

    log_path = store.log_path(job_id)
    try:
        job: model.Job = handshake.read_spec(gate_r)
    except (OSError, ValueError, UnicodeError):
        os.close(report_w)
        handshake.await_verdict(gate_r)
        log_line(log_path, "jobgate: worker got no job from its launcher; nothing run")
        return 1
    log_line(log_path, f"jobgate: starting {model_command(job)} (worker pid {os.getpid()})")
    offset = log_size(log_path)
    held, error = _fork_command(job, log_path)
    if held is None:
        handshake.report(report_w, error=error or "")
    else:
        handshake.report(report_w, pid=held.pid, offset=offset)
    verdict = handshake.await_verdict(gate_r)
    if held is not None and verdict != handshake.COMMITTED_RUNNING:
        recorded = _recorded_start(store, job_id, held.pid)
        if recorded is None:
            held.abandon()  # no record names it: it must never run
            log_line(log_path, "jobgate: worker found no record for this job; nothing run")
            return 1
        job = {**job, **recorded}
    if held is None:
        code = _cannot_run(log_path, error or "cannot start the command", False)
        if verdict:
            lifecycle.after_end(store, job_id, stay=True)
        return code
    child = liveness.capture(held.pid) or {"pid": held.pid}
    return _run_held(store, job, held, child, log_path, offset)


def _fork_command(job: model.Job, log_path: str) -> tuple[ForkedCommand | None, str | None]:
    """The job's command forked held at its gate, output to the log, or why not."""
    from jobgate.proc.spawn import fork_held

    env = {k: v for k, v in os.environ.items() if k != WORKER_ENV}
    env[JOB_ENV] = str(job["id"])
    argv = [str(a) for a in job.get("command") or []]
    if not argv:
        return None, "no command to run"
    cwd = job.get("cwd") or None
    if cwd is not None and not os.path.isdir(cwd):
        return None, f"the job's directory {cwd} does not exist"
    try:
        if cwd is not None:
            os.chdir(cwd)
        fd = open_log(log_path)
        try:
            return fork_held(argv, env=env, out_fd=fd), None
        finally:
            os.close(fd)
    except OSError as exc:
        return None, f"cannot run {argv[0]}: {exc.strerror or exc}"


def _recorded_start(store: Store, job_id: str, command_pid: int) -> model.Job | None:
    """The job's record if it is active and names ``command_pid`` as its command (the
    launcher committed it but died before it said so), else None."""
    try:
        job = store.snapshot().lookup(job_id)
    except Exception:  # unreadable index: no record can be shown to name it
        return None
    if job is None or not model.is_active(job) or job.get("cancelRequestedAt"):
        return None
    ident = job.get("commandProcess")
    if not isinstance(ident, dict) or ident.get("pid") != command_pid:
        return None
    return job


def _is_my_job(job: model.Job) -> bool:
    """A queue job's record names its worker (the claimer records it): it must be this
    process. Other jobs' workers are started by the launcher that commits the record."""
    if not isinstance(job.get("queueRank"), (int, float)):
        return True
    ident = job.get("workerProcess")
    return isinstance(ident, dict) and ident.get("pid") == os.getpid()


def _cannot_run(log_path: str, error: str, foreground: bool) -> int:
    """Say why the command could not run (log; and terminal, in the foreground): 127."""
    error = model.one_line(error)  # "command not found: a\nb" stays one line
    log_line(log_path, f"jobgate: {error}")
    if foreground:
        sys.stderr.write(f"jobgate: error: {error}\n")
    return 127


def _record_end(
    store: Store, job_id: str, change: Callable[[model.Job], model.Job], *, patience: float = 3600
) -> None:
    """Write down how the job ended: only the worker knows it, so a busy lock is waited
    for as long as it takes and a failing disk (full, read-only) is retried for up to
    ``patience`` seconds, with a line in the log each time, before giving up."""
    deadline = time.monotonic() + patience
    delay = 1.0
    while True:
        try:
            with store.transaction(FOREVER) as tx:
                job = tx.get(job_id)
                if job is not None:
                    tx.put(change(job))
                    tx.keep_at_most(spare=job_id)  # retention counts it as finished now
            return
        except OSError as exc:
            if time.monotonic() + delay > deadline:
                raise
            try:
                log_line(
                    store.log_path(job_id),
                    f"jobgate: cannot record the end yet ({exc.strerror or exc}); "
                    f"retrying in {delay:g}s",
                )
            except OSError:
                pass
            time.sleep(delay)
            delay = min(delay * 2, 60.0)


def model_command(job: model.Job) -> str:
    """The job's command as a shell line, on one line (control characters escaped)."""
    return model.shell_line([str(a) for a in job.get("command") or []])


def _wait_at_gate(fd_text: str) -> None:
    """Block until the launcher closes its end of the gate pipe (its commit is done or
    failed, or it died), then close ours so the command never inherits it."""
    try:
        fd = int(fd_text)
    except ValueError:
        return
    try:
        while os.read(fd, 64):
            pass
    except OSError:
        pass
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the detached worker: ``python -m jobgate.jobs.worker [GATE_FD
    [REPORT_FD]] STATE_DIR JOB_ID``. With GATE_FD alone it first waits for whoever
    spawned it to close that pipe, then records the start itself (the queue's claimer);
    with REPORT_FD too it takes part in :mod:`jobgate.jobs.handshake` (a launch)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3, 4):
        sys.stderr.write(
            "usage: python -m jobgate.jobs.worker [GATE_FD [REPORT_FD]] STATE_DIR JOB_ID\n"
        )
        return 2
    if len(args) == 3:
        _wait_at_gate(args[0])
    state_dir, job_id = args[-2:]
    try:
        signums.ignore("SIGHUP")
    except (OSError, ValueError):  # pragma: no cover
        pass
    store = Store(state_dir)
    # our stderr is the job's log: a wait for the lock is said there as a log line
    LockContext.tell = lambda text: log_line(store.log_path(job_id), text)
    if len(args) == 4:  # started by a launcher that commits the start (jobgate.jobs.handshake)
        try:
            gate_r, report_w = int(args[0]), int(args[1])
        except ValueError:
            sys.stderr.write("jobgate worker: GATE_FD and REPORT_FD must be numbers\n")
            return 2
        return run_launched(store, job_id, gate_r, report_w)
    return run_job(store, job_id, foreground=False)


if __name__ == "__main__":
    raise SystemExit(main())
