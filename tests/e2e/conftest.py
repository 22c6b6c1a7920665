"""The e2e fixture: :class:`e2e.claude_env.ClaudeEnv` per test, skipped with the reason
when the pinned Claude Code client is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.claude_env import ClaudeEnv, find_client


@pytest.fixture
def cc(tmp_path: Path) -> Iterator[ClaudeEnv]:
    """A Claude Code world with the jobgate plugin installed (see :class:`ClaudeEnv`)."""
    client, problem = find_client()
    if client is None:
        pytest.skip(problem)
    env = ClaudeEnv(tmp_path)
    try:
        env.install_plugin()
        yield env
    finally:
        env.close()
