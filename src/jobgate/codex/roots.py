"""Where ``jobgate doctor codex`` looks for the Codex companion plugin's state.

The plugin resolves its state root as ``$CLAUDE_PLUGIN_DATA/state``, else
``<temp dir>/codex-companion``. ``CLAUDE_PLUGIN_DATA`` is set by Claude Code only for the
plugin's own processes (``<claude config dir>/plugins/data/<plugin>/``), so a user's
terminal does not see it: the plugin data folders are searched as well, under
``$CLAUDE_CONFIG_DIR`` (where Claude Code keeps its config when that is set) and under
``~/.claude``.

Only plugin data folders whose name contains ``codex`` are searched: other plugins keep
their own data there, possibly a look-alike ``state.json``, and ``--fix`` must never
rewrite another plugin's records in Codex's failure shape.

A state root holds one folder per workspace (``<slug>-<16 hex>/state.json``); a folder
that itself holds ``state.json`` is taken as a single workspace folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: the plugin data folders searched, as a pattern below a Claude config dir
PLUGIN_DATA_PATTERN = ("plugins", "data", "*codex*", "state")


@dataclass
class Search:
    """Candidate state roots in search order (existing or not) and, for the user, the
    places looked at: paths and patterns, including those that matched nothing."""

    roots: list[Path] = field(default_factory=list)
    places: list[str] = field(default_factory=list)

    def add_place(self, place: str) -> None:
        if place not in self.places:
            self.places.append(place)


def _codex_plugin_states(config_dir: Path, search: Search) -> None:
    data = config_dir.joinpath(*PLUGIN_DATA_PATTERN[:2])
    search.add_place(str(config_dir.joinpath(*PLUGIN_DATA_PATTERN)))
    try:
        children = sorted(data.iterdir())
    except OSError:
        return
    search.roots.extend(c / "state" for c in children if "codex" in c.name.lower())


def default_search(
    env: Mapping[str, str] | None = None, home: Path | None = None, tmpdir: str | None = None
) -> Search:
    """Where the plugin may keep state: ``$CLAUDE_PLUGIN_DATA/state``;
    ``$CLAUDE_CONFIG_DIR/plugins/data/*codex*/state`` and
    ``~/.claude/plugins/data/*codex*/state``; ``<temp dir>/codex-companion``."""
    import tempfile

    env = os.environ if env is None else env
    search = Search()
    data = env.get("CLAUDE_PLUGIN_DATA")
    if data:
        search.roots.append(Path(data) / "state")
        search.add_place(str(Path(data) / "state"))
    config_dirs: list[Path] = []
    if env.get("CLAUDE_CONFIG_DIR"):
        config_dirs.append(Path(env["CLAUDE_CONFIG_DIR"]).expanduser())
    if home is None:
        try:
            home = Path.home()
        except (RuntimeError, KeyError):
            home = None
    if home is not None:
        config_dirs.append(home / ".claude")
    for config_dir in config_dirs:
        _codex_plugin_states(config_dir, search)
    fallback = Path(tmpdir or tempfile.gettempdir()) / "codex-companion"
    search.roots.append(fallback)
    search.add_place(str(fallback))
    return search


def default_state_roots(
    env: Mapping[str, str] | None = None, home: Path | None = None, tmpdir: str | None = None
) -> list[Path]:
    """The candidate roots of :func:`default_search`, in search order."""
    return default_search(env, home, tmpdir).roots


def workspace_folders(root: Path) -> list[Path]:
    """The workspace folders of a state root: its direct subfolders holding ``state.json``.

    A root that itself holds ``state.json`` is taken as a single workspace folder.
    Symlinked folders are included here and refused when checked.
    """
    if os.path.lexists(root / "state.json"):
        return [root]
    try:
        children = sorted(root.iterdir())
    except OSError:
        return []
    return [c for c in children if os.path.lexists(c / "state.json")]


def resolve_state_root(raw: str) -> tuple[Path, str | None]:
    """The state root a ``--state-root`` argument names, and a note for the user.

    Raises ``ValueError`` (one line) for an empty argument, a missing path or one that
    is not a directory. A plugin data folder (the folder above ``state/``: it holds no
    workspace folder, ``state/`` does) is taken as its ``state/`` folder, and the note
    says so.
    """
    if not raw.strip():
        raise ValueError("--state-root: empty path; give the plugin's state folder")
    root = Path(raw)
    if not os.path.exists(root):
        raise ValueError(f"--state-root {raw}: no such directory")
    if not os.path.isdir(root):
        raise ValueError(f"--state-root {raw}: not a directory")
    if not workspace_folders(root):
        inner = root / "state"
        if os.path.isdir(inner) and workspace_folders(inner):
            return inner, (
                f"--state-root {raw}: a plugin data folder; checking its state folder {inner}"
            )
    return root, None
