"""A job's life past its command: the limits that end it (``--timeout``, ``--stall``),
the retries that follow a failure (``--retries N``), and ``restart``.

Limits are the record's ``timeoutSeconds`` (running longer than that) and
``stallSeconds`` (no new byte in its log for that long). The worker watches them from a
thread (:class:`Watchdog`); when one is passed it ends the command's whole tree as cancel
does (TERM, a grace period, KILL; other jobs started inside it are spared) and the end is
recorded ``failed`` with phase ``timeout`` or ``stalled``.

A retry is a new job, queued (so the queue starts it, after its backoff, whoever is
there to see it): same command, cwd, name, kind and agent; ``retryOf`` names the job it
retries and that job gets ``retriedBy``; ``attempt`` counts from 1 and ``attempts``
lists every earlier attempt's id, oldest first.
"""

from __future__ import annotations

import os
import time

from jobgate.state import model
from jobgate.state.store import Store, log_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from typing import Any

PHASE_TIMEOUT = "timeout"
PHASE_STALLED = "stalled"

#: seconds between TERM and KILL when a limit ends a job
KILL_GRACE = 5.0

#: the first retry waits this long, each next one twice as long, at most BACKOFF_MAX
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0

#: what a restart carries over from the job it restarts
CARRIED = (
    "command",
    "cwd",
    "name",
    "kind",
    "sessionId",
    "agent",
    "group",
    "timeoutSeconds",
    "stallSeconds",
)


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


class Watchdog:
    """Ends the command when it passes the job's time or stall limit; :attr:`hit` then
    holds ``(phase, message)`` for the end the worker records."""

    def __init__(
        self, store: Store, job: model.Job, command: dict[str, Any], log_path: str
    ) -> None:
        self.store = store
        self.job = job
        self.command = command
        self.log_path = log_path
        self.timeout = _number(job.get("timeoutSeconds"))
        self.stall = _number(job.get("stallSeconds"))
        self.hit: tuple[str, str] | None = None
        self._done: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.timeout is None and self.stall is None:
            return
        import threading  # only with a limit to watch: most workers never need it

        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._done,), name="jobgate-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._done is not None and self._thread is not None:
            self._done.set()
            self._thread.join(KILL_GRACE + 10.0)

    def _size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return -1

    def _run(self, done: threading.Event) -> None:
        began = time.monotonic()
        size, changed = self._size(), began
        limits = [x for x in (self.timeout, self.stall) if x is not None]
        poll = max(0.05, min(1.0, min(limits) / 10))
        while not done.wait(poll):
            now = time.monotonic()
            current = self._size()
            if current != size:
                size, changed = current, now
            if self.timeout is not None and now - began >= self.timeout:
                self._end(PHASE_TIMEOUT, f"timed out: ran longer than {_span(self.timeout)}")
                return
            if self.stall is not None and now - changed >= self.stall:
                self._end(PHASE_STALLED, f"stalled: no new output for {_span(self.stall)}")
                return

    def _end(self, phase: str, message: str) -> None:
        from jobgate.jobs import claims
        from jobgate.proc import tree as proctree

        self.hit = (phase, message)
        job_id = str(self.job["id"])
        try:
            log_line(self.log_path, f"jobgate: {message}; ending its process tree")
        except OSError:
            pass
        try:
            others = self.store.read_active()
        except Exception:
            others = []
        procs = proctree.collect([self.command], job_id, claims.spare_other_jobs(job_id, others))
        proctree.terminate_tree(procs, KILL_GRACE)


def _span(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def limit_hit(job: model.Job, hit: tuple[str, str] | None) -> model.Job:
    """The recorded end of a job a :class:`Watchdog` ended: ``failed`` with its phase
    (unless a cancel came first and was recorded as such)."""
    if hit is None or job.get("status") == model.CANCELLED:
        return job  # a cancel came first: it stands
    phase, message = hit
    return model.touch(job, status=model.FAILED, phase=phase, errorMessage=message)


def backoff(attempt: int) -> float:
    """Seconds before retry number ``attempt`` (1 = the first retry)."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** max(0, attempt - 1)))


def successor(old: model.Job, store: Store, *, not_before: float | None = None) -> model.Job:
    """A new queued record that runs ``old`` again, linked to it (``retryOf``)."""
    from jobgate.jobs import queue

    kind = str(old.get("kind") or "run")
    job_id = store.new_job_id(kind)
    fresh = model.new_job(
        job_id=job_id,
        command=[str(a) for a in old.get("command") or []],
        cwd=str(old.get("cwd") or "/"),
        kind=kind,
        name=old.get("name"),
        session_id=old.get("sessionId"),
        log_file=store.log_path(job_id),
    )
    for key in CARRIED:
        if old.get(key) is not None and key not in ("command", "cwd", "kind", "sessionId"):
            fresh[key] = old[key]
    earlier = [str(a) for a in old.get("attempts") or [] if isinstance(a, str)]
    fresh.update(
        retryOf=old["id"],
        attempt=int(old.get("attempt") or 1) + 1,
        attempts=[*earlier, str(old["id"])],
        phase=queue.PHASE_WAITING,
        queueRank=float(old["queueRank"]) if queue.is_queue_job(old) else 0.0,
    )
    if not_before is not None:
        fresh["notBefore"] = model.now_iso(not_before)
    return fresh


def schedule_retry(store: Store, job_id: str) -> model.Job | None:
    """After ``job_id`` ended: if it failed (not cancelled, not by a failed dependency)
    and has retries left, queue its next attempt after the backoff. Returns it."""
    from jobgate.jobs import queue

    with store.transaction(float("inf")) as tx:
        old = tx.get(job_id)
        left = old.get("retriesLeft") if old else None
        if (
            old is None
            or old.get("status") != model.FAILED
            or old.get("phase") == queue.PHASE_DEPENDENCY
            or old.get("retriedBy")
            or not isinstance(left, int)
            or left < 1
        ):
            return None
        attempt = int(old.get("attempt") or 1)
        fresh = successor(old, store, not_before=time.time() + backoff(attempt))
        fresh["retriesLeft"] = left - 1
        if not queue.is_queue_job(old):
            fresh["queueRank"] = queue.rank_before(tx.jobs, None, queue.group_of(fresh))
        tx.put(fresh)
        tx.put(model.touch(old, retriedBy=fresh["id"]))
    note = f"jobgate: will retry as {fresh['id']} (attempt {attempt + 1})"
    log_line(store.log_path(job_id), note)
    log_line(fresh["logFile"], f"jobgate: job {fresh['id']} created: retry of {job_id}")
    return fresh


def after_end(store: Store, job_id: str, *, stay: bool) -> None:
    """What follows a job's end: its retry (if due) and the queue's next jobs. With
    ``stay`` (a detached worker, nobody waits on it), a retry's backoff is waited out
    here and the queue advanced again, so the retry starts on time even if no reader
    comes by."""
    from jobgate.jobs import dispatch

    job = store.snapshot().lookup(job_id) or {}
    try:
        # the lock only for a job that asked for retries
        retry = schedule_retry(store, job_id) if job.get("retriesLeft") else None
    except Exception as exc:  # the end is recorded; a retry that cannot be is said
        _say(store, job_id, f"jobgate: cannot schedule a retry: {exc}")
        retry = None
    dispatch.advance(store)
    if retry is None or not stay:
        return
    due = model.parse_iso(retry.get("notBefore"))
    if due is not None:
        time.sleep(max(0.0, due - time.time()) + 0.01)
    dispatch.advance(store)


def _say(store: Store, job_id: str, text: str) -> None:
    try:
        log_line(store.log_path(job_id), text)
    except Exception:
        pass
