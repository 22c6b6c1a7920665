"""An agent's own session (thread) id and final message, read from what it printed. Pure.

An agent task's record names the format of its agent's output (``threadFormat``, set
from the profile by :mod:`jobgate.agents.task`); when the command ends the worker hands
the head and the tail of the output here (:func:`jobgate.jobs.output.finish`).

``codex`` (observed on ``@openai/codex`` 0.171.0)
    ``codex exec --json`` prints JSONL whose first event is
    ``{"type": "thread.started", "thread_id": ID}``; without ``--json`` the banner on
    stderr has a ``session id: ID`` line (the same id). With ``--json`` the final message
    is the text of the last ``item.completed`` item of type ``agent_message``.
``claude`` (observed on ``@anthropic-ai/claude-code`` 2.1.197)
    ``claude -p --output-format json`` prints one object at the end,
    ``{"type": "result", "session_id": ID, "result": TEXT, ...}``; ``stream-json`` ends
    with the same object (and starts with ``{"type": "system", "subtype": "init",
    "session_id": ID}``). The final message is ``result``.

An id is kept only if it is a plain token (letters, digits, ``._-``, not starting with
``-``): it goes into the argv of a resume and into a command line shown to the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CODEX = "codex"
CLAUDE = "claude"
FORMATS = (CODEX, CLAUDE)

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_CODEX_HEADER = re.compile(r"^\s*session id:\s*(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Found:
    """What an agent's output told: its session id and final message (each may be None)."""

    session_id: str | None = None
    final_message: str | None = None


def valid_id(value: object) -> str | None:
    """``value`` if it is a usable session id, else None."""
    if isinstance(value, str) and _ID.fullmatch(value):
        return value
    return None


def _event(line: str) -> dict[str, object] | None:
    line = line.strip()
    if not (line.startswith("{") and line.endswith("}")):
        return None
    import json

    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _codex(head: str, tail: str) -> Found:
    session: str | None = None
    events = False  # JSONL (--json): the final message is an event near the end
    for line in head.splitlines():
        event = _event(line)
        if event is not None and event.get("type") == "thread.started":
            session, events = valid_id(event.get("thread_id")), True
        elif event is None:
            match = _CODEX_HEADER.match(line)
            session = valid_id(match.group(1)) if match else None
        if session:
            break
    message: str | None = None
    for line in reversed(tail.splitlines() if events or session is None else []):
        event = _event(line)
        item = event.get("item") if event and event.get("type") == "item.completed" else None
        if isinstance(item, dict) and item.get("type") == "agent_message":
            text = item.get("text")
            message = text if isinstance(text, str) else None
            break
    return Found(session, message)


def _claude(head: str, tail: str) -> Found:
    for line in reversed(tail.splitlines()):
        event = _event(line)
        if event is not None and event.get("type") == "result":
            text = event.get("result")
            return Found(valid_id(event.get("session_id")), text if isinstance(text, str) else None)
    for line in head.splitlines():
        event = _event(line)
        if event is not None and event.get("type") == "system" and event.get("subtype") == "init":
            return Found(valid_id(event.get("session_id")), None)
    return Found()


def parse(fmt: object, head: str, tail: str) -> Found:
    """What output in format ``fmt`` (:data:`FORMATS`; anything else: nothing) says, from
    its first bytes ``head`` and its last bytes ``tail`` (they may overlap)."""
    if fmt == CODEX:
        return _codex(head, tail)
    if fmt == CLAUDE:
        return _claude(head, tail)
    return Found()
