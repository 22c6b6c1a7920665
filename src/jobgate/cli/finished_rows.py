"""``status --all``'s finished rows, kept rendered beside the index, so that showing
10,000 of them costs a read, not 10,000 parses and formats.

::

    finished.rows   {"version": 1, "render": R, "dev": D, "ino": I, "bytes": B, "crc": C,
                     "rows": N, "width": W}
                    then N lines, newest first:  createdAt TAB id TAB lineCRC TAB text
                    (text: the row as shown, ids padded to W; RS, then the error line)

A cache, never the record: its header is the cursor of the commit whose stretch of
``finished.jsonl`` it renders (log file, bytes, CRC-32). When the index's cursor is that
one, the rows are read as they are. When the log grew (the same file, and the CRC of the
bytes it gained carries the cached CRC on to the cursor's), only those lines are parsed
and their rows put in place. When the log was rewritten (retention, a removal), the
rewrite's note (:mod:`jobgate.state.log_rewrite`) says which ids it dropped and where
the lines these rows have not seen begin: those rows go, only those lines are parsed.
Without a note that fits, a row is reused for each line whose id and CRC-32
(``lineCRC``) it was rendered from, the rest parsed.
Another jobgate version ``R``, or a torn or missing cache, renders the whole log once.
The file is replaced without an fsync: a lost or torn cache only costs the next call
that render.

Used only where the log is byte for byte what jobgate wrote (the CRC of the last commit
holds) and every row is the same at any time: :func:`rows` says None anywhere else (a
finished job without a readable end time, whose elapsed time runs on to now; text that
does not fit the layout), and ``status`` renders the parsed jobs instead.
"""

from __future__ import annotations

import os

from jobgate.cli import render
from jobgate.state import index, jsonload, model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from jobgate.state.files import Snapshot


NAME = "finished.rows"
#: the layout of a cached row; raise it with any change to how a finished row shows
FORMAT = 1
#: the line CRC of a row shown but not cached (it matches no line)
LIVE = b"-1"
#: bytes that must not occur in a cached field
_SEPARATORS = (b"\t", b"\n", b"\r", render.ROW_BREAK)


class Unfit(Exception):
    """A row that cannot be cached: render the jobs themselves."""


def rows(snap: Snapshot, extra: Sequence[model.Job] = ()) -> render.Rows | None:
    """Every finished job's row as of ``snap`` (the log up to its cursor, and the lines a
    killed writer left past it) and those of ``extra`` (jobs this call found finished but
    could not write down), newest first; None when they cannot be shown from the cache."""
    if snap.legacy or snap.rescanned:
        return None
    path = os.path.join(snap.store.state_dir, NAME)
    cursor = snap.cursor
    try:
        cached = _read(path)
        found = _current(snap, cached)
        if found is None:
            return None
        lines, width, changed = found
        if changed:
            _write(path, cursor, lines, width)
        later = [*snap.recovered.values(), *extra]
        if later:  # shown, not cached: a later line for an id replaces its row
            lines, width = _place(lines, width, [_line(job, LIVE) for job in later])
    except Unfit:
        return None
    return render.Rows(lines, width)


def _current(
    snap: Snapshot, cached: tuple[Cached, list[bytes]] | None
) -> tuple[list[bytes], int, bool] | None:
    """``(lines, width, changed)`` for the commit ``snap`` names; None when the log's bytes
    are not the commit's."""
    cursor = snap.cursor
    lines: list[bytes] = []
    width = 0
    if cached is not None and cached[0].render == _render_key():
        head, lines = cached
        width, changed = head.width, False
        at = head.dev, head.ino, head.bytes, head.crc
        if not cursor.names(head.dev, head.ino):
            carried = _carry(snap, at, lines, width)
            if carried is not None:  # the log was rewritten from the one rendered
                lines, width, at = carried
                changed = True
        dev, ino, size, crc = at
        if cursor.names(dev, ino):
            if size == cursor.bytes and crc == cursor.crc:
                return lines, width, changed
            if size < cursor.bytes:
                tail = index.read_range(snap.store.finished_path, size, cursor.bytes)
                if index.crc(tail, crc) == cursor.crc:  # the log grew, and only grew
                    grown, grown_width = _merge(lines, width, tail)
                    if len(grown) == cursor.count:
                        return grown, grown_width, True
    data = index.read_range(snap.store.finished_path, 0, cursor.bytes) if cursor.bytes else b""
    if index.crc(data) != cursor.crc:
        return None
    return (*_rebuild(lines, width, data), True)


def _carry(
    snap: Snapshot, at: tuple[int, int, int, int], lines: list[bytes], width: int
) -> tuple[list[bytes], int, tuple[int, int, int, int]] | None:
    """The rows ``lines`` (of the log at cursor ``at``) carried on to the log a rewrite
    made of it, and that log's cursor, by the rewrite's note: the rows of the ids it
    dropped removed, those of the lines ``at`` had not seen (kept jobs logged since,
    and the lines the rewrite added, their CRC checked) put in place. None where the
    note is not about this log and the one the index names."""
    from jobgate.state import log_rewrite

    note = log_rewrite.read_note(snap.store.state_dir)
    start = note.start(at) if note is not None else None
    if note is None or start is None:
        return None
    after, cursor = note.after, snap.cursor
    if not cursor.names(after.dev, after.ino) or not start <= note.kept <= after.bytes:
        return None
    if after.bytes > cursor.bytes:
        return None
    added = index.read_range(snap.store.finished_path, start, after.bytes)
    if index.crc(memoryview(added)[note.kept - start :], note.kept_crc) != after.crc:
        return None
    if note.dropped:
        lines, width = _without(lines, width, {x.encode("utf-8") for x in note.dropped})
    lines, width = _merge(lines, width, added)
    if len(lines) != after.count:
        return None
    return lines, width, (after.dev, after.ino, after.bytes, after.crc)


def _without(lines: list[bytes], width: int, ids: set[bytes]) -> tuple[list[bytes], int]:
    """``lines`` less the rows of ``ids``; the id width of the rest."""
    kept = [line for line in lines if line.split(b"\t", 2)[1] not in ids]
    if len(kept) == len(lines):
        return lines, width
    if not kept:
        return kept, 0
    if any(min(len(x), render.NAME_MAX) == width for x in ids):
        # the longest id may be gone: the widest left (most often the first row has it)
        wanted = 0
        for line in kept:
            wanted = max(wanted, _id_width(line))
            if wanted == width:
                break
        if wanted != width:
            return [_repad(line, width, wanted) for line in kept], wanted
    return kept, width


def _merge(lines: list[bytes], width: int, tail: bytes) -> tuple[list[bytes], int]:
    """``lines`` with the row of each id's last line of the log lines ``tail`` in its
    place (newest first), replacing the row its id had where that row has the same
    sort key (a job's ``createdAt`` never changes: the caller checks the count of rows
    against the cursor's count of jobs); the new id width."""
    last = index.last_lines(tail).splitlines()
    rows = [_line(jsonload.loads(x), b"%d" % index.crc(x)) for x in last]
    return _place(lines, width, rows, replacing=False, by_key=True)


def _rebuild(lines: list[bytes], width: int, data: bytes) -> tuple[list[bytes], int]:
    """The rows of another log (rewritten by retention or a removal), its lines ``data``
    (which passed the commit's CRC): a row of ``lines`` (ids ``width`` wide) is kept for
    the very bytes it was rendered from (its id and line CRC); only the other lines are
    parsed. Each id's last line counts."""
    where: dict[bytes, tuple[int, bytes]] = {}
    for n, line in enumerate(lines):
        _created, job_id, line_crc, _text = line.split(b"\t", 3)
        where[job_id] = n, line_crc
    keep = bytearray(len(lines))
    new: dict[bytes, tuple[bytes, bytes]] = {}  # id: its line and that line's CRC
    start = len(index.ID_PREFIX)
    from zlib import crc32  # index.crc, bound once: this loop runs per line

    get = where.get
    for log_line in data.splitlines():
        job_id = log_line[start : log_line.find(b'"', start)]
        line_crc = b"%d" % crc32(log_line)
        hit = get(job_id)
        if hit is not None and hit[1] == line_crc:
            keep[hit[0]] = 1
            new.pop(job_id, None)
        else:
            if hit is not None:
                keep[hit[0]] = 0
            new[job_id] = log_line, line_crc
    from itertools import compress

    kept = list(compress(lines, keep))  # in their order: newest first
    ids = (job_id for job_id, (n, _crc) in where.items() if keep[n])
    kept_width = min(max(map(len, ids), default=0), render.NAME_MAX)
    if kept_width != width:  # the longest id gone (or none kept)
        kept = [_repad(line, width, kept_width) for line in kept]
    rows = [_line(jsonload.loads(line), line_crc) for line, line_crc in new.values()]
    return _place(kept, kept_width, rows, replacing=False)


def _place(
    lines: list[bytes],
    width: int,
    new: list[bytes],
    *,
    replacing: bool = True,
    by_key: bool = False,
) -> tuple[list[bytes], int]:
    """``lines`` (ids ``width`` wide) with the rows ``new`` put in their places, replacing
    the rows of their ids (found by a search of every row; unless not ``replacing``:
    none of them has one, or ``by_key``: the row in its place with the same sort key);
    the new id width (that of the longest id among them all)."""
    if not new:
        return lines, width
    if replacing and _ids_in(lines, ids := {line.split(b"\t", 2)[1] for line in new}):
        lines = [line for line in lines if line.split(b"\t", 2)[1] not in ids]
    else:
        lines = list(lines)
    if not lines:
        width = 0
    widths = [_id_width(line) for line in new]
    wanted = max(width, *widths)
    if wanted > width:
        lines = [_repad(line, width, wanted) for line in lines]
    rows = [_repad(row, w, wanted) for row, w in zip(new, widths, strict=True)]
    if not lines:  # rows of many ids at once: one sort, not an insert each
        return sorted(rows, key=_sort_key, reverse=True), wanted
    for row in rows:
        _insert(lines, row, by_key)
    return lines, wanted


def _ids_in(lines: list[bytes], ids: set[bytes]) -> bool:
    """Whether any of ``ids`` has a row in ``lines`` (one search of their bytes)."""
    body = b"\n".join(lines)
    return any(b"\t" + job_id + b"\t" in body for job_id in ids)


def _id_width(line: bytes) -> int:
    """Columns of a cache line's id as shown (ids are ASCII; longer ones are cut)."""
    return min(len(line.split(b"\t", 2)[1]), render.NAME_MAX)


def _line(job: model.Job, line_crc: bytes) -> bytes:
    """The cache line of a finished job, its id column as wide as its id; :class:`Unfit`
    if its row is not the same at any time or a field holds a separator."""
    if not _static(job):
        raise Unfit
    shown, rest, error = render.finished_row(job)
    text = f"  {shown}  {rest}"
    if error:
        text += render.ROW_BREAK.decode() + error
    try:
        created = str(job.get("createdAt") or "").encode("utf-8")
        job_id = str(job["id"]).encode("utf-8")
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        raise Unfit from None
    if any(s in created or s in job_id for s in _SEPARATORS) or b"\t" in encoded:
        raise Unfit
    if len(shown) != min(len(job_id), render.NAME_MAX):
        raise Unfit  # not an id as jobgate makes them
    return b"%s\t%s\t%s\t%s" % (created, job_id, line_crc, encoded)


def _static(job: model.Job) -> bool:
    """Whether the row of finished ``job`` is the same at any time (its elapsed time
    does not run on to now)."""
    if model.parse_iso(job.get("completedAt")) is not None:
        return True
    return model.parse_iso(job.get("startedAt")) is None and (
        model.parse_iso(job.get("createdAt")) is None
    )


def _sort_key(line: bytes) -> tuple[bytes, bytes]:
    """``model.sort_newest_first``'s key (UTF-8 orders as the code points do)."""
    created, job_id, _rest = line.split(b"\t", 2)
    return created, job_id


def _insert(lines: list[bytes], line: bytes, replace: bool = False) -> None:
    """Put ``line`` into ``lines`` (newest first), after those with a greater key (in
    place of the one with the same key, if ``replace``)."""
    key = _sort_key(line)
    lo, hi = 0, len(lines)
    while lo < hi:
        mid = (lo + hi) // 2
        if _sort_key(lines[mid]) > key:
            lo = mid + 1
        else:
            hi = mid
    if replace and lo < len(lines) and _sort_key(lines[lo]) == key:
        lines[lo] = line
    else:
        lines.insert(lo, line)


def _repad(line: bytes, width: int, wanted: int) -> bytes:
    if width == wanted:
        return line
    created, job_id, line_crc, text = line.split(b"\t", 3)
    return b"\t".join((created, job_id, line_crc, render.pad_row(text, width, wanted)))


def _render_key() -> str:
    from jobgate import __version__

    return f"{__version__}:{FORMAT}"


class Cached:
    """What a cache's header says: which commit's rows it holds, and their id width."""

    __slots__ = ("bytes", "crc", "dev", "ino", "render", "width")

    def __init__(self, head: dict[str, Any]) -> None:
        self.render: str = head["render"]
        self.dev: int = head["dev"]
        self.ino: int = head["ino"]
        self.bytes: int = head["bytes"]
        self.crc: int = head["crc"]
        self.width: int = head["width"]


def _read(path: str) -> tuple[Cached, list[bytes]] | None:
    """The cache's header and its lines; None when it is missing,
    unreadable, torn, or not what :func:`_write` writes."""
    from jobgate.state.files import read_cache

    data = read_cache(path)
    if data is None:
        return None
    head_bytes, _, body = data.partition(b"\n")
    try:
        head = jsonload.loads(head_bytes)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(head, dict) or head.get("version") != 1:
        return None
    fields = ("dev", "ino", "bytes", "crc", "rows", "width")
    if not all(type(head.get(k)) is int for k in fields) or not body.endswith(b"\n"):
        return None
    lines = body[:-1].split(b"\n") if body != b"\n" else []
    if len(lines) != head["rows"] or any(line.count(b"\t") != 3 for line in lines):
        return None
    if not isinstance(head.get("render"), str):
        return None
    return Cached(head), lines


def _write(path: str, cursor: index.Cursor, lines: list[bytes], width: int) -> None:
    """Replace the cache (quietly skipped where the state dir is read-only or full)."""
    from jobgate.state.fileio import _unlink_quietly, atomic_write, json_text

    head = {"version": 1, "render": _render_key(), **cursor.as_dict()}
    head.pop("count")
    head.update(rows=len(lines), width=width)
    data = json_text(head, separators=(",", ":")).encode() + b"\n"
    data += b"".join(line + b"\n" for line in lines) if lines else b"\n"
    try:
        # the old cache unlinked first: ext4 flushes a file renamed over another
        # (measured: 1.4-1.9 ms for a 1.3 MB cache, 0.2 ms without); a reader in between
        # finds no cache and renders the log itself
        _unlink_quietly(path)
        atomic_write(path, data, durable=False)
    except OSError:
        pass
