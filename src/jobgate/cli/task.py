"""``jobgate task``: run an agent CLI (codex, claude, or a configured profile) as a job.

The prompt reaches the agent as one argv element (see :mod:`jobgate.agents.profiles`); no shell is
involved. The agent's program is looked up before anything is recorded, so a missing
program is one clear error and leaves no job behind. Agents run non-interactively: their
stdin is ``/dev/null`` in the foreground too, so an agent that reads piped stdin (``codex
exec`` does) never waits on ours.
"""

from __future__ import annotations

import os
import sys

from jobgate.state.config import DEFAULT_AGENT
from jobgate.state.errors import EXIT_OK, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from jobgate.state.store import Store

#: exit code when the agent's program is missing (the shell's "command not found")
EXIT_NOT_FOUND = 127

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
    import argparse

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cwd",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="workspace directory (default: the current directory)",
    )
    help_ = "run an agent CLI (codex, claude, ...) on a prompt as a tracked job"
    p = subparsers.add_parser(
        "task",
        parents=[common],
        help=help_,
        description=help_,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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


def _locate(program: str, cwd: str) -> str | None:
    """Where ``program`` would be found when started in ``cwd`` (None: nowhere).

    A name without a slash is looked up on PATH; a path is taken relative to ``cwd``,
    as the worker starts the command there.
    """
    import shutil

    if os.sep in program or (os.altsep and os.altsep in program):
        return shutil.which(os.path.join(cwd, program))
    return shutil.which(program)


def _result_file(store: Store) -> str:
    """A fresh, empty file in the job folder for the agent's final message.

    Created here (0600, like every state file: a final message can be as secret as the
    prompt) rather than left to the agent, which would create it with its own umask.
    """
    import secrets

    while True:
        path = os.path.join(store.jobs_dir, f"{secrets.token_hex(8)}.last-message")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue
        return path


def _remove_quietly(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def _detach_stdin() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(fd, 0)
    finally:
        os.close(fd)


def cmd_task(args: argparse.Namespace) -> int:
    from jobgate.agents import profiles as agents
    from jobgate.cli import commands
    from jobgate.jobs import launch
    from jobgate.state import config as config_mod

    prompt = _read_prompt(args.prompt)
    _root, store = commands.open_store(args)
    stored = store.read_config() if os.path.isdir(store.state_dir) else {}
    profiles = config_mod.effective(stored)["agents"]
    template = agents.profile(profiles, args.agent)
    cwd = os.path.realpath(getattr(args, "cwd", None) or os.getcwd())
    if _locate(template[0], cwd) is None:
        raise JobgateError(
            agents.missing_program_message(args.agent, template[0], template), EXIT_NOT_FOUND
        )

    store.ensure()
    result_file = _result_file(store) if agents.uses_last_message_file(template) else None
    command = agents.build(profiles, args.agent, prompt, result_file)
    extra: dict[str, Any] = {"agent": command.agent}
    if command.result_file is not None:
        # read by the worker when the agent ends (jobgate.jobs.worker: the job's result)
        extra["resultFile"] = command.result_file
    common: dict[str, Any] = dict(
        cwd=cwd,
        kind="task",
        name=args.name or agents.default_name(command.agent, prompt),
        session_id=commands.session_of(args),
        extra=extra,
    )
    if args.background:
        try:
            job = launch.start_background(store, list(command.argv), **common)
        except BaseException:
            _remove_quietly(command.result_file)
            raise
        if args.json:
            from jobgate.cli.render import to_json

            keys = ("id", "status", "pid", "name", "kind", "agent", "logFile")
            commands.emit(to_json({k: job.get(k) for k in keys}))
        else:
            commands.emit(
                f"{job['id']}\nstarted {command.agent} in the background (pid {job['pid']}); "
                f"then: jobgate wait {job['id']} && jobgate result {job['id']}"
            )
        return EXIT_OK
    _detach_stdin()
    try:
        final, code = launch.run_foreground(
            store, list(command.argv), stdout_to_stderr=args.json, **common
        )
    finally:
        _remove_quietly(command.result_file)  # normally read and removed by the worker
    if args.json:
        from jobgate.cli.render import to_json

        commands.emit(to_json({"job": final}))
    return code
