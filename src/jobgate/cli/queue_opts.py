"""The queue and lifecycle options every launching command shares (``run``, ``task``;
``review`` takes them with one :func:`add_options` call): ``--queue``, ``--group``,
``--after``, ``--after-any``, ``--timeout``, ``--stall``, ``--retries``; what they and the
settings make of a launch (:func:`resolve`), and how a queued launch is reported."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, NoReturn

    from jobgate.state.store import Store


def _duration(text: str) -> float:
    from jobgate.state.config import parse_duration
    from jobgate.state.errors import JobgateError

    try:
        return parse_duration("duration", text)
    except JobgateError as exc:
        _refuse(exc.message.replace("bad value for duration: ", ""))


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        _refuse(f"expected a whole number, got {text!r}")
    if not 0 <= value <= 100:
        _refuse(f"expected a whole number from 0 to 100, got {text!r}")
    return value


def _group(text: str) -> str:
    if not text or len(text) > 64 or not all(c.isalnum() or c in "-_" for c in text):
        _refuse(f"bad group name {text!r} (letters, digits, - and _)")
    return text


def _refuse(why: str) -> NoReturn:
    """A value argparse reports as bad (argparse is imported only when one is parsed:
    run --background's fast path, jobgate.cli.fastargs, never gets here)."""
    import argparse

    raise argparse.ArgumentTypeError(why) from None


def add_options(p: argparse.ArgumentParser) -> None:
    """Add the queue and lifecycle options to a launching subcommand's parser."""
    g = p.add_argument_group("queue and lifecycle")
    g.add_argument(
        "--queue",
        action="store_true",
        help="wait in the queue for a free slot (maxParallel), then start; implies --background",
    )
    g.add_argument("--group", type=_group, metavar="G", help="queue group (implies --queue)")
    g.add_argument(
        "--after",
        action="append",
        metavar="JOB[,JOB...]",
        help="start once these jobs completed; if one did not, fail (implies --queue)",
    )
    g.add_argument(
        "--after-any", action="store_true", help="with --after: start however they ended"
    )
    g.add_argument(
        "--timeout",
        type=_duration,
        metavar="DURATION",
        help="end the job when it runs longer (90s, 30m, 2h): failed, phase timeout",
    )
    g.add_argument(
        "--stall",
        type=_duration,
        metavar="DURATION",
        help="end the job after that long without new output: failed, phase stalled",
    )
    g.add_argument(
        "--retries",
        type=_count,
        metavar="N",
        help="run a failed job again, up to N times, with backoff (1s, 2s, 4s, ...)",
    )


class Launch:
    """What the options and settings make of a launch. A plain class, not a dataclass:
    this module is imported by every ``run``, and ``dataclasses`` brings ``inspect``
    (measured: ~14 ms of a ~60 ms ``run --background``)."""

    def __init__(
        self,
        queued: bool,
        group: str | None = None,
        after: list[str] | None = None,
        after_any: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.queued = queued
        self.group = group
        self.after = list(after or [])
        self.after_any = after_any
        #: record fields: timeoutSeconds, stallSeconds, retriesLeft
        self.extra: dict[str, Any] = dict(extra or {})

    def queue_kwargs(self) -> dict[str, Any]:
        return {"group": self.group, "after": self.after, "after_any": self.after_any}


def resolve(
    args: argparse.Namespace, store: Store, *, background: bool, agent: str | None = None
) -> Launch:
    """The :class:`Launch` of ``args``: an option given wins, else the agent profile's
    setting (``agents.NAME.timeout``), else the workspace's (``timeout``, ``stall``,
    ``queueByDefault``). ``--after`` references are resolved to job ids (unique
    prefixes allowed); an unknown one is an error before anything is recorded."""
    import os

    from jobgate.state import config as config_mod
    from jobgate.state.errors import JobgateError

    stored = store.read_config() if os.path.isdir(store.state_dir) else {}
    settings = config_mod.effective(stored)
    own = settings["agentLimits"].get(agent, {}) if agent else {}
    extra: dict[str, Any] = {}
    for opt, key, record in (
        ("timeout", "timeout", "timeoutSeconds"),
        ("stall", "stall", "stallSeconds"),
    ):
        value = getattr(args, opt, None)
        if value is None:
            value = own.get(key, settings.get(key))
        if value is not None:
            extra[record] = value
    retries = getattr(args, "retries", None)
    if retries:
        extra["retriesLeft"] = retries
        extra["attempt"] = 1
    refs = [r.strip() for item in getattr(args, "after", None) or [] for r in item.split(",")]
    if any(not r for r in refs):
        raise JobgateError("--after: an empty job reference")
    if getattr(args, "after_any", False) and not refs:
        raise JobgateError("--after-any needs --after JOB")
    after = _resolve_refs(store, refs) if refs else []
    group = getattr(args, "group", None)
    queued = bool(getattr(args, "queue", False) or group or after)
    if background and settings.get("queueByDefault"):
        queued = True
    if retries and not (background or queued):
        # a foreground run ends with its command; its retries would run unseen
        raise JobgateError("--retries needs --background or --queue")
    return Launch(queued, group, after, bool(getattr(args, "after_any", False)), extra)


def _resolve_refs(store: Store, refs: list[str]) -> list[str]:
    from jobgate.jobs import refresh

    store.exists()
    jobs, _lost = refresh.load(store, finished=0)
    return [str(refresh.resolve(store, jobs, ref)["id"]) for ref in refs]


def report(store: Store, job: dict[str, Any], as_json: bool) -> None:
    """Say what became of a queued launch: started at once, or its place and why."""
    from jobgate.cli.render import to_json

    where = place_of(store, job)
    if as_json:
        keys = ("id", "status", "phase", "pid", "name", "kind", "group", "after", "logFile")
        brief = {k: job.get(k) for k in keys if k in job}
        brief["queue"] = where
        emit(to_json(brief))
        return
    if where is None:
        how = f"started in the background (pid {job['pid']})" if job.get("pid") else job["status"]
        emit(f"{job['id']}\n{how}; follow: jobgate log {job['id']} --follow")
    else:
        emit(
            f"{job['id']}\nqueued: #{where['position']} in group {where['group']} "
            f"({where['detail']}); see: jobgate queue"
        )


def place_of(store: Store, job: dict[str, Any]) -> dict[str, Any] | None:
    """``{"group", "position", "reason", "detail"}`` of a job still waiting, else None."""
    import time

    from jobgate.jobs import dispatch, queue

    snap = store.snapshot()
    for entry in queue.waiting(
        snap.active, dispatch.status_lookup(store), dispatch.limits(store), time.time()
    ):
        if entry.job.get("id") == job.get("id") and entry.reason != queue.STARTING:
            return {
                "group": entry.group,
                "position": entry.position,
                "reason": entry.reason,
                "detail": entry.detail,
            }
    return None


def queue_if_asked(
    args: argparse.Namespace,
    store: Store,
    command: list[str],
    fields: dict[str, Any],
    *,
    background: bool,
    agent: str | None = None,
) -> bool:
    """For a launching command that took :func:`add_options`: put the limits into
    ``fields["extra"]`` (the keyword arguments of :func:`jobgate.jobs.launch.enqueue` /
    ``start_background``), and when the launch is to queue, queue and report it: True
    (the handler is done; exit 0). False: launch as usual, with ``fields``."""
    from jobgate.jobs import launch

    plan = resolve(args, store, background=background, agent=agent)
    fields["extra"] = {**(fields.get("extra") or {}), **plan.extra}
    if not plan.queued:
        return False
    job = launch.enqueue(store, command, **fields, **plan.queue_kwargs())
    report(store, job, bool(getattr(args, "json", False)))
    return True


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
