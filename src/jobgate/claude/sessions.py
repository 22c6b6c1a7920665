"""session-start and session-end: where a Claude Code session begins and ends.

session-start appends ``export JOBGATE_SESSION_ID=<id>`` to ``$CLAUDE_ENV_FILE``, so every
job the session starts records its session. session-end forgets the session's hook state
and cancels its active jobs; the cancelling (a detached process) is
:mod:`jobgate.claude.cleanup`'s.
"""

from __future__ import annotations

import os

from jobgate.claude import hooks
from jobgate.state import model
from jobgate.state.errors import JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobgate.claude.context import HookContext, Output


def session_start(ctx: HookContext) -> Output:
    path = os.environ.get("CLAUDE_ENV_FILE", "")
    if not path:
        return None, []
    sid = ctx.payload.get("session_id")
    if not isinstance(sid, str) or not sid:
        raise JobgateError("the SessionStart payload has no session_id to export")
    line = hooks.env_export_line(sid)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        if os.fstat(fd).st_size > 0:
            with open(path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    line = "\n" + line
        os.write(fd, line.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)
    return None, []


def session_end(ctx: HookContext) -> Output:
    if ctx.session is None:
        return None, [
            "jobgate: session-end: no session id (payload session_id or $JOBGATE_SESSION_ID); "
            "no job was cancelled"
        ]
    from jobgate.claude import hook_state

    store = ctx.store()
    jobs = ctx.session_jobs()
    hook_state.update_entry(store, ctx.key, lambda entry: (None, {}))
    ids = [str(j["id"]) for j in jobs if model.is_active(j)]
    if not ids:
        return None, []
    from jobgate.claude.cleanup import cancel_detached

    return None, [cancel_detached(store, ids)]
