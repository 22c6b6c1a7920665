"""The review gate's pure rules (jobgate.claude.review_rules): how a reviewer's output reads
as a verdict, what each verdict means for the stop, and the reviewer's prompt."""

from __future__ import annotations

from typing import Any

import pytest

from jobgate.claude import review_rules


@pytest.mark.parametrize(
    ("stdout", "verdict", "text"),
    [
        ("ALLOW: fine\nmore", "allow", "fine"),
        ("\n\n  BLOCK: add a test  \n", "block", "add a test"),
        ("block: lower case", "block", "lower case"),
        ("BLOCK:", "block", "the reviewer gave no reason"),
        ("", "error", "printed nothing"),
        ("   \n", "error", "printed nothing"),
        ("Looks good to me", "error", "neither"),
        ("ALLOWED because", "error", "neither"),
        ("\ufeffALLOW: bom", "allow", "bom"),
        ("**BLOCK**: markdown bold", "block", "markdown bold"),
        ("**ALLOW:** bold with the colon", "allow", "bold with the colon"),
        ("\x1b[1;32mALLOW\x1b[0m: coloured", "allow", "coloured"),
    ],
)
def test_parse_verdict_reads_the_first_non_blank_line(stdout: str, verdict: str, text: str) -> None:
    outcome = review_rules.parse_verdict(stdout)
    assert outcome["verdict"] == verdict
    assert text in outcome["text"]


def _decide(outcome: dict[str, str], active: bool = False, prior: int = 0) -> Any:
    return review_rules.review_decision(
        outcome, stop_hook_active=active, prior_blocks=prior, max_blocks=3, command_line="rv"
    )


def test_review_allow_allows_and_resets_the_row() -> None:
    reason, lines, count = _decide({"verdict": "allow", "text": "ok"}, prior=2)
    assert reason is None and count == 0 and "allowed" in lines[0]


def test_review_block_blocks_with_the_reviewers_reason() -> None:
    reason, lines, count = _decide({"verdict": "block", "text": "tests fail"})
    assert reason is not None and "tests fail" in reason
    assert lines == [] and count == 1


def test_review_block_is_honoured_even_when_stop_hook_active() -> None:
    reason, _lines, _count = _decide({"verdict": "block", "text": "x"}, active=True, prior=1)
    assert reason is not None


def test_review_blocks_are_capped_in_a_row() -> None:
    reason, lines, count = _decide({"verdict": "block", "text": "again"}, prior=3)
    assert reason is None and count == 3
    assert "maxStopBlocks = 3" in lines[0]


def test_review_error_blocks_saying_what_happened_and_how_to_turn_the_gate_off() -> None:
    reason, lines, count = _decide({"verdict": "error", "text": "the reviewer exited with code 3"})
    assert reason is not None
    assert "exited with code 3" in reason
    assert "jobgate config set stopReviewGate false" in reason
    assert "rv" in reason
    assert lines == [] and count == 0


def test_review_error_allows_when_stop_hook_active_and_says_why() -> None:
    reason, lines, _ = _decide({"verdict": "error", "text": "timed out"}, active=True)
    assert reason is None
    assert len(lines) == 1
    assert "stop_hook_active" in lines[0] and "timed out" in lines[0]


def test_review_prompt_contains_the_last_assistant_message() -> None:
    prompt = review_rules.review_prompt({"last_assistant_message": "I fixed bug #12"}, "/repo")
    assert "I fixed bug #12" in prompt
    assert "ALLOW:" in prompt and "BLOCK:" in prompt and "/repo" in prompt


def test_review_prompt_without_a_message_says_so() -> None:
    assert "no final message" in review_rules.review_prompt({}, "/repo")
