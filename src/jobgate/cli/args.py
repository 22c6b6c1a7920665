"""What the subcommand modules share in their arguments: a subcommand with ``--cwd``, a
help line and an example, a number of seconds, a job kind, a whole number."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def subcommand(subparsers: Any, name: str, help_: str, epilog: str) -> argparse.ArgumentParser:
    """Register ``name`` with ``--cwd DIR``, ``help_`` as its help and description, and
    ``epilog`` (examples) printed as written."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cwd",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="workspace directory (default: the current directory)",
    )
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        parents=[common],
        help=help_,
        description=help_,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def seconds(text: str, low: float = 0.0, high: float | None = None) -> float:
    """``text`` as seconds from ``low`` (to ``high``), else an argparse type error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value != value or value < low or (high is not None and value > high):
        span = f">= {low:g}" if high is None else f"from {low:g} to {high:g}"
        raise argparse.ArgumentTypeError(f"expected seconds {span}, got {text!r}")
    return value


def kind(text: str) -> str:
    """A job kind as given, or refused: it is the id's prefix and is never rewritten."""
    from jobgate.state.model import kind_problem

    problem = kind_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


class Unused:
    """Stands in for the parser of a subcommand nobody asked for: takes every call and
    builds nothing (building all of them, ~25 parsers and ~150 arguments, was ~60 ms of
    every command)."""

    def __getattr__(self, name: str) -> Callable[..., Unused]:
        return self._any

    def _any(self, *args: object, **kwargs: object) -> Unused:
        return self


def command_word(argv: list[str], known: set[str]) -> str | None:
    """The subcommand ``argv`` asks for, when it is a ``known`` one (skipping ``--cwd
    DIR``); None for anything else (``--help``, ``--version``, a typo), which gets the
    whole parser and its full messages."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--cwd":
            i += 2
        elif word.startswith("--cwd="):
            i += 1
        else:
            return word if word in known else None
    return None
