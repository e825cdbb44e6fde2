"""Compilation against independent oracles: dense states, qiskit.quantum_info, the density-matrix
simulator, finite differences and Aer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from qiskit.quantum_info import Statevector

import qtn
from qtn.circuit import Circuit, brickwork
from qtn.compilation import circuit_fidelity, compile
from qtn.compilation.aqc import overlap_objective
from qtn.export import to_qiskit
from qtn.export.order import from_qiskit_order
from qtn.models import init_mps, random_mps, to_dense
from qtn.simulation import simulate, statevector

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't import `kahypar`")


def _fid(psi, vec):
    return abs(np.vdot(to_dense(psi), vec)) ** 2


@pytest.mark.parametrize("chi", [2, 4, 8])
def test_exact_reproduces_random_mps(chi):
    psi = random_mps(chi, 7, chi, complex=True)
    circuit, report = compile(psi, method="exact")
    assert report.fidelity > 1 - 1e-10
    assert _fid(psi, statevector(circuit, report.params)) > 1 - 1e-10  # dense oracle
    bound = to_qiskit(circuit, params=report.params)
    assert _fid(psi, from_qiskit_order(Statevector(bound).data)) > 1 - 1e-10  # Qiskit
    assert report.n_qubits == 7 and report.n_params == circuit.n_params > 0
    assert {op.name for op in circuit.ops} <= {"cx", "u3"}


@pytest.mark.parametrize("chi,per_block", [(2, 2), (4, 14), (8, 54)])
def test_exact_cx_counts_beat_qiskit(chi, per_block):
    """Interior blocks cost 2 CX at chi = 2 (Qiskit: 3) and 2^(k+1) + 2 C(k) CX at
    chi = 2^k: 14 at chi = 4 (Qiskit 2.6 Isometry 24, QSD 19) and 54 at chi = 8
    (Isometry 122, QSD 95)."""
    k = int(np.log2(chi))
    n = 2 * k + 4  # the middle bonds reach chi
    psi = random_mps(1, n, chi)
    circuit, report = compile(psi, method="exact")
    two_q = {2: 3, 3: 19}  # CX of a generic k-qubit unitary (tail, first block's b1)
    first = 1 if k == 1 else per_block + two_q.get(k, 0)
    tail = two_q.get(k, 0)
    # blocks near the edges, where bonds are small, can synthesise cheaper
    assert first + (n - k - 1) * per_block + tail - report.n_2q in range(0, 2 * per_block)
    assert per_block < {2: 3, 4: 19, 8: 95}[chi] < {2: 4, 4: 24, 8: 122}[chi] + 1


@pytest.mark.parametrize("chi", [2, 4])
def test_qubit_reuse_reproduces_the_distribution_exactly(chi):
    k = int(np.log2(chi))
    psi = random_mps(5, 6, chi, complex=True)
    circuit, report = compile(psi, method="exact", reuse=True)
    assert circuit.n_qubits == k + 1 and circuit.n_clbits == 6
    sim = simulate(circuit, dtype="complex128", optimizer="greedy")
    p = sim.clbit_probs(params=report.params)
    np.testing.assert_allclose(p, np.abs(to_dense(psi)) ** 2, atol=1e-12)
    ops = [i.operation.name for i in to_qiskit(circuit, params=report.params).data]
    assert "reset" in ops and ops.index("measure") < len(ops) - 1  # a dynamic circuit


def test_reused_circuit_on_aer_matches_the_born_distribution():
    from qtn.execution import Runner

    psi = random_mps(2, 5, 2)
    circuit, report = compile(psi, method="exact", reuse=True)
    shots = 20_000
    res = Runner(circuit, seed=3).run(shots=shots, params=report.params)
    p = np.abs(to_dense(psi)) ** 2
    tvd = 0.5 * np.abs(res.probs - p).sum()
    assert tvd < 4 * np.sqrt(p.size / shots)  # a loose multinomial bound


def test_born_machine_to_circuit_samples_its_distribution():
    """born.to_circuit: exact KL ~ 0 against enumeration, the reused circuit's clbit
    distribution equals the model's p(x) (density-matrix simulator), NLLs agree."""
    from itertools import product

    X = np.array([b for b in product((0, 1), repeat=6) if sum(b) in (2, 3)])
    born = qtn.BornMachine(bond_dim=2, max_epochs=2, random_state=0).fit(X)
    circuit, report = born.to_circuit("exact", reuse=True, X=X)
    assert circuit.n_qubits == 2 and report.n_qubits == 2
    assert report.metrics["kl"] < 1e-9
    assert abs(report.metrics["nll"] - report.metrics["model_nll"]) < 1e-4  # float32 model
    sim = simulate(circuit, dtype="complex128", optimizer="greedy")
    p_model = np.exp(born.log_prob(np.array(list(product((0, 1), repeat=6)))))
    np.testing.assert_allclose(sim.clbit_probs(params=report.params), p_model, atol=1e-5)
    assert qtn.to_qiskit(born).num_clbits == 6


@pytest.mark.parametrize("n_leaves,chi", [(8, 2), (8, 4), (16, 2)])
def test_exact_tree_reproduces_random_ttn(n_leaves, chi):
    """The tree circuit's state equals the TTN's, global phase included: the dense
    oracle and Qiskit's Statevector; the leaf pairs' two-qubit blocks need 2 CX."""
    from qtn.models import random_ttn, ttn_to_dense

    tree = random_ttn(n_leaves + chi, n_leaves, chi, complex=True)
    circuit, report = compile(tree, method="exact")
    ref = ttn_to_dense(tree)
    assert report.fidelity > 1 - 1e-10 and report.n_qubits == n_leaves
    np.testing.assert_allclose(statevector(circuit, report.params), ref, atol=1e-9)
    bound = to_qiskit(circuit, params=report.params)
    np.testing.assert_allclose(from_qiskit_order(Statevector(bound).data), ref, atol=1e-9)
    if chi == 2:  # every node: a one-qubit bond into two qubits (2 CX), the root 1 CX
        assert report.n_2q == 2 * (n_leaves - 2) + 1


@pytest.mark.parametrize("n_leaves,chi,wires", [(16, 2, 5), (32, 2, 6), (16, 4, 8)])
def test_tree_qubit_reuse_reproduces_the_distribution_exactly(n_leaves, chi, wires):
    """Depth-first order with measure and reset: O(k log P) wires, the clbit distribution
    equals |<x|psi>|^2 exactly (deferred-measurement simulation, checked on 16 leaves)."""
    from qtn.models import random_ttn, ttn_to_dense

    tree = random_ttn(3, n_leaves, chi)
    circuit, report = compile(tree, method="exact", reuse=True)
    assert circuit.n_qubits == report.n_qubits == wires and circuit.n_clbits == n_leaves
    if n_leaves <= 16:
        sim = simulate(circuit, dtype="complex128", optimizer="greedy")
        p = sim.clbit_probs(params=report.params)
        np.testing.assert_allclose(p, np.abs(ttn_to_dense(tree)) ** 2, atol=1e-12)
    ops = [i.operation.name for i in to_qiskit(circuit, params=report.params).data]
    assert "reset" in ops and ops.index("measure") < len(ops) - 1  # a dynamic circuit


def test_tree_born_machine_to_circuit_samples_its_distribution():
    """A trained tree Born machine (5 features: 3 padding leaves) compiles exactly; its
    reused circuit's clbits follow p(x) on the real leaves and stay 0 on padding."""
    from itertools import product

    X = np.array([b for b in product((0, 1), repeat=5) if sum(b) in (1, 2)])
    born = qtn.BornMachine("ttn", bond_dim=2, max_epochs=3, random_state=0).fit(X)
    circuit, report = born.to_circuit("exact", reuse=True, X=X)
    assert report.metrics["kl"] < 1e-9 and circuit.n_qubits < 8
    assert abs(report.metrics["nll"] - report.metrics["model_nll"]) < 1e-4
    allx = np.array(list(product((0, 1), repeat=5)))
    p_model = np.exp(born.log_prob(allx))
    p_circuit = simulate(circuit, dtype="complex128", optimizer="greedy").clbit_probs(
        params=report.params
    )
    leaves = born.layout_.to_leaf_values(allx, fill=0)  # (32, 8) bits over leaf positions
    index = leaves @ (1 << np.arange(7, -1, -1))  # clbit 0 most significant
    np.testing.assert_allclose(p_circuit[index], p_model, atol=1e-5)
    assert p_circuit.sum() == pytest.approx(1.0) and p_circuit[index].sum() == pytest.approx(
        1.0, abs=1e-5
    )
    # layers and aqc compile the tree through its exact MPS
    c2, r2 = qtn.compile(born, method="layers", n_layers=2)
    assert "exact MPS" in r2.notes[0] and c2.n_qubits == 8 and 0 < r2.fidelity <= 1 + 1e-12
    assert qtn.to_qiskit(born).num_clbits == 8


def test_layers_fidelity_is_exact_and_does_not_decrease():
    for seed in range(3):
        psi = random_mps(seed, 8, 4 if seed < 2 else 8)
        circuit, report = compile(psi, method="layers", n_layers=4)
        f = report.layer_fidelities
        assert all(b >= a - 1e-9 for a, b in zip(f, f[1:])), f
        np.testing.assert_allclose(
            _fid(psi, statevector(circuit, report.params)), report.fidelity, atol=1e-10
        )
        assert {op.name for op in circuit.ops} <= {"su4", "u3"}


def test_aqc_gradient_matches_finite_differences():
    psi = random_mps(3, 4, 2, complex=True)
    c = brickwork(4, 2)
    vg, fid = overlap_objective(c, psi)
    x = np.random.default_rng(0).normal(size=c.n_params)
    value, grad = vg(x)

    def loss(t):
        f = abs(np.vdot(to_dense(psi), statevector(c, t))) ** 2
        return -np.log(f)

    assert value == pytest.approx(loss(x), rel=1e-10)
    for i in (0, 7, 16, 29, 44):
        e = np.zeros_like(x)
        e[i] = 1e-6
        np.testing.assert_allclose(grad[i], (loss(x + e) - loss(x - e)) / 2e-6, atol=1e-6)


def test_aqc_beats_layers_at_equal_depth_on_12_qubits():
    psi = random_mps(4, 12, 8)
    _, layers = compile(psi, method="layers", n_layers=2)
    circuit, aqc = compile(psi, method="aqc", n_layers=2, maxiter=60)
    assert aqc.fidelity > layers.fidelity + 0.05
    assert circuit.count_2q() == 22  # same structure: two staircases of 11 blocks
    assert circuit_fidelity(circuit, aqc.params, psi) == pytest.approx(aqc.fidelity, abs=1e-9)
    assert aqc.history and aqc.history[-1]["fidelity"] > 0


def test_compiled_classifier_on_aer_matches_exact_simulation():
    from sklearn.model_selection import train_test_split

    from qtn.data import downsample, select_classes

    X, y = qtn.load_digits()
    X, y = select_classes(X, y, [3, 5])
    X = downsample(X, 4).reshape(len(X), -1)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    clf = qtn.MPSClassifier(bond_dim=2, loss="nll", max_epochs=20, learning_rate=2e-2,
                            random_state=0).fit(Xtr, ytr)  # fmt: skip
    model = clf.to_circuit(X=Xte, y=yte)
    assert model.report.metrics["accuracy"] == model.report.metrics["classical_accuracy"]
    assert model.report.fidelity > 1 - 1e-10 and len(model.circuits) == 2
    np.testing.assert_array_equal(model.predict(Xte), clf.predict(Xte))
    # the exact shortcut is the circuit's all-zero probability (engine, small batch)
    c, p = model.circuits[0], model.params[0]
    amp = simulate(c, dtype="complex128", optimizer="greedy").amplitude(
        [0] * 16, params=p, data=clf._transform(Xte[:2])
    )
    np.testing.assert_allclose(np.abs(amp) ** 2, model.zero_probabilities(Xte[:2])[:, 0],
                               atol=1e-12)  # fmt: skip
    # on Aer with shots: the same predictions where the classes are not close
    exact = model.predict_proba(Xte[:12])
    clear = np.abs(exact[:, 0] - exact[:, 1]) > 0.3
    sampled = model.predict(Xte[:12], runner_shots=20_000, seed=1)
    np.testing.assert_array_equal(sampled[clear], model.predict(Xte[:12])[clear])
    qcs = qtn.to_qiskit(clf)
    assert len(qcs) == 2 and {p.vector.name for p in qcs[0].parameters} == {"x"}


def test_to_qiskit_dispatch():
    c = Circuit(2).h(0).cx(0, 1)
    assert qtn.to_qiskit(c).num_qubits == 2
    qc = qtn.to_qiskit(random_mps(0, 4, 2))
    assert qc.num_qubits == 4 and qc.num_parameters == 0 and qc.count_ops()["measure"] == 4
    with pytest.raises(TypeError, match="to_qiskit takes a qtn Circuit"):
        qtn.to_qiskit("circuit")


def test_bad_input():
    psi = random_mps(0, 5, 2)
    with pytest.raises(ValueError, match="unknown method 'dmrg'; valid methods"):
        compile(psi, method="dmrg")
    bad = np.ones(8)
    bad[3] = np.nan
    with pytest.raises(ValueError, match="target contains NaN or inf"):
        compile(bad)
    with pytest.warns(UserWarning, match="has norm 2, not 1"):
        compile(2 * to_dense(psi))
    with pytest.raises(ValueError, match="needs length 2\\*\\*n"):
        compile(np.ones(6))
    with pytest.raises(ValueError, match="has a label leg"):
        compile(init_mps(__import__("jax").random.key(0), 4, 2, n_labels=3))
    with pytest.raises(ValueError, match="max_qubits=2: the exact circuit .* needs 3 qubits"):
        compile(random_mps(0, 6, 4), reuse=True, max_qubits=2)
    with pytest.raises(ValueError, match="physical dimension 3"):
        compile(random_mps(0, 4, 2, phys_dim=3))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        _, rep = compile(random_mps(1, 8, 8), method="layers", n_layers=1, target_fidelity=0.9999)
    assert any("not reached" in str(x.message) for x in w) and rep.notes
    with pytest.raises(ValueError, match="n_layers must be an integer >= 1"):
        compile(psi, method="layers", n_layers=0)
    # trees
    from qtn.models import TTN, random_ttn

    tree = random_ttn(0, 8, 2)
    with pytest.raises(ValueError, match="this TTN has a label leg"):
        compile(random_ttn(0, 8, 2, n_labels=2))
    with pytest.raises(ValueError, match="physical dimension 3"):
        compile(random_ttn(0, 8, 2, phys_dim=3))
    nan = TTN((tree.layers[0] * np.nan, *tree.layers[1:]))
    with pytest.raises(ValueError, match="target contains NaN or inf"):
        compile(nan)
    with pytest.warns(UserWarning, match="has norm 3, not 1"):
        compile(TTN((*tree.layers[:-1], 3 * tree.layers[-1])))
    with pytest.raises(ValueError, match="max_bond: truncation before exact compilation"):
        compile(tree, max_bond=1)
    with pytest.raises(ValueError, match="max_qubits=3: the exact tree circuit .* needs 4"):
        compile(tree, reuse=True, max_qubits=3)
    with pytest.raises(ValueError, match="synthesises at most 6 qubits"):
        compile(random_ttn(0, 16, 16))
