"""The hot subcommands' arguments parsed without argparse (building the parser costs more
than the command's own work); anything outside the forms parsed here goes to argparse."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


def fast_status_args(argv: list[str]) -> argparse.Namespace | None:
    """``status [JOB] [--json] [--all] [--cwd DIR]`` parsed without argparse.

    ``status --json`` is what editors and agents poll; building the full parser (and
    importing the subcommand modules) would triple its start-up cost. Anything else —
    ``--help``, unknown flags, a bad value — returns None and goes through argparse,
    which owns the error messages.
    """
    from types import SimpleNamespace

    from jobgate.cli.commands import cmd_status

    ns = SimpleNamespace(job=None, json=False, all=False, cwd=None, handler=cmd_status)
    if argv[:1] == ["--cwd"] and len(argv) >= 3 and not argv[1].startswith("-"):
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
        elif token == "--cwd" and i + 1 < len(rest) and not rest[i + 1].startswith("-"):
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


#: what argparse gives ``run``'s options when they are not given (a test holds this to
#: the real parser's defaults)
RUN_DEFAULTS: dict[str, object] = {
    "after": None,
    "after_any": False,
    "background": False,
    "cwd": None,
    "group": None,
    "json": False,
    "kind": "run",
    "name": None,
    "queue": False,
    "retries": None,
    "session": None,
    "stall": None,
    "subcommand": "run",
    "timeout": None,
    "worktree": False,
}
#: ``run``'s options parsed here: the flags, and those that take a value
_RUN_FLAGS = {"--background": "background", "-b": "background", "--json": "json"}
_RUN_VALUES = {"--name": "name", "--session": "session", "--cwd": "cwd"}


def fast_run_args(argv: list[str]) -> argparse.Namespace | None:
    """``[--cwd DIR] run [--background|-b] [--json] [--name N] [--session ID] [--cwd DIR]
    -- COMMAND...`` parsed without argparse, into the namespace argparse would make.

    How agents start background work, many at once: argparse's import, its parser and
    the modules it pulls in (gettext, locale, shutil) were ~12 ms of CPU of each such
    call, and 32 concurrent launchers on 2 cores are CPU-bound (issue 15). Any other
    form — another option, an abbreviation, ``--opt=`` for a flag, a value that starts
    with ``-``, no command after ``--`` — returns None and goes through argparse.
    """
    from types import SimpleNamespace

    values = dict(RUN_DEFAULTS)
    i = 0
    while argv[i : i + 1] != ["run"]:  # the top level's own --cwd, before the subcommand
        top = _value(argv, i, "--cwd")
        if top is None:
            return None
        values["cwd"], i = top
    i += 1
    while i < len(argv) and argv[i] != "--":
        token = argv[i]
        if token in _RUN_FLAGS:
            values[_RUN_FLAGS[token]] = True
            i += 1
            continue
        option = token.partition("=")[0]
        if option not in _RUN_VALUES:
            return None
        got = _value(argv, i, option)
        if got is None:
            return None
        values[_RUN_VALUES[option]], i = got
    if len(argv) - i < 2:
        return None  # no "--", or nothing after it: argparse (and cmd_run) say what is wrong
    from jobgate.cli.commands import cmd_run

    ns = SimpleNamespace(**values, command=argv[i:], handler=cmd_run)
    return ns  # type: ignore[return-value]


def _value(argv: list[str], i: int, option: str) -> tuple[str, int] | None:
    """``option``'s value at ``argv[i]`` (``OPT VALUE`` or ``OPT=VALUE``) and the index
    after it; None unless it is that option with a value argparse would take as is."""
    token = argv[i] if i < len(argv) else ""
    if token == option and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
        return argv[i + 1], i + 2
    if token.startswith(option + "="):
        return token[len(option) + 1 :], i + 1
    return None
