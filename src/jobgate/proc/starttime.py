"""When two start times are the same process's: pure rules, no I/O.

A pid names a process only together with its start time. Each platform's start times
come from a clock of its own granularity; the identity records which (``startSource``)
and two start times of the same source are the same when they differ by no more than
that clock's granularity (plus the microsecond the stored value is rounded to). A pid
reused 0.3 s later on macOS (start times exact to the microsecond) is another process.

- ``proc-stat``: Linux ``/proc/<pid>/stat`` field 22, clock ticks since boot, compared
  exactly (``startTicks``), as is ``psutil-linux`` (psutil's wall time is made of them);
- ``psutil-darwin``: ``kinfo_proc.p_starttime``, a ``timeval`` (1 µs);
- ``psutil-win32``: ``GetProcessTimes``' creation ``FILETIME`` (100 ns);
- no source recorded (identities of older versions, other sources): 1 s, the old rule.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: ``startSource`` -> the granularity (seconds) of the clock its start times come from
GRANULARITY = {
    "proc-stat": 0.01,  # clock ticks (USER_HZ is 100 on every mainstream kernel)
    "psutil-linux": 0.01,
    "psutil-darwin": 1e-6,
    "psutil-win32": 1e-7,
}

#: start times are stored rounded to this many decimals (a microsecond)
STORED_DECIMALS = 6

#: what two readings of the same start time may differ by beyond the clock's
#: granularity: the stored rounding (0.5 µs) and a double's spacing near 2e9 (0.24 µs)
SLACK = 1e-6

#: the tolerance for start times of unknown or mismatched sources
LEGACY_TOLERANCE = 1.0


def tolerance(recorded_source: object, current_source: object) -> float:
    """How far apart (seconds) two start times read from these sources may be and still
    be the same process's."""
    if recorded_source == current_source and isinstance(recorded_source, str):
        granularity = GRANULARITY.get(recorded_source)
        if granularity is not None:
            return granularity + SLACK
    return LEGACY_TOLERANCE


def same_start(recorded: dict[str, Any], current: dict[str, Any]) -> bool | None:
    """Whether the start recorded in identity ``recorded`` is that of the process now
    described by ``current`` (``proc_info``): clock ticks when both have them, else the
    wall times within :func:`tolerance`. None when ``recorded`` has no start time."""
    rec_ticks = recorded.get("startTicks")
    ticks = current.get("startTicks")
    if isinstance(rec_ticks, int) and isinstance(ticks, int):
        return bool(rec_ticks == ticks)
    rec_time = recorded.get("startTime")
    now_time = current.get("startTime")
    if isinstance(rec_time, bool) or not isinstance(rec_time, (int, float)):
        return None
    if not isinstance(now_time, (int, float)):
        return None
    limit = tolerance(recorded.get("startSource"), current.get("startSource"))
    return abs(float(rec_time) - float(now_time)) <= limit
