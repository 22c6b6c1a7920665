"""A path's canonical case, for file systems that ignore case (macOS APFS and HFS+ by
default, Windows NTFS): ``~/Proj`` and ``~/proj`` are one folder there, and must be one
workspace with one state dir, not two.

``os.path.realpath`` keeps the case it was given on those systems, so the name of each
component is looked up in its folder's listing: an exact match stays, else the one
entry equal to it ignoring case (and Unicode normalization: APFS keeps names as typed,
NFC or NFD) takes its place. A component with no such entry, or more than one (a
case-sensitive volume that holds both), is kept as given; so is everything below a
folder that cannot be listed.

Pure but for ``listdir``, which tests inject; :mod:`jobgate.state.workspace` applies it
where the platform's file systems ignore case (:data:`FOLDS_CASE`).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

#: whether this platform's usual file systems ignore case
FOLDS_CASE = sys.platform in ("darwin", "win32")


def fold(name: str) -> str:
    """The key two names that a case-insensitive file system takes for one share."""
    import unicodedata

    return unicodedata.normalize("NFC", name).casefold()


def canonical_case(path: str, listdir: Callable[[str], list[str]] = os.listdir) -> str:
    """``path`` (absolute) with each component spelled as its folder lists it."""
    drive, rest = os.path.splitdrive(path)
    sep = os.sep
    parts = [p for p in rest.replace("/", sep).split(sep) if p]
    out = drive + sep if rest.startswith(("/", sep)) else drive
    for i, part in enumerate(parts):
        try:
            names = listdir(out or ".")
        except (OSError, ValueError):
            return os.path.join(out, *parts[i:])
        if part not in names:
            key = fold(part)
            same = [name for name in names if fold(name) == key]
            if len(same) == 1:
                part = same[0]
        out = os.path.join(out, part)
    return out
