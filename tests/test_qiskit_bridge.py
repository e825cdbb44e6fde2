"""The Qiskit bridge's conventions against oracles qtn does not produce: Aer noise models
built from Aer's own constructors, Aer's samplers, qiskit-ibm-runtime's local mode."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import transpile
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel as AerNoiseModel
from qiskit_aer.noise import ReadoutError as AerReadoutError
from qiskit_aer.noise import amplitude_damping_error, depolarizing_error, phase_damping_error
from qiskit_aer.primitives import SamplerV2 as AerSamplerV2
from test_execution import tvd_bound

from qtn.circuit import Circuit, Feature, Trainable
from qtn.execution import (
    ReadoutMitigator,
    Runner,
    cross_entropy_loss,
    parameter_shift_grad,
    to_aer_noise_model,
)
from qtn.execution import runner as runner_mod
from qtn.export import from_qiskit_order, parameter_values, to_qiskit, to_qiskit_order
from qtn.noise import NoiseModel, ReadoutError, amplitude_damping, depolarizing, phase_damping
from qtn.simulation import density_matrix, probabilities, simulate

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't import `kahypar`")
RUNTIME_DEPRECATION = pytest.mark.filterwarnings(
    "ignore:The (Sampler|Estimator)V2 class is deprecated:DeprecationWarning"
)


def _aer_dm(circuit: Circuit, aer_noise) -> np.ndarray:
    """Aer's exact final density matrix of qtn's (noise-free) export under ``aer_noise``,
    in qtn's index order."""
    sim = AerSimulator(method="density_matrix", noise_model=aer_noise)
    qc = to_qiskit(circuit)
    qc.save_density_matrix()
    rho = sim.run(transpile(qc, sim, optimization_level=0)).result().data()["density_matrix"]
    return from_qiskit_order(np.asarray(rho), axes=(-2, -1))


def test_stacked_gate_rules_compose_in_order_like_aer_constructors():
    """depolarizing on every x, then amplitude damping on x at qubit 0: qtn composes both;
    Aer's qubit-specific error would replace the all-qubit one unless composed for it."""
    nm = (
        NoiseModel()
        .add_gate_noise(depolarizing(0.5), ["x"])
        .add_gate_noise(amplitude_damping(0.5), ["x"], qubits=[0])
    )
    c = Circuit(2).x(0).x(1)
    exact = probabilities(c, [0], noise=nm)
    np.testing.assert_allclose(exact, [0.625, 0.375], atol=1e-12)  # the numbers
    oracle = AerNoiseModel()
    oracle.add_all_qubit_quantum_error(depolarizing_error(0.5, 1), "x")
    oracle.add_quantum_error(
        depolarizing_error(0.5, 1).compose(amplitude_damping_error(0.5)), "x", [0]
    )
    ref = _aer_dm(c, oracle)
    np.testing.assert_allclose(density_matrix(c, noise=nm), ref, atol=1e-12)
    np.testing.assert_allclose(_aer_dm(c, to_aer_noise_model(nm)), ref, atol=1e-12)
    # three rules, two overlapping qubit sets, on a 2-qubit gate with a 2-qubit channel
    nm3 = (
        NoiseModel()
        .add_gate_noise(phase_damping(0.3), ["ry"], qubits=[0, 1])
        .add_gate_noise(depolarizing(0.2), ["ry"])
        .add_gate_noise(amplitude_damping(0.4), ["ry"], qubits=[1])
        .add_gate_noise(depolarizing(0.3, 2), ["cx"], qubits=[1, 2])
    )
    c3 = Circuit(3).ry(1.1, [0, 1, 2]).cx(1, 2).cx(0, 1).ry(0.5, 1)
    oracle3 = AerNoiseModel()
    oracle3.add_all_qubit_quantum_error(depolarizing_error(0.2, 1), "ry")
    oracle3.add_quantum_error(phase_damping_error(0.3).compose(depolarizing_error(0.2, 1)),
                              "ry", [0])  # fmt: skip
    oracle3.add_quantum_error(
        phase_damping_error(0.3).compose(depolarizing_error(0.2, 1)).compose(
            amplitude_damping_error(0.4)), "ry", [1],
    )  # fmt: skip
    for pair in ([1, 2], [2, 1]):
        oracle3.add_quantum_error(depolarizing_error(0.3, 2), "cx", pair)
    ref3 = _aer_dm(c3, oracle3)
    np.testing.assert_allclose(density_matrix(c3, noise=nm3), ref3, atol=1e-12)
    np.testing.assert_allclose(_aer_dm(c3, to_aer_noise_model(nm3)), ref3, atol=1e-12)


def test_one_qubit_channel_on_a_two_qubit_gate_acts_on_each_qubit():
    nm = NoiseModel().add_gate_noise(depolarizing(0.2), ["cx"])
    c = Circuit(2).h(0).cx(0, 1).ry(0.3, 1).cx(1, 0)
    oracle = AerNoiseModel()
    one = depolarizing_error(0.2, 1)
    oracle.add_all_qubit_quantum_error(one.tensor(one), "cx")
    ref = _aer_dm(c, oracle)
    np.testing.assert_allclose(density_matrix(c, noise=nm), ref, atol=1e-12)
    np.testing.assert_allclose(_aer_dm(c, to_aer_noise_model(nm)), ref, atol=1e-12)
    with pytest.raises(ValueError, match="2-qubit channel 'depolarizing' cannot follow"):
        to_aer_noise_model(NoiseModel().add_gate_noise(depolarizing(0.1, 2), ["x"]))
    with pytest.raises(ValueError, match="a gate rule for all gates has no Aer equivalent"):
        to_aer_noise_model(NoiseModel().add_gate_noise(depolarizing(0.1)))


def test_stacked_readout_errors_compose_in_runner_and_aer_model():
    nm = (
        NoiseModel()
        .add_readout_error(ReadoutError(0.2, 0.3))
        .add_readout_error(ReadoutError(0.1, 0.4), qubits=[0])
    )
    c = Circuit(2).x(0).ry(1.0, 1)
    exact = probabilities(c, [0], noise=nm)
    a, b = ReadoutError(0.2, 0.3).matrix, ReadoutError(0.1, 0.4).matrix
    np.testing.assert_allclose(exact, (b @ a)[:, 1], atol=1e-12)  # composed, not replaced
    shots = 100_000
    res = Runner(c, noise=nm, seed=3).run(shots=shots)
    full = probabilities(c, noise=nm)
    assert 0.5 * np.abs(res.probs - full).sum() < tvd_bound(full, shots)
    # the Aer model against one built from Aer's constructors, composed by hand
    oracle = AerNoiseModel()
    oracle.add_all_qubit_readout_error(AerReadoutError(a.T))
    oracle.add_readout_error(AerReadoutError((b @ a).T), [0])
    ours = to_aer_noise_model(nm)
    assert ours.to_dict()["errors"] == oracle.to_dict()["errors"]


def test_counts_are_keyed_as_qiskit_writes_them():
    c = Circuit(3).x(0).h(2).measure([0, 1, 2], [0, 1, 2])
    runner = Runner(c, seed=7)
    res = runner.run(shots=1000)
    ref = AerSamplerV2.from_backend(runner.backend, seed=7).run([(runner.transpiled, None, 1000)])
    assert res.counts() == ref.result()[0].data.c.get_counts()
    assert set(res.counts()) == {"001", "101"}  # clbit 0 rightmost
    np.testing.assert_allclose(res.probs[[4, 5]].sum(), 1.0)  # qtn order: clbit 0 leftmost bit


def test_initial_layout_and_measured_qubits_keep_their_meaning():
    fake = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    backend = fake.FakeBelemV2()
    c = Circuit(2).x(0).measure([0, 1], [0, 1])
    runner = Runner(c, backend=backend, initial_layout=[3, 1], seed=0)
    assert runner.measured_qubits == (3, 1)
    res = runner.run(shots=2000)
    assert res.counts().get("01", 0) > 1800  # qubit 0 (physical 3) flipped -> clbit 0


def test_readout_mitigation_calibrates_the_transpiled_physical_qubits():
    fake = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    backend = fake.FakeJakartaV2()
    props = backend.properties()
    c = Circuit(2).ry(1.1, 0).cx(0, 1).measure([0, 1], [0, 1])
    runner = Runner(c, backend=backend, initial_layout=[4, 5], seed=1)
    assert runner.measured_qubits == (4, 5)
    mit = ReadoutMitigator.calibrate(runner, shots=20_000, seed=2)
    assert mit.qubits == (4, 5)
    for j, q in enumerate(runner.measured_qubits):  # P(read 1 | prepared 0) of that qubit
        expected = props.qubit_property(q)["prob_meas1_prep0"][0]
        assert abs(mit.matrices[j][1, 0] - expected) < 0.008, (q, mit.matrices[j], expected)
    # qubits 0 and 1 read far better (0.006, 0.015): calibrating them would be wrong
    assert mit.matrices[0][1, 0] > 0.04
    # the integer form pins physical qubits
    pinned = ReadoutMitigator.calibrate(7, [4], backend=backend, shots=20_000, seed=3)
    assert pinned.qubits == (4,) and abs(pinned.matrices[0][1, 0] - 0.061) < 0.008


@RUNTIME_DEPRECATION
def test_runtime_sampler_local_mode_static_and_dynamic():
    runtime = pytest.importorskip("qiskit_ibm_runtime")
    from qiskit_ibm_runtime.fake_provider import FakeBelemV2, FakeJakartaV2

    # FakeBelemV2: no dynamic circuits; job, Session and Batch modes
    belem = FakeBelemV2()
    c = Circuit(2).ry(Feature(0), 0).cx(0, 1).measure([0, 1], [0, 1])
    X = np.array([[0.3], [0.8]])
    exact = simulate(Circuit(2, c.ops[:2])).probs(data=X)
    sampler = runtime.SamplerV2(mode=belem)
    sampler.options.simulator.seed_simulator = 5
    before = len(runner_mod._TRANSPILED)
    runner = Runner(c, sampler=sampler, seed=1)
    assert runner.backend is belem and len(runner_mod._TRANSPILED) == before + 1
    res = runner.run(shots=4000, data=X)
    assert np.all(0.5 * np.abs(res.probs - exact).sum(1) < 0.2)  # a noisy device
    Runner(c, sampler=sampler, seed=1)  # same structure, same backend: no new transpilation
    assert len(runner_mod._TRANSPILED) == before + 1
    for mode in (runtime.Session, runtime.Batch):
        with mode(backend=belem) as m:
            r = Runner(c, sampler=runtime.SamplerV2(mode=m), seed=1).run(shots=2000, data=X)
        assert np.all(0.5 * np.abs(r.probs - exact).sum(1) < 0.2)
    with pytest.raises(ValueError, match="mid-circuit measurement is unsupported"):
        Runner(Circuit(2).h(0).measure(0, 0).cx(0, 1).measure(1, 1), sampler=sampler)
    # FakeJakartaV2 advertises if_else: a mid-circuit measurement, reset and reuse
    jakarta = FakeJakartaV2()
    dyn = Circuit(2).ry(1.2, 0).measure(0, 0).reset(0).ry(2.0, 0).cx(0, 1).measure(1, 1)
    r = Runner(dyn, sampler=runtime.SamplerV2(mode=jakarta), seed=2).run(shots=4000)
    p0 = probabilities(Circuit(2).ry(1.2, 0), [0])[1]
    p1 = probabilities(Circuit(2).ry(2.0, 0).cx(0, 1), [1])[1]
    assert abs(r.bits[0][:, 0].mean() - p0) < 0.06 and abs(r.bits[0][:, 1].mean() - p1) < 0.06
    # options pass through to the primitive (twirling has no effect in local mode)
    opts = {"default_shots": 123, "twirling": {"enable_gates": True}}
    with pytest.warns(UserWarning, match="no effect in local testing mode"):
        tw = Runner(c, sampler=runtime.SamplerV2(mode=belem), options=opts, seed=1)
        tw.run(shots=100, data=X)
    assert tw._sampler.options.twirling.enable_gates is True
    assert tw._sampler.options.default_shots == 123
    with pytest.raises(ValueError, match="has no option 'nonsense'"):
        Runner(c, sampler=runtime.SamplerV2(mode=belem), options={"nonsense": 1})
    # Pauli expectations through a runtime EstimatorV2 (qtn labels: letter i on qubit i)
    est = runtime.EstimatorV2(mode=belem)
    est.options.default_precision = 0.01
    est.options.simulator.seed_simulator = 6
    body = Circuit(2).ry(Feature(0), 0).cx(0, 1).x(1)
    evs = Runner(body, estimator=est, sampler=sampler).expectation(["ZI", "IZ"], data=X)
    ref = np.stack([simulate(body).expectation(p, data=X) for p in ("ZI", "IZ")], -1)
    np.testing.assert_array_equal(np.sign(evs), np.sign(ref))  # labels and layout right
    np.testing.assert_allclose(evs, ref, atol=0.25)  # the device's noise shrinks them


def test_runner_expectation_on_aer_is_exact():
    c = Circuit(3).ry(Trainable(0), 0).cx(0, 2).rx(Feature(0), 1).crz(Trainable(1), 1, 2)
    theta, X = np.array([0.7, -1.3]), np.array([[0.2], [0.9]])
    sim = simulate(c, dtype="complex128")
    evs = Runner(c).expectation(["ZIZ", {1: "X"}], params=theta, data=X)
    ref = np.stack([sim.expectation(p, params=theta, data=X) for p in ("ZIZ", "IXI")], -1)
    np.testing.assert_allclose(evs, ref, atol=1e-10)
    nm = NoiseModel().add_gate_noise(depolarizing(0.1), ["ry", "cx"])
    noisy = Runner(c, noise=nm).expectation("ZIZ", params=theta, data=X[0])
    exact = simulate(c, noise=nm, dtype="complex128").expectation("ZIZ", params=theta, data=X[0])
    np.testing.assert_allclose(noisy, exact, atol=1e-10)


def test_four_term_shift_rule_for_controlled_rotations():
    c = Circuit(2).ry(Feature(0), 0).h(1).crx(Trainable(0), 0, 1).cp(Trainable(1), 1, 0)
    c = c.cry(Trainable(0, scale=0.5), 1, 0).h(0).measure(0, 0)
    X, y = np.array([[0.2], [0.7]]), np.array([0, 1])
    theta = np.array([0.9, -0.4])
    loss = cross_entropy_loss(y)
    value, grad, n = parameter_shift_grad(Runner(c, seed=4), loss, theta, data=X, shots=200_000)
    assert n == (1 + 4 + 2 + 4) * 2  # crx, cry: four shifted rows each; cp: two
    body = Circuit(2, c.ops[:-1])

    def exact(t):  # the dense oracle, numpy
        p = np.stack([probabilities(body, [0], t, data=x) for x in X])
        return -np.mean(np.log(p[np.arange(len(y)), y]))

    eye = np.eye(2)
    ref = np.array([(exact(theta + 1e-6 * e) - exact(theta - 1e-6 * e)) / 2e-6 for e in eye])
    np.testing.assert_allclose(value, exact(theta), atol=0.01)
    np.testing.assert_allclose(grad, ref, atol=0.02)


def test_backend_strings_and_bad_primitives_are_refused():
    with pytest.raises(TypeError, match="got the string 'aer'"):
        Runner(Circuit(1).h(0), backend="aer")
    with pytest.raises(TypeError, match="sampler must be a BaseSamplerV2"):
        Runner(Circuit(1).h(0), sampler=AerSimulator())
    with pytest.raises(ValueError, match="without measure"):
        Runner(Circuit(1).h(0).measure(0, 0)).expectation("Z")


def test_parameter_values_take_the_vector_names():
    c = Circuit(1).ry(Trainable(0), 0).rz(Feature(0), 0)
    qc = to_qiskit(c, params_name="w", data_name="inp")
    np.testing.assert_allclose(
        parameter_values(qc.parameters, [0.5], [0.25], params_name="w", data_name="inp"),
        [[0.25, 0.5]] if qc.parameters[0].name.startswith("inp") else [[0.5, 0.25]],
    )
    with pytest.raises(ValueError, match="not from qtn's export"):
        parameter_values(qc.parameters, [0.5], [0.25])
    np.testing.assert_allclose(to_qiskit_order(np.array([0.0, 1.0])), [0.0, 1.0])
