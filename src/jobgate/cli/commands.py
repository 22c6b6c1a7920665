"""The subcommands' handlers: each takes the parsed arguments and returns an exit code.

Handlers import what they need lazily, so ``jobgate status`` pays only for the status
path. Shared helpers (:func:`emit`, :func:`open_store`, :func:`session_of`) are used by the
extension subcommands (task, doctor, hook) too.
"""

from __future__ import annotations

import os
import sys

from jobgate.state.errors import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, JobgateError

#: ``result`` without a job looks for the session's newest finished job among this many
#: most recently finished jobs first, then among all of them
RECENT_POOL = 50

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from jobgate.state import model
    from jobgate.state.files import Snapshot
    from jobgate.state.store import Store


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def open_store(args: argparse.Namespace, *, create: bool = False) -> tuple[str, Store]:
    from jobgate.state.store import Store
    from jobgate.state.workspace import state_dir_for

    root, state_dir = state_dir_for(getattr(args, "cwd", None))
    store = Store(state_dir, root)
    if create:
        store.ensure()
    else:
        store.exists()  # refuses a symlinked / foreign state dir
    return root, store


def session_of(args: argparse.Namespace) -> str | None:
    value = getattr(args, "session", None)
    if value:
        return str(value)
    return os.environ.get("JOBGATE_SESSION_ID") or None


# -- run ---------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from jobgate.cli import queue_opts
    from jobgate.jobs import launch

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise JobgateError("missing command: give it after --, e.g. jobgate run -- make test")
    _root, store = open_store(args, create=True)
    from jobgate.state import config_file

    config_file.read_or_hint(store)  # a damaged config.json: say how to get out of it
    cwd = os.path.realpath(getattr(args, "cwd", None) or os.getcwd())
    common = dict(cwd=cwd, kind=args.kind, name=args.name, session_id=session_of(args))
    from jobgate.cli.isolation import WORKTREE_KEYS, isolated, until_recorded

    common, iso = isolated(store, common, getattr(args, "worktree", False))  # run --worktree
    with until_recorded(iso):
        if queue_opts.queue_if_asked(args, store, command, common, background=args.background):
            return EXIT_OK
    if args.background:
        with until_recorded(iso):
            job = launch.start_background(store, command, **common)
        if args.json:
            from jobgate.cli.render import to_json

            keys = ("id", "status", "pid", "name", "logFile", *WORKTREE_KEYS)
            emit(to_json({k: job.get(k) for k in keys if k in job}))
        else:
            emit(
                f"{job['id']}\nstarted in the background (pid {job['pid']}); "
                f"follow: jobgate log {job['id']} --follow"
            )
        return EXIT_OK
    job, code = launch.run_foreground(
        store,
        command,
        stdout_to_stderr=args.json,  # --json: stdout is the record alone
        **common,
    )
    if args.json:
        from jobgate.cli.render import to_json

        emit(to_json({"job": job}))
    return code


# -- status / result / log -----------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from jobgate.cli import render
    from jobgate.jobs import refresh
    from jobgate.state import model

    root, store = open_store(args)
    if args.job is not None:  # "" is a bad reference, not "no reference"
        jobs, _lost = refresh.load(store, finished=0)
        job = refresh.full_record(store, refresh.resolve(store, jobs, args.job))
        if args.json:
            emit(render.to_json({"job": job}))
        else:
            emit(render.job_text(job))
        return EXIT_OK
    if args.all:
        return _status_all_json(root, store) if args.json else _status_all_text(root, store)
    jobs, _lost = refresh.load(store, finished=None if args.all else render.RECENT_FINISHED)
    shown = [j for j in jobs if not model.is_active(j)]
    total: int | None = None  # how many finished jobs there are (the recent view only)
    if not args.all:
        from jobgate.state.fileio import CorruptFile

        try:
            snap = store.snapshot()
            # a job found dead that this call could not write down is active there
            indexed = {j["id"] for j in snap.active}
            total = snap.finished_count() + sum(j["id"] in indexed for j in shown)
        except CorruptFile:  # unreadable and not rebuilt (read-only): count job files
            total = max(len(shown), len(store.job_ids()) - (len(jobs) - len(shown)))
    if args.json:
        hidden = None if total is None else max(0, total - len(shown))
        out = render.status_json(
            root, store.state_dir, model.sort_newest_first(jobs), finished_not_shown=hidden
        )
        sys.stdout.flush()
        sys.stdout.buffer.writelines(out)
        sys.stdout.buffer.flush()
    else:
        emit(render.status_text(jobs, show_all=args.all, workspace_root=root, finished_total=total))
    return EXIT_OK


def _status_all_text(root: str, store: Store) -> int:
    """``status --all``: the active jobs (refreshed), then every finished job's row from
    the rendered rows kept beside the index (:mod:`jobgate.cli.finished_rows`)."""
    from jobgate.cli import finished_rows, render
    from jobgate.jobs import refresh
    from jobgate.state import model
    from jobgate.state.fileio import CorruptFile

    jobs, _lost = refresh.load(store, finished=0)
    rows = None
    try:
        snap = store.snapshot()
    except CorruptFile:  # unreadable and not rebuilt (read-only): the parsed jobs below
        pass
    else:
        jobs = _still_active(jobs, snap)
        rows = finished_rows.rows(snap, [j for j in jobs if not model.is_active(j)])
    if rows is None:  # the log is not byte for byte what jobgate wrote: parse it all
        jobs, _lost = refresh.load(store)
    emit(render.status_text(jobs, show_all=True, workspace_root=root, rows=rows))
    return EXIT_OK


def _still_active(jobs: list[model.Job], snap: Snapshot) -> list[model.Job]:
    """``jobs`` (as ``refresh.load`` gave them) less those the log now holds: the jobs this
    call found dead and wrote down are in the log, which ``status --all`` shows on its own;
    those it could only mark in its view (a read-only state dir) are still active in
    ``snap`` and stay, as it found them."""
    indexed = {str(j["id"]) for j in snap.active}
    return [j for j in jobs if j["id"] in indexed]


def _status_all_json(root: str, store: Store) -> int:
    """``status --all --json``: the active jobs (refreshed), newest first, then every
    finished job in the order they finished (oldest first), its log line unparsed."""
    from jobgate.cli import render
    from jobgate.jobs import refresh
    from jobgate.state import model

    jobs, _lost = refresh.load(store, finished=0)
    snap = store.snapshot()
    raw = snap.finished_lines()
    if raw is None:  # the log is not byte for byte what jobgate wrote: parse it
        jobs, _lost = refresh.load(store)
        jobs = model.sort_newest_first([j for j in jobs if model.is_active(j)]) + [
            j for j in reversed(jobs) if not model.is_active(j)
        ]
        raw = b""
    else:
        jobs = model.sort_newest_first(_still_active(jobs, snap))
    out = render.status_json(root, store.state_dir, jobs, raw)
    sys.stdout.flush()
    sys.stdout.buffer.writelines(out)
    sys.stdout.buffer.flush()
    return EXIT_OK


def cmd_result(args: argparse.Namespace) -> int:
    from jobgate.cli import render, result_view
    from jobgate.jobs import control, refresh
    from jobgate.state import model

    _root, store = open_store(args)
    if args.job is not None:
        jobs, _lost = refresh.load(store, finished=0)
        job = refresh.resolve(store, jobs, args.job)
    else:
        jobs, _lost = refresh.load(store, finished=RECENT_POOL)
        try:
            job = control.pick(jobs, None, session_id=session_of(args), want="finished")
        except JobgateError:  # not among the most recent: look through all of them
            jobs, _lost = refresh.load(store)
            job = control.pick(jobs, None, session_id=session_of(args), want="finished")
    if model.is_active(job):
        raise JobgateError(
            f"job {job['id']} is still {job.get('status')}; wait for it: jobgate wait {job['id']}",
            EXIT_FAILED,
        )
    full = refresh.full_record(store, job)
    cut = result_view.output_cut(full)  # the output is the log's last 64 KiB: was it cut?
    shown, doc = result_view.result_views(full, cut)  # a review job: with its findings
    if args.json:
        from jobgate.agents.threads import facts

        emit(render.to_json({**doc, **facts(full)}))
    else:
        emit(result_view.result_text(shown, cut))
    # like ``wait``: a script can tell a failed or cancelled job's result from a success
    return EXIT_OK if full.get("status") == model.COMPLETED else EXIT_FAILED


def cmd_log(args: argparse.Namespace) -> int:
    from jobgate.cli import logview
    from jobgate.jobs import refresh

    _root, store = open_store(args)
    jobs, _lost = refresh.load(store, finished=0)
    job = refresh.resolve(store, jobs, args.job)
    return logview.show(store, str(job["id"]), follow=args.follow, tail=args.tail)


def cmd_wait(args: argparse.Namespace) -> int:
    from jobgate.cli import many, render
    from jobgate.jobs import control, refresh
    from jobgate.state import model

    _root, store = open_store(args)
    jobs, _lost = refresh.load(store, finished=0)
    refs = list(args.job or [])
    if args.all or len(refs) > 1:
        return many.wait_many(args, store, jobs, refs)
    if refs:
        job = refresh.resolve(store, jobs, refs[0])
    else:
        job = control.pick(jobs, None, session_id=session_of(args), want="active")
    final = control.wait(store, str(job["id"]), args.timeout)
    if final is None:
        if args.json:
            emit(render.to_json({"job": job, "timedOut": True}))
        else:
            sys.stderr.write(f"jobgate: timed out waiting for {job['id']}\n")
        return EXIT_TIMEOUT
    if args.json:
        emit(render.to_json({"job": final, "timedOut": False}))
    else:
        emit(render.job_line(final))
    return EXIT_OK if final.get("status") == model.COMPLETED else EXIT_FAILED


def cmd_cancel(args: argparse.Namespace) -> int:
    from jobgate.cli import many, render
    from jobgate.jobs import control, refresh
    from jobgate.state import model

    _root, store = open_store(args)
    jobs, _lost = refresh.load(store, finished=0, unwritable_fallback=False)  # must write
    if getattr(args, "all", False):
        return many.cancel_all(args, store, jobs)
    if args.job is not None:
        job = refresh.resolve(store, jobs, args.job)
    else:
        job = control.pick(jobs, None, session_id=session_of(args), want="active")
    if not model.is_active(job):
        return _cancel_finished(args, store, job, dict(_lost).get(str(job["id"])))
    outcome = control.cancel(store, str(job["id"]), grace=args.grace)
    final = outcome["job"]
    if args.json:
        emit(render.to_json(outcome))
    else:
        for problem in outcome["problems"]:
            sys.stderr.write(f"jobgate: {problem}\n")
        emit(_status_line(final))
    return EXIT_OK if final.get("status") == model.CANCELLED else EXIT_FAILED


def _status_line(job: dict[str, Any]) -> str:
    """``ID: STATUS (why)``, without an empty ``(None)`` when there is no why."""
    why = job.get("errorMessage")
    return f"{job['id']}: {job.get('status')}" + (f" ({why})" if why else "")


def _cancel_finished(
    args: argparse.Namespace, store: Store, job: dict[str, Any], found_dead: str | None
) -> int:
    """``cancel`` of a job that is not active: nothing of it is signalled except processes
    of its tree that outlived it (see :func:`jobgate.jobs.control.end_leftovers`). Exit 0 if
    such leftovers were ended, else 1 with the job's status."""
    from jobgate.cli import render
    from jobgate.jobs import control

    job_id = str(job["id"])
    problems: list[str] = []
    if found_dead is not None:
        # this very call found its processes gone (or their pids reused) and recorded it
        # lost: say so, rather than only "not active"; none of those pids was signalled
        problems.append(f"job {job_id} was already dead, nothing was signalled: {found_dead}")
    left = control.end_leftovers(store, job_id, grace=args.grace)
    problems += left["problems"]
    if left["signalled"]:
        summary = (
            f"{_status_line(job)}; ended "
            f"{len(left['signalled'])} leftover process(es) of it: {left['signalled']}"
        )
    elif found_dead is None:
        raise JobgateError(f"job {job_id} is not active (status: {job.get('status')})", EXIT_FAILED)
    else:
        summary = _status_line(job)
    if args.json:
        emit(render.to_json({"job": job, **left, "problems": problems}))
    else:
        for problem in problems:
            sys.stderr.write(f"jobgate: {problem}\n")
        emit(summary)
    return EXIT_OK if left["signalled"] else EXIT_FAILED


def cmd_sweep(args: argparse.Namespace) -> int:
    from jobgate.cli import render
    from jobgate.jobs import refresh

    _root, store = open_store(args)
    # sweep's point is to write: a read-only state dir is an error, not a warning
    _jobs, lost = refresh.load(
        store, finished=0, persist=not args.dry_run, unwritable_fallback=False
    )
    if args.json:
        changed = [{"id": job_id, "reason": reason} for job_id, reason in lost]
        emit(render.to_json({"dryRun": args.dry_run, "changed": changed}))
    else:
        emit(render.sweep_text(lost, args.dry_run))
    return EXIT_OK
