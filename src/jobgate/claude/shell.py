"""``jobgate hook EVENT``: the stdin/stdout shell around :mod:`jobgate.claude.hooks`.

Claude Code runs a command hook with a JSON payload on stdin and reads its stdout.
This module reads the payload, finds the workspace (payload ``cwd``, which Claude Code
always sends; by hand: ``--cwd DIR``) and the session (payload ``session_id``, else
``$JOBGATE_SESSION_ID``, else every job), asks :mod:`jobgate.claude.hooks` what to do and
writes the result.

**Fail open.** Whatever goes wrong here — a payload that is not JSON or not an object,
a field of the wrong type, an unknown event, a busy lock, a damaged file, a bug — the
hook exits 0 with nothing on stdout and exactly one line on stderr. A hook never
blocks Claude because of its own error. Output is buffered until the decision is made,
so a failure half-way prints nothing but that line.

**Fast.** The Stop hook runs at the end of every turn. Its common path (review gate
off, nothing found dead) reads ``state.json`` and ``config.json`` without the lock and
probes ``/proc``; it imports no argparse, psutil, filelock or subprocess. Those are
imported only on the paths that need them (help, the review gate, session end). The
session-end cleanup itself (a detached process that cancels the jobs) is
:mod:`jobgate.claude.cleanup`, imported by session-end only.

Hook state that must survive between calls (the Stop-block counters) lives in
``hooks-state.json`` in the state dir, read lock-free and written under the store lock
only when it changes; which finished jobs were announced is the ``announcedAt`` field
of the job record.
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
    from collections.abc import Callable
    from typing import Any

    from jobgate.state.store import Store

STATE_FILE = "hooks-state.json"

#: the lock wait for writes a hook must make (counters, announcements); on timeout the
#: hook fails open
STATE_LOCK_TIMEOUT = 1.0

DESCRIPTION = """\
Run one Claude Code hook. The hook's JSON payload is read from stdin; the workspace is
the payload's "cwd" and the session its "session_id" (else $JOBGATE_SESSION_ID, else
every job). Claude Code sends "cwd" and "hook_event_name" with every hook; a payload
without them is refused unless you name the workspace with --cwd DIR (to run a hook by
hand).

  stop                Print a line on stderr for each job of the session that is really
                      running (dead ones are recorded lost, never named). With
                      waitForJobs, block while they run (at most maxStopBlocks times in
                      a row); with stopReviewGate, run reviewCommand and block on BLOCK.
  session-start       Append `export JOBGATE_SESSION_ID=<id>` to $CLAUDE_ENV_FILE.
  session-end         Cancel the session's active jobs (whole process trees, identity
                      checked) and record them cancelled: "session ended".
  user-prompt-submit  Tell Claude, once per job, which of the session's jobs finished.

Every error fails open: exit status 0, nothing on stdout, one line on stderr.
"""

EXAMPLES = """\
examples:
  echo '{"session_id": "s1"}' | jobgate hook --cwd /repo stop
  echo '{"session_id": "s1"}' | CLAUDE_ENV_FILE=/tmp/env jobgate hook --cwd /repo session-start
  jobgate config set waitForJobs true
  jobgate config set stopReviewGate true
"""


# -- entry points ------------------------------------------------------------------------
def main(argv: list[str], *, default_cwd: str | None = None) -> int:
    """``jobgate hook ARGV``; always returns 0 (``--help`` included)."""
    if argv[:1] in (["-h"], ["--help"]):
        _help_parser().print_help()
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
        stdout, notes = HANDLERS[event](_Context(event, payload, default_cwd))
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
    import argparse

    p = subparsers.add_parser(
        "hook",
        help="run a Claude Code hook (JSON payload on stdin; always exits 0)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("event", choices=list(hooks.EVENTS), help="the hook to run")
    p.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    return main([args.event], default_cwd=getattr(args, "cwd", None))


def _help_parser() -> argparse.ArgumentParser:
    import argparse

    p = argparse.ArgumentParser(
        prog="jobgate hook",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("event", choices=list(hooks.EVENTS), help="the hook to run")
    return p


# -- plumbing ----------------------------------------------------------------------------
def _read_payload() -> object:
    import json

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
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JobgateError(f"the hook payload is not valid JSON ({exc})") from None


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
    message = " ".join(str(message).split())
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
            from jobgate.state.fileio import json_text

            sys.stdout.write(json_text(stdout) + "\n")
            sys.stdout.flush()
    except (OSError, ValueError):
        pass


class _Context:
    """What every handler needs: the payload, its session and (lazily) the store."""

    def __init__(self, event: str, payload: dict[str, Any], default_cwd: str | None) -> None:
        self.event = event
        self.payload = payload
        self.session = hooks.session_of(payload, os.environ.get("JOBGATE_SESSION_ID"))
        self.key = hooks.state_key(self.session)
        self._default_cwd = default_cwd
        self._store: Store | None = None
        self.cwd = ""

    def store(self) -> Store:
        """The workspace's store; raises if the state dir is unsafe (a symlink...)."""
        if self._store is None:
            from jobgate.state.store import Store
            from jobgate.state.workspace import state_dir_for

            self.cwd = self.payload.get("cwd") or self._default_cwd or os.getcwd()
            root, state_dir = state_dir_for(self.cwd)
            self._store = Store(state_dir, root)
            self._store.exists()
        return self._store


def _load_jobs(store: Store) -> list[model.Job]:
    """Refreshed jobs (dead ones recorded lost, or marked lost in the view when the lock
    is busy). Never waits long for the lock."""
    from jobgate.jobs import refresh

    jobs, _lost = refresh.load(
        store, persist=True, lock_timeout=refresh.HOOK_LOCK_TIMEOUT, readonly_fallback=True
    )
    return jobs


def _setting(stored: dict[str, Any], key: str) -> Any:
    """One setting (stored value if valid, else the default), validating only that key."""
    from jobgate.state import config

    if key in stored:
        try:
            return config.validate(key, stored[key])
        except JobgateError:
            pass
    return config.DEFAULTS[key]


# -- hook state (hooks-state.json) ------------------------------------------------------------
def _state_path(store: Store) -> str:
    return os.path.join(store.state_dir, STATE_FILE)


def _read_state(store: Store) -> dict[str, Any]:
    """The hook state; a missing or damaged file reads as empty (it only holds counters)."""
    from jobgate.state.store import CorruptFile, read_json

    try:
        data = read_json(_state_path(store))
    except CorruptFile:
        return {}
    return data if isinstance(data, dict) else {}


def _update_entry(
    store: Store,
    key: str,
    decide: Callable[[dict[str, Any]], tuple[Any, dict[str, Any]]],
) -> Any:
    """Run ``decide(entry) -> (result, new entry)`` for the session's hook-state entry.

    Tried lock-free first; only when the entry would change is it redone under the
    lock on a fresh read and written. Returns ``result``.
    """
    entry = hooks.entry_of(_read_state(store), key)
    result, new = decide(entry)
    if new == entry:
        return result
    import time

    from jobgate.state.store import write_json

    with store.lock(STATE_LOCK_TIMEOUT):
        now = time.time()
        state = hooks.prune_state(_read_state(store), now)
        entry = hooks.entry_of(state, key)
        result, new = decide(entry)
        if new != entry:
            if any(k != "updatedAt" for k in new):
                new["updatedAt"] = model.now_iso(now)
                state["sessions"][key] = new
            else:
                state["sessions"].pop(key, None)  # nothing left to remember
            write_json(_state_path(store), state)
    return result


# -- handlers ------------------------------------------------------------------------------
def _stop(ctx: _Context) -> tuple[dict[str, Any] | None, list[str]]:
    store = ctx.store()
    jobs = hooks.session_jobs(_load_jobs(store), ctx.session)
    active = [j for j in jobs if model.is_active(j)]
    notes = hooks.running_notices(active)
    stored = store.read_config()
    if _setting(stored, "waitForJobs"):
        max_blocks = int(_setting(stored, "maxStopBlocks"))
        ids = [str(j["id"]) for j in active]

        def wait(entry: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
            reason, new, note = hooks.wait_decision(ids, entry, max_blocks)
            return (reason, note), new

        reason, note = _update_entry(store, ctx.key, wait)
        if note:
            notes.append(note)
        if reason:
            return hooks.block_output(reason), notes
    if not _setting(stored, "stopReviewGate"):
        return None, notes
    if os.environ.get(hooks.IN_REVIEW_ENV):
        notes.append(
            f"jobgate: review gate: skipped (this Claude Code runs as a reviewer: "
            f"{hooks.IN_REVIEW_ENV} is set)"
        )
        return None, notes
    return _review(ctx, store, stored, notes)


def _review(
    ctx: _Context, store: Store, stored: dict[str, Any], notes: list[str]
) -> tuple[dict[str, Any] | None, list[str]]:
    from jobgate.claude import review

    command_line = str(_setting(stored, "reviewCommand"))
    max_blocks = int(_setting(stored, "maxStopBlocks"))
    outcome = review.run(
        command_line,
        hooks.review_prompt(ctx.payload, store.workspace_root),
        timeout=float(_setting(stored, "reviewTimeout")),
        cwd=os.path.realpath(ctx.cwd) if ctx.cwd else store.workspace_root,
    )
    active = bool(ctx.payload.get("stop_hook_active"))

    def decide(entry: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        reason, lines, count = hooks.review_decision(
            outcome,
            stop_hook_active=active,
            prior_blocks=int(entry.get("reviewBlocks") or 0),
            max_blocks=max_blocks,
            command_line=command_line,
        )
        new = dict(entry)
        if count:
            new["reviewBlocks"] = count
        else:
            new.pop("reviewBlocks", None)
        return (reason, lines), new

    reason, lines = _update_entry(store, ctx.key, decide)
    notes.extend(lines)
    return (hooks.block_output(reason) if reason else None), notes


def _session_start(ctx: _Context) -> tuple[dict[str, Any] | None, list[str]]:
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


def _session_end(ctx: _Context) -> tuple[dict[str, Any] | None, list[str]]:
    if ctx.session is None:
        return None, [
            "jobgate: session-end: no session id (payload session_id or $JOBGATE_SESSION_ID); "
            "no job was cancelled"
        ]
    store = ctx.store()
    jobs = hooks.session_jobs(_load_jobs(store), ctx.session)
    _update_entry(store, ctx.key, lambda entry: (None, {}))
    ids = [str(j["id"]) for j in jobs if model.is_active(j)]
    if not ids:
        return None, []
    from jobgate.claude.cleanup import cancel_detached

    return None, [cancel_detached(store, ids)]


def _user_prompt_submit(ctx: _Context) -> tuple[dict[str, Any] | None, list[str]]:
    store = ctx.store()
    jobs = hooks.session_jobs(_load_jobs(store), ctx.session)
    _update_entry(store, ctx.key, lambda entry: (None, hooks.clear_rows(entry)))
    fresh = hooks.unannounced(jobs)
    if not fresh:
        return None, []
    import time

    announced: list[model.Job] = []
    with store.transaction(STATE_LOCK_TIMEOUT) as tx:
        now = time.time()
        for job in fresh:
            full = tx.get(str(job["id"]))
            if full is None or not model.is_finished(full) or full.get("announcedAt"):
                continue  # announced by a concurrent hook, or not finished after all
            marked = model.touch(full, now, announcedAt=model.now_iso(now))
            tx.put(marked)
            announced.append(model.summary(marked))
    if not announced:
        return None, []
    return hooks.prompt_output(hooks.announcement(announced)), []


HANDLERS: dict[str, Callable[[_Context], tuple[dict[str, Any] | None, list[str]]]] = {
    "stop": _stop,
    "session-start": _session_start,
    "session-end": _session_end,
    "user-prompt-submit": _user_prompt_submit,
}
