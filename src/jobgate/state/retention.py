"""Retention (pure): which finished jobs ``maxJobs`` keeps, and which it keeps past that
for a reason they carry (``keepReason``: a job whose worktree still holds its change)."""

from __future__ import annotations

from jobgate.state.model import is_active, sort_newest_first

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobgate.state.model import Job


def prune(
    jobs: list[Job], keep_finished: int, spare: frozenset[str] = frozenset()
) -> tuple[list[Job], list[Job]]:
    """Split ``jobs`` into (kept, dropped): every active job is kept, plus the newest
    ``keep_finished`` finished ones, plus those whose id is in ``spare`` (a job that
    has just finished, so its outcome can still be read once even with
    ``keep_finished`` 0), plus those holding a ``keepReason`` (a job whose worktree
    still holds its change: see :func:`held_back`). Order of ``kept`` follows the input."""
    drop_ids = {j["id"] for j in _beyond(jobs, keep_finished, spare) if not j.get(KEEP_REASON)}
    kept = [j for j in jobs if j.get("id") not in drop_ids]
    dropped = [j for j in jobs if j.get("id") in drop_ids]
    return kept, dropped


#: retention never prunes a job with this field (why, e.g. its worktree holds its change)
KEEP_REASON = "keepReason"


def _beyond(jobs: list[Job], keep_finished: int, spare: frozenset[str]) -> list[Job]:
    finished = [j for j in sort_newest_first(jobs) if not is_active(j)]
    return [j for j in finished[max(keep_finished, 0) :] if j["id"] not in spare]


def held_back(
    jobs: list[Job], keep_finished: int, spare: frozenset[str] = frozenset()
) -> list[Job]:
    """The finished jobs past ``keep_finished`` that :func:`prune` keeps for their reason."""
    return [j for j in _beyond(jobs, keep_finished, spare) if j.get(KEEP_REASON)]
