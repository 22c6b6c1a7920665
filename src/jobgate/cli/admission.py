"""Launch admission: background launches go through in arrival order, as many at once as
the machine has CPUs.

A launch (``run``, ``task`` or ``review`` with ``--background``) is CPU work from end to
end: an interpreter starts, imports, commits one record and starts a worker — another
interpreter — then waits for it. Thirty-two of them started together on two cores do
not finish sooner than two at a time; they time-slice, evict each other's caches and
each costs more CPU (measured: ~25% more per launch at 32 concurrent callers), so the
total throughput *falls* as launchers are added. So a launch takes a place in a queue
first, right after the interpreter starts and before the CLI is imported: a ticket in
``<state root>/launch.queue`` (:class:`jobgate.state.tickets.Ticket`), held until the
process exits, that waits for the ticket :func:`slots` places ahead of it to be let go.

Like the state lock's queue this is a courtesy, never a lock: a launcher killed in the
queue lets its place go (the kernel drops a dead process's record locks); no place is
waited for longer than :data:`WAIT_LIMIT` seconds (a stuck launch ahead delays those
behind it that long, once); and a queue that cannot be used (no state root yet, a
read-only or full disk, no record locks) just means no waiting. ``JOBGATE_LAUNCH_SLOTS``
sets how many go at once (``0``: no queue).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from jobgate.state.tickets import Ticket

#: the subcommands that start a detached worker with ``--background`` / ``-b``
LAUNCHES = ("run", "task", "review")
#: how many launches go at once (default: the CPUs this process may run on)
SLOTS_ENV = "JOBGATE_LAUNCH_SLOTS"
#: a launch waits this long at most for the one ahead of it, then goes anyway
WAIT_LIMIT = 5.0
#: the queue file in the state root
QUEUE_NAME = "launch.queue"


def is_launch(argv: list[str]) -> bool:
    """Whether the command line ``argv`` (without the program) starts a background job:
    a launch subcommand with ``--background`` or ``-b`` before any ``--``."""
    if argv[:1] != [] and argv[0] in LAUNCHES:
        words = argv[1 : argv.index("--")] if "--" in argv else argv[1:]
        return "--background" in words or "-b" in words
    return False


def slots() -> int:
    """How many launches go at once: ``$JOBGATE_LAUNCH_SLOTS`` when it is a whole number
    (``0`` turns the queue off), else the CPUs this process may run on."""
    text = os.environ.get(SLOTS_ENV, "").strip()
    if text.isdigit():
        return int(text)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def admit(argv: list[str]) -> Ticket | None:
    """Wait for this launch's turn (at most :data:`WAIT_LIMIT` seconds) and return its
    place, to be let go with ``leave()`` when the launch is done; None, at once, for a
    command that is no launch or when the queue is off or cannot be used."""
    if os.name != "posix" or not is_launch(argv):
        return None
    width = slots()
    if width <= 0:
        return None
    root = _state_root()
    if root is None or not os.path.isdir(root):
        return None  # the first launch makes the root, with its checks, later
    from jobgate.state.tickets import Ticket

    ticket = Ticket.take(os.path.join(root, QUEUE_NAME))
    if ticket is not None:
        ticket.wait_turn(ahead=width, timeout=WAIT_LIMIT)
    return ticket


def _state_root() -> str | None:
    from jobgate.state.errors import JobgateError
    from jobgate.state.workspace import state_root

    try:
        return state_root()
    except JobgateError:  # a bad JOBGATE_HOME: the command itself says so
        return None
