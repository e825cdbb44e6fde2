"""The TTN model against independent oracles: dense numpy contraction, the dense state,
quimb, exact SVDs; layouts and padding; canonical form; gradients against finite differences;
the structure of the compiled forward pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtn.features import get_feature_map
from qtn.models import (
    TTN,
    ClassifierParams,
    init_ttn,
    init_ttn_classifier,
    random_ttn,
    tree_layout,
    trim_padding,
    ttn_amplitudes,
    ttn_batch_amplitudes,
    ttn_canonicalize,
    ttn_classifier_forward,
    ttn_dense_amplitudes,
    ttn_entanglement_entropy,
    ttn_log_norm,
    ttn_normalize,
    ttn_to_dense,
    ttn_to_quimb,
)
from qtn.training import get_loss

# ----------------------------------------------------------------------------- layouts


def test_quadtree_layout_is_z_order_for_power_of_two_images():
    lay = tree_layout(16, (4, 4))
    # leaf p holds pixel (row, col) with p's bits interleaved x0 y0 x1 y1 (Z-order)
    expect = []
    for p in range(16):
        x = (p & 1) | ((p >> 2) & 1) << 1
        y = ((p >> 1) & 1) | ((p >> 3) & 1) << 1
        expect.append(y * 4 + x)
    assert list(lay.leaf_features) == expect
    # level 0 pairs horizontal neighbours, level 1 makes 2x2 blocks
    assert lay.leaf_features[:4] == (0, 1, 4, 5)
    assert lay.n_leaves == 16 and not lay.padded.any()


def test_padding_rule_bisects_ceil_floor():
    assert tree_layout(5).leaf_features == (0, 1, 2, -1, 3, -1, 4, -1)
    assert tree_layout(1).leaf_features == (0, -1, -1, -1)  # at least 4 leaves
    lay = tree_layout(9, (3, 3))
    assert lay.n_leaves == 16 and int((~lay.padded).sum()) == 9
    assert sorted(f for f in lay.leaf_features if f >= 0) == list(range(9))
    # 28x28 -> 32x32 leaves, each 2x2 block of the first level holds real pixels first
    lay28 = tree_layout(784, (28, 28))
    assert lay28.n_leaves == 1024 and np.array_equal(
        np.sort(lay28.feature_leaves()), np.flatnonzero(~lay28.padded)
    )
    x = np.arange(9)[None]
    np.testing.assert_array_equal(lay.from_leaf_values(lay.to_leaf_values(x)), x)
    with pytest.raises(ValueError, match=r"image_shape \(3, 4\) does not hold n_features=9"):
        tree_layout(9, (3, 4))
    with pytest.raises(ValueError, match="n_features must be an integer >= 1"):
        tree_layout(0)


# ----------------------------------------------------------------------------- forward pass


@pytest.mark.parametrize("n_leaves,d,labels", [(4, 2, None), (8, 3, 4), (16, 2, 3)])
def test_forward_matches_dense_contraction_float64(x64, n_leaves, d, labels):
    t = init_ttn(jax.random.key(1), n_leaves, 5, d, n_labels=labels, init_std=0.5,
                 dtype=jnp.float64)  # fmt: skip
    rng = np.random.default_rng(0)
    phi = get_feature_map("spin_coherent", dim=d)(rng.random((6, n_leaves)))
    fhat, logn = ttn_batch_amplitudes(t, jnp.asarray(phi))
    dense = ttn_to_dense(t)  # (d**P,) or (d**P, L)
    for b in range(6):
        ref = ttn_dense_amplitudes(t, phi[b])
        np.testing.assert_allclose(np.exp(logn[b]) * fhat[b], ref, rtol=1e-12, atol=1e-13)
        product = phi[b][0]
        for v in phi[b][1:]:
            product = np.kron(product, v)
        np.testing.assert_allclose(product @ dense, ref if labels else ref[0], rtol=1e-10)


def test_forward_agrees_with_quimb(x64):
    import quimb.tensor as qtensor

    t = random_ttn(2, 8, 3, n_labels=3)
    lay = tree_layout(6, (2, 3))  # 8 leaves, 2 of them padding
    t = trim_padding(t, lay.padded)
    rng = np.random.default_rng(1)
    x = rng.random(6)
    phi = get_feature_map("trigonometric")(x)
    f, logn = ttn_amplitudes(
        jax.tree_util.tree_map(jnp.asarray, t), jnp.asarray(lay.to_leaves(phi))
    )
    tn = ttn_to_quimb(t, lay)
    assert sorted(tn.outer_inds()) == sorted([f"k{i}" for i in range(6)] + ["label"])
    prod = qtensor.TensorNetwork([qtensor.Tensor(phi[i], inds=[f"k{i}"]) for i in range(6)])
    ref = (tn & prod).contract(output_inds=["label"]).data
    np.testing.assert_allclose(np.exp(logn) * f, ref, rtol=1e-10)
    with pytest.raises(TypeError, match="ttn must be a qtn TTN"):
        ttn_to_quimb(np.zeros(3))


def test_1024_leaves_finite_in_float32_and_agree_with_float64():
    lay = tree_layout(784, (28, 28))
    t32 = init_ttn(jax.random.key(0), 1024, 8, n_labels=10, init_std=0.3, padded=lay.padded)
    x = np.random.default_rng(0).random((2, 784))
    phi = lay.to_leaves(get_feature_map("trigonometric")(x))
    f32, l32 = ttn_batch_amplitudes(t32, jnp.asarray(phi, jnp.float32))
    assert np.all(np.isfinite(f32)) and np.all(np.abs(np.asarray(l32)) > 50)
    with jax.enable_x64(True):
        t64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), t32)
        f64, l64 = (np.asarray(a) for a in ttn_batch_amplitudes(t64, jnp.asarray(phi)))
    np.testing.assert_allclose(f32, f64, atol=2e-4)
    np.testing.assert_allclose(l32, l64, rtol=1e-4)


def test_compiled_forward_grows_by_a_constant_per_level():
    """The jaxpr has the same number of operations per level whatever the number of nodes."""

    def n_eqns(n_leaves):
        t = init_ttn(jax.random.key(0), n_leaves, 4, n_labels=3)
        phi = jnp.ones((n_leaves, 2))
        return len(jax.make_jaxpr(ttn_amplitudes)(t, phi).eqns)

    sizes = [n_eqns(2**k) for k in range(2, 8)]  # 4 .. 128 leaves
    steps = np.diff(sizes)
    assert len(set(steps.tolist())) == 1 and steps[0] < 30, sizes


def test_gradient_matches_finite_differences(x64):
    rng = np.random.default_rng(5)
    p = init_ttn_classifier(jax.random.key(3), 8, 3, 3, init_std=0.4, dtype=jnp.float64)
    p = ClassifierParams(p.network, jnp.asarray(0.3))
    phi = jnp.asarray(get_feature_map("trigonometric")(rng.random((5, 8))))
    y = jnp.asarray(rng.integers(0, 3, 5))
    loss = get_loss("cross_entropy")

    @jax.jit
    def total(params):
        fhat, logn = jax.vmap(ttn_classifier_forward, in_axes=(None, 0))(params, phi)
        return jnp.mean(loss(params, fhat, logn, y))

    grads = jax.grad(total)(p)
    eps = 1e-6
    for lvl, idx in [(0, (1, 0, 1, 2)), (1, (0, 2, 1, 0)), (2, (0, 1, 2, 1))]:
        arr = np.asarray(p.network.layers[lvl])

        def at(v, lvl=lvl, idx=idx, arr=arr):
            a = arr.copy()
            a[idx] += v
            layers = list(p.network.layers)
            layers[lvl] = jnp.asarray(a)
            return total(ClassifierParams(TTN(tuple(layers)), p.log_temp))

        fd = (at(eps) - at(-eps)) / (2 * eps)
        np.testing.assert_allclose(grads.network.layers[lvl][idx], fd, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------- norms, gauge


def _isometry_error(t):
    j, a, b, c = t.shape
    m = t.reshape(j, a * b, c)
    gram = np.einsum("jxc,jxd->jcd", m.conj(), m)
    used = np.any(np.abs(m) > 0, axis=1)
    err = 0.0
    for g, u in zip(gram, used):
        err = max(err, np.abs(g[np.ix_(u, u)] - np.eye(u.sum())).max() if u.any() else 0.0)
    return err


@pytest.mark.parametrize("complex_", [False, True])
def test_canonical_form_is_isometric_and_exact(complex_):
    rng = np.random.default_rng(3)
    shapes = [a.shape for a in random_ttn(0, 16, 5).layers]
    raw = []
    for s in shapes:
        a = rng.normal(size=s)
        raw.append(a + 1j * rng.normal(size=s) if complex_ else a)
    t = TTN(tuple(raw))
    ref = ttn_to_dense(t)
    c = ttn_canonicalize(t)
    np.testing.assert_allclose(ttn_to_dense(c), ref, atol=1e-10 * np.abs(ref).max())
    for level in c.levels()[:-1]:
        assert _isometry_error(level) < 1e-12
    np.testing.assert_allclose(np.linalg.norm(c.levels()[-1]), np.linalg.norm(ref), rtol=1e-12)
    np.testing.assert_allclose(float(ttn_log_norm(t)), np.log(np.linalg.norm(ref)), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(ttn_to_dense(ttn_normalize(t))), 1.0, rtol=1e-12)


def test_padding_takes_no_norm():
    lay = tree_layout(5)  # leaves 3, 5, 7 are padding
    t = trim_padding(random_ttn(4, 8, 4), lay.padded)
    psi = ttn_to_dense(t).reshape((2,) * 8)
    # all weight sits on padding value 0: the norm is the sum over the 5 real leaves only
    real = psi[:, :, :, 0, :, 0, :, 0]
    np.testing.assert_allclose(np.sum(real**2), np.sum(psi**2), rtol=1e-12)
    c = ttn_canonicalize(t)
    assert np.all(c.levels()[0][1, :, 1:] == 0)  # exact zeros survive the canonical form


def test_entanglement_across_tree_bonds_against_dense_svd():
    t = random_ttn(7, 8, 3)
    psi = ttn_to_dense(t).reshape((2,) * 8)
    ent = ttn_entanglement_entropy(t)
    assert [e.shape for e in ent] == [(4,), (2,)]

    def entropy(leaves):
        rest = [i for i in range(8) if i not in leaves]
        m = np.transpose(psi, leaves + rest).reshape(2 ** len(leaves), -1)
        s = np.linalg.svd(m, compute_uv=False) ** 2
        s = s[s > 1e-15] / s.sum()
        return -np.sum(s * np.log(s))

    for lvl, width in ((0, 2), (1, 4)):
        for j in range(8 // width):
            leaves = list(range(j * width, (j + 1) * width))
            np.testing.assert_allclose(ent[lvl][j], entropy(leaves), atol=1e-10)
    assert np.all(ent[0] <= np.log(3) + 1e-12)  # bounded by log(chi)


@pytest.mark.parametrize("n_leaves,chi,labels", [(8, 3, None), (16, 4, None), (8, 2, 3)])
def test_ttn_to_mps_is_exact(n_leaves, chi, labels):
    from qtn.models import to_dense, ttn_to_mps

    t = random_ttn(7, n_leaves, chi, n_labels=labels, complex=True)
    mps, discarded = ttn_to_mps(t)
    assert discarded < 1e-24 and mps.n_sites == n_leaves
    np.testing.assert_allclose(to_dense(mps), ttn_to_dense(t), atol=1e-12)
    if labels is None:
        trunc, disc = ttn_to_mps(t, max_bond=2)
        assert disc > 0 and trunc.bond_dim <= 2
    with pytest.raises(ValueError, match=r"cutoff must be a number in \[0, 1\), got -1"):
        ttn_to_mps(t, cutoff=-1)
    with pytest.raises(ValueError, match="ttn must be a qtn TTN, got list"):
        ttn_to_mps([1, 2])
