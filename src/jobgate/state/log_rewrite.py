"""Rewriting the finished log whole (retention, a removal), and the note that rewrite
leaves for readers who keep something derived from the old log.

::

    finished.rewrite  {"version": 1,
                       "before": {"dev": D, "ino": I, "bytes": B, "crc": C},
                       "after": {"dev": D, "ino": I, "bytes": B, "count": N, "crc": C},
                       "kept": K, "keptCrc": C, "dropped": [ids]}

A rewrite keeps each id's last line of the old log in order, less the ``dropped`` ids,
and then logs this commit's finished jobs: the log's first ``kept`` bytes (CRC-32
``keptCrc``) are the kept jobs, the rest the new lines. A reader holding what it derived
from the log at cursor ``before`` (``status --all``'s rows: ``jobgate.cli.finished_rows``)
carries it on to ``after`` by dropping the ``dropped`` ids and reading only the new
lines, instead of one pass over every line.

The note is a hint, never the record: written without an fsync after the log and before
the commit, and used only where ``after`` is the index's cursor (the same file, no more
bytes) and the new lines' CRC carries ``keptCrc`` on to the cursor's. A rewrite that
started from no trusted cursor (a rebuilt, rescanned or migrated index) leaves none; a
stale or torn note matches nothing and costs only the reader's pass.
"""

from __future__ import annotations

import os

from jobgate.state import index, jsonload

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection

    from jobgate.state.files import StateDir
    from jobgate.state.model import Job

NAME = "finished.rewrite"
VERSION = 1
_BEFORE = ("dev", "ino", "bytes", "crc")


def rewrite(
    store: StateDir,
    jobs: list[Job],
    new: Collection[str],
    before: tuple[index.Cursor, set[str]] | None,
) -> index.Cursor:
    """Replace the log with the lines of ``jobs`` (oldest first, each id's last line in
    the order of the log it replaces; those whose ids are in ``new``, this commit's
    finished jobs, come last) and return its cursor. With ``before`` (the cursor of the
    log it replaces and the ids that log holds), leave the note that carries a reader
    from that log, or from one of its last :data:`MARKS` commits, to this one."""
    from jobgate.state.fileio import _unlink_quietly, atomic_write

    path = os.path.join(store.state_dir, NAME)
    split = len(jobs)
    while split and jobs[split - 1]["id"] in new:
        split -= 1
    kept_lines = [index.lines_text([job]) for job in jobs[:split]]
    kept = b"".join(kept_lines)
    added = index.lines_text(jobs[split:])
    kept_crc = index.crc(kept)
    note: dict[str, object] | None = None
    if before is not None and all(j["id"] not in new for j in jobs[:split]):
        old, old_ids = before
        marks = _marks(store.finished_path, old, jobs[:split], kept_lines)
        if marks is not None:
            note = {
                "version": VERSION,
                "before": {k: getattr(old, k) for k in _BEFORE},
                "kept": len(kept),
                "keptCrc": kept_crc,
                "dropped": sorted(old_ids.difference(j["id"] for j in jobs)),
                "marks": marks,
            }
    atomic_write(store.finished_path, kept + added)
    st = os.stat(store.finished_path)
    after = index.Cursor(st.st_dev, st.st_ino, st.st_size, len(jobs), index.crc(added, kept_crc))
    if note is None:
        _unlink_quietly(path)  # about a log now gone
    else:
        note["after"] = after.as_dict()
        _write_note(path, note)
    return after


#: how many of the old log's last lines a note marks (a reader whose rows are further
#: behind than that makes one pass over the new log instead)
MARKS = 1024


def _marks(
    log: str, old: index.Cursor, kept: list[Job], kept_lines: list[bytes]
) -> list[list[int]] | None:
    """``[offset, crc, start]`` for each of the old log's last :data:`MARKS` line starts:
    the CRC-32 of its bytes up to there (a commit's cursor, if one ended there), and
    where in the new log the kept jobs whose last old line lies past it begin. None if
    the old log is not, to the byte, what its cursor says."""
    data = index.read_range(log, 0, old.bytes) if old.bytes else b""
    if index.crc(data) != old.crc or (data and not data.endswith(b"\n")):
        return None
    starts: list[int] = []  # the last line starts, newest first
    end = len(data) - 1
    while end > 0 and len(starts) < MARKS:
        end = data.rfind(b"\n", 0, end) + 1
        starts.append(end)
        end -= 1
    starts.reverse()
    if not starts:
        return []
    prefix = len(index.ID_PREFIX)
    last_at: dict[str, int] = {}  # id: where its last line in the marked stretch starts
    for at, stop in zip(starts, [*starts[1:], len(data)], strict=True):
        line = data[at:stop]
        last_at[line[prefix : line.find(b'"', prefix)].decode("utf-8", "replace")] = at
    # the kept jobs are in the order of their last old lines: those in the marked
    # stretch are a suffix of them
    offsets = [0]
    for line in kept_lines:
        offsets.append(offsets[-1] + len(line))
    first = len(kept)
    while first and str(kept[first - 1]["id"]) in last_at:
        first -= 1
    marks = []
    crc = index.crc(memoryview(data)[: starts[0]])
    j = first
    for n, at in enumerate(starts):
        while j < len(kept) and last_at[str(kept[j]["id"])] < at:
            j += 1
        marks.append([at, crc, offsets[j]])
        stop = starts[n + 1] if n + 1 < len(starts) else len(data)
        crc = index.crc(memoryview(data)[at:stop], crc)
    return marks


def _write_note(path: str, note: dict[str, object]) -> None:
    from jobgate.state.fileio import _unlink_quietly, atomic_write, json_text

    try:
        atomic_write(path, json_text(note, separators=(",", ":")).encode(), durable=False)
    except OSError:
        _unlink_quietly(path)  # a note that says less is no note at all


class Note:
    """A rewrite's note, as read back: see the module's docstring."""

    __slots__ = ("after", "before", "dropped", "kept", "kept_crc", "marks")

    def __init__(self, doc: dict[str, object]) -> None:
        before, after = doc["before"], doc["after"]
        assert isinstance(before, dict) and isinstance(after, dict)
        #: the cursor of the log it rewrote: (dev, ino, bytes, crc)
        self.before: tuple[int, int, int, int] = (
            before["dev"],
            before["ino"],
            before["bytes"],
            before["crc"],
        )
        self.after = index.Cursor(*(after[k] for k in index.Cursor.FIELDS))
        self.kept: int = doc["kept"]  # type: ignore[assignment]
        self.kept_crc: int = doc["keptCrc"]  # type: ignore[assignment]
        self.dropped: list[str] = doc["dropped"]  # type: ignore[assignment]
        marks: list[list[int]] = doc["marks"]  # type: ignore[assignment]
        #: a line start of the old log: (the CRC up to it, where the new lines from it begin)
        self.marks = {at: (crc, start) for at, crc, start in marks}

    def start(self, at: tuple[int, int, int, int]) -> int | None:
        """Where in the new log the lines a reader of the old log at cursor ``at`` has
        not seen begin (kept jobs it saw logged earlier, then this commit's); None if
        ``at`` is not the old log's or is further back than the note marks."""
        if at == self.before:
            return self.kept
        if at[:2] != self.before[:2] or at[2] > self.before[2]:
            return None
        mark = self.marks.get(at[2])
        return mark[1] if mark is not None and mark[0] == at[3] else None


def read_note(state_dir: str) -> Note | None:
    """The last rewrite's note; None if there is none, or it is torn or not one."""
    from jobgate.state.files import read_cache

    data = read_cache(os.path.join(state_dir, NAME))
    if data is None:
        return None
    try:
        doc = jsonload.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not _valid(doc):
        return None
    return Note(doc)


def _valid(doc: object) -> bool:
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        return False
    before, after, dropped = doc.get("before"), doc.get("after"), doc.get("dropped")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return False
    if not all(type(before.get(k)) is int for k in _BEFORE):
        return False
    if not all(type(after.get(k)) is int for k in index.Cursor.FIELDS):
        return False
    if type(doc.get("kept")) is not int or type(doc.get("keptCrc")) is not int:
        return False
    if not isinstance(dropped, list) or not all(isinstance(x, str) for x in dropped):
        return False
    marks = doc.get("marks")
    return isinstance(marks, list) and all(
        isinstance(m, list) and len(m) == 3 and all(type(x) is int for x in m) for m in marks
    )
