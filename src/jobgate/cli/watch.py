"""``jobgate watch``: its arguments and its lines. The watching is
:mod:`jobgate.jobs.watch`'s; claiming a job's end for a session is
:func:`jobgate.claude.announcements.claim`'s."""

from __future__ import annotations

from jobgate.state.errors import EXIT_OK

#: mirrors jobgate.jobs.transitions.EVENTS and jobgate.jobs.watch.TICK, which the parser
#: does not import (``jobgate --help`` stays cheap)
EVENTS = ("started", "finished", "lost")
TICK = 0.5

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from jobgate.jobs.transitions import Event
    from jobgate.jobs.watch import Claim


EPILOG = """examples:
  jobgate watch                       # every job of the workspace, one line per transition
  jobgate watch --session "$JOBGATE_SESSION_ID" --json | jq -c .job.id
  jobgate watch --events finished,lost --interval 2   # what the plugin monitor runs

lines: started, finished (completed, failed or cancelled, with the exit code) and lost
(a job whose processes died without recording an end, written down by whoever saw it
first, watch included). With a session, each end is marked announced before it is
printed, so the UserPromptSubmit notice never repeats it. Ends on SIGTERM, SIGINT or
SIGHUP, when its parent process is gone, or when nothing reads its output any more.
"""

#: in a JSON line, the characters json.dumps leaves raw that a terminal may act on, or
#: that a reader splitting on Unicode line breaks would cut the line at
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in (*range(0x7F, 0xA0), 0x2028, 0x2029)}


def add_parser(subparsers: Any) -> None:
    """Register ``watch`` on the main parser's subparsers."""
    from jobgate.cli.args import subcommand

    help_ = "print one line per job transition (started, finished, lost) as it happens"
    p = subcommand(subparsers, "watch", help_, EPILOG)
    p.add_argument(
        "--session",
        metavar="ID",
        help="only this session's background jobs, each end marked announced "
        "(default: $JOBGATE_SESSION_ID, else every job)",
    )
    p.add_argument(
        "--events",
        type=_events,
        default=EVENTS,
        metavar="LIST",
        help="only these, comma-separated: started, finished, lost (default: all)",
    )
    p.add_argument(
        "--interval",
        type=_interval,
        default=TICK,
        metavar="S",
        help=f"at most one look at the index per S seconds (default: {TICK}; the plugin "
        "monitor uses 2, the rate at which Claude Code takes notifications)",
    )
    p.add_argument("--json", action="store_true", help='one JSON object a line: {"event", "job"}')
    p.set_defaults(handler=cmd_watch)


def _events(text: str) -> tuple[str, ...]:
    import argparse

    chosen = tuple(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))
    bad = [w for w in chosen if w not in EVENTS]
    if bad or not chosen:
        raise argparse.ArgumentTypeError(
            f"expected some of {', '.join(EVENTS)}, comma-separated; got {text!r}"
        )
    return chosen


def _interval(text: str) -> float:
    from jobgate.cli.args import seconds

    return seconds(text, 0.05, 60)


def event_text(event: Event) -> str:
    """The human line of one transition (record text escaped and capped)."""
    from jobgate.cli.render import MESSAGE_MAX, NAME_MAX, clean
    from jobgate.state import model

    job = event.job
    job_id = clean(job.get("id"), NAME_MAX)
    label = f"{job_id} ({clean(job['name'], NAME_MAX)})" if job.get("name") else job_id
    if event.event == "started":
        pid = job.get("commandPid") or job.get("pid")
        return f"started {label}" + (f", pid {pid}" if isinstance(pid, int) else "")
    read = f"; read it: jobgate result {job_id}"
    message = str(job.get("errorMessage") or "")
    if event.event == "lost":
        return f"lost {label}: {clean(message.removeprefix('lost: '), MESSAGE_MAX)}{read}"
    status = str(job.get("status"))
    code = job.get("exitCode")
    text = f"finished {label}: {status}"
    if code is not None:
        text += f", exit {code}"
    if message and status != model.COMPLETED:
        text += f" ({clean(message, MESSAGE_MAX)})"
    return text + read


def event_json(event: Event) -> str:
    """The ``--json`` line: ``{"event": ..., "job": {summary}}``, compact, one line."""
    from jobgate.state.fileio import json_text

    text = json_text({"event": event.event, "job": event.job}, separators=(",", ":"))
    return text.translate(_JSON_ESCAPES)


def cmd_watch(args: argparse.Namespace) -> int:
    from jobgate.cli import commands
    from jobgate.jobs import idle, watch

    session = commands.session_of(args)
    _root, store = commands.open_store(args)
    claim: Claim | None = None
    if session is not None:
        from jobgate.claude import announcements

        claim = announcements.claim
    render = event_json if args.json else event_text

    wanted = frozenset(args.events)

    def emit(event: Event) -> None:
        if event.event in wanted:
            commands.emit(render(event))

    watcher = watch.Watcher(store, session, claim=claim)
    guard = idle.SessionGuard()
    try:
        with idle.Stopper() as stopper:
            why = watch.run(watcher, emit, stopper, guard, tick=args.interval)
    finally:
        guard.close()
    _note(f"jobgate: watch ended: {why}")
    return EXIT_OK


def _note(text: str) -> None:
    import sys

    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
