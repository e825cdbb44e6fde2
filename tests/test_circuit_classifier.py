"""Circuit-native classifiers: exact evaluation against Qiskit and Aer, gradients, reuse,
training, noise sweeps, warm start and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.quantum_info import DensityMatrix, Statevector
from qiskit_aer import AerSimulator
from scipy.stats import unitary_group

import qtn
from qtn.circuit import Discard, Measure
from qtn.compilation.circuit_classifier import block_infidelity, kak_angles, warm_start_angles
from qtn.data import downsample, load_digits, select_classes
from qtn.export import to_qiskit
from qtn.models.circuit_classifier import (
    CircuitLayout,
    block_matrix,
    build_circuit,
    init_circuit_params,
)
from qtn.noise import NoiseModel, ReadoutError, depolarizing, phase_damping
from qtn.simulation import Simulator
from qtn.training.spsa import SPSAConfig, spsa_minimize

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't import `kahypar`")

LAYOUTS = [("mps", 4, 1), ("tree", 4, 1), ("mps", 5, 2), ("tree", 4, 2), ("tree", 8, 1)]


def _engine_p1(layout, theta, X, noise=None):
    sim = Simulator(build_circuit(layout), noise=noise, dtype="complex128", optimizer="greedy")
    return sim.probs([layout.output_qubit], params=theta, data=X)[:, 1]


def _qiskit_marginal(probs_le, n, q):
    """P(qubit q = 1) from a little-endian Qiskit probability vector of n qubits."""
    idx = np.arange(2**n)
    return float(probs_le[((idx >> q) & 1) == 1].sum())


def _strip(circuit):
    """The circuit without its measurements (discards become resets on export)."""
    from qtn.circuit import Circuit

    return Circuit(circuit.n_qubits, [op for op in circuit.ops if not isinstance(op, Measure)])


@pytest.mark.parametrize("structure,n,v", LAYOUTS)
def test_exact_evaluation_matches_qiskit_statevector_and_density_matrix(structure, n, v):
    lay = CircuitLayout(structure, n, v)
    rng = np.random.default_rng(n + v)
    theta = init_circuit_params(lay, 1)
    X = rng.random((3, n))
    ours = _engine_p1(lay, theta, X)
    pure = build_circuit(lay, discard=False)  # discards after last use change no marginal
    for x, p in zip(X, ours):
        sv = Statevector(to_qiskit(pure, params=theta, data=x)).probabilities()
        np.testing.assert_allclose(p, _qiskit_marginal(sv, n, lay.output_qubit), atol=1e-10)
        # the reused (dynamic) circuit, reset included, as a density matrix
        reused = qtn.compilation.reuse_wires(build_circuit(lay, measure=True))
        out = next(op.qubit for op in reused.ops if isinstance(op, Measure))
        dm = DensityMatrix(to_qiskit(_strip(reused), params=theta, data=x)).probabilities()
        np.testing.assert_allclose(p, _qiskit_marginal(dm, reused.n_qubits, out), atol=1e-10)


@pytest.mark.parametrize("structure,n,v", [("mps", 4, 1), ("tree", 4, 2)])
def test_exact_evaluation_matches_aer_statevector_and_noisy_density_matrix(structure, n, v):
    lay = CircuitLayout(structure, n, v)
    theta = init_circuit_params(lay, 3)
    x = np.random.default_rng(4).random(n)
    noise = (NoiseModel().add_gate_noise(depolarizing(0.03, 2), ["cx"])
             .add_gate_noise(phase_damping(0.05), ["u3", "ry", "rz"]))  # fmt: skip
    for nm, method, circ in ((None, "statevector", build_circuit(lay, discard=False)),
                             (noise, "density_matrix", build_circuit(lay))):  # fmt: skip
        qc = to_qiskit(circ, params=theta, data=x, noise=nm)
        qc.save_probabilities([lay.output_qubit])
        res = AerSimulator(method=method).run(qc).result()
        aer = res.data()["probabilities"]
        ours = _engine_p1(lay, theta, x[None], nm)[0]
        np.testing.assert_allclose(ours, aer[1], atol=1e-10)


def test_kak_block_matches_its_circuit_and_reaches_every_unitary():
    theta = np.random.default_rng(0).uniform(-3, 3, 15)
    c = build_circuit(CircuitLayout("mps", 2), encode=False, discard=False, native=False)
    qc = to_qiskit(c, params=theta)
    m = _qiskit_unitary(qc)
    np.testing.assert_allclose(m, block_matrix(theta), atol=1e-12)
    for seed in range(8):
        u = unitary_group.rvs(4, random_state=seed)
        assert block_infidelity(u, kak_angles(u)) < 1e-9
    assert set(qc.count_ops()) <= {"cx", "u", "ry", "rz"} and qc.count_ops()["cx"] == 3


def _qiskit_unitary(qc):
    from qiskit.quantum_info import Operator

    return qtn.export.qiskit_matrix(Operator(qc).data)


def test_gradients_agree_with_finite_differences(x64):
    import jax
    import jax.numpy as jnp

    lay = CircuitLayout("tree", 4)
    sim = Simulator(build_circuit(lay), dtype="complex128", optimizer="greedy")
    f = sim.probs_fn([lay.output_qubit])
    X = np.random.default_rng(1).random((4, 4))

    def loss(th):
        return jnp.mean(jnp.log(jax.vmap(lambda x: f(th, x)[1])(X)))

    theta = init_circuit_params(lay, 2)
    g = np.asarray(jax.grad(loss)(jnp.asarray(theta)))
    eps = 1e-6
    for i in (0, 7, 20, 44):
        e = np.zeros_like(theta)
        e[i] = eps
        fd = (float(loss(theta + e)) - float(loss(theta - e))) / (2 * eps)
        np.testing.assert_allclose(g[i], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("structure,n,wires", [("mps", 64, 2), ("tree", 64, 7)])
def test_reused_8x8_circuit_needs_few_qubits(structure, n, wires):
    lay = CircuitLayout(structure, n)
    reused = qtn.compilation.reuse_wires(build_circuit(lay, measure=True))
    qc = to_qiskit(reused, params=init_circuit_params(lay, 0))
    assert reused.n_qubits == wires == qc.num_qubits
    assert set(qc.count_ops()) <= {"cx", "u", "ry", "rz", "reset", "measure"}
    assert qc.count_ops()["cx"] == 3 * 63


@pytest.mark.parametrize(
    "structure,n,wires",
    [("mps", 16, 2), pytest.param("tree", 16, 5, marks=pytest.mark.slow),
     pytest.param("mps", 64, 2, marks=pytest.mark.slow),
     pytest.param("tree", 64, 7, marks=pytest.mark.slow)],
)  # fmt: skip
def test_reused_circuit_gives_identical_predictions(structure, n, wires):
    lay = CircuitLayout(structure, n)
    theta = init_circuit_params(lay, 5, scale=1.0)
    X = np.random.default_rng(6).random((3, n))
    unrolled = build_circuit(lay, measure=True)
    reused = qtn.compilation.reuse_wires(unrolled)
    assert reused.n_qubits == wires and unrolled.n_qubits == n
    exact_unrolled = _engine_p1(lay, theta, X)
    sim = Simulator(reused, dtype="complex128", optimizer="greedy")
    exact_reused = sim.clbit_probs(params=theta, data=X)[:, 1]
    np.testing.assert_allclose(exact_reused, exact_unrolled, atol=1e-10)
    qc = to_qiskit(reused, params=theta)
    assert qc.num_qubits == wires and set(qc.count_ops()) <= {
        "cx", "u", "ry", "rz", "reset", "measure"}  # fmt: skip


def test_reused_and_unrolled_agree_on_aer():
    lay = CircuitLayout("mps", 16)
    theta = init_circuit_params(lay, 7, scale=1.0)
    X = np.random.default_rng(8).random((4, 16))
    exact = _engine_p1(lay, theta, X)
    reused = qtn.compilation.reuse_wires(build_circuit(lay, measure=True))
    out = next(op.qubit for op in reused.ops if isinstance(op, Measure))
    for x, p in zip(X, exact):
        qc = to_qiskit(_strip(reused), params=theta, data=x)
        qc.save_probabilities([out])
        aer_reused = AerSimulator(method="density_matrix").run(qc).result().data()
        qu = to_qiskit(build_circuit(lay, discard=False), params=theta, data=x)
        qu.save_probabilities([lay.output_qubit])
        aer_unrolled = AerSimulator(method="statevector").run(qu).result().data()
        np.testing.assert_allclose(aer_reused["probabilities"][1], p, atol=1e-9)
        np.testing.assert_allclose(aer_unrolled["probabilities"][1], p, atol=1e-9)
    # shots through the Runner, on 2 qubits: predictions equal the exact ones where the
    # margin exceeds the sampling error
    runner = qtn.execution.Runner(reused, seed=11)
    sampled = runner.run(shots=4000, params=np.repeat(theta[None], 4, 0), data=X).probs[:, 1]
    assert np.all(np.abs(sampled - exact) < 4 * np.sqrt(0.25 / 4000) + 1e-9)


@pytest.fixture(scope="module")
def pair_4x4():
    X, y = load_digits()
    X, y = select_classes(X, y, [3, 5])
    X = downsample(X, 4).reshape(len(X), -1)
    idx = np.random.default_rng(0).permutation(len(X))
    X, y = X[idx], y[idx]
    return X[:200], y[:200], X[200:], y[200:]


@pytest.fixture(scope="module")
def trained_tree(pair_4x4):
    Xtr, ytr, _, _ = pair_4x4
    return qtn.CircuitClassifier("tree", max_epochs=8, learning_rate=0.05,
                                 random_state=0).fit(Xtr, ytr)  # fmt: skip


def test_gradient_training_on_a_tiny_pair_beats_chance(pair_4x4, trained_tree):
    _, _, Xte, yte = pair_4x4
    assert trained_tree.score(Xte, yte) > 0.8
    assert trained_tree.history_[-1]["loss"] < trained_tree.history_[0]["loss"]
    p = trained_tree.predict_proba(Xte)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)


@pytest.mark.slow
def test_spsa_training_lowers_the_hinge_loss_and_beats_chance(pair_4x4):
    Xtr, ytr, Xte, yte = pair_4x4
    clf = qtn.CircuitClassifier("tree", method="spsa", max_epochs=12, batch_size=25,
                                random_state=0).fit(Xtr, ytr)  # fmt: skip
    assert clf.fit_info_["loss"] == "hinge" and clf.fit_info_["spsa"]["gamma"] == 0.882
    assert np.mean([h["loss"] for h in clf.history_[-3:]]) < clf.history_[0]["loss"]
    assert clf.score(Xte, yte) > 0.7


def test_spsa_minimises_a_quadratic():
    theta, hist, _ = spsa_minimize(lambda th, k: float(np.sum((th - 1) ** 2)), np.zeros(5), 300,
                                   SPSAConfig(), seed=1)  # fmt: skip
    np.testing.assert_allclose(theta, 1, atol=0.05)
    with pytest.raises(ValueError, match="gamma"):
        SPSAConfig(gamma=1.5)


def test_warm_start_blocks_are_the_completed_canonical_cores(x64):
    """Each block's rows with the discarded qubit in |0> are the left-canonical core."""
    import jax

    from qtn.models import canonicalize, init_mps_classifier

    n = 6
    net = init_mps_classifier(jax.random.key(3), n, 2, 2, label_site=n - 1, init_std=0.5,
                              dtype=np.float64).network  # fmt: skip
    lay = CircuitLayout("mps", n)
    angles = warm_start_angles(net, lay)
    cores = [np.asarray(c) for c in canonicalize(net, n - 1).cores()]
    for j in range(1, n - 2):  # the middle blocks: exact co-isometries
        u = block_matrix(angles[15 * j : 15 * (j + 1)])
        m = cores[j + 1].reshape(4, 2).T  # rows: next bond; columns: (bond, pixel)
        top = u[[0, 1], :]  # discarded qubit (the first) in |0>
        phase = np.vdot(m.ravel(), top.ravel())
        np.testing.assert_allclose(top, phase / abs(phase) * m, atol=1e-8)


@pytest.mark.slow
def test_warm_start_from_an_mps_classifier_helps_training(pair_4x4):
    Xtr, ytr, Xte, yte = pair_4x4
    mps = qtn.MPSClassifier(bond_dim=2, label_site=15, loss="nll", max_epochs=6,
                            learning_rate=0.01, random_state=0).fit(Xtr, ytr)  # fmt: skip
    kw = dict(max_epochs=3, learning_rate=0.05, random_state=0)
    warm = qtn.CircuitClassifier("mps", init="mps", **kw).fit(Xtr, ytr, init_model=mps)
    cold = qtn.CircuitClassifier("mps", **kw).fit(Xtr, ytr)
    assert "warm_start_seconds" in warm.fit_info_
    assert warm.score(Xte, yte) > cold.score(Xte, yte)


def test_warm_start_needs_the_mps_layout(pair_4x4):
    Xtr, ytr, _, _ = pair_4x4
    with pytest.raises(ValueError, match="structure='mps' and bond_qubits=1"):
        qtn.CircuitClassifier("tree", init="mps", max_epochs=1).fit(Xtr, ytr)


def test_noise_sweeps_are_monotone_in_the_exact_limit(pair_4x4, trained_tree):
    _, _, Xte, yte = pair_4x4
    X = Xte[:40]
    sweeps = {
        "depolarizing": lambda s: (
            NoiseModel()
            .add_gate_noise(depolarizing(s, 2), ["cx"])
            .add_gate_noise(depolarizing(s / 10), ["u3", "ry", "rz"])
        ),
        "dephasing": lambda s: NoiseModel().add_gate_noise(phase_damping(s), ["cx", "u3"]),
        "readout": lambda s: NoiseModel().add_readout_error(ReadoutError(s, s)),
    }
    base = np.abs(trained_tree.predict_proba(X)[:, 1] - 0.5).mean()
    for name, make in sweeps.items():
        bias = [base]
        for s in (0.05, 0.2):
            p1 = trained_tree.predict_proba(X, noise=make(s))[:, 1]
            bias.append(np.abs(p1 - 0.5).mean())
        assert np.all(np.diff(bias) < 0), (name, bias)
    # readout error is exactly a contraction of the output towards 1/2
    ro = trained_tree.predict_proba(X, noise=sweeps["readout"](0.1))[:, 1]
    np.testing.assert_allclose(ro - 0.5, 0.8 * (trained_tree.predict_proba(X)[:, 1] - 0.5),
                               atol=1e-6)  # fmt: skip


def test_sampled_predictions_on_aer_match_exact(pair_4x4, trained_tree):
    _, _, Xte, yte = pair_4x4
    X = Xte[:6]
    exact = trained_tree.predict_proba(X)
    sampled = trained_tree.predict_proba_sampled(X, shots=4000, seed=3)
    assert np.all(np.abs(sampled - exact) < 4 * np.sqrt(0.25 / 4000) + 1e-9)
    qc = trained_tree.to_qiskit(reuse=True)
    assert qc.num_qubits == 5 and not any(p.name.startswith("theta") for p in qc.parameters)


def test_save_load_round_trip(tmp_path, trained_tree, pair_4x4):
    _, _, Xte, _ = pair_4x4
    path = tmp_path / "clf.npz"
    trained_tree.save(path)
    again = qtn.CircuitClassifier.load(path)
    np.testing.assert_array_equal(again.params_.angles, trained_tree.params_.angles)
    np.testing.assert_allclose(again.predict_proba(Xte[:5]), trained_tree.predict_proba(Xte[:5]))


def test_bad_input_raises_clear_errors():
    X = np.random.default_rng(0).random((30, 12))
    y = np.arange(30) % 2
    with pytest.raises(ValueError, match=r"bond_qubits \* 2\*\*L.*got 12 pixels"):
        qtn.CircuitClassifier("tree").fit(X, y)
    with pytest.raises(ValueError, match="bond_qubits must be an integer >= 1.*got 0"):
        qtn.CircuitClassifier("mps", bond_qubits=0).fit(X, y)
    with pytest.raises(ValueError, match="structure must be one of"):
        qtn.CircuitClassifier("ring").fit(X, y)
    with pytest.raises(ValueError, match="y has 3 classes.*multiclass='ovr'"):
        qtn.CircuitClassifier("mps").fit(X, np.arange(30) % 3)
    with pytest.raises(ValueError, match="needs at least 3 pixels"):
        CircuitLayout("mps", 2, 2)
    with pytest.raises(ValueError, match="spsa"):
        qtn.CircuitClassifier(method="spsa", spsa={"alpha": 1}).fit(X, y)


def test_one_vs_rest_trains_one_circuit_per_class():
    rng = np.random.default_rng(0)
    X = rng.random((60, 4))
    y = np.argmax(X[:, :3], axis=1)
    clf = qtn.CircuitClassifier("mps", multiclass="ovr", max_epochs=2, random_state=0).fit(X, y)
    assert clf.params_.angles.shape == (3, CircuitLayout("mps", 4).n_params)
    p = clf.predict_proba(X[:5])
    assert p.shape == (5, 3)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)


def test_layouts():
    assert [nd.qubits for nd in CircuitLayout("tree", 4).nodes] == [(0, 1), (2, 3), (1, 3)]
    assert [nd.discard for nd in CircuitLayout("tree", 8, 2).nodes] == [(0, 1), (4, 5), (2, 3)]
    mps2 = CircuitLayout("mps", 5, 2)
    assert [nd.qubits for nd in mps2.nodes] == [(0, 1, 2), (1, 2, 3), (2, 3, 4)]
    assert mps2.n_blocks == 3 * 3  # three brickwork layers of a 3-qubit group: 3 blocks
    assert not any(isinstance(op, Discard) for op in build_circuit(mps2, discard=False).ops)
