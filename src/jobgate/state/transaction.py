"""A locked read-modify-write of a workspace's jobs (``Store.transaction``).

A commit touches what changed, not what was retained:

1. finished jobs' files are replaced; a new active job's file is written under a temp
   name, so a launch that never commits leaves no record behind (``run --background``
   writes its job's file before it takes the lock: an active record that no index
   names is no job, and is swept once old); an active job's later
   changes (started, claimed, cancel requested) live in ``active.json`` only — its
   summary is its whole record until it has output — and its file is written again
   when it ends;
2. the summaries of jobs that finished are appended to ``finished.jsonl`` (one write)
   — or, when retention prunes, the log is rewritten whole;
3. ``active.json`` is replaced: this is the commit;
4. new jobs' files are renamed into place; pruned jobs' files are removed;
5. once the lock is let go, and before the transaction returns, the fsyncs that make
   it durable: every file it wrote, then their folders. Nothing is fsynced while the
   lock is held (the rare rewrites of the finished log aside): measured with 32
   launchers, the fsyncs were ~80% of the time the lock was held (~10 ms each on a busy
   disk, where an ext4 commit writes everyone's dirty data first), and every waiter
   waited for them too. Outside the lock, the writers' fsyncs overlap and share the
   file system's commits. What readers see is the same; a crash of the *machine* can
   lose only a change whose writer had not yet returned (acknowledged it), and an index
   torn by one is rebuilt from the job files, which are durable by then.

Retention keeps ``maxJobs`` finished jobs, pruning in batches: the log is rewritten only
once it holds a tenth more than that (at least one more), so a finishing job costs one
append, and a rewrite of N jobs comes once every N/10 finishes. Leftovers of killed
writers (temp files, logs no record names) are swept at those rewrites.
"""

from __future__ import annotations

# zlib is imported with this module, which Store.transaction imports before it takes the
# lock: an import under the lock is time every waiting writer waits too, and on a loaded
# machine each one is a trip through the run queue while holding it (measured: json,
# zlib and the settings module were imported inside the critical section of every launch
# and every finish; json is no longer imported at all, see jobgate.state.jsonload).
import os
import zlib  # noqa: F401  (index.crc: the finished log's checksum)

from jobgate.state import config, index, leftovers, model, retention
from jobgate.state.durable import fsync_paths, replace_with
from jobgate.state.errors import JobgateError
from jobgate.state.fileio import (
    CorruptFile,
    _unlink_quietly,
    aside_name,
    json_bytes,
    keep_newest,
    warn,
    write_all,
    write_temp,
)
from jobgate.state.files import DEFAULT_LOCK_TIMEOUT, Snapshot, StateDir

#: a log or final-message file that no record names is removed once this old
ORPHAN_SECONDS = 300.0
#: quarantined copies of a damaged index kept (the newest); older ones are removed
KEEP_CORRUPT_COPIES = 5


class Transaction:
    """Holds the lock; loads the active jobs; stages changes; commits on clean exit.

    ``jobs`` is the list of active summaries, newest first. Use :meth:`get` for a full
    record (of any job) and :meth:`put` to stage a changed one; nothing is written if the
    block raises.
    """

    def __init__(self, store: StateDir, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.store = store
        self._lockctx = store.lock(timeout)
        self.jobs: list[model.Job] = []
        self._snap: Snapshot | None = None
        self._cursor = index.NO_LOG
        self._log_bytes = 0
        self._staged: dict[str, model.Job] = {}
        self._finished: dict[str, model.Job] = {}  # summaries to log, in order
        self._new_finished = 0
        self._had_file: set[str] = set()
        self._removed: dict[str, model.Job] = {}
        self._logged: set[str] = set()
        self._rewrite = False  # the log must be rewritten whole (rebuilt, migrated)
        self._rebuilt: list[model.Job] | None = None  # every finished job, oldest first
        self._migrated = False
        self._dirty = False
        #: retention: set to ``maxJobs`` to prune finished jobs at commit (ids in
        #: ``spare`` are never dropped by it)
        self.max_finished: int | None = None
        self.spare: frozenset[str] = frozenset()
        #: files, then folders, to fsync once the lock is let go (see _commit)
        self._later: list[str] = []
        #: descriptors of the files this commit replaced, closed once the lock is let go
        self._held: list[int] = []

    def __enter__(self) -> Transaction:
        self._lockctx.__enter__()
        try:
            self._load()
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
            held, self._held = self._held, []
            for fd in held:  # the replaced files are freed here, not under the lock
                os.close(fd)
        if self._later:
            # what makes the commit durable but not visible: after the lock is let go
            # (each waiter would wait for the disk too), before the caller goes on
            later, self._later = self._later, []
            fsync_paths(later)

    # -- loading -------------------------------------------------------------
    def _load(self) -> None:
        try:
            snap = self.store.snapshot()
        except CorruptFile as exc:
            self._rebuild(exc)
            return
        self._snap = snap
        self.jobs = list(snap.active)
        self._cursor = snap.cursor
        self._log_bytes = snap.log_bytes
        if snap.legacy:
            self._rewrite = self._migrated = self._dirty = True
        elif snap.rescanned:
            self._rewrite = self._dirty = True  # the cursor lied: rewrite what is there
        elif snap.recovered or snap.log_size > snap.log_bytes:
            # a writer was killed after logging these jobs and before its commit (or
            # while it wrote their lines): they are finished; cut a torn last line and
            # let this commit account for the rest
            path = self.store.finished_path
            os.truncate(path, snap.log_bytes)
            folded = index.read_range(path, snap.cursor.bytes, snap.log_bytes)
            self._cursor = index.Cursor(
                snap.cursor.dev,
                snap.cursor.ino,
                snap.log_bytes,
                snap.finished_count(),
                index.crc(folded, snap.cursor.crc),
            )
            self._dirty = True

    def _rebuild(self, exc: CorruptFile) -> None:
        """The index is unreadable or missing: rebuild it from the job files."""
        jobs = self.store.rebuild_index_from_jobs()
        self.jobs = [j for j in jobs if model.is_active(j)]
        self._rebuilt = [j for j in reversed(jobs) if not model.is_active(j)]
        self._rewrite = self._dirty = True
        moved = ""
        if exc.path in (self.store.index_path, self.store.legacy_path) and os.path.exists(exc.path):
            # hard-linked aside, replaced by the commit: a lock-free reader never finds
            # no index; where links fail it is moved aside now
            target = aside_name(exc.path, "corrupt")
            try:
                os.link(exc.path, target, follow_symlinks=False)
            except OSError:
                os.replace(exc.path, target)
            if exc.path == self.store.legacy_path:
                self._migrated = True  # moved aside (again) once the commit is done
            name = os.path.basename(exc.path)
            keep_newest(self.store.state_dir, f"{name}.corrupt-", KEEP_CORRUPT_COPIES)
            moved = f"moved it to {target} and "
        warn(
            f"the job index {exc.path} was {exc.reason}; {moved}rebuilt the index from "
            f"{len(jobs)} job file(s)"
        )

    # -- reading -------------------------------------------------------------
    def find(self, job_id: str) -> model.Job | None:
        """The active summary of ``job_id`` (None if it is not active)."""
        for job in self.jobs:
            if job.get("id") == job_id:
                return job
        return None

    def get(self, job_id: str) -> model.Job | None:
        """The full record of a job in the index (its job file merged under its summary),
        else None. The index is what makes a job exist: a job file that no commit named
        (a launch killed before it committed) is no job to run or record an end for."""
        if job_id in self._staged:
            return self._staged[job_id]
        self.store.job_path(job_id)  # validates the id
        summ = self.find(job_id)
        if summ is None:
            summ = self._finished_summary(job_id)
            if summ is None:
                return None
            self._logged.add(job_id)  # a put of it re-logs it: no new finished job
        full = self.store.read_job(job_id)
        if full is not None:
            self._had_file.add(job_id)
            if model.is_finished(full) and not model.is_finished(summ):
                # a writer wrote this job's end to its file and was killed before the
                # index: the file is the newer record
                return full
        merged = dict(full or {})
        merged.update(summ)
        return merged

    def _finished_summary(self, job_id: str) -> model.Job | None:
        if self._rebuilt is not None:
            return next((j for j in self._rebuilt if j["id"] == job_id), None)
        if self._snap is None:
            return None
        return self._snap.lookup(job_id)

    # -- staging -------------------------------------------------------------
    def put(self, job: model.Job) -> None:
        """Stage ``job`` (a full record): written to its file and the index at commit."""
        job_id = job["id"]
        path = self.store.job_path(job_id)  # validates the id
        summ = model.summary(job)
        was_active = self.find(job_id) is not None
        if job_id not in self._had_file and os.path.lexists(path):
            self._had_file.add(job_id)
        self._staged[job_id] = job
        if model.is_active(job):
            for i, existing in enumerate(self.jobs):
                if existing.get("id") == job_id:
                    self.jobs[i] = summ
                    break
            else:
                self.jobs.insert(0, summ)
        else:
            if was_active:
                self.jobs = [j for j in self.jobs if j.get("id") != job_id]
            known = job_id in self._had_file or job_id in self._logged
            if job_id not in self._finished and (was_active or not known):
                self._new_finished += 1
            self._finished.pop(job_id, None)
            self._finished[job_id] = summ
        self._dirty = True

    def remove(self, job_id: str) -> None:
        """Drop a job from the index at commit, with its job file, log and final-message
        file. A finished job's removal rewrites the log (it is read whole): for tools
        and tests, not for a hot path."""
        summ = self.find(job_id) or self._finished_summary(job_id)
        self.jobs = [j for j in self.jobs if j.get("id") != job_id]
        self._staged.pop(job_id, None)
        self._finished.pop(job_id, None)
        self._removed[job_id] = summ or {"id": job_id}
        if summ is not None and not model.is_active(summ):
            self._rewrite = True
        self._dirty = True

    def keep_at_most(self, spare: str | None = None) -> None:
        """Prune to the workspace's ``maxJobs`` finished jobs at commit; ``spare`` (a job
        that finishes in this transaction) is kept even beyond that, so its outcome can
        be read once. An unreadable ``config.json`` leaves retention alone."""
        if spare is not None:
            self.spare = self.spare | {spare}
        try:
            stored = self.store.read_config()
            self.max_finished = int(config.effective(stored)["maxJobs"])
        except (JobgateError, ValueError, TypeError, KeyError):
            self.max_finished = None

    def sync_on_commit(self, path: str) -> None:
        """Make ``path`` (a file the caller wrote for this commit) durable with it."""
        self._later.append(path)

    # -- committing ----------------------------------------------------------
    def _count(self) -> int:
        if self._rebuilt is not None:
            return len(self._rebuilt) + self._new_finished
        return self._cursor.count + self._new_finished

    def _must_prune(self) -> bool:
        if self.max_finished is None:
            return False
        return self._count() > self.max_finished + self.max_finished // 10

    def _all_finished(self) -> tuple[list[model.Job], tuple[index.Cursor, set[str]] | None]:
        """Every finished summary, oldest first, with this transaction's changes; and the
        log's cursor and ids before them, where that cursor is one readers can trust."""
        before = None
        if self._rebuilt is not None:
            known = index.latest(self._rebuilt)
        else:
            snap = self._snap
            assert snap is not None
            known = index.latest(list(reversed(snap.finished())))
            if not (snap.legacy or snap.rescanned):
                before = self._cursor, set(known)
        for job_id, summ in self._finished.items():
            known.pop(job_id, None)
            known[job_id] = summ
        for job_id in self._removed:
            known.pop(job_id, None)
        return list(known.values()), before

    def _commit(self) -> None:
        prune = self._must_prune()
        if not self._dirty and not prune:
            return
        store = self.store
        pending: list[tuple[str, str]] = []  # (temp, final) of new jobs' files
        for job_id, job in self._staged.items():
            path = store.job_path(job_id)
            if model.is_finished(job):
                replace_with(path, json_bytes(job), sync=False, hold_old=self._held)
                self._later.append(path)
            elif job_id in self._had_file and not any(job.get(k) for k in model.HEAVY_KEYS):
                # an active job's summary is its whole record (it has no output yet):
                # active.json carries the change, and readers merge it over the file,
                # which is written again when the job ends — two fsyncs and a rename
                # fewer under the lock for every start, claim and cancel request
                continue
            else:
                try:
                    pending.append((write_temp(path, json_bytes(job), sync=False), path))
                except OSError as exc:
                    raise OSError(exc.errno, exc.strerror, path) from exc
        try:
            dropped: list[model.Job] = []
            if prune or self._rewrite:
                everything, before = self._all_finished()
                if prune and self.max_finished is not None:
                    held = retention.held_back(everything, self.max_finished, self.spare)
                    everything, dropped = retention.prune(everything, self.max_finished, self.spare)
                    for job in held[:3]:  # said at each prune, so kept short
                        why = model.one_line(str(job[retention.KEEP_REASON]))
                        warn(f"kept job {job['id']} past maxJobs: {why}")
                # imported here, under the lock, only by the rare commit that rewrites
                # (it costs ~200 ms at 10,000 jobs): every other commit skips the module
                from jobgate.state import log_rewrite

                cursor = log_rewrite.rewrite(store, everything, self._finished, before)
            elif self._finished:
                cursor = self._append(list(self._finished.values()))
            else:
                cursor = self._cursor
            doc = json_bytes(index.active_document(self.jobs, cursor), pretty=False)
            replace_with(store.index_path, doc, sync=False, hold_old=self._held)  # the commit
            # fsynced by name after the lock: if a later commit replaced it meanwhile,
            # that one holds this one's changes, and it is the one to make durable
            self._later.append(store.index_path)
        except BaseException:
            for tmp, _final in pending:
                _unlink_quietly(tmp)
            raise
        for tmp, final in pending:
            os.replace(tmp, final)
            self._later.append(final)
        self._later += [store.jobs_dir, store.state_dir]
        if self._migrated and os.path.lexists(store.legacy_path):
            # version 1 is kept, renamed, so nothing reads it as the index again
            os.replace(store.legacy_path, aside_name(store.legacy_path, "v1"))
        for job in [*dropped, *self._removed.values()]:
            self._remove_files(job)
        if prune or self._rewrite:
            leftovers.sweep(self.store, self.jobs + everything, ORPHAN_SECONDS)
        self._staged.clear()
        self._finished.clear()
        self._removed.clear()
        self._new_finished = 0
        self._dirty = self._rewrite = self._migrated = False

    def _append(self, jobs: list[model.Job]) -> index.Cursor:
        path = self.store.finished_path
        data = index.lines_text(jobs)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags, 0o600)
        try:
            write_all(fd, data)  # fsynced once the lock is let go
            st = os.fstat(fd)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, path) from exc
        finally:
            os.close(fd)
        self._later.append(path)
        return index.Cursor(
            st.st_dev, st.st_ino, st.st_size, self._count(), index.crc(data, self._cursor.crc)
        )

    def _remove_files(self, job: model.Job) -> None:
        """Drop a pruned job's job file and log, and the agent's final-message file
        (``resultFile``) if one is still there."""
        job_id = str(job["id"])
        for path in (self.store.job_path(job_id), self.store.log_path(job_id)):
            _unlink_quietly(path)
        extra = job.get("resultFile")
        if isinstance(extra, str) and extra.endswith(".last-message"):
            # only ever a file directly in jobs/, whatever the spelling of its path
            _unlink_quietly(os.path.join(self.store.jobs_dir, os.path.basename(extra)))
