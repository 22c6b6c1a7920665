"""``jobgate doctor codex``, one workspace folder: check its jobs and, with ``fix``, repair them.

:class:`WorkspaceCheck` reads a Codex companion workspace folder's ``state.json``, asks
:func:`jobgate.codex.rules.decide` about every ``queued``/``running`` record and
adds what it found to the :class:`~jobgate.codex.report.Report`. With ``fix`` it
rewrites the stuck records in the plugin's own failure shape -- after a backup,
atomically, and only if the file did not change meanwhile (the plugin takes no lock;
a file that keeps changing is re-read up to :data:`MAX_WRITE_ATTEMPTS` times) -- then
the job's own ``jobs/<id>.json`` the same way, and appends a line to its log.

:func:`jobgate.codex.doctor.scan` finds the folders and runs one check per folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobgate.codex import files as cf
from jobgate.codex.report import Damage, Finding, Report
from jobgate.codex.rules import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Decision,
    ProcFacts,
    apply_fields,
    decide,
    failure_fields,
    json_text,
    json_type,
    record_problem,
    safe_job_id,
)

#: how many times a file that keeps changing under us is re-read before giving up
MAX_WRITE_ATTEMPTS = 5


def _log_path(workspace: Path, record: Mapping[str, Any]) -> Path | None:
    """The job's log: its ``logFile`` when that lies inside the workspace folder, else
    ``jobs/<id>.log``; None when neither is safe to write."""
    real_ws = os.path.realpath(workspace)
    log_file = record.get("logFile")
    if isinstance(log_file, str) and log_file and os.path.isabs(log_file):
        real = os.path.realpath(log_file)
        if real.startswith(real_ws + os.sep) and os.path.isdir(os.path.dirname(real)):
            return Path(real)
    job_id = record.get("id")
    jobs_dir = workspace / "jobs"
    if safe_job_id(job_id) and jobs_dir.is_dir() and not jobs_dir.is_symlink():
        return jobs_dir / f"{job_id}.log"
    return None


@dataclass
class _JobFile:
    path: Path
    data: bytes | None = None
    doc: dict[str, Any] | None = None
    style: cf.JsonStyle | None = None
    problem: str | None = None


def _read_job_file(workspace: Path, job_id: str) -> _JobFile | None:
    """``jobs/<id>.json`` read and parsed, or None when there is none (or no safe name)."""
    if not safe_job_id(job_id):
        return None
    path = workspace / "jobs" / f"{job_id}.json"
    if not os.path.lexists(path):
        return None
    job = _JobFile(path)
    try:
        job.data = cf.read_bytes(path)
        doc, job.style = cf.parse_json(job.data)
    except cf.FileProblem as exc:
        job.problem = exc.reason
        return job
    if not isinstance(doc, dict):
        job.problem = f"is {json_type(doc)}, expected an object"
    else:
        job.doc = doc
    return job


class WorkspaceCheck:
    """Checks (and with ``fix`` repairs) one workspace folder."""

    def __init__(
        self,
        report: Report,
        root: Path,
        folder: Path,
        probe: Callable[[int], ProcFacts | None],
        clock: Callable[[], float],
    ) -> None:
        self.report = report
        self.root = root
        self.folder = folder
        self.state_path = folder / "state.json"
        self.probe = probe
        self.clock = clock

    def _damage(self, path: Path, reason: str) -> None:
        self.report.damaged.append(Damage(str(path), reason))

    def _evaluate(self, doc: Any) -> tuple[list[Finding], list[Damage]] | None:
        if not isinstance(doc, dict):
            self._damage(self.state_path, f"top level is {json_type(doc)}, expected an object")
            return None
        jobs = doc.get("jobs", [])
        if not isinstance(jobs, list):
            self._damage(self.state_path, f'"jobs" is {json_type(jobs)}, expected an array')
            return None
        findings: list[Finding] = []
        damaged: list[Damage] = []
        for index, record in enumerate(jobs):
            problem = record_problem(record)
            if problem is not None:
                label = f"jobs[{index}]"
                if isinstance(record, dict) and isinstance(record.get("id"), str):
                    label += f" ({record['id']})"
                damaged.append(Damage(str(self.state_path), f"{label} {problem}"))
                continue
            if record["status"] not in ACTIVE_STATUSES:
                continue
            pid = record.get("pid")
            decision = decide(record, self.probe(pid) if pid is not None else None)
            findings.append(
                Finding(
                    state_root=str(self.root),
                    workspace=str(self.folder),
                    job_id=record["id"],
                    status=record["status"],
                    pid=pid,
                    verdict=decision.verdict,
                    reason=decision.reason,
                    workspace_root=_text_or_none(record.get("workspaceRoot")),
                    index=index,
                )
            )
        return findings, damaged

    def run(self, fix: bool) -> None:
        if self.folder.is_symlink():
            self._damage(self.folder, "is a symbolic link; not followed")
            return
        backed_up: set[bytes] = set()
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            try:
                data = cf.read_bytes(self.state_path)
                doc, style = cf.parse_json(data)
            except cf.FileProblem as exc:
                self._damage(self.state_path, exc.reason)
                return
            evaluated = self._evaluate(doc)
            if evaluated is None:
                return
            findings, damaged = evaluated
            stuck = [f for f in findings if f.stuck]
            for f in findings:
                f.action = "would mark failed (use --fix)" if f.stuck else "left alone"
            if not fix or not stuck or damaged:
                if fix and damaged:
                    for f in stuck:
                        f.action = "NOT fixed: this state.json has damaged entries; repair by hand"
                self.report.findings.extend(findings)
                self.report.damaged.extend(damaged)
                return
            now = self.clock()
            now_iso = cf.iso_now(now)
            plans: list[tuple[Finding, dict[str, Any], _JobFile | None]] = []
            for f in stuck:
                job = _read_job_file(self.folder, f.job_id)
                fields = failure_fields(
                    Decision(f.verdict, f.reason), now_iso, job.doc if job else None
                )
                apply_fields(doc["jobs"][f.index], fields)
                plans.append((f, fields, job))
            try:
                new = cf.dump_json(doc, style)
                if data not in backed_up:
                    backup = cf.write_backup(self.state_path, data, cf.stamp_for_filename(now))
                    self.report.backups.append(str(backup))
                    backed_up.add(data)
                replaced = cf.replace_if_unchanged(self.state_path, data, new)
            except (OSError, ValueError) as exc:
                for f in stuck:
                    f.action = f"NOT fixed: could not rewrite {self.state_path}: {exc}"
                self.report.findings.extend(findings)
                return
            if replaced:
                self.report.findings.extend(findings)
                for f, fields, job in plans:
                    self._finish(f, fields, job, doc["jobs"][f.index], now)
                return
        for f in stuck:
            f.action = (
                f"NOT fixed: {self.state_path} kept changing while being rewritten "
                f"({MAX_WRITE_ATTEMPTS} attempts); run again"
            )
        self.report.findings.extend(findings)

    def _finish(
        self,
        f: Finding,
        fields: dict[str, Any],
        job: _JobFile | None,
        record: Mapping[str, Any],
        now: float,
    ) -> None:
        """state.json is repaired: now the job file and the log."""
        f.fixed = True
        copied = (
            job is not None and job.doc is not None and job.doc.get("status") in FINISHED_STATUSES
        )
        notes: list[str] = []
        if copied:
            f.action = f"set to {json_text(fields['status'])}, as its job file already records"
        else:
            f.action = "marked failed"
        if job is not None and job.problem is not None:
            self._damage(job.path, job.problem)
            notes.append("job file damaged, left untouched")
        elif job is not None and not copied:
            notes.append(self._fix_job_file(job.path, fields, now))
        elif job is None and not safe_job_id(f.job_id):
            notes.append("job id is not a safe file name: job file not touched")
        log = _log_path(self.folder, record)
        if log is not None:
            try:
                cf.append_log_line(log, f"jobgate doctor codex: {f.action}: {f.reason}.", now)
            except OSError as exc:
                notes.append(f"log not written: {exc.strerror or exc}")
        f.action = "; ".join([f.action, *notes])

    def _fix_job_file(self, path: Path, fields: dict[str, Any], now: float) -> str:
        backed_up: set[bytes] = set()
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            try:
                data = cf.read_bytes(path)
                doc, style = cf.parse_json(data)
            except cf.FileProblem as exc:
                self._damage(path, exc.reason)
                return "job file damaged, left untouched"
            if not isinstance(doc, dict):
                self._damage(path, f"is {json_type(doc)}, expected an object")
                return "job file damaged, left untouched"
            if doc.get("status") in FINISHED_STATUSES:
                return f"job file already says {json_text(doc['status'])}, left as is"
            apply_fields(doc, fields)
            try:
                if data not in backed_up:
                    backup = cf.write_backup(path, data, cf.stamp_for_filename(now))
                    self.report.backups.append(str(backup))
                    backed_up.add(data)
                if cf.replace_if_unchanged(path, data, cf.dump_json(doc, style)):
                    return "job file updated"
            except (OSError, ValueError) as exc:
                return f"job file not updated: {exc}"
        return f"job file not updated: it kept changing ({MAX_WRITE_ATTEMPTS} attempts)"


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
