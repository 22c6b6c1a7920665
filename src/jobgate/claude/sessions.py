"""session-start and session-end: where a Claude Code session begins and ends.

session-start writes ``export JOBGATE_SESSION_ID=<id>`` into ``$CLAUDE_ENV_FILE``, so every
job the session starts records its session. Claude Code runs SessionStart at startup and
again at ``resume``, ``clear`` and ``compact``, with the session id current from then on
(``/clear`` starts a new one) and an env file that may already hold an earlier export:
each run replaces jobgate's line, so the file holds exactly one, the current id.

session-end cancels the session's active jobs when the session really ends (the
``sessionEndCancels`` setting, :func:`jobgate.claude.hooks.session_end_cancels`) and
forgets its hook state; the cancelling (a detached process) is
:mod:`jobgate.claude.cleanup`'s. Claude Code 2.1.197 runs SessionEnd when the client
exits, at ``/clear`` and at ``/resume``, always for the main session: a subagent (the
Agent tool) runs in the same process and ends with SubagentStop, which jobgate does not
hook. A SessionEnd payload that carries ``agent_id`` (a subagent's) cancels nothing.
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
    line = hooks.env_export_line(sid).encode("utf-8", "surrogateescape")
    try:
        with open(path, "rb") as fh:
            old = fh.read()
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        old, mode = b"", 0o600
    new = hooks.replace_export(old, line)
    if new != old:
        from jobgate.state.fileio import atomic_write

        # the real file, also when $CLAUDE_ENV_FILE is a symlink to it
        atomic_write(os.path.realpath(path), new, mode)
    return None, []


def session_end(ctx: HookContext) -> Output:
    if ctx.session is None:
        return None, [
            "jobgate: session-end: no session id (payload session_id or $JOBGATE_SESSION_ID); "
            "no job was cancelled"
        ]
    cancel, why = hooks.session_end_cancels(ctx.payload, str(ctx.setting("sessionEndCancels")))
    if ctx.payload.get("agent_id"):
        return None, [f"jobgate: session-end: no job was cancelled: {why}"]
    from jobgate.claude import hook_state

    store = ctx.store()
    jobs = ctx.session_jobs()
    hook_state.update_entry(store, ctx.key, lambda entry: (None, {}))
    ids = [str(j["id"]) for j in jobs if model.is_active(j)]
    if not ids:
        return None, []
    if not cancel:
        return None, [
            f"jobgate: session-end: {len(ids)} job(s) keep running ({', '.join(ids)}): {why}; "
            "see them: jobgate status; stop one: jobgate cancel ID"
        ]
    from jobgate.claude.cleanup import cancel_detached

    return None, [cancel_detached(store, ids)]
