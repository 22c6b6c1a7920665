"""The Linux backend of the platform seam: process facts read straight from ``/proc``.

No psutil on this path (a probe costs a few microseconds): a process's state and start
time are fields 3 and 22 of ``/proc/<pid>/stat``, readable even for another user's
process. Linux >= 6.9 also gives each process a pidfs inode (``fstat`` of a pidfd),
unique for the life of the boot. A missing ``/proc/<pid>`` entry is confirmed with
signal 0 before a pid is called gone (``hidepid``, no ``/proc``, or one of another pid
namespace: the process may exist and not be identifiable).

Chosen once, at import, by :mod:`jobgate.proc.liveness`; nothing else imports it but
:mod:`jobgate.proc.pidns` and :mod:`jobgate.proc.tree` (Linux-only paths).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: errno values of Linux (this module runs nowhere else), without importing ``errno``
#: on the hot path
ENOENT, ESRCH, EINVAL = 2, 3, 22

#: the identity's ``startSource`` here (its granularity: :mod:`jobgate.proc.starttime`)
SOURCE = "proc-stat"

_boot_id_cache: list[str | None] = []
_machine_id_cache: list[str | None] = []
_btime_cache: list[float] = []
_pidfs_cache: list[bool] = []
_pidns_cache: list[str | None] = []
_proc_ours_cache: list[bool] = []


def _read_small(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except (OSError, ValueError):
        return None
    try:
        return os.read(fd, 4096)  # one read: the kernel renders these files at once
    except OSError:
        return None
    finally:
        os.close(fd)


def boot_id() -> str | None:
    """The kernel's random per-boot id."""
    if not _boot_id_cache:
        data = _read_small("/proc/sys/kernel/random/boot_id")
        _boot_id_cache.append(data.decode("ascii", "replace").strip() or None if data else None)
    return _boot_id_cache[0]


def machine_id() -> str | None:
    """systemd's (or D-Bus's) id of this installation, kept across reboots and host
    renames (None where neither file exists: some containers)."""
    if not _machine_id_cache:
        value: str | None = None
        for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
            data = _read_small(path)
            value = data.decode("ascii", "replace").strip() or None if data else None
            if value:
                break
        _machine_id_cache.append(value)
    return _machine_id_cache[0]


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 100


def _boot_time() -> float:
    if not _btime_cache:
        value = 0.0
        try:
            with open("/proc/stat", "rb") as fh:
                for line in fh:
                    if line.startswith(b"btime "):
                        value = float(line.split()[1])
                        break
        except (OSError, ValueError):  # pragma: no cover
            value = 0.0
        _btime_cache.append(value)
    return _btime_cache[0]


def read_proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, start_ticks)`` of ``pid`` from ``/proc/<pid>/stat``, or None.

    The command name (field 2) may contain spaces and parentheses, so the fields are
    split after the *last* ``)``. A process whose main thread has exited while other
    threads still run shows state ``Z`` with more than one thread: it is alive, and is
    reported with state ``L`` (this module's own letter) so no one takes it for a zombie.
    """
    data = _read_small(f"/proc/{pid}/stat")
    if data is None:
        return None
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
    """What ``/proc`` says about ``pid`` now: ``{"pid", "state", "startTime",
    "startTicks"}`` (``state`` a one-letter Linux state), ``{"pid", "state": "unknown"}``
    for a process that exists but cannot be read, None when no such process exists."""
    if pid <= 0:
        return None
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
    if not pidfs_ok():
        return None
    return pidfd_lookup(pid)[0]


def pidfd_lookup(pid: int) -> tuple[int | None, int]:
    """``(inode, 0)`` of a pidfd for ``pid``, else ``(None, errno)``: :data:`ESRCH` no
    such process; :data:`EINVAL` or :data:`ENOENT` (by kernel version) the id is a
    thread's."""
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


def pidfs_ok() -> bool:
    """Whether pidfds here are pidfs inodes (one per process), checked once."""
    if not _pidfs_cache:
        mine = pidfd_lookup(os.getpid())[0]
        other = pidfd_lookup(os.getppid() or 1)[0]
        _pidfs_cache.append(mine is not None and other is not None and mine != other)
    return _pidfs_cache[0]


def pid_namespace() -> str | None:
    """This process's pid namespace (``pid:[4026531836]``). Pids mean something only
    inside the namespace they were recorded in."""
    if not _pidns_cache:
        try:
            value: str | None = os.readlink("/proc/self/ns/pid")
        except (OSError, AttributeError):
            value = None
        _pidns_cache.append(value)
    return _pidns_cache[0]


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


def environ_entries(pid: int) -> list[bytes] | None:
    """The entries (``NAME=value``) of ``pid``'s environment, as ``/proc/<pid>/environ``
    shows it, or None when it cannot be read: no such process, or not ours to read (the
    kernel asks for the rights to ptrace-read it: the same user and a dumpable process —
    not a setuid one — or root). A process of the same user that jobgate started (the
    worker, the command held at its gate) is dumpable, so it is always readable."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read()
    except (OSError, ValueError):
        return None
    return data.split(b"\0")


def marked_pids(mark: bytes) -> list[int]:
    """Pids (other than ours) whose environment holds the entry ``mark``
    (``JOBGATE_JOB_ID=<id>``): finds a job's descendants that left its tree (``setsid``,
    double fork). Only processes whose environ we may read are seen."""
    found: list[int] = []
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        env = environ_entries(int(entry))
        if env is not None and mark in env:
            found.append(int(entry))
    return found


def detached_options() -> dict[str, Any]:
    """:class:`subprocess.Popen` options that start a process detached from ours (its
    own session: no controlling terminal, no share in our process group's signals)."""
    return {"start_new_session": True}
