"""``jobgate queue`` (what waits, in order, and why), ``jobgate queue move`` and
``jobgate restart``: the command line of :mod:`jobgate.jobs.queue` and
:mod:`jobgate.jobs.lifecycle`."""

from __future__ import annotations

import sys

from jobgate.state.errors import EXIT_FAILED, EXIT_OK, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

QUEUE_EPILOG = """examples:
  jobgate queue                          # what waits, in start order, and why
  jobgate queue --json
  jobgate queue move run-mid1 --first    # start it next in its group
  jobgate queue move run-mid1 --before run-mid2
"""

RESTART_EPILOG = """examples:
  jobgate restart run-mid1               # same command, cwd, name, kind and agent
  jobgate restart run-mid1 --queue --json
"""


def add_parser(subparsers: Any) -> None:
    from jobgate.cli.args import subcommand

    p = subcommand(
        subparsers, "queue", "list queued jobs in start order, with why they wait", QUEUE_EPILOG
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_queue, action=None)
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    m = subcommand(sub, "move", "change a queued job's place in its group", QUEUE_EPILOG)
    m.add_argument("job", help="the queued job (id or unique prefix)")
    where = m.add_mutually_exclusive_group(required=True)
    where.add_argument("--first", action="store_true", help="first in its group")
    where.add_argument("--before", metavar="JOB", help="right before this queued job")
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(handler=cmd_queue_move)

    r = subcommand(
        subparsers,
        "restart",
        "run a job again as a new job (also a lost or cancelled one), linked to it",
        RESTART_EPILOG,
    )
    r.add_argument("job", help="job id or unique prefix")
    r.add_argument("--queue", action="store_true", help="queue it instead of starting it now")
    r.add_argument("--json", action="store_true", help="print JSON")
    r.set_defaults(handler=cmd_restart)


def _open(args: argparse.Namespace) -> Any:
    from jobgate.cli.commands import open_store

    return open_store(args)[1]


def entries(store: Any) -> list[dict[str, Any]]:
    """The queue as ``jobgate queue --json`` lists it."""
    import time

    from jobgate.jobs import dispatch, queue, refresh

    jobs, _lost = refresh.load(store, finished=0)
    now = time.time()
    out = []
    for entry in queue.waiting(jobs, dispatch.status_lookup(store), dispatch.limits(store), now):
        job = entry.job
        out.append(
            {
                "id": job.get("id"),
                "name": job.get("name"),
                "group": entry.group,
                "position": entry.position,
                "reason": entry.reason,
                "detail": entry.detail,
                "after": job.get("after") or [],
                "createdAt": job.get("createdAt"),
            }
        )
    return out


def cmd_queue(args: argparse.Namespace) -> int:
    from jobgate.cli.commands import emit
    from jobgate.cli.render import to_json
    from jobgate.state.model import one_line

    store = _open(args)
    listed = entries(store)
    if args.json:
        emit(to_json({"queue": listed}))
        return EXIT_OK
    if not listed:
        emit("nothing queued")
        return EXIT_OK
    for e in listed:
        name = one_line(str(e["name"] or ""))[:40]
        place = f"{e['group']:<10} #{e['position']:<3}"
        emit(f"{place} {e['id']}  {e['reason']:<10} {e['detail']}  {name}")
    return EXIT_OK


def cmd_queue_move(args: argparse.Namespace) -> int:
    from jobgate.cli.commands import emit
    from jobgate.cli.render import to_json
    from jobgate.jobs import dispatch, queue, refresh
    from jobgate.state import model

    store = _open(args)
    jobs, _lost = refresh.load(store, finished=0)
    job = refresh.resolve(store, jobs, args.job)
    target = refresh.resolve(store, jobs, args.before) if args.before else None
    with store.transaction() as tx:
        import time

        now = time.time()
        moved = tx.get(str(job["id"]))
        if moved is None or not queue.is_waiting(moved, now):
            raise JobgateError(f"job {job['id']} is not waiting in the queue", EXIT_FAILED)
        group = queue.group_of(moved)
        others = [j for j in tx.jobs if j.get("id") != moved["id"]]
        before = None
        if target is not None:
            before = tx.find(str(target["id"]))
            if before is None or not queue.is_waiting(before, now):
                raise JobgateError(f"job {target['id']} is not waiting in the queue", EXIT_FAILED)
            if queue.group_of(before) != group:
                raise JobgateError(
                    f"job {target['id']} is in group {queue.group_of(before)}, not {group}"
                )
            if before["id"] == moved["id"]:
                raise JobgateError("a job cannot move before itself")
        rank = queue.rank_before(others, before, group)
        tx.put(model.touch(moved, queueRank=rank))
    dispatch.advance(store)
    listed = [e for e in entries(store) if e["id"] == job["id"]]
    if args.json:
        emit(to_json({"moved": job["id"], "queue": listed}))
    else:
        where = f"#{listed[0]['position']} in group {listed[0]['group']}" if listed else "started"
        emit(f"{job['id']}: now {where}")
    return EXIT_OK


def cmd_restart(args: argparse.Namespace) -> int:
    from jobgate.cli import queue_opts
    from jobgate.cli.commands import emit
    from jobgate.cli.render import to_json
    from jobgate.jobs import refresh, restart

    store = _open(args)
    jobs, _lost = refresh.load(store, finished=0)
    old = refresh.resolve(store, jobs, args.job)
    fresh = restart.restart(store, str(old["id"]), queued=args.queue)
    if args.queue:
        queue_opts.report(store, fresh, args.json)
        return EXIT_OK
    if args.json:
        keys = ("id", "status", "pid", "name", "kind", "retryOf", "logFile")
        emit(to_json({k: fresh.get(k) for k in keys}))
    else:
        emit(f"{fresh['id']}\nrestarted {old['id']} (pid {fresh.get('pid')})")
    sys.stdout.flush()
    return EXIT_OK
