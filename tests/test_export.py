"""qtn <-> Qiskit conversion: qubit labels kept, index order converted by qtn.export.order,
checked against qiskit.quantum_info and Aer's density-matrix method."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Gate as QiskitGate
from qiskit.circuit import Parameter, ParameterVector
from qiskit.circuit.library import QFTGate, get_standard_gate_name_mapping
from qiskit.circuit.random import random_circuit
from qiskit.exceptions import QiskitError
from qiskit.primitives import BitArray
from qiskit.quantum_info import DensityMatrix, Operator, SparsePauliOp, Statevector
from qiskit_aer import AerSimulator
from test_circuit import random_circuits

from qtn import ExportError
from qtn.circuit import Circuit, Feature, Measure, Trainable, staircase
from qtn.export import (
    DENSE_MAX_QUBITS,
    clbit_probabilities,
    counts_from_bits,
    from_qiskit,
    from_qiskit_order,
    pauli_to_qiskit,
    qiskit_matrix,
    to_qasm3,
    to_qiskit,
    to_qiskit_order,
)
from qtn.noise import NoiseModel, amplitude_damping, depolarizing
from qtn.simulation import density_matrix, probabilities, simulate, statevector

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't import `kahypar`")


@settings(max_examples=60, deadline=None)
@given(random_circuits(max_qubits=6, max_ops=20))
def test_statevector_of_export_equals_qtn_in_qiskit_order(c):
    np.testing.assert_allclose(
        Statevector(to_qiskit(c)).data, to_qiskit_order(statevector(c)), atol=1e-10
    )


def test_qubit_labels_are_kept():
    qc = QuantumCircuit(3)
    qc.x(0)
    qc.cx(0, 2)
    c, _ = from_qiskit(qc)
    assert [(op.name, op.qubits) for op in c.ops] == [("x", (0,)), ("cx", (0, 2))]
    # qtn's basis index reads q0 q1 q2: |101> is index 5; Qiskit's reads q2 q1 q0: also 5
    np.testing.assert_allclose(np.abs(statevector(c)), np.eye(8)[0b101])
    back = to_qiskit(c)
    assert [(i.operation.name, [back.find_bit(q).index for q in i.qubits]) for i in back.data] == [
        ("x", [0]),
        ("cx", [0, 2]),
    ]
    asym = Circuit(3).x(0)  # |100> in qtn's order, index 4; Qiskit's index 1
    np.testing.assert_allclose(Statevector(to_qiskit(asym)).data, np.eye(8)[1])
    np.testing.assert_allclose(statevector(asym), np.eye(8)[4])
    meas = Circuit(3).h(1).measure(1, 0).measure(2, 1)
    qm = to_qiskit(meas)
    pairs = [(qm.find_bit(i.qubits[0]).index, qm.find_bit(i.clbits[0]).index)
             for i in qm.data if i.operation.name == "measure"]  # fmt: skip
    assert pairs == [(1, 0), (2, 1)]


def test_order_helpers_against_quantum_info():
    rng = np.random.default_rng(0)
    c = Circuit(3).ry(0.3, 0).rx(1.2, 1).cx(0, 2).h(2).rzz(0.4, 1, 2)
    qc = to_qiskit(c)
    sv = Statevector(qc)
    psi = statevector(c)
    np.testing.assert_allclose(from_qiskit_order(sv.data), psi, atol=1e-12)
    np.testing.assert_allclose(to_qiskit_order(psi), sv.data, atol=1e-12)
    # marginal probabilities of listed qubits: qtn big-endian in list order,
    # Qiskit little-endian in qargs order
    for qs in ([0], [2, 0], [1, 2, 0]):
        np.testing.assert_allclose(
            to_qiskit_order(probabilities(c, qs)), sv.probabilities(qs), atol=1e-12
        )
    # batches: the last axis only
    batch = rng.random((4, 8))
    np.testing.assert_allclose(to_qiskit_order(batch)[2], to_qiskit_order(batch[2]))
    # density matrices and operators: both axes
    rho = density_matrix(c)
    np.testing.assert_allclose(
        to_qiskit_order(rho, axes=(-2, -1)), DensityMatrix(qc).data, atol=1e-12
    )
    u = np.linalg.qr(rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8)))[0]
    cu = Circuit(3).unitary(u, [2, 0, 1])  # big-endian on (2, 0, 1)
    qm = QuantumCircuit(3)
    qm.unitary(qiskit_matrix(u), [2, 0, 1])  # Qiskit: first qarg least significant
    np.testing.assert_allclose(Operator(to_qiskit(cu)).data, Operator(qm).data, atol=1e-12)
    # Pauli labels: qtn letter i on qubit i, Qiskit's qubit 0 rightmost
    label = "ZIX"
    z = simulate(c, dtype="complex128").expectation(label)
    np.testing.assert_allclose(z, sv.expectation_value(SparsePauliOp(pauli_to_qiskit(label))))
    assert pauli_to_qiskit({0: "z", 2: "y"}, 3) == "YIZ"
    with pytest.raises(ValueError, match="one letter per qubit"):
        pauli_to_qiskit("ZZ", 3)
    with pytest.raises(ValueError, match="not a power of 2"):
        to_qiskit_order(np.ones(3))


def test_counts_and_probabilities_of_bits_match_qiskit():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, size=(500, 3))
    ba = BitArray.from_bool_array(bits.astype(bool), order="little")  # column j = clbit j
    assert counts_from_bits(bits) == ba.get_counts()
    probs = clbit_probabilities(bits)
    qiskit_probs = np.zeros(8)
    for key, n in ba.get_counts().items():
        qiskit_probs[int(key, 2)] = n / 500
    np.testing.assert_allclose(to_qiskit_order(probs), qiskit_probs)
    np.testing.assert_allclose(
        clbit_probabilities(np.array([[1, 0], [1, 0], [0, 1], [1, 1]])), [0, 0.25, 0.5, 0.25]
    )


def _bind(qc, theta, x):
    vals = {p: (theta if p.vector.name == "theta" else x)[p.index] for p in qc.parameters}
    return qc.assign_parameters(vals)


def test_parameter_vectors_serve_every_input():
    c = staircase(4, 2)
    qc = to_qiskit(c)
    names = {p.vector.name for p in qc.parameters}
    assert names == {"theta", "x"} and qc.num_parameters == c.n_params + c.n_features
    rng = np.random.default_rng(0)
    theta = rng.normal(size=c.n_params)
    sim = simulate(c, dtype="complex128")
    for x in rng.random((3, 4)):
        ref = to_qiskit_order(sim.statevector(params=theta, data=x))
        np.testing.assert_allclose(Statevector(_bind(qc, theta, x)).data, ref, atol=1e-10)
        bound = to_qiskit(c, params=theta, data=x)
        assert bound.num_parameters == 0
        np.testing.assert_allclose(Statevector(bound).data, ref, atol=1e-10)
    partial = to_qiskit(c, params=theta)
    assert {p.vector.name for p in partial.parameters} == {"x"}
    scaled = to_qiskit(Circuit(1).ry(Trainable(0, scale=2.0, offset=0.5), 0), params=[0.3])
    np.testing.assert_allclose(Statevector(scaled).data, [np.cos(0.55), np.sin(0.55)], atol=1e-12)


def test_parameter_names_let_exported_circuits_compose_and_round_trip():
    a = Circuit(2).ry(Feature(0), 0).ry(Trainable(0), 1).cx(0, 1)
    b = Circuit(2).rz(Trainable(0, scale=2.0, offset=0.5), 0).rx(Feature(1, scale=1.5), 1)
    with pytest.raises(Exception, match="name conflict"):
        to_qiskit(a).compose(to_qiskit(b))
    qa = to_qiskit(a, params_name="ta", data_name="xa")
    qb = to_qiskit(b, params_name="tb", data_name="xb")
    both = qa.compose(qb)
    assert sorted(p.name for p in both.parameters) == ["ta[0]", "tb[0]", "xa[0]", "xb[1]"]
    with pytest.raises(ValueError, match="must differ"):
        to_qiskit(a, params_name="v", data_name="v")
    # qtn -> Qiskit -> qtn keeps the data / trainable split, indices, scales and offsets
    for circ in (a, b):
        back, prms = from_qiskit(to_qiskit(circ))
        assert back.ops == circ.ops
        assert [p.name for p in prms] == [f"theta[{i}]" for i in range(circ.n_params)]
    back, _ = from_qiskit(qb, params="tb", data="xb")
    assert back.ops == b.ops
    # without the data name, data angles become trainable slots after the vector's
    back, prms = from_qiskit(to_qiskit(a), data=None)
    assert back.n_features == 0 and back.n_params == 2 and prms[1].name == "x[0]"
    # a shorter vector and free parameters: slots follow the vector, then qc.parameters
    v, w = ParameterVector("theta", 3), Parameter("w")
    qc = QuantumCircuit(1)
    qc.ry(v[2], 0)
    qc.rz(w, 0)
    back, prms = from_qiskit(qc)
    assert [p.name for p in prms] == ["theta[0]", "theta[1]", "theta[2]", "w"]
    assert back.ops[0].angles == (Trainable(2),) and back.ops[1].angles == (Trainable(3),)


def _random_angles(rng, k):
    return list(rng.uniform(-3, 3, k))


GATE_NAMES = sorted(
    n for n in get_standard_gate_name_mapping() if n not in ("measure", "reset", "delay")
)


@pytest.mark.parametrize("name", GATE_NAMES)
def test_every_standard_gate_imports_exactly(name):
    """Each gate of Qiskit's standard library, on non-adjacent, non-sorted qubits, with
    symbolic angles that stay trainable: amplitudes equal Statevector's (global phase too)."""
    gate = get_standard_gate_name_mapping()[name]
    k, n_angles = gate.num_qubits, len(gate.params)
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    n = max(k, 1) + 1
    qubits = list(rng.permutation(n)[:k])
    qc = QuantumCircuit(n)
    for q in range(n):  # a generic product state
        qc.u(*_random_angles(rng, 3), q)
    prms = [Parameter(f"a{i}") for i in range(n_angles)]
    if name == "global_phase":  # qtn's global phase is a number: symbolic ones are refused
        with pytest.raises(ValueError, match="parameterised global phase"):
            from_qiskit(qc.compose(QuantumCircuit(n, global_phase=prms[0])))
        qc.append(type(gate)(0.9), qubits)
        prms = []
        n_angles = 0
    else:
        qc.append(type(gate)(*[0.5 * p + 0.1 for p in prms]), qubits)
    c, got = from_qiskit(qc)
    assert got == prms and c.n_params == n_angles
    values = _random_angles(rng, n_angles)
    bound = qc.assign_parameters(dict(zip(prms, values)))
    np.testing.assert_allclose(
        simulate(c, dtype="complex128").statevector(params=values),
        from_qiskit_order(Statevector(bound).data),
        atol=1e-10,
    )
    back = to_qiskit(c, params=values)  # and back to Qiskit, labels kept
    np.testing.assert_allclose(Statevector(back).data, Statevector(bound).data, atol=1e-10)


def test_global_phase_kept_through_definitions():
    inner = QuantumCircuit(2, global_phase=0.7)
    inner.h(0)
    inner.cx(0, 1)
    qc = QuantumCircuit(3, global_phase=-0.2)
    qc.append(inner.to_gate(label="bell"), [2, 0])
    qc.rccx(0, 1, 2)  # decomposed through Qiskit's definition, whose gates carry phases
    c, _ = from_qiskit(qc)
    assert c.global_phase == pytest.approx(0.5)
    np.testing.assert_allclose(statevector(c), from_qiskit_order(Statevector(qc).data), atol=1e-12)
    np.testing.assert_allclose(Statevector(to_qiskit(c)).data, Statevector(qc).data, atol=1e-12)


def test_composite_instructions_decompose_and_dense_fallback_is_bounded():
    qft = QuantumCircuit(12)
    qft.h(range(0, 12, 3))
    qft.append(QFTGate(12), range(12))
    c, _ = from_qiskit(qft)
    assert all(len(op.qubits) <= 2 for op in c.ops)  # gates, not one 4096x4096 matrix
    np.testing.assert_allclose(statevector(c), from_qiskit_order(Statevector(qft).data), atol=1e-10)

    class Opaque(QiskitGate):  # a matrix and no definition
        def __init__(self, k, seed):
            super().__init__("opaque", k, [])
            self.u = np.linalg.qr(np.random.default_rng(seed).normal(size=(2**k, 2**k)))[0]

        def __array__(self, dtype=None, copy=None):
            return self.u.astype(dtype or complex)

    small = QuantumCircuit(3)
    small.h(0)
    small.append(Opaque(2, 0), [2, 0])
    c, _ = from_qiskit(small)
    assert c.ops[-1].name == "unitary" and c.ops[-1].qubits == (0, 2)
    np.testing.assert_allclose(
        statevector(c), from_qiskit_order(Statevector(small).data), atol=1e-12
    )
    big = QuantumCircuit(DENSE_MAX_QUBITS + 1)
    big.append(Opaque(DENSE_MAX_QUBITS + 1, 1), range(DENSE_MAX_QUBITS + 1))
    with pytest.raises(ValueError, match=r"'opaque' at instruction 0.*transpile"):
        from_qiskit(big)


@st.composite
def qiskit_random_circuits(draw):
    n = draw(st.integers(1, 4))
    depth = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    return random_circuit(n, depth, max_operands=min(3, n), measure=True, reset=True, seed=seed)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(qiskit_random_circuits())
def test_random_qiskit_circuits_import_exactly(qc):
    """random_circuit (every standard gate, resets, final measurements) against
    qiskit.quantum_info and Aer's density-matrix method: the clbit distribution."""
    c, _ = from_qiskit(qc)
    body = qc.remove_final_measurements(inplace=False)
    # clbit j <- qubit measured into it (measurements are final)
    meas = {qc.find_bit(i.clbits[0]).index: qc.find_bit(i.qubits[0]).index
            for i in qc.data if i.operation.name == "measure"}  # fmt: skip
    qargs = [meas[j] for j in range(len(meas))]
    got = sorted((op.qubit, op.clbit) for op in c.ops if isinstance(op, Measure))
    assert got == sorted((q, j) for j, q in meas.items())  # labels kept
    unmeasured = Circuit(c.n_qubits, [o for o in c.ops if not isinstance(o, Measure)],
                         global_phase=c.global_phase)  # fmt: skip
    ours = to_qiskit_order(probabilities(unmeasured, qargs))
    ref = DensityMatrix(body).probabilities(qargs)
    np.testing.assert_allclose(ours, ref, atol=1e-10)
    sim = AerSimulator(method="density_matrix")
    aer_c = body.copy()
    aer_c.save_probabilities(qargs)
    aer = sim.run(transpile(aer_c, sim, optimization_level=0), shots=1).result()
    np.testing.assert_allclose(ours, aer.data()["probabilities"], atol=1e-8)
    if not any(i.operation.name == "reset" for i in body.data):  # a pure state: amplitudes
        np.testing.assert_allclose(
            statevector(unmeasured), from_qiskit_order(Statevector(body).data), atol=1e-10
        )


def test_dynamic_circuit_and_noise_export():
    c = Circuit(3).h(0).cx(0, 1).measure(1, 0).reset(1).ry(0.4, 1).cx(1, 2).measure(2, 1)
    qc = to_qiskit(c)
    assert [r.name for r in qc.cregs] == ["c"] and qc.num_clbits == 2
    ops = [i.operation.name for i in qc.data]
    assert ops.count("measure") == 2 and "reset" in ops
    nm = (
        NoiseModel()
        .add_gate_noise(depolarizing(0.1, 2), ["cx"])
        .add_gate_noise(amplitude_damping(0.2), ["h"])
    )
    c2 = Circuit(2).h(0).cx(0, 1).ry(0.7, 1)
    qn = to_qiskit(c2, noise=nm)
    assert sum(i.operation.name == "kraus" for i in qn.data) == 2
    np.testing.assert_allclose(
        DensityMatrix(qn).data,
        to_qiskit_order(density_matrix(c2, noise=nm), axes=(-2, -1)),
        atol=1e-12,
    )
    back, _ = from_qiskit(qn)  # Kraus instructions come back as noise channels
    np.testing.assert_allclose(density_matrix(back), density_matrix(c2, noise=nm), atol=1e-12)


def test_qasm3_text_and_noise():
    text = to_qasm3(Circuit(2).h(0).cx(0, 1).measure(0, 0).reset(0).ry(Feature(0), 1))
    assert text.startswith("OPENQASM 3") and "measure" in text and "reset" in text
    assert "input float[64] _x_0_;" in text and "ry(pi*_x_0_) q[1];" in text
    noisy = Circuit(1).h(0).noise(depolarizing(0.1), 0)
    with pytest.raises(ExportError, match="drop_noise=True"):
        to_qasm3(noisy)
    nm = NoiseModel().add_gate_noise(depolarizing(0.1), ["h"])
    with pytest.raises(ValueError, match="cannot express noise channels"):
        to_qasm3(Circuit(1).h(0), noise=nm)
    assert "kraus" not in to_qasm3(noisy, drop_noise=True)
    assert to_qasm3(Circuit(1).h(0), noise=nm, drop_noise=True) == to_qasm3(Circuit(1).h(0))


@settings(max_examples=30, deadline=None)
@given(random_circuits(max_qubits=5, max_ops=15))
def test_round_trip_through_qiskit(c):
    back, params = from_qiskit(to_qiskit(c))
    assert params == [] and back.n_qubits == c.n_qubits
    np.testing.assert_allclose(statevector(back), statevector(c), atol=1e-10)


def test_import_parameter_expressions_and_measurements():
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(3, 2)
    qc.h(0)
    qc.ry(2 * a + 0.5, 1)
    qc.rz(b, 2)
    qc.p(a, 0)
    qc.sx(2)
    qc.barrier()
    qc.cx(0, 2)
    qc.reset(1)
    qc.delay(100, 1)  # the identity in qtn's model: dropped
    vals = {a: 0.3, b: -1.2}
    ref = DensityMatrix(qc.assign_parameters(vals).remove_final_measurements(inplace=False))
    qc.measure(0, 1)
    c, params = from_qiskit(qc)
    assert [p.name for p in params] == ["a", "b"] and c.n_params == 2 and c.n_clbits == 2
    assert c.ops[-1] == Measure(0, 1)
    body = Circuit(3, c.ops[:-1])
    np.testing.assert_allclose(
        density_matrix(body, params=[0.3, -1.2]), from_qiskit_order(ref.data, (-2, -1)), atol=1e-10
    )


def test_import_errors_name_the_instruction():
    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(1)
    with pytest.raises(ValueError, match=r"unsupported instruction 'if_else' at instruction 2"):
        from_qiskit(qc)
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(1)
    qc.rx(a * b, 0)
    with pytest.raises(ValueError, match="depends on 2 parameters"):
        from_qiskit(qc)
    with pytest.raises(TypeError, match="qiskit.QuantumCircuit"):
        from_qiskit("h q[0];")
    with pytest.raises(ValueError, match="params has length 1"):
        to_qiskit(staircase(2), params=[0.1])
    with pytest.raises(ValueError, match="parameterised global phase"):
        from_qiskit(QuantumCircuit(1, global_phase=a))
    with pytest.raises(QiskitError):  # Qiskit itself refuses the conflicting names
        to_qiskit(Circuit(1).ry(Trainable(0), 0)).compose(to_qiskit(Circuit(1).rz(Trainable(0), 0)))
