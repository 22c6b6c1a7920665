"""jsonload.loads answers as json.loads does, without importing json."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from typing import Any

import pytest

from jobgate.state import jsonload

VALID = [
    '{"version": 2, "jobs": [], "finished": {"dev": 1, "ino": 2}}',
    "  [1, -2, 3.5e3, true, false, null]\n",
    '"t\\u00e2che \\udcff \\n"',
    '{"a": {"b": {"c": [[], {}]}}}',
    "0",
    '{"dup": 1, "dup": 2}',
    "[1e400, -0.0]",
    '"\u00e9\u4e2d"',
]
INVALID = [
    "",
    "   ",
    "{",
    '{"a": }',
    '{"a": 1} x',
    "[1, 2,]",
    '"unterminated',
    "{'single': 1}",
    '"ctrl \x01 char"',
    "[1] [2]",
]


@pytest.mark.parametrize("text", VALID)
def test_a_valid_document_parses_exactly_as_json_loads_parses_it(text: str) -> None:
    assert jsonload.loads(text) == json.loads(text)
    assert jsonload.loads(text.encode("utf-8")) == json.loads(text.encode("utf-8"))


def test_nan_and_infinity_are_read_as_json_loads_reads_them() -> None:
    value = jsonload.loads("[NaN, Infinity, -Infinity]")
    assert math.isnan(value[0]) and value[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize("text", INVALID)
def test_what_json_loads_refuses_is_refused_with_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        jsonload.loads(text)


def test_bytes_that_are_not_utf8_are_refused_with_a_value_error() -> None:
    with pytest.raises(ValueError):
        jsonload.loads(b'{"a": "\xff"}')


def test_a_document_nested_too_deep_raises_recursion_error() -> None:
    with pytest.raises(RecursionError):
        jsonload.loads("[" * 100_000 + "]" * 100_000)


def _heavy_modules_after(code: str) -> str:
    """Which of json, re and enum a fresh interpreter holds after running ``code``."""
    report = "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; {code}; {report}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_reading_json_imports_neither_json_nor_re() -> None:
    code = (
        "from jobgate.state import jsonload; assert jsonload.loads(b'{\"a\": [1]}') == {'a': [1]}"
    )
    assert _heavy_modules_after(code) == "[]"


def test_invalid_json_is_a_value_error_naming_the_place_even_before_json_is_imported() -> None:
    code = (
        "from jobgate.state import jsonload\n"
        "for text in ['{\"a\": [\"unterminated', '[1, 2,]', '{\"a\" 1}', 'x']:\n"
        "    try:\n"
        "        jsonload.loads(text)\n"
        "    except ValueError as exc:\n"
        "        assert 'char' in str(exc), exc\n"
        "    else:\n"
        "        raise AssertionError(text)\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize(
    "value",
    [{"systemMessage": 'tâche \udcff\n"x" \x1b', "n": [1, None, True, 2.5]}, [], "中", {}],
)
def test_dumps_writes_what_json_dumps_writes(value: object) -> None:
    assert jsonload.dumps(value) == json.dumps(value)


def test_dumps_refuses_what_json_cannot_write() -> None:
    with pytest.raises(TypeError):
        jsonload.dumps({"a": object()})


def _random_document(rng: random.Random, depth: int = 0) -> object:
    """A JSON document of the kinds jobgate writes, with the awkward values in it."""
    if depth > 4 or rng.random() < 0.5:
        return rng.choice(
            [
                None,
                True,
                False,
                0,
                -3,
                2**70,
                1.5,
                -0.0,
                1e300,
                math.nan,
                math.inf,
                -math.inf,
                "",
                'q"b\\c\n\t\x01\x7f',
                "\u0395\u03bb",
                "\udcff",
                "\U0001f600",
            ]
        )
    if rng.random() < 0.5:
        return [_random_document(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["a", "\u00fc", "k\n", "", "camelCase"]
    return {
        f"{rng.choice(keys)}{n}": _random_document(rng, depth + 1) for n in range(rng.randint(0, 4))
    }


ENCODINGS = [
    {},
    {"indent": 2},
    {"indent": 0},
    {"separators": (",", ":")},
    {"indent": 2, "separators": (",", ": ")},
]


@pytest.mark.parametrize("kw", ENCODINGS, ids=lambda kw: repr(kw))
@pytest.mark.parametrize("ascii", [True, False])
def test_encoding_writes_exactly_the_text_json_dumps_writes(
    kw: dict[str, Any], ascii: bool
) -> None:
    rng = random.Random(15)
    for _ in range(2000):
        doc = _random_document(rng)
        assert jsonload.encode(doc, ascii=ascii, **kw) == json.dumps(doc, ensure_ascii=ascii, **kw)


@pytest.mark.parametrize("kw", [{}, {"indent": 2}], ids=["compact", "indented"])
def test_encoding_what_jsonload_does_not_write_raises_what_json_dumps_raises(
    kw: dict[str, Any],
) -> None:
    assert jsonload.encode({1: "x", None: (1, 2)}, ascii=True, **kw) == json.dumps(
        {1: "x", None: (1, 2)}, **kw
    )
    with pytest.raises(TypeError):
        jsonload.encode({"a": {1, 2}}, ascii=True, **kw)
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        jsonload.encode(loop, ascii=True, **kw)


def test_writing_a_state_file_imports_neither_json_nor_re() -> None:
    code = (
        "from jobgate.state.fileio import json_bytes; "
        "assert json_bytes({'a': ['\\udcff', 1.5]}).startswith(b'{\\n  \"a\"'); "
        "assert json_bytes({'a': 1}, pretty=False) == b'{\"a\":1}\\n'"
    )
    assert _heavy_modules_after(code) == "[]"
