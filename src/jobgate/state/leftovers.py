"""What killed writers leave in a state dir, and its removal at the commits that rewrite
the finished log (:mod:`jobgate.state.transaction`)."""

from __future__ import annotations

import os
import time

from jobgate.state import model
from jobgate.state.fileio import CorruptFile, read_json, remove_stale_temp_files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobgate.state.files import StateDir


def sweep(store: StateDir, everything: list[model.Job], min_age: float) -> None:
    """Remove what killed writers left: temp files, and logs and agents' final-message
    files that no record names (a ``run --background`` killed before its record was
    committed, or a disk that was full), and job files of such launches (an active
    record no index names); a finished job's file is never removed here. The age
    threshold spares a file whose record is about to be committed."""
    remove_stale_temp_files(store.state_dir)
    remove_stale_temp_files(store.jobs_dir)
    ids = {str(j.get("id")) for j in everything}
    # by name: a record may spell the state root another way (a symlinked
    # $JOBGATE_HOME), and these files only ever live directly in jobs/
    named = {os.path.basename(str(j.get("resultFile"))) for j in everything}
    cutoff = time.time() - min_age
    try:
        names = os.listdir(store.jobs_dir)
    except OSError:
        return
    for name in names:
        path = os.path.join(store.jobs_dir, name)
        if name.endswith(".log"):
            job_id = name[: -len(".log")]
            if job_id in ids or not model.is_safe_id(job_id):
                continue
            if os.path.lexists(os.path.join(store.jobs_dir, f"{job_id}.json")):
                continue
        elif name.endswith(".json"):
            # a launch killed between writing its job file and its commit: an active
            # record no index names is no job (StateDir.lookup)
            job_id = name[: -len(".json")]
            if job_id in ids or not model.is_safe_id(job_id):
                continue
            if not _uncommitted_launch(path, cutoff):
                continue
        elif not name.endswith(".last-message") or name in named:
            continue
        try:
            if os.lstat(path).st_mtime < cutoff:
                os.unlink(path)
        except OSError:
            continue


def _uncommitted_launch(path: str, cutoff: float) -> bool:
    """Whether ``path`` is an old job file holding an active record (the index does not
    name it: the caller checked)."""
    try:
        if os.lstat(path).st_mtime >= cutoff:
            return False
        job = read_json(path)
    except (OSError, CorruptFile):
        return False
    return isinstance(job, dict) and model.is_active(job)
