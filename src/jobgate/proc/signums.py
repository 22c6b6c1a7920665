"""Signal handlers set by number, without :mod:`signal`'s enums.

``import signal`` imports :mod:`enum` and builds three enums from the module's
constants: ~3 ms of CPU in every background worker (and again in each held command
before its ``exec``), which needs only to ignore SIGHUP and give a few signals back
their default. The functions here use the C module underneath (``_signal``, where
CPython keeps the very same functions and constants) and fall back to :mod:`signal`
elsewhere.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

#: the signals Python ignores for itself; an ignored signal stays ignored across
#: ``exec``, so a started program gets these back at their default (as Popen's
#: ``restore_signals`` does): ``yes | head`` would never end otherwise
PYTHON_IGNORES = ("SIGPIPE", "SIGXFZ", "SIGXFSZ")

_module: Any = None


def _signals() -> Any:
    global _module
    if _module is None:
        try:
            _module = __import__("_signal")
        except ImportError:  # pragma: no cover - another Python
            import signal

            _module = signal
    return _module


def number(name: str) -> int | None:
    """The number of signal ``name`` (``"SIGHUP"``) on this system, None if it has none."""
    value = getattr(_signals(), name, None)
    return None if value is None else int(value)


def ignore(name: str) -> None:
    """Ignore signal ``name`` from now on (nothing if this system has no such signal)."""
    _set(name, "SIG_IGN")


def restore_default(names: Iterable[str]) -> None:
    """Give each signal in ``names`` its default action (those this system has)."""
    for name in names:
        _set(name, "SIG_DFL")


def _set(name: str, action: str) -> None:
    module = _signals()
    signum = getattr(module, name, None)
    if signum is not None:
        module.signal(signum, getattr(module, action))
