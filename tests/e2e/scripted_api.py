"""A scripted Anthropic Messages API on 127.0.0.1, for running the real Claude Code
client (``claude -p``) against it with no network and no model.

The client makes two kinds of request (see shared/reference/claude-code.md): ``HEAD /``,
a connectivity check answered without a body, and ``POST /v1/messages?beta=true``, always
streamed (SSE). The *main loop*'s requests are the ones whose ``tools`` include Bash;
each of them takes the next turn of the test's script (a :class:`Text` or a
:class:`ToolUse`), and once the script is used up they get :data:`DEFAULT_REPLY` (which
ends the turn). Side requests (a title, a summary) get a short text and take no turn.

Every request body is recorded (:attr:`ScriptedAPI.requests`) so a test can assert what
reached the model: a tool's result, a ``Stop hook feedback:`` user message, a
``role: system`` entry with a hook's ``additionalContext``.

The server is bounded: it answers at most ``max_requests`` requests and lives at most
``max_lifetime`` seconds, then stops by itself; :meth:`ScriptedAPI.close` (or leaving the
``with`` block) stops it and joins its threads.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_REPLY = "Done."
SIDE_REPLY = "jobgate e2e"


@dataclass(frozen=True)
class Text:
    """An assistant turn that says ``text`` and ends the turn (``end_turn``)."""

    text: str


@dataclass(frozen=True)
class ToolUse:
    """An assistant turn that calls a tool (by default Bash) and waits for its result."""

    input: dict[str, Any]
    name: str = "Bash"

    @classmethod
    def bash(cls, command: str, description: str = "run a command") -> ToolUse:
        return cls({"command": command, "description": description})


Turn = Text | ToolUse


@dataclass
class Recorded:
    """One request the server answered."""

    method: str
    path: str
    body: dict[str, Any] | None
    main_loop: bool
    turn: Turn | None = None
    at: float = field(default_factory=time.monotonic)


def is_main_loop(body: dict[str, Any] | None) -> bool:
    """A request of the main loop: its ``tools`` include Bash."""
    if not body:
        return False
    return any(isinstance(t, dict) and t.get("name") == "Bash" for t in body.get("tools") or [])


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream(turn: Turn, *, model: str, message_id: str, tool_id: str) -> bytes:
    """The SSE body of one streamed assistant message answering with ``turn``."""
    usage = {"input_tokens": 10, "output_tokens": 1}
    out = [
        sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            },
        )
    ]
    if isinstance(turn, Text):
        block: dict[str, Any] = {"type": "text", "text": ""}
        delta: dict[str, Any] = {"type": "text_delta", "text": turn.text}
        stop_reason = "end_turn"
    else:
        block = {"type": "tool_use", "id": tool_id, "name": turn.name, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(turn.input)}
        stop_reason = "tool_use"
    out += [
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        ),
        sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]
    return b"".join(out)


class ScriptedAPI:
    """The server; ``with ScriptedAPI([...]) as api: ... api.base_url ...``."""

    def __init__(
        self,
        script: list[Turn] | None = None,
        *,
        max_requests: int = 200,
        max_lifetime: float = 150.0,
    ) -> None:
        self.script: list[Turn] = list(script or [])
        self.max_requests = max_requests
        self.max_lifetime = max_lifetime
        self.requests: list[Recorded] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._serve = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._timer = threading.Timer(max_lifetime, self._expire)
        self._timer.daemon = True

    # -- life -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ScriptedAPI:
        self._serve.start()
        self._timer.start()
        return self

    def close(self) -> None:
        """Stop serving and join the server thread (idempotent)."""
        self._timer.cancel()
        if not self._closed.is_set():
            self._closed.set()
            if self._serve.is_alive():
                self._httpd.shutdown()
        if self._serve.is_alive():
            self._serve.join(timeout=5)
        self._httpd.server_close()

    def _expire(self) -> None:
        self.errors.append(f"the server reached its lifetime of {self.max_lifetime} s")
        self._stop_soon()

    def _stop_soon(self) -> None:
        # shutdown() waits for serve_forever to return: never call it on a handler thread
        if not self._closed.is_set():
            self._closed.set()
            threading.Thread(target=self._shutdown, daemon=True).start()

    def _shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()  # refuse new connections rather than queue them

    def __enter__(self) -> ScriptedAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what was asked -----------------------------------------------------------------
    def main_requests(self) -> list[dict[str, Any]]:
        """The bodies of the main loop's requests, in order."""
        with self._lock:
            return [r.body for r in self.requests if r.main_loop and r.body is not None]

    def turns_left(self) -> int:
        with self._lock:
            return len(self.script)

    # -- answering ----------------------------------------------------------------------
    def _answer(self, method: str, path: str, body: dict[str, Any] | None) -> Recorded:
        with self._lock:
            main = is_main_loop(body)
            turn: Turn | None = None
            if method == "POST" and path.split("?")[0] == "/v1/messages":
                if main:
                    turn = self.script.pop(0) if self.script else Text(DEFAULT_REPLY)
                else:
                    turn = Text(SIDE_REPLY)
            rec = Recorded(method, path, body, main, turn)
            self.requests.append(rec)
            if len(self.requests) >= self.max_requests:
                self.errors.append(f"the server reached its limit of {self.max_requests} requests")
                self._stop_soon()
            return rec

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            # one request per connection: the client's keep-alive reuse can reset
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, ctype: str, payload: bytes, head: bool = False) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                if not head:
                    self.wfile.write(payload)
                    self.wfile.flush()
                self.close_connection = True

            def do_HEAD(self) -> None:
                api._answer("HEAD", self.path, None)
                self._reply(200, "text/plain", b"", head=True)

            def do_GET(self) -> None:
                api._answer("GET", self.path, None)
                self._not_found()

            def do_POST(self) -> None:
                body = self._body()
                rec = api._answer("POST", self.path, body)
                if rec.turn is None:
                    self._not_found()
                    return
                n = next(api._ids)
                model = str((body or {}).get("model") or "claude-e2e")
                payload = stream(
                    rec.turn, model=model, message_id=f"msg_e2e_{n}", tool_id=f"toolu_e2e_{n}"
                )
                self._reply(200, "text/event-stream", payload)

            def _not_found(self) -> None:
                err = {"type": "error", "error": {"type": "not_found_error", "message": "no"}}
                self._reply(404, "application/json", json.dumps(err).encode())

            def _body(self) -> dict[str, Any] | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        raw += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    data = json.loads(raw) if raw else None
                except ValueError:
                    api.errors.append(f"a request body that is not JSON: {raw[:200]!r}")
                    return None
                return data if isinstance(data, dict) else None

        return Handler


# -- reading recorded requests --------------------------------------------------------------
def text_of(content: Any) -> str:
    """All the text in a message's ``content`` (a string or a list of blocks, tool
    results included), joined by newlines."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            parts.append(block["text"])
        if block.get("type") == "tool_result":
            parts.append(text_of(block.get("content")))
    return "\n".join(parts)


def tool_results(body: dict[str, Any]) -> list[str]:
    """The text of every ``tool_result`` block in a request's messages."""
    out = []
    for msg in body.get("messages") or []:
        content = msg.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    out.append(text_of(block.get("content")))
    return out


def messages_with(body: dict[str, Any], needle: str, role: str | None = None) -> list[str]:
    """The text of each message (of ``role``, when given) that contains ``needle``."""
    found = []
    for msg in body.get("messages") or []:
        if role is not None and msg.get("role") != role:
            continue
        text = text_of(msg.get("content"))
        if needle in text:
            found.append(text)
    return found
