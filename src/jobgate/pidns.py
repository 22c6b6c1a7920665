"""Identities recorded in another pid namespace than the reader's (a container, or
``unshare -p``): the same number names another process here, if any.

Linux only, and only on the rare path of such an identity (:func:`jobgate.liveness.probe`
imports this lazily). A pid namespace is known by the inode of ``/proc/<pid>/ns/pid``;
``/proc/<pid>/status`` lists a process's pid in each namespace it is in (``NSpid``).
"""

from __future__ import annotations

import os

from jobgate import liveness

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: the inode number of the initial pid namespace (the kernel's PROC_PID_INIT_INO): a
#: reader in it sees the processes of every pid namespace
ROOT_PID_NS = "pid:[4026531836]"


def probe_across(ident: dict[str, Any], pid: int, rec_ns: str, here_ns: str) -> tuple[str, str]:
    """Probe an identity recorded in pid namespace ``rec_ns`` from ``here_ns``.

    Looks among the processes visible here for members of ``rec_ns`` and the one whose
    innermost pid (``NSpid``) is ``pid``, then probes it under its pid here. No member
    visible: from the initial namespace (which sees all) that namespace is gone, and
    with it the process; from anywhere else nothing can be told (``UNVERIFIED``).
    """
    if not liveness.proc_is_ours():
        return liveness.UNVERIFIED, f"pid {pid}: this /proc belongs to another pid namespace"
    try:
        entries = os.listdir("/proc")
    except OSError:
        return liveness.UNVERIFIED, f"pid {pid} was recorded in another pid namespace than this one"
    seen_ns = False
    complete = True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != rec_ns:
                continue
        except FileNotFoundError:
            continue  # exited meanwhile
        except OSError:
            # not ours to look at (even root may not: a protected init). Its NSpid line
            # is public: one pid means it lives in our own namespace, so not in rec_ns
            if _nspid_depth(entry) != 1:
                complete = False  # it may be a member of rec_ns
            continue
        seen_ns = True
        if _innermost_pid(entry) != pid:
            continue
        local = {k: v for k, v in ident.items() if k != "pidNs"}
        local["pid"] = int(entry)
        verdict, evidence = liveness.probe(local)
        return verdict, f"{evidence} (pid {pid} in its own pid namespace)"
    if seen_ns:
        return liveness.GONE, f"pid {pid} is gone (no longer in its pid namespace)"
    if here_ns == ROOT_PID_NS and complete:
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


def _innermost_pid(entry: str) -> int | None:
    pids = _nspids(entry)
    return pids[-1] if pids else None


def _nspid_depth(entry: str) -> int:
    return len(_nspids(entry))
