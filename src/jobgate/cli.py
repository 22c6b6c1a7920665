"""Command line: argument parsing and exit codes only; the work happens elsewhere.

Exit codes: 0 ok; 1 the job failed / was cancelled / is not in the needed state;
2 bad input (unknown or ambiguous job, bad value, bad arguments); 124 ``wait`` timed
out; ``run`` in the foreground exits with the command's own code (128+N on signal N).
"""

from __future__ import annotations

import os
import sys

from jobgate.errors import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import NoReturn

    from jobgate.store import Store

#: optional subcommand modules; each exports ``add_parser(subparsers)``
EXTENSIONS = ("jobgate.doctor_cli", "jobgate.hooks_cli", "jobgate.task_cli")


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _context(args: argparse.Namespace, *, create: bool = False) -> tuple[str, Store]:
    from jobgate.store import Store
    from jobgate.workspace import state_dir_for

    root, state_dir = state_dir_for(getattr(args, "cwd", None))
    store = Store(state_dir, root)
    if create:
        store.ensure()
    else:
        store.exists()  # refuses a symlinked / foreign state dir
    return root, store


def _session(args: argparse.Namespace) -> str | None:
    value = getattr(args, "session", None)
    if value:
        return str(value)
    return os.environ.get("JOBGATE_SESSION_ID") or None


# -- run ---------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from jobgate import launch

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise JobgateError("missing command: give it after --, e.g. jobgate run -- make test")
    _root, store = _context(args, create=True)
    cwd = os.path.realpath(getattr(args, "cwd", None) or os.getcwd())
    common = dict(cwd=cwd, kind=args.kind, name=args.name, session_id=_session(args))
    if args.background:
        job = launch.start_background(store, command, **common)  # type: ignore[arg-type]
        if args.json:
            from jobgate.render import to_json

            brief = {k: job.get(k) for k in ("id", "status", "pid", "name", "logFile")}
            _out(to_json(brief))
        else:
            _out(
                f"{job['id']}\nstarted in the background (pid {job['pid']}); "
                f"follow: jobgate log {job['id']} --follow"
            )
        return EXIT_OK
    job, code = launch.run_foreground(store, command, **common)  # type: ignore[arg-type]
    if args.json:
        from jobgate.render import to_json

        _out(to_json({"job": job}))
    return code


# -- status / result / log -----------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from jobgate import model, refresh, render

    root, store = _context(args)
    jobs, _lost = refresh.load(store)
    if args.job is not None:  # "" is a bad reference, not "no reference"
        job = refresh.full_record(store, model.resolve_ref(jobs, args.job))
        if args.json:
            _out(render.to_json({"job": job}))
        else:
            _out(render.job_text(job))
        return EXIT_OK
    ordered = model.sort_newest_first(jobs)
    if args.json:
        if not args.all:
            finished = [j for j in ordered if not model.is_active(j)][: render.RECENT_FINISHED]
            keep = {id(j) for j in finished}
            ordered = [j for j in ordered if model.is_active(j) or id(j) in keep]
        payload = {"workspaceRoot": root, "stateDir": store.state_dir, "jobs": ordered}
        _out(render.to_json(payload))
    else:
        _out(render.status_text(jobs, show_all=args.all, workspace_root=root))
    return EXIT_OK


def cmd_result(args: argparse.Namespace) -> int:
    from jobgate import control, model, refresh, render

    _root, store = _context(args)
    jobs, _lost = refresh.load(store)
    job = control.pick(
        jobs,
        args.job,
        session_id=None if args.job else _session(args),
        want="any" if args.job else "finished",
    )
    if model.is_active(job):
        raise JobgateError(
            f"job {job['id']} is still {job.get('status')}; wait for it: jobgate wait {job['id']}",
            EXIT_FAILED,
        )
    full = refresh.full_record(store, job)
    _out(render.to_json({"job": full}) if args.json else render.result_text(full))
    return EXIT_OK


def cmd_log(args: argparse.Namespace) -> int:
    from jobgate import logview, model, refresh

    _root, store = _context(args)
    jobs, _lost = refresh.load(store)
    job = model.resolve_ref(jobs, args.job)
    return logview.show(store, str(job["id"]), follow=args.follow, tail=args.tail)


def cmd_wait(args: argparse.Namespace) -> int:
    from jobgate import control, model, refresh, render

    _root, store = _context(args)
    jobs, _lost = refresh.load(store)
    job = control.pick(jobs, args.job, session_id=_session(args), want="active")
    final = control.wait(store, str(job["id"]), args.timeout)
    if final is None:
        if args.json:
            _out(render.to_json({"job": job, "timedOut": True}))
        else:
            sys.stderr.write(f"jobgate: timed out waiting for {job['id']}\n")
        return EXIT_TIMEOUT
    if args.json:
        _out(render.to_json({"job": final, "timedOut": False}))
    else:
        _out(render.job_line(final))
    return EXIT_OK if final.get("status") == model.COMPLETED else EXIT_FAILED


def cmd_cancel(args: argparse.Namespace) -> int:
    from jobgate import control, model, refresh, render

    _root, store = _context(args)
    jobs, _lost = refresh.load(store)
    job = control.pick(
        jobs, args.job, session_id=_session(args), want="active" if not args.job else "any"
    )
    if not model.is_active(job):
        raise JobgateError(
            f"job {job['id']} is not active (status: {job.get('status')})", EXIT_FAILED
        )
    outcome = control.cancel(store, str(job["id"]), grace=args.grace)
    final = outcome["job"]
    if args.json:
        _out(render.to_json(outcome))
    else:
        for problem in outcome["problems"]:
            sys.stderr.write(f"jobgate: {problem}\n")
        _out(f"{final['id']}: {final.get('status')} ({final.get('errorMessage')})")
    return EXIT_OK if final.get("status") == model.CANCELLED else EXIT_FAILED


def cmd_sweep(args: argparse.Namespace) -> int:
    from jobgate import refresh, render

    _root, store = _context(args)
    _jobs, lost = refresh.load(store, persist=not args.dry_run)
    if args.json:
        changed = [{"id": job_id, "reason": reason} for job_id, reason in lost]
        _out(render.to_json({"dryRun": args.dry_run, "changed": changed}))
    else:
        _out(render.sweep_text(lost, args.dry_run))
    return EXIT_OK


# -- config --------------------------------------------------------------------------
def cmd_config(args: argparse.Namespace) -> int:
    from jobgate import config, render

    _root, store = _context(args, create=args.action == "set")
    if args.action == "set":
        value = config.validate(args.key, args.value)
        with store.lock():
            stored = store.read_config()
            stored[args.key] = value
            store.write_config(stored)
        _out(render.to_json({args.key: value}) if args.json else f"{args.key} = {_show(value)}")
        return EXIT_OK
    stored = store.read_config() if os.path.isdir(store.state_dir) else {}
    if args.key:
        value = config.get(stored, args.key)
        _out(render.to_json({args.key: value}) if args.json else _show(value))
        return EXIT_OK
    eff = config.effective(stored)
    if args.json:
        _out(render.to_json(eff))
    else:
        for key, value in eff.items():
            if key == "agents":
                for name, argv in value.items():
                    _out(f"agents.{name} = {_show(argv)}")
            else:
                _out(f"{key} = {_show(value)}")
    return EXIT_OK


def _show(value: object) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


# -- parser --------------------------------------------------------------------------
EXAMPLES = """examples:
  jobgate run --background --name tests -- pytest -q
  jobgate status
  jobgate log run-mid1k2x3-4f9a2c --follow
  jobgate wait run-mid1 --timeout 600 && jobgate result run-mid1
  jobgate cancel run-mid1
  jobgate config set maxJobs 100
"""


def build_parser() -> argparse.ArgumentParser:
    import argparse

    class Parser(argparse.ArgumentParser):
        """Usage errors as one line on stderr, like every other error, not usage + error."""

        def error(self, message: str) -> NoReturn:
            text = " ".join(message.split())
            self.exit(EXIT_USAGE, f"jobgate: error: {text} (see {self.prog} --help)\n")

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
    p.add_argument("--kind", default="run", help="job kind, the id prefix (default: run)")
    p.add_argument("--session", metavar="ID", help="session id (default: $JOBGATE_SESSION_ID)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")

    p = add("status", cmd_status, "show jobs (running first) or one job", "jobgate status --json")
    p.add_argument("job", nargs="?", help="job id or unique prefix")
    p.add_argument("--all", action="store_true", help="list every retained job")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add(
        "result", cmd_result, "show the stored outcome of a finished job", "jobgate result run-mid1"
    )
    p.add_argument("job", nargs="?", help="job id or prefix (default: newest finished)")
    p.add_argument("--session", metavar="ID", help="session id (default: $JOBGATE_SESSION_ID)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("log", cmd_log, "print a job's log", "jobgate log run-mid1 --follow")
    p.add_argument("job", help="job id or unique prefix")
    p.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")
    p.add_argument(
        "--tail", "-n", type=_non_negative_int, metavar="N", help="only the last N lines"
    )

    p = add(
        "wait",
        cmd_wait,
        "wait for a job to finish (0 completed, 1 not, 124 timeout)",
        "jobgate wait run-mid1 --timeout 600",
    )
    p.add_argument("job", nargs="?", help="job id or prefix (default: the only active job)")
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

    p = add("config", cmd_config, "read or change settings", "jobgate config set maxJobs 100")
    csub = p.add_subparsers(dest="action", metavar="ACTION")
    csub.required = True
    g = csub.add_parser("get", parents=[common], help="show settings (all, or one KEY)")
    g.add_argument("key", nargs="?")
    g.add_argument("--json", action="store_true", help="print JSON")
    s = csub.add_parser("set", parents=[common], help="change one setting")
    s.add_argument("key")
    s.add_argument("value")
    s.add_argument("--json", action="store_true", help="print JSON")

    import importlib

    for module_name in EXTENSIONS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.add_parser(sub)
    return parser


def _seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _fast_status_args(argv: list[str]) -> argparse.Namespace | None:
    """``status [JOB] [--json] [--all] [--cwd DIR]`` parsed without argparse.

    ``status --json`` is what editors and agents poll; building the full parser (and
    importing the subcommand modules) would triple its start-up cost. Anything else —
    ``--help``, unknown flags, a bad value — returns None and goes through argparse,
    which owns the error messages.
    """
    from types import SimpleNamespace

    ns = SimpleNamespace(job=None, json=False, all=False, cwd=None, handler=cmd_status)
    if argv[:1] == ["--cwd"] and len(argv) >= 3:
        ns.cwd, argv = argv[1], argv[2:]
    if argv[:1] != ["status"]:
        return None
    rest = argv[1:]
    i = 0
    while i < len(rest):
        token = rest[i]
        if token == "--json":
            ns.json = True
        elif token == "--all":
            ns.all = True
        elif token == "--cwd" and i + 1 < len(rest):
            ns.cwd = rest[i + 1]
            i += 1
        elif token.startswith("--cwd="):
            ns.cwd = token[len("--cwd=") :]
        elif not token.startswith("-") and ns.job is None and token:
            ns.job = token
        else:
            return None
        i += 1
    return ns  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)
    try:
        if args_list[:1] == ["hook"]:
            from jobgate import hooks_cli  # type: ignore[attr-defined]

            return int(hooks_cli.main(args_list[1:]))
        fast = _fast_status_args(args_list)
        if fast is not None:
            return int(cmd_status(fast))
        parser = build_parser()
        args = parser.parse_args(args_list)
        return int(args.handler(args))
    except JobgateError as exc:
        sys.stderr.write(f"jobgate: error: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("jobgate: interrupted\n")
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the final flush
        except OSError:
            pass
        return EXIT_FAILED
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        sys.stderr.write(f"jobgate: error: {exc.strerror or exc}{where}\n")
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
