"""``jobgate diff``, ``jobgate apply`` and ``jobgate discard``: what a job run with
``--worktree`` changed, bringing it into your tree, and throwing its worktree away.
The work is :mod:`jobgate.agents.worktrees`."""

from __future__ import annotations

import sys

from jobgate.state.errors import EXIT_FAILED, EXIT_OK

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``diff``, ``apply`` and ``discard``."""
    from jobgate.cli.args import subcommand

    p = subcommand(
        subparsers,
        "diff",
        "show what a --worktree job changed relative to its base (committed and not)",
        "examples:\n  jobgate diff task-mid1\n  jobgate diff task-mid1 --stat\n"
        "  jobgate diff task-mid1 --json   # {job, files, diff}\n",
    )
    p.add_argument("job", metavar="JOB", help="job id or unique prefix")
    p.add_argument("--stat", action="store_true", help="only the files it changed")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_diff)

    p = subcommand(
        subparsers,
        "apply",
        "bring a --worktree job's change into your working tree (three-way; a conflict "
        "changes nothing and names the files)",
        "examples:\n  jobgate apply task-mid1\n  jobgate apply task-mid1 --json\n",
    )
    p.add_argument("job", metavar="JOB", help="job id or unique prefix")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_apply)

    p = subcommand(
        subparsers,
        "discard",
        "remove a finished --worktree job's worktree and its branch (the record stays)",
        "examples:\n  jobgate discard task-mid1\n"
        "  jobgate discard task-mid1 --force   # also when its change was never applied\n",
    )
    p.add_argument("job", metavar="JOB", help="job id or unique prefix")
    p.add_argument(
        "--force", action="store_true", help="also throw away a change that was never applied"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_discard)


def _job(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from jobgate.agents import worktrees
    from jobgate.cli import commands

    _root, store = commands.open_store(args)
    return store, worktrees.job_with_worktree(store, args.job)


def cmd_diff(args: argparse.Namespace) -> int:
    from jobgate.agents import worktrees
    from jobgate.cli import commands

    _store, job = _job(args)
    change = worktrees.change(job)
    if args.json:
        from jobgate.cli.render import to_json

        text = change.diff.decode("utf-8", "surrogateescape")
        commands.emit(to_json({"job": job["id"], "files": list(change.files), "diff": text}))
    elif args.stat:
        if change.files:
            commands.emit("\n".join(change.files))
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(change.diff)  # exactly git's bytes
        sys.stdout.buffer.flush()
    if not change.files and not args.json:
        sys.stderr.write(f"jobgate: job {job['id']} changed nothing\n")
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from jobgate.agents import worktrees
    from jobgate.cli import commands
    from jobgate.state.model import one_line

    store, job = _job(args)
    outcome = worktrees.apply(store, job)
    if args.json:
        from jobgate.cli.render import to_json

        commands.emit(
            to_json(
                {
                    "job": job["id"],
                    "applied": outcome.ok,
                    "changed": list(outcome.changed),
                    "conflicts": list(outcome.conflicts),
                }
            )
        )
    elif not outcome.ok:
        names = ", ".join(one_line(p) for p in outcome.conflicts)
        sys.stderr.write(
            f"jobgate: error: job {job['id']}'s change conflicts with your tree in: {names}; "
            "nothing was changed\n"
        )
    elif outcome.changed:
        commands.emit(
            f"applied job {job['id']}'s change to {job.get('worktreeRepo')}: "
            + ", ".join(one_line(p) for p in outcome.changed)
            + f"\nthen: jobgate discard {job['id']}"
        )
    else:
        commands.emit(f"job {job['id']} changed nothing: nothing to apply")
    return EXIT_OK if outcome.ok else EXIT_FAILED


def cmd_discard(args: argparse.Namespace) -> int:
    from jobgate.agents import worktrees
    from jobgate.cli import commands

    store, job = _job(args)
    final = worktrees.discard(store, job, force=args.force)
    if args.json:
        from jobgate.cli.render import to_json

        keys = ("id", "worktreePath", "worktreeBranch", "worktreeRemovedAt")
        commands.emit(to_json({k: final.get(k) for k in keys}))
    else:
        commands.emit(
            f"removed the worktree {final.get('worktreePath')} and branch "
            f"{final.get('worktreeBranch')} of job {final['id']}"
        )
    return EXIT_OK
