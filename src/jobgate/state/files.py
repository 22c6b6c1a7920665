"""A workspace's state directory: its paths, the lock, and lock-free reads of the index.

:class:`StateDir` is everything but writing jobs; :class:`jobgate.state.store.Store` adds
the locked transaction (:mod:`jobgate.state.transaction`), so that module can take a
state dir without importing the store. The layout and the rules: :mod:`jobgate.state.store`.
"""

from __future__ import annotations

import os

from jobgate.state import index, model
from jobgate.state.errors import JobgateError, LockTimeout
from jobgate.state.fileio import (
    CorruptFile,
    open_regular,
    read_at_most,
    read_json,
    warn,
    write_json,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar

    from jobgate.state.locking import _PortableLock, _PosixLock


DEFAULT_LOCK_TIMEOUT = 30.0


class StateDir:
    """One workspace's state directory: paths, lock, reads."""

    def __init__(self, state_dir: str, workspace_root: str = "") -> None:
        self.state_dir = state_dir
        self.workspace_root = workspace_root
        self.index_path = os.path.join(state_dir, index.ACTIVE)
        self.finished_path = os.path.join(state_dir, index.FINISHED)
        self.legacy_path = os.path.join(state_dir, index.LEGACY)
        self.config_path = os.path.join(state_dir, "config.json")
        self.lock_path = os.path.join(state_dir, "state.lock")
        self.jobs_dir = os.path.join(state_dir, "jobs")

    # -- paths ---------------------------------------------------------------
    def job_path(self, job_id: str) -> str:
        if not model.is_safe_id(job_id):
            raise JobgateError(f"invalid job id {job_id!r}")
        return os.path.join(self.jobs_dir, f"{job_id}.json")

    def log_path(self, job_id: str) -> str:
        if not model.is_safe_id(job_id):
            raise JobgateError(f"invalid job id {job_id!r}")
        return os.path.join(self.jobs_dir, f"{job_id}.log")

    def new_job_id(self, kind: str) -> str:
        """A fresh id (:func:`jobgate.state.model.new_id`) no other job here has or gets:
        claimed by creating its empty log with ``O_EXCL`` (two launches that drew the same
        id cannot both create it; the loser draws again), after checking that no job file
        has it (a job whose log was removed). The state dir must exist. A log that cannot
        be created for another reason (a full disk) claims nothing: the id is used as
        drawn, as a log line that cannot be written is dropped. An unclaimed log is
        swept with the other leftovers of a launch that never committed."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        while True:
            job_id = model.new_id(kind)
            if os.path.lexists(self.job_path(job_id)):
                continue
            try:
                os.close(os.open(self.log_path(job_id), flags, 0o600))
            except FileExistsError:
                continue
            except OSError:
                pass
            return job_id

    # -- setup ---------------------------------------------------------------
    def exists(self) -> bool:
        from jobgate.state.workspace import check_private_dir

        return check_private_dir(self.state_dir)

    def ensure(self) -> None:
        """Create the state dir (0700) and ``jobs/`` if needed; refuse unsafe dirs."""
        from jobgate.state.workspace import ensure_private_dir, ensure_state_root

        ensure_state_root(os.path.dirname(self.state_dir))
        ensure_private_dir(self.state_dir)
        ensure_private_dir(self.jobs_dir)

    # -- lock-free reads -----------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The index as committed, without taking the lock.

        Raises :class:`CorruptFile` when it is unreadable, or missing (or its finished log
        is) while job files say there were jobs: the next writer rebuilds it.
        """
        data = read_json(self.index_path)
        if data is None:
            legacy = read_json(self.legacy_path)
            if legacy is not None:
                return Snapshot.of_legacy(self, index.parse_legacy(self.legacy_path, legacy))
            data = read_json(self.index_path)  # a writer may have just migrated it
            if data is None:
                if self.job_ids():
                    raise CorruptFile(self.index_path, "missing, with job files beside it")
                return Snapshot(self, [], index.NO_LOG, None)
        active, cursor = index.parse_active(self.index_path, data)
        stat = index.stat_log(self.finished_path)
        if stat is None and cursor.count:
            raise CorruptFile(self.finished_path, "missing")
        return Snapshot(self, active, cursor, stat)

    def read_active(self) -> list[model.Job]:
        """The active jobs' summaries, newest first (lock-free; see :meth:`snapshot`)."""
        return self.snapshot().active

    def read_index(self) -> list[model.Job]:
        """Every job's summary, active and finished, newest first (reads all of it)."""
        snap = self.snapshot()
        return model.sort_newest_first(snap.active + snap.finished())

    def read_job(self, job_id: str) -> model.Job | None:
        """The full record from ``jobs/<id>.json`` (None if missing or unreadable)."""
        try:
            data = read_json(self.job_path(job_id))
        except CorruptFile as exc:
            warn(f"ignoring unreadable job file {exc.path}: {exc.reason}")
            return None
        if isinstance(data, dict) and data.get("id") == job_id:
            return data
        return None

    def job_ids(self) -> list[str]:
        """The ids that have a job file (one listing of ``jobs/``)."""
        try:
            names = os.listdir(self.jobs_dir)
        except OSError:
            return []
        ids = (n[: -len(".json")] for n in names if n.endswith(".json"))
        return sorted(i for i in ids if model.is_safe_id(i))

    def read_config(self) -> dict[str, Any]:
        try:
            data = read_json(self.config_path)
        except CorruptFile as exc:
            raise JobgateError(f"config file {exc.path} is unreadable: {exc.reason}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise JobgateError(f"config file {self.config_path} does not hold a JSON object")
        return data

    def rebuild_index_from_jobs(self) -> list[model.Job]:
        """Every job's summary as its job file has it, newest first (reads them all)."""
        jobs: list[model.Job] = []
        for job_id in self.job_ids():
            job = self.read_job(job_id)
            if job is not None:
                jobs.append(model.summary(job))
        return model.sort_newest_first(jobs)

    # -- locked writes -------------------------------------------------------
    def lock(self, timeout: float = DEFAULT_LOCK_TIMEOUT) -> LockContext:
        return LockContext(self, timeout)

    def write_config(self, config: dict[str, Any]) -> None:
        """Write settings; call while holding :meth:`lock`."""
        write_json(self.config_path, config)


class Snapshot:
    """What a read of the index found: the active jobs (with any job a killed writer
    already logged as finished taken out) and where the finished ones are."""

    def __init__(
        self,
        store: StateDir,
        active: list[model.Job],
        cursor: index.Cursor,
        stat: tuple[int, int, int] | None,
        legacy_finished: list[model.Job] | None = None,
    ) -> None:
        self.store = store
        self.cursor = cursor
        self.legacy = legacy_finished is not None
        #: each id's finished summary from the log past the cursor (or all of it, when
        #: the cursor does not describe the log), oldest first
        self.recovered: dict[str, model.Job] = {}
        #: True when the whole log was read because the cursor does not describe it
        self.rescanned = False
        #: the bytes of the log's complete lines (a torn last line excluded)
        self.log_bytes = 0
        #: the log's size as found (more than ``log_bytes`` when a line is torn)
        self.log_size = 0
        self._all: list[model.Job] | None = legacy_finished
        if stat is not None:
            dev, ino, size = stat
            self.log_size = size
            if cursor.names(dev, ino) and size >= cursor.bytes:
                self.log_bytes = cursor.bytes
                if size > cursor.bytes:
                    data = index.read_range(store.finished_path, cursor.bytes, size)
                    lines, complete, _bad = index.parse_lines(data)
                    self.recovered = index.latest(lines)
                    self.log_bytes += complete
            else:
                data = index.read_range(store.finished_path, 0, size)
                lines, self.log_bytes, _bad = index.parse_lines(data)
                self.recovered = index.latest(lines)
                self._all = list(self.recovered.values())
                self.rescanned = True
        self.active = [j for j in active if j["id"] not in self.recovered]
        self._was_active = {j["id"] for j in active} - {j["id"] for j in self.active}

    @classmethod
    def of_legacy(cls, store: StateDir, jobs: list[model.Job]) -> Snapshot:
        active = [j for j in jobs if model.is_active(j)]
        done = [j for j in reversed(model.sort_newest_first(jobs)) if not model.is_active(j)]
        return cls(store, active, index.NO_LOG, None, done)

    def finished_count(self) -> int:
        """How many finished jobs the index holds."""
        if self._all is not None:
            return len(self._all)
        if not self.recovered:
            return self.cursor.count
        # a recovered job is new in the log if it was active, or is not in the log
        # before the cursor (else it re-logs one, e.g. with ``announcedAt`` set)
        before = index.read_range(self.store.finished_path, 0, self.cursor.bytes)
        new = 0
        for job_id in self.recovered:
            key = index.ID_PREFIX + job_id.encode() + b'",'
            logged = before.startswith(key) or b"\n" + key in before
            new += job_id in self._was_active or not logged
        return self.cursor.count + new

    def finished(self, newest: int | None = None) -> list[model.Job]:
        """Finished summaries, most recently finished (or changed) first: all of them, or
        about the ``newest`` N (read from the end of the log)."""
        if self._all is None and newest is not None:
            if newest <= 0 or not self.log_bytes:
                return []
            # log_bytes counts the lines past the cursor too: the recovered are in there
            newest_first = reversed(
                index.read_newest(self.store.finished_path, self.log_bytes, newest)
            )
            return list(newest_first)[:newest]
        if self._all is None:
            data = b""
            if self.log_bytes:
                data = index.read_range(self.store.finished_path, 0, self.log_bytes)
            lines, _end, bad = index.parse_lines(data)
            if bad:
                warn(f"skipped {bad} unreadable line(s) of {self.store.finished_path}")
            self._all = list(index.latest(lines).values())
        out = list(reversed(self._all))
        return out if newest is None else out[:newest]

    def finished_lines(self) -> bytes | None:
        """Every finished job's log line, in the order they finished (oldest first), as
        the log holds them: compact JSON lines, not parsed — the cheap way to pass
        10,000 records on. None when the log's bytes do not match the CRC of the last
        commit (edited or damaged: parse them with :meth:`finished` instead)."""
        if self._all is not None:
            return None
        if not self.log_bytes:
            return b""
        data = index.read_range(self.store.finished_path, 0, self.log_bytes)
        if index.crc(memoryview(data)[: self.cursor.bytes]) != self.cursor.crc:
            return None
        if len(data) > self.cursor.bytes:  # past the cursor: the lines that parsed
            data = data[: self.cursor.bytes] + index.lines_text(list(self.recovered.values()))
        if data.count(b"\n") != self.finished_count():
            data = index.last_lines(data)  # some job was logged twice: its last line wins
        return data

    def lookup(self, job_id: str) -> model.Job | None:
        """The summary of the job with this exact id, or None: the active set, else a
        finished job file (a job file that holds a queued or running record no index
        names is a launch that never committed, and no job), else the log (read whole:
        only when the job file is missing or damaged)."""
        for job in self.active:
            if job["id"] == job_id:
                return job
        if job_id in self.recovered:
            return self.recovered[job_id]
        if self._all is not None:
            for job in self._all:
                if job["id"] == job_id:
                    return job
            return None
        if not model.is_safe_id(job_id):
            return None
        full = self.store.read_job(job_id)
        if full is not None and model.is_finished(full):
            return model.summary(full)
        # no job file, or a damaged one: the log has the summary, if the job is indexed
        if self._all is None and self.log_bytes:
            return self._find_in_log(job_id)
        return next((j for j in self.finished() if j["id"] == job_id), None)

    def _find_in_log(self, job_id: str) -> model.Job | None:
        """The last log line of ``job_id``, found by its bytes (no parse of the rest)."""
        data = index.read_range(self.store.finished_path, 0, self.log_bytes)
        key = index.ID_PREFIX + job_id.encode() + b'",'
        at = data.rfind(b"\n" + key) + 1
        if at == 0 and not data.startswith(key):
            return None
        lines, _end, _bad = index.parse_lines(data[at : data.find(b"\n", at) + 1])
        return lines[0] if lines and lines[0]["id"] == job_id else None


class LockContext:
    """``with store.lock(timeout):`` holds the state lock. A writer that has waited a
    second for it, and may wait longer (never the hooks' short waits), says so once,
    naming the holder: ``jobgate: waiting for the state lock held by pid 1234 (jobgate
    run -- make)``, through :attr:`tell` (stderr; the background worker, whose stderr is
    its job's log, points it at the log)."""

    #: where the waiting notice goes (a line without its newline); None: stderr
    tell: ClassVar[Callable[[str], None] | None] = None

    def __init__(self, store: StateDir, timeout: float) -> None:
        self.store = store
        self.timeout = timeout
        self._lock: _PosixLock | _PortableLock | None = None

    def __enter__(self) -> LockContext:
        self.store.ensure()
        from jobgate.state.locking import make_lock  # writers only: readers take no lock

        lock = make_lock(self.store.lock_path)
        if not lock.acquire(self.timeout, self._waiting):
            raise LockTimeout(self.store.lock_path, self.timeout)
        self._lock = lock
        return self

    def _waiting(self, holder: str) -> None:
        pid, _, label = holder.partition(" ")
        who = f"pid {pid} ({label})" if pid.isdigit() and label else "another process"
        text = model.one_line(f"jobgate: waiting for the state lock held by {who}")
        if LockContext.tell is not None:
            LockContext.tell(text)
            return
        import sys

        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def read_cache(path: str) -> bytes | None:
    """The whole of a regular file that only caches something (a lost one costs its
    rebuild): None when it is missing, unreadable or not a regular file."""
    try:
        fd, st = open_regular(path)
    except (OSError, CorruptFile):
        return None
    try:
        return read_at_most(fd, st.st_size + 1, st.st_size)
    except OSError:
        return None
    finally:
        os.close(fd)
