"""The state directory on disk: the lock, the index and job files, and lock-free reads.

Layout (see "Where the state lives" in the README)::

    active.json     the active jobs' summaries and the cursor into finished.jsonl
    finished.jsonl  finished jobs' summaries, one per line, oldest first
                    (the format and its crash rules: :mod:`jobgate.state.index`)
    config.json     settings, kept apart so index damage cannot erase them
    state.lock      the inter-process lock
    state.lock.queue  writers waiting for it, in arrival order (:mod:`jobgate.state.locking`)
    jobs/<id>.json  full record of one job
    jobs/<id>.log   combined output and timestamped progress lines; created empty
                    with ``O_EXCL`` to claim a new job's id (StateDir.new_job_id)

Rules:

* Every change is a read-modify-write inside :meth:`Store.transaction` (see
  :mod:`jobgate.state.transaction`), which holds an exclusive lock on ``state.lock``.
* Files are replaced atomically (temp file, fsync, ``os.replace``) or appended to
  (``finished.jsonl``) before the file that accounts for them is replaced, so a reader
  never sees half a commit and a writer killed at any instant leaves the last committed
  state intact. Lock-free reads are consistent.
* A reader costs what is active: ``active.json`` and one ``stat`` of the log; only
  ``status --all`` (and retention, now and then) reads every finished job.
* An unreadable or missing index beside job files is rebuilt from ``jobs/*.json`` by
  the next writer (an unreadable one first moved aside to
  ``active.json.corrupt-<time>``); a warning goes to stderr. A version 1 index
  (``state.json``) is read as is and migrated by the next writer, which keeps it as
  ``state.json.v1-<time>``.
* Files are 0600, folders 0700.
"""

from __future__ import annotations

from jobgate.state.errors import LockTimeout
from jobgate.state.fileio import (
    CorruptFile,
    append_line,
    atomic_write,
    log_line,
    read_json,
    remove_stale_temp_files,
    warn,
    write_json,
)
from jobgate.state.files import DEFAULT_LOCK_TIMEOUT, Snapshot, StateDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobgate.state.transaction import Transaction

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "CorruptFile",
    "LockTimeout",
    "Snapshot",
    "Store",
    "append_line",
    "atomic_write",
    "log_line",
    "read_json",
    "remove_stale_temp_files",
    "warn",
    "write_json",
]


class Store(StateDir):
    """One workspace's state directory, read and written."""

    def transaction(self, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Transaction:
        """``with store.transaction() as tx:`` — a locked read-modify-write."""
        from jobgate.state.transaction import Transaction  # writers only

        return Transaction(self, timeout)
