"""``wait JOB JOB...`` / ``wait --all`` and ``cancel --all``: the commands that act on
several jobs at once. Exit 0 only when every job ended as asked (completed; cancelled)."""

from __future__ import annotations

import sys
import time

from jobgate.state.errors import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from jobgate.state.store import Store


def _selected(args: argparse.Namespace, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from jobgate.state import model

    session = getattr(args, "session", None) or None
    return [
        j
        for j in model.sort_newest_first(jobs)
        if model.is_active(j) and (session is None or j.get("sessionId") == session)
    ]


def wait_many(
    args: argparse.Namespace, store: Store, jobs: list[dict[str, Any]], refs: list[str]
) -> int:
    """Wait for every named job (or, with ``--all``, every active one): 0 only if all
    completed, 1 if one did not, 124 on timeout."""
    from jobgate.cli import render
    from jobgate.jobs import control, refresh
    from jobgate.state import model

    if args.all and refs:
        raise JobgateError("give job ids or --all, not both")
    targets = [refresh.resolve(store, jobs, ref) for ref in refs] if refs else _selected(args, jobs)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    finals: list[dict[str, Any]] = []
    timed_out = False
    for job in targets:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        final = control.wait(store, str(job["id"]), left)
        if final is None:
            timed_out = True
            finals.append(refresh.lookup(store, [], str(job["id"])) or job)
            continue
        finals.append(final)
    if args.json:
        emit(render.to_json({"jobs": finals, "timedOut": timed_out}))
    else:
        for final in finals:
            emit(render.job_line(final))
        if timed_out:
            sys.stderr.write("jobgate: timed out waiting for the jobs\n")
    if timed_out:
        return EXIT_TIMEOUT
    ok = all(f.get("status") == model.COMPLETED for f in finals)
    return EXIT_OK if ok else EXIT_FAILED


def cancel_all(args: argparse.Namespace, store: Store, jobs: list[dict[str, Any]]) -> int:
    """Cancel every active job of the workspace (of ``--session``): the queued ones
    first, so none of them starts in a slot a cancelled job frees."""
    from jobgate.cli import render
    from jobgate.jobs import control
    from jobgate.state import model

    if args.job is not None:
        raise JobgateError("give a job id or --all, not both")
    targets = _selected(args, jobs)
    targets.sort(key=lambda j: j.get("status") != model.QUEUED)
    outcomes = []
    for job in targets:
        try:
            outcomes.append(control.cancel(store, str(job["id"]), grace=args.grace))
        except JobgateError:  # it ended meanwhile
            continue
    if args.json:
        emit(render.to_json({"cancelled": outcomes}))
    else:
        if not outcomes:
            emit("no active job to cancel")
        for outcome in outcomes:
            for problem in outcome["problems"]:
                sys.stderr.write(f"jobgate: {problem}\n")
            final = outcome["job"]
            emit(f"{final['id']}: {final.get('status')}")
    ok = all(o["job"].get("status") == model.CANCELLED for o in outcomes)
    return EXIT_OK if ok else EXIT_FAILED


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
