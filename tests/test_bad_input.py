"""Bad input is never silent: a table of wrong arguments across the public API.

Each row calls one public function with one wrong argument and checks the
exception type and that the message names the argument (and, where it
matters, what it got). The rows run in milliseconds: fitted models, files and
simulators are built once per module.
"""

from __future__ import annotations

import json
import math
import re
import zipfile

import numpy as np
import pytest

import qtn
from qtn import Circuit, Feature, Trainable
from qtn.errors import ContractionTooLargeError, FormatError, QtnError

NAN, INF = float("nan"), float("inf")


# ----------------------------------------------------------------------------- shared objects


def _circuit():
    """2 qubits, 1 feature, 2 trainable angles."""
    return Circuit(2).ry(Feature(0), 0).ry(Trainable(0), 1).cx(0, 1).rz(Trainable(1), 0)


@pytest.fixture(scope="module")
def sim():
    return qtn.simulate(_circuit(), optimizer="greedy")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A small fitted MPSClassifier, its training data and its saved file."""
    rng = np.random.default_rng(0)
    X = rng.random((60, 4))
    y = (X[:, 0] > 0.5).astype(int)
    est = qtn.MPSClassifier(bond_dim=2, max_epochs=1, batch_size=32, random_state=0,
                            calibration=None)  # fmt: skip
    est.fit(X, y)
    path = tmp_path_factory.mktemp("model") / "model.npz"
    est.save(path)
    return est, X, y, path


@pytest.fixture(scope="module")
def runner():
    from qtn.execution import Runner

    c = _circuit()
    c.measure_all()
    return Runner(c, seed=0)


def _rewrite_header(src, dst, edit):
    """Copy the model file ``src`` to ``dst`` with ``edit(header) -> header`` applied."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays.pop("__meta__")))
    header = edit(header)
    with open(dst, "wb") as fh:
        np.savez(fh, __meta__=np.array(json.dumps(header)), **arrays)
    return dst


def _set(field, value):
    def edit(h):
        h[field] = value
        return h

    return edit


def _params_of(field, value):
    def edit(h):
        h["estimator_params"][field] = value
        return h

    return edit


# ----------------------------------------------------------------------------- the table
#
# Each row: (id, call(ctx), exception type, regex the message must match). ``ctx`` gives
# the shared objects lazily (``ctx.sim``, ``ctx.fitted``, ``ctx.runner``, ``ctx.tmp``).


def _sim_probs(**kw):
    return lambda ctx: ctx.sim.probs([0], **{"params": [0.1, 0.2], "data": [0.3], **kw})


def _bind(**kw):
    return lambda ctx: _circuit().bind(**kw)


def _to_qiskit(**kw):
    return lambda ctx: qtn.to_qiskit(_circuit(), **kw)


def _fmap(name, x, **kw):
    return lambda ctx: qtn.get_feature_map(name, **kw)(x)


def _est(X=None, y=None, **params):
    def call(ctx):
        _, X0, y0, _ = ctx.fitted
        est = qtn.MPSClassifier(**{"bond_dim": 2, "max_epochs": 1, "random_state": 0, **params})
        return est.fit(X0 if X is None else X, y0 if y is None else y)

    return call


def _predict(X):
    return lambda ctx: ctx.fitted[0].predict(X)


def _load(edit):
    def call(ctx):
        src = ctx.fitted[3]
        return qtn.MPSClassifier.load(_rewrite_header(src, ctx.tmp / "bad.npz", edit))

    return call


def _noisy_probs(**rule):
    def call(ctx):
        from qtn.noise import NoiseModel, depolarizing

        nm = NoiseModel().add_gate_noise(depolarizing(0.01), **rule)
        return qtn.simulate(_circuit(), noise=nm, optimizer="greedy").probs(
            [0], params=[0.1, 0.2], data=[0.3]
        )

    return call


def _finetune(loss=None, **kw):
    def call(ctx):
        from qtn.execution import finetune

        f = loss or (lambda p: float(np.sum(np.asarray(p) ** 2)))
        return finetune(ctx.runner, f, np.zeros(2), data=[0.3], shots=16, maxiter=1,
                        verbose=0, seed=0, **kw)  # fmt: skip

    return call


def _sample(shots, **kw):
    return lambda ctx: ctx.sim.sample(shots, params=[0.1, 0.2], data=[0.3], **kw)


X4 = np.random.default_rng(1).random((5, 4))
X4_NAN = X4.copy()
X4_NAN[1, 2] = NAN
X4_INF = X4.copy()
X4_INF[0, 0] = INF

CASES = [
    # -- angles: constants and Trainable / Feature fields
    ("ry-nan-constant", lambda ctx: Circuit(1).ry(NAN, 0), ValueError, r"angle 0 of gate 'ry'"),
    ("rz-inf-constant", lambda ctx: Circuit(1).rz(INF, 0), ValueError, r"angle 0 of gate 'rz'"),
    (
        "u-nan-lambda",
        lambda ctx: Circuit(1).u(0.1, 0.2, NAN, 0),
        ValueError,
        r"angle 2 of gate 'u3?'",
    ),
    ("ry-string-angle", lambda ctx: Circuit(1).ry("pi", 0), ValueError, r"angle 0 of gate 'ry'"),
    ("ry-complex-angle", lambda ctx: Circuit(1).ry(1j, 0), ValueError, r"angle 0 of gate 'ry'"),
    ("trainable-scale-nan", lambda ctx: Trainable(0, scale=NAN), ValueError, r"Trainable scale"),
    ("trainable-offset-inf", lambda ctx: Trainable(0, offset=INF), ValueError, r"Trainable offset"),
    ("trainable-index-negative", lambda ctx: Trainable(-1), ValueError, r"Trainable index"),
    ("trainable-index-float", lambda ctx: Trainable(1.5), ValueError, r"Trainable index"),
    ("feature-scale-nan", lambda ctx: Feature(0, scale=NAN), ValueError, r"Feature scale"),
    ("feature-scale-complex", lambda ctx: Feature(0, scale=1j), ValueError, r"Feature scale"),
    ("global-phase-nan", lambda ctx: Circuit(1, global_phase=NAN), ValueError, r"global_phase"),
    # -- qubit arguments
    ("gate-qubit-string", lambda ctx: Circuit(2).h("0"), ValueError, r"qubits must be integers"),
    ("gate-qubit-negative", lambda ctx: Circuit(2).h(-1), ValueError, r"qubit indices"),
    ("gate-qubit-outside", lambda ctx: Circuit(2).h(2), ValueError, r"qubit"),
    ("n-qubits-zero", lambda ctx: Circuit(0), ValueError, r"n_qubits"),
    ("n-qubits-string", lambda ctx: Circuit("2"), ValueError, r"n_qubits"),
    (
        "probs-qubits-all",
        lambda ctx: ctx.sim.probs("all", params=[0.1, 0.2], data=[0.3]),
        ValueError,
        r"qubits",
    ),
    (
        "probs-qubits-outside",
        lambda ctx: ctx.sim.probs([2], params=[0.1, 0.2], data=[0.3]),
        ValueError,
        r"qubits",
    ),
    (
        "probs-qubits-repeated",
        lambda ctx: ctx.sim.probs([0, 0], params=[0.1, 0.2], data=[0.3]),
        ValueError,
        r"qubits",
    ),
    (
        "expectation-bad-letter",
        lambda ctx: ctx.sim.expectation("ZQ", params=[0.1, 0.2], data=[0.3]),
        ValueError,
        r"paulis",
    ),
    (
        "amplitude-bits-2",
        lambda ctx: ctx.sim.amplitude([0, 2], params=[0.1, 0.2], data=[0.3]),
        ValueError,
        r"bits",
    ),
    # -- simulator params / data
    ("probs-params-nan", _sim_probs(params=[NAN, 0.2]), ValueError, r"params contains NaN"),
    ("probs-params-inf", _sim_probs(params=[0.1, -INF]), ValueError, r"params contains NaN or inf"),
    ("probs-data-nan", _sim_probs(data=[[0.3], [NAN]]), ValueError, r"data contains NaN"),
    (
        "probs-params-complex",
        _sim_probs(params=[0.1 + 1j, 0.2]),
        ValueError,
        r"params must be real numbers",
    ),
    ("probs-data-complex", _sim_probs(data=[0.3 + 0j]), ValueError, r"data must be real numbers"),
    (
        "probs-params-strings",
        _sim_probs(params=["a", "b"]),
        ValueError,
        r"params must be real numbers, got strings",
    ),
    (
        "probs-data-object",
        _sim_probs(data=np.array([0.3, None], dtype=object)),
        ValueError,
        r"data must be real numbers, got dtype object",
    ),
    ("probs-params-short", _sim_probs(params=[0.1]), ValueError, r"params has 1 values"),
    ("probs-params-3d", _sim_probs(params=np.zeros((1, 1, 2))), ValueError, r"params must have"),
    (
        "probs-batch-mismatch",
        _sim_probs(params=np.zeros((3, 2)), data=np.zeros((4, 1))),
        ValueError,
        r"params, data and state batch sizes",
    ),
    (
        "expectation-params-nan",
        lambda ctx: ctx.sim.expectation("ZI", params=[NAN, 0], data=[0]),
        ValueError,
        r"params contains NaN",
    ),
    ("sample-shots-zero", _sample(0), ValueError, r"shots must be a positive integer"),
    ("sample-shots-string", _sample("10"), ValueError, r"shots must be a positive integer"),
    (
        "sample-params-nan",
        lambda ctx: ctx.sim.sample(4, params=[NAN, 0.2], data=[0.3]),
        ValueError,
        r"params contains NaN",
    ),
    (
        "sample-batched-data",
        lambda ctx: ctx.sim.sample(4, params=[0.1, 0.2], data=[[0.3]]),
        ValueError,
        r"data must be 1-D",
    ),
    ("simulate-dtype", lambda ctx: qtn.simulate(_circuit(), dtype="float16"), ValueError, r"dtype"),
    (
        "simulate-interface",
        lambda ctx: qtn.simulate(_circuit(), interface="torch"),
        ValueError,
        r"interface",
    ),
    ("simulate-not-circuit", lambda ctx: qtn.simulate("bell"), TypeError, r"circuit"),
    (
        "max-memory-negative",
        lambda ctx: qtn.simulate(_circuit(), max_memory="-1GB"),
        ValueError,
        r"max_memory",
    ),
    (
        "max-memory-zero",
        lambda ctx: qtn.simulate(_circuit(), max_memory=0),
        ValueError,
        r"max_memory",
    ),
    (
        "max-memory-unit",
        lambda ctx: qtn.simulate(_circuit(), max_memory="4 parsecs"),
        ValueError,
        r"max_memory",
    ),
    (
        "max-memory-nan",
        lambda ctx: qtn.simulate(_circuit(), max_memory=NAN),
        ValueError,
        r"max_memory",
    ),
    # -- bind and export
    ("bind-params-nan", _bind(params=[NAN, 0.0]), ValueError, r"params contains NaN"),
    ("bind-data-inf", _bind(data=[INF]), ValueError, r"data contains NaN or inf"),
    ("bind-params-complex", _bind(params=[1j, 0.0]), ValueError, r"params must be real numbers"),
    ("bind-data-strings", _bind(data=["x"]), ValueError, r"data must be real numbers"),
    ("to-qiskit-params-nan", _to_qiskit(params=[NAN, 0.0]), ValueError, r"params contains NaN"),
    ("to-qiskit-data-inf", _to_qiskit(data=[INF]), ValueError, r"data contains NaN or inf"),
    (
        "to-qiskit-params-complex",
        _to_qiskit(params=[0.0, 2j]),
        ValueError,
        r"params must be real numbers",
    ),
    (
        "to-qiskit-params-strings",
        _to_qiskit(params=["a", "b"]),
        ValueError,
        r"params must be real numbers",
    ),
    ("to-qiskit-params-short", _to_qiskit(params=[0.0]), ValueError, r"params"),
    # -- feature maps
    (
        "fmap-trig-complex",
        _fmap("trigonometric", np.array([0.5 + 0.1j])),
        ValueError,
        r"x must be real numbers, got complex",
    ),
    ("fmap-trig-nan", _fmap("trigonometric", np.array([0.5, NAN])), ValueError, r"x contains NaN"),
    (
        "fmap-trig-strings",
        _fmap("trigonometric", np.array(["0.5"])),
        ValueError,
        r"x must be numeric",
    ),
    (
        "fmap-trig-out-of-range",
        _fmap("trigonometric", np.array([2.0])),
        ValueError,
        r"x has values in",
    ),
    (
        "fmap-spin-complex",
        _fmap("spin_coherent", np.array([0.2j])),
        ValueError,
        r"x must be real numbers, got complex",
    ),
    (
        "fmap-onehot-complex",
        _fmap("one_hot", np.array([1 + 0j])),
        ValueError,
        r"x must be real numbers, got complex",
    ),
    (
        "fmap-onehot-fraction",
        _fmap("one_hot", np.array([0.5])),
        ValueError,
        r"x must hold integers",
    ),
    ("fmap-unknown", lambda ctx: qtn.get_feature_map("fourier"), ValueError, r"fourier"),
    (
        "angle-encoding-complex",
        lambda ctx: qtn.angle_encoding(np.array([0.1j])),
        ValueError,
        r"x must be real numbers, got complex",
    ),
    # -- noise rules on qubits that do not exist
    (
        "noise-qubit-outside",
        _noisy_probs(gates=["ry"], qubits=[5]),
        ValueError,
        r"qubits.*\[5\].*2 qubits",
    ),
    ("noise-qubit-negative", _noisy_probs(gates=["ry"], qubits=[-1]), ValueError, r"qubits.*-1"),
    ("noise-qubit-string", _noisy_probs(qubits=["a"]), ValueError, r"qubits"),
    ("noise-unknown-gate", _noisy_probs(gates=["foo"]), ValueError, r"gates: unknown"),
    (
        "readout-qubit-outside",
        lambda ctx: qtn.simulate(
            _circuit(),
            noise=qtn.NoiseModel().add_readout_matrix([[0.9, 0.1], [0.1, 0.9]], [3]),
            optimizer="greedy",
        ).probs([0], params=[0.1, 0.2], data=[0.3]),
        ValueError,
        r"qubits.*\[3\].*2 qubits",
    ),
    (
        "noise-to-qiskit-outside",
        lambda ctx: qtn.to_qiskit(
            _circuit(),
            noise=qtn.NoiseModel().add_gate_noise(
                __import__("qtn.noise", fromlist=["x"]).depolarizing(0.01), ["cx"], qubits=[0, 7]
            ),
        ),
        ValueError,
        r"qubits.*7",
    ),
    # -- estimators: fit / predict inputs
    ("fit-X-nan", _est(X=X4_NAN, y=np.arange(5) % 2), ValueError, r"Input X contains NaN"),
    ("fit-X-inf", _est(X=X4_INF, y=np.arange(5) % 2), ValueError, r"Input X contains infinity"),
    (
        "fit-X-complex",
        _est(X=X4 + 1j, y=np.arange(5) % 2),
        ValueError,
        r"X must be real numbers: Complex data",
    ),
    (
        "fit-X-strings",
        _est(X=np.array([["a"] * 4] * 5), y=np.arange(5) % 2),
        ValueError,
        r"X must be real numbers, got strings",
    ),
    ("fit-y-one-class", _est(X=X4, y=np.zeros(5)), ValueError, r"class"),
    ("fit-bond-dim-zero", _est(bond_dim=0), ValueError, r"bond_dim"),
    ("fit-learning-rate-nan", _est(learning_rate=NAN), ValueError, r"learning_rate"),
    ("fit-batch-size-zero", _est(batch_size=0), ValueError, r"batch_size"),
    ("fit-loss-unknown", _est(loss="hinge2"), ValueError, r"loss"),
    ("predict-X-nan", _predict(X4_NAN), ValueError, r"Input X contains NaN"),
    ("predict-X-complex", _predict(X4 * 1j), ValueError, r"X must be real numbers: Complex data"),
    ("predict-X-wrong-width", _predict(X4[:, :3]), ValueError, r"features"),
    # -- model files: every header field checked at load, nothing deferred to predict
    ("load-header-not-object", _load(lambda h: [h]), FormatError, r"header.*JSON object"),
    (
        "load-format-version-string",
        _load(_set("format_version", "2")),
        FormatError,
        r"format_version",
    ),
    (
        "load-format-version-float",
        _load(_set("format_version", 2.0)),
        FormatError,
        r"format_version",
    ),
    ("load-format-version-newer", _load(_set("format_version", 99)), FormatError, r"format 99"),
    ("load-format-kind", _load(_set("format", "BornMachine")), FormatError, r"BornMachine"),
    ("load-n-features-string", _load(_set("n_features_in", "4")), FormatError, r"n_features_in"),
    (
        "load-n-features-mismatch",
        _load(_set("n_features_in", 5)),
        FormatError,
        r"n_features_in|params_schema|sites",
    ),
    ("load-n-features-zero", _load(_set("n_features_in", 0)), FormatError, r"n_features_in"),
    ("load-bond-dim-smaller", _load(_params_of("bond_dim", 1)), FormatError, r"bond_dim"),
    ("load-bond-dim-string", _load(_params_of("bond_dim", "2")), FormatError, r"bond_dim"),
    ("load-classes-kind", _load(_set("classes_kind", "set")), FormatError, r"classes_kind"),
    ("load-temperature-nan", _load(_set("temperature", "nan")), FormatError, r"temperature"),
    ("load-history-not-list", _load(_set("history", {"a": 1})), FormatError, r"history"),
    (
        "load-estimator-params-list",
        _load(_set("estimator_params", [])),
        FormatError,
        r"estimator_params",
    ),
    (
        "load-missing-n-features",
        _load(lambda h: {k: v for k, v in h.items() if k != "n_features_in"}),
        FormatError,
        r"n_features_in",
    ),
    ("load-scaler-not-bool", _load(_set("scaler", "yes")), FormatError, r"scaler"),
    # -- finetune
    ("finetune-perturbation-zero", _finetune(perturbation=0.0), ValueError, r"perturbation"),
    ("finetune-perturbation-nan", _finetune(perturbation=NAN), ValueError, r"perturbation"),
    ("finetune-learning-rate-nan", _finetune(learning_rate=NAN), ValueError, r"learning_rate"),
    (
        "finetune-learning-rate-negative",
        _finetune(learning_rate=-0.1),
        ValueError,
        r"learning_rate",
    ),
    ("finetune-momentum-one", _finetune(momentum=1.0), ValueError, r"momentum"),
    ("finetune-loss-nan", _finetune(loss=lambda p: float("nan")), ValueError, r"loss returned nan"),
    ("finetune-loss-not-number", _finetune(loss=lambda p: "low"), TypeError, r"loss returned"),
    (
        "finetune-params0-nan",
        lambda ctx: __import__("qtn.execution", fromlist=["x"]).finetune(
            ctx.runner, lambda p: 0.0, [NAN, 0.0], data=[0.3], shots=16, maxiter=1, verbose=0
        ),
        ValueError,
        r"params0",
    ),
    ("finetune-method", _finetune(method="adam"), ValueError, r"method"),
    (
        "runner-params-nan",
        lambda ctx: ctx.runner.run(shots=8, params=[NAN, 0.1], data=[0.3]),
        ValueError,
        r"params contains NaN",
    ),
    (
        "runner-data-complex",
        lambda ctx: ctx.runner.run(shots=8, params=[0.1, 0.1], data=[0.3j]),
        ValueError,
        r"data must be real numbers",
    ),
    (
        "runner-params-strings",
        lambda ctx: ctx.runner.run(shots=8, params=["a", "b"], data=[0.3]),
        ValueError,
        r"params must be real numbers",
    ),
    # -- sizes that cannot fit
    (
        "mps-bond-dim-too-large",
        lambda ctx: qtn.MPSClassifier(bond_dim=2**20, max_epochs=1, random_state=0).fit(
            *ctx.fitted[1:3]
        ),
        ContractionTooLargeError,
        r"bond_dim=1048576.*needs an estimated .*[TPE]iB",
    ),
    (
        "random-mps-too-large",
        lambda ctx: qtn.random_mps(0, n_sites=100, bond_dim=2**20),
        ContractionTooLargeError,
        r"bond_dim=1048576.*needs an estimated .*[TPE]iB",
    ),
    (
        "born-bond-dim-too-large",
        lambda ctx: qtn.BornMachine(bond_dim=2**20, max_epochs=1, random_state=0).fit(
            (ctx.fitted[1] > 0.5).astype(int)
        ),
        ContractionTooLargeError,
        r"bond_dim=1048576.*needs an estimated .*[TPE]iB",
    ),
]


class _Ctx:
    def __init__(self, request, tmp):
        self._request = request
        self.tmp = tmp

    def __getattr__(self, name):
        return self._request.getfixturevalue(name)


@pytest.mark.parametrize(("call", "exc", "pattern"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_bad_input(call, exc, pattern, request, tmp_path):
    with pytest.raises(exc) as info:
        call(_Ctx(request, tmp_path))
    assert re.search(pattern, str(info.value)), str(info.value)


def test_table_size():
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


def test_qtn_errors_are_builtins():
    """A caller can catch every qtn error as the builtin it extends."""
    assert issubclass(FormatError, ValueError) and issubclass(FormatError, QtnError)
    assert issubclass(ContractionTooLargeError, MemoryError)


# ----------------------------------------------------------------------------- load is complete


def test_load_checks_every_field_before_predict(fitted, tmp_path):
    """A file whose classes disagree with the MPS's label count fails at load, not at predict."""
    est, X, _, path = fitted
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["classes"] = np.array([0, 1, 2])
    bad = tmp_path / "classes.npz"
    with open(bad, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(FormatError, match="classes"):
        qtn.MPSClassifier.load(bad)
    # the untouched file round-trips
    np.testing.assert_array_equal(qtn.MPSClassifier.load(path).predict(X), est.predict(X))


def test_load_not_a_zip(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="not a readable qtn model file"):
        qtn.MPSClassifier.load(p)
    assert not zipfile.is_zipfile(p)


# ----------------------------------------------------------------------------- finite gradients


def test_zero_environment_gradient_is_finite():
    """A site whose feature vector is exactly zero makes the environment vector exactly zero;
    the forward guards it, and its gradient must be finite (0), not NaN."""
    import jax
    import jax.numpy as jnp

    from qtn.models import amplitudes, init_mps

    mps = init_mps(jax.random.PRNGKey(0), n_sites=4, bond_dim=2, phys_dim=2, n_labels=2)
    phi = jnp.asarray(np.random.default_rng(0).random((4, 2)), mps.dtype)
    phi = phi.at[1].set(0.0)  # the left environment is exactly zero from site 1 on

    def f(m):
        fhat, logn = amplitudes(m, phi)
        return jnp.sum(fhat) + jnp.where(jnp.isfinite(logn), logn, 0.0)

    fhat, logn = amplitudes(mps, phi)
    assert float(logn) == -math.inf and np.all(np.asarray(fhat) == 0)
    grads = jax.jit(jax.grad(f))(mps)
    for g in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(np.asarray(g)))
    # and away from zero the guard changes nothing: the gradient matches finite differences
    phi2 = phi.at[1].set(jnp.asarray([0.6, 0.8], mps.dtype))

    @jax.jit
    def g(c):
        fhat, logn = amplitudes(mps.__class__(mps.left, c, mps.right), phi2)
        return logn

    grad = np.asarray(jax.grad(g)(mps.center))
    eps = 1e-3
    e = np.zeros(mps.center.shape, np.float32)
    e[(0,) * mps.center.ndim] = eps
    fd = (float(g(mps.center + e)) - float(g(mps.center - e))) / (2 * eps)
    assert abs(fd - grad[(0,) * mps.center.ndim]) < 1e-2 * max(1.0, abs(fd))


def test_transfer_gradient_finite_at_zero():
    """log_norm's transfer matrices are guarded the same way (a zero core)."""
    import jax
    import jax.numpy as jnp

    from qtn.models import init_mps, log_norm

    mps = init_mps(jax.random.PRNGKey(1), n_sites=4, bond_dim=2, phys_dim=2)
    zero = mps.__class__(mps.left.at[1].set(0.0), mps.center, mps.right)
    g = jax.jit(jax.grad(lambda m: jnp.where(jnp.isfinite(log_norm(m)), log_norm(m), 0.0)))(zero)
    for leaf in jax.tree_util.tree_leaves(g):
        assert np.all(np.isfinite(np.asarray(leaf)))
