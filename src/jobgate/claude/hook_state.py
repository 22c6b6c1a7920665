"""``hooks-state.json``: what the hooks remember between runs, per session — the Stop
hook's blocks in a row (``waitForJobs`` and the review gate).

The file lives in the state dir. It is read lock-free; an entry is written (under the
store lock, on a fresh read) only when it changes, and an entry left with nothing to
remember is dropped. A missing or damaged file reads as empty: it only holds counters.
Its format and the rules for its entries are :mod:`jobgate.claude.hooks`'
(:func:`~jobgate.claude.hooks.entry_of`, :func:`~jobgate.claude.hooks.prune_state`).

Which finished jobs were announced is not kept here but in each job record's
``announcedAt`` (:mod:`jobgate.claude.announcements`).
"""

from __future__ import annotations

import os

from jobgate.claude import hooks
from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from jobgate.state.store import Store

STATE_FILE = "hooks-state.json"

#: the lock wait for writes a hook must make (counters, announcements); on timeout the
#: hook fails open
STATE_LOCK_TIMEOUT = 1.0


def state_path(store: Store) -> str:
    return os.path.join(store.state_dir, STATE_FILE)


def read_state(store: Store) -> dict[str, Any]:
    """The hook state; a missing or damaged file reads as empty (it only holds counters)."""
    from jobgate.state.store import CorruptFile, read_json

    try:
        data = read_json(state_path(store))
    except CorruptFile:
        return {}
    return data if isinstance(data, dict) else {}


def update_entry(
    store: Store,
    key: str,
    decide: Callable[[dict[str, Any]], tuple[Any, dict[str, Any]]],
) -> Any:
    """Run ``decide(entry) -> (result, new entry)`` for the session's hook-state entry.

    Tried lock-free first; only when the entry would change is it redone under the
    lock on a fresh read and written. Returns ``result``.
    """
    entry = hooks.entry_of(read_state(store), key)
    result, new = decide(entry)
    if new == entry:
        return result
    import time

    from jobgate.state.store import write_json

    with store.lock(STATE_LOCK_TIMEOUT):
        now = time.time()
        state = hooks.prune_state(read_state(store), now)
        entry = hooks.entry_of(state, key)
        result, new = decide(entry)
        if new != entry:
            if any(k != "updatedAt" for k in new):
                new["updatedAt"] = model.now_iso(now)
                state["sessions"][key] = new
            else:
                state["sessions"].pop(key, None)  # nothing left to remember
            write_json(state_path(store), state)
    return result
