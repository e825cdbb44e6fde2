"""qtn <-> Qiskit conversion: statevectors equal entry by entry (the one qubit-order flip)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import DensityMatrix, Statevector
from test_circuit import random_circuits

from qtn.circuit import Circuit, Feature, Measure, Trainable, staircase
from qtn.export import clbit_probabilities, from_qiskit, qiskit_qubit, to_qasm3, to_qiskit
from qtn.noise import NoiseModel, amplitude_damping, depolarizing
from qtn.simulation import density_matrix, simulate, statevector

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't import `kahypar`")


@settings(max_examples=60, deadline=None)
@given(random_circuits(max_qubits=6, max_ops=20))
def test_statevector_of_export_equals_qtn(c):
    np.testing.assert_allclose(Statevector(to_qiskit(c)).data, statevector(c), atol=1e-10)


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
        ref = sim.statevector(params=theta, data=x)
        np.testing.assert_allclose(Statevector(_bind(qc, theta, x)).data, ref, atol=1e-10)
        bound = to_qiskit(c, params=theta, data=x)
        assert bound.num_parameters == 0
        np.testing.assert_allclose(Statevector(bound).data, ref, atol=1e-10)
    partial = to_qiskit(c, params=theta)
    assert {p.vector.name for p in partial.parameters} == {"x"}
    scaled = to_qiskit(Circuit(1).ry(Trainable(0, scale=2.0, offset=0.5), 0), params=[0.3])
    np.testing.assert_allclose(Statevector(scaled).data, [np.cos(0.55), np.sin(0.55)], atol=1e-12)


def test_dynamic_circuit_and_noise_export():
    c = Circuit(3).h(0).cx(0, 1).measure(1, 0).reset(1).ry(0.4, 1).cx(1, 2).measure(2, 1)
    qc = to_qiskit(c)
    assert [r.name for r in qc.cregs] == ["c"] and qc.num_clbits == 2
    ops = [i.operation.name for i in qc.data]
    assert ops.count("measure") == 2 and "reset" in ops
    meas = [(qc.find_bit(i.qubits[0]).index, qc.find_bit(i.clbits[0]).index)
            for i in qc.data if i.operation.name == "measure"]  # fmt: skip
    assert meas == [(qiskit_qubit(1, 3), 0), (qiskit_qubit(2, 3), 1)]
    # (sampled agreement of the dynamic circuit with qtn: tests/test_execution.py)
    nm = (
        NoiseModel()
        .add_gate_noise(depolarizing(0.1, 2), ["cx"])
        .add_gate_noise(amplitude_damping(0.2), ["h"])
    )
    c2 = Circuit(2).h(0).cx(0, 1).ry(0.7, 1)
    qn = to_qiskit(c2, noise=nm)
    assert sum(i.operation.name == "kraus" for i in qn.data) == 2
    np.testing.assert_allclose(DensityMatrix(qn).data, density_matrix(c2, noise=nm), atol=1e-12)


def test_qasm3_text():
    text = to_qasm3(Circuit(2).h(0).cx(0, 1).measure(0, 0).reset(0).ry(Feature(0), 1))
    assert text.startswith("OPENQASM 3") and "measure" in text and "reset" in text
    assert "input float[64] _x_0_;" in text and "ry(pi*_x_0_) q[0];" in text


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
    vals = {a: 0.3, b: -1.2}
    ref = DensityMatrix(qc.assign_parameters(vals))
    qc.measure(0, 1)
    c, params = from_qiskit(qc)
    assert [p.name for p in params] == ["a", "b"] and c.n_params == 2 and c.n_clbits == 2
    assert c.ops[-1] == Measure(qiskit_qubit(0, 3), 1)
    body = Circuit(3, c.ops[:-1])
    np.testing.assert_allclose(density_matrix(body, params=[0.3, -1.2]), ref.data, atol=1e-10)
    bound, _ = from_qiskit(qc.assign_parameters(vals))
    np.testing.assert_allclose(density_matrix(Circuit(3, bound.ops[:-1])), ref.data, atol=1e-10)


def test_import_errors_name_the_instruction():
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.delay(100, 1)
    with pytest.raises(ValueError, match=r"unsupported instruction 'delay' at position 1"):
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


def test_qubit_map_and_clbit_probabilities():
    assert [qiskit_qubit(q, 4) for q in range(4)] == [3, 2, 1, 0]
    bits = np.array([[[1, 0], [1, 0], [0, 1], [1, 1]]])  # column j = clbit j
    np.testing.assert_allclose(clbit_probabilities(bits), [[0, 0.25, 0.5, 0.25]])
