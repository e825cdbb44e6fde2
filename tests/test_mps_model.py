"""The MPS forward pass against a dense numpy oracle, gradients against finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtn.features import get_feature_map
from qtn.models import (
    MPSParams,
    amplitudes,
    batch_amplitudes,
    bond_dims,
    dense_amplitudes,
    init_mps,
    move_label,
    pad_bond_dim,
)
from qtn.training.losses import get_loss


def _random_phi(rng, n_sites, d, batch=None):
    fm = get_feature_map("spin_coherent", dim=d)
    shape = (n_sites,) if batch is None else (batch, n_sites)
    return fm(rng.random(shape))


@pytest.mark.parametrize(
    "n_sites,label_site", [(1, 0), (2, 0), (2, 1), (5, 2), (8, 0), (8, 7), (9, 3)]
)
@pytest.mark.parametrize("d", [2, 3])
def test_forward_matches_dense_einsum_float64(x64, n_sites, label_site, d):
    rng = np.random.default_rng(n_sites * 10 + label_site)
    p = init_mps(
        jax.random.key(1), n_sites, 4, 5, d, label_site=label_site, init_std=0.5, dtype=jnp.float64
    )
    phi = _random_phi(rng, n_sites, d, batch=6)
    fhat, logn = batch_amplitudes(p, jnp.asarray(phi))
    for b in range(6):
        ref = dense_amplitudes(p, phi[b])
        np.testing.assert_allclose(np.exp(logn[b]) * fhat[b], ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(fhat[b]), 1.0, atol=1e-14)


def test_forward_float32_tolerance():
    rng = np.random.default_rng(0)
    p = init_mps(jax.random.key(2), 12, 3, 6, init_std=0.3)
    phi = _random_phi(rng, 12, 2, batch=4).astype(np.float32)
    fhat, logn = batch_amplitudes(p, jnp.asarray(phi))
    for b in range(4):
        ref = dense_amplitudes(p, phi[b].astype(np.float64))
        np.testing.assert_allclose(np.exp(logn[b]) * fhat[b], ref, rtol=2e-5, atol=1e-6)


def test_784_sites_finite_float32_and_float64_agree():
    rng = np.random.default_rng(0)
    x = rng.random((3, 784))
    x[:, :200] = 0.0  # MNIST-like background
    phi = get_feature_map("trigonometric")(x)
    p32 = init_mps(jax.random.key(0), 784, 10, 10, init_std=0.05)
    f32, l32 = batch_amplitudes(p32, jnp.asarray(phi, jnp.float32))
    assert np.all(np.isfinite(f32)) and np.all(np.isfinite(l32))
    # the raw amplitudes are far outside float32's range; the log-norm carries them
    assert np.all(np.abs(np.asarray(l32)) > 50)
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), p32)
        f64, l64 = batch_amplitudes(p64, jnp.asarray(phi, jnp.float64))
        f64, l64 = np.asarray(f64), np.asarray(l64)
    np.testing.assert_allclose(f32, f64, atol=2e-4)
    np.testing.assert_allclose(l32, l64, rtol=1e-4)


def test_single_sample_vmapped_consistency():
    rng = np.random.default_rng(3)
    p = init_mps(jax.random.key(0), 10, 3, 4, init_std=0.2)
    phi = jnp.asarray(_random_phi(rng, 10, 2, batch=5), jnp.float32)
    fb, lb = batch_amplitudes(p, phi)
    for b in range(5):
        f1, l1 = amplitudes(p, phi[b])
        np.testing.assert_allclose(f1, fb[b], atol=1e-6)
        np.testing.assert_allclose(l1, lb[b], atol=1e-5)


@pytest.mark.parametrize("loss", ["nll", "cross_entropy", "mse"])
def test_gradient_matches_finite_differences(x64, loss):
    rng = np.random.default_rng(5)
    p = init_mps(jax.random.key(3), 6, 3, 3, label_site=2, init_std=0.4, dtype=jnp.float64)
    p = MPSParams(p.left, p.label, p.right, jnp.asarray(0.7))
    phi = jnp.asarray(_random_phi(rng, 6, 2, batch=7))
    y = jnp.asarray(rng.integers(0, 3, 7))
    loss_fn = get_loss(loss)

    def total(params):
        fhat, _ = batch_amplitudes(params, phi)
        return jnp.mean(loss_fn(params, fhat, y))

    grads = jax.grad(total)(p)
    eps = 1e-6
    for field, idx in [
        ("left", (1, 0, 1, 2)),
        ("label", (0, 1, 2, 1)),
        ("right", (2, 1, 0, 0)),
        ("log_temp", ()),
    ]:
        arr = np.asarray(getattr(p, field)).copy()
        plus, minus = arr.copy(), arr.copy()
        plus[idx] += eps
        minus[idx] -= eps
        fd = (total(_replace(p, field, plus)) - total(_replace(p, field, minus))) / (2 * eps)
        np.testing.assert_allclose(np.asarray(getattr(grads, field))[idx], fd, rtol=1e-6, atol=1e-9)


def _replace(p, field, value):
    kw = {f: getattr(p, f) for f in ("left", "label", "right", "log_temp")}
    kw[field] = jnp.asarray(value)
    return MPSParams(**kw)


def test_move_label_is_exact_when_rank_fits(x64):
    rng = np.random.default_rng(0)
    small = init_mps(jax.random.key(4), 7, 3, 2, init_std=0.3, dtype=jnp.float64)
    p = pad_bond_dim(small, 12)
    phi = _random_phi(rng, 7, 2)
    ref = dense_amplitudes(p, phi)
    for site in (0, 2, 6):
        q = move_label(p, site)
        assert q.label_site == site
        np.testing.assert_allclose(dense_amplitudes(q, phi), ref, rtol=1e-10)
    assert bond_dims(move_label(p, 0), tol=1e-10)[0] == 2 * 3  # d * L at the first bond


def test_init_and_params_validation():
    with pytest.raises(ValueError, match="bond_dim must be an integer >= 1"):
        init_mps(jax.random.key(0), 4, 2, 0)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        init_mps(jax.random.key(0), 4, 1, 3)
    with pytest.raises(ValueError, match="label_site must be in"):
        init_mps(jax.random.key(0), 4, 2, 3, label_site=4)
    p = init_mps(jax.random.key(0), 4, 2, 3)
    with pytest.raises(ValueError, match="inconsistent core shapes"):
        MPSParams(p.left, p.label[:2, :, :, :2], p.right, p.log_temp)
    assert (p.n_sites, p.label_site, p.bond_dim, p.phys_dim, p.n_classes) == (4, 2, 3, 2, 2)


def test_params_are_a_pytree_for_optax():
    import optax

    p = init_mps(jax.random.key(0), 5, 3, 2)
    norms = jax.tree.map(jnp.sum, p)  # leaves become scalars: must not trip validation
    assert float(norms.log_temp) == 0.0
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    state = opt.init(p)
    grads = jax.tree.map(jnp.ones_like, p)
    upd, _ = opt.update(grads, state, p)
    assert upd.left.shape == p.left.shape
