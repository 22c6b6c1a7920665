"""Reading an agent's session id and final message from its output
(:mod:`jobgate.jobs.agent_thread`, :func:`jobgate.jobs.output.finish`); the formats are
the ones observed on codex 0.171.0 and Claude Code 2.1.197 (see the module docstring)."""

from __future__ import annotations

import json
from pathlib import Path

from jobgate.jobs import agent_thread, output
from jobgate.state.store import Store

SID = "01a234fe-8931-77b1-9abc-1662cb240e6e"

CODEX_BANNER = f"""OpenAI Codex v0.171.0
--------
workdir: /tmp/ws
model: gpt-e2e
session id: {SID}
--------
user
say hi
codex
hello
tokens used
15
"""

CODEX_JSONL = "\n".join(
    json.dumps(e)
    for e in [
        {"type": "thread.started", "thread_id": SID},
        {"type": "item.completed", "item": {"id": "item_0", "type": "error", "message": "m"}},
        {"type": "turn.started"},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "first"}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "the answer"}},
        {"type": "turn.completed", "usage": {"input_tokens": 10}},
    ]
)

CLAUDE_JSON = json.dumps(
    {"type": "result", "subtype": "success", "result": "hi there", "session_id": SID}
)


def test_codex_banner_gives_the_session_id_and_no_final_message() -> None:
    found = agent_thread.parse("codex", CODEX_BANNER, CODEX_BANNER)
    assert found == agent_thread.Found(SID, None)


def test_codex_json_gives_the_thread_id_and_the_last_agent_message() -> None:
    found = agent_thread.parse("codex", CODEX_JSONL, CODEX_JSONL)
    assert found == agent_thread.Found(SID, "the answer")


def test_claude_json_and_stream_json_give_the_session_id_and_result() -> None:
    assert agent_thread.parse("claude", "", CLAUDE_JSON) == agent_thread.Found(SID, "hi there")
    init = json.dumps({"type": "system", "subtype": "init", "session_id": SID})
    stream = f"{init}\n{CLAUDE_JSON}\n"
    assert agent_thread.parse("claude", stream, stream) == agent_thread.Found(SID, "hi there")
    # killed before its result: the init event still tells the session
    assert agent_thread.parse("claude", init, init) == agent_thread.Found(SID, None)


def test_an_id_that_could_be_read_as_a_flag_or_carries_odd_characters_is_not_kept() -> None:
    for bad in ("--last", "a b", "x;rm -rf", "", "é" * 3, "a" * 200):
        text = json.dumps({"type": "result", "result": "r", "session_id": bad})
        assert agent_thread.parse("claude", "", text).session_id is None, bad
        assert agent_thread.parse("codex", f"session id: {bad}\n", "").session_id is None
    assert agent_thread.valid_id(SID) == SID


def test_plain_text_and_unknown_formats_tell_nothing() -> None:
    assert agent_thread.parse("claude", "just text\n", "just text\n") == agent_thread.Found()
    assert agent_thread.parse(None, CODEX_BANNER, CODEX_BANNER) == agent_thread.Found()
    assert agent_thread.parse("gemini", CLAUDE_JSON, CLAUDE_JSON) == agent_thread.Found()
    broken = '{"type": "result", "session_id": '
    assert agent_thread.parse("claude", broken, broken) == agent_thread.Found()


def test_finish_finds_the_session_id_before_a_long_output_and_the_answer_after_it(
    tmp_path: Path,
) -> None:
    store = Store(str(tmp_path / "state"))
    store.ensure()
    log = Path(store.log_path("task-x"))
    noise = "x" * 100 + "\n"
    # jobgate's own line before the output's offset, then a banner, then 200 KiB of output
    log.write_text("[2026-12-02T00:00:00.000Z] jobgate: starting\n")
    offset = log.stat().st_size
    with log.open("a") as fh:
        fh.write(CODEX_BANNER + noise * 2000)
    text, fields = output.finish(store, {"threadFormat": "codex"}, str(log), offset)
    assert fields == {"agentSessionId": SID}
    assert len(text.encode()) <= output.OUTPUT_KEEP_BYTES and text.endswith(noise)
    # a claude answer longer than the kept output is kept by its end
    long = "y" * (output.OUTPUT_KEEP_BYTES + 10)
    log.write_text(json.dumps({"type": "result", "result": long, "session_id": SID}) + "\n")
    text, fields = output.finish(store, {"threadFormat": "claude"}, str(log), 0)
    assert fields == {"agentSessionId": SID} and text == long[-output.OUTPUT_KEEP_BYTES :]
    # a job of no known format: its output as it is, nothing else
    text, fields = output.finish(store, {}, str(log), 0)
    assert fields == {} and '"session_id"' in text
