"""``jobgate top`` and ``jobgate status --watch``: a live view of the running and queued
jobs, redrawn as they change, until ``q``, Ctrl-C, SIGTERM or SIGHUP (exit 0).

It wakes on what wakes ``jobgate watch`` (:mod:`jobgate.jobs.idle`): a change in the
state dir (inotify), the exit of a running job's process (a pidfd per job), a signal —
and also a key, a terminal resize (SIGWINCH) and every ``--interval`` seconds (the
elapsed times and last log lines move on). Each wake reads the jobs through the normal
reconciling read (:func:`jobgate.jobs.refresh.load`), so a job whose processes died is
written down lost and shown so, never as running. What it shows is
:mod:`jobgate.cli.top_layout`'s; where it draws, :mod:`jobgate.cli.top_screen`'s.
"""

from __future__ import annotations

import os
import sys
import time

from jobgate.state.errors import EXIT_OK, EXIT_USAGE, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from jobgate.cli.top_screen import Plain, Screen
    from jobgate.jobs import idle
    from jobgate.state.store import Store

#: seconds between two redraws while nothing happens (default of ``--interval``)
INTERVAL = 1.0
#: a burst of state changes (a hundred jobs queued at once) is drawn at most this often
MIN_GAP = 0.1
#: how long writing a lost job down may wait for the lock (then: lost in the view only)
LOCK_TIMEOUT = 1.0
#: at most this much of a log's end is read for its last line
TAIL_BYTES = 16 * 1024
#: the keys that end the view (Ctrl-C too, as SIGINT or as a byte)
QUIT_KEYS = (b"q", b"Q", b"\x03")

EPILOG = """examples:
  jobgate top                      # full screen; q or Ctrl-C quits
  jobgate status --watch --interval 2
  jobgate top | tee jobs.txt       # not a terminal: a block of plain text per change
  jobgate top --json | jq -c '.counts'

rows: running jobs (oldest first), queued jobs (by group, in queue order, with their
place: #1 starts next), the recently finished; each with its elapsed (or waiting) time
and its last log line, cut to the terminal's width. A job whose processes died shows as
failed (lost), written down by the view as by any reader.
"""


def _interval(text: str) -> float:
    from jobgate.cli.args import seconds

    return seconds(text, 0.1, 3600)


def add_parser(subparsers: Any) -> None:
    """Register ``top`` on the main parser's subparsers."""
    from jobgate.cli.args import subcommand

    help_ = "a live, full-screen view of the running and queued jobs (q quits)"
    p = subcommand(subparsers, "top", help_, EPILOG)
    _view_arguments(p, INTERVAL)
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object a line per change: {time, workspaceRoot, counts, jobs}",
    )
    p.set_defaults(handler=cmd_top)


def _view_arguments(p: argparse.ArgumentParser, default: float | None) -> None:
    p.add_argument(
        "--interval",
        type=_interval,
        default=default,
        metavar="S",
        help=f"redraw at least every S seconds (default: {INTERVAL:g}); changes show at once",
    )


def add_watch_arguments(status: argparse.ArgumentParser) -> None:
    """``status --watch [--interval S]``: the same view as ``top``."""
    status.add_argument(
        "--watch", action="store_true", help="a live view of running and queued jobs (= top)"
    )
    _view_arguments(status, None)
    status.set_defaults(handler=status_or_watch)


def status_or_watch(args: argparse.Namespace) -> int:
    if not args.watch:
        if args.interval is not None:
            raise JobgateError("--interval goes with --watch", EXIT_USAGE)
        from jobgate.cli.commands import cmd_status

        return cmd_status(args)
    if args.job is not None or args.all:
        raise JobgateError(
            "status --watch shows every running and queued job: drop "
            + ("JOB" if args.job is not None else "--all"),
            EXIT_USAGE,
        )
    if args.interval is None:
        args.interval = INTERVAL
    return cmd_top(args)


def cmd_top(args: argparse.Namespace) -> int:
    from jobgate.cli import commands, top_screen
    from jobgate.jobs import idle

    root, store = commands.open_store(args)
    reader = Reader(store)
    reader.read()  # a state dir it may not read fails here, before any screen opens
    tty = not args.json and sys.stdout.isatty() and _can_draw()
    sink: Plain | Screen
    sink = top_screen.Screen(root) if tty else top_screen.Plain(root, as_json=args.json)
    guard = None if tty else idle.SessionGuard()
    keys = Keys(sys.stdin.fileno()) if tty and sys.stdin.isatty() else None
    try:
        with idle.Stopper() as stopper, Resizes(tty) as signals, sink, keys or _Nothing():
            run(reader, sink, stopper, args.interval, keys, guard, signals)
    finally:
        if guard is not None:
            guard.close()
    return EXIT_OK


def _can_draw() -> bool:
    """A full screen needs a terminal that can be drawn on (not ``TERM=dumb``), ``poll``
    and ``termios`` (POSIX); elsewhere: plain output."""
    import select

    if os.environ.get("TERM") == "dumb":
        return False

    try:
        import termios  # noqa: F401
    except ImportError:
        return False
    return hasattr(select, "poll")


class Reader:
    """The view's jobs, read through the normal reconciling read, and their last log
    lines (a log read again only when its size or mtime changed)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.jobs: list[dict[str, Any]] = []
        self._tails: dict[str, tuple[tuple[int, int, int], str]] = {}

    def read(self) -> tuple[list[dict[str, Any]], dict[str, str], str]:
        """``(jobs, last lines by id, a warning or "")``."""
        from jobgate.cli.top_layout import RECENT
        from jobgate.jobs import refresh
        from jobgate.state.store import CorruptFile, LockTimeout

        note = ""
        try:
            self.jobs, _lost = refresh.load(
                self.store, finished=RECENT, lock_timeout=LOCK_TIMEOUT, readonly_fallback=True
            )
        except (CorruptFile, LockTimeout) as exc:
            note = f"cannot read the job index now ({exc}); trying again"
        lines: dict[str, str] = {}
        tails: dict[str, tuple[tuple[int, int, int], str]] = {}
        for job in self.jobs:
            found = self._last_line(job.get("logFile"))
            if found is not None:
                tails[str(job.get("logFile"))] = found
                lines[str(job.get("id"))] = found[1]
        self._tails = tails
        return self.jobs, lines, note

    def _last_line(self, path: object) -> tuple[tuple[int, int, int], str] | None:
        import stat

        from jobgate.cli.render import read_end
        from jobgate.cli.top_layout import last_line

        if not isinstance(path, str) or not path:
            return None
        try:
            st = os.lstat(path)
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        known = self._tails.get(path)
        if known is not None and known[0] == key:
            return known
        end = read_end(path, TAIL_BYTES)
        if end is None:
            return None
        return key, last_line(end[0], end[1] > 0)


class Keys:
    """The terminal's keys, one at a time (cbreak mode: no line editing, no echo;
    Ctrl-C still sends SIGINT), and the terminal's mode restored on exit."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: Any = None

    def __enter__(self) -> Keys:
        import termios
        import tty

        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd, termios.TCSANOW)
        return self

    def __exit__(self, *exc: object) -> None:
        import termios

        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def quit_pressed(self) -> bool:
        """Read what was typed; True if it holds a key that quits (EOF too)."""
        try:
            data = os.read(self.fd, 1024)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return not data or any(k in data for k in QUIT_KEYS)


class Resizes:
    """The terminal's signals while the screen is up. SIGWINCH: its byte on the wakeup fd
    wakes the loop, which redraws at the new size (its default action ignores it: no
    wake). SIGTSTP (Ctrl-Z): noted, and :meth:`suspend_if_asked`, called by the loop,
    gives the shell its screen and terminal mode back before the process stops, and
    takes them again when it is continued (``fg``)."""

    def __init__(self, active: bool) -> None:
        import signal

        self.active = active and hasattr(signal, "SIGWINCH") and hasattr(signal, "SIGTSTP")
        self.asked = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Resizes:
        if self.active:
            import signal

            self._old[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, _noop)
            self._old[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, self._stop_asked)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _stop_asked(self, _signum: int, _frame: object) -> None:
        self.asked = True

    def suspend_if_asked(self, screen: Plain | Screen, keys: Keys | None) -> bool:
        """After a Ctrl-Z: the screen and the terminal's mode given back, the process
        stopped; True once it is continued, screen and keys taken again."""
        if not self.asked:
            return False
        import signal

        self.asked = False
        if keys is not None:
            keys.__exit__()
        screen.suspend()
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stops here until SIGCONT
        signal.signal(signal.SIGTSTP, self._stop_asked)
        if keys is not None:
            keys.__enter__()
        screen.resume()
        return True


def _noop(_signum: int, _frame: object) -> None:
    pass


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        pass


def run(
    reader: Reader,
    sink: Plain | Screen,
    stopper: idle.Stopper,
    interval: float,
    keys: Keys | None = None,
    guard: idle.SessionGuard | None = None,
    signals: Resizes | None = None,
) -> str:
    """Draw, then sleep until something may have changed, and again; returns why it
    stopped (a key, a signal, nothing reading its output any more)."""
    import select

    from jobgate.jobs import idle
    from jobgate.jobs.watch import PROBE_EVERY
    from jobgate.state import model

    notifier = idle.Notifier()
    exits = idle.ExitWatch()
    try:
        last_draw = 0.0
        fired: list[str] = []  # the jobs whose pinned process just exited
        while True:
            if notifier.fd >= 0 and not notifier.watching:
                notifier.watch(reader.store.state_dir)  # (again) once it exists
            jobs, lines, note = reader.read()
            sink.show(jobs, lines, note)
            last_draw = time.monotonic()
            unpinned = exits.sync([j for j in jobs if model.is_active(j)])
            # a job no pidfd watches (none here, its process not pinnable) is probed as
            # often as ``watch`` does, whatever the interval; one whose pinned process
            # just exited and that was still alive but cannot be pinned again (its other
            # process died between the probe and the pin): at once
            again = any(str(j.get("id")) in fired for j in unpinned)
            wait_for = min(interval, PROBE_EVERY) if unpinned else interval
            deadline = last_draw + (MIN_GAP if again else wait_for)
            while True:  # until something to draw
                fds = [(stopper.fd, idle.POLLIN)] if stopper.fd >= 0 else []
                fds += guard.fds() if guard is not None else []
                if notifier.fd >= 0:
                    fds.append((notifier.fd, idle.POLLIN))
                if keys is not None:
                    fds.append((keys.fd, idle.POLLIN))
                fds += [(fd, idle.POLLIN) for fd in exits.fds()]
                wait = max(0.0, deadline - time.monotonic())
                if fds and idle.HAVE_POLL:
                    poll = select.poll()
                    for fd, events in fds:
                        poll.register(fd, events)
                    ready = {fd for fd, _ in poll.poll(wait * 1000)}
                else:
                    stopper.wait(wait)
                    ready = set()
                stopper.drain()
                if stopper.reason is not None:
                    return stopper.reason
                why = guard.gone() if guard is not None else None
                if why is not None:
                    return why
                if keys is not None and keys.fd in ready and keys.quit_pressed():
                    return "quit"
                if signals is not None and signals.suspend_if_asked(sink, keys):
                    break  # continued: draw again
                changed = notifier.fd in ready and notifier.drain()
                fired = exits.fired(ready)
                if fired or time.monotonic() >= deadline:
                    break  # a job's process ended, or time to redraw
                if changed or (stopper.fd in ready):  # the state, or a resize
                    deadline = min(deadline, last_draw + MIN_GAP)
                    if time.monotonic() >= deadline:
                        break
    finally:
        notifier.close()
        exits.close()
