"""``jobgate doctor codex``: find, and on request repair, the Codex companion plugin's stuck jobs.

The Codex companion plugin for Claude Code keeps one folder per workspace under its state
root (``$CLAUDE_PLUGIN_DATA/state``, else ``<temp dir>/codex-companion``) with a
``state.json`` index and ``jobs/<id>.json`` / ``jobs/<id>.log`` per job. It trusts the
stored ``status``: a worker killed from outside leaves its job ``running`` forever.

For every ``queued``/``running`` record this module decides, from the recorded ``pid`` and
the job's own times (the plugin records no process start time), one verdict:

* ``gone`` -- no process has that pid, or it is a zombie (exited, not reaped);
* ``reused`` -- a process has that pid but started more than
  :data:`TIME_TOLERANCE_SECONDS` after the job did, so it cannot be the job's worker;
* ``alive`` -- the process started before the job (within the tolerance): left alone;
* ``unverifiable`` -- no pid, or no readable job time or process start time to compare:
  left alone.

``gone`` and ``reused`` are *stuck*. With ``fix=True`` they are rewritten in the plugin's
own failure shape (see :func:`failure_fields`), after a backup, atomically, and only if
the file did not change meanwhile (the plugin takes no lock). No process is ever
signalled: a reused pid belongs to a stranger.

Layout: the pure rules (:func:`decide`, :func:`record_problem`, :func:`failure_fields`)
live in :mod:`jobgate.codex.rules`; the :class:`Report` (findings, damage) in
:mod:`jobgate.codex.report`; checking and repairing one workspace folder (files
through :mod:`jobgate.codex.files`) in :mod:`jobgate.codex.workspace`. Their
public names are re-exported here. This module's :func:`scan` finds the folders (where
to look is :mod:`jobgate.codex.roots`), probes processes through
:mod:`jobgate.proc.liveness` and returns the report; rendering lives in
:mod:`jobgate.cli.doctor`.

Platform notes: process start times come from :func:`jobgate.proc.liveness.proc_info` (``/proc``
on Linux, psutil elsewhere). Linux derives them from the boot time, which is rounded to a
second and moves if the wall clock is stepped after boot; the tolerance absorbs that.
Where a process's start time cannot be read (another user's process on some platforms),
a live pid is ``unverifiable``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from jobgate.codex.report import EXIT_STUCK, Damage, Finding, Report
from jobgate.codex.roots import default_search, default_state_roots, workspace_folders
from jobgate.codex.rules import (
    ACTIVE_STATUSES,
    ALIVE,
    FINISHED_STATUSES,
    GONE,
    REUSED,
    STUCK,
    TIME_TOLERANCE_SECONDS,
    UNVERIFIABLE,
    Decision,
    ProcFacts,
    apply_fields,
    decide,
    failure_fields,
    job_time,
    record_problem,
    safe_job_id,
)
from jobgate.codex.workspace import MAX_WRITE_ATTEMPTS, WorkspaceCheck

__all__ = [
    "ACTIVE_STATUSES",
    "ALIVE",
    "EXIT_STUCK",
    "FINISHED_STATUSES",
    "GONE",
    "MAX_WRITE_ATTEMPTS",
    "REUSED",
    "STUCK",
    "TIME_TOLERANCE_SECONDS",
    "UNVERIFIABLE",
    "Damage",
    "Decision",
    "Finding",
    "ProcFacts",
    "Report",
    "apply_fields",
    "decide",
    "default_search",
    "default_state_roots",
    "failure_fields",
    "job_time",
    "proc_facts",
    "record_problem",
    "safe_job_id",
    "scan",
    "workspace_folders",
]


# ---------------------------------------------------------------------------- I/O


def proc_facts(pid: int) -> ProcFacts | None:
    """Ask the OS about ``pid`` (see :func:`jobgate.proc.liveness.proc_info`)."""
    from jobgate.proc import liveness

    info = liveness.proc_info(pid)
    if info is None:
        return None
    start = info.get("startTime")
    start_time = float(start) if isinstance(start, (int, float)) and start > 0 else None
    return ProcFacts(pid=pid, zombie=info.get("state") in ("Z", "X"), start_time=start_time)


def scan(
    state_roots: Sequence[Path] | None = None,
    *,
    fix: bool = False,
    probe: Callable[[int], ProcFacts | None] = proc_facts,
    clock: Callable[[], float] = time.time,
) -> Report:
    """Check every workspace folder under ``state_roots`` (default: :func:`default_search`).

    Roots that do not exist are skipped (the caller validates roots the user named).
    Without ``fix`` nothing is written, not even a backup.
    """
    if state_roots:
        candidates = list(state_roots)
        searched = [str(c) for c in candidates]
    else:
        search = default_search()
        candidates, searched = search.roots, search.places
    seen: set[str] = set()
    roots: list[Path] = []
    for root in candidates:
        real = os.path.realpath(root)
        if real in seen or not os.path.isdir(root):
            continue
        seen.add(real)
        roots.append(root)
    report = Report(state_roots=[str(r) for r in roots], searched=searched, fix=fix)
    for root in roots:
        folders = workspace_folders(root)
        if not folders:
            report.empty_roots.append(str(root))
        for folder in folders:
            report.workspaces.append(str(folder))
            WorkspaceCheck(report, root, folder, probe, clock).run(fix)
    return report
