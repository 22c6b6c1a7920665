"""``jobgate config get|set|unset|reset``: validated settings, and the way out of a damaged
``config.json``."""

from __future__ import annotations

import os

from jobgate.cli.commands import emit, open_store
from jobgate.state.errors import EXIT_OK, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


# -- config --------------------------------------------------------------------------
def cmd_config(args: argparse.Namespace) -> int:
    from jobgate.cli import render
    from jobgate.state import config, config_file

    if args.action in ("unset", "reset"):
        return _config_way_out(args)
    if args.action == "set":
        value = config.validate(args.key, args.value)  # before anything is created
    _root, store = open_store(args, create=args.action == "set")
    if args.action == "set":
        with store.lock():
            stored = config_file.read_or_hint(store)
            stored[args.key] = value
            store.write_config(stored)
        emit(render.to_json({args.key: value}) if args.json else f"{args.key} = {_show(value)}")
        return EXIT_OK
    stored = config_file.read_or_hint(store) if os.path.isdir(store.state_dir) else {}
    if args.key:
        value = config.get(stored, args.key)
        emit(render.to_json({args.key: value}) if args.json else _show(value))
        return EXIT_OK
    eff = config.effective(stored)
    if args.json:
        emit(render.to_json(eff))
        return EXIT_OK
    bad = config.problems(stored)
    flat = config.flat(eff)
    for key, value in flat:
        emit(_setting_line(key, value, bad))
    for key in bad:  # stored keys with no line above: unknown ones, dropped agents
        if key not in {k for k, _v in flat}:
            emit(f"# config.json: {bad[key]}")
    return EXIT_OK


def _setting_line(key: str, value: object, bad: dict[str, str]) -> str:
    """``key = value``, and where config.json holds a value that cannot be used, a
    ``#`` note saying so (the effective value is the default)."""
    line = f"{key} = {_show(value)}"
    return f"{line}  # config.json: {bad[key]}" if key in bad else line


def _config_way_out(args: argparse.Namespace) -> int:
    """``config unset KEY`` and ``config reset``: the ways out of a damaged config.json."""
    from jobgate.cli import render
    from jobgate.state import config, config_file

    _root, store = open_store(args)
    if args.action == "unset":
        removed = config_file.unset(store, args.key)
        try:
            now: object = config.get({}, args.key)
        except JobgateError:
            now = None  # a removed custom agent, or a key jobgate does not know
        if args.json:
            emit(render.to_json({"key": args.key, "removed": removed, "value": now}))
        elif removed:
            emit(
                f"unset {args.key}"
                + (f"; now {_show(now)} (the default)" if now is not None else "")
            )
        else:
            emit(
                f"{args.key} was not set"
                + (f"; it is {_show(now)} (the default)" if now is not None else "")
            )
        return EXIT_OK
    moved = config_file.reset(store)
    if args.json:
        emit(render.to_json({"movedTo": moved}))
    elif moved:
        emit(f"moved config.json aside to {moved}; the settings are the defaults now")
    else:
        emit("no config.json: the settings are already the defaults")
    return EXIT_OK


def _show(value: object) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)
