"""The scripted Messages API the e2e tests run Claude Code against (no client needed)."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest

from e2e.scripted_api import DEFAULT_REPLY, SIDE_REPLY, ScriptedAPI, Text, ToolUse

BASH_TOOLS = [{"name": "Bash", "input_schema": {"type": "object"}}]


def post(api: ScriptedAPI, body: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        conn.request("POST", "/v1/messages?beta=true", json.dumps(body))
        resp = conn.getresponse()
        raw = resp.read().decode()
    finally:
        conn.close()
    events = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: ")]
    return resp.status, events


def test_main_loop_requests_follow_the_script_and_side_requests_do_not_use_it() -> None:
    with ScriptedAPI([ToolUse.bash("echo hi"), Text("bye")]) as api:
        _, side = post(api, {"model": "m", "messages": [], "stream": True})
        _, first = post(api, {"model": "m", "messages": [], "tools": BASH_TOOLS})
        _, second = post(api, {"model": "m", "messages": [], "tools": BASH_TOOLS})
        _, third = post(api, {"model": "m", "messages": [], "tools": BASH_TOOLS})

    assert [e["type"] for e in first] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert side[2]["delta"] == {"type": "text_delta", "text": SIDE_REPLY}
    assert first[1]["content_block"]["type"] == "tool_use"
    assert first[1]["content_block"]["name"] == "Bash"
    assert json.loads(first[2]["delta"]["partial_json"])["command"] == "echo hi"
    assert first[4]["delta"]["stop_reason"] == "tool_use"
    assert second[2]["delta"]["text"] == "bye"
    assert second[4]["delta"]["stop_reason"] == "end_turn"
    assert third[2]["delta"]["text"] == DEFAULT_REPLY
    assert len(api.main_requests()) == 3
    assert [r.main_loop for r in api.requests] == [False, True, True, True]


def test_head_is_answered_without_a_body() -> None:
    with ScriptedAPI() as api:
        conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
        conn.request("HEAD", "/")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == b""
        conn.close()


def test_the_server_stops_itself_after_its_request_limit() -> None:
    with ScriptedAPI(max_requests=2) as api:
        post(api, {"messages": []})
        post(api, {"messages": []})
        deadline = time.monotonic() + 5
        with pytest.raises(OSError):
            while time.monotonic() < deadline:
                post(api, {"messages": []})
                time.sleep(0.05)
        assert "limit of 2 requests" in api.errors[0]


def test_the_server_stops_itself_after_its_lifetime() -> None:
    with ScriptedAPI(max_lifetime=0.3) as api:
        time.sleep(0.8)
        with pytest.raises(OSError):
            post(api, {"messages": []})
        assert "lifetime" in api.errors[0]
