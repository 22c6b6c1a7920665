"""Windows command lines, as pure functions checkable anywhere: finding a program the
way ``cmd.exe`` does (``PATH`` x ``PATHEXT``), npm's ``.cmd`` shims, and quoting.

On Windows a process gets one command line, not an argv: :func:`subprocess.list2cmdline`
joins an argv by the Microsoft C runtime's rules and the child splits it back
(:func:`split_command_line` is those rules, so a round trip can be checked here). A
``.cmd`` or ``.bat`` file cannot be started without ``cmd.exe``, which reads ``%``,
``^``, ``&``, ``|``, ``<``, ``>`` and ``"`` in its own way: an agent's prompt passed
through it could run commands. npm installs every CLI (``codex``, ``claude``) as such a
shim that only runs ``node <script> %*``, so :func:`command_for` runs that script with
node directly — no ``cmd.exe`` at all. Another batch file is run through ``cmd.exe``
only if no argument holds a character ``cmd.exe`` would interpret (else a clear error).

Nothing here starts a process; the Windows backend that would use it is not written
(``docs/platforms.md``).
"""

from __future__ import annotations

import ntpath
import subprocess

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: the extensions tried when ``PATHEXT`` is not set (Windows' default order)
DEFAULT_PATHEXT = ".COM;.EXE;.BAT;.CMD"

#: characters ``cmd.exe`` interprets even inside quotes (``"`` ends the quoting)
CMD_SPECIAL = frozenset('%!^&|<>"\r\n')


class ShimError(ValueError):
    """A command that cannot be run safely (or at all) as given."""


def find_program(
    name: str, path: str, pathext: str | None, is_file: Callable[[str], bool]
) -> str | None:
    """The file to run for ``name``: a name with a folder is taken as it is (each
    ``PATHEXT`` extension tried, in order, when it has none of them); a bare name is
    looked up in each ``PATH`` entry in order — not in the current folder first, as
    ``cmd.exe`` would: a ``codex.cmd`` dropped in a workspace must not shadow the CLI."""
    exts = [e for e in (pathext or DEFAULT_PATHEXT).split(";") if e]
    has_ext = any(name.lower().endswith(e.lower()) for e in exts)
    candidates = [name] if has_ext else [name + e for e in exts]
    if ntpath.dirname(name):
        return next((c for c in candidates if is_file(c)), None)
    for folder in [d.strip('"') for d in path.split(";") if d.strip()]:
        for candidate in candidates:
            full = ntpath.join(folder, candidate)
            if is_file(full):
                return full
    return None


def npm_shim_script(text: str) -> str | None:
    """The script an npm ``.cmd`` shim runs with node (``%dp0%\\...`` relative to the
    shim's folder, as written), or None if ``text`` is not such a shim. Its last line
    reads ``... "%_prog%"  "%dp0%\\node_modules\\pkg\\bin\\cli.js" %*``."""
    for line in reversed(text.splitlines()):
        at = line.find('"%_prog%"')
        if at < 0:
            continue
        rest = line[at + len('"%_prog%"') :].strip()
        if not rest.startswith('"%dp0%\\') or not rest.endswith("%*"):
            return None
        end = rest.find('"', 1)
        return rest[len('"%dp0%\\') : end] if end > 0 else None
    return None


def command_for(
    argv: Sequence[str],
    *,
    path: str,
    pathext: str | None,
    is_file: Callable[[str], bool],
    read_text: Callable[[str], str],
    comspec: str = "cmd.exe",
) -> list[str]:
    """The argv to start on Windows for ``argv`` (its program found on ``path``)."""
    if not argv:
        raise ShimError("empty command")
    program = find_program(argv[0], path, pathext, is_file)
    if program is None:
        raise ShimError(f"command not found: {argv[0]}")
    if not program.lower().endswith((".cmd", ".bat")):
        return [program, *argv[1:]]
    script = npm_shim_script(read_text(program))
    if script is not None:
        folder = ntpath.dirname(program)
        node = ntpath.join(folder, "node.exe")
        if not is_file(node):
            node = find_program("node", path, pathext, is_file) or "node"
        return [node, ntpath.join(folder, script), *argv[1:]]
    bad = sorted({c for arg in argv[1:] for c in arg if c in CMD_SPECIAL})
    if bad:
        raise ShimError(
            f"{program} is a batch file, and cmd.exe would interpret {''.join(bad)!r} "
            "in its arguments: pass them another way (a file, stdin)"
        )
    return [comspec, "/d", "/s", "/c", '"' + subprocess.list2cmdline([program, *argv[1:]]) + '"']


def split_command_line(line: str) -> list[str]:
    """Split a command line as the Microsoft C runtime does (since VS 2008): whitespace
    separates arguments outside quotes; ``2n`` backslashes before a ``"`` are ``n``
    backslashes and the quote toggles quoting, ``2n+1`` are ``n`` and a literal ``"``;
    ``""`` inside quotes is a literal ``"``; other backslashes are literal."""
    args: list[str] = []
    cur: list[str] = []
    in_arg = quoted = False
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            j = i
            while j < n and line[j] == "\\":
                j += 1
            count = j - i
            if j < n and line[j] == '"':
                cur.append("\\" * (count // 2))
                if count % 2:
                    cur.append('"')
                    i = j + 1
                else:
                    i = j
                in_arg = True
                continue
            cur.append("\\" * count)
            in_arg, i = True, j
            continue
        if c == '"':
            if quoted and i + 1 < n and line[i + 1] == '"':
                cur.append('"')
                i += 2
                in_arg = True
                continue
            quoted = not quoted
            in_arg = True
            i += 1
            continue
        if c in " \t" and not quoted:
            if in_arg:
                args.append("".join(cur))
                cur, in_arg = [], False
            i += 1
            continue
        cur.append(c)
        in_arg = True
        i += 1
    if in_arg:
        args.append("".join(cur))
    return args
