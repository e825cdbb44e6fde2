"""TTNClassifier: scikit-learn conformance, accuracy, tree sweeps with cached environments,
persistence, quimb, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

import qtn
from qtn import TTNClassifier
from qtn.data import downsample, load_digits
from qtn.features import get_feature_map
from qtn.models import (
    init_ttn_classifier,
    tree_layout,
    ttn_classifier_forward,
    ttn_dense_amplitudes,
)
from qtn.training import evaluate
from qtn.training.tree_sweep import tree_sweep_epoch, tree_sweep_init

# Every scikit-learn check passes; none is expected to fail. Slow (make test-slow): each
# check fits on data of its own shape, which compiles anew (about 85 CPU-seconds in all).
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@pytest.mark.slow
@parametrize_with_checks(
    [
        TTNClassifier(
            bond_dim=4, max_epochs=10, learning_rate=2e-2, scaling="minmax", random_state=0
        )
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(flatten=True)
    return train_test_split(X, y, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def fitted(digits_split):
    Xtr, _, ytr, _ = digits_split
    clf = TTNClassifier(bond_dim=8, image_shape=(8, 8), learning_rate=1e-2, max_epochs=25,
                        random_state=0)  # fmt: skip
    return clf.fit(Xtr, ytr)


def test_digits_accuracy_and_amplitudes(fitted, digits_split):
    _, Xte, _, yte = digits_split
    assert fitted.score(Xte, yte) >= 0.95
    assert fitted.layout_.leaf_features[:4] == (0, 1, 8, 9)  # 2x2 pixel blocks
    fhat, logn = fitted.amplitudes(Xte[:4])
    phi = fitted.layout_.to_leaves(get_feature_map("trigonometric")(Xte[:4].astype(np.float64)))
    for b in range(4):
        ref = ttn_dense_amplitudes(fitted.params_.network, phi[b])
        scale = np.linalg.norm(ref)
        np.testing.assert_allclose(np.exp(logn[b]) * fhat[b] / scale, ref / scale, atol=1e-5)


@pytest.fixture(scope="module")
def digits4(digits_split):
    """4x4 digits (16 leaves): sweeps compile per level, so their tests use a small tree."""
    Xtr, Xte, ytr, yte = digits_split
    return [downsample(X.reshape(-1, 8, 8), 4).reshape(-1, 16) for X in (Xtr, Xte)] + [ytr, yte]


def test_tree_sweep_caches_consistent_environments_and_learns(digits4):
    Xtr, _, ytr, _ = digits4
    X, y = Xtr[:300], ytr[:300]
    lay = tree_layout(16, (4, 4))
    phi = jnp.asarray(lay.to_leaves(get_feature_map("trigonometric")(X)), jnp.float32)
    p = init_ttn_classifier(jax.random.key(0), 16, 10, 4, padded=lay.padded, init_std=0.1)
    p, state = tree_sweep_init(p, phi, jnp.asarray(y))
    rng = np.random.default_rng(0)
    losses = [evaluate(ttn_classifier_forward, p, phi, jnp.asarray(y), "cross_entropy")[0]]
    for _ in range(2):
        p, state, _ = tree_sweep_epoch(
            p, state, phi, jnp.asarray(y), jnp.ones(300), loss="cross_entropy",
            learning_rate=3e-2, local_steps=5, batch_size=64, rng=rng,
        )  # fmt: skip
        losses.append(evaluate(ttn_classifier_forward, p, phi, jnp.asarray(y), "cross_entropy")[0])
    assert losses[2] < losses[1] < losses[0]
    fresh = tree_sweep_init(p, phi, jnp.asarray(y))[1]
    for cached, new in zip(state.ups, fresh.ups):
        for a, b in zip(cached, new):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_sweep_method_estimator(digits4):
    Xtr, Xte, ytr, yte = digits4
    clf = TTNClassifier(bond_dim=4, image_shape=(4, 4), method="sweep", max_epochs=3,
                        learning_rate=3e-2, random_state=0)  # fmt: skip
    clf.fit(Xtr[:300], ytr[:300])  # the sample count of the test above: no new compiles
    assert clf.history_[2]["loss"] < clf.history_[0]["loss"]
    assert clf.score(Xte, yte) > 0.5


def test_save_load_bit_exact_and_quimb(fitted, digits_split, tmp_path):
    import quimb.tensor as qtensor

    _, Xte, _, _ = digits_split
    fitted.save(tmp_path / "ttn.npz")
    back = TTNClassifier.load(tmp_path / "ttn.npz")
    np.testing.assert_array_equal(back.predict_proba(Xte), fitted.predict_proba(Xte))
    with pytest.raises(qtn.FormatError, match="holds a 'qtn.TTNClassifier'"):
        qtn.MPSClassifier.load(tmp_path / "ttn.npz")
    tn = fitted.to_quimb()
    x = Xte[0].astype(np.float64)
    phi = get_feature_map("trigonometric")(x)
    prod = qtensor.TensorNetwork([qtensor.Tensor(phi[i], inds=[f"k{i}"]) for i in range(64)])
    f = (tn.astype("float64") & prod).contract(output_inds=["label"]).data
    fhat, logn = fitted.amplitudes(Xte[:1])
    np.testing.assert_allclose(f / np.linalg.norm(f), fhat[0], atol=1e-5)
    ent = fitted.entanglement_entropy()
    assert [len(e) for e in ent] == [32, 16, 8, 4, 2]


def test_bad_input(fitted, digits_split):
    Xtr, Xte, ytr, _ = digits_split
    with pytest.raises(ValueError, match="image_shape .* does not hold n_features=64"):
        TTNClassifier(image_shape=(7, 8)).fit(Xtr, ytr)
    with pytest.raises(ValueError, match=r"image_shape must be None or \(height, width\)"):
        TTNClassifier(image_shape=(64,)).fit(Xtr, ytr)
    with pytest.raises(ValueError, match=r"unknown method 'dmrg'; valid methods: \['gradient'"):
        TTNClassifier(method="dmrg").fit(Xtr, ytr)
    with pytest.raises(ValueError, match="bond_dim must be an integer >= 1"):
        TTNClassifier(bond_dim=0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="X has 10 features, but TTNClassifier is expecting 64"):
        fitted.predict(Xte[:, :10])
    # out of the feature map's domain: refused at fit (scaling=None), clipped at predict
    with pytest.raises(ValueError, match="outside the domain"):
        TTNClassifier(max_epochs=1).fit(Xtr * 2 + 0.5, ytr)
    np.testing.assert_array_equal(
        fitted.predict(Xte * 2 + 0.5), fitted.predict(np.clip(Xte * 2 + 0.5, 0, 1))
    )
    with pytest.raises(ValueError, match="1 class"):
        TTNClassifier().fit(Xtr[:5], np.zeros(5))
