"""``json.loads`` and ``json.dumps`` for the hot path, without importing :mod:`json`.

``import json`` also imports :mod:`re` and :mod:`enum` (its decoder and encoder compile
regular expressions at import): ~4 ms of a Stop hook that takes ~22 ms, paid at every
turn of a Claude Code session though the hook only ever *reads* JSON there. The parser
that does the work is CPython's C scanner (``_json.make_scanner``), which ``json``
itself uses; this module drives it directly, with the same defaults as ``json.loads``
(strict strings, ``NaN``/``Infinity`` accepted, leading and trailing whitespace
allowed, nothing after the document). :func:`dumps` likewise drives the C encoder
(``_json.make_encoder``), for what a hook prints at every turn a job runs, and
:func:`encode` writes the state files (a background worker records its job's end
without importing :mod:`json`, :mod:`re` and :mod:`enum`: ~5 ms of CPU per job).
Where ``_json`` is missing (another Python), :mod:`json` is used.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: JSON's whitespace (what ``json.loads`` skips around the document)
WHITESPACE = " \t\n\r"


class _Defaults:
    """The settings ``_json.make_scanner`` reads: ``json.loads``' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # float("NaN"), float("Infinity"), float("-Infinity")


_scan: Callable[[str, int], tuple[Any, int]] | None = None


def _scanner() -> Callable[[str, int], tuple[Any, int]]:
    global _scan
    if _scan is None:
        try:
            import _json

            make: Any = _json.make_scanner
            context: Any = _Defaults()
        except (ImportError, AttributeError):  # no C accelerator: json's own scanner
            import json
            import json.scanner

            make, context = json.scanner.make_scanner, json.JSONDecoder()
        _scan = make(context)
    return _scan


def loads(data: bytes | str) -> Any:
    """The JSON document in ``data`` (UTF-8 if bytes). Raises :class:`ValueError` (or
    :class:`UnicodeDecodeError`, a subclass) when it is not one, and
    :class:`RecursionError` when it nests too deep, like ``json.loads``."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    start = len(text) - len(text.lstrip(WHITESPACE))
    try:
        obj, end = _scanner()(text, start)
    except (StopIteration, SystemError):
        # not JSON: the C scanner raises json.decoder's error only once that module is
        # imported (else a SystemError), so let json say what is wrong, and where
        import json

        json.loads(text)
        raise ValueError("not valid JSON") from None  # json.loads accepted it: never
    if text[end:].strip(WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return obj


class _Unsupported(Exception):
    """A value :func:`encode` leaves to :mod:`json` (which then says what is wrong)."""


def _unsupported(value: object) -> object:
    raise _Unsupported


def encode(
    value: Any,
    *,
    ascii: bool,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
) -> str:
    """``json.dumps(value, ensure_ascii=ascii, indent=indent, separators=separators)``,
    the same text, for the documents jobgate writes (str keys; str, int, float, bool,
    None, list, tuple and dict values). Anything else — another key or value type, a
    cycle, nesting too deep — is handed to :mod:`json`, which encodes it or raises what
    ``json.dumps`` raises."""
    try:
        import _json

        text: Any = _json.encode_basestring_ascii if ascii else _json.encode_basestring
        if indent is None:
            item, key = separators or (", ", ": ")
            make: Any = _json.make_encoder
            return "".join(
                make({}, _unsupported, text, None, key, item, False, False, True)(value, 0)
            )
        item, key = separators or (",", ": ")
        out: list[str] = []
        _pretty(value, "\n", " " * indent, item, key, text, out)
        return "".join(out)
    except (ImportError, AttributeError, _Unsupported, RecursionError):
        import json

        return json.dumps(value, ensure_ascii=ascii, indent=indent, separators=separators)


def _pretty(
    value: Any,
    newline: str,
    step: str,
    item: str,
    key: str,
    text: Callable[[str], str],
    out: list[str],
) -> None:
    """``value`` laid out as ``json.dumps(indent=...)`` does, appended to ``out``."""
    if isinstance(value, str):
        out.append(text(value))
    elif value is None or value is True or value is False:
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = newline + step
        out.append("[")
        for n, member in enumerate(value):
            out.append(inner if n == 0 else item + inner)
            _pretty(member, inner, step, item, key, text, out)
        out.append(newline + "]")
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + step
        out.append("{")
        for n, (name, member) in enumerate(value.items()):
            if not isinstance(name, str):
                raise _Unsupported  # json turns numbers, bools and None into keys
            out.append(inner if n == 0 else item + inner)
            out.append(text(name))
            out.append(key)
            _pretty(member, inner, step, item, key, text, out)
        out.append(newline + "}")
    else:
        raise _Unsupported


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def dumps(value: Any) -> str:
    """``json.dumps(value)``: one line, ASCII only (so any text prints on any stdout)."""
    return encode(value, ascii=True)
