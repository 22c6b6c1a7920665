"""Reading and rewriting the Codex companion plugin's JSON files without disturbing them.

The plugin (``codex-companion``) writes ``state.json`` and ``jobs/<id>.json`` with
``JSON.stringify(value, null, 2)`` plus a final newline, and it takes **no lock**. This
module gives :mod:`jobgate.codex.doctor` the few careful file operations it needs:

* :func:`parse_json` -- strict parsing that keeps key order and refuses duplicate keys
  (rewriting such a file would silently drop one of them);
* :func:`detect_style` / :func:`dump_json` -- write a document back with the indent and
  final newline the file already had, non-ASCII text left as is (as ``JSON.stringify``
  does), so that only the fields that were changed differ;
* :func:`replace_if_unchanged` -- atomic replace (temp file in the same folder, fsync,
  ``os.replace``, original file mode kept) that first re-reads the target and gives up if
  its bytes are no longer the ones the change was computed from;
* :func:`write_backup` and :func:`append_log_line`.

Every file this module creates (replacement, backup, new log) gets the owner of the file
it stands for (a log: of its folder), so ``--fix`` run as root does not leave the user's
files owned by root (see :func:`give_owner`).

Platform notes: ``os.replace`` is atomic on POSIX and on Windows (same volume). Folder
fsync after the replace is done where the OS allows opening a directory (not Windows).
Symlinks are never followed for files this module writes (``O_NOFOLLOW`` where the
platform has it). Without a lock held by the plugin, a write by the plugin in the instant
between the final re-read and ``os.replace`` cannot be detected; the window is a few
microseconds, and the caller re-checks nothing after it.

Floats are written back with Python's ``repr`` (``1e-07``), which can differ in spelling
(not in value) from JavaScript's (``1e-7``); the plugin's files hold none in practice.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jobgate.state import replacing

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


class FileProblem(Exception):
    """A plugin file that cannot be read or understood; ``reason`` is one short sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------- times


def iso_now(now: float | None = None) -> str:
    """``2026-11-24T18:08:48.123Z``: UTC with milliseconds, as the plugin writes times."""
    when = datetime.now(timezone.utc) if now is None else datetime.fromtimestamp(now, timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: object) -> float | None:
    """Unix time of an ISO-8601 string, or None when it is not one.

    Accepts ``Z`` or ``±HH:MM`` offsets, with or without a fraction of a second (any
    number of digits). A time without an offset is taken as UTC, as the plugin only
    writes UTC.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) < 10:
        return None
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    # fromisoformat() before Python 3.11 accepts only 3 or 6 fraction digits.
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        digits = text[dot + 1 : end]
        if not digits:
            return None
        text = text[: dot + 1] + (digits + "000000")[:6] + text[end:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def stamp_for_filename(now: float | None = None) -> str:
    """``20261124T180848.123Z``: a sortable time without characters Windows forbids."""
    when = datetime.now(timezone.utc) if now is None else datetime.fromtimestamp(now, timezone.utc)
    return when.strftime("%Y%m%dT%H%M%S.") + f"{when.microsecond // 1000:03d}Z"


# ----------------------------------------------------------------------------- JSON


@dataclass(frozen=True)
class JsonStyle:
    """How a JSON file is laid out: ``indent`` (None: compact) and a final newline."""

    indent: str | None = "  "
    final_newline: bool = True


def detect_style(text: str) -> JsonStyle:
    """The layout of ``text``: the indent of its first indented line, and its final newline.

    A file on one line is compact (``JSON.stringify(value)``). Anything unusual falls
    back to the plugin's own style (2 spaces).
    """
    final_newline = text.endswith("\n")
    body = text.strip()
    if "\n" not in body:
        return JsonStyle(indent=None, final_newline=final_newline)
    for line in body.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and len(stripped) < len(line):
            prefix = line[: len(line) - len(stripped)]
            if prefix.strip(" ") == "" or prefix.strip("\t") == "":
                return JsonStyle(indent=prefix, final_newline=final_newline)
            break
    return JsonStyle(indent="  ", final_newline=final_newline)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FileProblem(f"duplicate key {json.dumps(key, ensure_ascii=False)} in one object")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise FileProblem(f"{name} is not valid JSON")


def parse_json(data: bytes) -> tuple[Any, JsonStyle]:
    """Parse a plugin file's bytes; raise :class:`FileProblem` saying what is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"not UTF-8 text (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise FileProblem("starts with a byte-order mark, which the plugin never writes")
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise FileProblem(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise FileProblem("invalid JSON: nested too deeply") from None
    return doc, detect_style(text)


def dump_json(doc: Any, style: JsonStyle) -> bytes:
    """Serialise ``doc`` in ``style``; same separators and escaping as ``JSON.stringify``."""
    try:
        return _dumps(doc, style, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates: JSON.stringify writes them as \\uXXXX escapes; so do we.
        return _dumps(doc, style, ensure_ascii=True).encode("ascii")


def _dumps(doc: Any, style: JsonStyle, *, ensure_ascii: bool) -> str:
    if style.indent is None:
        text = json.dumps(doc, ensure_ascii=ensure_ascii, separators=(",", ":"), allow_nan=False)
    else:
        text = json.dumps(doc, ensure_ascii=ensure_ascii, indent=style.indent, allow_nan=False)
    return text + "\n" if style.final_newline else text


# ------------------------------------------------------------------------ file I/O


def read_bytes(path: Path) -> bytes:
    """The bytes of a regular file, refusing symlinks; :class:`FileProblem` otherwise."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise FileProblem("does not exist") from None
    except OSError as exc:
        raise FileProblem(f"cannot be examined: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise FileProblem("is a symbolic link; not followed")
    if not stat.S_ISREG(st.st_mode):
        raise FileProblem("is not a regular file")
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _BINARY)
    except OSError as exc:
        raise FileProblem(f"cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse
        pass
    finally:
        os.close(fd)


def _owner_of(st: os.stat_result) -> tuple[int, int]:
    return st.st_uid, st.st_gid


def give_owner(fd: int, owner: tuple[int, int] | None) -> None:
    """Give the open file ``fd`` the ``(uid, gid)`` ``owner`` when it differs.

    A file this module creates must belong to whoever owned the file it stands for:
    ``--fix`` run as root (sudo) would otherwise leave the user's ``state.json`` owned by
    root, mode 0600, which the plugin (running as the user) cannot read; it then falls
    back to defaults and drops every job and setting on its next save. A user who is not
    root cannot give files away (EPERM): that is ignored, the file stays theirs. As root,
    a failure is raised, so the caller writes nothing rather than a file the user cannot
    read.
    """
    if owner is None or not hasattr(os, "fchown"):  # pragma: no cover - Windows
        return
    if _owner_of(os.fstat(fd)) == owner:
        return
    try:
        os.fchown(fd, *owner)
    except PermissionError:
        if os.geteuid() == 0:
            raise


def _write_new_file(
    folder: Path, prefix: str, data: bytes, mode: int, owner: tuple[int, int] | None
) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            give_owner(fh.fileno(), owner)  # before chmod: chown may clear mode bits
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(name, mode)
    except BaseException:
        _unlink_quietly(Path(name))
        raise
    return Path(name)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def write_backup(path: Path, data: bytes, stamp: str) -> Path:
    """Keep ``data`` (the file's current bytes) as ``<path>.bak-<stamp>`` beside it.

    The backup gets the original file's mode and owner (see :func:`give_owner`). An
    existing backup is never overwritten: a counter is added to the name instead.
    """
    st = os.lstat(path)
    tmp = _write_new_file(
        path.parent, f".{path.name}.bak-", data, stat.S_IMODE(st.st_mode), _owner_of(st)
    )
    base = f"{path.name}.bak-{stamp}"
    for n in range(1000):
        target = path.parent / (base if n == 0 else f"{base}-{n}")
        try:
            os.link(tmp, target)  # fails if target exists: never clobber a backup
        except FileExistsError:
            continue
        except OSError:
            if target.exists():
                continue
            os.replace(tmp, target)  # no hard links here (some file systems)
            _fsync_dir(path.parent)
            return target
        _unlink_quietly(tmp)
        _fsync_dir(path.parent)
        return target
    _unlink_quietly(tmp)
    raise OSError(f"too many backups named {base}* in {path.parent}")


def replace_if_unchanged(path: Path, expected: bytes, new: bytes) -> bool:
    """Atomically replace ``path`` with ``new`` if it still holds exactly ``expected``.

    The new content goes to a temp file in the same folder (flushed and fsynced, with
    the original file's mode and owner); the target is then re-read, and only if its
    bytes are still ``expected`` is the temp file moved over it with ``os.replace``.
    Returns False (and leaves everything as it was) when the file changed meanwhile.
    """
    st = os.lstat(path)
    tmp = _write_new_file(
        path.parent, f".{path.name}.tmp-", new, stat.S_IMODE(st.st_mode), _owner_of(st)
    )
    try:
        try:
            current = read_bytes(path)
        except FileProblem:
            return False
        if current != expected:
            return False
        replacing.replace(tmp, path)  # retried while Windows says another process holds it
    finally:
        if tmp.exists():
            _unlink_quietly(tmp)
    _fsync_dir(path.parent)
    return True


def append_log_line(path: Path, message: str, now: float | None = None) -> None:
    """Append ``[ISO-8601 time] message`` to a job log, as the plugin does.

    The log is created (mode 0600, owned like its folder) when missing; a symlink is
    refused (``OSError``).
    """
    line = f"[{iso_now(now)}] {' '.join(message.split())}\n"
    flags = os.O_WRONLY | os.O_APPEND | _NOFOLLOW | _BINARY
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = os.open(path, flags)
    else:
        try:
            give_owner(fd, _owner_of(os.stat(path.parent)))
        except BaseException:
            os.close(fd)
            _unlink_quietly(path)
            raise
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
