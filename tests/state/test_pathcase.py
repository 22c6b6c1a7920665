"""Canonical case: on a case-insensitive file system ~/Proj and ~/proj are one workspace
with one state dir (acted out on Linux by injecting the canonicalizer)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from jobgate.state import pathcase, workspace


def _listing(tree: dict[str, list[str]]) -> Callable[[str], list[str]]:
    def listdir(path: str) -> list[str]:
        if path not in tree:
            raise FileNotFoundError(path)
        return tree[path]

    return listdir


def test_each_component_takes_the_case_its_folder_lists() -> None:
    listdir = _listing({"/": ["Users"], "/Users": ["Me"], "/Users/Me": ["Proj", "other"]})
    assert pathcase.canonical_case("/users/me/proj", listdir) == "/Users/Me/Proj"


def test_an_exact_match_wins_over_a_case_insensitive_one() -> None:
    listdir = _listing({"/": ["a"], "/a": ["proj", "Proj"]})  # a case-sensitive volume
    assert pathcase.canonical_case("/a/Proj", listdir) == "/a/Proj"
    assert pathcase.canonical_case("/a/PROJ", listdir) == "/a/PROJ"  # two: kept


def test_names_differing_only_in_unicode_normalization_are_one() -> None:
    nfd, nfc = "Cafe\u0301", "Caf\u00e9"
    listdir = _listing({"/": [nfd]})
    assert pathcase.canonical_case("/" + nfc.lower(), listdir) == "/" + nfd


def test_below_a_folder_that_cannot_be_listed_the_path_is_kept_as_given() -> None:
    listdir = _listing({"/": ["Locked"]})
    assert pathcase.canonical_case("/locked/Sub/x", listdir) == "/Locked/Sub/x"


@pytest.fixture
def folds_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """Act out a case-insensitive file system: a path resolves to the one entry that
    matches it ignoring case, as on macOS."""
    monkeypatch.setattr(workspace, "canonicalize", pathcase.canonical_case)


def test_proj_and_Proj_are_one_workspace_with_one_state_dir(
    tmp_path: Path, folds_case: None
) -> None:
    real = tmp_path / "Proj"
    (real / ".git").mkdir(parents=True)
    (real / "src").mkdir()
    lower = str(tmp_path / "proj")
    assert not os.path.exists(lower)  # this file system is case-sensitive
    root, state = workspace.state_dir_for(lower)
    assert root == str(real)
    assert (root, state) == workspace.state_dir_for(str(real))
    assert workspace.state_dir_for(str(tmp_path / "PROJ" / "SRC")) == (root, state)
    assert os.path.basename(state).startswith("Proj-")


def test_without_case_folding_the_names_are_taken_as_given(tmp_path: Path) -> None:
    (tmp_path / "Proj").mkdir()
    assert workspace.canonicalize("/x/Proj") == (
        pathcase.canonical_case("/x/Proj") if pathcase.FOLDS_CASE else "/x/Proj"
    )
    with pytest.raises(workspace.JobgateError, match="does not exist"):
        workspace.find_workspace_root(str(tmp_path / "proj"))
