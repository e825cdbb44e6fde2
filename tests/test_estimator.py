"""MPSClassifier: scikit-learn conformance, accuracy, persistence, interop and bad input."""

from __future__ import annotations

import json
import zipfile

import matplotlib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import qtn
from qtn import MPSClassifier
from qtn.data import load_digits
from qtn.models import dense_amplitudes

matplotlib.use("Agg")

# Every scikit-learn check passes with the default scaling="auto" (arbitrary real data
# is min-max scaled at fit, clipped at predict), except one, expected to fail:
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_sample_weight_equivalence_on_dense_data": (
        "minibatch training (as SGDClassifier): a sample of weight 2 is not the same as the "
        "sample twice, which can land in two minibatches; the calibration hold-out is drawn "
        "from different rows too"
    ),
    "check_methods_subset_invariance": (
        "float32 inference compiles one program per padded batch size, and XLA may round the "
        "last bit differently between them; a fitted temperature T < 1 multiplies the "
        "log-probabilities by 1/T, so the difference (~1e-6) can exceed the check's 1e-7 "
        "(it passes for many fits)"
    ),
}


@parametrize_with_checks(
    [MPSClassifier(bond_dim=4, max_epochs=20, learning_rate=1e-2, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks([MPSClassifier()], expected_failed_checks=lambda e: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks_default_parameters(estimator, check):
    """The same checks at the default parameters (about 4 minutes on 2 cores)."""
    check(estimator)


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(flatten=True)
    return train_test_split(X, y, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def fitted(digits_split):
    Xtr, Xte, ytr, yte = digits_split
    clf = MPSClassifier(bond_dim=16, learning_rate=3e-3, max_epochs=30, random_state=0, verbose=0)
    return clf.fit(Xtr, ytr, eval_set=(Xte, yte))


def test_digits_accuracy_at_bond_dim_16(fitted, digits_split):
    _, Xte, _, yte = digits_split
    acc = fitted.score(Xte, yte)
    assert acc >= 0.95, acc
    assert fitted.history_[-1]["val_accuracy"] == pytest.approx(acc, abs=1e-9)
    assert fitted.n_iter_ == 30 and {"loss", "accuracy", "seconds"} <= set(fitted.history_[0])


def test_predict_proba_and_amplitudes_consistent(fitted, digits_split):
    _, Xte, _, _ = digits_split
    proba = fitted.predict_proba(Xte[:50])
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-12)
    assert np.all(proba >= 0)
    fhat, logn = fitted.amplitudes(Xte[:5])
    np.testing.assert_allclose(np.linalg.norm(fhat, axis=1), 1.0, atol=1e-5)
    phi = qtn.get_feature_map("trigonometric")(Xte[:5].astype(np.float64))
    for b in range(5):
        ref = dense_amplitudes(fitted.params_.network, phi[b])
        # float32: components agree to 1e-5 of the vector's norm (small ones suffer cancellation)
        scale = np.linalg.norm(ref)
        np.testing.assert_allclose(np.exp(logn[b]) * fhat[b] / scale, ref / scale, atol=1e-5)
    born = MPSClassifier(**{**fitted.get_params(), "output": "born"})
    born.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    from qtn.estimators.calibration import apply_temperature

    rule = fhat**2 / (fhat**2).sum(1, keepdims=True)  # then the fitted temperature
    np.testing.assert_allclose(
        born.predict_proba(Xte[:5]), apply_temperature(rule, born.temperature_), atol=1e-6
    )


def test_random_state_reproducible(digits_split):
    Xtr, Xte, ytr, _ = digits_split
    kw = dict(bond_dim=4, max_epochs=3, random_state=7, verbose=0)
    a = MPSClassifier(**kw).fit(Xtr, ytr).predict_proba(Xte)
    b = MPSClassifier(**kw).fit(Xtr, ytr).predict_proba(Xte)
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # a 2x2 grid with 3-fold CV (about a minute); the scaler grid search stays
def test_string_labels_pipeline_grid_search_cv():
    X, y = load_digits(flatten=True)
    mask = np.isin(y, [3, 5])
    X, y = X[mask], np.where(y[mask] == 3, "three", "five")
    pipe = make_pipeline(
        MinMaxScaler(clip=True),
        MPSClassifier(bond_dim=4, max_epochs=10, learning_rate=1e-2, verbose=0, random_state=0),
    )
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.9
    grid = GridSearchCV(
        MPSClassifier(max_epochs=5, verbose=0, random_state=0), {"bond_dim": [2, 4]}, cv=2
    )
    grid.fit(X, y)
    assert set(grid.best_estimator_.classes_) == {"three", "five"}
    assert set(grid.predict(X[:10])) <= {"three", "five"}
    assert grid.decision_function(X[:4]).shape == (4,)


def test_sweep_method_estimator(digits_split):
    Xtr, Xte, ytr, yte = digits_split
    clf = MPSClassifier(bond_dim=8, method="sweep", max_epochs=1, random_state=0, verbose=0)
    clf.fit(Xtr, ytr)
    assert clf.score(Xte, yte) > 0.85
    ranks = clf.fit_info_["bond_ranks"]
    assert len(ranks) == 63 and ranks[0] <= 2 and max(ranks) <= 8


def test_progress_bar_and_silence(digits_split, capsys):
    Xtr, _, ytr, _ = digits_split
    MPSClassifier(bond_dim=2, max_epochs=2, verbose=1, random_state=0).fit(Xtr[:200], ytr[:200])
    err = capsys.readouterr().err
    assert "loss" in err and "accuracy" in err
    MPSClassifier(bond_dim=2, max_epochs=2, verbose=0, random_state=0).fit(Xtr[:200], ytr[:200])
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ persistence


def test_save_load_bit_exact(fitted, digits_split, tmp_path):
    _, Xte, _, _ = digits_split
    path = tmp_path / "model.npz"
    fitted.save(path)
    back = MPSClassifier.load(path)
    import jax

    for a, b in zip(
        jax.tree_util.tree_leaves(fitted.params_), jax.tree_util.tree_leaves(back.params_)
    ):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    np.testing.assert_array_equal(back.classes_, fitted.classes_)
    np.testing.assert_array_equal(back.predict_proba(Xte), fitted.predict_proba(Xte))
    assert back.get_params() == {**fitted.get_params()}
    assert back.history_ == fitted.history_


def test_save_load_strings_and_scaler(tmp_path):
    X, y = load_digits(flatten=True)
    X = X * 16.0  # raw 0..16 pixels, scaled inside
    labels = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
        dtype=object,
    )[y]
    clf = MPSClassifier(bond_dim=2, max_epochs=2, scaling="minmax", verbose=0, random_state=0).fit(
        X, labels
    )
    clf.save(tmp_path / "m.npz")
    back = MPSClassifier.load(tmp_path / "m.npz")
    assert back.classes_.dtype == object
    np.testing.assert_array_equal(back.predict(X[:100]), clf.predict(X[:100]))


def test_load_rejects_bad_files(fitted, tmp_path):
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, a=np.zeros(3))
    with pytest.raises(qtn.FormatError, match="not a qtn model file"):
        MPSClassifier.load(wrong)
    good = tmp_path / "good.npz"
    fitted.save(good)
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(qtn.FormatError, match="not a readable qtn model file"):
        MPSClassifier.load(trunc)
    newer = tmp_path / "newer.npz"
    with zipfile.ZipFile(good) as z:
        meta = json.loads(str(np.load(good)["__meta__"]))
        meta["format_version"] = 99
        arrays = {n[:-4]: np.load(good)[n[:-4]] for n in z.namelist() if n != "__meta__.npy"}
    np.savez(newer, __meta__=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(qtn.FormatError, match="format 99.*upgrade qtn"):
        MPSClassifier.load(newer)
    with pytest.raises(FileNotFoundError):
        MPSClassifier.load(tmp_path / "missing.npz")


def _rewrite(src, dst, edit_meta=None, edit_arrays=None):
    """Copy a model file with its header and arrays edited."""
    with np.load(src) as z:
        meta = json.loads(str(z["__meta__"]))
        arrays = {k: z[k] for k in z.files if k != "__meta__"}
    if edit_meta:
        meta = edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays)
    np.savez(dst, __meta__=np.array(json.dumps(meta)), **arrays)
    return dst


@pytest.mark.parametrize(
    "edit_meta,edit_arrays,match",
    [
        (lambda m: [1, 2], None, "header is not a JSON object"),
        (lambda m: {**m, "format_version": "2"}, None, "'format_version' must be an integer"),
        (
            lambda m: {k: v for k, v in m.items() if k != "n_features_in"},
            None,
            "'n_features_in' is missing",
        ),
        (lambda m: {**m, "n_features_in": "64"}, None, "'n_features_in' must be a int"),
        (lambda m: {**m, "n_features_in": 10}, None, "64 sites but n_features_in is 10"),
        (
            lambda m: {**m, "estimator_params": {**m["estimator_params"], "bond_dim": 0}},
            None,
            "'estimator_params' is invalid",
        ),
        (
            lambda m: {**m, "estimator_params": {**m["estimator_params"], "bond_dim": 2}},
            None,
            "bond dimension 16 > bond_dim 2",
        ),
        (
            lambda m: {**m, "estimator_params": {**m["estimator_params"], "nope": 1}},
            None,
            "'estimator_params' is invalid",
        ),
        (lambda m: {**m, "history": {}}, None, "'history' must be a list"),
        (lambda m: {**m, "classes_kind": 3}, None, "'classes_kind' must be"),
        (None, lambda a: a.pop("params/network.left"), "'params/network.left' is missing"),
        (
            None,
            lambda a: a.update({"params/network.left": a["params/network.left"][:3]}),
            "has shape .* the schema says",
        ),
        (None, lambda a: a.update({"classes": a["classes"][:5]}), "10 labels but 5 classes"),
        (lambda m: {**m, "params_schema": m["params_schema"][:2]}, None, "'params_schema' lists"),
    ],
)
def test_load_checks_every_header_field(fitted, tmp_path, edit_meta, edit_arrays, match):
    good = tmp_path / "good.npz"
    fitted.save(good)
    bad = _rewrite(good, tmp_path / "bad.npz", edit_meta, edit_arrays)
    with pytest.raises(qtn.FormatError, match=match):
        MPSClassifier.load(bad)


def test_load_reads_format_1_files(fitted, digits_split, tmp_path):
    """Files written before the MPS core (format 1: arrays left/label/right/log_temp)."""
    _, Xte, _, _ = digits_split
    good = tmp_path / "good.npz"
    fitted.save(good)

    def to_v1(meta):
        meta = {k: v for k, v in meta.items() if k != "params_schema"}
        return {**meta, "format_version": 1}

    def arrays_v1(a):
        for old, new in (
            ("left", "network.left"),
            ("label", "network.center"),
            ("right", "network.right"),
            ("log_temp", "log_temp"),
        ):
            a[old] = a.pop("params/" + new)

    v1 = _rewrite(good, tmp_path / "v1.npz", to_v1, arrays_v1)
    back = MPSClassifier.load(v1)
    np.testing.assert_array_equal(back.predict_proba(Xte), fitted.predict_proba(Xte))


# ------------------------------------------------------------------ interop


def test_to_quimb_matches_predictions(fitted, digits_split):
    import quimb.tensor as qtensor

    _, Xte, _, _ = digits_split
    x = Xte[0].astype(np.float64)
    phi = qtn.get_feature_map("trigonometric")(x)
    fhat, logn = fitted.amplitudes(Xte[:1])
    product = qtensor.MPS_product_state(list(phi))
    per_class = fitted.to_quimb(per_class=True)
    f = np.array([float(m.astype("float64") @ product) for m in per_class])
    scale = np.linalg.norm(f)
    np.testing.assert_allclose(f / scale, np.exp(logn[0]) * fhat[0] / scale, atol=1e-5)
    mps = fitted.to_quimb()
    assert "label" in mps[fitted.params_.network.center_site].inds
    with pytest.raises(TypeError, match="quimb MatrixProductState"):
        qtn.models.from_quimb(np.zeros(3))
    with pytest.raises(ValueError, match="smaller than the largest bond"):
        qtn.models.from_quimb(mps, bond_dim=2)
    back = qtn.models.from_quimb(mps)
    np.testing.assert_allclose(dense_amplitudes(back, phi) / scale, f / scale, atol=1e-6)
    with pytest.raises(TypeError, match="mps must be a qtn MPS"):
        qtn.models.to_quimb(np.zeros(3))


def test_entanglement_entropy_against_dense_svd(x64):
    import jax

    from qtn.models import entanglement_entropy, init_mps, to_dense

    p = init_mps(jax.random.key(0), 6, 3, n_labels=3, center=2, init_std=0.5)
    psi = to_dense(p)  # (2**6, L): the label after all sites
    psi = psi.reshape((2,) * 6 + (3,))
    psi = np.moveaxis(psi, -1, 3)  # the label leg belongs to site 2: (d, d, d, L, d, d, d)
    psi = psi / np.linalg.norm(psi)
    dims = psi.shape
    ent = []
    for bond in range(1, 6):
        cut = bond + (1 if bond > 2 else 0)
        s = np.linalg.svd(psi.reshape(int(np.prod(dims[:cut])), -1), compute_uv=False)
        pr = s**2 / np.sum(s**2)
        pr = pr[pr > 1e-15]
        ent.append(-np.sum(pr * np.log(pr)))
    np.testing.assert_allclose(entanglement_entropy(p), ent, atol=1e-10)


def test_entanglement_plot(fitted):
    ax = fitted.plot_entanglement()
    assert len(ax.lines) == 2 and ax.get_ylabel() == "entanglement entropy"
    s = fitted.entanglement_entropy()
    assert s.shape == (63,) and np.all(s >= -1e-9) and np.all(s <= np.log(16) + 1e-6)


# ------------------------------------------------------------------ bad input


def test_bad_input_errors(fitted, digits_split):
    Xtr, Xte, ytr, _ = digits_split
    bad = Xtr[:20].copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        MPSClassifier(verbose=0).fit(bad, ytr[:20])
    bad[0, 3] = np.inf
    with pytest.raises(ValueError, match="X contains inf"):
        MPSClassifier(verbose=0).fit(bad, ytr[:20])
    with pytest.raises(ValueError, match="X has 10 features, but MPSClassifier is expecting 64"):
        fitted.predict(Xte[:, :10])
    with pytest.raises(ValueError, match="1 class.*at least two classes"):
        MPSClassifier(verbose=0).fit(Xtr[:5], np.zeros(5))
    with pytest.raises(ValueError, match="bond_dim must be an integer >= 1"):
        MPSClassifier(bond_dim=0, verbose=0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="unknown method 'dmrg'.*gradient"):
        MPSClassifier(method="dmrg", verbose=0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="unknown loss 'hinge'.*cross_entropy"):
        MPSClassifier(loss="hinge", verbose=0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        MPSClassifier(lr_schedule="step", verbose=0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="clip_norm must be a positive number or None"):
        MPSClassifier(clip_norm=0, verbose=0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="dtype must be one of"):
        MPSClassifier(dtype="float16", verbose=0).fit(Xtr, ytr)


def test_float64_training(digits_split):
    import jax

    Xtr, Xte, ytr, yte = digits_split
    clf = MPSClassifier(
        bond_dim=4, max_epochs=10, learning_rate=1e-2, dtype="float64", verbose=0, random_state=0
    ).fit(Xtr, ytr)
    assert clf.params_.network.left.dtype == np.float64
    assert not jax.config.jax_enable_x64  # switched on only inside fit and predict
    assert clf.score(Xte, yte) > 0.8
    fhat, logn = clf.amplitudes(Xte[:3])
    assert fhat.dtype == np.float64
    phi = qtn.get_feature_map("trigonometric")(Xte[:3].astype(np.float64))
    for b in range(3):
        ref = dense_amplitudes(clf.params_.network, phi[b])
        np.testing.assert_allclose(np.exp(logn[b]) * fhat[b], ref, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ calibration


def test_default_probabilities_are_calibrated(digits_split):
    """Default settings on the digits test split: log loss <= 0.10, ECE <= 0.02."""
    from sklearn.metrics import log_loss

    from qtn.metrics import expected_calibration_error

    Xtr, Xte, ytr, yte = digits_split
    clf = MPSClassifier(random_state=0).fit(Xtr, ytr)
    proba = clf.predict_proba(Xte)
    assert clf.score(Xte, yte) >= 0.97
    assert log_loss(yte, proba) <= 0.10, log_loss(yte, proba)
    assert expected_calibration_error(proba, yte) <= 0.02
    assert clf.fit_info_["n_held_out"] == 270 and clf.fit_info_["n_train"] == 1077
    assert 0 < clf.temperature_ < 1  # the learned softmax temperature stayed too small
    # the temperature changes probabilities, never predictions
    raw = clf._raw_proba(Xte)
    np.testing.assert_array_equal(proba.argmax(1), raw.argmax(1))


def test_fit_temperature_against_a_grid():
    from qtn.estimators.calibration import T_BOUNDS, apply_temperature, fit_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 4)) * 3
    y = np.array([rng.choice(4, p=np.exp(z / 2) / np.exp(z / 2).sum()) for z in logits])
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    t = fit_temperature(proba, y)

    def nll(temp):
        q = apply_temperature(proba, temp)
        return -np.mean(np.log(q[np.arange(len(y)), y]))

    grid = np.exp(np.linspace(np.log(0.2), np.log(20), 4001))
    best = grid[np.argmin([nll(g) for g in grid])]
    assert t == pytest.approx(best, rel=2e-3)
    assert t == pytest.approx(2.0, rel=0.3)  # the labels were drawn at temperature 2
    # weights: weight 2 equals the sample twice
    w = np.ones(len(y))
    w[:50] = 2
    dup = fit_temperature(np.concatenate([proba, proba[:50]]), np.concatenate([y, y[:50]]))
    assert fit_temperature(proba, y, w) == pytest.approx(dup, rel=1e-5)
    np.testing.assert_allclose(apply_temperature(proba, 1.0), proba, atol=1e-12)
    assert T_BOUNDS[0] <= fit_temperature(np.eye(3)[[0, 1, 2]] * 0.5 + 0.1, [0, 1, 2]) <= 1
    with pytest.raises(ValueError, match="proba must be"):
        fit_temperature(proba, y[:10])


def test_calibration_off_and_too_few_samples(digits_split):
    Xtr, _, ytr, _ = digits_split
    off = MPSClassifier(bond_dim=2, max_epochs=1, calibration=None, random_state=0).fit(Xtr, ytr)
    assert off.temperature_ == 1.0 and off.fit_info_["n_train"] == len(Xtr)
    tiny = MPSClassifier(bond_dim=2, max_epochs=1, random_state=0).fit(Xtr[:12], ytr[:12])
    assert tiny.temperature_ == 1.0 and tiny.fit_info_["calibration"].startswith("skipped")
    with pytest.raises(ValueError, match="unknown calibration 'platt'"):
        MPSClassifier(calibration="platt").fit(Xtr, ytr)
    with pytest.raises(ValueError, match="calibration_fraction must be in"):
        MPSClassifier(calibration_fraction=1.5).fit(Xtr, ytr)


# ------------------------------------------------------------------ pipelines and ranges


def test_grid_search_with_scaler_gives_finite_scores():
    """A validation fold scaled by the training fold's scaler leaves [0, 1]: clipped."""
    from sklearn.pipeline import Pipeline

    X, y = load_digits(flatten=True)
    X, y = X[np.isin(y, [3, 5])], y[np.isin(y, [3, 5])]
    m = MPSClassifier(max_epochs=10, learning_rate=1e-2, random_state=0)
    pipe = Pipeline([("s", MinMaxScaler()), ("m", m)])
    grid = GridSearchCV(pipe, {"m__bond_dim": [4]}, cv=2).fit(X * 16, y)
    scores = grid.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and scores.max() > 0.8


def test_out_of_range_features_clipped_at_predict(fitted, digits_split):
    _, Xte, _, _ = digits_split
    wild = Xte[:20] * 3 - 1  # values in [-1, 2]
    np.testing.assert_array_equal(
        fitted.predict_proba(wild), fitted.predict_proba(np.clip(wild, 0, 1))
    )


def test_range_policy_at_fit(digits_split):
    Xtr, _, ytr, _ = digits_split
    kw = dict(bond_dim=2, max_epochs=1, random_state=0)
    inside = MPSClassifier(**kw).fit(Xtr, ytr)
    assert inside.scaler_ is None  # data in [0, 1] are used as they are
    auto = MPSClassifier(**kw).fit(Xtr * 16 - 3, ytr)
    assert auto.scaler_ is not None
    np.testing.assert_array_equal(auto.predict(Xtr[:50] * 16 - 3), inside.predict(Xtr[:50]))
    with pytest.raises(ValueError, match=r"X has values in \[-3, 13\]") as err:
        MPSClassifier(scaling=None, **kw).fit(Xtr * 16 - 3, ytr)
    msg = str(err.value)
    assert "scaling='auto'" in msg and "scaling='minmax'" in msg and "clip=True)" in msg
    assert "pass clip=True" not in msg  # an option MPSClassifier does not have
    with pytest.raises(ValueError, match="unknown scaling 'zscore'; valid values"):
        MPSClassifier(scaling="zscore").fit(Xtr, ytr)


# ------------------------------------------------------------------ training options


def test_sample_weight(digits_split):
    Xtr, Xte, ytr, _ = digits_split
    kw = dict(bond_dim=4, max_epochs=2, random_state=0)
    one = dict(bond_dim=2, max_epochs=1, random_state=0)
    a = MPSClassifier(**one).fit(Xtr, ytr).predict_proba(Xte[:20])
    b = MPSClassifier(**one).fit(Xtr, ytr, sample_weight=np.ones(len(ytr))).predict_proba(Xte[:20])
    np.testing.assert_array_equal(a, b)
    w = np.where(ytr == 3, 20.0, 1.0)  # class 3 weighted up: predicted more often
    base = MPSClassifier(calibration=None, **kw).fit(Xtr, ytr)
    heavy = MPSClassifier(calibration=None, **kw).fit(Xtr, ytr, sample_weight=w)
    assert np.sum(heavy.predict(Xte) == 3) > np.sum(base.predict(Xte) == 3)
    clf = MPSClassifier(method="sweep", loss="mse", local_steps=2, calibration=None, **one)
    clf.fit(Xtr, ytr, sample_weight=w)
    assert np.isfinite(clf.history_[-1]["loss"])


def test_zero_weight_rows_take_no_part_in_the_scaler():
    # a row of weight 0 is as if removed: it does not stretch the min-max scaler either
    rng = np.random.default_rng(0)
    X = rng.random((12, 4))
    X[0] = 5.0  # an outlier that only the zero-weight row carries
    w = np.ones(12)
    w[0] = 0.0
    clf = MPSClassifier(scaling="minmax")
    clf._fit_scaling(X, w)
    ref = MPSClassifier(scaling="minmax")
    ref._fit_scaling(X[1:])
    np.testing.assert_array_equal(clf.scaler_.data_max_, ref.scaler_.data_max_)
    np.testing.assert_array_equal(clf.scaler_.data_min_, X[1:].min(axis=0))


def test_sample_weight_bad_input(digits_split):
    Xtr, _, ytr, _ = digits_split
    clf = MPSClassifier(bond_dim=2, max_epochs=1)
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        clf.fit(Xtr, ytr, sample_weight=-np.ones(len(ytr)))
    with pytest.raises(ValueError, match="sample_weight.shape == \\(10,\\), expected"):
        clf.fit(Xtr, ytr, sample_weight=np.ones(10))
    with pytest.raises(ValueError, match="sample_weight leaves 1 class with positive weight"):
        clf.fit(Xtr, ytr, sample_weight=(ytr == 0).astype(float))


def test_warm_start_continues(digits_split):
    Xtr, _, ytr, _ = digits_split
    clf = MPSClassifier(bond_dim=4, max_epochs=3, warm_start=True, calibration=None, random_state=0)
    clf.fit(Xtr, ytr)
    first = [h["loss"] for h in clf.history_]
    clf.fit(Xtr, ytr)
    assert clf.n_iter_ == 6 and clf.fit_info_["warm_start"]
    # the second fit starts where the first ended, far below a fresh start
    assert clf.history_[3]["loss"] < first[0] and clf.history_[3]["loss"] < 1.2 * first[-1]
    clf.set_params(bond_dim=6)  # a larger bond dimension pads the bonds
    clf.fit(Xtr, ytr)
    assert clf.params_.network.bond_dim == 6 and clf.n_iter_ == 9
    with pytest.raises(ValueError, match="warm_start=True: y has classes"):
        clf.fit(Xtr[ytr < 5], ytr[ytr < 5])
    with pytest.raises(ValueError, match="X has 10 features, but MPSClassifier is expecting 64"):
        clf.fit(Xtr[:, :10], ytr)
    clf.set_params(bond_dim=2)
    with pytest.raises(ValueError, match="bond_dim=2 is below the fitted model's 6"):
        clf.fit(Xtr, ytr)
    with pytest.raises(ValueError, match="warm_start must be a bool"):
        MPSClassifier(warm_start="yes").fit(Xtr, ytr)


def test_partial_fit_streams_batches(digits_split):
    Xtr, Xte, ytr, yte = digits_split
    clf = MPSClassifier(bond_dim=8, learning_rate=3e-3, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(Xtr[:100], ytr[:100])
    classes = np.unique(ytr)
    for _ in range(4):
        for s in range(0, len(Xtr), 450):
            clf.partial_fit(Xtr[s : s + 450], ytr[s : s + 450], classes=classes)
    assert clf.n_iter_ == 12 and clf.fit_info_["partial_fit_calls"] == 12
    assert clf.score(Xte, yte) > 0.85
    assert clf.temperature_ != 1.0  # refitted on each new batch before training on it
    with pytest.raises(ValueError, match="y has labels \\[42\\] not among the classes"):
        clf.partial_fit(Xtr[:5], np.array([1, 2, 42, 1, 2]))
    with pytest.raises(ValueError, match="differs from the classes of the first call"):
        clf.partial_fit(Xtr[:5], ytr[:5], classes=[0, 1])
    with pytest.raises(ValueError, match="X has 10 features"):
        clf.partial_fit(Xtr[:5, :10], ytr[:5])


@pytest.mark.parametrize("method", ["gradient", "sweep"])
def test_fit_info_and_history_for_both_methods(digits_split, method):
    Xtr, _, ytr, _ = digits_split
    loss = "mse" if method == "sweep" else "cross_entropy"
    clf = MPSClassifier(bond_dim=4, method=method, loss=loss, max_epochs=2, random_state=0)
    clf.fit(Xtr, ytr)
    info = clf.fit_info_
    for key in ("method", "loss", "n_train", "n_held_out", "learning_rate", "epochs", "seconds",
                "calibration", "bond_ranks"):  # fmt: skip
        assert key in info, key
    assert info["method"] == method and info["epochs"] == 2 == len(clf.history_)
    assert len(info["bond_ranks"]) == 63 and max(info["bond_ranks"]) <= 4
    assert all({"loss", "accuracy", "seconds"} <= set(h) for h in clf.history_)
    if method == "sweep":
        assert info["local_solver"] == "conjugate_gradient" and "max_discarded_weight" in info


def test_save_load_keeps_temperature_and_auto_scaler(digits_split, tmp_path):
    Xtr, Xte, ytr, _ = digits_split
    clf = MPSClassifier(bond_dim=4, max_epochs=2, random_state=0).fit(Xtr * 16, ytr)
    assert clf.scaler_ is not None and clf.temperature_ != 1.0
    clf.save(tmp_path / "m.npz")
    back = MPSClassifier.load(tmp_path / "m.npz")
    assert back.temperature_ == clf.temperature_
    np.testing.assert_array_equal(back.predict_proba(Xte * 16), clf.predict_proba(Xte * 16))


# ------------------------------------------------------------------ quimb


def test_from_quimb_round_trip(fitted, digits_split):
    _, Xte, _, _ = digits_split
    q = fitted.to_quimb()
    back = MPSClassifier.from_quimb(
        q, classes=fitted.classes_, log_temp=float(fitted.params_.log_temp)
    )
    f1, l1 = fitted.amplitudes(Xte[:30])
    f2, l2 = back.amplitudes(Xte[:30])
    np.testing.assert_allclose(f2, f1, atol=2e-5)
    np.testing.assert_allclose(l2, l1, atol=1e-3)
    np.testing.assert_array_equal(back.predict(Xte), fitted.predict(Xte))
    assert back.n_features_in_ == 64 and back.label_site == fitted.params_.network.center_site
    assert back.bond_dim == 16 and back.temperature_ == 1.0
    # the per-class form (labels on the last site) computes the same amplitudes
    per = MPSClassifier.from_quimb(fitted.to_quimb(per_class=True), classes=fitted.classes_)
    np.testing.assert_allclose(per.amplitudes(Xte[:5])[0], f1[:5], atol=2e-5)
    assert per.label_site == 63
    # string labels, and the bad inputs
    names = np.array([f"digit {c}" for c in fitted.classes_], dtype=object)
    named = MPSClassifier.from_quimb(q, classes=names)
    assert set(named.predict(Xte[:10])) <= set(names)
    with pytest.raises(ValueError, match="classes must list 10 labels"):
        MPSClassifier.from_quimb(q, classes=[0, 1])
    with pytest.raises(ValueError, match="classes must be distinct"):
        MPSClassifier.from_quimb(q, classes=[0] * 10)
    with pytest.raises(ValueError, match="has no index named 'label'"):
        MPSClassifier.from_quimb(qtn.random_mps(0, 5, 2).to_quimb(), classes=[0, 1])
    with pytest.raises(TypeError, match="quimb MatrixProductState"):
        MPSClassifier.from_quimb(np.zeros(3), classes=[0, 1])


def test_qtn_to_quimb_dispatches_on_type(fitted):
    c = qtn.Circuit(3).h(0).cx(0, 1).ry(0.3, 2).rzz(0.7, 1, 2).u(0.1, 0.2, 0.3, 0)
    c.global_phase = 0.4
    from qtn.simulation.dense import statevector

    np.testing.assert_allclose(qtn.to_quimb(c).to_dense().ravel(), statevector(c), atol=1e-12)
    sym = qtn.Circuit(2).ry(qtn.Trainable(0), 0).ry(qtn.Feature(0), 1).cx(0, 1)
    got = qtn.to_quimb(sym, params=[0.5], data=[0.25]).to_dense().ravel()
    np.testing.assert_allclose(got, statevector(sym.bind([0.5], [0.25])), atol=1e-12)
    with pytest.raises(ValueError, match="unbound Trainable angles; pass params="):
        qtn.to_quimb(sym)
    with pytest.raises(ValueError, match="operation 1 is measure.*pure states"):
        qtn.to_quimb(qtn.Circuit(1).h(0).measure(0, 0))
    with pytest.raises(TypeError, match="takes a qtn MPS, a qtn Circuit or a fitted estimator"):
        qtn.to_quimb(np.zeros(3))
    assert qtn.to_quimb(qtn.random_mps(0, 5, 3)).max_bond() == 3
    assert "label" in qtn.to_quimb(fitted)[fitted.params_.network.center_site].inds
