"""The fast paths of ``status`` and ``run`` make exactly the namespace argparse makes of
the same words, and hand every other form to argparse (which owns the errors)."""

from __future__ import annotations

import contextlib
import io
import random
import subprocess
import sys

import pytest

from conftest import Env, native_only
from jobgate.cli.fastargs import RUN_DEFAULTS, fast_run_args, fast_status_args
from jobgate.cli.main import build_parser
from jobgate.state.errors import JobgateError

#: words a run's command line is made of, the awkward ones among them
RUN_WORDS = [
    "run", "--", "-b", "--background", "--json", "--name", "--name=", "--name=-x", "--session",
    "--session=s", "--cwd", "--cwd=/d", "--kind", "job", "--queue", "--back", "-bq", "--json=1",
    "x", "-x", "-1", "", "a b", "--help", "status", "\udcff",
]  # fmt: skip


def _argparse(argv: list[str], subcommand: str) -> dict[str, object] | None:
    """What argparse makes of ``argv``: its namespace, or None if it refuses it."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ns, extra = build_parser(subcommand).parse_known_args(argv)
    except (JobgateError, SystemExit):
        return None
    return None if extra else vars(ns)


def test_runs_default_options_are_the_real_parsers_defaults() -> None:
    ns = _argparse(["run", "--", "true"], "run")
    assert ns is not None
    assert {k: v for k, v in ns.items() if k not in ("command", "handler")} == RUN_DEFAULTS


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--background", "--", "true"],
        ["run", "-b", "--json", "--name", "tests", "--", "pytest", "-q"],
        ["--cwd", "/d", "run", "--session=s1", "-b", "--name=", "--", "sh", "-c", "x --json"],
        ["--cwd=/a", "run", "--cwd", "/b", "--", "--", "x"],
    ],
)
def test_the_forms_agents_use_are_parsed_fast_exactly_as_argparse_parses_them(
    argv: list[str],
) -> None:
    fast = fast_run_args(argv)
    assert fast is not None
    assert vars(fast) == _argparse(argv, "run")


def test_any_run_line_parsed_fast_is_parsed_the_same_by_argparse() -> None:
    rng = random.Random(15)
    fast_ones = 0
    for _ in range(3000):
        argv = [rng.choice(RUN_WORDS) for _ in range(rng.randint(0, 7))]
        if rng.random() < 0.7:
            argv.insert(rng.randint(0, min(2, len(argv))), "run")
        if rng.random() < 0.5:
            argv += ["--", rng.choice(RUN_WORDS)]
        fast = fast_run_args(argv)
        if fast is not None:
            fast_ones += 1
            assert vars(fast) == _argparse(argv, "run"), argv
    assert fast_ones > 50  # the generator does reach the fast path


def test_any_status_line_parsed_fast_is_parsed_the_same_by_argparse() -> None:
    words = ["status", "--json", "--all", "--cwd", "/d", "--cwd=/e", "run-1", "-x", "--watch"]
    rng = random.Random(15)
    fast_ones = 0
    for _ in range(2000):
        argv = [rng.choice(words) for _ in range(rng.randint(0, 5))]
        fast = fast_status_args(argv)
        if fast is not None:
            fast_ones += 1
            expected = _argparse(argv, "status")
            assert expected is not None, argv
            # the handler differs on purpose: argparse's also serves --watch
            parsed = {k: v for k, v in vars(fast).items() if k != "handler"}
            assert {k: expected[k] for k in parsed} == parsed, argv
            assert expected["watch"] is False, argv
    assert fast_ones > 50


def _launch_reporting(jg: Env, report: str) -> str:
    """``run --background -- true`` run by ``jobgate.cli.main`` in a fresh interpreter;
    the last stderr line: its exit code, then the Python expression ``report`` (what it
    imported)."""
    code = (
        "import sys; from jobgate.cli.main import main; code = main(sys.argv[1:]); "
        f"print(code, {report}, file=sys.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "run", "--background", "--json", "--", "true"],
        cwd=jg.workspace,
        env=jg.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stderr.splitlines()[-1] if out.stderr else ""


def test_a_background_run_does_not_import_argparse(jg: Env) -> None:
    last = _launch_reporting(jg, "'argparse' in sys.modules")
    assert last.split()[-2:] == ["0", "False"], last


@native_only("the Linux launch path, which imports no psutil (psutil imports re and enum)")
def test_a_background_run_imports_neither_contextlib_re_nor_enum(jg: Env) -> None:
    # what jobgate itself imports for a launch; the console script that installers write
    # imports re before jobgate runs (scripts/jobgate-hook says more)
    last = _launch_reporting(
        jg, "sorted({'argparse', 'contextlib', 're', 'enum'} & set(sys.modules))"
    )
    assert last == "0 []", last
