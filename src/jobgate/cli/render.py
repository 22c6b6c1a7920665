"""Human text and ``--json`` output. Pure: strings in, strings out (plus small file tails)."""

from __future__ import annotations

import time

from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: finished jobs shown by ``status`` without ``--all``
RECENT_FINISHED = 10
#: log lines shown under a running job
TAIL_LINES = 3


def to_json(obj: Any) -> str:
    """``--json`` output: UTF-8 text as is; undecodable bytes as ``\\udcXX`` escapes."""
    from jobgate.state.fileio import json_text

    return json_text(obj, indent=2)


def status_json(
    root: str, state_dir: str, jobs: list[model.Job], lines: bytes = b""
) -> list[bytes]:
    """``status --json`` (UTF-8, in pieces): ``workspaceRoot``, ``stateDir`` and
    ``jobs``, one job per line (compact), so ten thousand of them print fast and grep
    well: ``jobs``, then ``lines``, log lines of finished jobs passed through as they are
    (each a JSON object ending in a newline)."""
    from jobgate.state.fileio import json_text

    parts = [json_text(j, separators=(",", ":")).encode("utf-8") for j in jobs]
    if lines:
        # the separators in place of the newlines: one pass over megabytes, no split
        parts.append(lines[:-1].replace(b"\n", b",\n    "))
    head = f'{{\n  "workspaceRoot": {json_text(root)},\n  "stateDir": {json_text(state_dir)},\n'
    if not parts:
        return [head.encode("utf-8"), b'  "jobs": []\n}\n']
    return [head.encode("utf-8"), b'  "jobs": [\n    ', b",\n    ".join(parts), b"\n  ]\n}\n"]


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def elapsed(job: model.Job, now: float | None = None) -> str:
    if now is None:
        now = time.time()
    start = model.parse_iso(job.get("startedAt")) or model.parse_iso(job.get("createdAt"))
    end = model.parse_iso(job.get("completedAt")) or now
    if start is None:
        return "?"
    return duration(end - start)


def tail_lines(path: object, count: int, max_bytes: int = 16384) -> list[str]:
    """The last ``count`` non-empty lines of a text file ([] if unreadable)."""
    if not isinstance(path, str) or count <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    lines = [ln for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-count:]


def job_line(job: model.Job, now: float | None = None) -> str:
    status = str(job.get("status"))
    if job.get("phase") == model.PHASE_LOST:
        status = "failed (lost)"
    bits = [f"{job.get('id')}", f"{status:<10}", elapsed(job, now)]
    if job.get("exitCode") is not None and model.is_finished(job):
        bits.append(f"exit {job.get('exitCode')}")
    name = job.get("name")
    if name:
        bits.append(f"— {name}")
    return "  ".join(bits)


def status_text(
    jobs: list[model.Job], *, show_all: bool, workspace_root: str, now: float | None = None
) -> str:
    ordered = model.sort_newest_first(jobs)
    active = [j for j in ordered if model.is_active(j)]
    finished = [j for j in ordered if not model.is_active(j)]
    if not show_all:
        finished = finished[:RECENT_FINISHED]
    out: list[str] = [f"workspace: {workspace_root}"]
    if not ordered:
        out.append("no jobs yet (start one: jobgate run --background -- CMD)")
        return "\n".join(out) + "\n"
    out.append(f"running ({len(active)}):" if active else "running: none")
    for job in active:
        out.append("  " + job_line(job, now))
        if job.get("pid"):
            out.append(f"      pid {job.get('pid')}  cancel: jobgate cancel {job.get('id')}")
        for line in tail_lines(job.get("logFile"), TAIL_LINES):
            out.append(f"      | {line[:200]}")
    if finished:
        label = "finished" if show_all else "recent"
        out.append(f"{label} ({len(finished)}):")
        for job in finished:
            out.append("  " + job_line(job, now))
            failed = job.get("status") == model.FAILED
            if failed and job.get("errorMessage"):
                out.append(f"      {job.get('errorMessage')}")
    return "\n".join(out) + "\n"


def job_text(job: model.Job, now: float | None = None) -> str:
    """``status JOB``: one job in detail."""
    keys = [
        ("status", "status"),
        ("phase", "phase"),
        ("name", "name"),
        ("kind", "kind"),
        ("command", "command"),
        ("cwd", "cwd"),
        ("session", "sessionId"),
        ("pid", "pid"),
        ("command pid", "commandPid"),
        ("exit code", "exitCode"),
        ("error", "errorMessage"),
        ("created", "createdAt"),
        ("started", "startedAt"),
        ("completed", "completedAt"),
        ("log", "logFile"),
    ]
    out = [f"job {job.get('id')}  ({elapsed(job, now)})"]
    for label, key in keys:
        value = job.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, list):
            import shlex

            value = shlex.join(str(v) for v in value)
        out.append(f"  {label + ':':<13}{value}")
    if model.is_active(job):
        for line in tail_lines(job.get("logFile"), TAIL_LINES * 2):
            out.append(f"  | {line[:200]}")
    return "\n".join(out) + "\n"


def result_text(job: model.Job) -> str:
    out = [
        f"job {job.get('id')}: {job.get('status')}"
        + (f" (exit code {job.get('exitCode')})" if job.get("exitCode") is not None else "")
    ]
    if job.get("errorMessage"):
        out.append(f"error: {job.get('errorMessage')}")
    output = job.get("output")
    if isinstance(output, str) and output:
        out.append("--- output ---")
        out.append(output.rstrip("\n"))
    return "\n".join(out) + "\n"


def sweep_text(changed: list[tuple[str, str]], dry_run: bool) -> str:
    if not changed:
        return "nothing to reconcile: every active job is really running\n"
    verb = "would mark" if dry_run else "marked"
    lines = [f"{verb} {len(changed)} job(s) failed (lost):"]
    lines += [f"  {job_id}: {reason}" for job_id, reason in changed]
    return "\n".join(lines) + "\n"
