"""Running jobgate tasks with the real Codex CLI: the world one test runs it in.

The CLI is the ``@openai/codex`` version pinned in ``package.json`` here, installed into
``tests/e2e/node_modules`` by ``.ci/run`` (locally: :data:`e2e.claude_env.NPM_CI`). A
:class:`CodexEnv` has a temp ``HOME`` and ``CODEX_HOME`` whose ``config.toml`` makes a
scripted Responses API on 127.0.0.1 (:mod:`e2e.scripted_responses`) the model provider
(shared/reference/codex-cli.md), a temp git workspace, its own ``JOBGATE_HOME``, and the
venv's ``jobgate`` and the pinned ``codex`` first on ``PATH``. jobgate runs its built-in
``codex`` profile unchanged: the provider comes from the environment, as a user's would.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from conftest import reap_marked
from e2e.claude_env import E2E_DIR, NPM_CI, VENV_BIN
from e2e.scripted_responses import ScriptedResponses

CODEX = E2E_DIR / "node_modules" / ".bin" / "codex"
PINNED: str = json.loads((E2E_DIR / "package.json").read_text())["devDependencies"]["@openai/codex"]
#: the environment variable whose value codex sends as the provider's Bearer token
KEY_ENV = "JOBGATE_E2E_CODEX_KEY"


@functools.lru_cache(maxsize=1)
def find_codex() -> tuple[Path | None, str]:
    """``(the pinned codex, "")`` or ``(None, why the tests that need it skip)``."""
    if not CODEX.exists():
        return (
            None,
            f"the pinned Codex CLI (@openai/codex {PINNED}) is not installed; run: {NPM_CI}",
        )
    try:
        out = subprocess.run(
            [str(CODEX), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{CODEX} does not run ({exc}); run: {NPM_CI}"
    words = out.stdout.split()  # "codex-cli 0.171.0"
    if out.returncode != 0 or words[-1:] != [PINNED]:
        return None, f"{CODEX} is not codex {PINNED} ({out.stdout.strip()!r}); run: {NPM_CI}"
    return CODEX, ""


class CodexEnv:
    """One test's Codex world: home, workspace, jobgate state, scripted Responses API."""

    def __init__(self, tmp_path: Path, script: list[str]) -> None:
        client, problem = find_codex()
        assert client is not None, problem
        self.home = tmp_path / "home"
        self.codex_home = self.home / ".codex"
        self.workspace = tmp_path / "ws"
        self.jobgate_home = tmp_path / "jobgate-home"
        for d in (self.codex_home, self.workspace):
            d.mkdir(parents=True)
        self.api = ScriptedResponses(script).start()
        (self.codex_home / "config.toml").write_text(
            'model = "gpt-e2e"\n'
            'model_provider = "e2e"\n'
            "check_for_update_on_startup = false\n"
            "[analytics]\n"
            "enabled = false\n"
            "[model_providers.e2e]\n"
            'name = "jobgate e2e"\n'
            f'base_url = "{self.api.base_url}"\n'
            'wire_api = "responses"\n'
            f'env_key = "{KEY_ENV}"\n'
        )
        self.env = {
            "PATH": os.pathsep.join(
                [str(VENV_BIN), str(client.parent), os.environ.get("PATH", os.defpath)]
            ),
            "HOME": str(self.home),
            "CODEX_HOME": str(self.codex_home),
            "TMPDIR": str(tmp_path),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            KEY_ENV: "dummy",
            "JOBGATE_HOME": str(self.jobgate_home),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        git = ["git", "-C", str(self.workspace), "-c", "user.name=e2e", "-c", "user.email=e@x"]
        (self.workspace / "README").write_text("an e2e workspace\n")
        for args in (["init", "-q"], ["add", "README"], ["commit", "-q", "-m", "init"]):
            subprocess.run([*git, *args], check=True, env=self.env, capture_output=True)

    def jobgate(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "jobgate"), *args],
            cwd=self.workspace,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def task(self, *args: str, timeout: float = 120) -> dict[str, Any]:
        """``jobgate task --background ARGS``, waited for (cancelled past ``timeout``: a
        codex that cannot reach its model retries forever); the job's ``result --json``."""
        started = self.jobgate("task", "--background", "--json", *args)
        assert started.returncode == 0, started.stderr
        job_id = json.loads(started.stdout)["id"]
        waited = self.jobgate("wait", job_id, "--timeout", str(timeout), timeout=timeout + 30)
        if waited.returncode != 0:
            self.jobgate("cancel", job_id)
            log = self.jobgate("log", job_id).stdout
            raise AssertionError(f"task {job_id} did not complete: {waited.stderr}\n{log[-3000:]}")
        result = self.jobgate("result", job_id, "--json")
        assert result.returncode == 0, (result.stderr, self.jobgate("log", job_id).stdout)
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def close(self) -> None:
        self.api.close()
        reap_marked(str(self.jobgate_home))
