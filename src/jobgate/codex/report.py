"""What ``jobgate doctor codex`` found: the :class:`Report` and its parts.

:mod:`jobgate.codex.doctor` fills a :class:`Report` (one :class:`Finding` per
``queued``/``running`` record, one :class:`Damage` per file or entry it could not use);
:mod:`jobgate.cli.doctor` renders it as text or ``--json``. The report holds no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobgate.codex.rules import STUCK

#: exit status when stuck jobs were found and are still stuck (not fixed)
EXIT_STUCK = 1


@dataclass
class Finding:
    """One ``queued``/``running`` record and what was decided (and done) about it."""

    state_root: str
    workspace: str
    job_id: str
    status: str
    pid: int | None
    verdict: str
    reason: str
    fixed: bool = False
    action: str = ""
    workspace_root: str | None = None
    index: int = field(default=-1, repr=False)

    @property
    def stuck(self) -> bool:
        return self.verdict in STUCK

    def to_json(self) -> dict[str, Any]:
        return {
            "stateRoot": self.state_root,
            "workspace": self.workspace,
            "workspaceRoot": self.workspace_root,
            "jobId": self.job_id,
            "status": self.status,
            "pid": self.pid,
            "verdict": self.verdict,
            "reason": self.reason,
            "fixed": self.fixed,
            "action": self.action,
        }


@dataclass(frozen=True)
class Damage:
    path: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class Report:
    state_roots: list[str]
    searched: list[str]
    fix: bool
    workspaces: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    damaged: list[Damage] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)
    #: roots checked that hold no workspace folder
    empty_roots: list[str] = field(default_factory=list)
    #: things the user should know about how the roots were found
    notes: list[str] = field(default_factory=list)

    @property
    def unfixed(self) -> list[Finding]:
        return [f for f in self.findings if f.stuck and not f.fixed]

    def exit_code(self) -> int:
        """0 when nothing is stuck any more; :data:`EXIT_STUCK` otherwise."""
        return EXIT_STUCK if self.unfixed else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "stateRoots": self.state_roots,
            "searched": self.searched,
            "emptyStateRoots": self.empty_roots,
            "notes": self.notes,
            "fix": self.fix,
            "workspaces": self.workspaces,
            "findings": [f.to_json() for f in self.findings],
            "damaged": [d.to_json() for d in self.damaged],
            "backups": self.backups,
            "stuck": sum(1 for f in self.findings if f.stuck),
            "fixed": sum(1 for f in self.findings if f.fixed),
        }
