"""The review gate's rules (pure, no I/O): the prompt the reviewer gets, how its output
reads as a verdict, and what a verdict means for the stop.

The runner (:mod:`jobgate.claude.review`) and the Stop hook's gate
(:mod:`jobgate.claude.review_gate`) call these; only a Stop hook with ``stopReviewGate``
on imports this module, so the every-turn Stop path never loads it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

GATE_OFF_HINT = "to turn the review gate off: jobgate config set stopReviewGate false"


def review_prompt(payload: dict[str, Any], workspace_root: str) -> str:
    """The prompt given to the reviewer on stdin."""
    message = payload.get("last_assistant_message")
    if not isinstance(message, str) or not message.strip():
        message = "(Claude Code sent no final message for this turn.)"
    transcript = payload.get("transcript_path")
    where = f"\nThe full transcript is at: {transcript}" if isinstance(transcript, str) else ""
    return (
        "You review the work of a coding agent that is about to end its turn in the "
        f"repository at {workspace_root}.{where}\n"
        "Check the claims in its final message against the repository (read the diff, run "
        "the checks it mentions if you can). Your reply's FIRST LINE must be exactly one of:\n"
        "ALLOW: <one sentence why the work can stand>\n"
        "BLOCK: <what is wrong or missing, as an instruction to the agent>\n"
        "Anything after the first line is ignored.\n\n"
        "The agent's final message:\n"
        "-----\n"
        f"{message.rstrip()}\n"
        "-----\n"
    )


def review_decision(
    outcome: dict[str, str],
    *,
    stop_hook_active: bool,
    prior_blocks: int,
    max_blocks: int,
    command_line: str,
) -> tuple[str | None, list[str], int]:
    """``(block reason or None, stderr lines, review blocks in a row afterwards)``.

    ``outcome`` is :func:`jobgate.claude.review.run`'s ``{"verdict": "allow"|"block"|"error",
    "text": ...}``. A reviewer error blocks (so a broken gate is noticed) unless
    ``stop_hook_active``: Claude is already continuing because of a Stop hook, and
    blocking again on our own failure could loop. A reviewer that blocks
    ``max_blocks`` times in a row is overruled the same way.
    """
    verdict = outcome.get("verdict")
    text = outcome.get("text", "").strip()
    if verdict == "allow":
        lines = [
            f"jobgate: review gate: allowed ({text})" if text else "jobgate: review gate: allowed"
        ]
        return None, lines, 0
    if verdict == "block":
        if prior_blocks >= max_blocks:
            return (
                None,
                [
                    f"jobgate: review gate: the reviewer blocked again ({text}); not blocking: "
                    f"already blocked {prior_blocks} time(s) in a row (maxStopBlocks = "
                    f"{max_blocks})"
                ],
                prior_blocks,
            )
        reason = f"The review gate (jobgate) asks for changes before you stop: {text}"
        return reason, [], prior_blocks + 1
    problem = text or "the reviewer failed"
    if stop_hook_active:
        return (
            None,
            [
                f"jobgate: review gate: {problem}; allowing the stop because "
                "stop_hook_active is true (Claude is already continuing after a Stop hook "
                f"block, and a broken reviewer must not loop the session); {GATE_OFF_HINT}"
            ],
            prior_blocks,
        )
    reason = (
        f"The jobgate review gate could not review this turn: {problem} "
        f"(reviewCommand: {command_line}). Tell the user, who can fix the reviewer or turn "
        f"the gate off: `jobgate config set stopReviewGate false`."
    )
    return reason, [], prior_blocks


def parse_verdict(stdout: str) -> dict[str, str]:
    """The reviewer's first non-blank output line as an outcome dict.

    ``ALLOW: why`` -> allow; ``BLOCK: what`` -> block (a bare ``BLOCK:`` gets a generic
    reason); anything else, or no output at all -> error naming what was seen.
    """
    first = ""
    for line in stdout.splitlines():
        if line.strip():
            first = line.strip()
            break
    if not first:
        return {"verdict": "error", "text": "the reviewer printed nothing"}
    head, sep, rest = _plain(first).partition(":")
    word = head.strip().strip("*_`#> ").upper()
    rest = rest.strip().lstrip("*_` ").strip()
    if sep and word == "ALLOW":
        return {"verdict": "allow", "text": rest.strip()}
    if sep and word == "BLOCK":
        return {"verdict": "block", "text": rest.strip() or "the reviewer gave no reason"}
    shown = first if len(first) <= 120 else first[:117] + "..."
    return {
        "verdict": "error",
        "text": f"the reviewer's first line is neither 'ALLOW: ...' nor 'BLOCK: ...': {shown!r}",
    }


def _plain(line: str) -> str:
    """``line`` without a byte-order mark and terminal colour codes: a reviewer that
    writes ``\x1b[1m**ALLOW**\x1b[0m: ok`` still gives a verdict."""
    line = line.lstrip("\ufeff")
    if "\x1b[" in line:
        import re

        line = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)
    return line.strip()
