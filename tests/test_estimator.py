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

# Every scikit-learn check passes; none is expected to fail. scaling="minmax" lets
# the checks' arbitrary real-valued data reach the [0, 1] feature map.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks(
    [
        MPSClassifier(
            bond_dim=4, max_epochs=20, learning_rate=1e-2, scaling="minmax", random_state=0
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
    np.testing.assert_allclose(
        born.predict_proba(Xte[:5]), fhat**2 / (fhat**2).sum(1, keepdims=True), atol=1e-6
    )


def test_random_state_reproducible(digits_split):
    Xtr, Xte, ytr, _ = digits_split
    kw = dict(bond_dim=4, max_epochs=3, random_state=7, verbose=0)
    a = MPSClassifier(**kw).fit(Xtr, ytr).predict_proba(Xte)
    b = MPSClassifier(**kw).fit(Xtr, ytr).predict_proba(Xte)
    np.testing.assert_array_equal(a, b)


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
    with pytest.raises(ValueError, match=r"X has values in \[0, 16\].*scaling|clip"):
        MPSClassifier(verbose=0).fit(Xtr * 16, ytr)
    with pytest.raises(ValueError, match="outside the range"):
        fitted.predict(Xte * 2 + 0.5)
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
