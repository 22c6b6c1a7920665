"""Where a workspace's state lives.

* Workspace root: the git top level of the given directory (found by walking up to a
  ``.git`` entry, without spawning git), else the directory itself.
* State root: ``$JOBGATE_HOME`` if set, else the platform's user state dir for
  ``jobgate``. It never depends on ``$CLAUDE_PLUGIN_DATA`` or anything else that only
  some callers (hooks vs. terminals) see.
* State dir: ``<state root>/<slug>-<sha256(realpath(root))[:16]>``, mode 0700; on
  macOS and Windows the real path is spelled in its on-disk case first
  (:mod:`jobgate.state.pathcase`), so ``~/Proj`` and ``~/proj`` share one.
"""

from __future__ import annotations

import os
import sys

from jobgate.state.errors import EXIT_FAILED, JobgateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

APP_NAME = "jobgate"


def _canonical_case(path: str) -> str:
    if sys.platform not in ("darwin", "win32"):  # pathcase.FOLDS_CASE, without its import
        return path
    from jobgate.state import pathcase

    return pathcase.canonical_case(path)


#: spells a real path in its on-disk case where file systems ignore case (macOS,
#: Windows), so ``~/Proj`` and ``~/proj`` are one workspace; the identity elsewhere.
#: Tests replace it to act out a case-insensitive file system on Linux.
canonicalize: Callable[[str], str] = _canonical_case


def find_workspace_root(start: str) -> str:
    """The git top level containing ``start`` (a real path, in its on-disk case), else
    ``start`` itself."""
    path = canonicalize(os.path.realpath(start))
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
    real = canonicalize(os.path.realpath(root))
    digest = _sha256_hex(real.encode("utf-8", "surrogateescape"))
    return f"{slug(canonicalize(root))}-{digest[:16]}"


def state_dir_for(cwd: str | None = None) -> tuple[str, str]:
    """``(workspace root, state dir path)`` for ``cwd`` (default: current directory).

    Does not create anything; see :func:`ensure_private_dir`.
    """
    root = find_workspace_root(cwd or os.getcwd())
    return root, os.path.join(state_root(), state_dir_name(root))


#: symlinks followed while judging a state root's path before it is called a loop
MAX_SYMLINKS = 40


def _my_uid() -> int | None:
    getuid = getattr(os, "getuid", None)
    return None if getuid is None else int(getuid())


def _unsafe_dir(st: os.stat_result, me: int) -> str | None:
    """Why a directory met on the way to the state root lets another user swap what is
    below it, or None: owned by someone other than root or you, or writable by group or
    others without the sticky bit (in a sticky dir only an entry's owner may rename it)."""
    if st.st_uid not in (0, me):
        return f"is owned by uid {st.st_uid} (neither root nor you)"
    if st.st_mode & 0o022 and not st.st_mode & 0o1000:
        mode = st.st_mode & 0o7777
        return f"is writable by group or others without the sticky bit (mode {mode:04o})"
    return None


def check_state_root(root: str) -> None:
    """Refuse (:class:`JobgateError`, exit 1) a state root another user could swap.

    The way ssh judges ``~/.ssh``: every directory from ``/`` down to ``root`` (symlinks
    resolved one by one, each symlink owned by root or you) must be owned by root or
    you and not writable by group or others, except that a sticky one (``/tmp``) may be
    an ancestor; ``root`` itself must be yours and writable by nobody else. A part of
    the path that does not exist yet stops the walk: it will be created, as yours. A
    no-op where there are no uids (Windows).
    """
    me = _my_uid()
    if me is None or not os.path.isabs(root):
        return
    import stat

    def refuse(path: str, why: str) -> JobgateError:
        where = "it" if path == root else path
        return JobgateError(f"refusing to use state root {root}: {where} {why}", EXIT_FAILED)

    todo = [part for part in root.split("/") if part]
    todo.reverse()  # a stack: the next part last
    current = "/"
    hops = 0
    try:
        st = os.lstat(current)
    except OSError:
        return
    # a part that does not exist yet is created later (as yours); one that cannot be
    # looked at, or is not a directory, fails whoever uses it with its own error
    while todo:
        why = _unsafe_dir(st, me)
        if why is not None:
            raise refuse(current, why)
        part = todo.pop()
        if part == ".":
            continue
        if part == "..":
            current = os.path.dirname(current)
            st = os.lstat(current)
            continue
        nxt = os.path.join(current, part)
        try:
            st = os.lstat(nxt)
        except OSError:
            return
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid not in (0, me):
                raise refuse(nxt, f"is a symlink owned by uid {st.st_uid} (neither root nor you)")
            hops += 1
            if hops > MAX_SYMLINKS:
                raise refuse(nxt, "leads through too many symlinks")
            target = os.readlink(nxt)
            todo.extend(reversed([part for part in target.split("/") if part]))
            if target.startswith("/"):
                current = "/"
            st = os.lstat(current)
            continue
        if not stat.S_ISDIR(st.st_mode):
            return
        current = nxt
    if st.st_uid != me:
        raise refuse(current, f"is owned by uid {st.st_uid}, not you")
    if st.st_mode & 0o022:
        raise refuse(current, f"is writable by group or others (mode {st.st_mode & 0o7777:04o})")


def _refuse_unsafe_entry(path: str, st: os.stat_result) -> None:
    """Refuse a state dir that is a symlink, not a directory, or another user's."""
    import stat

    if stat.S_ISLNK(st.st_mode):
        raise JobgateError(f"refusing to use state dir {path}: it is a symlink", EXIT_FAILED)
    if not stat.S_ISDIR(st.st_mode):
        raise JobgateError(f"refusing to use state dir {path}: it is not a directory", EXIT_FAILED)
    me = _my_uid()
    if me is not None and st.st_uid != me:
        raise JobgateError(
            f"refusing to use state dir {path}: it is owned by uid {st.st_uid}, not you",
            EXIT_FAILED,  # the system refusing, not a call made wrong
        )


def check_private_dir(path: str) -> bool:
    """True if ``path`` exists and is a safe state dir; raise if it exists but is unsafe.

    Unsafe: a symlink, not a directory, or owned by another user; or in a folder that
    :func:`check_state_root` refuses (checked first, whether ``path`` exists or not).
    Ownership is only checked where ``os.getuid`` exists (POSIX).
    """
    check_state_root(os.path.dirname(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    _refuse_unsafe_entry(path, st)
    return True


def _make_dirs(path: str) -> None:
    """``os.makedirs(path)``, each folder it creates 0700 (the XDG rule), not only the
    last: a ``~/.local/state`` made group-writable by a umask of 002 would be refused."""
    parent = os.path.dirname(path)
    if parent and parent != path and not os.path.lexists(parent):
        _make_dirs(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass


def ensure_state_root(path: str) -> None:
    """Create the state root (0700, and each folder it needs) if missing; refuse one
    that :func:`check_state_root` finds another user could swap (before creating
    anything in it, and again after).

    Unlike a workspace's state dir, the root may be reached through a symlink (a
    ``~/.local/state`` moved to another disk, macOS's ``/tmp``) whose owner is you or
    root; the per-workspace dirs inside it are what :func:`ensure_private_dir` guards.
    """
    check_state_root(path)
    try:
        _make_dirs(path)
    except OSError as exc:
        raise JobgateError(
            f"cannot create state root {path}: {exc.strerror}", EXIT_FAILED
        ) from None
    if not os.path.isdir(path):
        raise JobgateError(f"state root {path} is not a directory", EXIT_FAILED)
    check_state_root(path)


#: a directory opened to be checked and fixed, never through a symlink
_DIR_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def ensure_private_dir(path: str) -> None:
    """Create ``path`` (and parents) as 0700 if missing; refuse an unsafe existing one.

    The mode is fixed through a descriptor opened with ``O_NOFOLLOW | O_DIRECTORY`` and
    checked with ``fstat`` (``fchmod``, never ``chmod`` by name): a dir swapped for a
    symlink after the checks is refused, and whatever it points to is left alone.
    """
    if not check_private_dir(path):
        try:
            _make_dirs(path)
        except OSError as exc:
            raise JobgateError(
                f"cannot create state dir {path}: {exc.strerror}", EXIT_FAILED
            ) from None
    if os.name != "posix":
        check_private_dir(path)
        return
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        try:
            st = os.lstat(path)
        except OSError:
            st = None
        if st is not None:
            _refuse_unsafe_entry(path, st)  # a symlink now, or not a directory
        raise JobgateError(f"cannot open state dir {path}: {exc.strerror}", EXIT_FAILED) from None
    try:
        st = os.fstat(fd)
        _refuse_unsafe_entry(path, st)
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
