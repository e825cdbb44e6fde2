"""Every tutorial runs end to end at small size."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9]*.py"))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path, monkeypatch, mnist_dir_or_none):
    monkeypatch.setenv("QTN_TUTORIAL_SMALL", "1")
    monkeypatch.setenv("QTN_TUTORIAL_OUT", str(tmp_path))
    if mnist_dir_or_none is not None:
        monkeypatch.setenv("QTN_DATA_DIR", str(mnist_dir_or_none.parent))
    else:
        monkeypatch.setenv("QTN_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runpy.run_path(str(path), run_name="__main__")
    assert any(tmp_path.glob("*.png"))


@pytest.fixture
def mnist_dir_or_none():
    from conftest import _mnist_dir

    return _mnist_dir()


def test_tutorials_exist():
    assert TUTORIALS, "no tutorials found"
    assert all(os.path.getsize(p) > 0 for p in TUTORIALS)
