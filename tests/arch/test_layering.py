"""The house rules, read from the source with ``ast``: which package may import which,
no import cycles, no module past its size. Every import counts, also those inside
functions and under ``TYPE_CHECKING``: a lazy import is still an arrow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "jobgate"

#: package -> the jobgate packages it may import (besides itself)
MAY_IMPORT: dict[str, set[str]] = {
    "state": set(),
    "proc": {"state"},
    "jobs": {"state", "proc"},
    "agents": {"jobs", "proc", "state"},
    "claude": {"jobs", "proc", "state"},
    "codex": {"proc", "state"},
    "cli": {"state", "proc", "jobs", "agents", "claude", "codex"},
}
#: top-level modules and what they may import
#: (the console script in __init__ sends `jobgate hook` straight to the hook shell)
TOP_LEVEL: dict[str, set[str]] = {"__init__": {"cli", "claude", "state"}, "__main__": set()}

#: modules allowed past MAX_LINES, each with its reason
LONG_MODULES: dict[str, str] = {}
MAX_LINES = 400


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 2:
        parts.pop()
    return ".".join(parts)


def jobgate_imports(name: str, source: str) -> set[str]:
    """Every jobgate module the module ``name`` imports (``from jobgate.x import y``
    counts as ``jobgate.x.y`` when that is a module, else ``jobgate.x``)."""
    tree = ast.parse(source, name)
    here = name.split(".")
    if MODULES[name].name != "__init__.py":
        here = here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "jobgate")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join([*here[: len(here) - node.level + 1], node.module or ""])
            else:
                base = node.module or ""
            base = base.strip(".")
            if base.split(".")[0] != "jobgate":
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TEXTS = {name: path.read_text(encoding="utf-8") for name, path in MODULES.items()}


def owner(module: str) -> str:
    """The package a module belongs to (``jobgate.jobs.launch`` -> ``jobs``), or the
    top-level module's own name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def forbidden_imports(texts: dict[str, str] = TEXTS) -> list[str]:
    problems = []
    for name, source in texts.items():
        mine = owner(name)
        allowed = MAY_IMPORT.get(mine) or TOP_LEVEL.get(name.split(".")[-1], set())
        if mine not in MAY_IMPORT and mine not in {"__init__", "__main__"}:
            problems.append(f"{name}: jobgate.{mine} is not in the layering table")
            continue
        for target in sorted(jobgate_imports(name, source)):
            theirs = owner(target)
            if target == "jobgate" or theirs == mine or theirs in allowed:
                continue
            problems.append(f"{name} imports {target}: jobgate.{mine} may not import {theirs}")
    return problems


def import_cycles(texts: dict[str, str] = TEXTS) -> list[list[str]]:
    # The top-level package (named ``jobgate.__init__`` here) is imported first by every
    # ``import jobgate.x`` anyway, so an edge back to it (``from jobgate import
    # __version__``) is no cycle; its own imports of the packages are lazy, in ``main``.
    graph = {name: jobgate_imports(name, src) & MODULES.keys() for name, src in texts.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return cycles


def test_every_package_imports_only_the_packages_below_it() -> None:
    assert forbidden_imports() == []


def test_no_module_imports_itself_round_a_cycle() -> None:
    assert import_cycles() == []


def test_no_module_is_over_400_lines_without_a_stated_reason() -> None:
    long = {
        name: n
        for name, source in TEXTS.items()
        if (n := len(source.splitlines())) > MAX_LINES and name not in LONG_MODULES
    }
    assert long == {}


def test_every_package_says_what_it_owns_and_may_import() -> None:
    for package in MAY_IMPORT:
        init = PACKAGE / package / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"jobgate.{package} has no docstring"
        assert "import" in doc, f"jobgate.{package}'s docstring does not say what it may import"


@pytest.mark.parametrize(
    "source",
    [
        "from jobgate.cli import render\n",
        "def f() -> None:\n    from jobgate.jobs import claims\n",
        "import jobgate.claude.hooks\n",
    ],
)
def test_the_check_catches_a_forbidden_import_even_a_lazy_one(source: str) -> None:
    texts = dict(TEXTS)
    texts["jobgate.proc.tree"] += "\n" + source
    found = [line for line in forbidden_imports(texts) if line.startswith("jobgate.proc.tree")]
    assert len(found) == 1 and "jobgate.proc may not import" in found[0]


def test_the_check_catches_a_cycle_made_by_a_lazy_import() -> None:
    texts = dict(TEXTS)
    texts["jobgate.state.model"] += "\ndef f() -> None:\n    from jobgate.state import store\n"
    assert any("jobgate.state.model" in cycle for cycle in import_cycles(texts))
