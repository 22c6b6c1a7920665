"""Spawning a job's detached worker (:mod:`jobgate.jobs.worker`): its own session,
stdin and stdout on /dev/null, stderr to the job log, waiting at a gate until whoever
spawned it committed (or failed to commit) its identity. Used by the launcher
(:mod:`jobgate.jobs.launch`) and by the queue's claimer (:mod:`jobgate.jobs.dispatch`)."""

from __future__ import annotations

import os
import sys

from jobgate.proc import detach
from jobgate.state import model
from jobgate.state.errors import EXIT_FAILED, JobgateError
from jobgate.state.fileio import open_log
from jobgate.state.store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobgate.proc.detach import Started


def spawn_worker(
    store: Store, job: model.Job, cwd: str, gate_fd: int, report_fd: int | None = None
) -> Started:
    """The detached worker of ``job``: its own session, stdin and stdout on /dev/null,
    stderr to the job log, waiting at ``gate_fd`` before it looks for its record; with
    ``report_fd``, the worker side of :mod:`jobgate.jobs.handshake`."""
    err_fd = open_log(job["logFile"])
    # A job started from inside another job's command is a job of its own: its worker
    # must not carry the outer job's mark, or ending the outer job's tree (cancel,
    # session end) would end this one too and leave its record to be found "lost".
    env = {k: v for k, v in os.environ.items() if k != model.JOB_ENV}
    env[model.WORKER_ENV] = job["id"]
    # STATE_DIR and JOB_ID stay last: cancel reads them off a worker's command line
    argv = [sys.executable, "-S", "-c", _WORKER_BOOT, worker_path(), str(gate_fd)]
    fds: tuple[int, ...] = (gate_fd,)
    if report_fd is not None:
        argv.append(str(report_fd))
        fds = (gate_fd, report_fd)
    try:
        return detach.start(
            [*argv, store.state_dir, job["id"]], cwd=cwd, env=env, stderr_fd=err_fd, pass_fds=fds
        )
    except OSError as exc:
        raise JobgateError(f"cannot start the jobgate worker: {exc}", EXIT_FAILED) from None
    finally:
        os.close(err_fd)


#: the worker imports this very jobgate (also when it runs from a source tree) without
#: putting anything into the environment that the job's command inherits. It starts
#: without ``site`` (``-S``: ~2 ms of CPU a job) and takes its module path whole from
#: the launcher (:func:`worker_path`), so what the launcher could import it can; the
#: ``''`` that ``-c`` puts first (the job's directory) is dropped with it, so a
#: ``select.py`` in the job's folder cannot stand in for the worker's own modules.
_WORKER_BOOT = (
    "import sys; sys.path[:] = sys.argv[1].split('\\n'); "
    "from jobgate.jobs.worker import main; raise SystemExit(main(sys.argv[2:]))"
)


def worker_path() -> str:
    """The worker's module path: this jobgate's folder, then this process's path
    without its first entry (its script's folder or its working directory), one per
    line (a folder's name may hold the path separator; a newline it hardly does)."""
    first = _package_parent()
    rest = [os.path.abspath(p) for p in sys.path[1:] if p]  # the worker runs elsewhere
    return "\n".join(dict.fromkeys([first, *rest]))


def _package_parent() -> str:
    """The folder that holds the ``jobgate`` package this module belongs to."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
