"""jobgate: background jobs whose recorded state never claims a dead process is alive.

The packages below, by concern (each one's docstring says what it owns and may import):
``state`` (the store), ``proc`` (processes, the platform seam), ``jobs`` (the lifecycle),
``agents``, ``claude`` (Claude Code's hooks), ``codex`` (``doctor codex``) and ``cli``.
"""

__version__ = "0.1.0"


def main() -> int:
    """The ``jobgate`` console script.

    ``jobgate hook EVENT`` goes straight to the hook shell: Claude Code runs the Stop hook
    at the end of every turn, and the CLI package (its parser, its subcommands) is not
    needed there. The shell fails open on any error by itself. Everything else is
    :func:`jobgate.cli.main.main`.
    """
    import sys

    if sys.argv[1:2] == ["hook"]:
        from jobgate.claude import shell
        from jobgate.state.fileio import tolerant_stdio

        tolerant_stdio()  # a name, command or folder that is not UTF-8 must not crash output
        return shell.main(sys.argv[2:])
    from jobgate.cli.main import main as cli_main

    return cli_main()
