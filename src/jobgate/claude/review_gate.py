"""The Stop hook's review gate (``stopReviewGate``): run ``reviewCommand`` on the turn and
block on its BLOCK, at most ``maxStopBlocks`` times in a row.

The Stop hook (:mod:`jobgate.claude.shell`) imports this module only with the gate on and
outside a review. The reviewer runs through :mod:`jobgate.claude.review`; what its verdict
means is :func:`jobgate.claude.review_rules.review_decision`; the blocks in a row are counted in
the hook state (:mod:`jobgate.claude.hook_state`).
"""

from __future__ import annotations

import os

from jobgate.claude import hook_state, review, review_rules

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from jobgate.claude.context import HookContext


def review_turn(ctx: HookContext) -> tuple[str | None, list[str]]:
    """Review the turn that is ending: ``(block reason or None, the gate's notes)``. The
    notes say why a stop is allowed (the reviewer's ALLOW, a block cap, a broken reviewer
    under ``stop_hook_active``); the Stop hook shows them to the user."""
    store = ctx.store()
    command_line = str(ctx.setting("reviewCommand"))
    max_blocks = int(ctx.setting("maxStopBlocks"))
    outcome = review.run(
        command_line,
        review_rules.review_prompt(ctx.payload, store.workspace_root),
        timeout=float(ctx.setting("reviewTimeout")),
        cwd=os.path.realpath(ctx.cwd) if ctx.cwd else store.workspace_root,
    )
    active = bool(ctx.payload.get("stop_hook_active"))

    def decide(entry: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        reason, lines, count = review_rules.review_decision(
            outcome,
            stop_hook_active=active,
            prior_blocks=int(entry.get("reviewBlocks") or 0),
            max_blocks=max_blocks,
            command_line=command_line,
        )
        new = dict(entry)
        if count:
            new["reviewBlocks"] = count
        else:
            new.pop("reviewBlocks", None)
        return (reason, lines), new

    reason, lines = hook_state.update_entry(store, ctx.key, decide)
    return reason, lines
