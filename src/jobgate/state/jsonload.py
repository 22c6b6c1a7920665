"""``json.loads`` and ``json.dumps`` for the hot path, without importing :mod:`json`.

``import json`` also imports :mod:`re` and :mod:`enum` (its decoder and encoder compile
regular expressions at import): ~4 ms of a Stop hook that takes ~22 ms, paid at every
turn of a Claude Code session though the hook only ever *reads* JSON there. The parser
that does the work is CPython's C scanner (``_json.make_scanner``), which ``json``
itself uses; this module drives it directly, with the same defaults as ``json.loads``
(strict strings, ``NaN``/``Infinity`` accepted, leading and trailing whitespace
allowed, nothing after the document). :func:`dumps` likewise drives the C encoder
(``_json.make_encoder``), for what a hook prints at every turn a job runs. Where
``_json`` is missing (another Python), :mod:`json` is used. State files are still
written with :mod:`json` (see :func:`jobgate.state.fileio.json_text`).
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


def _unsupported(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """``json.dumps(value)``: one line, ASCII only (so any text prints on any stdout)."""
    try:
        import _json

        encode: Any = _json.make_encoder(
            None, _unsupported, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
        )
    except (ImportError, AttributeError):  # no C accelerator
        import json

        return json.dumps(value)
    return "".join(encode(value, 0))
