"""Command line: argument parsing and exit codes only; the work happens elsewhere.

Exit codes: 0 ok; 1 the job failed / was cancelled / was lost (``wait``, ``result``,
``log --follow``) / is not in the needed state, or
the system refused (disk full, read-only, permission denied, lock busy; one line naming
the file); 2 bad input (unknown or ambiguous job, bad value, bad arguments); 124 ``wait``
timed out; ``run`` in the foreground exits with the command's own code (128+N on signal N).

An error is one line on stderr, ``jobgate: error: ...``, with any control character in
it (a newline in an argument, an escape sequence) escaped; with ``--json`` it is a JSON
object on stderr instead, ``{"error": "...", "exitCode": N}``, and stdout stays empty, so
stdout only ever carries a command's result.
"""

from __future__ import annotations

import os
import sys

from jobgate.state.errors import EXIT_FAILED, EXIT_USAGE, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import NoReturn


#: optional subcommand modules, each exporting ``add_parser(subparsers)``, and the
#: subcommands each registers (a test holds this to what they really register)
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "jobgate.cli.doctor": ("doctor",),
    "jobgate.claude.shell": ("hook",),
    "jobgate.cli.task": ("task",),
    "jobgate.cli.watch": ("watch",),
    "jobgate.cli.review": ("review",),
    "jobgate.cli.worktree": ("diff", "apply", "discard"),
    "jobgate.cli.top": ("top",),
    "jobgate.cli.queue": ("queue", "restart"),
}
#: the subcommands built into this module
BUILT_IN = ("run", "status", "result", "log", "wait", "cancel", "sweep", "config")


# -- parser --------------------------------------------------------------------------
EXAMPLES = """examples:
  jobgate run --background --name tests -- pytest -q
  jobgate status
  jobgate log run-mid1k2x3-4f9a2c --follow
  jobgate wait run-mid1 --timeout 600 && jobgate result run-mid1
  jobgate cancel run-mid1
  jobgate config set maxJobs 100
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``only``, just that subcommand's (the others are
    not built, and the modules of extension subcommands not imported)."""
    import argparse

    from jobgate.cli.args import Unused, kind, non_negative_int
    from jobgate.cli.commands import (
        cmd_cancel,
        cmd_log,
        cmd_result,
        cmd_run,
        cmd_status,
        cmd_sweep,
        cmd_wait,
    )
    from jobgate.cli.config_cmd import cmd_config

    class Parser(argparse.ArgumentParser):
        """Usage errors as one line on stderr, like every other error, not usage + error."""

        def error(self, message: str) -> NoReturn:
            raise JobgateError(f"{message} (see {self.prog} --help)", EXIT_USAGE)

    common = Parser(add_help=False)
    common.add_argument(
        "--cwd",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="workspace directory (default: the current directory)",
    )
    parser = Parser(
        prog="jobgate",
        description="Run commands as background jobs whose recorded state never lies.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from jobgate import __version__

    parser.add_argument("--version", action="version", version=f"jobgate {__version__}")
    parser.add_argument("--cwd", metavar="DIR", help="workspace directory (default: .)")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    sub.required = True

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], help_: str, example: str
    ) -> argparse.ArgumentParser:
        if only is not None and name != only:
            return Unused()  # type: ignore[return-value]
        p = sub.add_parser(
            name,
            parents=[common],
            help=help_,
            description=help_,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=handler)
        return p

    p = add(
        "run",
        cmd_run,
        "run a command as a tracked job",
        "jobgate run --background --name build -- make -j2",
    )
    p.add_argument("--background", "-b", action="store_true", help="return at once")
    p.add_argument("--name", help="a label for the job")
    p.add_argument(
        "--kind", default="run", type=kind, help="job kind, the id prefix (default: run)"
    )
    p.add_argument("--session", metavar="ID", help="session id (default: $JOBGATE_SESSION_ID)")
    p.add_argument(
        "--worktree", action="store_true", help="run in a fresh git worktree (jobgate diff/apply)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    from jobgate.cli import queue_opts

    queue_opts.add_options(p)
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")

    p = add("status", cmd_status, "show jobs (running first) or one job", "jobgate status --json")
    p.add_argument("job", nargs="?", help="job id or unique prefix")
    p.add_argument("--all", action="store_true", help="list every retained job")
    p.add_argument("--json", action="store_true", help="print JSON")
    if not isinstance(p, Unused):
        from jobgate.cli.top import add_watch_arguments

        add_watch_arguments(p)  # --watch [--interval S]: the live view, as jobgate top

    p = add(
        "result", cmd_result, "show the stored outcome of a finished job", "jobgate result run-mid1"
    )
    p.add_argument("job", nargs="?", help="job id or prefix (default: newest finished)")
    p.add_argument("--session", metavar="ID", help="session id (default: $JOBGATE_SESSION_ID)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("log", cmd_log, "print a job's log", "jobgate log run-mid1 --follow")
    p.add_argument("job", help="job id or unique prefix")
    p.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")
    p.add_argument("--tail", "-n", type=non_negative_int, metavar="N", help="only the last N lines")

    p = add(
        "wait",
        cmd_wait,
        "wait for a job to finish (0 completed, 1 not, 124 timeout)",
        "jobgate wait run-mid1 --timeout 600",
    )
    p.add_argument("job", nargs="*", help="job ids or prefixes (default: the only active job)")
    p.add_argument("--all", action="store_true", help="every active job (of --session, if given)")
    p.add_argument("--timeout", type=_seconds, metavar="S", help="give up after S seconds")
    p.add_argument("--session", metavar="ID", help="session id (default: $JOBGATE_SESSION_ID)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add(
        "cancel",
        cmd_cancel,
        "end a job's whole process tree and record it cancelled",
        "jobgate cancel run-mid1 --grace 2",
    )
    p.add_argument(
        "job", nargs="?", help="job id or prefix (default: the session's only active job)"
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="every active job of the workspace (of --session, if given); queued ones first",
    )
    p.add_argument(
        "--grace",
        type=_seconds,
        default=5.0,
        metavar="S",
        help="seconds between TERM and KILL (default: 5)",
    )
    p.add_argument("--session", metavar="ID", help="session id (default: $JOBGATE_SESSION_ID)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add(
        "sweep",
        cmd_sweep,
        "reconcile every active job now and list what changed",
        "jobgate sweep --dry-run",
    )
    p.add_argument("--dry-run", action="store_true", help="report, change nothing")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add(
        "config",
        cmd_config,
        "read or change settings",
        "jobgate config set maxJobs 100\n  jobgate config unset maxJobs\n"
        "  jobgate config reset   # a damaged config.json: moved aside, defaults again",
    )
    csub = p.add_subparsers(dest="action", metavar="ACTION")
    csub.required = True
    g = csub.add_parser(
        "get",
        parents=[common],
        help="show settings (all, or one KEY)",
        description="show settings (all, or one KEY)",
        epilog="examples:\n  jobgate config get\n  jobgate config get maxJobs --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("key", nargs="?")
    g.add_argument("--json", action="store_true", help="print JSON")
    s = csub.add_parser(
        "set",
        parents=[common],
        help="change one setting",
        description="change one setting (keys and values: jobgate config get)",
        epilog="examples:\n  jobgate config set maxJobs 100\n"
        "  jobgate config set stopReviewGate true\n"
        '  jobgate config set agents.aider \'["aider", "--yes", "--message", "{prompt}"]\'',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("key")
    s.add_argument("value")
    s.add_argument("--json", action="store_true", help="print JSON")
    u = csub.add_parser(
        "unset",
        parents=[common],
        help="remove one setting from config.json (it is the default again)",
        description="remove one setting from config.json (it is the default again)",
        epilog="examples:\n  jobgate config unset stopReviewGate\n"
        "  jobgate config unset agents.aider",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    u.add_argument("key")
    u.add_argument("--json", action="store_true", help="print JSON")
    r = csub.add_parser(
        "reset",
        parents=[common],
        help="move config.json aside (config.json.bak-<UTC time>) and start from the defaults",
        description="move config.json, damaged or not, aside to config.json.bak-<UTC time> "
        "and start from the defaults",
        epilog="example:\n  jobgate config reset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--json", action="store_true", help="print JSON")

    import importlib

    for module_name, names in EXTENSIONS.items():
        if only is not None and only not in names:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.add_parser(sub)
    return parser


def _seconds(text: str) -> float:
    from jobgate.cli.args import seconds

    return seconds(text)


def main(argv: list[str] | None = None) -> int:
    from jobgate.state.fileio import tolerant_stdio

    tolerant_stdio()  # a name, command or folder that is not UTF-8 must not crash output
    args_list = sys.argv[1:] if argv is None else list(argv)
    # until the arguments are parsed: --json anywhere before a "--" asks for JSON errors
    as_json = "--json" in args_list[: args_list.index("--") if "--" in args_list else None]
    try:
        if args_list[:1] == ["hook"]:
            from jobgate.claude import shell

            return int(shell.main(args_list[1:]))
        from jobgate.cli.fastargs import fast_run_args, fast_status_args

        fast = fast_status_args(args_list) or fast_run_args(args_list)
        if fast is not None:
            return int(fast.handler(fast))
        from jobgate.cli.args import command_word

        known = set(BUILT_IN).union(*EXTENSIONS.values())
        parser = build_parser(command_word(args_list, known))
        args, extra = parser.parse_known_args(args_list)
        as_json = bool(getattr(args, "json", False))
        if extra and hasattr(args, "later_words") and not any(w[:1] == "-" != w for w in extra):
            # words argparse left over after an option (task --resume JOB --model M PROMPT)
            args.later_words, extra = extra, []
        if extra:
            # argparse would blame the top level; point at the subcommand's own help
            words = [w for w in (args.subcommand, getattr(args, "action", None)) if w]
            raise JobgateError(
                f"unrecognized arguments: {' '.join(extra)} (see jobgate {' '.join(words)} --help)",
                EXIT_USAGE,
            )
        return int(args.handler(args))
    except JobgateError as exc:
        return _fail(exc.message, exc.exit_code, as_json)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, as_json, label="jobgate")
    except RecursionError:
        # json.loads of a value nested ~1000 deep (config set agents.X '[[[[...')
        return _fail("the input holds JSON nested too deeply to read", EXIT_USAGE, as_json)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the final flush
        except OSError:
            pass
        return EXIT_FAILED
    except OSError as exc:
        # the system refused (disk full, read-only, permission denied): not bad input
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return _fail(f"{exc.strerror or exc}{where}", EXIT_FAILED, as_json)


#: in a JSON text, the characters json.dumps leaves raw that a terminal may act on
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in (*range(0x7F, 0xA0), 0x2028, 0x2029)}


def _fail(message: str, code: int, as_json: bool, label: str = "jobgate: error") -> int:
    """Say what went wrong in one line on stderr (see the module's docstring); ``code``."""
    if as_json:
        import json

        text = json.dumps({"error": message, "exitCode": code}, ensure_ascii=False)
        line = text.translate(_JSON_ESCAPES)
    else:
        from jobgate.state.model import one_line

        line = f"{label}: {one_line(message)}"
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return code


if __name__ == "__main__":
    raise SystemExit(main())
