"""Where a workspace's state lives.

* Workspace root: the git top level of the given directory (found by walking up to a
  ``.git`` entry, without spawning git), else the directory itself.
* State root: ``$JOBGATE_HOME`` if set, else the platform's user state dir for
  ``jobgate``. It never depends on ``$CLAUDE_PLUGIN_DATA`` or anything else that only
  some callers (hooks vs. terminals) see.
* State dir: ``<state root>/<slug>-<sha256(realpath(root))[:16]>``, mode 0700.
"""

from __future__ import annotations

import os
import sys

from jobgate.state.errors import EXIT_FAILED, JobgateError

APP_NAME = "jobgate"


def find_workspace_root(start: str) -> str:
    """The git top level containing ``start`` (a real path), else ``start`` itself."""
    path = os.path.realpath(start)
    if not os.path.isdir(path):
        if os.path.exists(path):
            raise JobgateError(f"workspace path is not a directory: {start}")
        raise JobgateError(f"workspace directory does not exist: {start}")
    probe = path
    while True:
        if os.path.exists(os.path.join(probe, ".git")):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            return path
        probe = parent


def default_state_root() -> str:
    """The user state dir for jobgate (``platformdirs.user_state_dir``).

    On Linux this is computed directly (``$XDG_STATE_HOME/jobgate``, else
    ``~/.local/state/jobgate``), which is what platformdirs returns there, to keep its
    ~20 ms import off the hook path; elsewhere platformdirs is asked.
    """
    if sys.platform.startswith("linux"):
        base = os.environ.get("XDG_STATE_HOME", "").strip()
        if not base:
            base = os.path.join(os.path.expanduser("~"), ".local", "state")
        return os.path.join(base, APP_NAME)
    import platformdirs

    return str(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def state_root() -> str:
    env = os.environ.get("JOBGATE_HOME", "")
    if env:
        path = os.path.expanduser(env)
        if not os.path.isabs(path):
            # relative to the current directory, repo/ and repo/sub would see different
            # state, and it would land inside the checkout
            raise JobgateError(f"JOBGATE_HOME must be an absolute path, not {env!r}", EXIT_FAILED)
        return os.path.normpath(path)
    return default_state_root()


def slug(root: str) -> str:
    base = os.path.basename(root.rstrip("/\\")) or "workspace"
    out = "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else "-" for c in base)
    out = out.strip("-.")[:48]
    return out or "workspace"


def _sha256_hex(data: bytes) -> str:
    # the builtin SHA-256 module loads in <1 ms; hashlib pulls in OpenSSL (~3 ms)
    try:
        from _sha2 import sha256  # type: ignore[import-not-found,unused-ignore]  # 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment,unused-ignore]
    return str(sha256(data).hexdigest())


def state_dir_name(root: str) -> str:
    digest = _sha256_hex(os.path.realpath(root).encode("utf-8", "surrogateescape"))
    return f"{slug(root)}-{digest[:16]}"


def state_dir_for(cwd: str | None = None) -> tuple[str, str]:
    """``(workspace root, state dir path)`` for ``cwd`` (default: current directory).

    Does not create anything; see :func:`ensure_private_dir`.
    """
    root = find_workspace_root(cwd or os.getcwd())
    return root, os.path.join(state_root(), state_dir_name(root))


def check_private_dir(path: str) -> bool:
    """True if ``path`` exists and is a safe state dir; raise if it exists but is unsafe.

    Unsafe: a symlink, not a directory, or owned by another user. Caveat: ownership is
    only checked where ``os.getuid`` exists (POSIX).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    import stat

    if stat.S_ISLNK(st.st_mode):
        raise JobgateError(f"refusing to use state dir {path}: it is a symlink", EXIT_FAILED)
    if not stat.S_ISDIR(st.st_mode):
        raise JobgateError(f"refusing to use state dir {path}: it is not a directory", EXIT_FAILED)
    getuid = getattr(os, "getuid", None)
    if getuid is not None and st.st_uid != getuid():
        raise JobgateError(
            f"refusing to use state dir {path}: it is owned by uid {st.st_uid}, not you",
            EXIT_FAILED,  # the system refusing, not a call made wrong
        )
    return True


def ensure_state_root(path: str) -> None:
    """Create the state root (0700) if missing.

    Unlike a workspace's state dir, the root may be reached through a symlink (a
    ``~/.local/state`` moved to another disk, macOS's ``/tmp``); the per-workspace dirs
    inside it are what :func:`ensure_private_dir` guards.
    """
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise JobgateError(
            f"cannot create state root {path}: {exc.strerror}", EXIT_FAILED
        ) from None
    if not os.path.isdir(path):
        raise JobgateError(f"state root {path} is not a directory", EXIT_FAILED)


def ensure_private_dir(path: str) -> None:
    """Create ``path`` (and parents) as 0700 if missing; refuse an unsafe existing one."""
    if check_private_dir(path):
        if os.name == "posix" and (os.lstat(path).st_mode & 0o077):
            os.chmod(path, 0o700)
        return
    try:
        os.makedirs(path, mode=0o700, exist_ok=False)
    except FileExistsError:
        pass
    except OSError as exc:
        raise JobgateError(f"cannot create state dir {path}: {exc.strerror}", EXIT_FAILED) from None
    check_private_dir(path)
    if os.name == "posix":
        os.chmod(path, 0o700)
