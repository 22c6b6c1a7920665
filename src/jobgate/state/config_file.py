"""Ways out of a damaged ``config.json``: remove one key (``jobgate config unset``), or
move the whole file aside and start from the defaults (``jobgate config reset``).

Both write under the state lock, like ``config set``. The parsing of settings stays in
:mod:`jobgate.state.config` (pure).
"""

from __future__ import annotations

import os

from jobgate.state import config
from jobgate.state.errors import JobgateError
from jobgate.state.fileio import aside_name, fsync_dir
from jobgate.state.store import Store

#: what an unreadable ``config.json`` error adds, so a user is never left without a way on
RESET_HINT = "move it aside and start from the defaults: jobgate config reset"


def read_or_hint(store: Store) -> dict[str, object]:
    """``store.read_config()``; an unreadable file's error also names the way out."""
    try:
        return store.read_config()
    except JobgateError as exc:
        raise JobgateError(f"{exc.message}; {RESET_HINT}", exc.exit_code) from None


def unset(store: Store, key: str) -> bool:
    """Remove ``key`` from ``config.json``; True if it was there. A key that is not
    stored must at least be one jobgate knows (else :class:`JobgateError`, exit 2); a
    stored one is removed whatever it is, so a hand-made mistake can always be undone."""
    if not os.path.isdir(store.state_dir):
        _check_known(key)
        return False
    with store.lock():
        stored = read_or_hint(store)
        if key not in stored:
            _check_known(key)
            return False
        del stored[key]
        store.write_config(stored)
    return True


def _check_known(key: str) -> None:
    if config.split_compound(key) is not None:
        config.validate(key, 1)  # checks the name
    elif key.startswith("agents."):
        config.validate(key, ["{prompt}"])  # checks the agent name
    elif key not in config.DEFAULTS:
        config.validate(key, None)  # raises "unknown config key ..."


def reset(store: Store) -> str | None:
    """Move ``config.json`` (damaged or not) aside to ``config.json.bak-<UTC stamp>`` so
    the settings are the defaults again; the backup's path, or None if there was no file."""
    if not os.path.lexists(store.config_path):
        return None
    with store.lock():
        if not os.path.lexists(store.config_path):
            return None
        target = aside_name(store.config_path, "bak")
        os.rename(store.config_path, target)
        fsync_dir(store.state_dir)
    return target
