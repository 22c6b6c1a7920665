"""Identities recorded in another pid namespace than the reader's (a container, or
``unshare -p``): the same number names another process here, if any.

Linux only, and only on the rare path of such an identity (:mod:`jobgate.proc.liveness`
imports this lazily). A pid namespace is known by the inode of ``/proc/<pid>/ns/pid``;
``/proc/<pid>/status`` lists a process's pid in each namespace it is in (``NSpid``).
"""

from __future__ import annotations

import os

from jobgate.proc import _linux

#: the inode number of the initial pid namespace (the kernel's PROC_PID_INIT_INO): a
#: reader in it sees the processes of every pid namespace
ROOT_PID_NS = "pid:[4026531836]"


#: how long one scan of /proc serves further lookups (one hook run, one wait poll)
SCAN_TTL = 0.5


class Scan:
    """Which processes visible here belong to which other pid namespace, and their
    innermost pids: ``members[ns][innermost pid] = pid here``."""

    def __init__(self) -> None:
        self.members: dict[str, dict[int, int]] = {}
        self.complete = True  # False: some process could not be placed in a namespace
        here = _linux.pid_namespace()
        try:
            entries = os.listdir("/proc")
        except OSError:
            self.complete = False
            return
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                ns = os.readlink(f"/proc/{entry}/ns/pid")
            except FileNotFoundError:
                continue  # exited meanwhile
            except OSError:
                # not ours to look at (even root may not: a protected init). Its NSpid
                # line is public: one pid means it lives in this /proc's own namespace
                if len(_nspids(entry)) != 1:
                    self.complete = False
                continue
            if ns == here:
                continue
            pids = _nspids(entry)
            if pids:
                self.members.setdefault(ns, {})[pids[-1]] = int(entry)


_scans: list[tuple[float, Scan]] = []


def scan(fresh: bool = False) -> Scan:
    import time

    now = time.monotonic()
    if fresh or not _scans or now - _scans[0][0] > SCAN_TTL:
        _scans[:] = [(now, Scan())]
    return _scans[0][1]


def local_pid(pid: int, rec_ns: str) -> int | None:
    """The pid here of the process that is ``pid`` in namespace ``rec_ns`` (None if no
    such process is visible from here). Says nothing about *which* process it is: probe
    the identity before acting on it."""
    if not _linux.proc_is_ours():
        return None
    return scan().members.get(rec_ns, {}).get(pid)


def _nspids(entry: str) -> list[int]:
    """The ``NSpid`` line of ``/proc/<entry>/status``: its pid in each pid namespace it
    is in, from this /proc's namespace inward ([] if unreadable)."""
    try:
        with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return [int(v) for v in line.split()[1:]]
    except (OSError, ValueError):
        return []
    return []
