"""The push path under the real, interactive Claude Code client: the plugin's monitor
(``jobgate watch``) turns a background job's end into a ``<task-notification>`` that
reaches the model without anyone typing.

Claude Code runs plugin monitors only in an interactive session, in a trusted workspace,
with its remote flag ``tengu_amber_sentinel`` on. Offline, the flag is read from
``~/.claude.json`` (``cachedGrowthBookFeatures``) -- but not when
``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``, ``DISABLE_TELEMETRY`` or ``DO_NOT_TRACK`` is
set, so this test leaves those unset and sends all other outside traffic to a dead local
proxy instead. The client runs in a tmux server of the test's own (``-L``), launched via
``env -i`` so the server's environment does not leak in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from typing import Any

import psutil
import pytest

from e2e.claude_env import QUIET, ClaudeEnv
from e2e.scripted_api import ScriptedAPI, Text, ToolUse, messages_with

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

DEAD_PROXY = "http://127.0.0.1:9"


def _interactive_env(cc: ClaudeEnv, api: ScriptedAPI) -> dict[str, str]:
    env = {k: v for k, v in cc.env.items() if k not in QUIET}
    env.update(
        {
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "HTTPS_PROXY": DEAD_PROXY,
            "HTTP_PROXY": DEAD_PROXY,
            "https_proxy": DEAD_PROXY,
            "http_proxy": DEAD_PROXY,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "TERM": "xterm-256color",
            "ANTHROPIC_BASE_URL": api.base_url,
        }
    )
    for key in ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY", "DO_NOT_TRACK"):
        env.pop(key, None)
    return env


def _trust_workspace(cc: ClaudeEnv) -> None:
    """Onboarded, the dummy key approved, the workspace trusted, the monitor flag on."""
    path = cc.home / ".claude.json"
    config: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    config["hasCompletedOnboarding"] = True
    config["customApiKeyResponses"] = {"approved": ["dummy"], "rejected": []}
    features = config.setdefault("cachedGrowthBookFeatures", {})
    features["tengu_amber_sentinel"] = True
    projects = config.setdefault("projects", {})
    for ws in {str(cc.workspace), os.path.realpath(cc.workspace)}:
        projects.setdefault(ws, {}).update(
            {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}
        )
    path.write_text(json.dumps(config))


class Tmux:
    """A tmux server of this test's own, killed with everything under it."""

    def __init__(self) -> None:
        self.name = f"jobgate-e2e-{uuid.uuid4().hex[:12]}"
        self.procs: list[psutil.Process] = []
        self.socket = ""

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.name, *args], capture_output=True, text=True, timeout=20
        )

    def keys(self, *keys: str) -> None:
        for k in keys:
            self("send-keys", "-t", "e2e", k)
            time.sleep(0.3)

    def pane(self) -> str:
        return self("capture-pane", "-p", "-t", "e2e").stdout

    def remember(self) -> None:
        """Note the server and everything under it (to kill at the end)."""
        out, _, socket = (
            self("display-message", "-p", "-t", "e2e", "#{pid} #{socket_path}").stdout.strip()
        ).partition(" ")
        self.socket = self.socket or socket
        if out.isdigit():
            try:
                server = psutil.Process(int(out))
                seen = {p.pid for p in self.procs}
                self.procs += [
                    p for p in [server, *server.children(recursive=True)] if p.pid not in seen
                ]
            except psutil.Error:
                pass

    def kill(self) -> None:
        self.remember()
        self("kill-server")
        _gone, alive = psutil.wait_procs(self.procs, timeout=10)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=5)
        if self.socket:
            try:
                os.unlink(self.socket)
            except OSError:
                pass


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


@pytest.mark.skipif(
    shutil.which("tmux") is None,
    reason="tmux is not installed (needed to run the interactive client)",
)
def test_a_finished_job_is_pushed_to_the_model_by_the_monitor(cc: ClaudeEnv) -> None:
    api = cc.serve(
        [
            ToolUse.bash("jobgate run --background --name pushme -- sleep 3", "start a job"),
            Text("Started it."),
            Text("The job finished."),
        ]
    )
    _trust_workspace(cc)
    env = _interactive_env(cc, api)
    sid = str(uuid.uuid4())
    tmux = Tmux()
    try:
        started = tmux(
            "new-session", "-d", "-s", "e2e", "-x", "200", "-y", "50", "-c", str(cc.workspace),
            "env", "-i", *[f"{k}={v}" for k, v in env.items()],
            str(cc.claude), "--allowedTools", "Bash", "--session-id", sid,
        )  # fmt: skip
        assert started.returncode == 0, started
        assert _wait(lambda: "shortcuts" in tmux.pane() or "❯" in tmux.pane(), 30), tmux.pane()
        tmux.remember()
        tmux.keys("please start the job", "Enter")

        assert _wait(lambda: len(cc.jobs()) == 1, 30), (tmux.pane(), api.errors)
        [job] = cc.jobs()
        assert job["sessionId"] == sid, job
        needle = f"finished {job['id']}"

        def pushed() -> list[str]:
            for body in api.main_requests():
                found = [
                    m
                    for m in messages_with(body, "<task-notification>", role="user")
                    if needle in m
                ]
                if found:
                    return found
            return []

        assert _wait(lambda: bool(pushed()), 40), (
            tmux.pane(),
            [json.dumps(b["messages"][-1])[:600] for b in api.main_requests()],
        )
        [note] = pushed()[:1]
        assert "Monitor event" in note, note
        assert f"jobgate result {job['id']}" in note, note
        assert cc.jobs()[0]["status"] == "completed"
        assert cc.jobs()[0].get("announcedAt")  # announced once, by the monitor

        tmux.remember()
        tmux.keys("/exit", "Enter")
        _wait(lambda: tmux("has-session", "-t", "e2e").returncode != 0, 15)
    finally:
        tmux.kill()
