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
