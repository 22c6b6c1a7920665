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
    from typing import Any


EPILOG = """examples:
  jobgate task --background --name flaky "find why test_sync is flaky and fix it"
  jobgate task --agent claude "summarise the open TODOs in src/"
  jobgate task --json - < long-task.md       # PROMPT - : read the prompt from stdin
  jobgate task -- "-x flag in the prompt"    # after --, a prompt may start with -

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
        default=DEFAULT_AGENT,
        metavar="NAME",
        help=f"agent profile (default: {DEFAULT_AGENT}; see jobgate config get)",
    )
    p.add_argument("--background", "-b", action="store_true", help="return at once")
    p.add_argument("--name", help="a label for the job (default: agent and prompt start)")
    p.add_argument("--session", metavar="ID", help="session id (default: $JOBGATE_SESSION_ID)")
    p.add_argument("--json", action="store_true", help="print JSON")
    from jobgate.cli import queue_opts

    queue_opts.add_options(p)
    p.add_argument("prompt", metavar="PROMPT", help="the task for the agent; - reads it from stdin")
    p.set_defaults(handler=cmd_task)


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


def cmd_task(args: argparse.Namespace) -> int:
    from jobgate.agents import task
    from jobgate.cli import commands

    prompt = _read_prompt(args.prompt)
    _root, store = commands.open_store(args)
    prepared = task.prepare(
        store,
        args.agent,
        prompt,
        cwd=os.path.realpath(getattr(args, "cwd", None) or os.getcwd()),
        name=args.name,
        session_id=commands.session_of(args),
    )
    from jobgate.cli import queue_opts

    plan = queue_opts.resolve(args, store, background=args.background, agent=prepared.agent)
    prepared.fields["extra"].update(plan.extra)
    if plan.queued:
        queue_opts.report(store, task.enqueue(store, prepared, plan.queue_kwargs()), args.json)
        return EXIT_OK
    if args.background:
        job = task.start_background(store, prepared)
        if args.json:
            from jobgate.cli.render import to_json

            keys = ("id", "status", "pid", "name", "kind", "agent", "logFile")
            commands.emit(to_json({k: job.get(k) for k in keys}))
        else:
            commands.emit(
                f"{job['id']}\nstarted {prepared.agent} in the background (pid {job['pid']}); "
                f"then: jobgate wait {job['id']} && jobgate result {job['id']}"
            )
        return EXIT_OK
    _detach_stdin()
    final, code = task.run_foreground(store, prepared, stdout_to_stderr=args.json)
    if args.json:
        from jobgate.cli.render import to_json

        commands.emit(to_json({"job": final}))
    return code
