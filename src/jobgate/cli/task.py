"""``jobgate task``: the command line of an agent task (codex, claude, or a configured
profile): its arguments, reading the prompt, and output. The task itself is
:mod:`jobgate.agents.task`. Agents run non-interactively: their stdin is ``/dev/null`` in
the foreground too, so an agent that reads piped stdin (``codex exec`` does) never waits
on ours."""

from __future__ import annotations

import os
import sys

from jobgate.state.config import DEFAULT_AGENT
from jobgate.state.errors import EXIT_OK, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any


EPILOG = """examples:
  jobgate task --background --name flaky "find why test_sync is flaky and fix it"
  jobgate task --agent claude --model sonnet --effort high "summarise the TODOs in src/"
  jobgate task --json - < long-task.md       # PROMPT - : read the prompt from stdin
  jobgate task -- "-x flag in the prompt"    # after --, a prompt may start with -
  jobgate task --resume "now add a test"     # continue the newest task's agent thread
  jobgate task --resume task-ab12 "go on"    # continue that job's thread

--resume takes no value: with it, one word after the options is PROMPT (continue the
newest task that has an agent session: of the session, when one is set), two are JOB
PROMPT. --fresh (the default) starts a new thread.

agents: codex (codex exec; the job's result is its final message) and claude (claude -p);
add your own: jobgate config set agents.NAME '["prog", "--flag", "{prompt}"]'
"""


def add_parser(subparsers: Any) -> None:
    """Register ``task`` on the main parser's subparsers."""
    from jobgate.cli.args import subcommand

    help_ = "run an agent CLI (codex, claude, ...) on a prompt as a tracked job"
    p = subcommand(subparsers, "task", help_, EPILOG)
    p.add_argument(
        "--agent",
        "-a",
        default=None,
        metavar="NAME",
        help=f"agent profile (default: {DEFAULT_AGENT}, or the resumed job's; see jobgate "
        "config get)",
    )
    thread = p.add_mutually_exclusive_group()
    thread.add_argument(
        "--resume",
        action="store_true",
        help="continue an earlier task's agent thread: JOB, else the newest one with a thread",
    )
    thread.add_argument("--fresh", action="store_true", help="start a new thread (the default)")
    p.add_argument("--model", metavar="M", help="the model the agent uses (its profile's {model})")
    p.add_argument(
        "--effort", metavar="E", help="the agent's reasoning effort (its profile's {effort})"
    )
    p.add_argument("--background", "-b", action="store_true", help="return at once")
    p.add_argument("--name", help="a label for the job (default: agent and prompt start)")
    p.add_argument("--session", metavar="ID", help="session id (default: $JOBGATE_SESSION_ID)")
    p.add_argument(
        "--worktree", action="store_true", help="run in a fresh git worktree (jobgate diff/apply)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    from jobgate.cli import queue_opts

    queue_opts.add_options(p)
    p.add_argument("job", metavar="JOB", nargs="?", help="with --resume: the task to continue")
    p.add_argument("prompt", metavar="PROMPT", help="the task for the agent; - reads it from stdin")
    # words after an option are still JOB/PROMPT (filled in by jobgate.cli.main)
    p.set_defaults(handler=cmd_task, later_words=[])


def report_started(job: dict[str, Any], as_json: bool, more: Sequence[str], what: str) -> None:
    """What an agent job started in the background prints: its id, then how to follow
    it; ``--json``: its brief, with the ``more`` keys."""
    from jobgate.cli import commands

    if as_json:
        from jobgate.cli.render import to_json

        keys = ("id", "status", "pid", "name", "kind", "agent", "logFile", *more)
        commands.emit(to_json({k: job.get(k) for k in keys}))
        return
    commands.emit(
        f"{job['id']}\n{what} in the background (pid {job['pid']}); "
        f"then: jobgate wait {job['id']} && jobgate result {job['id']}"
    )


def _read_prompt(arg: str) -> str:
    from jobgate.agents import profiles as agents

    if arg != "-":
        return agents.check_prompt(arg)
    if sys.stdin is None:
        raise JobgateError("PROMPT is - but there is no stdin to read it from")
    if sys.stdin.isatty():
        sys.stderr.write("jobgate: reading the prompt from stdin (end with Ctrl-D)\n")
    text = sys.stdin.buffer.read().decode("utf-8", "replace")
    return agents.check_prompt(text.rstrip("\r\n"))


def _detach_stdin() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(fd, 0)
    finally:
        os.close(fd)


def _resumed(store: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The task ``--resume`` continues. A lone word that is a job's id is refused: it is
    taken as PROMPT, so the user surely forgot the prompt."""
    from jobgate.agents import threads
    from jobgate.cli import commands
    from jobgate.state import model

    if args.job is None and model.is_safe_id(args.prompt) and store.read_job(args.prompt):
        raise JobgateError(
            f"{args.prompt!r} is a job, and with --resume one word is the PROMPT: give both, "
            f"jobgate task --resume {args.prompt} PROMPT"
        )
    return threads.find(store, args.job, commands.session_of(args))


def cmd_task(args: argparse.Namespace) -> int:
    from jobgate.agents import task
    from jobgate.cli import commands

    words = [w for w in (args.job, args.prompt) if w is not None] + list(args.later_words)
    if len(words) > 2 or (len(words) == 2 and not args.resume):
        first = words[0]
        raise JobgateError(
            f"one PROMPT only (got {len(words)} words; a prompt of several words goes in "
            f"quotes); to continue job {first}'s thread: jobgate task --resume {first} PROMPT"
        )
    args.job, args.prompt = (words[0], words[1]) if len(words) == 2 else (None, words[0])
    _root, store = commands.open_store(args)
    resume = _resumed(store, args) if args.resume else None
    agent = args.agent or (resume["agent"] if resume else DEFAULT_AGENT)
    if resume is not None and agent != resume.get("agent"):
        raise JobgateError(
            f"job {resume['id']} ran agent {resume.get('agent')!r}, not {agent!r}: a thread "
            "is continued by the agent that started it"
        )
    prompt = _read_prompt(args.prompt)
    cwd = os.path.realpath(getattr(args, "cwd", None) or os.getcwd())
    from jobgate.cli import queue_opts
    from jobgate.cli.isolation import WORKTREE_KEYS, isolated, until_recorded

    _fields, iso = isolated(store, {"cwd": cwd, "kind": "task"}, getattr(args, "worktree", False))
    if iso is not None:
        cwd = iso.cwd
    with until_recorded(iso):
        prepared = task.prepare(
            store,
            agent,
            prompt,
            cwd=cwd,
            name=args.name,
            session_id=commands.session_of(args),
            resume=resume,
            options={"model": args.model, "effort": args.effort},
        )
        if iso is not None:
            import dataclasses

            from jobgate.agents import worktrees

            fields = worktrees.launch_fields(iso, prepared.fields)
            prepared = dataclasses.replace(prepared, fields=fields)
        plan = queue_opts.resolve(args, store, background=args.background, agent=prepared.agent)
        prepared.fields["extra"].update(plan.extra)
        if plan.queued:
            queued = task.enqueue(store, prepared, plan.queue_kwargs())
            queue_opts.report(store, queued, args.json)
            return EXIT_OK
        if args.background:
            job = task.start_background(store, prepared)
    if args.background:
        more = ("resumedFrom", *(k for k in WORKTREE_KEYS if k in job))
        report_started(job, args.json, more, f"started {prepared.agent}")
        return EXIT_OK
    _detach_stdin()
    final, code = task.run_foreground(store, prepared, stdout_to_stderr=args.json)
    if args.json:
        from jobgate.cli.render import to_json

        commands.emit(to_json({"job": final}))
    return code
