"""Gradient and sweep training: agreement, cached environments, adaptive bonds, failure modes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtn.data import downsample, load_digits, select_classes
from qtn.errors import NonFiniteError
from qtn.features import get_feature_map
from qtn.models import init_mps
from qtn.training import FitConfig, evaluate, fit_mps
from qtn.training.sweep import _left_envs, _mirror, _to_cores, sweep_epoch, sweep_init


@pytest.fixture(scope="module")
def small_problem():
    X, y = load_digits()
    X, y = select_classes(X, y, [0, 1, 2], relabel=True)
    X = downsample(X, 4).reshape(len(X), -1)
    phi = get_feature_map("trigonometric")(X).astype(np.float32)
    return jnp.asarray(phi), jnp.asarray(y)


def test_gradient_and_sweep_reach_comparable_loss(small_problem):
    phi, y = small_problem
    p0 = init_mps(jax.random.key(0), 16, 3, 6)
    init_loss, _ = evaluate(p0, phi, y, "cross_entropy")
    pg, hg, _ = fit_mps(
        p0,
        phi,
        y,
        FitConfig(
            method="gradient", loss="cross_entropy", learning_rate=1e-2, max_epochs=40, verbose=0
        ),
    )
    ps, hs, info = fit_mps(
        p0,
        phi,
        y,
        FitConfig(
            method="sweep", loss="cross_entropy", learning_rate=1e-3, max_epochs=3, verbose=0
        ),
    )
    lg, ag = evaluate(pg, phi, y, "cross_entropy")
    ls, as_ = evaluate(ps, phi, y, "cross_entropy")
    assert lg < 0.5 * init_loss and ls < 0.5 * init_loss
    assert ag > 0.95 and as_ > 0.95
    assert abs(lg - ls) < 0.25
    assert len(info["bond_ranks"]) == 15


def test_sweep_caches_consistent_environments(small_problem):
    phi, y = small_problem
    p = init_mps(jax.random.key(1), 16, 3, 4, label_site=5)
    p, state = sweep_init(p, phi, y)
    p, state, _ = sweep_epoch(
        p,
        state,
        phi,
        y,
        loss="nll",
        learning_rate=1e-3,
        cutoff=1e-10,
        local_steps=3,
        batch_size=32,
        rng=np.random.default_rng(0),
    )
    assert p.label_site == 5
    cores = _to_cores(p)
    fresh_l = _left_envs(cores, phi, 5)
    fresh_r = _left_envs(_mirror(cores), jnp.flip(phi, 1), 16 - 1 - 5)[::-1]
    for i in range(6):
        np.testing.assert_allclose(state.envs_left[i], fresh_l[i], atol=1e-5)
    for i in range(5, 16):
        np.testing.assert_allclose(state.envs_right[i], fresh_r[i], atol=1e-5)


def test_sweep_bond_dims_adapt_to_data(small_problem):
    phi, y = small_problem
    p = init_mps(jax.random.key(2), 16, 3, 16)
    _, _, info = fit_mps(
        p,
        phi,
        y,
        FitConfig(method="sweep", max_epochs=1, learning_rate=1e-3, cutoff=1e-3, verbose=0),
    )
    ranks = info["bond_ranks"]
    # the first bond can hold at most d = 2 values, the second 4: the open boundary is respected
    assert ranks[0] <= 2 and ranks[1] <= 4
    assert max(ranks) <= 16 and min(ranks) >= 1


def test_non_finite_training_raises(small_problem):
    phi, y = small_problem
    p = init_mps(jax.random.key(0), 16, 3, 4)
    bad = phi.at[0, 0, 0].set(jnp.nan)  # poisoned input reaching the jitted step
    with pytest.raises(NonFiniteError, match="non-finite values at epoch 0"):
        fit_mps(p, bad, y, FitConfig(max_epochs=2, verbose=0, batch_size=512))


def test_early_stopping_keeps_best(small_problem):
    phi, y = small_problem
    p = init_mps(jax.random.key(0), 16, 3, 4)
    _, hist, info = fit_mps(
        p, phi, y, FitConfig(max_epochs=200, early_stopping=True, n_iter_no_change=2,
                             learning_rate=5e-2, tol=1.0, verbose=0),
        phi_val=phi[:100], y_val=y[:100],
    )  # fmt: skip
    assert len(hist) < 200 and "best_epoch" in info
    assert all("val_loss" in h for h in hist)


def test_unknown_method(small_problem):
    phi, y = small_problem
    with pytest.raises(ValueError, match="valid methods"):
        fit_mps(init_mps(jax.random.key(0), 16, 3, 2), phi, y, FitConfig(method="dmrg", verbose=0))
