"""The command line builds only the parser of the subcommand it was asked for (building
all of them was ~60 ms of every command), and the table that says which extension module
registers which subcommand stays true."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

from conftest import Env
from jobgate.cli.args import command_word
from jobgate.cli.main import BUILT_IN, EXTENSIONS, build_parser


def test_each_extension_module_registers_exactly_the_subcommands_it_is_listed_with() -> None:
    for module_name, names in EXTENSIONS.items():
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(module_name).add_parser(sub)
        assert tuple(sub.choices) == names, module_name


def test_the_whole_parser_has_every_listed_subcommand_once() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    listed = [*BUILT_IN, *(n for names in EXTENSIONS.values() for n in names)]
    assert sorted(sub.choices) == sorted(listed) and len(set(listed)) == len(listed)


def test_the_subcommand_word_skips_the_global_cwd_and_leaves_the_rest_to_the_full_parser() -> None:
    known = {"run", "status"}
    assert command_word(["--cwd", "/x", "run", "--", "status"], known) == "run"
    assert command_word(["--cwd=/x", "status"], known) == "status"
    assert command_word(["--help"], known) is None
    assert command_word(["statu"], known) is None
    assert command_word([], known) is None


def test_a_command_imports_no_other_subcommands_module(jg: Env) -> None:
    probe = (
        "import sys, json\n"
        "from jobgate.cli.main import main\n"
        "code = main(['config', 'get', '--json'])\n"
        "sys.stdout.flush()\n"
        "mods = sorted(m for m in sys.modules if m.startswith('jobgate.cli.'))\n"
        "print(json.dumps({'code': code, 'mods': mods}), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        env=jg.env,
        cwd=jg.workspace,
        capture_output=True,
        text=True,
        timeout=60,
    )
    seen = json.loads(proc.stderr.strip().splitlines()[-1])
    assert seen["code"] == 0
    extensions = {m for m in EXTENSIONS if m.startswith("jobgate.cli.")}
    assert extensions.isdisjoint(seen["mods"]), seen["mods"]


def test_a_typo_still_gets_the_full_list_of_commands(jg: Env) -> None:
    proc = jg.cli("statu")
    assert proc.returncode == 2
    assert "invalid choice: 'statu'" in proc.stderr and "'restart'" in proc.stderr
