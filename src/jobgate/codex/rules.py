"""Pure rules of ``jobgate doctor codex``: which verdict a plugin job record gets, and how
a stuck one is rewritten. No I/O: process facts come in as :class:`ProcFacts`.

Verdicts for a ``queued``/``running`` record of the Codex companion plugin:

* ``gone`` -- no process has the recorded pid, or it is a zombie (exited, not reaped);
* ``reused`` -- a process has that pid but started more than
  :data:`TIME_TOLERANCE_SECONDS` after the job's ``startedAt`` (else ``createdAt``), so
  it cannot be the job's worker;
* ``alive`` -- the process started before the job (within the tolerance);
* ``unverifiable`` -- no pid, or no readable job time or process start time.

The plugin records no process start time, so the job's own times are the only evidence
against pid reuse; the comparison relies on the wall clock not having been stepped by
more than the tolerance between the job's start and now.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobgate.codex.files import iso_now, parse_iso

#: a process that started at most this many seconds after the job's time may still be
#: its worker: a ``queued`` record is stamped ``createdAt`` just before its worker is
#: spawned, and Linux start times are only accurate to about a second.
TIME_TOLERANCE_SECONDS = 5.0

ACTIVE_STATUSES = frozenset(("queued", "running"))
FINISHED_STATUSES = frozenset(("completed", "failed", "cancelled"))

GONE = "gone"
REUSED = "reused"
ALIVE = "alive"
UNVERIFIABLE = "unverifiable"
STUCK = frozenset((GONE, REUSED))


@dataclass(frozen=True)
class ProcFacts:
    """What the OS says about a pid: zombie or not, and its start as a Unix time."""

    pid: int
    zombie: bool
    start_time: float | None


@dataclass(frozen=True)
class Decision:
    verdict: str
    reason: str


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type (``object``, ``array``, ``string``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def json_text(value: object, limit: int = 60) -> str:
    """``value`` spelled as in the plugin's JSON (``true``, ``null``, ``"123"``), for
    messages; cut to about ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # pragma: no cover - parsed JSON always dumps
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_job_id(job_id: object) -> bool:
    """Whether ``job_id`` can name ``jobs/<id>.json`` without leaving the jobs folder."""
    return (
        isinstance(job_id, str)
        and job_id not in ("", ".")
        and ".." not in job_id
        and not any(ch in job_id for ch in "/\\\0:")
    )


def record_problem(record: object) -> str | None:
    """Why a ``state.json`` job entry cannot be judged, or None when it is well-formed.

    Only what this command relies on is checked: an object with a string ``status``
    and, for ``queued``/``running`` entries, a string ``id`` and a ``pid`` that is a
    positive integer or null.

    Values are quoted as JSON (``"123"``, ``true``, ``null``), as the user sees them in
    the file.
    """
    if not isinstance(record, dict):
        return f"is {json_type(record)}, expected an object"
    if "status" not in record:
        return "has no status, expected a string"
    status = record["status"]
    if not isinstance(status, str):
        return f"has status {json_text(status)} ({json_type(status)}), expected a string"
    if status not in ACTIVE_STATUSES:
        return None
    if "id" not in record:
        return "has no id, expected a non-empty string"
    job_id = record["id"]
    if not isinstance(job_id, str) or not job_id:
        return f"has id {json_text(job_id)}, expected a non-empty string"
    pid = record.get("pid")
    if pid is None:
        return None
    if isinstance(pid, bool) or not isinstance(pid, int):
        return f"has pid {json_text(pid)} ({json_type(pid)}), expected an integer or null"
    if pid <= 0:
        return f"has pid {pid}, expected a positive integer"
    return None


def job_time(record: Mapping[str, Any]) -> tuple[str, object]:
    """The job time a live pid is compared with: ``startedAt``, else ``createdAt``."""
    for key in ("startedAt", "createdAt"):
        value = record.get(key)
        if value is not None:
            return key, value
    return "startedAt", None


def decide(
    record: Mapping[str, Any],
    proc: ProcFacts | None,
    tolerance: float = TIME_TOLERANCE_SECONDS,
) -> Decision:
    """The verdict for one well-formed active record (see :func:`record_problem`).

    ``proc`` is what the OS reports for the record's pid now (None: no such process).
    """
    pid = record.get("pid")
    if pid is None:
        return Decision(UNVERIFIABLE, "no pid recorded, so there is no process to check")
    if proc is None:
        return Decision(GONE, f"pid {pid} no longer exists")
    if proc.zombie:
        return Decision(GONE, f"pid {pid} has exited (a zombie, not yet reaped)")
    key, raw = job_time(record)
    if raw is None:
        return Decision(
            UNVERIFIABLE,
            f"pid {pid} is running, but the job has no startedAt or createdAt to tell "
            "it apart from a reused pid",
        )
    job_start = parse_iso(raw)
    if job_start is None:
        return Decision(
            UNVERIFIABLE,
            f"pid {pid} is running, but {key} {json_text(raw)} is not a readable "
            "ISO-8601 time, so a reused pid cannot be ruled out",
        )
    if proc.start_time is None:
        return Decision(
            UNVERIFIABLE,
            f"pid {pid} is running, but its start time cannot be read, so a reused pid "
            "cannot be ruled out",
        )
    delta = proc.start_time - job_start
    started = iso_now(proc.start_time)
    if delta > tolerance:
        return Decision(
            REUSED,
            f"pid {pid} belongs to another process: it started at {started}, "
            f"{delta:.0f} s after the job's {key} ({raw})",
        )
    when = "before" if delta <= 0 else f"{delta:.1f} s after (within {tolerance:g} s of)"
    return Decision(ALIVE, f"pid {pid} is running and started at {started}, {when} the job's {key}")


def failure_fields(
    decision: Decision, now_iso: str, job_file: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The fields to set on a stuck record, in the plugin's own failure shape.

    Normally ``status``/``phase`` ``"failed"``, ``pid`` null, ``completedAt``,
    ``errorMessage`` and ``updatedAt``. When the job file already records a finished
    status (the worker wrote its result, then died before updating the index), that
    outcome is copied instead: a finished job is not turned into a failure.
    """
    if job_file is not None and job_file.get("status") in FINISHED_STATUSES:
        fields: dict[str, Any] = {"status": job_file["status"]}
        if "phase" in job_file:
            fields["phase"] = job_file["phase"]
        fields["pid"] = None
        fields["completedAt"] = job_file.get("completedAt") or now_iso
        if "errorMessage" in job_file:
            fields["errorMessage"] = job_file["errorMessage"]
        fields["updatedAt"] = now_iso
        return fields
    return {
        "status": "failed",
        "phase": "failed",
        "pid": None,
        "completedAt": now_iso,
        "errorMessage": (
            f"Marked failed by `jobgate doctor codex`: {decision.reason}. The job's "
            "process ended without recording an outcome."
        ),
        "updatedAt": now_iso,
    }


def apply_fields(record: dict[str, Any], fields: Mapping[str, Any]) -> None:
    """Set ``fields`` on ``record``: existing keys keep their place, new ones go last."""
    for key, value in fields.items():
        record[key] = value
