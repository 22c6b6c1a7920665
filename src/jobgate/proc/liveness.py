"""Process identity: capture it, and later ask whether it is still the same process.

A *process identity* is a small JSON-able dict::

    {"pid": 4242, "startTicks": 123456, "startTime": 1795541800.12,
     "bootId": "7606b7a3-...", "host": "box"}

``startTicks`` is field 22 of ``/proc/<pid>/stat`` (clock ticks since boot) and is
only present on Linux; ``startTime`` is the process start as a Unix time (psutil's
``create_time()`` elsewhere). Two processes with the same pid are the same process only
if their start times match: a pid alone says nothing once it has been reused.

Platform seam: the facts about a process (its state and start time, the boot id,
pidfs inodes, pid namespaces, env-marked processes) come from one backend chosen once at
import — :mod:`jobgate.proc._linux` (``/proc`` read directly, no psutil, a few
microseconds per probe) or :mod:`jobgate.proc._portable` (psutil, imported lazily) —
and this module decides what they mean. On Linux a process's start time is readable
even when it belongs to another user, so identity is verified without the right to
signal it.

A zombie (state ``Z``, exited but not yet reaped by its parent, common in containers
whose pid 1 does not reap) counts as dead.

Linux >= 6.9: the identity also records the process's pidfs inode number
(``pidfsIno``), unique per process for the life of the boot, so a pid reused within the
same clock tick, which start times cannot tell apart, is still seen as another process.

A process that exists but cannot be identified (``hidepid``, no ``/proc``, or one of
another pid namespace) is :data:`UNVERIFIED`, neither alive nor dead.
"""

from __future__ import annotations

import os
import sys

from jobgate.proc import starttime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

    from jobgate.proc import _linux, _portable, pidns
    from jobgate.proc.seam import Backend

    # mypy checks that each backend module has the seam's whole interface
    _linux_backend: Backend = _linux
    _portable_backend: Backend = _portable

#: the environment variable that picks the backend: ``portable`` forces psutil (the
#: macOS/BSD path) on Linux too; anything else, or nothing, means the platform's own
PLATFORM_ENV = "JOBGATE_PLATFORM"


def _load_backend() -> ModuleType:
    if sys.platform.startswith("linux") and os.environ.get(PLATFORM_ENV) != "portable":
        from jobgate.proc import _linux

        return _linux
    from jobgate.proc import _portable

    return _portable


def use_backend(module: ModuleType) -> ModuleType:
    """Make ``module`` the backend every function here asks; returns the previous one.
    Called once at import (psutil's ``_pslinux``/``_psosx`` pattern); tests use it to
    run the portable backend in-process on Linux."""
    global backend, boot_id, machine_id, proc_info, read_proc_stat, pidfs_inode
    global pid_namespace, proc_is_ours, _pidfs_ok, _pidfd_lookup, _ENOENT, _ESRCH, _EINVAL
    previous: ModuleType = globals().get("backend", module)
    backend = module
    # The backend's facts, re-exported: this module is the one face of process identity.
    boot_id = module.boot_id
    machine_id = module.machine_id
    proc_info = module.proc_info
    read_proc_stat = module.read_proc_stat
    pidfs_inode = module.pidfs_inode
    pid_namespace = module.pid_namespace
    proc_is_ours = module.proc_is_ours
    _pidfs_ok = module.pidfs_ok
    _pidfd_lookup = module.pidfd_lookup
    _ENOENT, _ESRCH, _EINVAL = module.ENOENT, module.ESRCH, module.EINVAL
    return previous


#: the platform backend, chosen once at import, and its facts (set by use_backend)
backend: ModuleType
boot_id: Callable[[], str | None]
machine_id: Callable[[], str | None]
proc_info: Callable[[int], dict[str, Any] | None]
read_proc_stat: Callable[[int], tuple[str, int] | None]
pidfs_inode: Callable[[int], int | None]
pid_namespace: Callable[[], str | None]
proc_is_ours: Callable[[], bool]
_pidfs_ok: Callable[[], bool]
_pidfd_lookup: Callable[[int], tuple[int | None, int]]
_ENOENT: int
_ESRCH: int
_EINVAL: int
use_backend(_load_backend())


def is_portable() -> bool:
    """Whether the portable (psutil) backend answers here."""
    return backend.__name__.endswith("._portable")


#: verdicts returned by :func:`probe`
ALIVE = "alive"
GONE = "gone"
ZOMBIE = "zombie"
REUSED = "reused"
REBOOTED = "rebooted"
FOREIGN = "foreign"
UNVERIFIED = "unverified"

#: start times (seconds) of unknown source closer than this are "the same" (see
#: :mod:`jobgate.proc.starttime` for the tolerance of each known source)
START_TOLERANCE = 1.0

_host_cache: list[str] = []


def host_name() -> str:
    if not _host_cache:
        try:
            _host_cache.append(os.uname().nodename)
        except AttributeError:  # pragma: no cover - Windows
            import platform

            _host_cache.append(platform.node())
    return _host_cache[0]


def capture(pid: int) -> dict[str, Any] | None:
    """The identity of the live process ``pid`` (None if it does not exist)."""
    ino = pidfs_inode(pid)
    info = proc_info(pid)
    if info is None or info["state"] in ("Z", "X") or "startTime" not in info:
        return None
    if ino is not None and pidfs_inode(pid) != ino:
        return None  # the pid changed hands while we looked: that process is gone
    ident: dict[str, Any] = {"pid": pid, "startTime": round(info["startTime"], 6)}
    if "startTicks" in info:
        ident["startTicks"] = info["startTicks"]
    ident["startSource"] = info.get("startSource", backend.SOURCE)
    if ino is not None:
        ident["pidfsIno"] = ino
    ns = pid_namespace()
    if ns:
        ident["pidNs"] = ns
    bid = boot_id()
    if bid:
        ident["bootId"] = bid
    mid = machine_id()
    if mid:
        ident["machineId"] = mid
    ident["host"] = host_name()
    return ident


def probe(ident: dict[str, Any]) -> tuple[str, str]:
    """Is the process described by ``ident`` still alive *and the same process*?

    Returns ``(verdict, evidence)`` where verdict is one of :data:`ALIVE`,
    :data:`GONE`, :data:`ZOMBIE`, :data:`REUSED`, :data:`REBOOTED`, :data:`FOREIGN`
    (recorded on another host: cannot be verified here, so not alive) or
    :data:`UNVERIFIED` (a process with that pid exists but its start time cannot be
    read: neither proven the same nor proven gone); evidence is a short human sentence
    naming the pid.
    """
    pid = ident.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return GONE, f"no usable pid recorded ({pid!r})"
    rec_host = ident.get("host")
    rec_boot = ident.get("bootId")
    here_boot = boot_id() if rec_boot else None
    same_boot = bool(rec_boot) and rec_boot == here_boot
    if not same_boot:
        foreign = _elsewhere(ident, pid, rec_host)
        if foreign is not None:
            return FOREIGN, foreign
    if rec_boot and here_boot and rec_boot != here_boot:
        return REBOOTED, f"pid {pid} was recorded before the machine rebooted"
    rec_ns = _other_namespace(ident)
    if rec_ns is not None:
        return _probe_across(ident, pid, rec_ns)
    info = proc_info(pid)
    if info is None:
        return GONE, f"pid {pid} is gone"
    if info["state"] in ("Z", "X"):
        return ZOMBIE, f"pid {pid} has exited (zombie, not yet reaped)"
    if "startTime" not in info:
        return UNVERIFIED, f"pid {pid} exists but its start time cannot be read here"
    rec_ino = ident.get("pidfsIno")
    if isinstance(rec_ino, int) and same_boot and _pidfs_ok():
        # Exact: the pidfs inode is unique per process on this boot. It tells apart a pid
        # reused within the same 10 ms clock tick (which start times cannot), and proves
        # the same process where start ticks read differently (a time namespace).
        ino, err = _pidfd_lookup(pid)
        if ino == rec_ino:
            return ALIVE, f"pid {pid} is alive"
        if ino is not None or err in (_EINVAL, _ENOENT):
            # another process; or, as /proc showed a task there, now a thread's id
            # (pidfd_open refuses those: EINVAL on older kernels, ENOENT on newer ones)
            return REUSED, f"pid {pid} now belongs to another process"
        if err == _ESRCH:
            return GONE, f"pid {pid} is gone"
    same = starttime.same_start(ident, info)
    if same is None:
        # No start time recorded: we cannot prove it is the same process.
        return REUSED, f"pid {pid} exists but its start time was never recorded"
    if not same:
        return REUSED, f"pid {pid} now belongs to another process"
    return ALIVE, f"pid {pid} is alive"


def _elsewhere(ident: dict[str, Any], pid: int, rec_host: object) -> str | None:
    """Why ``ident`` (not of this boot, or of no known boot) was recorded on another
    machine, or None. A machine id on both sides decides: a host renamed (a Mac's
    ``MacBook.local`` on one network, ``MacBook.lan`` on the next) is still this
    machine. Without one, another host name means another machine: a state dir shared
    between machines, where a local process with the same pid must not pass for it."""
    rec_machine = ident.get("machineId")
    here_machine = machine_id() if isinstance(rec_machine, str) and rec_machine else None
    if here_machine:
        if rec_machine == here_machine:
            return None
        where = f"host {rec_host!r}" if isinstance(rec_host, str) and rec_host else "machine"
        return f"pid {pid} was recorded on another machine ({where}), not this one"
    if isinstance(rec_host, str) and rec_host and rec_host != host_name():
        return f"pid {pid} was recorded on host {rec_host!r}, not this one"
    return None


def localize(ident: dict[str, Any]) -> dict[str, Any] | None:
    """``ident`` with the pid this process must use to reach that process (the same,
    unless it was recorded in another pid namespace), if it is verified alive; else
    None. Anything that signals a recorded process goes through this: a pid recorded in
    a container names someone else out here."""
    rec_ns = _other_namespace(ident)
    pid = ident.get("pid")
    if rec_ns is not None and isinstance(pid, int):
        from jobgate.proc import pidns

        here = pidns.local_pid(pid, rec_ns) if rec_ns != pid_namespace() else None
        if here is None:
            return None
        ident = {k: v for k, v in ident.items() if k != "pidNs"}
        ident["pid"] = here
    return ident if probe(ident)[0] == ALIVE else None


def _other_namespace(ident: dict[str, Any]) -> str | None:
    """The pid namespace ``ident`` was recorded in, when its pid cannot be read as is
    here: recorded in a container (or ``unshare -p``), or read from one, or through a
    /proc of another namespace. None for the common case (and for records without one,
    or a hand-edited value that is not a string: judged by start time alone)."""
    rec_ns = ident.get("pidNs")
    here_ns = pid_namespace()
    if not isinstance(rec_ns, str) or not rec_ns or not here_ns:
        return None
    return rec_ns if rec_ns != here_ns or not proc_is_ours() else None


def is_alive(ident: dict[str, Any] | None) -> bool:
    return ident is not None and probe(ident)[0] == ALIVE


def _probe_across(ident: dict[str, Any], pid: int, rec_ns: str) -> tuple[str, str]:
    """Probe an identity recorded in pid namespace ``rec_ns`` from this one.

    Looks among the processes visible here for the member of ``rec_ns`` whose innermost
    pid (``NSpid``) is ``pid``, then probes it under its pid here. No member visible:
    from the initial namespace (which sees all) that namespace is gone, and with it the
    process; from anywhere else nothing can be told (``UNVERIFIED``). "Gone" is only
    ever said from a fresh scan of ``/proc``: a cached one may predate the process.
    """
    from jobgate.proc import pidns  # rare: only for identities from another namespace

    if not proc_is_ours():
        return UNVERIFIED, f"pid {pid}: this /proc belongs to another pid namespace"
    verdict = _probe_in(pidns.scan(), ident, pid, rec_ns)
    if verdict[0] == GONE:
        verdict = _probe_in(pidns.scan(fresh=True), ident, pid, rec_ns)
    return verdict


def _probe_in(scan: pidns.Scan, ident: dict[str, Any], pid: int, rec_ns: str) -> tuple[str, str]:
    from jobgate.proc import pidns

    members = scan.members.get(rec_ns)
    if members is not None:
        here = members.get(pid)
        if here is None:
            return GONE, f"pid {pid} is gone (no longer in its pid namespace)"
        local = {k: v for k, v in ident.items() if k != "pidNs"}
        local["pid"] = here
        verdict, evidence = probe(local)
        return verdict, f"{evidence} (pid {pid} in its own pid namespace)"
    if pid_namespace() == pidns.ROOT_PID_NS and scan.complete:
        return GONE, f"pid {pid} is gone (its pid namespace no longer exists)"
    return UNVERIFIED, f"pid {pid} was recorded in another pid namespace than this one"
