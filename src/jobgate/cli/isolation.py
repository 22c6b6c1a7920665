"""``--worktree`` on ``jobgate run`` and ``jobgate task``: the job's worktree is made
before the job is recorded (its branch is named after the job's id), and removed again
if the job is never recorded. The work is :mod:`jobgate.agents.worktrees`."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from jobgate.agents.worktrees import Isolation
    from jobgate.state.store import Store

#: what a background start with --worktree prints besides the id
WORKTREE_KEYS = ("worktreePath", "worktreeBranch", "worktreeBase")


def isolated(
    store: Store, fields: dict[str, Any], wanted: bool
) -> tuple[dict[str, Any], Isolation | None]:
    """With ``wanted``: make the job's worktree (from ``fields["cwd"]``) and return the
    launch keyword arguments of a job run there, and the worktree. Without: ``fields``
    unchanged, None. Where it runs, and that it starts without the user's uncommitted
    changes, goes to stderr: stdout stays the id (or the JSON)."""
    if not wanted:
        return fields, None
    from jobgate.agents import worktrees
    from jobgate.state.model import one_line

    iso = worktrees.isolate(store, str(fields["cwd"]), str(fields.get("kind") or "run"))
    sys.stderr.write(
        f"jobgate: job {iso.job_id} runs in the worktree {one_line(iso.path)} "
        f"(branch {iso.branch}, from {iso.base[:12]})\n"
    )
    notice = iso.notice()
    if notice:
        sys.stderr.write(f"jobgate: note: {notice}\n")
    return worktrees.launch_fields(iso, fields), iso


def until_recorded(iso: Isolation | None) -> Any:
    """A context manager removing ``iso``'s worktree if its block fails (no job was
    recorded); for no worktree, one that does nothing."""
    if iso is None:
        return _NoWorktree()
    from jobgate.agents.worktrees import until_recorded as guard

    return guard(iso)


class _NoWorktree:
    """``contextlib.nullcontext()`` without importing :mod:`contextlib` (with
    ``collections`` and ``functools``: ~1.5 ms of every ``jobgate run``)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
