"""A job in its own git worktree (``--worktree``), and what becomes of its change.

A job started with ``--worktree`` runs in a fresh ``git worktree`` of the user's
repository, on a new branch ``jobgate/<job-id>`` from ``HEAD``, in the workspace's state
dir (``<state dir>/worktrees/<job-id>``), so two agents started this way never write the
same files and neither writes the user's checkout. The record carries
``worktreePath``, ``worktreeBranch``, ``worktreeBase`` (the commit it started from) and
``worktreeRepo`` (the user's top level).

The job's change is its worktree's content against ``worktreeBase``: committed on its
branch, staged, unstaged and untracked (:func:`jobgate.agents.git.change_since`).
``apply`` merges it three-way into the user's tree (a conflict changes nothing);
``discard`` removes the worktree and its branch.

Who may remove a worktree: only ``discard``, never while the job runs (its liveness is
verified, not read from the record), and one holding a change never applied only with
``--force``. Retention never prunes the record of a job whose worktree still exists: the
record carries a ``keepReason`` (:data:`jobgate.state.retention.KEEP_REASON`) until
``discard`` removes the worktree, and pruning says which jobs it kept for it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from jobgate.agents import git
from jobgate.state import model, retention
from jobgate.state.errors import EXIT_FAILED, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from jobgate.state.store import Store

BRANCH_PREFIX = "jobgate/"


@dataclass(frozen=True)
class Isolation:
    """A worktree made for a job about to be launched."""

    job_id: str
    repo: str
    path: str
    branch: str
    base: str
    #: where the job runs: the worktree's counterpart of the directory it was asked for
    cwd: str
    #: the user's tree had uncommitted changes, which the worktree does not have
    dirty: bool

    def fields(self) -> dict[str, Any]:
        """The record fields of a job run in this worktree."""
        return {
            "worktreePath": self.path,
            "worktreeBranch": self.branch,
            "worktreeBase": self.base,
            "worktreeRepo": self.repo,
            retention.KEEP_REASON: _pending_reason(self.job_id),
        }

    def notice(self) -> str | None:
        """What to tell the user about the worktree's starting point, if anything."""
        if not self.dirty:
            return None
        return (
            f"your working tree has uncommitted changes; the worktree starts from HEAD "
            f"({git.short(self.base)}) without them"
        )


def _pending_reason(job_id: str) -> str:
    return (
        f"its worktree holds the job's change (jobgate diff {job_id}; "
        f"jobgate apply {job_id} or jobgate discard {job_id})"
    )


def _applied_reason(job_id: str) -> str:
    return f"its worktree still exists (jobgate discard {job_id})"


def worktrees_dir(store: Store) -> str:
    return os.path.join(store.state_dir, "worktrees")


def isolate(store: Store, cwd: str, kind: str) -> Isolation:
    """Make the worktree of a new job of ``kind`` started from ``cwd``; the job's id is
    chosen here, since the branch is named after it. Nothing is made when ``cwd`` is not
    in a git repository or the repository has no commit to start from."""
    from jobgate.state.workspace import ensure_private_dir

    repo = git.toplevel(cwd)
    base = git.head(repo)
    if base is None:
        raise JobgateError(
            f"the repository {repo} has no commits yet: --worktree starts from HEAD; commit first"
        )
    dirty = git.is_dirty(repo)
    store.ensure()
    job_id = store.new_job_id(kind)
    ensure_private_dir(worktrees_dir(store))
    sweep_orphans(store, repo)
    path = os.path.join(worktrees_dir(store), job_id)
    branch = BRANCH_PREFIX + job_id
    git.worktree_add(repo, path, branch, base)
    rel = os.path.relpath(os.path.realpath(cwd), repo)
    inside = path if rel == "." or rel.startswith("..") else os.path.join(path, rel)
    return Isolation(
        job_id, repo, path, branch, base, inside if os.path.isdir(inside) else path, dirty
    )


#: a worktree no record names is removed once this old (its launch was killed before the
#: record was committed, so nothing ever ran in it; the age spares one being launched)
ORPHAN_SECONDS = 300.0


def sweep_orphans(store: Store, repo: str, min_age: float = ORPHAN_SECONDS) -> list[str]:
    """Remove ``repo``'s worktrees in the state dir that no job record names — what a
    launcher killed between ``git worktree add`` and its commit leaves — with their
    ``jobgate/<id>`` branches; returns the ids removed. A worktree whose job is recorded
    (running or not) is never touched here: only ``discard`` removes those."""
    import time

    folder = worktrees_dir(store)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    candidates = []
    cutoff = time.time() - min_age
    for name in names:
        path = os.path.join(folder, name)
        try:
            old = os.lstat(path).st_mtime < cutoff
        except OSError:
            continue
        if old and model.is_safe_id(name) and not os.path.lexists(store.job_path(name)):
            candidates.append(name)
    if not candidates:
        return []
    snap = store.snapshot()
    ours = set(git.worktrees(repo))
    removed = []
    for name in candidates:
        path = os.path.join(folder, name)
        if snap.lookup(name) is not None or os.path.realpath(path) not in ours:
            continue  # recorded after all, or another repository's
        try:
            git.worktree_remove(repo, path, BRANCH_PREFIX + name)
        except JobgateError:
            continue
        removed.append(name)
    return removed


def abandon(iso: Isolation) -> None:
    """Undo :func:`isolate` for a job that was never recorded."""
    try:
        git.worktree_remove(iso.repo, iso.path, iso.branch)
    except JobgateError:
        pass


@contextmanager
def until_recorded(iso: Isolation | None) -> Iterator[None]:
    """Remove ``iso``'s worktree again if the block fails (the job was not recorded)."""
    try:
        yield
    except BaseException:
        if iso is not None:
            abandon(iso)
        raise


def launch_fields(iso: Isolation, fields: dict[str, Any]) -> dict[str, Any]:
    """``launch.start_background``/``run_foreground`` keyword arguments ``fields`` for a
    job run in ``iso``: its id, its directory and the worktree's record fields."""
    extra = dict(fields.get("extra") or {})
    extra.update(iso.fields())
    return {**fields, "cwd": iso.cwd, "job_id": iso.job_id, "extra": extra}


# -- a job's worktree ----------------------------------------------------------------
def job_with_worktree(store: Store, ref: str) -> dict[str, Any]:
    """The full, freshly reconciled record of job ``ref``, which must have a worktree."""
    from jobgate.jobs import refresh

    jobs, _lost = refresh.load(store, finished=0)
    job = refresh.full_record(store, refresh.resolve(store, jobs, ref))
    job_id = job["id"]
    if not isinstance(job.get("worktreePath"), str):
        raise JobgateError(
            f"job {job_id} has no worktree (only jobs started with --worktree have one)"
        )
    if job.get("worktreeRemovedAt"):
        raise JobgateError(f"job {job_id}'s worktree was discarded at {job['worktreeRemovedAt']}")
    return job


def change(job: dict[str, Any]) -> git.Change:
    """What the job changed in its worktree since its base commit."""
    path = str(job["worktreePath"])
    if not os.path.isdir(path):
        raise JobgateError(
            f"the worktree of job {job['id']} is gone ({path}); jobgate discard {job['id']} "
            "cleans up its branch",
            EXIT_FAILED,
        )
    return git.change_since(path, str(job.get("worktreeBase") or "") or None)


def digest(diff: bytes) -> str:
    return hashlib.sha256(diff).hexdigest()


def apply(store: Store, job: dict[str, Any]) -> git.Applied:
    """Merge the finished job's change into the user's tree (``worktreeRepo``); on a
    conflict nothing changes. The record notes what was applied."""
    job_id = str(job["id"])
    if model.is_active(job):
        raise JobgateError(
            f"job {job_id} is still {job.get('status')}; apply its change once it ended: "
            f"jobgate wait {job_id}",
            EXIT_FAILED,
        )
    diff = change(job).diff
    repo = str(job.get("worktreeRepo") or "")
    target = git.toplevel(repo)
    outcome = git.apply_three_way(target, diff)
    if outcome.ok and diff:
        changes = {"appliedAt": model.now_iso(), "appliedDigest": digest(diff)}
        _update(store, job_id, **changes, **{retention.KEEP_REASON: _applied_reason(job_id)})
    return outcome


def unapplied(job: dict[str, Any], current: git.Change) -> bool:
    """Whether the worktree holds a change that was never applied as it is now."""
    return not current.empty and job.get("appliedDigest") != digest(current.diff)


def discard(store: Store, job: dict[str, Any], *, force: bool) -> dict[str, Any]:
    """Remove the job's worktree and branch; the record stays (``worktreeRemovedAt``).
    Refused while the job really runs, and, without ``force``, while its worktree holds
    a change never applied."""
    job_id = str(job["id"])
    if model.is_active(job):
        raise JobgateError(
            f"job {job_id} is still {job.get('status')}: a running job's worktree is never "
            f"removed (cancel it first: jobgate cancel {job_id})",
            EXIT_FAILED,
        )
    path = str(job["worktreePath"])
    if os.path.isdir(path) and not force:
        current = change(job)
        if unapplied(job, current):
            raise JobgateError(
                f"job {job_id}'s worktree holds changes never applied "
                f"({git.join_paths(current.files)}): jobgate apply {job_id}, or "
                f"jobgate discard {job_id} --force to throw them away",
                EXIT_FAILED,
            )
    with store.transaction() as tx:
        fresh = tx.get(job_id)
        if fresh is None or model.is_active(fresh):
            raise JobgateError(f"job {job_id} is active again; nothing removed", EXIT_FAILED)
    repo = str(job.get("worktreeRepo") or "")
    if not os.path.isdir(repo):
        raise JobgateError(f"the repository of job {job_id} is gone ({repo})", EXIT_FAILED)
    git.worktree_remove(repo, path, str(job.get("worktreeBranch") or "") or None)
    return _update(
        store, job_id, worktreeRemovedAt=model.now_iso(), **{retention.KEEP_REASON: None}
    )


def _update(store: Store, job_id: str, **changes: Any) -> dict[str, Any]:
    with store.transaction() as tx:
        job = tx.get(job_id)
        if job is None:
            raise JobgateError(f"job {job_id} is no longer recorded", EXIT_FAILED)
        updated = model.touch(job, **changes)
        if updated.get(retention.KEEP_REASON) is None:
            updated.pop(retention.KEEP_REASON, None)
        tx.put(updated)
    return updated
