"""``jobgate review``: a read-only agent review of the uncommitted change, or of the
branch against a base. The work is :mod:`jobgate.agents.review`; the job is launched as
``jobgate task`` launches one (:mod:`jobgate.agents.task`)."""

from __future__ import annotations

import os

from jobgate.state.config import DEFAULT_AGENT
from jobgate.state.errors import EXIT_OK

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

EPILOG = """examples:
  jobgate review                              # the uncommitted change (staged, unstaged, untracked)
  jobgate review --base main --background     # this branch since it forked from main
  jobgate review --adversarial "the retry logic" "what if the disk is full"
  jobgate review --agent claude --json

The agent runs read-only (codex exec --sandbox read-only, held to a JSON schema of
findings; claude -p with edits denied). The review is the job's result: jobgate result ID
(--json adds "review": {verdict, summary, findings}).
"""


def add_parser(subparsers: Any) -> None:
    """Register ``review``."""
    from jobgate.cli.args import subcommand

    help_ = "run a read-only agent review of your change as a tracked job (kind review)"
    p = subcommand(subparsers, "review", help_, EPILOG)
    p.add_argument("--base", metavar="REF", help="review HEAD since its merge base with REF")
    p.add_argument(
        "--agent",
        "-a",
        default=DEFAULT_AGENT,
        metavar="NAME",
        help=f"codex or claude (default: {DEFAULT_AGENT})",
    )
    p.add_argument(
        "--adversarial",
        nargs="*",
        metavar="FOCUS",
        default=None,
        help="challenge the design (assumptions, trade-offs, failure modes, simpler ways); "
        "FOCUS words are appended to the prompt",
    )
    p.add_argument("--background", "-b", action="store_true", help="return at once")
    p.add_argument("--name", help="a label for the job (default: what is reviewed)")
    p.add_argument("--session", metavar="ID", help="session id (default: $JOBGATE_SESSION_ID)")
    p.add_argument("--json", action="store_true", help="print JSON")
    from jobgate.cli import queue_opts

    queue_opts.add_options(p)
    p.set_defaults(handler=cmd_review)


def cmd_review(args: argparse.Namespace) -> int:
    from jobgate.agents import review, task
    from jobgate.cli import commands
    from jobgate.cli.task import _detach_stdin, report_started

    cwd = os.path.realpath(getattr(args, "cwd", None) or os.getcwd())
    tgt = review.target(cwd, args.base)  # bad ref, not a repository: before anything
    _root, store = commands.open_store(args)
    if tgt.change.empty:
        line = review.nothing_to_review(args.base)
        if args.json:
            from jobgate.cli.render import to_json

            commands.emit(to_json({"job": None, "message": line}))
        else:
            commands.emit(line)
        return EXIT_OK
    adversarial = args.adversarial is not None
    prompt = review.build_prompt(
        tgt,
        adversarial=adversarial,
        focus=" ".join(args.adversarial or []),
        structured=review.uses_schema(args.agent),
    )
    _shown, unread = review.fit(tgt.change)
    what = "adversarial review" if adversarial else "review"
    extra = {
        "reviewBase": args.base,
        "reviewFiles": len(tgt.change.files),
        "reviewDiffBytes": len(tgt.change.diff),
        "reviewCut": bool(unread),
        "adversarial": adversarial,
    }
    prepared = review.prepare(
        store,
        args.agent,
        prompt,
        cwd=cwd,
        name=args.name or f"{args.agent} {what}: {tgt.describe}"[:80],
        session_id=commands.session_of(args),
        extra=extra,
    )
    from jobgate.cli import queue_opts

    plan = queue_opts.resolve(args, store, background=args.background, agent=prepared.agent)
    prepared.fields["extra"].update(plan.extra)
    if plan.queued:
        queue_opts.report(store, task.enqueue(store, prepared, plan.queue_kwargs()), args.json)
        return EXIT_OK
    if args.background:
        job = task.start_background(store, prepared)
        report_started(job, args.json, tuple(extra), f"started a {what} by {prepared.agent}")
        return EXIT_OK
    _detach_stdin()
    final, code = task.run_foreground(store, prepared, stdout_to_stderr=args.json)
    if args.json:
        from jobgate.cli.render import to_json

        commands.emit(to_json({"job": final, "review": review.structured(final.get("output"))}))
    return code
