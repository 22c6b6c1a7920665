"""``jobgate restart``: run a finished job again as a new job, linked to it both ways
(``retryOf`` / ``retriedBy``); what is carried over is :data:`jobgate.jobs.lifecycle.CARRIED`."""

from __future__ import annotations

import os

from jobgate.jobs.lifecycle import CARRIED
from jobgate.state import model
from jobgate.state.store import Store, log_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def restart(store: Store, job_id: str, *, queued: bool = False) -> model.Job:
    """A new job that runs finished job ``job_id`` again (same command, cwd, name, kind,
    agent, limits), linked both ways (``retryOf`` / ``retriedBy``); started now, or
    queued. Refused for a job that is still active."""
    from jobgate.jobs import launch
    from jobgate.state.errors import EXIT_FAILED, JobgateError

    old = store.snapshot().lookup(job_id)
    full = dict(store.read_job(job_id) or {})
    full.update(old or {})
    if not full:
        raise JobgateError(f"no job {job_id!r}")
    if model.is_active(full):
        raise JobgateError(
            f"job {job_id} is still {full.get('status')}; cancel it first: jobgate cancel {job_id}",
            EXIT_FAILED,
        )
    command = [str(a) for a in full.get("command") or []]
    extra: dict[str, Any] = {
        k: full[k] for k in CARRIED[4:] if full.get(k) is not None and k != "sessionId"
    }
    earlier = [str(a) for a in full.get("attempts") or [] if isinstance(a, str)]
    extra.update(retryOf=job_id, attempts=[*earlier, job_id], attempt=len(earlier) + 2)
    old_result = full.get("resultFile")
    if isinstance(old_result, str) and old_result in command:
        fresh_result = _new_result_file(store)
        command = [fresh_result if a == old_result else a for a in command]
        extra["resultFile"] = fresh_result
    fields: dict[str, Any] = dict(
        cwd=str(full.get("cwd") or "/"),
        kind=str(full.get("kind") or "run"),
        name=full.get("name"),
        session_id=full.get("sessionId"),
        extra=extra,
    )
    if queued:
        fresh = launch.enqueue(store, command, group=full.get("group"), **fields)
    else:
        fresh = launch.start_background(store, command, **fields)
    with store.transaction() as tx:
        current = tx.get(job_id)
        if current is not None:
            tx.put(model.touch(current, retriedBy=fresh["id"]))
    log_line(store.log_path(job_id), f"jobgate: restarted as {fresh['id']}")
    return fresh


def _new_result_file(store: Store) -> str:
    """A fresh, empty 0600 final-message file in ``jobs/`` for a restarted agent task."""
    import secrets

    while True:
        path = os.path.join(store.jobs_dir, f"{secrets.token_hex(8)}.last-message")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue
        return path
