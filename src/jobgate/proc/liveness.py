"""Process identity: capture it, and later ask whether it is still the same process.

A *process identity* is a small JSON-able dict::

    {"pid": 4242, "startTicks": 123456, "startTime": 1795541800.12,
     "bootId": "7606b7a3-...", "host": "box"}

``startTicks`` is field 22 of ``/proc/<pid>/stat`` (clock ticks since boot) and is
only present on Linux; ``startTime`` is the process start as a Unix time (psutil's
``create_time()`` elsewhere). Two processes with the same pid are the same process only
if their start times match: a pid alone says nothing once it has been reused.

Platform notes:

* Linux: the fast path reads ``/proc`` directly (no psutil import, a few microseconds
  per probe). A process's start time is readable even when it belongs to another user,
  so identity can be verified without the right to signal it.
* Elsewhere: psutil, imported lazily on first use.

A zombie (state ``Z``, exited but not yet reaped by its parent, common in containers
whose pid 1 does not reap) counts as dead.

Linux >= 6.9: the identity also records the process's pidfs inode number
(``pidfsIno``: ``fstat`` of a pidfd), unique per process for the life of the boot, so a
pid reused within the same clock tick, which start times cannot tell apart, is still
seen as another process. Older kernels and other platforms go without it.

A missing ``/proc/<pid>`` entry is confirmed with signal 0 (which sends nothing) before a
pid is called gone: where ``/proc`` is hidden (``hidepid``), not mounted or from another
pid namespace, a process that exists but cannot be identified is :data:`UNVERIFIED`,
neither alive nor dead.
"""

from __future__ import annotations

import errno
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: verdicts returned by :func:`probe`
ALIVE = "alive"
GONE = "gone"
ZOMBIE = "zombie"
REUSED = "reused"
REBOOTED = "rebooted"
FOREIGN = "foreign"
UNVERIFIED = "unverified"

_LINUX = sys.platform.startswith("linux")
#: start times (seconds) closer than this are "the same" when only wall-clock
#: start times can be compared (no ticks on one side).
START_TOLERANCE = 1.0

_boot_id_cache: list[str | None] = []
_btime_cache: list[float] = []
_host_cache: list[str] = []
_pidfs_cache: list[bool] = []
_pidns_cache: list[str | None] = []
_proc_ours_cache: list[bool] = []


def boot_id() -> str | None:
    """The kernel's random per-boot id (Linux), else None."""
    if not _boot_id_cache:
        value: str | None = None
        if _LINUX:
            try:
                with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
                    value = fh.read().strip() or None
            except OSError:
                value = None
        _boot_id_cache.append(value)
    return _boot_id_cache[0]


def host_name() -> str:
    if not _host_cache:
        try:
            _host_cache.append(os.uname().nodename)
        except AttributeError:  # pragma: no cover - Windows
            import platform

            _host_cache.append(platform.node())
    return _host_cache[0]


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 100


def _boot_time() -> float:
    if not _btime_cache:
        value = 0.0
        try:
            with open("/proc/stat", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("btime "):
                        value = float(line.split()[1])
                        break
        except OSError:  # pragma: no cover
            value = 0.0
        _btime_cache.append(value)
    return _btime_cache[0]


def read_proc_stat(pid: int) -> tuple[str, int] | None:
    """Linux: ``(state, start_ticks)`` of ``pid`` from ``/proc/<pid>/stat``, or None.

    The command name (field 2) may contain spaces and parentheses, so the fields are
    split after the *last* ``)``. A process whose main thread has exited while other
    threads still run shows state ``Z`` with more than one thread: it is alive, and is
    reported with state ``L`` (this module's own letter) so no one takes it for a zombie.
    """
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except (OSError, ValueError):
        return None
    try:
        data = os.read(fd, 4096)  # one read: the kernel renders the whole line at once
    except OSError:
        return None
    finally:
        os.close(fd)
    end = data.rfind(b")")
    if end < 0:
        return None
    fields = data[end + 2 :].split()
    try:
        state = fields[0].decode("ascii")
        if state == "Z" and int(fields[17]) > 1:  # num_threads: its other threads run on
            state = "L"
        return state, int(fields[19])
    except (IndexError, ValueError):
        return None


def proc_info(pid: int) -> dict[str, Any] | None:
    """What the OS says about ``pid`` now: ``{"pid", "state", "startTime", "startTicks"?}``.

    ``state`` is a one-letter Linux state (``R``, ``S``, ``Z``...) or psutil's status
    name elsewhere; ``startTime`` is a Unix time. None when no such process exists.
    """
    if pid <= 0:
        return None
    if _LINUX:
        st = read_proc_stat(pid)
        if st is None:
            return _exists_unreadable(pid)
        state, ticks = st
        return {
            "pid": pid,
            "state": state,
            "startTicks": ticks,
            "startTime": _boot_time() + ticks / _clock_ticks(),
        }
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:  # pragma: no cover - platform specific
        return {"pid": pid, "state": "unknown"}
    state = "Z" if status == psutil.STATUS_ZOMBIE else status
    return {"pid": pid, "state": state, "startTime": created}


def _exists_unreadable(pid: int) -> dict[str, Any] | None:
    """``/proc`` has no readable entry for ``pid``: None if no such process exists,
    else ``{"pid", "state": "unknown"}`` (no start time: it cannot be identified)."""
    try:
        os.kill(pid, 0)  # signal 0: an existence check, nothing is delivered
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # exists, belongs to someone we may not signal
    except OSError:
        return None
    return {"pid": pid, "state": "unknown"}


def pidfs_inode(pid: int) -> int | None:
    """Linux >= 6.9 (pidfs): the inode number of a pidfd for ``pid``, unique to that
    process for as long as the machine runs (a reused pid gets a new one). None where
    pidfds are not pidfs inodes (older kernels: one shared anonymous inode), or when
    there is no such process."""
    if not _pidfs_ok():
        return None
    return _pidfd_lookup(pid)[0]


def _pidfd_lookup(pid: int) -> tuple[int | None, int]:
    """``(inode, 0)`` of a pidfd for ``pid``, else ``(None, errno)``: ``ESRCH`` no such
    process; ``EINVAL`` or ``ENOENT`` (by kernel version) the id is a thread's."""
    try:
        fd = os.pidfd_open(pid)
    except OSError as exc:
        return None, exc.errno or 0
    except (AttributeError, ValueError, OverflowError):
        return None, -1
    try:
        return os.fstat(fd).st_ino, 0
    except OSError as exc:  # pragma: no cover
        return None, exc.errno or 0
    finally:
        os.close(fd)


def _pidfs_ok() -> bool:
    if not _pidfs_cache:
        mine = _pidfd_lookup(os.getpid())[0]
        other = _pidfd_lookup(os.getppid() or 1)[0]
        _pidfs_cache.append(mine is not None and other is not None and mine != other)
    return _pidfs_cache[0]


def pid_namespace() -> str | None:
    """Linux: this process's pid namespace (``pid:[4026531836]``), else None. Pids mean
    something only inside the namespace they were recorded in."""
    if not _pidns_cache:
        try:
            value: str | None = os.readlink("/proc/self/ns/pid")
        except (OSError, AttributeError):
            value = None
        _pidns_cache.append(value)
    return _pidns_cache[0]


def capture(pid: int) -> dict[str, Any] | None:
    """The identity of the live process ``pid`` (None if it does not exist)."""
    ino = pidfs_inode(pid)
    info = proc_info(pid)
    if info is None or info["state"] in ("Z", "X") or "startTime" not in info:
        return None
    if ino is not None and pidfs_inode(pid) != ino:
        return None  # the pid changed hands while we looked: that process is gone
    ident: dict[str, Any] = {"pid": pid, "startTime": round(info["startTime"], 3)}
    if "startTicks" in info:
        ident["startTicks"] = info["startTicks"]
    if ino is not None:
        ident["pidfsIno"] = ino
    ns = pid_namespace()
    if ns:
        ident["pidNs"] = ns
    bid = boot_id()
    if bid:
        ident["bootId"] = bid
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
    if not same_boot and isinstance(rec_host, str) and rec_host and rec_host != host_name():
        # A state dir shared between machines: this machine cannot see that process,
        # and must not mistake a local process with the same pid for it. (The same boot
        # id means the same running kernel: a renamed host is still this machine.)
        return FOREIGN, f"pid {pid} was recorded on host {rec_host!r}, not this one"
    if rec_boot and here_boot and rec_boot != here_boot:
        return REBOOTED, f"pid {pid} was recorded before the machine rebooted"
    rec_ns = _other_namespace(ident)
    if rec_ns is not None:
        from jobgate.proc import pidns  # rare: only for identities from another namespace

        return pidns.probe_across(ident, pid, rec_ns, str(pid_namespace()))
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
        if ino is not None or err in (errno.EINVAL, errno.ENOENT):
            # another process; or, as /proc showed a task there, now a thread's id
            # (pidfd_open refuses those: EINVAL on older kernels, ENOENT on newer ones)
            return REUSED, f"pid {pid} now belongs to another process"
        if err == errno.ESRCH:
            return GONE, f"pid {pid} is gone"
    rec_ticks = ident.get("startTicks")
    if isinstance(rec_ticks, int) and "startTicks" in info:
        same = rec_ticks == info["startTicks"]
    else:
        rec_time = ident.get("startTime")
        if not isinstance(rec_time, (int, float)):
            # No start time recorded: we cannot prove it is the same process.
            return REUSED, f"pid {pid} exists but its start time was never recorded"
        same = abs(float(rec_time) - float(info["startTime"])) <= START_TOLERANCE
    if not same:
        return REUSED, f"pid {pid} now belongs to another process"
    return ALIVE, f"pid {pid} is alive"


def proc_is_ours() -> bool:
    """False when the mounted /proc shows another pid namespace than ours (``unshare
    -p`` without a /proc of its own): its pids are not the ones we would signal."""
    if not _proc_ours_cache:
        try:
            ours = os.readlink("/proc/self") == str(os.getpid())
        except OSError:
            ours = True  # no /proc/self: the /proc reads fail on their own
        _proc_ours_cache.append(ours)
    return _proc_ours_cache[0]


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
