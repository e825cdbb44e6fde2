"""Every tutorial runs end to end at small size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9]*.py"))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path, mnist_dir_or_none):
    """Each tutorial runs as a user runs it: a script in a fresh interpreter (its JAX
    programs do not pile up in the test process)."""
    env = dict(os.environ)
    env.update(
        QTN_TUTORIAL_SMALL="1",
        QTN_TUTORIAL_OUT=str(tmp_path),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        MPLBACKEND="Agg",
        QTN_DATA_DIR=str(
            mnist_dir_or_none.parent if mnist_dir_or_none is not None else tmp_path / "no-data"
        ),  # fmt: skip
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(path)], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"{path.name} exited with {proc.returncode}:\n{proc.stderr[-4000:]}"
    )
    assert any(tmp_path.glob("*.png"))


@pytest.fixture
def mnist_dir_or_none():
    from conftest import _mnist_dir

    return _mnist_dir()


def test_tutorials_exist():
    assert TUTORIALS, "no tutorials found"
    assert all(os.path.getsize(p) > 0 for p in TUTORIALS)
