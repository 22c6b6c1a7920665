"""A review job (kind ``review``): a read-only agent run over a diff git produced.

The target is the workspace's uncommitted change (staged, unstaged, untracked), or with
a base ref the branch since its merge base with it (:mod:`jobgate.agents.git`). The
prompt carries that diff byte for byte; one too large for a prompt is cut at a file
boundary (inside the first file only when even that does not fit), with a marker line
saying how much was shown and which files the agent must read itself.

The agent runs from its profile's read-only review template
(:data:`jobgate.agents.profiles.REVIEW_TEMPLATES`). Where it can be held to a JSON
schema (``codex exec --output-schema``), its final message is the review as JSON —
findings (file, line, severity, text), a summary and a one-word verdict — which
:func:`structured` reads back for ``result --json``; otherwise the review is its text,
whose last ``Verdict: WORD`` line gives the verdict.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from jobgate.agents import git
from jobgate.agents import profiles as agents
from jobgate.state.errors import JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from jobgate.agents.task import Prepared
    from jobgate.state.store import Store

#: the most diff bytes put into a prompt (Linux passes one argv element of at most
#: 128 KiB, and the prompt is one)
DIFF_LIMIT = 64 * 1024
#: at most this many file names in the cut marker's list
LISTED_FILES = 200

VERDICTS = ("approve", "concerns", "reject")
SEVERITIES = ("critical", "high", "medium", "low", "info")

#: the shape of a review (strict: every property required, nothing else allowed)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["verdict", "summary", "findings"],
    "properties": {
        "verdict": {"type": "string", "enum": list(VERDICTS)},
        "summary": {"type": "string"},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["file", "line", "severity", "text"],
                "properties": {
                    "file": {"type": "string"},
                    "line": {"type": ["integer", "null"]},
                    "severity": {"type": "string", "enum": list(SEVERITIES)},
                    "text": {"type": "string"},
                },
            },
        },
    },
}

CUT_MARKER = "[jobgate: the diff was cut here"

_STANDARD = """\
Review this change as a careful senior engineer. Look for bugs, wrong edge cases,
missing error handling, security problems, races, and missing or weak tests. Report
only real problems, each with the file, the line (in the new version) and a severity
(critical, high, medium, low or info)."""

_ADVERSARIAL = """\
Review this change adversarially: challenge its design rather than its spelling. Which
assumptions does it make that may not hold? Which trade-offs did it choose, and what do
they cost? How does it fail (bad input, concurrency, partial failure, scale, upgrades)?
Is there a simpler alternative that would do the same job? Argue each point with the
file, the line (in the new version) and a severity (critical, high, medium, low or info)."""


@dataclass(frozen=True)
class Target:
    """What is reviewed: a description and git's change."""

    describe: str
    change: git.Change


def target(cwd: str, base: str | None) -> Target:
    """The change to review in the repository holding ``cwd``."""
    repo = git.toplevel(cwd)
    if base is None:
        return Target(f"the uncommitted changes in {repo}", git.uncommitted(repo))
    change = git.branch_change(repo, base)
    return Target(f"the changes of HEAD in {repo} since it forked from {base}", change)


def nothing_to_review(base: str | None) -> str:
    if base is None:
        return "nothing to review: no uncommitted changes (staged, unstaged or untracked)"
    return f"nothing to review: HEAD has no changes since its merge base with {base}"


def _sections(diff: bytes) -> list[bytes]:
    """``diff`` split into its per-file sections (each starts with ``diff --git``)."""
    starts = [0] if diff.startswith(b"diff --git ") else []
    pos = diff.find(b"\ndiff --git ")
    while pos != -1:
        starts.append(pos + 1)
        pos = diff.find(b"\ndiff --git ", pos + 1)
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return [diff[a:b] for a, b in zip(starts, [*starts[1:], len(diff)], strict=True) if diff[a:b]]


def fit(change: git.Change, limit: int = DIFF_LIMIT) -> tuple[bytes, tuple[str, ...]]:
    """The part of ``change``'s diff that fits in ``limit`` bytes, and the files not (or
    not wholly) in it. Whole file sections are kept while they fit; when even the first
    does not, it is cut at a line boundary."""
    if len(change.diff) <= limit:
        return change.diff, ()
    sections = _sections(change.diff)
    files = list(change.files) if len(change.files) == len(sections) else []
    kept = b""
    for i, section in enumerate(sections):
        if len(kept) + len(section) > limit:
            rest = files[i:] if files else ["(the files after the cut)"]
            if not kept:  # the first file alone is too large: show its start
                cut = section[:limit]
                kept = cut[: cut.rfind(b"\n") + 1] or cut
            return kept, tuple(rest)
        kept += section
    return kept, ()  # pragma: no cover - the whole diff was over the limit


def marker(shown: int, total: int, unread: tuple[str, ...]) -> str:
    """The line that replaces what was cut, saying what the agent must read itself."""
    listed = list(unread[:LISTED_FILES])
    more = len(unread) - len(listed)
    names = "\n".join(f"  {name}" for name in listed)
    tail = f"\n  ... and {more} more (git diff --name-only lists them)" if more > 0 else ""
    return (
        f"{CUT_MARKER}: {shown:,} of {total:,} bytes shown, the diff is too large for a "
        f"prompt. Read these files yourself (compare with git: git diff, git show); "
        f"they are not, or not wholly, above:]\n{names}{tail}\n"
    )


def build_prompt(
    tgt: Target,
    *,
    adversarial: bool = False,
    focus: str = "",
    structured: bool = False,
    limit: int = DIFF_LIMIT,
) -> str:
    """The review prompt: the instructions, any focus, and git's diff (cut to ``limit``)."""
    shown, unread = fit(tgt.change, limit)
    parts = [
        f"You are reviewing {tgt.describe}. This is a read-only review: do not modify, "
        "create or delete any file; read files and run read-only commands only.",
        _ADVERSARIAL if adversarial else _STANDARD,
    ]
    if focus.strip():
        parts.append(f"Focus especially on: {focus.strip()}")
    if structured:
        parts.append(
            "Answer with the JSON the output schema asks for: verdict (one word: "
            f"{', '.join(VERDICTS)}), a short summary, and the findings."
        )
    else:
        parts.append(
            "End your answer with one line `Verdict: WORD`, WORD being one of "
            f"{', '.join(VERDICTS)}."
        )
    body = shown.decode("utf-8", "surrogateescape")
    if unread:
        body += ("" if body.endswith("\n") or not body else "\n") + marker(
            len(shown), len(tgt.change.diff), unread
        )
    parts.append(f"The change, exactly as git shows it:\n<diff>\n{body}</diff>")
    return "\n\n".join(parts) + "\n"


# -- the job -------------------------------------------------------------------------
def prepare(
    store: Store,
    agent: str,
    prompt: str,
    *,
    cwd: str,
    name: str,
    session_id: str | None,
    extra: dict[str, Any],
) -> Prepared:
    """The review run of ``agent`` on ``prompt`` as a launchable task (kind ``review``);
    raises :class:`JobgateError` (exit 127) when its program cannot be found."""
    from jobgate.agents import task
    from jobgate.state import config as config_mod

    stored = store.read_config() if os.path.isdir(store.state_dir) else {}
    profiles = config_mod.effective(stored)["agents"]
    template = agents.review_template(profiles, agent)
    if task._locate(template[0], cwd) is None:
        raise JobgateError(
            agents.missing_program_message(agent, template[0], template), task.EXIT_NOT_FOUND
        )
    if "\x00" in prompt:
        raise JobgateError("the diff holds a NUL byte, which cannot be passed to the agent")
    store.ensure()
    result_file = task._result_file(store) if agents.uses_last_message_file(template) else None
    argv = agents.expand(template, prompt, result_file)
    if agents.OUTPUT_SCHEMA_FILE in argv:
        schema = schema_file(store)
        argv = [schema if element == agents.OUTPUT_SCHEMA_FILE else element for element in argv]
    fields: dict[str, Any] = dict(
        cwd=cwd,
        kind="review",
        name=name,
        session_id=session_id,
        extra={"agent": agent, **extra, **({"resultFile": result_file} if result_file else {})},
    )
    return task.Prepared(agent, argv, result_file, fields)


def uses_schema(agent: str) -> bool:
    """Whether ``agent``'s review run is held to the output schema."""
    return agents.OUTPUT_SCHEMA_FILE in agents.REVIEW_TEMPLATES.get(agent, [])


def schema_file(store: Store) -> str:
    """The review schema, written (0600) into the state dir: ``review-schema.json``."""
    from jobgate.state.fileio import write_json

    path = os.path.join(store.state_dir, "review-schema.json")
    write_json(path, SCHEMA)
    return path


# -- reading the review back -----------------------------------------------------------
def structured(output: object) -> dict[str, Any] | None:
    """``{"verdict", "summary", "findings"}`` of a review job's output: the JSON its
    schema asked for, or, from a text review, the verdict of its last ``Verdict:`` line
    (findings None). None when neither is there."""
    if not isinstance(output, str) or not output.strip():
        return None
    import json

    try:
        data = json.loads(output)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("findings"), list):
        findings = [_finding(f) for f in data["findings"] if isinstance(f, dict)]
        verdict = data.get("verdict")
        return {
            "verdict": verdict if verdict in VERDICTS else None,
            "summary": data.get("summary") if isinstance(data.get("summary"), str) else None,
            "findings": findings,
        }
    for line in reversed(output.strip().splitlines()):
        words = line.strip().strip("*`_ ").split()
        if len(words) == 2 and words[0].lower() == "verdict:":
            word = words[1].strip("*`_.").lower()
            if word in VERDICTS:
                return {"verdict": word, "summary": None, "findings": None}
    return None


def _finding(raw: dict[str, Any]) -> dict[str, Any]:
    line = raw.get("line")
    return {
        "file": str(raw.get("file") or ""),
        "line": line if isinstance(line, int) and not isinstance(line, bool) else None,
        "severity": raw.get("severity") if raw.get("severity") in SEVERITIES else "info",
        "text": str(raw.get("text") or ""),
    }


def as_text(review: dict[str, Any]) -> str:
    """A structured review for people: verdict, summary, one finding a line."""
    out = [f"verdict: {review.get('verdict') or 'none given'}"]
    if review.get("summary"):
        out.append(str(review["summary"]))
    for f in review.get("findings") or []:
        where = f["file"] + (f":{f['line']}" if f.get("line") is not None else "")
        out.append(f"- [{f['severity']}] {where}: {f['text']}")
    if review.get("findings") == []:
        out.append("no findings")
    return "\n".join(out)


def for_result(job: dict[str, Any], facts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``result`` of ``job``: the job as shown to people (a review's structured findings
    as text) and the ``--json`` document, ``{"job", **facts}`` and, for a review job,
    ``"review"``: ``{verdict, summary, findings}`` or null."""
    if job.get("kind") != "review":
        return job, {"job": job, **facts}
    found = structured(job.get("output"))
    shown = job if found is None or found["findings"] is None else {**job, "output": as_text(found)}
    return shown, {"job": job, **facts, "review": found}
