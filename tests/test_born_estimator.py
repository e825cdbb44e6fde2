"""BornMachine: fits, likelihoods, sampling and inpainting through the estimator, marginals,
persistence, interop, bad input, and the scikit-learn checks that apply."""

from __future__ import annotations

import itertools
import json

import joblib
import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Binarizer
from sklearn.utils.estimator_checks import parametrize_with_checks

import qtn
from qtn import BornMachine
from qtn.data import bars_and_stripes
from qtn.models import to_dense, ttn_to_dense

# BornMachine takes integer categories and refuses real-valued data by design, and every
# scikit-learn check generates real-valued data; so the checks run on a pipeline that
# binarises first (Binarizer: x > 0). Two checks fail for any such pipeline, because the
# fitted Binarizer inside ``steps`` gains ``n_features_in_`` (the same holds for
# make_pipeline(Binarizer(), GaussianMixture())): what they check is tested on
# BornMachine itself in test_fit_changes_only_learned_attributes.
PIPELINE_ARTEFACT = "a fitted step inside Pipeline.steps gains attributes (not BornMachine)"
EXPECTED_FAILED_CHECKS = {
    "check_estimators_overwrite_params": PIPELINE_ARTEFACT,
    "check_dont_overwrite_parameters": PIPELINE_ARTEFACT,
}


# slow (make test-slow): every check fits on data of its own shape, which compiles anew;
# the two sets add about 80 CPU-seconds
@pytest.mark.slow
@parametrize_with_checks(
    [
        make_pipeline(Binarizer(), BornMachine(bond_dim=4, max_epochs=2, random_state=0)),
        make_pipeline(Binarizer(), BornMachine("ttn", bond_dim=4, max_epochs=2, random_state=0)),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def bas():
    return bars_and_stripes(3, 3, flatten=True)


@pytest.fixture(scope="module")
def mps_born(bas):
    return BornMachine(bond_dim=16, random_state=0).fit(bas)


@pytest.fixture(scope="module")
def ttn_born(bas):
    return BornMachine(
        "ttn", bond_dim=16, image_shape=(3, 3), max_epochs=300, batch_size=14,
        learning_rate=0.01, lr_schedule="constant", random_state=0,
    ).fit(bas)  # fmt: skip


def test_fit_changes_only_learned_attributes(bas):
    X = bas
    est = BornMachine(bond_dim=16, max_epochs=1, random_state=0)
    before = dict(est.__dict__)
    params = joblib.hash(est.get_params())
    est.fit(X)
    assert joblib.hash(est.get_params()) == params
    new = {k for k in est.__dict__ if k not in before or est.__dict__[k] is not before[k]}
    assert all(k.endswith("_") for k in new), new


def test_bas_mps_reaches_ln14(mps_born, bas):
    assert abs(mps_born.nll(bas) - np.log(14)) < 0.01
    assert mps_born.score(bas) == pytest.approx(-mps_born.nll(bas))
    lp = mps_born.log_prob(bas)
    assert lp.shape == (14,) and lp.dtype == np.float64
    # p sums to one over all 512 images (the estimator's own log_prob)
    allx = np.array(list(itertools.product([0, 1], repeat=9)))
    np.testing.assert_allclose(np.exp(mps_born.log_prob(allx)).sum(), 1.0, atol=1e-4)
    assert mps_born.mps_.center_site == 0
    with pytest.raises(AttributeError, match="tree_ exists for structure='ttn'"):
        mps_born.tree_  # noqa: B018


def test_ttn_born_trains_and_normalises(ttn_born, bas):
    assert ttn_born.nll(bas) - np.log(14) < 0.01
    allx = np.array(list(itertools.product([0, 1], repeat=9)))
    np.testing.assert_allclose(np.exp(ttn_born.log_prob(allx)).sum(), 1.0, atol=1e-4)
    t = ttn_born.tree_
    assert t.n_leaves == 16 and [a.shape[0] for a in t.levels()] == [8, 4, 2, 1]
    # the tree the compiler takes is canonical toward the root and normalised
    psi = ttn_to_dense(t)
    np.testing.assert_allclose(np.linalg.norm(psi), 1.0, atol=1e-5)


@pytest.mark.parametrize("which", ["mps", pytest.param("ttn", marks=pytest.mark.slow)])
def test_samples_marginals_and_inpainting(which, mps_born, ttn_born, bas):
    born = mps_born if which == "mps" else ttn_born
    x = born.sample(4000, seed=0)
    assert x.shape == (4000, 9) and x.dtype == np.int64
    np.testing.assert_array_equal(born.sample(4000, seed=0), x)  # seeded
    assert not np.array_equal(born.sample(4000, seed=1), x)
    # the exact two-site marginal against frequencies, and against enumeration
    m = born.marginal([0, 8])
    assert m.shape == (2, 2)
    allx = np.array(list(itertools.product([0, 1], repeat=9)))
    p = np.exp(born.log_prob(allx))
    ref = np.array([[p[(allx[:, 0] == a) & (allx[:, 8] == b)].sum() for b in (0, 1)]
                    for a in (0, 1)])  # fmt: skip
    np.testing.assert_allclose(m, ref, atol=1e-5)
    freq = np.array([[np.mean((x[:, 0] == a) & (x[:, 8] == b)) for b in (0, 1)] for a in (0, 1)])
    assert np.abs(freq - m).max() < 5 * np.sqrt(0.25 / 4000)  # 5 sigma
    # inpainting keeps the known pixels; for a perfect BAS model the rest completes a pattern
    holes = bas[:6].astype(np.int64)
    filled = born.inpaint(holes, [3, 4, 5], seed=1)
    keep = [0, 1, 2, 6, 7, 8]
    np.testing.assert_array_equal(filled[:, keep], holes[:, keep])
    if which == "mps":
        patterns = {tuple(r) for r in bas.tolist()}
        assert all(tuple(r) in patterns for r in filled.tolist())
    minus = np.where(np.isin(np.arange(9), [3, 4, 5]), -1, holes)
    np.testing.assert_array_equal(born.inpaint(minus, seed=1), filled)


def test_save_load_round_trip(mps_born, ttn_born, bas, tmp_path):
    for born in (mps_born, ttn_born):
        path = tmp_path / f"{born.structure}.npz"
        born.save(path)
        back = BornMachine.load(path)
        np.testing.assert_array_equal(back.log_prob(bas), born.log_prob(bas))
        np.testing.assert_array_equal(back.sample(4000, seed=4), born.sample(4000, seed=4))
    with pytest.raises(qtn.FormatError, match="holds a 'qtn.BornMachine', expected"):
        qtn.MPSClassifier.load(tmp_path / "mps.npz")
    with np.load(tmp_path / "ttn.npz") as z:
        meta = json.loads(str(z["__meta__"]))
        arrays = {k: z[k] for k in z.files if k != "__meta__"}
    meta["estimator_params"]["n_categories"] = 3
    np.savez(tmp_path / "bad.npz", __meta__=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(qtn.FormatError, match="physical dimension 2, n_categories 3"):
        BornMachine.load(tmp_path / "bad.npz")


def test_interop_and_entanglement(mps_born, ttn_born):
    q = mps_born.to_quimb()
    psi = np.asarray(q.to_dense()).ravel()
    np.testing.assert_allclose(np.abs(psi), np.abs(to_dense(mps_born.mps_)), atol=1e-6)
    ent = mps_born.entanglement_entropy()
    assert ent.shape == (8,) and np.all(ent >= -1e-9)
    tn = ttn_born.to_quimb()
    assert sorted(tn.outer_inds()) == sorted(f"k{i}" for i in range(9))
    tent = ttn_born.entanglement_entropy()
    assert [len(e) for e in tent] == [8, 4, 2]


def test_bad_input(mps_born, bas, monkeypatch):
    from qtn.estimators import born as born_module

    with pytest.raises(ValueError, match=r"X must hold integer categories in range\(2\).*0\.5"):
        BornMachine().fit(bas * 0.5)
    with pytest.raises(ValueError, match=r"X must hold integer categories in range\(2\).*2"):
        BornMachine().fit(bas + 1)
    with pytest.raises(ValueError, match="X: Found array with 0 sample"):
        BornMachine().fit(np.zeros((0, 9)))
    with pytest.raises(ValueError, match="X.*NaN"):
        BornMachine().fit(np.full((3, 9), np.nan))
    with pytest.raises(ValueError, match=r"X must hold integer categories in range\(2\)"):
        mps_born.log_prob(np.full((1, 9), 3))
    with pytest.raises(ValueError, match="X has 4 features, but BornMachine is expecting 9"):
        mps_born.log_prob(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1, got 0"):
        mps_born.sample(0)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1, got 2.5"):
        mps_born.sample(2.5)
    with pytest.raises(ValueError, match="missing holds site 9, outside the model's 9 sites"):
        mps_born.inpaint(bas[:2], [1, 9])
    with pytest.raises(ValueError, match=r"missing must be a boolean mask of shape \(9,\)"):
        mps_born.inpaint(bas[:2], np.ones(4, bool))
    with pytest.raises(ValueError, match=r"given must hold -1 \(free\) or integers"):
        mps_born.sample(2, given=np.full(9, 5))
    with pytest.raises(ValueError, match=r"given must have shape \(9,\) or \(n_samples, 9\)"):
        mps_born.sample(2, given=np.zeros(3, int))
    with pytest.raises(ValueError, match="sites holds 12, outside the model's 9 sites"):
        mps_born.marginal([0, 12])
    with pytest.raises(ValueError, match="sites must be distinct"):
        mps_born.marginal([1, 1])
    monkeypatch.setattr(born_module, "_MAX_MARGINAL", 4)
    with pytest.raises(ValueError, match=r"has 2\*\*3 entries; at most 4 are computed"):
        mps_born.marginal([0, 1, 2])
    with pytest.raises(ValueError, match="unknown structure 'peps'"):
        BornMachine("peps").fit(bas)
    with pytest.raises(ValueError, match="method='sweep' trains structure='mps'"):
        BornMachine("ttn", method="sweep").fit(bas)
    with pytest.raises(ValueError, match=r"unknown method 'dmrg'; valid methods"):
        BornMachine(method="dmrg").fit(bas)
    with pytest.raises(ValueError, match="image_shape .* does not hold n_features=9"):
        BornMachine("ttn", image_shape=(2, 2)).fit(bas)
    with pytest.raises(ValueError, match="image_shape applies to structure='ttn'"):
        BornMachine(image_shape=(3, 3)).fit(bas)
    with pytest.raises(ValueError, match="n_categories must be an integer >= 2, got 1"):
        BornMachine(n_categories=1).fit(bas)
    with pytest.raises(ValueError, match="bond_dim must be an integer >= 1"):
        BornMachine(bond_dim=0).fit(bas)
    with pytest.raises(ValueError, match="method='sweep' needs at least 2 features"):
        BornMachine(method="sweep").fit(bas[:, :1])


def test_categorical_data_and_progress(capsys):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, size=(30, 6))
    born = BornMachine(bond_dim=4, n_categories=3, max_epochs=2, verbose=1, random_state=0)
    born.fit(X, eval_set=X[:5])
    assert "BornMachine" in capsys.readouterr().err  # the tqdm bar
    assert {"val_loss", "loss"} <= set(born.history_[-1])
    assert born.sample(3, seed=0).max() <= 2


def test_mps_gradient_training_learns_and_stays_normalised(bas):
    """method='gradient' on an MPS (optax epochs on the unsupervised NLL): the exact NLL
    falls far below the uniform model's ln 512 toward ln 14, and p sums to one over all
    512 images by enumeration."""
    est = BornMachine(bond_dim=8, method="gradient", max_epochs=150, batch_size=14,
                      learning_rate=0.02, lr_schedule="constant", random_state=0)  # fmt: skip
    est.fit(bas)
    losses = [h["loss"] for h in est.history_]
    assert losses[-1] < losses[0] - 2.0
    assert est.nll(bas) < np.log(14) + 0.5, est.nll(bas)
    allx = np.array(list(itertools.product([0, 1], repeat=9)))
    np.testing.assert_allclose(np.exp(est.log_prob(allx)).sum(), 1.0, atol=1e-4)
