"""The fit loop: gradient and sweep methods, the loss and method registries, FitConfig
validation, cached environments, adaptive bonds, L2, weights, evaluation, failure modes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from qtn.data import downsample, load_digits, select_classes
from qtn.errors import NonFiniteError
from qtn.features import get_feature_map
from qtn.models import (
    ClassifierParams,
    classifier_forward,
    init_mps,
    init_mps_classifier,
    mps_forward,
    reverse_cores,
)
from qtn.training import (
    FitConfig,
    apply,
    evaluate,
    fit,
    get_loss,
    list_losses,
    list_methods,
    register_loss,
)
from qtn.training.gradient import make_epoch, tree_sq_norm
from qtn.training.sweep import left_environments, sweep_epoch, sweep_init


@pytest.fixture(scope="module")
def small_problem():
    X, y = load_digits()
    X, y = select_classes(X, y, [0, 1, 2], relabel=True)
    X = downsample(X, 4).reshape(len(X), -1)
    phi = get_feature_map("trigonometric")(X).astype(np.float32)
    return jnp.asarray(phi), jnp.asarray(y)


def _init(chi, label_site=None, seed=0):
    return init_mps_classifier(jax.random.key(seed), 16, 3, chi, label_site=label_site)


def test_gradient_and_sweep_reach_comparable_loss(small_problem):
    phi, y = small_problem
    p0 = _init(6)
    init_loss, _ = evaluate(classifier_forward, p0, phi, y, "cross_entropy")
    pg, hg, _ = fit(classifier_forward, p0, phi, y, FitConfig(learning_rate=1e-2, max_epochs=40))
    ps, hs, info = fit(
        classifier_forward, p0, phi, y, FitConfig(method="sweep", learning_rate=1e-3, max_epochs=3)
    )
    lg, ag = evaluate(classifier_forward, pg, phi, y, "cross_entropy")
    ls, as_ = evaluate(classifier_forward, ps, phi, y, "cross_entropy")
    assert lg < 0.5 * init_loss and ls < 0.5 * init_loss
    assert ag > 0.95 and as_ > 0.95
    assert abs(lg - ls) < 0.25
    assert len(info["bond_ranks"]) == 15
    # the running history of the last epoch agrees with a fresh evaluation
    assert hs[-1]["accuracy"] == pytest.approx(as_, abs=1e-9)


@pytest.mark.parametrize("loss", ["nll", "mse"])
def test_sweep_caches_consistent_environments(small_problem, loss):
    phi, y = small_problem
    p = _init(4, label_site=5, seed=1)
    p, state = sweep_init(p, phi, y)
    p, state, _ = sweep_epoch(
        p,
        state,
        loss=loss,
        learning_rate=1e-3,
        cutoff=1e-10,
        local_steps=3,
        batch_size=32,
        rng=np.random.default_rng(0),
    )
    assert p.network.center_site == 5
    cores = p.network.cores()
    fresh_l, logs_l = left_environments(cores, phi, 5, with_log=True)
    fresh_r, logs_r = left_environments(
        reverse_cores(cores), jnp.flip(phi, 1), 16 - 1 - 5, with_log=True
    )
    fresh_r, logs_r = fresh_r[::-1], logs_r[::-1]
    n = phi.shape[0]
    for i in range(6):
        np.testing.assert_allclose(state.envs_left[i][:n], fresh_l[i], atol=1e-5)
        np.testing.assert_allclose(state.logs_left[i][:n], logs_l[i], atol=1e-4)
    for i in range(5, 16):
        np.testing.assert_allclose(state.envs_right[i][:n], fresh_r[i], atol=1e-5)
        np.testing.assert_allclose(state.logs_right[i][:n], logs_r[i], atol=1e-4)
    # environments the sweep passed are released: about N arrays are held, not 2N
    held = sum(e is not None for e in state.envs_left + state.envs_right)
    assert held == 16 + 1


def test_cg_solves_the_bond_least_squares_problem_exactly(x64):
    """Enough CG iterations reach the ridge least-squares solution (dense numpy oracle)."""
    from qtn.training.sweep import solve_quadratic

    rng = np.random.default_rng(0)
    chi, d, n_lab, n = 2, 2, 3, 40
    lenv, renv = rng.normal(size=(n, chi)), rng.normal(size=(n, chi))
    pi, pj = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    y = rng.integers(0, n_lab, n)
    w = rng.uniform(0.5, 2.0, n)
    w[:4] = 0.0  # zero weights (as the padding rows) change nothing
    l2 = 1e-3
    b0 = rng.normal(size=(chi, d, d, n_lab, chi))
    dim = chi * d * d * chi
    b, loss = solve_quadratic(*(jnp.asarray(v) for v in (b0, lenv, renv, pi, pj, y, w)),
                              steps=3 * dim, l2=l2, chunk=8)  # fmt: skip
    # oracle: (Phi^T W Phi / W + l2 I) B_l = Phi^T W e_l / W, one system per label
    feats = np.einsum("na,ns,nu,nb->nasub", lenv, pi, pj, renv).reshape(n, dim)
    gram = feats.T @ (w[:, None] * feats) / w.sum() + l2 * np.eye(dim)
    rhs = feats.T @ (w[:, None] * np.eye(n_lab)[y]) / w.sum()
    sol = np.linalg.solve(gram, rhs)  # (dim, L)
    got = np.asarray(b).transpose(0, 1, 2, 4, 3).reshape(dim, n_lab)
    np.testing.assert_allclose(got, sol, rtol=1e-6, atol=1e-8)
    g = feats @ sol
    expect = 0.5 * np.sum(w[:, None] * (g - np.eye(n_lab)[y]) ** 2) / w.sum()
    expect += 0.5 * l2 * np.sum(sol**2)
    np.testing.assert_allclose(float(loss), expect, rtol=1e-8)


def test_quadratic_sweeps_learn(small_problem):
    """method='sweep' with loss='mse': CG on the whole set per bond trains the classifier."""
    phi, y = small_problem
    cfg = FitConfig(method="sweep", loss="mse", max_epochs=2, local_steps=4, l2=1e-4)
    p, hist, info = fit(classifier_forward, _init(6), phi, y, cfg)
    _, acc = evaluate(classifier_forward, p, phi, y, "mse")
    assert acc > 0.97, acc
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"] or hist[0]["loss"] < 0.1
    assert info["local_solver"] == "conjugate_gradient" and info["local_loss"] < 0.1
    assert len(info["bond_ranks"]) == 15 and max(info["bond_ranks"]) <= 6


def test_sweep_bond_dims_adapt_to_data(small_problem):
    phi, y = small_problem
    _, _, info = fit(
        classifier_forward,
        _init(16, seed=2),
        phi,
        y,
        FitConfig(method="sweep", max_epochs=1, learning_rate=1e-3, cutoff=1e-3),
    )
    ranks = info["bond_ranks"]
    # the first bond can hold at most d = 2 values, the second 4: the open boundary is respected
    assert ranks[0] <= 2 and ranks[1] <= 4
    assert max(ranks) <= 16 and min(ranks) >= 1


def test_non_finite_training_raises(small_problem):
    phi, y = small_problem
    bad = phi.at[0, 0, 0].set(jnp.nan)  # poisoned input reaching the jitted step
    with pytest.raises(NonFiniteError, match="non-finite values at epoch 0"):
        fit(classifier_forward, _init(4), bad, y, FitConfig(max_epochs=2, batch_size=512))


def test_early_stopping_keeps_best(small_problem):
    phi, y = small_problem
    cfg = FitConfig(
        max_epochs=200, early_stopping=True, n_iter_no_change=2, learning_rate=5e-2, tol=1.0
    )
    _, hist, info = fit(classifier_forward, _init(4), phi, y, cfg, validation=(phi[:100], y[:100]))
    assert len(hist) < 200 and "best_epoch" in info
    assert all("val_loss" in h for h in hist)


def test_fit_config_is_validated_at_construction():
    assert set(list_methods()) == {"gradient", "sweep", "born_sweep", "tree_sweep"}
    with pytest.raises(ValueError, match="unknown method 'dmrg'; valid methods"):
        FitConfig(method="dmrg")
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid losses"):
        FitConfig(loss="hinge")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        FitConfig(batch_size=0)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        FitConfig(learning_rate=0.0)
    with pytest.raises(ValueError, match="learning_rate must be a finite number"):
        FitConfig(learning_rate=float("nan"))
    with pytest.raises(ValueError, match="clip_norm must be a positive number or None"):
        FitConfig(clip_norm=-1)
    with pytest.raises(ValueError, match="optimizer must be an optax GradientTransformation"):
        FitConfig(optimizer="adam")
    with pytest.raises(ValueError, match="unknown lr_schedule"):
        FitConfig(lr_schedule="step")
    # defaults resolve per method and bond dimension
    p = _init(64)
    assert FitConfig().resolved_learning_rate(p) == pytest.approx(0.032 / 64)
    assert FitConfig(method="sweep").resolved_learning_rate(p) == 1e-4
    assert FitConfig().resolved_epochs() == 30 and FitConfig(method="sweep").resolved_epochs() == 5


def test_estimator_defaults_agree_with_fit_config():
    from qtn import MPSClassifier

    est = MPSClassifier().get_params()
    for name in FitConfig.field_names():
        if name in est:
            assert est[name] == getattr(FitConfig(), name), name


def test_loss_registry_and_a_custom_loss(small_problem):
    phi, y = small_problem
    assert list_losses(supervised=True) == ["cross_entropy", "mse", "nll"]
    assert list_losses(supervised=False) == ["unsupervised_nll"]
    with pytest.raises(ValueError, match="valid losses"):
        get_loss("nope")

    def hinge(params, fhat, log_norm, y):
        true = jnp.take_along_axis(fhat**2, y[:, None], axis=1)[:, 0]
        return jnp.maximum(0.5 - true, 0.0)

    register_loss("test_hinge", hinge, output="born")
    p, hist, _ = fit(
        classifier_forward,
        _init(4),
        phi,
        y,
        FitConfig(loss="test_hinge", learning_rate=1e-2, max_epochs=5),
    )
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_unsupervised_nll_trains_a_born_amplitude():
    """The generative loss: -2 log_norm of a forward that returns normalised amplitudes."""
    from qtn.models import log_norm

    bits = jnp.asarray(np.array([[0, 0, 0, 0], [1, 1, 1, 1]] * 8))
    phi = jax.nn.one_hot(bits, 2)

    def born_forward(mps, phi_one):
        fhat, ln = mps_forward(mps, phi_one)
        return fhat, ln - log_norm(mps)  # log |psi(x)| / sqrt(Z)

    p0 = init_mps(jax.random.key(0), 4, 2, init_std=0.3)
    p, hist, _ = fit(
        born_forward,
        p0,
        phi,
        None,
        FitConfig(
            loss="unsupervised_nll", learning_rate=0.05, max_epochs=200, lr_schedule="constant"
        ),
    )
    assert hist[0]["accuracy"] is None
    # two equally likely patterns: the optimum is ln 2
    assert hist[-1]["loss"] < 0.75 and hist[-1]["loss"] > np.log(2) - 1e-4


def test_l2_covers_the_whole_params_pytree():
    p = _init(3)
    expect = sum(
        float(jnp.sum(a**2))
        for a in (p.network.left, p.network.center, p.network.right, p.log_temp)
    )
    np.testing.assert_allclose(float(tree_sq_norm(p)), expect, rtol=1e-6)
    # with l2 and zero loss gradient, every leaf (log_temp included) decays
    p = ClassifierParams(p.network, jnp.asarray(1.0))
    zero = lambda params, phi: (jnp.ones(3) / jnp.sqrt(3.0), jnp.zeros(()))  # noqa: E731
    epoch = make_epoch(zero, "mse", optax.sgd(0.1), 0.5)
    phi = jnp.zeros((4, 16, 2))
    new, _, _ = epoch(
        p,
        optax.sgd(0.1).init(p),
        phi,
        jnp.zeros(4, jnp.int32),
        jnp.ones(4),
        np.arange(4).reshape(1, 4),
        np.ones((1, 4)),
    )
    np.testing.assert_allclose(float(new.log_temp), 1.0 - 0.1 * 0.5 * 2 * 1.0, rtol=1e-6)


def test_sample_weights_match_duplicated_samples(small_problem):
    """Weight 2 on a sample equals that sample twice, in the evaluation loop."""
    phi, y = small_problem
    p = _init(4)
    w = np.ones(len(y))
    w[:10] = 2.0
    dup_phi = jnp.concatenate([phi, phi[:10]])
    dup_y = jnp.concatenate([y, y[:10]])
    a = evaluate(classifier_forward, p, phi, y, "nll", weights=w)
    b = evaluate(classifier_forward, p, dup_phi, dup_y, "nll")
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_one_evaluation_loop_pads_chunks(small_problem):
    phi, _ = small_problem
    p = _init(4)
    full_f, full_l = apply(classifier_forward, p, phi[:37], chunk=16)
    one_f, one_l = jax.vmap(classifier_forward, in_axes=(None, 0))(p, phi[:37])
    np.testing.assert_allclose(full_f, one_f, atol=1e-6)
    np.testing.assert_allclose(full_l, one_l, atol=1e-5)
    with pytest.raises(ValueError, match="phi has no samples"):
        apply(classifier_forward, p, phi[:0])


def test_sweep_needs_an_mps_classifier(small_problem):
    phi, y = small_problem
    with pytest.raises(ValueError, match="method='sweep' trains MPS classifiers"):
        fit(mps_forward, init_mps(jax.random.key(0), 16, 2), phi, y, FitConfig(method="sweep"))


def _quadratic_problem():
    """A batch loss whose exact minimiser is known: sum((p - target)^2) over a two-leaf
    pytree, the same for every sample (so the minibatches do not matter)."""
    target = {"a": jnp.array([0.3, -0.2]), "b": jnp.array([0.1, 0.4, -0.5])}

    def batch_loss(p, xb, yb, wb):
        sq = sum(jnp.sum((p[k] - target[k]) ** 2) for k in target)
        return jnp.sum(wb * sq) / jnp.sum(wb)

    def forward(p, x):
        return jnp.array([1.0, 0.0]), jnp.array(0.0)

    p0 = {"a": jnp.zeros(2), "b": jnp.zeros(3)}
    phi, y = jnp.zeros((32, 1)), jnp.zeros(32, jnp.int32)
    return target, batch_loss, forward, p0, phi, y


@pytest.mark.parametrize("method", ["adam", "spsa"])
def test_fit_batch_loss_reaches_the_known_minimum(method):
    from qtn.training import fit_batch_loss
    from qtn.training.spsa import SPSAConfig

    target, batch_loss, forward, p0, phi, y = _quadratic_problem()
    epochs = 40 if method == "spsa" else 25
    cfg = FitConfig(max_epochs=epochs, batch_size=8)
    spsa = SPSAConfig(a=0.2, b=0.05) if method == "spsa" else None
    p, hist, info = fit_batch_loss(batch_loss, forward, p0, phi, y, cfg, spsa=spsa,
                                   learning_rate=0.05, seed=0)  # fmt: skip
    for k in target:
        np.testing.assert_allclose(p[k], target[k], atol=0.02)
    assert len(hist) == epochs and hist[-1]["loss"] < 1e-3 and hist[0]["accuracy"] == 1.0
    assert ("spsa" in info) == (method == "spsa")


def test_fit_batch_loss_refuses_bad_input():
    from qtn.training import fit_batch_loss

    _, batch_loss, forward, p0, phi, y = _quadratic_problem()
    cfg = FitConfig(max_epochs=1)
    cases = [
        (dict(config={"max_epochs": 1}), TypeError, "config must be a FitConfig"),
        (dict(batch_loss=None), TypeError, "batch_loss must be a function"),
        (dict(spsa={"a": 1}), TypeError, "spsa must be an SPSAConfig"),
        (dict(learning_rate=-1.0), ValueError, "learning_rate must be a positive"),
        (dict(y=y[:5]), ValueError, "y shape"),
        (dict(sample_weight=-np.ones(32)), ValueError, "sample_weight must be 32"),
    ]
    for kw, exc, match in cases:
        args = dict(batch_loss=batch_loss, forward=forward, params=p0, phi=phi, y=y, config=cfg)
        args.update(kw)
        with pytest.raises(exc, match=match):
            fit_batch_loss(**args)
