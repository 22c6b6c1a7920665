"""Git, as jobgate needs it for reviews and worktrees: one place that runs ``git``.

Every call is ``git -C DIR ...`` with an explicit argv (never a shell), and a failure is
one :class:`JobgateError` line naming what was wrong (``not a git repository: DIR``,
``unknown base ref: X``), never git's multi-line stderr.

What a change *is* comes from git itself, so what jobgate shows an agent or applies is
exactly what ``git diff`` shows:

* the uncommitted change of a tree (:func:`uncommitted`): staged, unstaged and untracked
  files (those ``.gitignore`` does not exclude), read through a temporary index (a copy
  of the tree's own, then ``git add -A``), so the user's index is never touched;
* a branch against a base (:func:`branch_change`): from their merge base to ``HEAD``;
* a job's change (:func:`change_since`): its worktree's content, committed or not,
  against the commit it started from.

:func:`apply_three_way` brings such a change into a tree with a three-way merge done in
a scratch index first: on a conflict the tree is left byte for byte as it was.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from jobgate.state.errors import EXIT_FAILED, JobgateError

#: git's empty tree: the base of the change of a repository without commits
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

#: how long one git command may take (a huge repository's ``add -A``)
GIT_TIMEOUT = 600.0


class GitFailed(JobgateError):
    """A git command failed; ``stderr`` keeps what git said."""

    def __init__(self, message: str, stderr: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message, exit_code)
        self.stderr = stderr


@dataclass(frozen=True)
class Change:
    """A diff as git prints it (``--binary``), and the paths it touches."""

    diff: bytes
    files: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.diff


def _env(index_file: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    # a git command run from inside a hook or another repository's job must not be
    # pointed elsewhere by that context
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX"):
        env.pop(key, None)
    env["LC_ALL"] = "C"  # git's messages, which conflicts are read from, in English
    if index_file is not None:
        env["GIT_INDEX_FILE"] = index_file
    return env


def git(
    directory: str,
    *args: str,
    index_file: str | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """``git -C directory ARGS``: its output; a :class:`GitFailed` when it fails (with
    ``check``), or when git itself cannot be run."""
    # --no-optional-locks: a read (``git status``) never refreshes and rewrites the index
    argv = ["git", "--no-optional-locks", "-C", directory, *args]
    try:
        proc = subprocess.run(
            argv,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            env=_env(index_file),
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise GitFailed("git is not installed (no git on PATH)", "") from None
    except subprocess.TimeoutExpired:
        raise GitFailed(f"git {args[0]} in {directory} took over {GIT_TIMEOUT:g}s", "") from None
    if check and proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace")
        first = next((ln for ln in stderr.splitlines() if ln.strip()), f"exit {proc.returncode}")
        raise GitFailed(f"git {args[0]} failed in {directory}: {first.strip()}", stderr)
    return proc


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape").strip()


def toplevel(directory: str) -> str:
    """The top level of the work tree holding ``directory``, or ``not a git repository``."""
    if not os.path.isdir(directory):
        raise JobgateError(f"not a git repository: {directory} (no such directory)")
    proc = git(directory, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise JobgateError(f"not a git repository: {directory}")
    return os.path.realpath(_text(proc.stdout))


def head(directory: str) -> str | None:
    """The commit ``HEAD`` names, or None in a repository with no commits yet."""
    proc = git(directory, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    return _text(proc.stdout) if proc.returncode == 0 else None


def resolve(directory: str, ref: str) -> str:
    """The commit ``ref`` names, or ``unknown base ref: REF``."""
    if not ref or ref.startswith("-") or "\x00" in ref:
        raise JobgateError(f"unknown base ref: {ref!r}")
    proc = git(directory, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise JobgateError(f"unknown base ref: {ref}")
    return _text(proc.stdout)


def _paths(data: bytes) -> tuple[str, ...]:
    """``--name-only -z`` output as paths."""
    return tuple(p.decode("utf-8", "surrogateescape") for p in data.split(b"\0") if p)


def _diff(directory: str, base: str, *, index_file: str | None, cached: bool) -> Change:
    opts = ["--no-color", "--no-ext-diff", "--no-textconv", "--no-renames"]
    where = ["--cached"] if cached else []
    diff = git(directory, "diff", *opts, "--binary", *where, base, index_file=index_file).stdout
    names = git(directory, "diff", *opts, "--name-only", "-z", *where, base, index_file=index_file)
    return Change(diff, _paths(names.stdout))


@contextmanager
def snapshot_index(directory: str) -> Iterator[str]:
    """A temporary index holding ``directory``'s whole work tree (its own index copied,
    then ``git add -A``), removed afterwards. The tree's real index is never written."""
    import shutil
    import tempfile

    real = _text(
        git(directory, "rev-parse", "--path-format=absolute", "--git-path", "index").stdout
    )
    fd, tmp = tempfile.mkstemp(prefix="jobgate-index-")
    os.close(fd)
    try:
        if os.path.exists(real):
            shutil.copyfile(real, tmp)
        else:
            os.unlink(tmp)  # git creates it; an empty file is no index
        git(directory, "add", "-A", index_file=tmp)
        yield tmp
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def change_since(directory: str, base: str | None) -> Change:
    """Everything in ``directory``'s work tree that differs from commit ``base`` (None:
    the empty tree): committed since, staged, unstaged and untracked."""
    with snapshot_index(directory) as index_file:
        return _diff(directory, base or EMPTY_TREE, index_file=index_file, cached=True)


def uncommitted(directory: str) -> Change:
    """The work tree's uncommitted change against ``HEAD`` (a repository with no commits:
    against nothing, so every file is new)."""
    return change_since(directory, head(directory))


def branch_change(directory: str, base_ref: str) -> Change:
    """What ``HEAD`` changed since it forked from ``base_ref``: the diff from their merge
    base to ``HEAD`` (``git diff BASE...HEAD``)."""
    base = resolve(directory, base_ref)
    if head(directory) is None:
        raise JobgateError(f"the repository in {directory} has no commits yet to compare with")
    proc = git(directory, "merge-base", base, "HEAD", check=False)
    if proc.returncode != 0:
        raise JobgateError(f"{base_ref} and HEAD have no common history")
    merge_base = _text(proc.stdout)
    opts = ["--no-color", "--no-ext-diff", "--no-textconv", "--no-renames"]
    diff = git(directory, "diff", *opts, "--binary", merge_base, "HEAD").stdout
    names = git(directory, "diff", *opts, "--name-only", "-z", merge_base, "HEAD").stdout
    return Change(diff, _paths(names))


# -- worktrees ---------------------------------------------------------------------
def worktree_add(repo: str, path: str, branch: str, commit: str) -> None:
    """A new worktree at ``path`` on a new ``branch`` starting at ``commit``."""
    git(repo, "worktree", "add", "--quiet", "-b", branch, path, commit)


def worktree_remove(repo: str, path: str, branch: str | None) -> None:
    """Remove the worktree at ``path`` (also when its folder is already gone) and its
    ``branch``, then prune, so the repository keeps no stale entry."""
    if os.path.isdir(path):
        git(repo, "worktree", "remove", "--force", "--force", path, check=False)
    if os.path.isdir(path):
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    git(repo, "worktree", "prune")
    if branch:
        exists = git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
        if exists.returncode == 0:
            git(repo, "branch", "-D", "--quiet", branch)


def worktrees(repo: str) -> list[str]:
    """The paths of ``repo``'s worktrees as git lists them (the main one first)."""
    out = git(repo, "worktree", "list", "--porcelain", "-z").stdout
    return [
        f[len(b"worktree ") :].decode("utf-8", "surrogateescape")
        for f in out.split(b"\0")
        if f.startswith(b"worktree ")
    ]


# -- applying ----------------------------------------------------------------------
@dataclass(frozen=True)
class Applied:
    """The outcome of :func:`apply_three_way`: the files it changed, or the conflicting
    ones (then nothing was changed)."""

    changed: tuple[str, ...]
    conflicts: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.conflicts


def _write_tree(directory: str, index_file: str) -> str:
    return _text(git(directory, "write-tree", index_file=index_file).stdout)


def apply_three_way(directory: str, diff: bytes) -> Applied:
    """Merge ``diff`` into ``directory``'s work tree, three-way, as ``git apply --3way``
    would, without touching the tree until the merge is known to be clean.

    1. the tree as it is now goes into a scratch index (its tree: ``W``);
    2. ``git apply --3way --cached`` merges the diff into that index; conflicting paths
       are the index's unmerged entries (stage > 0): reported, nothing else done;
    3. otherwise the merged index's tree ``R`` is the result, and the diff ``W..R`` —
       which applies exactly to a tree whose content is ``W`` — is checked, then applied
       to the work tree with plain ``git apply`` (the user's index is never written).
    """
    if not diff:
        return Applied((), ())
    with snapshot_index(directory) as index_file:
        before = _write_tree(directory, index_file)
        args = ("apply", "--3way", "--cached")
        proc = git(directory, *args, index_file=index_file, input=diff, check=False)
        unmerged = git(directory, "ls-files", "-u", "-z", index_file=index_file).stdout
        conflicts = sorted({_unmerged_path(e) for e in unmerged.split(b"\0") if b"\t" in e})
        if conflicts:
            return Applied((), tuple(conflicts))
        if proc.returncode != 0:
            return Applied((), _failed_paths(proc.stderr) or ("(the change does not apply)",))
        after = _write_tree(directory, index_file)
    opts = ["--no-color", "--no-ext-diff", "--no-textconv", "--no-renames"]
    step = git(directory, "diff", *opts, "--binary", before, after).stdout
    names = _paths(git(directory, "diff", *opts, "--name-only", "-z", before, after).stdout)
    if not step:
        return Applied((), ())
    check = git(directory, "apply", "--check", input=step, check=False)
    if check.returncode != 0:
        # the tree holds something the scratch index could not see (an ignored file
        # where the change adds one): nothing is written
        return Applied((), _failed_paths(check.stderr) or names)
    git(directory, "apply", input=step)
    return Applied(names, ())


def _unmerged_path(entry: bytes) -> str:
    """The path of one ``ls-files -u -z`` entry (``MODE SHA STAGE\tPATH``)."""
    return entry.split(b"\t", 1)[1].decode("utf-8", "surrogateescape")


def _failed_paths(stderr: bytes) -> tuple[str, ...]:
    """The paths ``git apply`` names in ``error: ...: PATH: ...`` / ``patch failed: PATH:N``."""
    found: list[str] = []
    for line in stderr.decode("utf-8", "replace").splitlines():
        if not line.startswith("error: "):
            continue
        rest = line[len("error: ") :]
        if rest.startswith("patch failed: "):
            path = rest[len("patch failed: ") :].rsplit(":", 1)[0]
        elif ": " in rest:
            path = rest.split(": ", 1)[0]
        else:
            continue
        if path and path not in found:
            found.append(path)
    return tuple(found)


def is_dirty(directory: str) -> bool:
    """Whether ``git status`` shows anything (tracked changes or untracked files)."""
    out = git(directory, "status", "--porcelain", "-z", "--untracked-files=normal").stdout
    return bool(out)


def short(commit: str) -> str:
    return commit[:12]


def join_paths(paths: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
