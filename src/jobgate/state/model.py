"""The job record: statuses, transitions and the shape of what is stored. No I/O.

A job is a plain JSON object (a ``dict`` with camelCase keys, like the Codex companion's
``state.json``), not a class: records written by other versions keep their unknown keys
untouched, and the hot read path (the Stop hook) pays nothing for object mapping.
Every change goes through one of the pure functions below, which return a *new* dict.

Record fields (all optional except ``id`` and ``status``)::

    id, name, kind, status, phase, command (argv list), cwd, sessionId,
    pid, workerProcess (identity of the worker), commandPid,
    commandProcess (identity of the command), exitCode, signal, errorMessage,
    createdAt, startedAt, completedAt, updatedAt, logFile, outputOffset,
    output (job file only), cancelRequestedAt, cancelReason,
    announcedAt (set once the user-prompt-submit hook told Claude the job finished),
    foreground (true for ``jobgate run`` without ``--background``: never announced),
    keepReason (retention never prunes a job that has one), worktreePath, worktreeBranch,
    worktreeBase, worktreeRepo (a job run in its own git worktree: jobgate.agents.worktrees)

Identities are described in :mod:`jobgate.proc.liveness`.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Job = dict[str, Any]

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)
ACTIVE = frozenset((QUEUED, RUNNING))
FINISHED = frozenset((COMPLETED, FAILED, CANCELLED))

PHASE_LOST = "lost"

#: a ``queued`` record that has no process identity yet is believed for this long
QUEUED_GRACE_SECONDS = 30.0

#: environment marks: a job's command (and everything it starts) carries
#: ``JOBGATE_JOB_ID=<id>``; a background worker carries ``JOBGATE_WORKER_OF=<id>``
#: instead (never the command's mark: it is not part of any other job's tree)
JOB_ENV = "JOBGATE_JOB_ID"
WORKER_ENV = "JOBGATE_WORKER_OF"

#: keys kept only in ``jobs/<id>.json``, never in the index
HEAVY_KEYS = frozenset(("output",))
#: keys a finished job's line in ``finished.jsonl`` leaves to its job file too: the
#: process identities (about 40% of a line) matter while a job is active and to
#: ``cancel`` of a lost job, which reads the job file; ``status --all --json`` passes the
#: lines on as they are, so every byte here is a byte it reads and writes
LOG_LINE_DROPS = frozenset(("workerProcess", "commandProcess"))

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def now_iso(t: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``, e.g. ``2026-11-24T18:08:48.123Z``."""
    if t is None:
        t = time.time()
    whole = int(t)
    ms = int((t - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def parse_iso(text: object) -> float | None:
    """Unix time of an ISO 8601 string written by :func:`now_iso` (or with an offset)."""
    if not isinstance(text, str) or not text:
        return None
    from datetime import datetime, timezone

    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


#: a job kind (the id's prefix): 1 to 16 of these, the first a letter or digit
KIND_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
KIND_MAX = 16
KIND_RULE = f"1 to {KIND_MAX} of a-z, 0-9, '-' and '_', starting with a letter or digit"


def kind_problem(kind: str) -> str | None:
    """Why ``kind`` cannot be a job kind as given (None when it can): a kind is the job
    id's prefix, so one that would have to be rewritten to be one is refused instead."""
    if 0 < len(kind) <= KIND_MAX and KIND_CHARS.issuperset(kind) and kind[0] not in "-_":
        return None
    return f"invalid kind {kind!r}: use {KIND_RULE}"


class _Escapes(dict[int, str]):
    """The :meth:`str.translate` table of :func:`one_line`, filled as characters come:
    each one :meth:`str.isprintable` refuses becomes a backslash escape. An undecodable
    byte (U+DCA0..U+DCFF, see :func:`jobgate.state.fileio.tolerant_stdio`) stays, to be
    printed back as that byte; one that would be a C1 control (0x80..0x9F) is escaped."""

    def __missing__(self, n: int) -> str:
        ch = chr(n)
        if ch.isprintable() or 0xDCA0 <= n <= 0xDCFF:
            text = ch
        elif 0xDC80 <= n < 0xDCA0:
            text = f"\\x{n - 0xDC00:02x}"
        elif n < 0x100:
            text = f"\\x{n:02x}"
        else:
            text = f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"
        self[n] = text
        return text


_ESCAPES = _Escapes({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})


def shell_line(argv: list[str]) -> str:
    """``argv`` as a shell line (``shlex.join``'s text, without importing :mod:`re`
    for it: ~4 ms of CPU in every worker), on one line (see :func:`one_line`)."""
    return one_line(" ".join(_quote(arg) for arg in argv))


#: what ``shlex.quote`` leaves unquoted
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


def _quote(arg: str) -> str:
    if not arg:
        return "''"
    if _SAFE.issuperset(arg):
        return arg
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def one_line(text: str) -> str:
    """``text`` with every character that is not printable escaped (``\\n``, ``\\r``,
    ``\\t``, ``\\x1b``, ``\\u202e``...),
    so a message that echoes a name, a command or a path stays one line and sends no
    terminal escape: how a record's text is shown in an error or a lock notice."""
    return text.translate(_ESCAPES)


def new_id(kind: str, t: float | None = None) -> str:
    """A new job id like ``run-mid1k2x3-4f9a2c``: kind, base-36 time in ms, random hex.
    The CLI refuses a kind :func:`kind_problem` objects to; here one is made safe. The
    random part may repeat: :meth:`jobgate.state.files.StateDir.new_job_id` claims one."""
    if t is None:
        t = time.time()
    prefix = "".join(c for c in kind.lower() if c in _ID_CHARS and c != ".") or "job"
    return f"{prefix[:16]}-{_base36(int(t * 1000))}-{os.urandom(3).hex()}"


def is_safe_id(ref: str) -> bool:
    """True if ``ref`` can name a file inside ``jobs/`` (no separators, no ``..``)."""
    return (
        0 < len(ref) <= 128
        and ref[0] not in ".-"
        and _ID_CHARS.issuperset(ref.lower())
        and ".." not in ref
    )


def new_job(
    *,
    job_id: str,
    command: list[str],
    cwd: str,
    kind: str = "run",
    name: str | None = None,
    session_id: str | None = None,
    log_file: str,
    now: float | None = None,
) -> Job:
    """A fresh ``queued`` record (no process yet)."""
    stamp = now_iso(now)
    return {
        "id": job_id,
        "name": name or " ".join(command)[:80],
        "kind": kind,
        "status": QUEUED,
        "phase": "queued",
        "command": list(command),
        "cwd": cwd,
        "sessionId": session_id,
        "pid": None,
        "workerProcess": None,
        "commandPid": None,
        "commandProcess": None,
        "exitCode": None,
        "errorMessage": None,
        "createdAt": stamp,
        "startedAt": None,
        "completedAt": None,
        "updatedAt": stamp,
        "logFile": log_file,
    }


def is_active(job: Job) -> bool:
    return job.get("status") in ACTIVE


def is_finished(job: Job) -> bool:
    return job.get("status") in FINISHED


def identities(job: Job) -> list[dict[str, Any]]:
    """The process identities a job recorded (worker first, then command).

    A legacy record with only a bare ``pid`` yields an identity without a start time;
    :func:`jobgate.proc.liveness.probe` refuses to call that alive, because a pid alone
    cannot prove the process is still the job's.
    """
    out: list[dict[str, Any]] = []
    for key in ("workerProcess", "commandProcess"):
        ident = job.get(key)
        if isinstance(ident, dict) and isinstance(ident.get("pid"), int):
            out.append(ident)
    if not out and isinstance(job.get("pid"), int) and not isinstance(job.get("pid"), bool):
        out.append({"pid": job["pid"]})
    return out


def summary(job: Job) -> Job:
    """The index entry for a job: the record without its heavy keys."""
    return {k: v for k, v in job.items() if k not in HEAVY_KEYS}


def touch(job: Job, now: float | None = None, **changes: Any) -> Job:
    """A copy of ``job`` with ``changes`` applied and ``updatedAt`` set."""
    out = dict(job)
    out.update(changes)
    out["updatedAt"] = now_iso(now)
    return out


def mark_running(
    job: Job,
    *,
    worker: dict[str, Any] | None,
    command: dict[str, Any] | None,
    output_offset: int = 0,
    now: float | None = None,
) -> Job:
    """The worker started the command. A job already finished (cancelled) stays so."""
    changes: dict[str, Any] = {}
    if worker is not None:
        changes.update(pid=worker["pid"], workerProcess=worker)
    if command is not None:
        changes.update(commandPid=command["pid"], commandProcess=command)
    if is_active(job):
        changes.update(status=RUNNING, phase="running", outputOffset=output_offset)
        changes["startedAt"] = job.get("startedAt") or now_iso(now)
    return touch(job, now, **changes)


def mark_exited(
    job: Job,
    *,
    exit_code: int | None,
    signal: int | None,
    output: str | None = None,
    now: float | None = None,
    ended_at: float | None = None,
) -> Job:
    """The worker saw the command end. ``exit_code`` follows the shell convention
    (128+N for signal N). A cancel already recorded keeps ``cancelled``. ``completedAt``
    is ``ended_at`` (when the command ended) if given, else ``now``: an end written late
    (the lock busy, the disk full) still says when the command ended."""
    stamp = now_iso(now if ended_at is None else ended_at)
    changes: dict[str, Any] = {"exitCode": exit_code, "signal": signal}
    if output is not None:
        changes["output"] = output
    if job.get("status") == CANCELLED:
        return touch(job, now, **changes)
    if job.get("cancelRequestedAt"):
        changes.update(status=CANCELLED, phase="cancelled", errorMessage=_cancel_reason(job))
    elif exit_code == 0:
        changes.update(status=COMPLETED, phase="done", errorMessage=None)
    else:
        what = f"killed by signal {signal}" if signal else f"exited with code {exit_code}"
        changes.update(status=FAILED, phase="failed", errorMessage=f"command {what}")
    changes["completedAt"] = job.get("completedAt") or stamp
    return touch(job, now, **changes)


def mark_lost(job: Job, reason: str, now: float | None = None) -> Job:
    """Nobody recorded an end and the job's processes are dead: ``failed``/``lost``."""
    stamp = now_iso(now)
    return touch(
        job,
        now,
        status=FAILED,
        phase=PHASE_LOST,
        errorMessage=f"lost: {reason}",
        completedAt=job.get("completedAt") or stamp,
    )


def mark_failed(job: Job, message: str, now: float | None = None) -> Job:
    """The job could not be started or run (e.g. the program does not exist)."""
    return touch(
        job,
        now,
        status=FAILED,
        phase="failed",
        errorMessage=message,
        completedAt=job.get("completedAt") or now_iso(now),
    )


def mark_cancel_requested(job: Job, now: float | None = None, reason: str | None = None) -> Job:
    """Note the cancel. ``reason`` (kept as ``cancelReason``) becomes the final
    ``errorMessage`` whoever records the end, the worker included."""
    changes: dict[str, Any] = {"cancelRequestedAt": now_iso(now), "phase": "cancelling"}
    if reason:
        changes["cancelReason"] = reason
    return touch(job, now, **changes)


def _cancel_reason(job: Job) -> str:
    return str(job.get("cancelReason") or "cancelled by user")


def mark_cancelled(job: Job, reason: str | None = None, now: float | None = None) -> Job:
    return touch(
        job,
        now,
        status=CANCELLED,
        phase="cancelled",
        errorMessage=reason or _cancel_reason(job),
        completedAt=job.get("completedAt") or now_iso(now),
    )


def sort_newest_first(jobs: list[Job]) -> list[Job]:
    return sorted(
        jobs, key=lambda j: (str(j.get("createdAt") or ""), str(j.get("id"))), reverse=True
    )


def exit_code_of(returncode: int) -> tuple[int, int | None]:
    """Map a ``subprocess`` return code to (shell exit code, signal or None)."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


def resolve_ref(jobs: list[Job], ref: str) -> Job:
    """The job ``ref`` names: an exact id, else a unique id prefix.

    Raises :class:`~jobgate.state.errors.JobgateError` for refs that could escape the state
    dir (``../x``, ``/etc/passwd``), unknown refs and ambiguous prefixes.
    """
    from jobgate.state.errors import JobgateError

    if not is_safe_id(ref):
        raise JobgateError(
            f"invalid job reference {ref!r}: job ids contain only letters, digits, '-', '_' and '.'"
        )
    for job in jobs:
        if job.get("id") == ref:
            return job
    matches = [j for j in jobs if str(j.get("id", "")).startswith(ref)]
    if not matches:
        raise JobgateError(f"no job matches {ref!r} (see: jobgate status --all)")
    if len(matches) > 1:
        ids = ", ".join(str(j.get("id")) for j in matches[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        raise JobgateError(f"ambiguous job reference {ref!r}: matches {ids}{more}")
    return matches[0]
