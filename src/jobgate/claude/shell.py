"""``jobgate hook EVENT``: the stdin/stdout shell around :mod:`jobgate.claude.hooks`, and
the Stop hook.

Claude Code runs a command hook with a JSON payload on stdin and reads its stdout.
This module reads the payload, finds the workspace (payload ``cwd``, which Claude Code
always sends; by hand: ``--cwd DIR``) and the session (payload ``session_id``, else
``$JOBGATE_SESSION_ID``, else every job), runs the event's handler with a
:class:`Context` and writes the result.

**Fail open.** Whatever goes wrong here — a payload that is not JSON or not an object,
a field of the wrong type, an unknown event, a busy lock, a damaged file, a bug — the
hook exits 0 with nothing on stdout and exactly one line on stderr. A hook never
blocks Claude because of its own error. Output is buffered until the decision is made,
so a failure half-way prints nothing but that line.

**Seen.** Claude Code shows a hook's stderr nowhere when it exits 0 (only the
transcript file keeps it), so what the user should read goes into the stdout object's
``systemMessage`` too (:func:`jobgate.claude.hooks.stop_output`); stderr keeps every line
for the transcript and ``--include-hook-events``.

**Fast.** The Stop hook runs at the end of every turn, so its handler is here and this
module (with :mod:`jobgate.claude.hooks`) is all of jobgate.claude it loads. Its common
path (``waitForJobs`` and the review gate off, nothing found dead) reads ``active.json``
and ``config.json`` without the lock and probes ``/proc``; it imports no argparse,
psutil, filelock or subprocess. Everything else is a module of its own, imported only on
the path that needs it:

* :mod:`jobgate.claude.hook_state` — ``hooks-state.json``: the Stop blocks in a row
  (``waitForJobs``, the review gate), which a new prompt or the session's end resets;
* :mod:`jobgate.claude.review_gate` — the Stop hook's review gate (``stopReviewGate``);
* :mod:`jobgate.claude.sessions` — session-start and session-end;
* :mod:`jobgate.claude.announcements` — user-prompt-submit;
* :mod:`jobgate.claude.hook_help` — ``--help`` and the ``hook`` entry on the main CLI.

Those handlers take a :class:`Context` typed as
:class:`jobgate.claude.context.HookContext`, so none of them imports this module.
"""

from __future__ import annotations

import os
import sys

from jobgate.claude import hooks
from jobgate.state import model
from jobgate.state.errors import JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from jobgate.claude.context import Output
    from jobgate.state.store import Store


# -- entry points ------------------------------------------------------------------------
def main(argv: list[str], *, default_cwd: str | None = None) -> int:
    """``jobgate hook ARGV``; always returns 0 (``--help`` included)."""
    if argv[:1] in (["-h"], ["--help"]):
        from jobgate.claude import hook_help

        hook_help.help_parser().print_help()
        return 0
    argv, cwd = _take_cwd(argv)
    default_cwd = cwd or default_cwd
    event = argv[0] if argv else ""
    try:
        if cwd == "":
            raise JobgateError("--cwd needs a directory")
        if not argv:
            raise JobgateError("missing EVENT (one of: " + ", ".join(hooks.EVENTS) + ")")
        if len(argv) > 1:
            raise JobgateError(f"unexpected arguments after {event!r}: {' '.join(argv[1:])}")
        hooks.check_event(event)  # before reading stdin
        payload = hooks.check_payload(event, _read_payload(), cwd_given=bool(default_cwd))
        stdout, notes = _run(Context(event, payload, default_cwd))
    except BaseException as exc:  # fail open on anything, by design
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            return 0
        _fail_open(event, exc)
        return 0
    _emit(stdout, notes)
    return 0


def _take_cwd(argv: list[str]) -> tuple[list[str], str | None]:
    """``argv`` without a ``--cwd DIR`` / ``--cwd=DIR`` (before or after EVENT), and DIR
    (``""`` when ``--cwd`` has no value; None when absent)."""
    rest: list[str] = []
    cwd: str | None = None
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--cwd":
            cwd = argv[i + 1] if i + 1 < len(argv) else ""
            i += 2
            continue
        if token.startswith("--cwd="):
            cwd = token[len("--cwd=") :]
        else:
            rest.append(token)
        i += 1
    return rest, cwd


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hook`` on the main CLI (so ``jobgate --help`` lists it).

    ``jobgate hook ...`` itself is dispatched by :func:`jobgate.cli.main.main` before
    argparse; this entry serves the help and ``jobgate --cwd DIR hook EVENT``.
    """
    from jobgate.claude import hook_help

    hook_help.add_parser(subparsers, _handler)


def _handler(args: argparse.Namespace) -> int:
    return main([args.event], default_cwd=getattr(args, "cwd", None))


# -- plumbing ----------------------------------------------------------------------------
def _read_payload() -> object:
    from jobgate.state import jsonload  # json.loads without importing json

    stdin = sys.stdin
    if stdin is None:
        raise JobgateError("no stdin: the hook expects its JSON payload there")
    try:
        if stdin.isatty():
            raise JobgateError("stdin is a terminal: the hook expects its JSON payload there")
    except (ValueError, OSError):
        pass
    data = stdin.buffer.read()
    if not data.strip():
        raise JobgateError("the hook payload on stdin is empty (expected a JSON object)")
    try:
        return jsonload.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JobgateError(f"the hook payload is not valid JSON ({exc})") from None
    except RecursionError:
        raise JobgateError("the hook payload is not valid JSON (nested too deeply)") from None


def _fail_open(event: str, exc: BaseException) -> None:
    if isinstance(exc, JobgateError):
        message = exc.message
    elif isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        message = f"{exc.strerror or exc}{where}"
    elif isinstance(exc, KeyboardInterrupt):
        message = "interrupted"
    else:
        message = f"unexpected {type(exc).__name__}: {exc}"
    message = model.one_line(str(message))  # a newline or escape echoed from input
    label = f"jobgate hook {event}" if event else "jobgate hook"
    try:
        sys.stderr.write(f"{label}: {message}; the hook did nothing (it fails open)\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _emit(stdout: dict[str, Any] | None, notes: list[str]) -> None:
    try:
        if notes:
            sys.stderr.write("".join(" ".join(n.split()) + "\n" for n in notes))
            sys.stderr.flush()
        if stdout is not None:
            from jobgate.state import jsonload  # json.dumps without importing json

            sys.stdout.write(jsonload.dumps(stdout) + "\n")
            sys.stdout.flush()
    except (OSError, ValueError):
        pass


class Context:
    """One hook run as its handler sees it (:class:`jobgate.claude.context.HookContext`):
    the payload and its session, and, read on first use, the store, the session's jobs and
    the settings."""

    def __init__(self, event: str, payload: dict[str, Any], default_cwd: str | None) -> None:
        self.event = event
        self.payload = payload
        self.session = hooks.session_of(payload, os.environ.get("JOBGATE_SESSION_ID"))
        self.key = hooks.state_key(self.session)
        self._default_cwd = default_cwd
        self._store: Store | None = None
        self._config: dict[str, Any] | None = None
        self.cwd = ""

    def store(self) -> Store:
        """The workspace's store; raises if the state dir is unsafe (a symlink...)."""
        if self._store is None:
            from jobgate.state.store import Store
            from jobgate.state.workspace import state_dir_for

            self.cwd = self.payload.get("cwd") or self._default_cwd or os.getcwd()
            if "\0" in self.cwd:
                raise JobgateError("payload field 'cwd' contains a NUL character")
            root, state_dir = state_dir_for(self.cwd)
            self._store = Store(state_dir, root)
            self._store.exists()
        return self._store

    def session_jobs(self, finished: int = 0) -> list[model.Job]:
        """The session's active jobs, refreshed (dead ones recorded lost, or marked lost
        in the view when the lock is busy), and its jobs among the ``finished`` most
        recently finished ones. Never waits long for the lock."""
        store = self.store()
        from jobgate.jobs import refresh

        jobs, _lost = refresh.load(
            store,
            finished=finished,
            persist=True,
            lock_timeout=refresh.HOOK_LOCK_TIMEOUT,
            readonly_fallback=True,
        )
        return hooks.session_jobs(jobs, self.session)

    def setting(self, key: str) -> Any:
        """One setting (stored value if valid, else the default, with one warning on
        stderr naming the key), validating only that key. ``config.json`` is read once
        per hook run."""
        if self._config is None:
            self._config = self.store().read_config()
        from jobgate.state import config

        if key in self._config:
            return config.usable(key, self._config[key], config.DEFAULTS[key])
        return config.DEFAULTS[key]


# -- handlers ------------------------------------------------------------------------------
def _run(ctx: Context) -> Output:
    """Run the event's handler: the Stop hook's (and StopFailure's) is here, each other
    one is imported when its event runs."""
    if ctx.event == "stop":
        return _stop(ctx)
    if ctx.event == "stop-failure":
        return _stop_failure(ctx)
    if ctx.event == "user-prompt-submit":
        from jobgate.claude import announcements

        return announcements.user_prompt_submit(ctx)
    if ctx.event in ("session-start", "session-end"):
        from jobgate.claude import sessions

        if ctx.event == "session-start":
            return sessions.session_start(ctx)
        return sessions.session_end(ctx)
    raise JobgateError(f"no handler for the hook event {ctx.event!r}")


def _stop(ctx: Context) -> Output:
    """A line per job of the session that really runs and per Claude Code background task
    in flight, for the user (``systemMessage``) and on stderr; with ``waitForJobs``, block
    while they run; then, with ``stopReviewGate``, the review gate."""
    active = [j for j in ctx.session_jobs() if model.is_active(j)]
    tasks = hooks.claude_tasks(ctx.payload)
    notes = hooks.running_notices(active) + hooks.task_notices(tasks)
    if ctx.setting("waitForJobs"):
        from jobgate.claude import hook_state

        max_blocks = int(ctx.setting("maxStopBlocks"))
        ids = [str(j["id"]) for j in active]

        def wait(entry: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
            reason, new, note = hooks.wait_decision(ids, entry, max_blocks, tasks)
            return (reason, note), new

        reason, note = hook_state.update_entry(ctx.store(), ctx.key, wait)
        if note:
            notes.append(note)
        if reason:
            return hooks.stop_output(reason, notes), notes
    if not ctx.setting("stopReviewGate"):
        return hooks.stop_output(None, notes), notes
    if os.environ.get(hooks.IN_REVIEW_ENV):
        skipped = (
            f"jobgate: review gate: skipped (this Claude Code runs as a reviewer: "
            f"{hooks.IN_REVIEW_ENV} is set)"
        )
        return hooks.stop_output(None, notes), [*notes, skipped]
    from jobgate.claude import review_gate

    reason, lines = review_gate.review_turn(ctx)
    notes.extend(lines)
    return hooks.stop_output(reason, notes), notes


def _stop_failure(ctx: Context) -> Output:
    """StopFailure: the turn ended on an API error (rate limit, server error...). The
    session's running jobs are named as at Stop, but nothing blocks and no reviewer
    runs: there is no finished turn to gate, and Claude Code ignores this hook's
    decision anyway."""
    active = [j for j in ctx.session_jobs() if model.is_active(j)]
    notes = hooks.running_notices(active) + hooks.task_notices(hooks.claude_tasks(ctx.payload))
    if not notes:
        return None, []
    error = ctx.payload.get("error")
    what = model.one_line(error) if isinstance(error, str) and error else "unknown"
    notes.insert(0, f"jobgate: the turn ended on an API error ({what}); not blocking, no review")
    return hooks.stop_output(None, notes), notes
