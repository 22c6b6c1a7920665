"""Windows command lines, checked here as pure functions: PATH x PATHEXT lookup, npm's
.cmd shims run without cmd.exe, and quoting that round-trips through the C runtime's
splitting rules (subprocess.list2cmdline semantics)."""

from __future__ import annotations

import subprocess

import pytest

from jobgate.proc import winshim

NPM_SHIM = (
    "@ECHO off\r\nGOTO start\r\n:find_dp0\r\nSET dp0=%~dp0\r\nEXIT /b\r\n:start\r\n"
    "SETLOCAL\r\nCALL :find_dp0\r\n\r\n"
    'IF EXIST "%dp0%\\node.exe" (\r\n  SET "_prog=%dp0%\\node.exe"\r\n) ELSE (\r\n'
    '  SET "_prog=node"\r\n  SET PATHEXT=%PATHEXT:;.JS;=;%\r\n)\r\n\r\n'
    'endLocal & goto #_undefined_# 2>NUL || title %COMSPEC% & "%_prog%"  '
    '"%dp0%\\node_modules\\@openai\\codex\\bin\\codex.js" %*\r\n'
)
NPM = "C:\\Users\\me\\AppData\\Roaming\\npm"
PATH = f"C:\\Windows\\system32;{NPM};C:\\Program Files\\nodejs"


def _fs(*files: str, texts: dict[str, str] | None = None) -> dict[str, object]:
    """A case-insensitive file system holding ``files`` (``texts``: their content)."""
    have = {f.lower() for f in files}
    content = {k.lower(): v for k, v in (texts or {}).items()}
    return {
        "is_file": lambda p: p.lower() in have,
        "read_text": lambda p: content.get(p.lower(), "@echo off\r\n"),
    }


def test_a_bare_name_is_found_along_path_with_pathext_in_order() -> None:
    fs = _fs(f"{NPM}\\codex.cmd", f"{NPM}\\codex", "C:\\Program Files\\nodejs\\codex.exe")
    found = winshim.find_program("codex", PATH, ".COM;.EXE;.BAT;.CMD", fs["is_file"])  # type: ignore[arg-type]
    assert (
        found or ""
    ).lower() == f"{NPM}\\codex.cmd".lower()  # the extensionless npm file is for Git Bash


def test_a_name_with_an_extension_is_not_given_another() -> None:
    fs = _fs(f"{NPM}\\codex.cmd", f"{NPM}\\codex.cmd.exe")
    assert winshim.find_program("codex.cmd", PATH, None, fs["is_file"]) == f"{NPM}\\codex.cmd"  # type: ignore[arg-type]


def test_a_program_in_the_current_folder_does_not_shadow_the_one_on_path() -> None:
    fs = _fs("codex.cmd", f"{NPM}\\codex.cmd")
    found = winshim.find_program("codex", PATH, None, fs["is_file"])
    assert (found or "").lower() == f"{NPM}\\codex.cmd".lower()  # type: ignore[arg-type]


def test_an_npm_shim_names_the_script_it_runs() -> None:
    assert winshim.npm_shim_script(NPM_SHIM) == "node_modules\\@openai\\codex\\bin\\codex.js"
    assert winshim.npm_shim_script("@echo off\r\nnode x.js %*\r\n") is None


def test_an_npm_shim_is_run_by_node_without_cmd_exe_whatever_the_prompt_holds() -> None:
    shim = f"{NPM}\\codex.cmd"
    fs = _fs(shim, "C:\\Program Files\\nodejs\\node.exe", texts={shim: NPM_SHIM})
    prompt = 'fix "it" & del /q * | 100% ^done'
    argv = winshim.command_for(["codex", "exec", prompt], path=PATH, pathext=None, **fs)  # type: ignore[arg-type]
    assert [a.lower() for a in argv[:2]] == [
        "c:\\program files\\nodejs\\node.exe",
        f"{NPM}\\node_modules\\@openai\\codex\\bin\\codex.js".lower(),
    ]
    assert argv[2:] == ["exec", prompt]
    assert winshim.split_command_line(subprocess.list2cmdline(argv)) == argv


def test_node_beside_the_shim_is_preferred() -> None:
    shim = f"{NPM}\\codex.cmd"
    fs = _fs(
        shim, f"{NPM}\\node.exe", "C:\\Program Files\\nodejs\\node.exe", texts={shim: NPM_SHIM}
    )
    argv = winshim.command_for(["codex"], path=PATH, pathext=None, **fs)  # type: ignore[arg-type]
    assert argv[0] == f"{NPM}\\node.exe"


def test_another_batch_file_runs_through_cmd_only_with_harmless_arguments() -> None:
    bat = f"{NPM}\\tool.bat"
    fs = _fs(bat)
    argv = winshim.command_for(["tool", "a b", "c"], path=PATH, pathext=None, **fs)  # type: ignore[arg-type]
    assert argv[:4] == ["cmd.exe", "/d", "/s", "/c"]
    assert argv[4].lower() == f'"{bat} "a b" c"'.lower()
    with pytest.raises(winshim.ShimError, match=r"cmd\.exe would interpret '%&'"):
        winshim.command_for(["tool", "100%", "a&b"], path=PATH, pathext=None, **fs)  # type: ignore[arg-type]


def test_an_exe_is_run_directly_and_a_missing_program_is_a_clear_error() -> None:
    fs = _fs("C:\\Program Files\\nodejs\\node.exe")
    argv = winshim.command_for(["node", "-v"], path=PATH, pathext=None, **fs)  # type: ignore[arg-type]
    assert [a.lower() for a in argv] == ["c:\\program files\\nodejs\\node.exe", "-v"]
    with pytest.raises(winshim.ShimError, match="command not found: codex"):
        winshim.command_for(["codex"], path=PATH, pathext=None, **fs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args",
    [
        ["plain", "two words", ""],
        ['say "hi"', "tab\there"],
        ["C:\\path\\", "C:\\path with space\\", "\\\\server\\share"],
        ['back\\"slash', '\\\\"', 'a\\\\\\"b'],
        ["ünïcode ✓", "%PATH%", "^&|<>"],
    ],
)
def test_list2cmdline_round_trips_through_the_c_runtime_rules(args: list[str]) -> None:
    argv = ["prog.exe", *args]
    assert winshim.split_command_line(subprocess.list2cmdline(argv)) == argv


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('a "b c" d', ["a", "b c", "d"]),
        ('a\\\\\\"b', ['a\\"b']),  # 3 backslashes + quote: one backslash, a quote
        ('"a""b"', ['a"b']),
        ("a\\b  c", ["a\\b", "c"]),
        ('""', [""]),
    ],
)
def test_command_lines_split_as_the_c_runtime_splits_them(line: str, expected: list[str]) -> None:
    assert winshim.split_command_line(line) == expected
