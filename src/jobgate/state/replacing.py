"""``os.replace`` that rides out a file another process holds open on Windows.

POSIX renames over an open file freely. Windows refuses while another process has the
target (or the temp file) open without ``FILE_SHARE_DELETE`` — a reader of the plugin's
``state.json``, an editor, a virus scanner — with ``ERROR_ACCESS_DENIED`` (5),
``ERROR_SHARING_VIOLATION`` (32) or ``ERROR_LOCK_VIOLATION`` (33). Such a holder
usually lets go within milliseconds, so :func:`replace` tries again a few times over
about a second (:data:`RETRY_DELAYS`); if the file is still held it raises
:class:`ReplaceBusy`, naming the file, and the target is left as it was (the caller
removes its temp file: nothing changed). Any other error is raised at once.

Only an error carrying one of those Windows codes (``OSError.winerror``) is retried, so
on POSIX this is ``os.replace`` and nothing more. Tests inject the errors.
"""

from __future__ import annotations

import errno
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: seconds slept before each further attempt (about 1 s in all, 8 attempts)
RETRY_DELAYS = (0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.4)

#: Windows error codes of a file that another process has open or locked
BUSY_WINERRORS = frozenset({5, 32, 33})


class ReplaceBusy(PermissionError):
    """The target stayed held by another process through every attempt."""

    def __init__(self, path: str, attempts: int, waited: float) -> None:
        super().__init__(
            errno.EACCES,
            f"another process has the file open (tried {attempts} times over "
            f"{waited:.1f} s); nothing was changed",
            path,
        )


def is_busy(exc: OSError) -> bool:
    """Whether ``exc`` is Windows saying another process holds the file."""
    return getattr(exc, "winerror", None) in BUSY_WINERRORS


def replace(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    rename: Callable[[str | os.PathLike[str], str | os.PathLike[str]], None] | None = None,
    sleep: Callable[[float], None] | None = None,
    delays: Sequence[float] = RETRY_DELAYS,
) -> None:
    """``os.replace(src, dst)``, retried while Windows reports the file busy
    (``rename`` and ``sleep`` default to ``os.replace`` and ``time.sleep``)."""
    rename = rename or os.replace
    sleep = sleep or time.sleep
    waited = 0.0
    for attempt in range(len(delays) + 1):
        try:
            rename(src, dst)
            return
        except OSError as exc:
            if not is_busy(exc):
                raise
            if attempt == len(delays):
                raise ReplaceBusy(os.fspath(dst), attempt + 1, waited) from exc
        sleep(delays[attempt])
        waited += delays[attempt]
