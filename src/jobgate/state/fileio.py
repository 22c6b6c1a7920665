"""Crash-safe file primitives: atomic replace, JSON read/write, appended log lines.

Every file is written to a temp file in the same folder, flushed, fsynced and
``os.replace``d (then the folder is fsynced), so a reader never sees half a file and a
writer killed at any instant leaves the previous content intact. Files are 0600. (The
transaction's commit fsyncs later, once its lock is let go: :mod:`jobgate.state.durable`.)
"""

from __future__ import annotations

import codecs
import os
import sys
import time

from jobgate.state import jsonload, replacing

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class CorruptFile(Exception):
    """A state file exists but does not hold what it should."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def atomic_write(path: str, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, ``os.replace`` (without
    the fsyncs when not ``durable``: a cache, whose loss costs only its rebuild).

    An :class:`OSError` (disk full, read-only file system, permission denied) names
    ``path``, not the temp file, and not nothing: ``os.write`` and ``os.fsync`` errors
    carry no file name of their own.
    """
    try:
        _atomic_write(path, data, mode, durable)
    except OSError as exc:
        if exc.filename == path or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, path) from exc


def _atomic_write(path: str, data: bytes, mode: int, durable: bool) -> None:
    tmp = write_temp(path, data, mode, sync=durable)
    try:
        replacing.replace(tmp, path)  # retried while Windows says another process holds it
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if durable:
        fsync_dir(os.path.dirname(path) or ".")


def write_temp(path: str, data: bytes, mode: int = 0o600, *, sync: bool = True) -> str:
    """``data`` in a new temp file beside ``path``, fsynced unless ``sync`` is false (a
    name :func:`remove_stale_temp_files` sweeps if it is never renamed); returns its path."""
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, mode)
    try:
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


#: a temp file of :func:`atomic_write` older than this was left by a killed writer
STALE_TEMP_SECONDS = 300.0


def remove_stale_temp_files(folder: str, max_age: float = STALE_TEMP_SECONDS) -> int:
    """Delete ``.*.tmp`` files older than ``max_age`` seconds in ``folder``.

    A writer killed between creating its temp file and ``os.replace`` leaves one behind;
    nothing ever reads them. Called under the lock, where every store write happens; the
    age threshold spares a temp file some lock-free writer may still be filling.
    Returns how many were removed.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    cutoff = time.time() - max_age
    removed = 0
    for name in names:
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        path = os.path.join(folder, name)
        try:
            if os.lstat(path).st_mtime < cutoff:
                os.unlink(path)
                removed += 1
        except OSError:
            continue
    return removed


def fsync_dir(folder: str) -> None:
    """fsync a folder, so a rename or unlink in it is durable (POSIX; errors ignored)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def json_text(obj: Any, **kw: Any) -> str:
    """``json.dumps(obj, **kw)`` that always encodes to valid UTF-8.

    Text is kept as is (a prompt in Greek stays readable in the file) unless it holds a
    lone surrogate: what Python makes of bytes that are not UTF-8 in argv, environment
    variables and file names (byte 0xff becomes U+DCFF). UTF-8 cannot encode that, so
    the whole document is then dumped with ASCII escapes (``"\\udcff"``): valid JSON
    that decodes back to the very same str, from which ``os.fsencode`` restores the
    original bytes when the command is run.
    """
    text = jsonload.encode(obj, ascii=False, **kw)  # indent=, separators= as json.dumps
    return text if is_utf8_text(text) else jsonload.encode(obj, ascii=True, **kw)


def is_utf8_text(value: str) -> bool:
    """True unless ``value`` holds a lone surrogate (it then has no UTF-8 encoding)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_bytes(obj: Any, *, pretty: bool = True) -> bytes:
    """``obj`` as a JSON document (indented, or compact) ending in a newline."""
    if pretty:
        text = json_text(obj, indent=2) + "\n"
    else:
        text = json_text(obj, separators=(",", ":")) + "\n"
    return text.encode("utf-8")


def write_json(path: str, obj: Any, *, pretty: bool = True) -> None:
    atomic_write(path, json_bytes(obj, pretty=pretty))


#: how every state file is opened to be read: never through a symlink, never waiting
#: for a writer (a FIFO put in a file's place must not hang a command, or the hook)
READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
#: how a line is appended to a job log: likewise, and created 0600 if missing
APPEND_FLAGS = (
    os.O_WRONLY
    | os.O_APPEND
    | os.O_CREAT
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
#: a JSON state file larger than this is damaged, not read (64 MiB)
MAX_JSON_BYTES = 64 * 1024 * 1024


#: what a file that is not a regular one is, by the type bits of its mode
_KINDS = {
    0o120000: "a symlink (not followed)",
    0o040000: "a directory, not a regular file",
    0o010000: "a FIFO, not a regular file",
    0o140000: "a socket, not a regular file",
    0o020000: "a character device, not a regular file",
    0o060000: "a block device, not a regular file",
}


def not_regular(path: str, mode: int) -> CorruptFile:
    """The :class:`CorruptFile` of a state file that is not a regular file; its reason
    reads after "was" or ":" ("a FIFO, not a regular file")."""
    return CorruptFile(path, _KINDS.get(mode & 0o170000, "not a regular file"))


def open_regular(path: str, flags: int = READ_FLAGS) -> tuple[int, os.stat_result]:
    """``path`` opened with ``flags`` (never through a symlink, never blocking), and its
    ``fstat``; :class:`CorruptFile` if it is a symlink, a FIFO, a device... anything but a
    regular file. ``FileNotFoundError`` and other OS errors pass through."""
    import stat

    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        raise
    except OSError as exc:
        # ELOOP (EMLINK on BSD) for a symlink, ENXIO for a socket or a FIFO opened to
        # write that nobody reads: say what it is, not the errno
        try:
            st = os.lstat(path)
        except OSError:
            raise exc from None
        if stat.S_ISREG(st.st_mode):
            raise
        raise not_regular(path, st.st_mode) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise not_regular(path, st.st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def open_log(path: str, flags: int = APPEND_FLAGS) -> int:
    """A job log opened to append (created 0600 if missing; ``flags``: to read it,
    :data:`READ_FLAGS`) — never through a symlink, never a FIFO or a device: those are an
    :class:`OSError` naming the path, as a disk that refuses the write would be."""
    import errno

    try:
        return open_regular(path, flags)[0]
    except CorruptFile as exc:
        raise OSError(errno.EINVAL, f"the job log is {exc.reason}", path) from None


def read_at_most(fd: int, limit: int, hint: int = 0) -> bytes:
    """What is left to read in ``fd``, up to ``limit + 1`` bytes (more than ``limit``
    means the file is longer than the caller wants)."""
    chunks: list[bytes] = []
    left = limit + 1
    step = max(hint + 1, 65536)
    while left > 0:
        chunk = os.read(fd, min(step, left))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_json(path: str) -> Any:
    """Parsed JSON of ``path``; None if missing; :class:`CorruptFile` if unreadable: not
    JSON, larger than :data:`MAX_JSON_BYTES`, or not a regular file (a symlink is not
    followed, a FIFO not waited on)."""
    try:
        fd, st = open_regular(path)
    except FileNotFoundError:
        return None
    try:
        data = b"" if st.st_size > MAX_JSON_BYTES else read_at_most(fd, MAX_JSON_BYTES, st.st_size)
    finally:
        os.close(fd)
    if st.st_size > MAX_JSON_BYTES or len(data) > MAX_JSON_BYTES:
        size = max(st.st_size, len(data))
        raise CorruptFile(path, f"too large ({size} bytes; at most {MAX_JSON_BYTES >> 20} MiB)")
    try:
        return jsonload.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # nested too deep
        raise CorruptFile(path, f"not valid JSON ({exc})") from None


#: name of the codec error handler that writes text holding undecodable bytes back out
ORIGINAL_BYTES = "jobgate-original-bytes"


def _original_bytes(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Encoding error handler: ``surrogateescape``, with a fallback that cannot fail.

    A character U+DC80..U+DCFF is what Python made of an undecodable byte (argv, the
    environment, a file name), so that byte is written back: a name typed as ``\\xff``
    prints as ``\\xff``, as ``ls`` and ``echo`` would print it, and a command line shown
    by ``status`` can be pasted back. Anything else the stream cannot encode (another
    lone surrogate, from a JSON ``\\ud800`` escape; non-ASCII on an ASCII terminal) is
    written as a backslash escape, like Python's own ``backslashreplace`` on stderr.
    """
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for ch in exc.object[exc.start : exc.end]:
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:
            out.append(cp - 0xDC00)
        elif cp <= 0xFF:
            out += b"\\x%02x" % cp
        elif cp <= 0xFFFF:
            out += b"\\u%04x" % cp
        else:
            out += b"\\U%08x" % cp
    return bytes(out), exc.end


codecs.register_error(ORIGINAL_BYTES, _original_bytes)


def tolerant_stdio() -> None:
    """Make stdout and stderr write text that holds undecodable bytes (a job name, a
    command or a folder name that is not UTF-8) instead of raising UnicodeEncodeError;
    see :func:`_original_bytes`. JSON output needs none of it: :func:`json_text` escapes
    such text."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            reconfigure(errors=ORIGINAL_BYTES)
        except (ValueError, OSError, TypeError):
            pass


def append_line(path: str, line: str) -> None:
    """Append one line (O_APPEND, 0600). Best effort: a log line never fails a command.

    Only to a regular file: a symlink in the log's place is not followed (the line would
    land in whatever file it names) and a FIFO is not written to (it could block); the
    line is then dropped, as when the disk is full.
    """
    try:
        fd, _st = open_regular(path, APPEND_FLAGS)
    except (OSError, CorruptFile):
        return
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8", ORIGINAL_BYTES))
    except OSError:
        pass
    finally:
        os.close(fd)


def log_line(path: str, message: str) -> None:
    """Append a timestamped progress line ``[ISO time] message`` to a job log."""
    from jobgate.state.model import now_iso

    append_line(path, f"[{now_iso()}] {message}")


def warn(message: str) -> None:
    try:
        sys.stderr.write(f"jobgate: warning: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def keep_newest(folder: str, prefix: str, keep: int) -> None:
    """Remove all but the ``keep`` newest files in ``folder`` whose names start with
    ``prefix`` (by modification time): copies kept aside must not pile up forever. Any
    file but a folder counts: a FIFO or a symlink found in a state file's place is kept
    aside like a damaged file, and must not pile up either."""
    try:
        found = [
            (e.stat(follow_symlinks=False).st_mtime, e.name, e.path)
            for e in os.scandir(folder)
            if e.name.startswith(prefix) and not e.is_dir(follow_symlinks=False)
        ]
    except OSError:
        return
    for _mtime, _name, path in sorted(found, reverse=True)[keep:]:
        _unlink_quietly(path)


def aside_name(path: str, tag: str) -> str:
    """A free name ``<path>.<tag>-<UTC stamp>`` (``-2``, ``-3``... if taken) to move a
    file aside to, such as a damaged index or a reset config."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = f"{path}.{tag}-{stamp}"
    n = 1
    while os.path.lexists(target):
        n += 1
        target = f"{path}.{tag}-{stamp}-{n}"
    return target
