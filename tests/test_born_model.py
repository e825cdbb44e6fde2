"""Born machines on MPS and TTN against exact enumeration: normalisation, marginals,
exact samplers (chi-square tests), conditional samplers, NLL gradients against finite
differences, the canonical two-site sweep, and the 3x3 bars-and-stripes optimum."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import chisquare

from qtn.data import bars_and_stripes
from qtn.models import (
    MPS,
    TTN,
    assignment_weights,
    born_forward,
    init_mps,
    mps_log_marginal,
    mps_sample,
    random_mps,
    random_ttn,
    right_canonicalize,
    to_dense,
    tree_layout,
    trim_padding,
    ttn_born_forward,
    ttn_log_marginal,
    ttn_sample,
    ttn_to_dense,
    unpack,
)
from qtn.training import FitConfig, fit

#: significance of every sampling test: a correct sampler fails one with probability 1e-3
ALPHA = 1e-3


def _all_inputs(n, d):
    x = np.array(list(itertools.product(range(d), repeat=n)))
    return x, jax.nn.one_hot(jnp.asarray(x), d, dtype=jnp.float64)


def _index(x, d):
    return (x * d ** np.arange(x.shape[1])[::-1]).sum(1)


def _chi2_pvalue(samples, probs, d):
    """Chi-square goodness of fit; outcomes with expected count < 5 are pooled into one bin."""
    counts = np.bincount(_index(samples, d), minlength=len(probs))
    expected = probs * len(samples)
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return chisquare(obs, exp * obs.sum() / exp.sum()).pvalue


def _to_jax(tree):
    return jax.tree_util.tree_map(jnp.asarray, tree)


# ----------------------------------------------------------------------------- normalisation


def test_mps_probabilities_sum_to_one_by_enumeration(x64):
    psi = init_mps(jax.random.key(0), 12, 5, init_std=0.7, dtype=jnp.float64)  # not normalised
    x, phi = _all_inputs(12, 2)
    _, lp = jax.jit(jax.vmap(born_forward, in_axes=(None, 0)))(psi, phi)
    np.testing.assert_allclose(np.exp(2 * np.asarray(lp)).sum(), 1.0, rtol=1e-10)
    dense = to_dense(psi) ** 2
    np.testing.assert_allclose(np.exp(2 * np.asarray(lp)), dense / dense.sum(), atol=1e-13)


def test_mps_d3_and_ttn_probabilities_sum_to_one(x64):
    psi = _to_jax(random_mps(1, 7, 4, phys_dim=3))
    _, phi = _all_inputs(7, 3)
    _, lp = jax.jit(jax.vmap(born_forward, in_axes=(None, 0)))(psi, phi)
    np.testing.assert_allclose(np.exp(2 * np.asarray(lp)).sum(), 1.0, rtol=1e-10)
    # a tree over 12 features: 16 leaves, 4 of them padding (fixed to 0)
    lay = tree_layout(12, (3, 4))
    rng = np.random.default_rng(2)
    raw = TTN(tuple(rng.normal(size=a.shape) for a in random_ttn(0, 16, 6).layers))
    t = _to_jax(trim_padding(raw, lay.padded))
    x, phi = _all_inputs(12, 2)
    _, lp = jax.jit(jax.vmap(ttn_born_forward, in_axes=(None, 0)))(t, lay.to_leaves(phi))
    np.testing.assert_allclose(np.exp(2 * np.asarray(lp)).sum(), 1.0, rtol=1e-10)


# ----------------------------------------------------------------------------- marginals


def test_marginals_against_dense(x64):
    psi = random_mps(3, 6, 3)
    p = (to_dense(psi) ** 2).reshape((2,) * 6)
    vals = np.array([[-1, 1, -1, -1, 0, -1], [1, -1, -1, -1, -1, 1], [-1] * 6])
    got = np.exp(mps_log_marginal(psi, assignment_weights(vals, 2)))
    np.testing.assert_allclose(got, [p[:, 1, :, :, 0].sum(), p[1, ..., 1].sum(), 1.0], rtol=1e-10)
    t = random_ttn(4, 8, 3)
    pt = (ttn_to_dense(t) ** 2).reshape((2,) * 8)
    vals = np.array([[0, -1, -1, 1, -1, -1, -1, 0]])
    got = np.exp(ttn_log_marginal(t, assignment_weights(vals, 2)))
    np.testing.assert_allclose(got, [pt[0, :, :, 1, ..., 0].sum()], rtol=1e-10)


# ----------------------------------------------------------------------------- sampling


def test_mps_samples_follow_p(x64):
    psi = random_mps(5, 8, 3)
    p = to_dense(psi) ** 2
    x = mps_sample(psi, 20000, 0)
    assert x.shape == (20000, 8) and x.min() >= 0 and x.max() <= 1
    assert _chi2_pvalue(x, p, 2) > ALPHA
    np.testing.assert_array_equal(mps_sample(psi, 50, 3), mps_sample(psi, 50, 3))  # seeded


def test_ttn_samples_follow_p_in_any_gauge(x64):
    rng = np.random.default_rng(6)
    t = TTN(tuple(rng.normal(size=a.shape) for a in random_ttn(0, 8, 3).layers))  # not canonical
    p = ttn_to_dense(t) ** 2
    p = p / p.sum()
    x = ttn_sample(t, 20000, 1)
    assert _chi2_pvalue(x, p, 2) > ALPHA


@pytest.mark.parametrize("kind", ["mps", "ttn"])
def test_conditional_samples_follow_the_exact_conditional(x64, kind):
    if kind == "mps":
        psi = random_mps(7, 8, 3)
        p = to_dense(psi) ** 2
    else:
        psi = random_ttn(8, 8, 3)
        p = ttn_to_dense(psi) ** 2
    x_all, _ = _all_inputs(8, 2)
    # fixed sites before, between and after the free ones; two different conditions
    given = -np.ones((12000, 8), int)
    given[:6000, [1, 4, 6]] = [1, 0, 1]
    given[6000:, [0, 7]] = [0, 0]
    sample = mps_sample if kind == "mps" else ttn_sample
    x = sample(psi, None, 2, given=given)
    for rows, sites, vals in ((slice(0, 6000), [1, 4, 6], [1, 0, 1]),
                              (slice(6000, None), [0, 7], [0, 0])):  # fmt: skip
        xs = x[rows]
        assert np.all(xs[:, sites] == vals)
        mask = np.all(x_all[:, sites] == vals, axis=1)
        cond = np.where(mask, p, 0) / p[mask].sum()
        assert _chi2_pvalue(xs, cond, 2) > ALPHA


def test_conditional_sampling_chunks_and_zero_probability(x64, monkeypatch):
    from qtn.models import sampling

    psi = random_mps(9, 6, 2)
    given = -np.ones((40, 6), int)
    given[:, 2] = 1
    whole = mps_sample(psi, None, 5, given=given)
    monkeypatch.setattr(sampling, "SAMPLING_MEMORY", 6 * 2 * 2 * 8 * 2 * 8)  # 8 rows per chunk
    chunked = mps_sample(psi, None, 5, given=given)
    assert chunked.shape == whole.shape and np.all(chunked[:, 2] == 1)
    # a product state |0...0>: any fixed 1 has probability zero
    zero = MPS.from_cores([np.array([[[1.0], [0.0]]])] * 4, 0)
    with pytest.raises(ValueError, match="given row 0 have probability zero"):
        mps_sample(zero, None, 0, given=np.array([[1, -1, -1, -1]]))


def test_right_canonicalize_is_exact_and_isometric(x64):
    psi = init_mps(jax.random.key(2), 9, 4, init_std=0.6, dtype=jnp.float64)
    ref = to_dense(psi)
    c = right_canonicalize(psi)
    assert c.center_site == 0
    np.testing.assert_allclose(to_dense(c), ref / np.linalg.norm(ref), atol=1e-13)
    for a in unpack(c)[1:]:
        m = a.reshape(a.shape[0], -1)
        np.testing.assert_allclose(m @ m.T, np.eye(len(m)), atol=1e-13)


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("kind", ["mps", "ttn"])
def test_nll_gradients_match_finite_differences(x64, kind):
    rng = np.random.default_rng(11)
    x = rng.integers(0, 2, size=(6, 8))
    phi = jax.nn.one_hot(jnp.asarray(x), 2, dtype=jnp.float64)
    if kind == "mps":
        params = init_mps(jax.random.key(1), 8, 3, init_std=0.5, dtype=jnp.float64)
        forward = born_forward
    else:
        params = _to_jax(random_ttn(3, 8, 3))
        forward = ttn_born_forward

    @jax.jit
    def nll(p):
        return -2 * jnp.mean(jax.vmap(forward, in_axes=(None, 0))(p, phi)[1])

    grads = jax.grad(nll)(params)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    gleaves = jax.tree_util.tree_leaves(grads)
    eps = 1e-6
    for i, leaf in enumerate(leaves):
        arr = np.asarray(leaf)
        idx = tuple(int(v) for v in np.unravel_index(np.argmax(np.abs(arr)), arr.shape))
        plus, minus = arr.copy(), arr.copy()
        plus[idx] += eps
        minus[idx] -= eps

        def at(a, i=i):
            new = list(leaves)
            new[i] = jnp.asarray(a)
            return float(nll(jax.tree_util.tree_unflatten(treedef, new)))

        fd = (at(plus) - at(minus)) / (2 * eps)
        np.testing.assert_allclose(np.asarray(gleaves[i])[idx], fd, rtol=1e-6, atol=1e-9)


def test_born_sweep_reaches_the_bas_optimum_and_stays_canonical():
    X = bars_and_stripes(3, 3, flatten=True)
    phi = jax.nn.one_hot(jnp.asarray(X), 2)
    p0 = init_mps(jax.random.key(0), 9, 16)
    cfg = FitConfig(method="born_sweep", loss="unsupervised_nll", max_epochs=3)
    params, hist, info = fit(born_forward, p0, phi, None, cfg)
    assert hist[-1]["loss"] - np.log(14) < 0.01
    # the reported loss is the exact NLL of the returned, truncated state (dense oracle)
    dense = to_dense(MPS(*(np.asarray(a, np.float64) for a in (params.left, params.center,
                                                                 params.right))))  # fmt: skip
    prob = dense**2 / np.sum(dense**2)
    exact = -np.mean(np.log(prob[_index(X, 2)]))
    np.testing.assert_allclose(hist[-1]["loss"], exact, atol=1e-4)
    assert params.center_site == 0
    for a in unpack(params)[1:]:  # every core after the centre right-isometric: Z exact
        m = np.asarray(a, np.float64).reshape(a.shape[0], -1)
        np.testing.assert_allclose(m @ m.T, np.eye(len(m)), atol=1e-5)
    assert len(info["bond_ranks"]) == 8 and max(info["bond_ranks"]) <= 16


@pytest.mark.parametrize("steps", [1, 10])
def test_born_sweep_kernel_steps_equal_the_direct_steps(x64, steps):
    """The Gram-matrix form of the local steps gives the direct path's epoch (float64),
    weights, a large learning rate (the trust region acting) and uneven data included."""
    from qtn.training.born_sweep import born_sweep_epoch, born_sweep_init, use_kernel

    rng = np.random.default_rng(3)
    n, n_sites, chi = 40, 8, 5
    X = (rng.random((n, n_sites)) < 0.3).astype(int)
    phi = jax.nn.one_hot(jnp.asarray(X), 2, dtype=jnp.float64)
    w = jnp.asarray(rng.uniform(0.2, 2.0, n))
    mps = _to_jax(random_mps(1, n_sites, chi))
    out = {}
    for kernel in (False, True):
        m, state = born_sweep_init(mps, phi, w)
        for lr in (0.05, 5.0):
            m, state, loss = born_sweep_epoch(
                m, state, phi, w, learning_rate=lr, cutoff=1e-12, local_steps=steps, kernel=kernel
            )
        out[kernel] = (loss, to_dense(m), state.ranks)
    np.testing.assert_allclose(out[True][0], out[False][0], rtol=1e-7)
    np.testing.assert_allclose(out[True][1], out[False][1], atol=1e-6)
    assert out[True][2] == out[False][2]
    # the automatic choice: the Gram form where it costs fewer operations, real dtypes only
    assert use_kernel(1000, 500, 2, 10, jnp.float32)
    assert not use_kernel(60000, 500, 2, 10, jnp.float32)  # n x n would not fit
    assert not use_kernel(1000, 10, 2, 10, jnp.float32)  # chi^2 small: direct is cheaper
    assert not use_kernel(1000, 500, 2, 10, jnp.complex64)
    assert not use_kernel(1000, 500, 2, 0, jnp.float32)


def test_born_sweep_kernel_falls_back_to_direct_steps(x64, monkeypatch):
    """A Gram-matrix iterate that has lost its unit norm to rounding is replaced by the direct
    steps: with a tolerance nothing meets, the kernel epoch is the direct epoch."""
    from qtn.training import born_sweep as bs

    rng = np.random.default_rng(4)
    X = (rng.random((30, 6)) < 0.4).astype(int)
    phi = jax.nn.one_hot(jnp.asarray(X), 2, dtype=jnp.float64)
    w = jnp.ones(30)
    mps = _to_jax(random_mps(2, 6, 4))
    monkeypatch.setattr(bs, "KERNEL_TOLERANCE", -1.0)
    bs._make_update.cache_clear()
    try:
        out = []
        for kernel in (True, False):
            m, state = bs.born_sweep_init(mps, phi, w)
            m, state, loss = bs.born_sweep_epoch(
                m, state, phi, w, learning_rate=0.1, cutoff=1e-12, local_steps=3, kernel=kernel
            )
            out.append((loss, to_dense(m)))
            assert state.kernel_fallbacks == (2 * 5 if kernel else 0)
    finally:
        bs._make_update.cache_clear()
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-12)
    np.testing.assert_allclose(out[0][1], out[1][1], atol=1e-12)


def _sweep_once(bs, mps, X, dtype, **kw):
    phi = jax.nn.one_hot(jnp.asarray(X), 2, dtype=dtype)
    w = jnp.ones(len(X), dtype)
    m, state = bs.born_sweep_init(mps, phi, w)
    kw = {"learning_rate": 0.1, "cutoff": 1e-12, "local_steps": 3, **kw}
    m, state, loss = bs.born_sweep_epoch(m, state, phi, w, **kw)
    return m, state, loss


@pytest.mark.parametrize("kernel", [False, True])
def test_born_sweep_steps_survive_tiny_amplitudes_in_float32(x64, kernel):
    """A sample the state nearly misses (local amplitude 1e-20) has a gradient term 1/psi ~
    1e20 whose square overflows float32: the step is computed scaled, so one float32 bond
    update takes the float64 (trust-region) steps instead of stalling or turning NaN."""
    from qtn.training import born_sweep as bs

    rng = np.random.default_rng(5)
    n, chi, d = 10, 2, 2
    q, _ = np.linalg.qr(rng.normal(size=(d * chi, chi)))
    b = q.T.reshape(chi, d, chi)  # right-isometric
    lenv = rng.normal(size=(n, chi))
    renv = rng.normal(size=(n, chi))
    lenv, renv = (e / np.linalg.norm(e, axis=1, keepdims=True) for e in (lenv, renv))
    xi, xj = rng.integers(0, 2, n), rng.integers(0, 2, n)
    xi[0] = xj[0] = 1
    lenv[0] = [1.0, 0.0]
    a = rng.normal(size=(chi, d, chi))
    c = b[:, 1, :] @ renv[0]
    a[0, 1, :] = 1e-20 * c / (c @ c)  # sample 0's amplitude <L_0|theta[:, 1, 1, :]|R_0> = 1e-20
    out = {}
    for dtype in (jnp.float64, jnp.float32):
        args = [jnp.asarray(v, dtype) for v in (a, b, lenv, np.zeros(n), renv, np.zeros(n))]
        pi, pj = (jax.nn.one_hot(jnp.asarray(x), d, dtype=dtype) for x in (xi, xj))
        bs._make_update.cache_clear()
        new_a, new_b, *_, flags = bs._make_update(0.1, 1e-12, 3, kernel, True)(
            *args, pi, pj, jnp.ones(n, dtype)
        )
        assert not np.any(np.asarray(flags))
        out[dtype] = np.einsum("lsm,mtr->lstr", np.asarray(new_a, np.float64),
                               np.asarray(new_b, np.float64))  # fmt: skip
    bs._make_update.cache_clear()
    theta0 = np.einsum("lsm,mtr->lstr", a, b)
    assert np.linalg.norm(out[jnp.float64] - theta0 / np.linalg.norm(theta0)) > 0.3  # it moved
    np.testing.assert_allclose(out[jnp.float32], out[jnp.float64], atol=1e-5)


def test_born_sweep_keeps_a_bond_whose_steps_break_down(x64, monkeypatch):
    """Steps that end in a non-finite theta (forced: a NaN trust region) are not split: every
    bond keeps its state, the count is reported, and the loss stays finite and exact."""
    from qtn.training import born_sweep as bs

    rng = np.random.default_rng(6)
    X = (rng.random((20, 6)) < 0.4).astype(int)
    mps = _to_jax(random_mps(3, 6, 4))
    before = to_dense(mps)
    monkeypatch.setattr(bs, "MAX_STEP", float("nan"))
    bs._make_update.cache_clear()
    try:
        for kernel in (False, True):
            m, state, loss = _sweep_once(bs, mps, X, jnp.float64, kernel=kernel)
            assert state.skipped == 2 * 5 and state.svd_retries == 0
            np.testing.assert_allclose(to_dense(m), before, atol=1e-10)  # unchanged state
            prob = before**2 / np.sum(before**2)
            np.testing.assert_allclose(loss, -np.mean(np.log(prob[_index(X, 2)])), rtol=1e-10)
    finally:
        bs._make_update.cache_clear()


def test_born_sweep_redoes_a_failed_svd_by_qr_iteration(x64, monkeypatch):
    """LAPACK's gesdd fails on rare matrices and JAX returns NaN: such a split is redone with
    the QR-iteration SVD (simulated here by a split whose default SVD returns NaN), and the
    epoch equals an ordinary one."""
    from qtn.models import mps as mps_module
    from qtn.training import born_sweep as bs

    rng = np.random.default_rng(7)
    X = (rng.random((20, 6)) < 0.4).astype(int)
    mps = _to_jax(random_mps(4, 6, 4))
    bs._make_update.cache_clear()
    ref, _, ref_loss = _sweep_once(bs, mps, X, jnp.float64)

    def failing_split(theta, **kw):
        a, b, disc, rank = mps_module.split(theta, **kw)
        if kw.get("qr_svd"):
            return a, b, disc, rank
        return a * jnp.nan, b * jnp.nan, disc, rank

    monkeypatch.setattr(bs, "split", failing_split)
    bs._make_update.cache_clear()
    try:
        m, state, loss = _sweep_once(bs, mps, X, jnp.float64)
    finally:
        bs._make_update.cache_clear()
    assert state.svd_retries == 2 * 5 and state.skipped == 0
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-10)
    np.testing.assert_allclose(to_dense(m), to_dense(ref), atol=1e-10)
