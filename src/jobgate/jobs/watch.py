"""``jobgate watch``: report each job transition once, as it happens, at almost no cost
while nothing does. What counts as a transition is :mod:`jobgate.jobs.transitions`'
(pure); how it sleeps and when it stops, :mod:`jobgate.jobs.idle`; this module reads,
probes, writes down and claims.

How it waits, holding no lock:

* the state dir's changes wake it (inotify, Linux; elsewhere it looks every
  :data:`TICK` seconds): it then compares one ``os.stat`` of ``active.json`` and of
  ``finished.jsonl`` (inode, size, mtime) with the last look's, and only when one
  changed reads the index (lock-free, :meth:`~jobgate.state.files.StateDir.snapshot`),
  and the finished log only when it grew; at most one look per :data:`TICK`;
* the exit of a process of a job it watches wakes it too (a pidfd per job, Linux; a job
  it cannot pin so, and every job elsewhere, is probed every :data:`PROBE_EVERY`
  seconds instead): it then probes that job (one ``/proc`` read per recorded process),
  and a job whose processes are all gone is written down lost as any reader does
  (:func:`jobgate.jobs.refresh.load`, the only time the lock is taken besides claims),
  so a SIGKILLed job is reported at once, or within seconds. With nothing happening it
  does not wake at all.

With a session, each end (``finished``, ``lost``) is *claimed* before it is reported:
marked announced under the lock on a fresh read by the ``claim`` function the caller
passes in (:func:`jobgate.claude.announcements.claim`), and reported only if this call
marked it, so the UserPromptSubmit notice never names it again and a job the notice
named first is never reported. A busy lock leaves the claim pending for the next tick.

It stops (:func:`run`) on SIGTERM, SIGINT or SIGHUP; when its parent process is gone;
when its stdout is a pipe or socket whose reader is gone (the Claude Code session that
ran it as a plugin monitor ended, or was killed).
"""

from __future__ import annotations

import os
import time

from jobgate.jobs import idle, reconcile, refresh, transitions
from jobgate.proc import liveness
from jobgate.state import model
from jobgate.state.store import CorruptFile, LockTimeout, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from jobgate.state.store import Snapshot, Store

    #: ``claim(store, job_ids, lock_timeout)`` -> the summaries this call marked announced
    Claim = Callable[[Store, list[str], float], list[model.Job]]

#: seconds between two looks at the index files' stat
TICK = 0.5
#: seconds between two liveness probes of the watched active jobs
PROBE_EVERY = 2.0
#: the most recently finished jobs read when the finished log changed (as many as the
#: UserPromptSubmit notice looks through)
WINDOW = 100
#: how long a write (a lost job, a claim) waits for the lock before it is left for later
LOCK_TIMEOUT = 5.0

Key = tuple[int, int, int] | None


def _key(path: str) -> Key:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Watcher:
    """The jobs of one workspace (of one session, if given) and what was reported."""

    def __init__(
        self,
        store: Store,
        session: str | None = None,
        *,
        claim: Claim | None = None,
        window: int = WINDOW,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self.store = store
        self.session = session
        self.claim = claim
        self.window = window
        self.lock_timeout = lock_timeout
        self.seen = transitions.Seen()
        #: end events whose claim met a busy lock: tried again at the next look
        self.pending: list[transitions.Event] = []
        #: the watched active jobs as last read (their identities are what is probed)
        self._active: list[model.Job] = []
        #: jobs found dead that could not be written down (lock busy, read-only state
        #: dir): marked lost in the view until the index says they ended
        self._dead: dict[str, model.Job] = {}
        self._keys: tuple[Key, Key] = (None, None)
        self._warned = False
        #: look even if the index files did not change (a dead job kept in the view)
        self.force = False

    # -- change detection ------------------------------------------------------------
    def changed(self) -> bool:
        """Whether the index files changed since the last look (two ``stat`` calls)."""
        return self._stat() != self._keys

    def _stat(self) -> tuple[Key, Key]:
        return (_key(self.store.index_path), _key(self.store.finished_path))

    # -- a look ------------------------------------------------------------------------
    def look(self) -> list[transitions.Event]:
        """Read the index (no lock) and return the transitions since the last look, the
        ends claimed first when there is a session. The first look is the baseline."""
        self.force = False
        keys = self._stat()  # before the read: a change after it is seen next tick
        snap = self._snapshot()
        if snap is None:
            return self._claimed([])
        read_finished = keys[1] != self._keys[1] or not self.seen.looked
        self._keys = keys
        active = [j for j in snap.active if j["id"] not in self._dead]
        for job_id in [i for i in self._dead if not any(j["id"] == i for j in snap.active)]:
            del self._dead[job_id]  # the index has its end now
        finished = snap.finished(self.window) if read_finished else []
        finished = list(self._dead.values()) + finished
        for job_id in transitions.vanished(self.seen, active, finished):
            found = snap.lookup(job_id)
            if found is not None and model.is_finished(found):
                finished.insert(0, found)
        self._active = [j for j in active if transitions.of_interest(j, self.session)]
        self.seen, events = transitions.look(
            self.seen, active, finished, self.session, replay=self.session is not None
        )
        return self._claimed(events)

    def _snapshot(self) -> Snapshot | None:
        try:
            return self.store.snapshot()
        except CorruptFile:
            pass
        try:  # the locked path quarantines and rebuilds it, as every reader's does
            refresh.load(self.store, finished=0, lock_timeout=self.lock_timeout)
            return self.store.snapshot()
        except (CorruptFile, LockTimeout, OSError) as exc:
            self._warn(f"cannot read the job index now ({exc}); trying again")
            return None

    def _claimed(self, events: list[transitions.Event]) -> list[transitions.Event]:
        """``events`` as this watcher may report them: with a session, each end only if
        this call claimed it (another may have announced it first), with the claimed
        summary; ends left pending by a busy lock come first once claimed."""
        ends = self.pending + [e for e in events if e.event != transitions.STARTED]
        if self.claim is None or not ends:
            return events
        starts = [e for e in events if e.event == transitions.STARTED]
        try:
            marked = self.claim(self.store, [str(e.job["id"]) for e in ends], self.lock_timeout)
        except LockTimeout:
            self.pending = ends  # the lock is busy: claim them at the next look
            return starts
        except OSError as exc:
            if not refresh.write_refused(exc.errno):
                raise
            # nothing can be marked (nor can the prompt hook mark, so it announces
            # nothing): report them unmarked
            self._warn(f"cannot mark jobs announced ({exc.strerror or exc}); reporting them")
            marked = [e.job for e in ends]
        self.pending = []
        fresh = {str(j["id"]): j for j in marked}
        claimed = {
            str(e.job["id"]): transitions.Event(e.event, fresh[str(e.job["id"])])
            for e in ends
            if str(e.job["id"]) in fresh
        }
        out = [
            claimed.pop(str(e.job["id"]))
            for e in ends
            if e not in events and str(e.job["id"]) in claimed
        ]
        for event in events:
            job_id = str(event.job["id"])
            if event.event == transitions.STARTED:
                out.append(event)
            elif job_id in claimed:
                out.append(claimed.pop(job_id))
        return out

    # -- liveness ----------------------------------------------------------------------
    @property
    def active(self) -> list[model.Job]:
        """The watched active jobs as last read (their identities are what is probed)."""
        return self._active

    def probe(self, jobs: list[model.Job] | None = None) -> bool:
        """Probe ``jobs`` (default: every watched active job); write down those found
        dead (as :func:`jobgate.jobs.refresh.load` does). True if one was found dead."""
        now = time.time()
        if not reconcile.find_lost(self._active if jobs is None else jobs, liveness.probe, now):
            return False
        try:
            jobs, lost = refresh.load(
                self.store, finished=0, lock_timeout=self.lock_timeout, readonly_fallback=True
            )
        except (CorruptFile, LockTimeout, OSError) as exc:
            self._warn(f"cannot write down a lost job now ({exc}); trying again")
            return False
        # what the index may not say yet (its write refused, the lock busy): lost in the
        # view until a look finds the index says they ended
        dead = {i for i, _ in lost}
        self._dead.update((str(j["id"]), j) for j in jobs if j.get("id") in dead)
        return True

    def _warn(self, text: str) -> None:
        if not self._warned:
            self._warned = True
            warn(text)


def run(
    watcher: Watcher,
    emit: Callable[[transitions.Event], None],
    stopper: idle.Stopper,
    guard: idle.SessionGuard | None = None,
    *,
    tick: float = TICK,
    probe_every: float = PROBE_EVERY,
    notify: bool = True,
) -> str:
    """Report every transition through ``emit`` until asked to stop or the session is
    gone; returns why it stopped.

    With ``notify`` (Linux), the state dir's changes (inotify) and the exit of a watched
    job's process (a pidfd per job) wake it, at most one look per ``tick`` seconds; a job
    it cannot pin so is probed every ``probe_every`` seconds. Without, it stats the index
    every ``tick`` and probes every job every ``probe_every``. Signals and the session's
    end wake it either way (:mod:`jobgate.jobs.idle`).
    """
    notifier = idle.Notifier() if notify else None
    exits = idle.ExitWatch() if notify else None
    try:
        return _loop(watcher, emit, stopper, guard, notifier, exits, tick, probe_every)
    finally:
        if notifier is not None:
            notifier.close()
        if exits is not None:
            exits.close()


def _loop(
    watcher: Watcher,
    emit: Callable[[transitions.Event], None],
    stopper: idle.Stopper,
    guard: idle.SessionGuard | None,
    notifier: idle.Notifier | None,
    exits: idle.ExitWatch | None,
    tick: float,
    probe_every: float,
) -> str:
    import select

    fixed = [(stopper.fd, idle.POLLIN)] if stopper.fd >= 0 else []
    fixed += guard.fds() if guard is not None else []
    if notifier is not None and notifier.fd >= 0:
        fixed.append((notifier.fd, idle.POLLIN))
        notifier.watch(watcher.store.state_dir)  # before the first look: no change missed
    for event in watcher.look():
        emit(event)
    unpinned = exits.sync(watcher.active) if exits is not None else watcher.active
    last_look = time.monotonic()
    next_probe = last_look + probe_every
    due = False  # something may have changed: look once a tick has passed since the last
    check_every = guard.check_every if guard is not None else 600.0
    while True:
        now = time.monotonic()
        notified = notifier is not None and notifier.watching
        wake = now + check_every
        if due or watcher.pending or not notified:
            wake = min(wake, last_look + tick)
        if unpinned and notified:  # (ticking, the probe comes at the first tick past it)
            wake = min(wake, next_probe)
        pinned = exits.fds() if exits is not None else []
        ready: set[int] = set()
        if (fixed or pinned) and idle.HAVE_POLL:
            poll = select.poll()
            for fd, events in fixed + [(fd, idle.POLLIN) for fd in pinned]:
                poll.register(fd, events)
            ready = {fd for fd, _ in poll.poll(max(0.0, wake - now) * 1000)}
        else:  # nothing to poll (not the main thread, no pidfds, no poll): a plain sleep
            time.sleep(max(0.0, wake - now))
        stopper.drain()
        if stopper.reason is not None:
            return stopper.reason
        why = guard.gone() if guard is not None else None
        if why is not None:
            return why
        if notifier is not None and notifier.fd >= 0:
            due = notifier.drain() or due
            if not notifier.watching and notifier.watch(watcher.store.state_dir):
                due = True  # (again) watched: a change may have come before
        now = time.monotonic()
        fired = set(exits.fired(ready)) if exits is not None else set()
        suspects = [j for j in watcher.active if j["id"] in fired]
        if unpinned and now >= next_probe:
            next_probe = now + probe_every
            suspects += unpinned
        if suspects and watcher.probe(suspects):
            due = watcher.force = True
        if not notified or watcher.pending:
            due = True  # no inotify (or a claim to retry): look at every tick
        looked = False
        if due and now >= last_look + tick:
            due = False
            last_look = now
            if watcher.force or watcher.pending or watcher.changed():
                looked = True
                for event in watcher.look():
                    emit(event)
        if looked or suspects:  # the watched jobs changed, or a pinned process ended
            unpinned = exits.sync(watcher.active) if exits is not None else watcher.active
