"""Shared fixtures. x64 is switched on only inside tests that ask for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _mnist_dir() -> Path | None:
    cand = os.environ.get("QTN_TEST_MNIST_DIR")
    for p in ([Path(cand)] if cand else []) + [REPO.parent / "shared" / "data" / "mnist"]:
        if (p / "train-images-idx3-ubyte.gz").is_file():
            return p
    return None


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop compiled XLA programs after each test module.

    Every compiled program maps memory, and the whole suite in one process compiles
    thousands: past the kernel's vm.max_map_count (65,530 by default) XLA's compiler
    segfaults. Clearing JAX's and qtn's caches between modules keeps the count bounded.
    """
    yield
    import gc

    import jax

    from qtn.simulation import clear_plan_cache

    clear_plan_cache()
    jax.clear_caches()
    gc.collect()


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    d = _mnist_dir()
    if d is None:
        pytest.skip(
            "MNIST files not found (set QTN_TEST_MNIST_DIR or provide ../shared/data/mnist)"
        )
    return d


@pytest.fixture
def x64():
    """Enable float64 in JAX for this test only."""
    import jax

    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", prev)


def pytest_collection_modifyitems(config, items):
    try:
        import jax

        has_gpu = any(d.platform == "gpu" for d in jax.devices())
    except Exception:  # noqa: BLE001 - no JAX backend at all means no GPU
        has_gpu = False
    if not has_gpu:
        skip = pytest.mark.skip(reason="no JAX GPU device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
