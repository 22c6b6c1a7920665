"""The portable backend of the platform seam: process facts from psutil (macOS, the BSDs,
Windows; Linux too when ``JOBGATE_PLATFORM=portable``), imported lazily on first use.

What this backend gives, and at what precision:

- **Start times** at the precision their source has, and the source named in the
  identity (``startSource``, see :mod:`jobgate.proc.starttime`): macOS keeps a process's start as
  a ``timeval`` (1 µs), Windows as a ``FILETIME`` (100 ns), Linux as clock ticks since
  boot (10 ms), which psutil turns into a wall time by adding a boot time rounded to the
  second; on Linux the ticks are derived back (``startTicks``) and compared exactly,
  like the ``/proc`` backend does, so both backends read each other's identities.
- **A boot id**: macOS ``kern.bootsessionuuid`` (``sysctl``), Linux
  ``/proc/sys/kernel/random/boot_id``; none on Windows (not done).
- **A machine id**, stable across reboots and host renames: macOS ``IOPlatformUUID``
  (``ioreg``), Linux ``/etc/machine-id``, Windows ``MachineGuid`` (registry; unchecked).
- **Marked processes**: the user's processes whose ``environ()`` carries a job's mark.

What psutil cannot give is absent rather than guessed: no pidfs inode, no pid namespace.
Chosen once, at import, by :mod:`jobgate.proc.liveness`.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ENOENT, ESRCH, EINVAL = -2, -3, -22  # never produced here: no pidfds

#: the identity's ``startSource`` here (its granularity: :mod:`jobgate.proc.starttime`)
SOURCE = f"psutil-{sys.platform}"

_cache: dict[str, str | None] = {}


def boot_id() -> str | None:
    """An id of the running boot: another one after a reboot, the same after a host
    rename. None where none is known (Windows: not done)."""
    if "boot" not in _cache:
        value: str | None = None
        if sys.platform == "darwin":
            value = _sysctl_string("kern.bootsessionuuid") or parse_sysctl_value(
                _run(["sysctl", "-n", "kern.bootsessionuuid"])
            )
        elif sys.platform.startswith("linux"):
            value = _read_text("/proc/sys/kernel/random/boot_id")
        _cache["boot"] = value
    return _cache["boot"]


def machine_id() -> str | None:
    """An id of this machine that survives reboots and host renames (None if unknown)."""
    if "machine" not in _cache:
        value: str | None = None
        if sys.platform == "darwin":
            value = parse_ioreg_platform_uuid(
                _run(["ioreg", "-rd1", "-c", "IOPlatformExpertDevice"])
            )
        elif sys.platform == "win32":  # pragma: no cover - Windows
            value = _windows_machine_guid()
        else:
            value = _read_text("/etc/machine-id") or _read_text("/var/lib/dbus/machine-id")
        _cache["machine"] = value
    return _cache["machine"]


def parse_sysctl_value(text: str | None) -> str | None:
    """The value ``sysctl -n NAME`` printed (None for nothing, or not a value)."""
    value = (text or "").strip()
    return value if value and "\n" not in value and " " not in value else None


def parse_ioreg_platform_uuid(text: str | None) -> str | None:
    """The ``IOPlatformUUID`` in ``ioreg -rd1 -c IOPlatformExpertDevice`` output, whose
    line reads ``"IOPlatformUUID" = "564D…-…"``."""
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == '"IOPlatformUUID"':
            value = value.strip()
            if len(value) > 2 and value[0] == value[-1] == '"':
                return value[1:-1] or None
    return None


def _sysctl_string(name: str) -> str | None:  # pragma: no cover - macOS, the BSDs
    """A string sysctl through libc's ``sysctlbyname`` (no ``sysctl`` process: this is on
    every probe's path, once per process). None if it cannot be read this way."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        size = ctypes.c_size_t(0)
        if libc.sysctlbyname(name.encode(), None, ctypes.byref(size), None, 0) != 0:
            return None
        buf = ctypes.create_string_buffer(size.value + 1)
        if libc.sysctlbyname(name.encode(), buf, ctypes.byref(size), None, 0) != 0:
            return None
        return parse_sysctl_value(buf.value.decode("ascii", "replace"))
    except (OSError, AttributeError, ValueError):
        return None


def _run(argv: list[str]) -> str | None:
    import subprocess

    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read(256).strip() or None
    except OSError:
        return None


def _windows_machine_guid() -> str | None:  # pragma: no cover - Windows
    try:
        import winreg  # type: ignore[import-not-found,unused-ignore]

        key = winreg.OpenKey(  # type: ignore[attr-defined,unused-ignore]
            winreg.HKEY_LOCAL_MACHINE,  # type: ignore[attr-defined,unused-ignore]
            r"SOFTWARE\Microsoft\Cryptography",
        )
        value, _kind = winreg.QueryValueEx(key, "MachineGuid")  # type: ignore[attr-defined,unused-ignore]
        return str(value) or None
    except (ImportError, OSError):
        return None


def proc_info(pid: int) -> dict[str, Any] | None:
    """What psutil says about ``pid`` now: ``{"pid", "state", "startTime",
    "startSource"}`` (``state`` psutil's status name, ``Z`` for a zombie; on Linux also
    ``startTicks``), ``{"pid", "state": "unknown"}`` when it exists but may not be
    read, None when no such process exists."""
    if pid <= 0:
        return None
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            created = proc.create_time()
            threads = proc.num_threads() if status == psutil.STATUS_ZOMBIE else 1
    except psutil.ZombieProcess:
        return {"pid": pid, "state": "Z"}
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:  # pragma: no cover - platform specific
        return {"pid": pid, "state": "unknown"}
    # a main thread that exited while other threads run shows as a zombie: alive ("L",
    # as the /proc backend says)
    state = ("Z" if threads <= 1 else "L") if status == psutil.STATUS_ZOMBIE else status
    info: dict[str, Any] = {"pid": pid, "state": state, "startTime": created}
    info["startSource"] = SOURCE
    if SOURCE == "psutil-linux":
        ticks = _linux_ticks(psutil, created)
        if ticks is not None:
            info["startTicks"] = ticks
    return info


def _linux_ticks(psutil: Any, created: float) -> int | None:
    """Linux: the start in clock ticks since boot, which psutil's wall time is made of
    (``ticks / CLK_TCK + btime``, btime the boot time in whole seconds). btime steps
    when the wall clock is set; a step between psutil's read of it and this one (a few
    microseconds apart) would shift the ticks by a multiple of CLK_TCK."""
    try:
        hz = _clock_ticks()
        booted: float = psutil.boot_time()
    except (ValueError, OSError, AttributeError, RuntimeError):  # pragma: no cover
        return None
    return round((created - booted) * hz)


def _clock_ticks() -> int:
    if "hz" not in _cache:
        _cache["hz"] = str(os.sysconf("SC_CLK_TCK"))
    return int(_cache["hz"] or 100)


def read_proc_stat(pid: int) -> tuple[str, int] | None:
    return None  # no /proc


def pidfs_inode(pid: int) -> int | None:
    return None


def pidfd_lookup(pid: int) -> tuple[int | None, int]:
    return None, -1


def pidfs_ok() -> bool:
    return False


def pid_namespace() -> str | None:
    return None


def proc_is_ours() -> bool:
    return True


def environ_entries(pid: int) -> list[bytes] | None:
    """The entries (``NAME=value``) of ``pid``'s environment, or None when psutil cannot
    read it (no such process; another user's process: ``AccessDenied``)."""
    if pid <= 0:
        return None
    import psutil

    try:
        env = psutil.Process(pid).environ()
    except (psutil.Error, OSError):
        return None
    return [os.fsencode(f"{name}={value}") for name, value in env.items()]


def marked_pids(mark: bytes) -> list[int]:
    """Pids (other than ours) of this user's processes whose environment holds the
    entry ``mark`` (``JOBGATE_JOB_ID=<id>``): a job's descendants that left its tree
    (``setsid``, double fork). Other users' environments are not readable (and not
    looked at); a pid found here is re-checked by its caller before any signal."""
    import psutil

    name, _, value = os.fsdecode(mark).partition("=")
    me = os.getpid()
    getuid = getattr(os, "getuid", None)
    uid = getuid() if getuid is not None else None
    found: list[int] = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if uid is not None and proc.uids().real != uid:
                continue
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if env.get(name) == value:
            found.append(proc.pid)
    return found


def detached_options() -> dict[str, Any]:
    """:class:`subprocess.Popen` options that start a process detached from ours: its
    own session on POSIX; on Windows a new process group without a console (so Ctrl-C
    and Ctrl-Break of ours do not reach it; not checked here)."""
    if sys.platform == "win32":  # pragma: no cover - Windows
        import subprocess

        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) | getattr(
            subprocess, "DETACHED_PROCESS", 0
        )
        return {"creationflags": flags}
    return {"start_new_session": True}
