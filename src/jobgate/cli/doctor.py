"""CLI wiring for ``jobgate doctor``: argument parsing, output and exit codes only.

The checks themselves live in :mod:`jobgate.codex.doctor`.
"""

from __future__ import annotations

import argparse
import sys

from jobgate.state.errors import EXIT_USAGE, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from jobgate.codex.doctor import Finding, Report

_CODEX_DESCRIPTION = """\
Find the Codex companion plugin's jobs that are recorded as queued or running but whose
process is gone, and (with --fix) mark them failed the way the plugin itself would.

For every queued/running job the recorded pid is checked against the job's startedAt
(else createdAt), with a tolerance of 5 seconds:
  gone          no process has that pid, or it is a zombie          -> stuck
  reused        the pid's process started after the job did         -> stuck
  alive         the pid's process started before the job            -> left alone
  unverifiable  no pid, no readable job time, or the process start
                time unreadable, so reuse cannot be ruled out      -> left alone
No process is ever signalled. Without --fix nothing is written at all.

--fix first keeps a backup beside each file it changes (state.json.bak-<time>,
jobs/<id>.json.bak-<time>), then sets status and phase "failed", pid null,
completedAt, updatedAt and an errorMessage saying what was found, in state.json and
jobs/<id>.json, keeping every other field, the key order and the layout, and appends
a line to the job's log. Files are replaced atomically and only if the plugin did not
change them meanwhile (else they are re-read and checked again). Damaged files
(invalid JSON, wrong types) are reported and left untouched.
"""

_CODEX_EPILOG = """\
state roots searched when no --state-root is given:
  $CLAUDE_PLUGIN_DATA/state
  $CLAUDE_CONFIG_DIR/plugins/data/*codex*/state   (when CLAUDE_CONFIG_DIR is set)
  ~/.claude/plugins/data/*codex*/state
  <temp dir>/codex-companion
Only plugin data folders whose name contains "codex" are searched: other plugins'
look-alike state is never touched (name it with --state-root to check it anyway).
A state root holds one folder per workspace (<slug>-<16 hex>/state.json). A plugin
data folder (the one holding state/) given as --state-root means its state/ folder.

exit status:
  0  nothing stuck was found, or everything stuck was fixed
  1  stuck jobs remain (found without --fix, or --fix could not fix them)
  2  bad arguments (a --state-root that is empty, missing or not a directory)
Damaged files are reported but do not change the exit status on their own.

examples:
  jobgate doctor codex                 # report only; exit 1 if something is stuck
  jobgate doctor codex --fix           # mark stuck jobs failed (backups kept)
  jobgate doctor codex --json | jq '.findings[] | select(.verdict == "gone")'
  jobgate doctor codex --state-root "$CLAUDE_PLUGIN_DATA/state" --fix
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``doctor`` and its ``codex`` check on the main CLI's ``subparsers``."""
    doctor = subparsers.add_parser(
        "doctor",
        help="check and repair job state kept by other tools",
        description="Check, and on request repair, job state kept by other tools.",
    )
    checks = doctor.add_subparsers(dest="doctor_check", metavar="CHECK", required=True)
    codex = checks.add_parser(
        "codex",
        help="find and repair the Codex companion plugin's stuck jobs",
        description=_CODEX_DESCRIPTION,
        epilog=_CODEX_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    codex.add_argument(
        "--state-root",
        dest="state_roots",
        action="append",
        metavar="DIR",
        help="a plugin state root to check instead of the default places (repeatable); "
        "a plugin data folder (holding state/) or a single workspace folder holding "
        "state.json is accepted too",
    )
    codex.add_argument(
        "--fix",
        action="store_true",
        help="mark gone/reused jobs failed (after a backup); default: report only",
    )
    codex.add_argument("--json", action="store_true", help="print one JSON object")
    codex.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    """Run ``jobgate doctor codex``; return the exit status (see the epilog)."""
    import json

    from jobgate.codex import doctor as doctor_codex
    from jobgate.codex.roots import resolve_state_root

    roots: list[Path] | None = None
    notes: list[str] = []
    if args.state_roots is not None:
        roots = []
        for raw in args.state_roots:
            try:
                root, note = resolve_state_root(raw)
            except ValueError as exc:
                raise JobgateError(str(exc), EXIT_USAGE) from None
            roots.append(root)
            if note:
                notes.append(note)
    report = doctor_codex.scan(roots, fix=args.fix)
    report.notes[:0] = notes
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(report, roots))
    sys.stdout.flush()
    return report.exit_code()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _table(findings: list[Finding]) -> list[str]:
    rows = [("JOB", "STATUS", "PID", "VERDICT", "ACTION")]
    rows += [
        (f.job_id, f.status, "-" if f.pid is None else str(f.pid), f.verdict, f.action)
        for f in findings
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines: list[str] = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        lines.append("  " + "  ".join([*cells, row[4]]).rstrip())
        if n:
            lines.append(f"    why: {findings[n - 1].reason}")
    return lines


def _header(folder: str, findings: list[Finding]) -> str:
    """The workspace folder, and the workspace its jobs record (``workspaceRoot``)."""
    roots = list(dict.fromkeys(f.workspace_root for f in findings if f.workspace_root))
    return f"{folder}  (workspace: {', '.join(roots)})" if roots else folder


def render_text(report: Report, roots: list[Path] | None = None) -> str:
    """The human report: a short table per workspace folder, then a summary."""
    import shlex

    out: list[str] = [*report.notes]
    if not report.state_roots:
        out.append("No Codex companion state found. Looked in:")
        out += [f"  {p}" for p in report.searched]
        return "\n".join(out) + "\n"
    for empty in report.empty_roots:
        out.append(f"No workspace folder (a folder holding state.json) in {empty}.")
    if out:
        out.append("")
    by_folder: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_folder.setdefault(f.workspace, []).append(f)
    for folder, findings in by_folder.items():
        out.append(_header(folder, findings))
        out += _table(findings)
        out.append("")
    if report.damaged:
        out.append("Damaged (left untouched):")
        out += [f"  {d.path}: {d.reason}" for d in report.damaged]
        out.append("")
    stuck = [f for f in report.findings if f.stuck]
    counts = {v: sum(1 for f in report.findings if f.verdict == v) for v in _VERDICTS}
    checked = (
        f"Checked {_plural(len(report.workspaces), 'workspace folder')} in "
        f"{', '.join(report.state_roots)}"
    )
    if not report.findings:
        out.append(f"{checked}: no queued or running jobs.")
    elif not stuck:
        out.append(
            f"{checked}: nothing stuck ({counts['alive']} alive, "
            f"{counts['unverifiable']} unverifiable)."
        )
    else:
        out.append(
            f"{checked}: {_plural(len(stuck), 'stuck job')} ({counts['gone']} gone, "
            f"{counts['reused']} reused), {counts['alive']} alive, "
            f"{counts['unverifiable']} unverifiable."
        )
        fixed = [f for f in stuck if f.fixed]
        if not report.fix:
            command = ["jobgate", "doctor", "codex"]
            for root in roots or []:
                command += ["--state-root", str(root)]
            out.append(
                f"Run `{shlex.join([*command, '--fix'])}` to mark them failed "
                "(a backup of each changed file is kept)."
            )
        else:
            if fixed:
                out.append(f"Fixed {_plural(len(fixed), 'job')}. Backups:")
                out += [f"  {b}" for b in report.backups]
            if report.unfixed:
                out.append(f"{_plural(len(report.unfixed), 'stuck job')} NOT fixed (see above).")
    return "\n".join(out) + "\n"


_VERDICTS = ("gone", "reused", "alive", "unverifiable")
