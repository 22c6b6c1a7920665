"""The state directory on disk: the lock, atomic writes, the index and job files.

Layout (see "Where the state lives" in the README)::

    state.json      {"version": 1, "jobs": [summary, ...]}   (the index)
    config.json     settings, kept apart so index damage cannot erase them
    state.lock      the inter-process lock
    jobs/<id>.json  full record of one job
    jobs/<id>.log   combined output and timestamped progress lines

Rules:

* Every change is a read-modify-write inside :meth:`Store.transaction`, which holds an
  exclusive lock on ``state.lock`` (``fcntl.flock`` on POSIX; the ``filelock`` package
  elsewhere, imported lazily because its import alone costs ~40 ms).
* Every file is written to a temp file in the same folder, flushed, fsynced and
  ``os.replace``d, so a reader never sees half a file and a writer killed at any
  instant leaves the last committed state intact. Lock-free reads are consistent.
* An unreadable index is moved aside to ``state.json.corrupt-<time>`` and rebuilt
  from ``jobs/*.json``; a warning goes to stderr.
* Files are 0600, folders 0700.
"""

from __future__ import annotations

import os
import time

from jobgate.state import model
from jobgate.state.errors import JobgateError, LockTimeout
from jobgate.state.fileio import (
    CorruptFile,
    _unlink_quietly,
    append_line,
    aside_name,
    atomic_write,
    keep_newest,
    log_line,
    read_json,
    remove_stale_temp_files,
    warn,
    write_json,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from jobgate.state.locking import _PortableLock, _PosixLock

__all__ = [
    "CorruptFile",
    "LockTimeout",
    "Store",
    "Transaction",
    "append_line",
    "atomic_write",
    "log_line",
    "read_json",
    "remove_stale_temp_files",
    "warn",
    "write_json",
]

INDEX_VERSION = 1
#: a log or final-message file that no record names is removed once this old
ORPHAN_SECONDS = 300.0
DEFAULT_LOCK_TIMEOUT = 30.0


class Store:
    """One workspace's state directory."""

    def __init__(self, state_dir: str, workspace_root: str = "") -> None:
        self.state_dir = state_dir
        self.workspace_root = workspace_root
        self.index_path = os.path.join(state_dir, "state.json")
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
    def read_index(self) -> list[model.Job]:
        """The index's job summaries without taking the lock ([] if none yet).

        Raises :class:`CorruptFile` when the index exists but is unreadable.
        """
        data = read_json(self.index_path)
        if data is None:
            return []
        return _validate_index(self.index_path, data)

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

    # -- locked writes -------------------------------------------------------
    def lock(self, timeout: float = DEFAULT_LOCK_TIMEOUT) -> _LockContext:
        return _LockContext(self, timeout)

    def transaction(self, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Transaction:
        """``with store.transaction() as tx:`` — a locked read-modify-write."""
        return Transaction(self, timeout)

    def write_config(self, config: dict[str, Any]) -> None:
        """Write settings; call while holding :meth:`lock`."""
        write_json(self.config_path, config)

    def rebuild_index_from_jobs(self) -> list[model.Job]:
        jobs: list[model.Job] = []
        try:
            names = sorted(os.listdir(self.jobs_dir))
        except FileNotFoundError:
            return jobs
        for name in names:
            if not name.endswith(".json") or not model.is_safe_id(name[: -len(".json")]):
                continue
            job = self.read_job(name[: -len(".json")])
            if job is not None:
                jobs.append(model.summary(job))
        return model.sort_newest_first(jobs)

    def quarantine_index(self, reason: str) -> list[model.Job]:
        """Move the unreadable index aside and rebuild it from the job files.

        Call under the lock. The damaged file is hard-linked aside and the rebuilt index
        replaces it atomically, so a lock-free reader never finds no index (and so no
        jobs) in between; where hard links fail it is moved aside first instead.
        """
        target = aside_name(self.index_path, "corrupt")
        jobs = self.rebuild_index_from_jobs()
        try:
            os.link(self.index_path, target)
        except OSError:
            os.replace(self.index_path, target)
        write_json(self.index_path, {"version": INDEX_VERSION, "jobs": jobs}, pretty=False)
        keep_newest(self.state_dir, "state.json.corrupt-", KEEP_CORRUPT_COPIES)
        warn(
            f"the job index {self.index_path} was unreadable ({reason}); moved it to "
            f"{target} and rebuilt the index from {len(jobs)} job file(s)"
        )
        return jobs


#: quarantined copies of a damaged index kept (the newest); older ones are removed
KEEP_CORRUPT_COPIES = 5


def _validate_index(path: str, data: Any) -> list[model.Job]:
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise CorruptFile(path, "not an object with a 'jobs' list")
    jobs: list[model.Job] = data["jobs"]
    for job in jobs:
        if not isinstance(job, dict) or not isinstance(job.get("id"), str):
            raise CorruptFile(path, "a job entry is not an object with an 'id'")
        if not model.is_safe_id(job["id"]):
            # jobgate never writes such an id; it would name a file outside jobs/
            raise CorruptFile(path, f"a job entry has an invalid id {job['id']!r}")
    return jobs


class _LockContext:
    def __init__(self, store: Store, timeout: float) -> None:
        self.store = store
        self.timeout = timeout
        self._lock: _PosixLock | _PortableLock | None = None

    def __enter__(self) -> _LockContext:
        self.store.ensure()
        from jobgate.state.locking import make_lock  # writers only: readers take no lock

        lock = make_lock(self.store.lock_path)
        if not lock.acquire(self.timeout):
            raise LockTimeout(self.store.lock_path, self.timeout)
        self._lock = lock
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class Transaction:
    """Holds the lock; loads the index; stages job changes; commits on clean exit.

    ``jobs`` is the list of index summaries. Use :meth:`get` for a full record and
    :meth:`put` to stage a changed record; nothing is written if the block raises.
    """

    def __init__(self, store: Store, timeout: float) -> None:
        self.store = store
        self._lockctx = _LockContext(store, timeout)
        self.jobs: list[model.Job] = []
        self._staged: dict[str, model.Job] = {}
        self._removed: set[str] = set()
        self._extra_files: set[str] = set()
        self._dirty = False
        #: retention: set to ``maxJobs`` to prune finished jobs at commit (ids in
        #: ``spare`` are never dropped by it)
        self.max_finished: int | None = None
        self.spare: frozenset[str] = frozenset()

    def __enter__(self) -> Transaction:
        self._lockctx.__enter__()
        try:
            try:
                self.jobs = self.store.read_index()
            except CorruptFile as exc:
                self.jobs = self.store.quarantine_index(exc.reason)
                self._dirty = True
        except BaseException:
            self._lockctx.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            self._lockctx.__exit__(None, None, None)

    # -- reading -------------------------------------------------------------
    def find(self, job_id: str) -> model.Job | None:
        for job in self.jobs:
            if job.get("id") == job_id:
                return job
        return None

    def get(self, job_id: str) -> model.Job | None:
        """The full record (job file merged under the index summary) of a job in the
        index, else None. The index is what makes a job exist: a job file without an
        entry (its launch failed to commit, e.g. on a full disk) is no job to run or
        to record an end for."""
        if job_id in self._staged:
            return self._staged[job_id]
        summ = self.find(job_id)
        if summ is None:
            return None
        full = self.store.read_job(job_id)
        if full is None:
            return dict(summ)
        merged = dict(full)
        merged.update(summ)
        return merged

    # -- staging -------------------------------------------------------------
    def put(self, job: model.Job) -> None:
        """Stage ``job`` (a full record): written to its file and the index at commit."""
        job_id = job["id"]
        self.store.job_path(job_id)  # validates the id
        self._staged[job_id] = job
        summ = model.summary(job)
        for i, existing in enumerate(self.jobs):
            if existing.get("id") == job_id:
                self.jobs[i] = summ
                break
        else:
            self.jobs.insert(0, summ)
        self._dirty = True

    def remove(self, job_id: str) -> None:
        """Drop a job: its index entry, its job file and log, and the agent's final
        message file (``resultFile``) if one is still there."""
        for job in self.jobs:
            if job.get("id") == job_id:
                extra = job.get("resultFile")
                if isinstance(extra, str) and extra.endswith(".last-message"):
                    # only ever a file directly in jobs/, whatever the spelling of its path
                    self._extra_files.add(
                        os.path.join(self.store.jobs_dir, os.path.basename(extra))
                    )
        self.jobs = [j for j in self.jobs if j.get("id") != job_id]
        self._staged.pop(job_id, None)
        self._removed.add(job_id)
        self._dirty = True

    def keep_at_most(self, spare: str | None = None) -> None:
        """Prune to the workspace's ``maxJobs`` finished jobs at commit; ``spare`` (a job
        that finishes in this transaction) is kept even beyond that, so its outcome can
        be read once. An unreadable ``config.json`` leaves retention alone."""
        from jobgate.state import config as config_mod

        if spare is not None:
            self.spare = self.spare | {spare}
        try:
            stored = self.store.read_config()
            self.max_finished = int(config_mod.effective(stored)["maxJobs"])
        except (JobgateError, ValueError, TypeError, KeyError):
            self.max_finished = None

    def _remove_orphans(self, min_age: float = ORPHAN_SECONDS) -> None:
        """Remove logs and agents' final-message files that no record names any more:
        what a ``run --background`` killed before its record was committed (or a disk
        that was full) leaves behind. Job files are never removed here. The age
        threshold spares a file whose record is about to be committed."""
        ids = {str(j.get("id")) for j in self.jobs}
        # by name: a record may spell the state root another way (a symlinked
        # $JOBGATE_HOME), and these files only ever live directly in jobs/
        named = {os.path.basename(str(j.get("resultFile"))) for j in self.jobs}
        cutoff = time.time() - min_age
        try:
            names = os.listdir(self.store.jobs_dir)
        except OSError:
            return
        for name in names:
            path = os.path.join(self.store.jobs_dir, name)
            if name.endswith(".log"):
                job_id = name[: -len(".log")]
                if job_id in ids or not model.is_safe_id(job_id):
                    continue
                if os.path.lexists(os.path.join(self.store.jobs_dir, f"{job_id}.json")):
                    continue
            elif not name.endswith(".last-message") or name in named:
                continue
            try:
                if os.lstat(path).st_mtime < cutoff:
                    os.unlink(path)
            except OSError:
                continue

    def _commit(self) -> None:
        if self.max_finished is not None:
            kept, dropped = model.prune(self.jobs, self.max_finished, self.spare)
            for job in dropped:
                self.remove(str(job["id"]))
            self.jobs = kept
        if not self._dirty:
            return
        for job_id, job in self._staged.items():
            write_json(self.store.job_path(job_id), job)
        write_json(
            self.store.index_path, {"version": INDEX_VERSION, "jobs": self.jobs}, pretty=False
        )
        for job_id in self._removed:
            for path in (self.store.job_path(job_id), self.store.log_path(job_id)):
                _unlink_quietly(path)
        for path in self._extra_files:
            _unlink_quietly(path)
        remove_stale_temp_files(self.store.state_dir)
        remove_stale_temp_files(self.store.jobs_dir)
        if self.max_finished is not None:
            self._remove_orphans()
        self._staged.clear()
        self._removed.clear()
        self._extra_files.clear()
        self._dirty = False
