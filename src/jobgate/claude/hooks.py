"""Claude Code hook decisions: what to print, block and record. Pure: no I/O.

:mod:`jobgate.claude.shell` and the handlers it runs read the payload and the state,
call these functions and write what they return. Everything here takes plain dicts (the
hook payload, job records, the hook state) and returns plain values, so each rule is
testable without processes or files.

The hook state (``hooks-state.json`` in the state dir, see
:mod:`jobgate.claude.hook_state`) holds one entry per session::

    {"version": 1, "sessions": {"<session id or *>": {
        "stopJobs": ["run-..."],   # the active jobs the last wait-block was about
        "stopBlocks": 2,           # wait-blocks in a row for exactly those jobs
        "reviewBlocks": 1,         # review-gate blocks in a row
        "updatedAt": "..."}}}

``stopJobs`` names jobgate jobs by id and Claude Code's own background tasks (Stop's
``background_tasks``) as ``claude:<task id>``.

Caveats:

* Jobs are matched to a session by their recorded ``sessionId``. Jobs started
  outside Claude Code (no ``$JOBGATE_SESSION_ID``) have none and are only seen by
  hooks that run without a session (payload and environment both lack one).
* "In a row" ends when the user sends a new prompt (user-prompt-submit resets the
  counters), when the set of active jobs changes, or when the reviewer allows.
"""

from __future__ import annotations

from jobgate.state import model
from jobgate.state.errors import JobgateError
from jobgate.state.fileio import is_utf8_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Payload = dict[str, Any]
    Entry = dict[str, Any]

#: CLI event name -> the ``hook_event_name`` Claude Code sends with it
EVENTS = {
    "stop": "Stop",
    "session-start": "SessionStart",
    "session-end": "SessionEnd",
    "user-prompt-submit": "UserPromptSubmit",
    "stop-failure": "StopFailure",
}

#: hook-state key for hooks that run without a session (they see every job)
ALL_SESSIONS = "*"

#: user-prompt-submit names at most this many jobs; the rest are summed up
MAX_ANNOUNCED = 10

#: hook-state entries untouched for this long are dropped when the file is written
STATE_TTL_SECONDS = 7 * 24 * 3600.0

#: set in the reviewer's environment; a Stop hook that sees it skips the review gate
IN_REVIEW_ENV = "JOBGATE_IN_REVIEW"

#: SessionEnd reasons (Claude Code 2.1.197) that end the session itself: the client
#: exits. "other" is any other exit, the end of every ``claude -p`` included. "clear" and
#: "resume" end a conversation while the same client goes on, so they are left out.
SESSION_EXIT_REASONS = frozenset(
    {"prompt_input_exit", "logout", "other", "bypass_permissions_disabled"}
)

#: ``background_tasks`` types that are session-long watchers, never work to wait for
WATCHER_TYPES = frozenset({"monitor"})

#: statuses a ``background_tasks`` entry should never have (the field lists only work in
#: flight), skipped if a client sends them anyway
DONE_STATUSES = frozenset({"completed", "failed", "killed", "stopped", "cancelled", "error"})


# -- payload ---------------------------------------------------------------------------
#: payload fields that must be strings when present (what jobgate acts on); others, such
#: as StopFailure's ``error`` or Stop's ``background_tasks``, are read defensively
STRING_FIELDS = (
    *("hook_event_name", "session_id", "cwd", "last_assistant_message", "prompt"),
    *("reason", "source", "agent_id"),
)


def check_event(event: str) -> None:
    """Raise :class:`JobgateError` unless ``event`` is one of :data:`EVENTS`."""
    if event not in EVENTS:
        known = ", ".join(EVENTS)
        raise JobgateError(f"unknown hook event {event!r} (known: {known})")


def check_payload(event: str, payload: object, *, cwd_given: bool = False) -> Payload:
    """The payload if it is a usable object for ``event``; else :class:`JobgateError`.

    Claude Code sends ``hook_event_name`` and ``cwd`` with every hook: a payload without
    them did not come from Claude Code (or not for this hook), and acting on it could
    act on the wrong workspace, so it is refused — unless ``cwd_given`` (a person ran
    ``jobgate --cwd DIR hook EVENT`` and named the workspace). ``hook_event_name``, when
    present, must name ``event``. Optional fields (``session_id``: else
    ``$JOBGATE_SESSION_ID``) must have the right type when present.
    """
    check_event(event)
    if not isinstance(payload, dict):
        raise JobgateError(f"the hook payload is not a JSON object (got {type(payload).__name__})")
    for key in STRING_FIELDS:
        value = payload.get(key)
        if value is not None and not isinstance(value, str):
            raise JobgateError(f"payload field {key!r} is not a string")
    if payload.get("session_id") == "":
        raise JobgateError("payload field 'session_id' is empty")
    if "\0" in str(payload.get("session_id") or ""):
        raise JobgateError("payload field 'session_id' contains a NUL character")
    if not is_utf8_text(str(payload.get("session_id") or "")):
        # a JSON escape such as "\udcff" decodes to a lone surrogate: session-start would
        # write it to $CLAUDE_ENV_FILE as a byte that is not UTF-8, for every later command
        raise JobgateError("payload field 'session_id' is not valid Unicode text")
    active = payload.get("stop_hook_active")
    if active is not None and not isinstance(active, bool):
        raise JobgateError("payload field 'stop_hook_active' is not true or false")
    name = payload.get("hook_event_name")
    if name and name != EVENTS[event]:
        raise JobgateError(f"the payload is for the {name!r} hook, not {EVENTS[event]!r}")
    for key in ("hook_event_name", "cwd"):
        if not payload.get(key) and not cwd_given:
            raise JobgateError(
                f"the payload has no {key!r} field (Claude Code sends it with every hook; "
                "to run a hook by hand, name the workspace: jobgate --cwd DIR hook ...)"
            )
    return payload


def session_of(payload: Payload, env_session: str | None) -> str | None:
    """The session the hook acts for: the payload's, else ``$JOBGATE_SESSION_ID``, else
    None (meaning: every job)."""
    sid = payload.get("session_id")
    if isinstance(sid, str) and sid:
        return sid
    return env_session or None


def session_jobs(jobs: list[model.Job], session: str | None) -> list[model.Job]:
    if session is None:
        return list(jobs)
    return [j for j in jobs if j.get("sessionId") == session]


def state_key(session: str | None) -> str:
    return session if session is not None else ALL_SESSIONS


def _label(job: model.Job) -> str:
    name = _short(job.get("name"))
    return f"{job.get('id')} ({name})" if name else str(job.get("id"))


def _short(text: object, limit: int = 60) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# -- stop --------------------------------------------------------------------------------
def running_notices(active: list[model.Job]) -> list[str]:
    """One stderr line per active job, and one for all that wait in the queue. ``active``
    must come from a refreshed view, in which every dead job is already marked lost."""
    waiting = {id(j) for j in active if j.get("phase") == "waiting" and not model.identities(j)}
    return [
        f"jobgate: job {_label(j)} is still {j.get('status')}; "
        f"check: jobgate status {j.get('id')}; stop: jobgate cancel {j.get('id')}"
        for j in model.sort_newest_first([j for j in active if id(j) not in waiting])
    ] + [f"jobgate: {len(waiting)} job(s) wait in the queue; check: jobgate queue"] * bool(waiting)


def claude_tasks(payload: Payload) -> list[Entry]:
    """Claude Code's own background work still in flight, from Stop's ``background_tasks``.

    Claude Code 2.1.145 and later send a list of ``{"id", "type", "status",
    "description", "command"?, ...}`` objects, only running or pending work (an empty list
    when there is none); older clients send nothing. Read defensively: anything but a
    list of objects counts as none, an entry whose status says it ended is skipped, and
    so are session-long watchers (type ``monitor``, and a command that runs ``jobgate
    watch``: Claude Code reports a command monitor as a ``shell``), which never end
    before the session does.
    """
    tasks = payload.get("background_tasks")
    if not isinstance(tasks, list):
        return []
    found = []
    for task in tasks:
        if not isinstance(task, dict):
            continue
        status, kind = task.get("status"), task.get("type")
        if isinstance(status, str) and status.lower() in DONE_STATUSES:
            continue
        if isinstance(kind, str) and kind.lower() in WATCHER_TYPES:
            continue
        if _is_jobgate_watch(task.get("command")):
            continue
        found.append(task)
    return found


def _is_jobgate_watch(command: object) -> bool:
    if not isinstance(command, str) or "jobgate" not in command:
        return False
    for sep in "/\\\"'":
        command = command.replace(sep, " ")
    words = command.split()
    return "watch" in words or "watch.sh" in words


def task_key(task: Entry) -> str:
    """A Claude Code task's name in the hook state's ``stopJobs`` (apart from job ids)."""
    return f"claude:{model.one_line(str(task.get('id') or '?'))}"


def _task_label(task: Entry) -> str:
    kind = _short(task.get("type")) or "task"
    what = _short(task.get("command") or task.get("description"))
    task_id = model.one_line(str(task.get("id") or "?"))
    return f"{task_id} ({kind}: {what})" if what else f"{task_id} ({kind})"


def task_notices(tasks: list[Entry]) -> list[str]:
    """One line per Claude Code background task in flight (:func:`claude_tasks`)."""
    return [
        f"jobgate: Claude Code background task {_task_label(t)} is still running" for t in tasks
    ]


def wait_decision(
    active_ids: list[str], entry: Entry, max_blocks: int, tasks: list[Entry] | None = None
) -> tuple[str | None, Entry, str | None]:
    """``waitForJobs``: ``(block reason or None, new entry, stderr note or None)``.

    Blocks while jobs (``active_ids``) or Claude Code background tasks (``tasks``, from
    :func:`claude_tasks`) run, at most ``max_blocks`` times in a row for the same set of
    them; a different set starts a new row. With nothing running the row is cleared.
    """
    tasks = tasks or []
    ids = sorted([*active_ids, *(task_key(t) for t in tasks)])
    out = dict(entry)
    if not ids:
        out.pop("stopJobs", None)
        out.pop("stopBlocks", None)
        return None, out, None
    before = int(entry.get("stopBlocks") or 0) if entry.get("stopJobs") == ids else 0
    if before >= max_blocks:
        note = (
            f"jobgate: waitForJobs: not blocking again; already blocked {before} time(s) in a "
            f"row for {', '.join(ids)} (maxStopBlocks = {max_blocks})"
        )
        return None, out, note
    out["stopJobs"] = ids
    out["stopBlocks"] = before + 1
    parts = []
    if active_ids:
        parts.append(
            f"Background jobs are still running: {', '.join(sorted(active_ids))}. "
            f"Wait for them before you finish: run `jobgate wait ID` for each (add --timeout "
            f"S to bound it), then read the outcome with `jobgate result ID`. If a job is no "
            f"longer needed, stop it with `jobgate cancel ID`."
        )
    if tasks:
        parts.append(
            f"Your own background tasks are still running: "
            f"{', '.join(_task_label(t) for t in tasks)}. Wait for each with the TaskOutput "
            f"tool (block: true), or stop it with TaskStop if it is no longer needed."
        )
    parts.append(f"(jobgate waitForJobs: block {before + 1} of at most {max_blocks} in a row.)")
    return " ".join(parts), out, None


def stop_output(reason: str | None, shown: list[str]) -> Payload | None:
    """The Stop (or StopFailure) hook's stdout object: ``decision``/``reason`` when it
    blocks (the reason reaches Claude as its next instruction) and ``systemMessage`` with
    ``shown``, the notes for the user (Claude Code shows it; a hook's stderr with exit 0
    is shown nowhere). None when there is neither. Deliberately no ``additionalContext``:
    on Stop, Claude Code 2.1.197 treats it like a block and runs the model again.
    """
    out: Payload = block_output(reason) if reason else {}
    if shown:
        out["systemMessage"] = "\n".join(model.one_line(" ".join(n.split())) for n in shown)
    return out or None


def clear_rows(entry: Entry) -> Entry:
    """The entry with its in-a-row counters reset (a new user prompt ends any row)."""
    return {k: v for k, v in entry.items() if k not in ("stopJobs", "stopBlocks", "reviewBlocks")}


# -- user-prompt-submit ------------------------------------------------------------------
def unannounced(jobs: list[model.Job]) -> list[model.Job]:
    """Finished background jobs never announced yet, newest first (a foreground job
    ended in front of whoever ran it: there is nothing to tell)."""
    return [
        j
        for j in model.sort_newest_first(jobs)
        if model.is_finished(j) and not j.get("announcedAt") and not j.get("foreground")
    ]


def announcement(finished: list[model.Job]) -> str:
    """The ``additionalContext`` naming each newly finished job and how to read it."""
    lines = ["jobgate: background jobs that finished since the last prompt:"]
    for job in finished[:MAX_ANNOUNCED]:
        status = str(job.get("status"))
        detail = ""
        if job.get("exitCode") is not None and status == model.COMPLETED:
            detail = f" (exit {job.get('exitCode')})"
        elif job.get("errorMessage"):
            detail = f" ({str(job.get('errorMessage')).splitlines()[0][:200]})"
        lines.append(f"- {_label(job)}: {status}{detail}; read it: jobgate result {job.get('id')}")
    rest = len(finished) - MAX_ANNOUNCED
    if rest > 0:
        lines.append(f"- and {rest} more; list them: jobgate status --all")
    return "\n".join(lines)


def prompt_output(context: str) -> Payload:
    return {
        "hookSpecificOutput": {"hookEventName": "UserPromptSubmit", "additionalContext": context}
    }


def block_output(reason: str) -> Payload:
    return {"decision": "block", "reason": reason}


# -- session-end -----------------------------------------------------------------------------
def session_end_cancels(payload: Payload, mode: str) -> tuple[bool, str]:
    """Whether this SessionEnd cancels the session's jobs, and why (for the note).

    ``mode`` is the ``sessionEndCancels`` setting: ``exit-only`` cancels only when the
    client exits (:data:`SESSION_EXIT_REASONS`, or no reason at all: a hook run by hand),
    never at ``clear``/``resume`` (a conversation ends, the client and the work go on)
    nor at a reason it does not know; ``always`` on every SessionEnd; ``never`` never. A
    payload with ``agent_id`` comes from a subagent, whose end is not its session's: it
    never cancels anything, whatever the mode.
    """
    agent = payload.get("agent_id")
    if agent:
        return False, f"it comes from a subagent (agent_id {model.one_line(agent)})"
    reason = payload.get("reason")
    shown = model.one_line(str(reason)) if reason is not None else "none given"
    if mode == "never":
        return False, "sessionEndCancels is never"
    if mode == "always" or reason is None or reason in SESSION_EXIT_REASONS:
        return True, f"reason: {shown}"
    if reason in ("clear", "resume"):
        why = "ends a conversation, not the session"
    else:
        why = "is not known to end the session"
    return False, f"reason {shown!r} {why} (sessionEndCancels = exit-only)"


# -- session-start ---------------------------------------------------------------------------
def sh_quote(value: str) -> str:
    """``value`` as one POSIX sh word: single-quoted, each ``'`` written as ``'\\''``."""
    return "'" + value.replace("'", "'\\''") + "'"


def env_export_line(session_id: str) -> str:
    return f"export JOBGATE_SESSION_ID={sh_quote(session_id)}\n"


def replace_export(content: bytes, line: bytes) -> bytes:
    """``content`` (an env file) with every earlier ``export JOBGATE_SESSION_ID=`` line
    dropped and ``line`` last; other lines are kept as they are."""
    kept = [ln for ln in content.splitlines(keepends=True) if not _is_our_export(ln)]
    if kept and not kept[-1].endswith(b"\n"):
        kept[-1] += b"\n"  # a last line without its newline must not glue onto ours
    return b"".join([*kept, line])


def _is_our_export(line: bytes) -> bool:
    return line.lstrip().startswith(b"export JOBGATE_SESSION_ID=")


# -- hook state ------------------------------------------------------------------------------
def prune_state(state: dict[str, Any], now: float) -> dict[str, Any]:
    """A well-formed copy of the hook state without entries idle for too long."""
    sessions = state.get("sessions") if isinstance(state, dict) else None
    kept: dict[str, Any] = {}
    if isinstance(sessions, dict):
        for key, entry in sessions.items():
            if not isinstance(entry, dict):
                continue
            stamp = model.parse_iso(entry.get("updatedAt"))
            if stamp is not None and now - stamp > STATE_TTL_SECONDS:
                continue
            kept[str(key)] = entry
    return {"version": 1, "sessions": kept}


def entry_of(state: object, key: str) -> Entry:
    sessions = state.get("sessions") if isinstance(state, dict) else None
    entry = sessions.get(key) if isinstance(sessions, dict) else None
    return dict(entry) if isinstance(entry, dict) else {}
