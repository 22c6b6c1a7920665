"""Test helpers for real git repositories and the fake agents (:mod:`fake_agent`)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

FAKE = Path(__file__).resolve().parent / "fake_agent.py"

#: git without the user's or the machine's configuration, with an identity
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(repo: Path | str, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(key, None)
    out = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, check=True
    ).stdout
    return out.decode("utf-8", "surrogateescape")


def git_bytes(repo: Path | str, *args: str) -> bytes:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, check=True
    ).stdout


def init(repo: Path, files: dict[str, str] | None = None, commit: bool = True) -> Path:
    """A repository at ``repo`` (which may exist) on branch ``main`` holding ``files``,
    committed (with ``commit``)."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    for name, text in (files or {}).items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if commit:
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
    return repo


def tree_fingerprint(repo: Path, with_git: bool = True) -> dict[str, str]:
    """sha256 and mode of every file under ``repo`` (with ``with_git``, ``.git`` too, the
    index included): two equal fingerprints mean the tree (and the repository) are byte
    for byte the same. Loose objects git may add (``objects/``) are left out: they change
    no content."""
    out: dict[str, str] = {}
    for root, dirs, names in os.walk(repo):
        rel_root = os.path.relpath(root, repo)
        if rel_root.startswith(os.path.join(".git", "objects")):
            continue
        if not with_git and (rel_root == ".git" or rel_root.startswith(".git" + os.sep)):
            continue
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, repo)
            if os.path.islink(path):
                out[rel] = "link:" + os.readlink(path)
                continue
            with open(path, "rb") as fh:
                out[rel] = hashlib.sha256(fh.read()).hexdigest()
            out[rel] += f":{os.lstat(path).st_mode:o}"
    return out


def fake_bin(folder: Path) -> Path:
    """A bin folder where ``codex`` and ``claude`` are the fake agent."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("codex", "claude"):
        link = folder / name
        if not link.exists():
            link.symlink_to(FAKE)
    return folder


def recorded_runs(folder: Path) -> list[dict[str, Any]]:
    """What each fake agent run recorded (name, argv, prompt, cwd)."""
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def agent_workspace(env: dict[str, str], workspace: Path, tmp: Path, files: dict[str, str]) -> Path:
    """``workspace`` as a git repository holding ``files`` in one commit, with the fake
    agents first on ``env``'s PATH and recording their runs under ``tmp/runs``
    (``FAKE_RECORD``, read back with :func:`recorded_runs`)."""
    env.update(GIT_ENV)
    env["PATH"] = str(fake_bin(tmp / "bin")) + os.pathsep + env["PATH"]
    record = tmp / "runs"
    record.mkdir()
    env["FAKE_RECORD"] = str(record)
    return init(workspace, files)
