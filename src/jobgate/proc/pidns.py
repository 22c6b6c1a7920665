"""Identities recorded in another pid namespace than the reader's (a container, or
``unshare -p``): the same number names another process here, if any.

Linux only, and only on the rare path of such an identity (:func:`jobgate.proc.liveness.probe`
imports this lazily). A pid namespace is known by the inode of ``/proc/<pid>/ns/pid``;
``/proc/<pid>/status`` lists a process's pid in each namespace it is in (``NSpid``).
"""

from __future__ import annotations

import os

from jobgate.proc import liveness

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: the inode number of the initial pid namespace (the kernel's PROC_PID_INIT_INO): a
#: reader in it sees the processes of every pid namespace
ROOT_PID_NS = "pid:[4026531836]"


#: how long one scan of /proc serves further lookups (one hook run, one wait poll)
SCAN_TTL = 0.5


class _Scan:
    """Which processes visible here belong to which other pid namespace, and their
    innermost pids: ``members[ns][innermost pid] = pid here``."""

    def __init__(self) -> None:
        self.members: dict[str, dict[int, int]] = {}
        self.complete = True  # False: some process could not be placed in a namespace
        here = liveness.pid_namespace()
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


_scans: list[tuple[float, _Scan]] = []


def _scan(fresh: bool = False) -> _Scan:
    import time

    now = time.monotonic()
    if fresh or not _scans or now - _scans[0][0] > SCAN_TTL:
        _scans[:] = [(now, _Scan())]
    return _scans[0][1]


def local_pid(pid: int, rec_ns: str) -> int | None:
    """The pid here of the process that is ``pid`` in namespace ``rec_ns`` (None if no
    such process is visible from here). Says nothing about *which* process it is: probe
    the identity before acting on it."""
    if not liveness.proc_is_ours():
        return None
    return _scan().members.get(rec_ns, {}).get(pid)


def probe_across(ident: dict[str, Any], pid: int, rec_ns: str, here_ns: str) -> tuple[str, str]:
    """Probe an identity recorded in pid namespace ``rec_ns`` from ``here_ns``.

    Looks among the processes visible here for members of ``rec_ns`` and the one whose
    innermost pid (``NSpid``) is ``pid``, then probes it under its pid here. No member
    visible: from the initial namespace (which sees all) that namespace is gone, and
    with it the process; from anywhere else nothing can be told (``UNVERIFIED``).
    One scan of ``/proc`` serves every lookup for :data:`SCAN_TTL` seconds.
    """
    if not liveness.proc_is_ours():
        return liveness.UNVERIFIED, f"pid {pid}: this /proc belongs to another pid namespace"
    verdict = _probe_in(_scan(), ident, pid, rec_ns, here_ns)
    if verdict[0] == liveness.GONE:
        # a cached scan may predate the process: "gone" is only ever said from a fresh one
        verdict = _probe_in(_scan(fresh=True), ident, pid, rec_ns, here_ns)
    return verdict


def _probe_in(
    scan: _Scan, ident: dict[str, Any], pid: int, rec_ns: str, here_ns: str
) -> tuple[str, str]:
    members = scan.members.get(rec_ns)
    if members is not None:
        here = members.get(pid)
        if here is None:
            return liveness.GONE, f"pid {pid} is gone (no longer in its pid namespace)"
        local = {k: v for k, v in ident.items() if k != "pidNs"}
        local["pid"] = here
        verdict, evidence = liveness.probe(local)
        return verdict, f"{evidence} (pid {pid} in its own pid namespace)"
    if here_ns == ROOT_PID_NS and scan.complete:
        return liveness.GONE, f"pid {pid} is gone (its pid namespace no longer exists)"
    return liveness.UNVERIFIED, f"pid {pid} was recorded in another pid namespace than this one"


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
