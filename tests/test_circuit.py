"""Circuit IR and the dense oracle, against Qiskit's Statevector/DensityMatrix.

Qiskit is little-endian and qtn big-endian (quimb's order); the tests flip the
order explicitly: whole states by reversing tensor axes, multi-qubit matrices by
listing their qubits reversed. (The library's own conversion will live in qtn.export.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import DensityMatrix, Operator, Statevector
from scipy.stats import unitary_group

from qtn.circuit import GATES, Circuit, Feature, Gate, Reset, Trainable, gate_matrix, resolve
from qtn.simulation import density_matrix, probabilities, statevector


def to_big_endian(vec: np.ndarray, n: int) -> np.ndarray:
    return np.asarray(vec).reshape((2,) * n).transpose(range(n - 1, -1, -1)).reshape(-1)


def dm_to_big_endian(rho: np.ndarray, n: int) -> np.ndarray:
    perm = list(range(n - 1, -1, -1))
    t = np.asarray(rho).reshape((2,) * (2 * n)).transpose(perm + [p + n for p in perm])
    return t.reshape(2**n, 2**n)


def to_qiskit(c: Circuit, params=None, data=None) -> QuantumCircuit:
    """Test-side translation, gate by gate."""
    qc = QuantumCircuit(c.n_qubits, max(c.n_clbits, 1))
    for op in c.ops:
        name = type(op).__name__
        if name == "Measure":
            qc.measure(op.qubit, op.clbit)
        elif name in ("Reset", "Discard"):
            qc.reset(op.qubit)
        elif op.name in ("su4", "kak", "unitary", "iswap") or len(op.qubits) > 2:
            qc.unitary(op.numeric_matrix(params, data), list(reversed(op.qubits)))
        else:
            angles = [resolve(a, params, data) for a in op.angles]
            name = {"u3": "u"}.get(op.name, op.name)
            gate = type(get_standard_gate_name_mapping()[name])
            qc.append(gate(*angles), list(op.qubits))  # Qiskit's own class for the name
    return qc


@pytest.mark.parametrize("name", sorted(GATES))
def test_library_gates_are_unitary_and_match_qiskit(name):
    g = GATES[name]
    angles = np.random.default_rng(1).uniform(-3, 3, g.n_angles)
    m = gate_matrix(name, angles)
    np.testing.assert_allclose(m.conj().T @ m, np.eye(2**g.n_qubits), atol=1e-12)
    c = Circuit(g.n_qubits).gate(name, *angles, *range(g.n_qubits))
    op = Operator(to_qiskit(c)).data
    # qiskit's operator is little-endian: reverse both index groups
    n = g.n_qubits
    perm = list(range(n - 1, -1, -1))
    op_be = op.reshape((2,) * (2 * n)).transpose(perm + [p + n for p in perm]).reshape(2**n, 2**n)
    np.testing.assert_allclose(op_be, m, atol=1e-12)


ONE_Q = [n for n, g in GATES.items() if g.n_qubits == 1]
TWO_Q = [n for n, g in GATES.items() if g.n_qubits == 2]


@st.composite
def random_circuits(draw, max_qubits=6, max_ops=25):
    n = draw(st.integers(1, max_qubits))
    c = Circuit(n)
    for _ in range(draw(st.integers(0, max_ops))):
        names = ONE_Q + (TWO_Q + ["unitary3"] if n >= 2 else [])
        name = draw(st.sampled_from(names))
        if name == "unitary3":
            k = min(3, n)
            qs = draw(st.permutations(range(n)))[:k]
            seed = draw(st.integers(0, 2**16))
            c = c.unitary(unitary_group.rvs(2**k, random_state=seed), tuple(qs))
            continue
        g = GATES[name]
        qs = tuple(draw(st.permutations(range(n)))[: g.n_qubits])
        angles = [draw(st.floats(-math.pi, math.pi)) for _ in range(g.n_angles)]
        c = c.gate(name, *angles, *qs)
    return c


@settings(max_examples=60, deadline=None)
@given(random_circuits())
def test_statevector_matches_qiskit(c):
    ours = statevector(c)
    ref = to_big_endian(Statevector(to_qiskit(c)).data, c.n_qubits)
    np.testing.assert_allclose(ours, ref, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(ours), 1.0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(random_circuits(max_qubits=4, max_ops=12), st.data())
def test_density_matrix_with_resets_matches_qiskit(c, data):
    n = c.n_qubits
    # sprinkle resets in
    ops = list(c.ops)
    for _ in range(data.draw(st.integers(0, 3))):
        pos = data.draw(st.integers(0, len(ops)))
        ops.insert(pos, Reset(data.draw(st.integers(0, n - 1))))
    c = Circuit(n, tuple(ops))
    ours = density_matrix(c)
    ref = dm_to_big_endian(DensityMatrix(to_qiskit(c)).data, n)
    np.testing.assert_allclose(ours, ref, atol=1e-10)
    np.testing.assert_allclose(np.trace(ours), 1.0, atol=1e-12)
    assert np.linalg.eigvalsh(ours).min() > -1e-10  # positive semidefinite


def test_measure_is_dephasing_and_probabilities_marginalise():
    c = Circuit(2).h(0).cx(0, 1).ry(0.7, 1)
    rho = density_matrix(c.copy().measure(0, 0))
    pure = statevector(c)
    p = np.abs(pure.reshape(2, 2)) ** 2
    np.testing.assert_allclose(np.real(np.diag(rho)), p.reshape(-1), atol=1e-12)
    # coherences between q0 = 0 and q0 = 1 are gone
    np.testing.assert_allclose(rho[:2, 2:], 0, atol=1e-12)
    np.testing.assert_allclose(probabilities(c, [1]), p.sum(0), atol=1e-12)
    np.testing.assert_allclose(probabilities(c, [1, 0]), p.T.reshape(-1), atol=1e-12)


def test_reset_and_reuse_equals_fresh_qubit():
    theta = [0.3, 1.1, -0.4]
    # reuse: prepare, entangle, measure q1, reset it, use it again
    reused = (
        Circuit(2).ry(Trainable(0), 0).ry(Trainable(1), 1).cx(0, 1).measure(1, 0).reset(1)
        .ry(Trainable(2), 1).cx(0, 1)
    )  # fmt: skip
    fresh = (
        Circuit(3).ry(Trainable(0), 0).ry(Trainable(1), 1).cx(0, 1).measure(1, 0)
        .ry(Trainable(2), 2).cx(0, 2)
    )  # fmt: skip
    np.testing.assert_allclose(
        probabilities(reused, [0, 1], theta), probabilities(fresh, [0, 2], theta), atol=1e-12
    )


def test_feature_angles_prepare_the_trigonometric_map():
    from qtn.features import trigonometric

    x = np.array([0.0, 0.25, 0.9])
    c = Circuit(3).ry(Feature(0), 0).ry(Feature(1), 1).ry(Feature(2), 2)
    psi = statevector(c, data=x)
    phi = trigonometric()(x)
    product = np.einsum("a,b,c->abc", *phi).reshape(-1)
    np.testing.assert_allclose(psi, product, atol=1e-14)


def test_bind_inverse_compose_depth_draw():
    rng = np.random.default_rng(0)
    c = Circuit(3).h(0).ry(Trainable(0), 1).rz(Feature(0), 2).cx(0, 1).rzz(Trainable(1), 1, 2)
    c = c.su4(0, 2, start=2).gate("s", 1).gate("iswap", 2, 0)
    theta, x = rng.normal(size=17), [0.4]
    bound = c.bind(theta, x)
    assert bound.n_params == 0 and bound.n_features == 0
    np.testing.assert_allclose(statevector(bound), statevector(c, theta, x), atol=1e-12)
    ident = bound.compose(bound.inverse())
    np.testing.assert_allclose(np.abs(statevector(ident)[0]), 1.0, atol=1e-12)
    # every registered parameterised gate inverts symbolically (angles negated/permuted)
    sym = c.compose(c.inverse())
    np.testing.assert_allclose(statevector(sym, theta, x)[0], 1.0, atol=1e-12)
    assert c.count_2q() == 4 and c.depth() == 5
    text = c.draw()
    assert "su4" in text and "theta[2]" in text and text.count("\n") == len(c.ops)


def test_invalid_construction_errors():
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        Circuit(2).cx(0, 2)
    with pytest.raises(ValueError, match=r"takes 1 angle\(s\) then 1 qubit\(s\), got 1"):
        Circuit(1).gate("ry", 0)
    with pytest.raises(ValueError, match="not unitary"):
        Circuit(1).unitary(np.array([[1, 1], [0, 1]]), 0)
    with pytest.raises(ValueError, match="needs a 4x4 matrix"):
        Circuit(2).unitary(np.eye(2), (0, 1))
    with pytest.raises(ValueError, match="after it was discarded"):
        Circuit(2).discard(0).h(0)
    Circuit(2).discard(0).reset(0).h(0)  # reset makes it usable again
    with pytest.raises(ValueError, match="unknown gate 'foo'"):
        Circuit(1).gate("foo", 0)
    with pytest.raises(ValueError, match="repeated qubits"):
        Circuit(2).cx(1, 1)
    with pytest.raises(ValueError, match="n_qubits must be"):
        Circuit(0)
    with pytest.raises(ValueError, match="params: the circuit needs 1"):
        statevector(Circuit(1).ry(Trainable(0), 0))
    with pytest.raises(ValueError, match="not a gate"):
        statevector(Circuit(1).measure(0, 0))
    with pytest.raises(ValueError, match="Trainable index"):
        Trainable(-1)


def test_gate_objects_are_frozen():
    g = Gate("h", (0,))
    with pytest.raises(AttributeError):
        g.name = "x"
