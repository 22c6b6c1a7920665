"""A scripted OpenAI Responses API on 127.0.0.1, for running the real Codex CLI
(``codex exec``) against it with no network and no model.

Codex reaches it as a custom model provider (shared/reference/codex-cli.md):
``-c model_providers.NAME.base_url=http://127.0.0.1:PORT/v1 -c model_provider=NAME`` with
``wire_api = "responses"``. Each model call is one streamed ``POST /v1/responses``; the
server answers it with the next reply of the test's script (:data:`DEFAULT_REPLY` once
the script is used up) as SSE events: ``response.created``,
``response.output_item.done`` (an assistant ``message`` whose content is one
``output_text``) and ``response.completed`` (with ``response.id`` and ``usage``).
Anything else (a ``GET`` of models, say) gets a 404.

Every request body is recorded (:attr:`ScriptedResponses.requests`), so a test can see
what reached the model (a resumed thread sends its whole earlier conversation again).

Bounded like :class:`e2e.scripted_api.ScriptedAPI`: at most ``max_requests`` requests and
``max_lifetime`` seconds, then it stops by itself; :meth:`close` stops it and joins it.
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_REPLY = "Done."


def sse(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


def stream(text: str, *, response_id: str, item_id: str, model: str) -> bytes:
    """The SSE body of one streamed response that says ``text``."""
    item = {
        "type": "message",
        "id": item_id,
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    base = {"id": response_id, "object": "response", "model": model, "output": []}
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 15,
    }
    events = [
        {"type": "response.created", "response": {**base, "status": "in_progress"}},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {
            "type": "response.completed",
            "response": {**base, "status": "completed", "output": [item], "usage": usage},
        },
    ]
    return b"".join(sse(e) for e in events)


def texts_of(body: dict[str, Any]) -> list[str]:
    """Every text in a request's ``input`` items (user and assistant messages alike)."""
    out: list[str] = []
    for item in body.get("input") or []:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [str(c.get("text")) for c in content if isinstance(c, dict) and "text" in c]
    return out


class ScriptedResponses:
    """The server; ``with ScriptedResponses(["a reply"]) as api: ... api.base_url ...``."""

    def __init__(
        self,
        script: list[str] | None = None,
        *,
        max_requests: int = 50,
        max_lifetime: float = 150.0,
    ) -> None:
        self.script = list(script or [])
        self.max_requests = max_requests
        self.max_lifetime = max_lifetime
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
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

    @property
    def base_url(self) -> str:
        """The provider's ``base_url`` (with ``/v1``)."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> ScriptedResponses:
        self._serve.start()
        self._timer.start()
        return self

    def close(self) -> None:
        self._timer.cancel()
        if not self._closed.is_set():
            self._closed.set()
            if self._serve.is_alive():
                self._httpd.shutdown()
        if self._serve.is_alive():
            self._serve.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> ScriptedResponses:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _expire(self) -> None:
        self.errors.append(f"the server reached its lifetime of {self.max_lifetime} s")
        self._stop_soon()

    def _stop_soon(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            threading.Thread(target=self._shutdown, daemon=True).start()

    def _shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def model_requests(self) -> list[dict[str, Any]]:
        """The bodies of the ``POST /v1/responses`` requests, in order."""
        with self._lock:
            return [b for m, p, b in self.requests if m == "POST" and b is not None]

    def _next(self, method: str, path: str, body: dict[str, Any] | None) -> str | None:
        with self._lock:
            self.requests.append((method, path, body))
            if len(self.requests) >= self.max_requests:
                self.errors.append(f"the server reached its limit of {self.max_requests} requests")
                self._stop_soon()
            if method != "POST" or path.split("?")[0] != "/v1/responses":
                return None
            return self.script.pop(0) if self.script else DEFAULT_REPLY

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, ctype: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                self.close_connection = True

            def do_GET(self) -> None:
                api._next("GET", self.path, None)
                self._reply(404, "application/json", b'{"error": {"message": "not here"}}')

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    api.errors.append(f"a request body that is not JSON: {raw[:200]!r}")
                    body = None
                text = api._next("POST", self.path, body if isinstance(body, dict) else None)
                if text is None:
                    self._reply(404, "application/json", b'{"error": {"message": "not here"}}')
                    return
                n = next(api._ids)
                model = str((body or {}).get("model") or "gpt-e2e")
                ids = {"response_id": f"resp_e2e_{n}", "item_id": f"msg_e2e_{n}"}
                payload = stream(text, model=model, **ids)
                self._reply(200, "text/event-stream", payload)

        return Handler
