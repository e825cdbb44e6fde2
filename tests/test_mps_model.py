"""The MPS core against dense numpy oracles: forward pass, canonical forms, merge/split,
norms, packing, quimb; gradients against finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtn.features import get_feature_map
from qtn.models import (
    MPS,
    ClassifierParams,
    amplitudes,
    batch_amplitudes,
    bond_dims,
    canonicalize,
    classifier_forward,
    dense_amplitudes,
    from_quimb,
    init_mps,
    init_mps_classifier,
    log_norm,
    merge,
    move_center,
    normalize,
    pack,
    pad_bond_dim,
    random_mps,
    split,
    to_dense,
    to_quimb,
    trim_boundaries,
    unpack,
)
from qtn.training import get_loss


def _random_phi(rng, n_sites, d, batch=None):
    fm = get_feature_map("spin_coherent", dim=d)
    shape = (n_sites,) if batch is None else (batch, n_sites)
    return fm(rng.random(shape))


# ----------------------------------------------------------------------------- forward pass


@pytest.mark.parametrize(
    "n_sites,label_site", [(1, 0), (2, 0), (2, 1), (5, 2), (8, 0), (8, 7), (9, 3)]
)
@pytest.mark.parametrize("d", [2, 3])
def test_forward_matches_dense_einsum_float64(x64, n_sites, label_site, d):
    rng = np.random.default_rng(n_sites * 10 + label_site)
    p = init_mps(
        jax.random.key(1),
        n_sites,
        5,
        d,
        n_labels=4,
        center=label_site,
        init_std=0.5,
        dtype=jnp.float64,
    )
    phi = _random_phi(rng, n_sites, d, batch=6)
    fhat, logn = batch_amplitudes(p, jnp.asarray(phi))
    for b in range(6):
        ref = dense_amplitudes(p, phi[b])
        np.testing.assert_allclose(np.exp(logn[b]) * fhat[b], ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(fhat[b]), 1.0, atol=1e-14)


def test_forward_without_label_is_the_amplitude(x64):
    """A plain MPS's forward gives <psi|phi(x)> as sign and log-magnitude."""
    rng = np.random.default_rng(0)
    psi = random_mps(3, 6, 4)
    phi = _random_phi(rng, 6, 2)
    fhat, logn = amplitudes(
        MPS(*(jnp.asarray(a) for a in (psi.left, psi.center, psi.right))), jnp.asarray(phi)
    )
    product = phi[0]
    for v in phi[1:]:
        product = np.kron(product, v)
    ref = to_dense(psi) @ product
    assert fhat.shape == (1,)
    np.testing.assert_allclose(float(fhat[0] * np.exp(logn)), ref, rtol=1e-10)


def test_forward_float32_tolerance():
    rng = np.random.default_rng(0)
    p = init_mps(jax.random.key(2), 12, 6, n_labels=3, init_std=0.3)
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
    p32 = init_mps(jax.random.key(0), 784, 10, n_labels=10, init_std=0.05)
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
    p = init_mps(jax.random.key(0), 10, 4, n_labels=3, init_std=0.2)
    phi = jnp.asarray(_random_phi(rng, 10, 2, batch=5), jnp.float32)
    fb, lb = batch_amplitudes(p, phi)
    for b in range(5):
        f1, l1 = amplitudes(p, phi[b])
        np.testing.assert_allclose(f1, fb[b], atol=1e-6)
        np.testing.assert_allclose(l1, lb[b], atol=1e-5)


@pytest.mark.parametrize("loss", ["nll", "cross_entropy", "mse"])
def test_gradient_matches_finite_differences(x64, loss):
    rng = np.random.default_rng(5)
    p = init_mps_classifier(
        jax.random.key(3), 6, 3, 3, label_site=2, init_std=0.4, dtype=jnp.float64
    )
    p = ClassifierParams(p.network, jnp.asarray(0.7))
    phi = jnp.asarray(_random_phi(rng, 6, 2, batch=7))
    y = jnp.asarray(rng.integers(0, 3, 7))
    loss_fn = get_loss(loss)

    def total(params):
        fhat, logn = jax.vmap(classifier_forward, in_axes=(None, 0))(params, phi)
        return jnp.mean(loss_fn(params, fhat, logn, y))

    grads = jax.grad(total)(p)
    eps = 1e-6
    for field, idx in [
        ("left", (1, 0, 1, 2)),
        ("center", (0, 1, 2, 1)),
        ("right", (2, 1, 0, 0)),
        ("log_temp", ()),
    ]:

        def get(params, f=field):
            return params.log_temp if f == "log_temp" else getattr(params.network, f)

        arr = np.asarray(get(p)).copy()
        plus, minus = arr.copy(), arr.copy()
        plus[idx] += eps
        minus[idx] -= eps
        fd = (total(_replace(p, field, plus)) - total(_replace(p, field, minus))) / (2 * eps)
        np.testing.assert_allclose(np.asarray(get(grads))[idx], fd, rtol=1e-6, atol=1e-9)


def _replace(p, field, value):
    if field == "log_temp":
        return ClassifierParams(p.network, jnp.asarray(value))
    kw = {f: getattr(p.network, f) for f in ("left", "center", "right")}
    kw[field] = jnp.asarray(value)
    return ClassifierParams(MPS(**kw), p.log_temp)


# ----------------------------------------------------------------------------- canonical forms


def _isometry_error(m):
    """max |M^dagger M - I| over the nonzero columns of M."""
    used = np.any(m != 0, axis=0)
    m = m[:, used]
    return np.abs(m.conj().T @ m - np.eye(m.shape[1])).max() if m.size else 0.0


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("center", [0, 3, 6])
def test_canonical_form_is_isometric_and_exact(center, complex_):
    psi = random_mps(7, 7, 4, complex=complex_)
    ref = to_dense(psi)
    c = canonicalize(psi, center)
    assert c.center_site == center
    np.testing.assert_allclose(to_dense(c), ref, atol=1e-12)
    cores = unpack(c)
    for i, a in enumerate(cores):
        if i < center:  # left-isometric: sum_{a,s} A* A = I
            assert _isometry_error(a.reshape(-1, a.shape[-1])) < 1e-12
        elif i > center:  # right-isometric
            assert _isometry_error(a.reshape(a.shape[0], -1).T) < 1e-12
    # the norm lives in the centre
    np.testing.assert_allclose(np.linalg.norm(cores[center]), np.linalg.norm(ref), atol=1e-12)


def test_move_center_carries_the_label_and_reports_truncation(x64):
    p = init_mps(jax.random.key(4), 7, 2, n_labels=3, init_std=0.3, dtype=jnp.float64)
    ref = to_dense(p)  # (2**7, 3)
    wide = pad_bond_dim(p, 12)
    for site in (0, 2, 6):
        q, disc = move_center(wide, site)
        assert q.center_site == site and disc < 1e-14
        np.testing.assert_allclose(to_dense(q), ref, atol=1e-10)
    assert bond_dims(move_center(wide, 0)[0], tol=1e-10)[0] == 2 * 3  # d * L at the first bond
    # at the original bond dimension, moving the label through a bond must truncate
    q, disc = move_center(p, 0)
    assert disc > 1e-6 and np.abs(to_dense(q) - ref).max() > 1e-8


def test_split_is_exact_without_truncation_and_reports_discarded_weight():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 2, 4))
    b = rng.normal(size=(4, 2, 3))
    theta = merge(a, b)  # (3, 2, 2, 1, 3)
    assert theta.shape == (3, 2, 2, 1, 3)
    for move in ("right", "left"):
        na, nb, disc, rank = split(theta, move=move, max_bond=6)
        np.testing.assert_allclose(merge(na, nb), theta, atol=1e-12)
        assert disc < 1e-14 and int(rank) == 4
    s = np.linalg.svd(theta.reshape(6, 6), compute_uv=False)
    na, nb, disc, rank = split(theta, move="right", max_bond=2)
    np.testing.assert_allclose(disc, np.sum(s[2:] ** 2) / np.sum(s**2), rtol=1e-10)
    assert int(rank) == 2 and na.shape == (3, 2, 2)
    _, _, _, rank = split(theta, move="right", max_bond=6, cutoff=s[1] / s[0] * 1.0001)
    assert int(rank) == 1
    # JAX: the same, under jit
    ja, jb, jd, jr = jax.jit(lambda t: split(t, move="right", max_bond=2))(jnp.asarray(theta))
    np.testing.assert_allclose(np.asarray(merge(ja, jb)), merge(na, nb), atol=1e-5)
    with pytest.raises(ValueError, match="move must be 'right' or 'left'"):
        split(theta, move="up", max_bond=2)


# ----------------------------------------------------------------------------- norms, packing


def test_log_norm_and_normalize(x64):
    p = init_mps(jax.random.key(5), 9, 3, n_labels=2, init_std=0.5, dtype=jnp.float64)
    np.testing.assert_allclose(float(log_norm(p)), np.log(np.linalg.norm(to_dense(p))), rtol=1e-12)
    np.testing.assert_allclose(float(jnp.exp(log_norm(normalize(p)))), 1.0, atol=1e-12)
    psi = random_mps(0, 8, 4, complex=True)  # numpy in, numpy out
    assert isinstance(log_norm(psi), np.floating | float)
    np.testing.assert_allclose(log_norm(psi), 0.0, atol=1e-12)
    # 1,000 sites: finite in float32 although the norm is far outside its range
    big = init_mps(jax.random.key(1), 1000, 4, init_std=0.3)
    assert np.isfinite(float(log_norm(big))) and abs(float(log_norm(big))) > 100


def test_pack_unpack_round_trip():
    psi = random_mps(2, 6, 3)
    cores = unpack(psi)
    assert [c.shape for c in cores] == [
        (1, 2, 2),
        (2, 2, 3),
        (3, 2, 3),
        (3, 2, 3),
        (3, 2, 2),
        (2, 2, 1),
    ]
    back = pack(cores, center=4, bond_dim=5)
    assert back.bond_dim == 5 and back.center_site == 4
    np.testing.assert_allclose(to_dense(back), to_dense(psi), atol=1e-14)
    assert [c.shape for c in psi.to_cores()] == [c.shape for c in cores]
    with pytest.raises(ValueError, match="smaller than the largest bond"):
        pack(cores, bond_dim=2)
    with pytest.raises(ValueError, match="bond 0-1"):
        pack([cores[0], cores[2]])
    labelled = init_mps(jax.random.key(0), 4, 2, n_labels=3)
    with pytest.raises(ValueError, match="has a label leg"):
        labelled.to_cores()
    assert labelled.select_label(1).to_cores()[0].shape[0] == 1


def test_trim_boundaries_numpy_and_jax():
    p = init_mps(jax.random.key(0), 4, 3, init_std=0.5)
    for cores in (p.cores(), [np.asarray(c) for c in p.cores()]):
        t = trim_boundaries(cores)
        assert not np.any(np.asarray(t[0])[1:]) and not np.any(np.asarray(t[-1])[..., 1:])


def test_quimb_round_trip_plain_and_labelled(x64):
    psi = random_mps(4, 6, 3, complex=True)
    q = to_quimb(psi)
    np.testing.assert_allclose(q.to_dense().ravel(), to_dense(psi), atol=1e-12)
    back = from_quimb(q)
    assert back.n_labels is None
    np.testing.assert_allclose(to_dense(MPS.from_quimb(psi.to_quimb())), to_dense(psi), atol=1e-12)
    np.testing.assert_allclose(to_dense(back), to_dense(psi), atol=1e-12)
    p = init_mps(jax.random.key(2), 5, 3, n_labels=4, center=2, init_std=0.4, dtype=jnp.float64)
    back = from_quimb(to_quimb(p))
    assert back.n_labels == 4 and back.center_site == 2
    np.testing.assert_allclose(to_dense(back), to_dense(p), atol=1e-12)
    per_class = to_quimb(p, per_class=True)
    assert len(per_class) == 4
    np.testing.assert_allclose(per_class[1].to_dense().ravel(), to_dense(p)[:, 1], atol=1e-12)


# ----------------------------------------------------------------------------- validation


def test_init_and_params_validation():
    with pytest.raises(ValueError, match="bond_dim must be an integer >= 1"):
        init_mps(jax.random.key(0), 4, 0)
    with pytest.raises(ValueError, match="n_labels must be an integer >= 2"):
        init_mps(jax.random.key(0), 4, 3, n_labels=1)
    with pytest.raises(ValueError, match="center must be an integer in"):
        init_mps(jax.random.key(0), 4, 3, center=4)
    p = init_mps(jax.random.key(0), 4, 3, n_labels=2)
    with pytest.raises(ValueError, match="inconsistent core shapes"):
        MPS(p.left, p.center[:2, :, :, :2], p.right)
    assert (p.n_sites, p.center_site, p.bond_dim, p.phys_dim, p.n_labels) == (4, 2, 3, 2, 2)


def test_params_are_pytrees_for_optax():
    import optax

    p = init_mps_classifier(jax.random.key(0), 5, 3, 2)
    norms = jax.tree.map(jnp.sum, p)  # leaves become scalars: must not trip validation
    assert float(norms.log_temp) == 0.0
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    state = opt.init(p)
    grads = jax.tree.map(jnp.ones_like, p)
    upd, _ = opt.update(grads, state, p)
    assert upd.network.left.shape == p.network.left.shape
