"""Which processes in a job's tree belong to *another* job: the background jobs started
from inside it (their workers carry ``JOBGATE_WORKER_OF``, their commands
``JOBGATE_JOB_ID``), which cancel must spare. A job-level question — it reads job
records, of this workspace and of another one named by a worker's command line — so it
lives here and hands :func:`jobgate.proc.tree.collect` a predicate.
"""

from __future__ import annotations

import os

from jobgate.proc import liveness
from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import psutil

    from jobgate.proc.tree import Spare


def spare_other_jobs(job_id: str, others: list[dict[str, Any]]) -> Spare:
    """A ``spare`` predicate for :func:`jobgate.proc.tree.collect`: true for a process
    that is, by its recorded and still matching identity, another background job's worker
    or command (those are jobs of their own, and a subreaper in this tree may have
    adopted them). A mark alone proves nothing: a descendant that merely carries another
    id, or one naming a foreground job (which runs inside this job, in step with it),
    stays part of this job's tree and is ended with it; so does anything that carries
    this job's own mark (launch strips it from the jobs started inside)."""
    theirs = {
        pid: claim for job in others if job.get("id") != job_id for pid, claim in _claims(job)
    }

    def spare(proc: psutil.Process, env: dict[str, str]) -> bool:
        if env.get(model.JOB_ENV) == job_id:
            return False
        claim = theirs.get(proc.pid) or _worker_of_another_workspace(proc, job_id)
        if claim is None:
            return False
        return env.get(claim["mark"]) == claim["id"] and liveness.is_alive(claim["ident"])

    return spare


#: an index file larger than this, named by some process's command line, is not read
FOREIGN_INDEX_MAX_BYTES = 16 << 20


def _worker_of_another_workspace(proc: psutil.Process, job_id: str) -> dict[str, Any] | None:
    """A background worker's claim on ``proc`` when it serves a job of *another*
    workspace: its command line names that workspace's state dir and its job, whose
    record (read from there) holds the worker identity to check. Anything odd about
    that state dir (not ours, too big, not jobgate's JSON) means no claim: the process
    is then ended with this job's tree."""
    try:
        return _claim_from_state_dir(proc, job_id)
    except Exception:  # a process's command line is anyone's to write
        return None


def _claim_from_state_dir(proc: psutil.Process, job_id: str) -> dict[str, Any] | None:
    import psutil

    try:
        argv = proc.cmdline()
    except psutil.Error:
        return None
    if len(argv) < 3 or argv[-1] == job_id:
        return None
    for job in _foreign_active_jobs(argv[-2]):
        if job.get("id") == argv[-1]:
            for pid, claim in _claims(job):
                if pid == proc.pid and claim["mark"] == model.WORKER_ENV:
                    return claim
    return None


def _foreign_active_jobs(state_dir: str) -> list[dict[str, Any]]:
    """The active jobs of another workspace's index (either version), read only if the
    file is ours and not too big; else none."""
    from jobgate.state import index
    from jobgate.state.fileio import read_json

    for name in (index.ACTIVE, index.LEGACY):
        path = os.path.join(state_dir, name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_uid != os.geteuid() or st.st_size > FOREIGN_INDEX_MAX_BYTES:
            return []
        data = read_json(path)
        if name == index.ACTIVE:
            return index.parse_active(path, data)[0]
        return [j for j in index.parse_legacy(path, data) if model.is_active(j)]
    return []


def _claims(job: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """``(pid here, claim)`` for each live process of an active background ``job``: its
    worker and command, each with the environment mark it must carry. A foreground job
    runs inside whoever started it and claims nothing."""
    if not model.is_active(job) or job.get("foreground"):
        return []
    out = []
    for key, mark in (("workerProcess", model.WORKER_ENV), ("commandProcess", model.JOB_ENV)):
        ident = job.get(key)
        if isinstance(ident, dict) and isinstance(ident.get("pid"), int):
            local = liveness.localize(ident)  # verified alive, with its pid here
            if local is not None:
                out.append((local["pid"], {"ident": local, "mark": mark, "id": job.get("id")}))
    return out
