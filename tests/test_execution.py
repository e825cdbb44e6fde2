"""Execution on Aer and fake hardware backends, noise agreement, mitigation, fine-tuning."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from qiskit.providers.fake_provider import GenericBackendV2
from qiskit_aer import AerSimulator

from qtn.circuit import Circuit, Feature, Trainable, staircase
from qtn.execution import (
    ReadoutMitigator,
    Runner,
    cross_entropy_loss,
    finetune,
    kl_loss,
    parameter_shift_grad,
    predict,
    project_to_simplex,
    run,
    score,
    to_aer_noise_model,
)
from qtn.execution import runner as runner_mod
from qtn.metrics import class_probabilities
from qtn.noise import NoiseModel, ReadoutError, amplitude_damping, depolarizing, phase_damping
from qtn.simulation import probabilities, simulate

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't import `kahypar`")


def tvd_bound(p, shots, sigmas=4.0):
    """Mean + sigmas * std of the total variation distance of a multinomial sample from p."""
    s = np.sqrt(p * (1 - p) / shots)
    return 0.5 * np.sqrt(2 / np.pi) * s.sum() + sigmas * 0.5 * np.sqrt(
        (1 - 2 / np.pi) * (s**2).sum()
    )


NOISE = (
    NoiseModel()
    .add_gate_noise(depolarizing(0.04, 2), ["su4", "cx"])
    .add_gate_noise(amplitude_damping(0.08), ["ry"])
    .add_gate_noise(phase_damping(0.05), ["ry"], qubits=[1])
    .add_readout_error(ReadoutError(0.02, 0.05))
)


def test_noisy_qtn_and_aer_agree_within_sampling_error():
    c = staircase(3, 2)
    rng = np.random.default_rng(0)
    theta, X = rng.normal(size=c.n_params), rng.random((3, 3))
    shots = 100_000
    res = Runner(c, noise=NOISE, seed=11).run(shots=shots, params=theta, data=X)
    exact = simulate(c, noise=NOISE, dtype="complex128").probs(params=theta, data=X)
    for p_aer, p in zip(res.probs, exact):
        tvd = 0.5 * np.abs(p_aer - p).sum()
        assert tvd < tvd_bound(p, shots), (tvd, tvd_bound(p, shots))


def test_runner_survives_aers_kraus_fusion_failure():
    """qiskit-aer #2455: with Aer 0.18 this binding fails in Aer's Kraus gate fusion
    ("heevx ... eigensystem_hermitian"); the Runner's own backend reruns the job with
    fusion off. Either way the samples must match qtn's exact noisy probabilities."""
    c = staircase(10, 2).measure(9, 0)
    nm = (
        NoiseModel()
        .add_gate_noise(depolarizing(0.01), ["ry"])
        .add_gate_noise(depolarizing(0.02, 2), ["su4"])
    )
    rng = np.random.default_rng(1)
    theta, X = rng.normal(size=c.n_params), rng.random((200, 10))
    shots = 20_000
    res = Runner(c, noise=nm, seed=0).run(shots=shots, params=theta, data=X[132])
    exact = simulate(c, noise=nm, dtype="complex128").probs([9], params=theta, data=X[132])
    tvd = 0.5 * np.abs(res.probs - exact).sum()
    assert tvd < tvd_bound(exact, shots), (tvd, tvd_bound(exact, shots))


def test_aer_noise_model_mapping_matches_qtn():
    nm = (
        NoiseModel()
        .add_gate_noise(depolarizing(0.05, 2), ["cx"])
        .add_gate_noise(amplitude_damping(0.1), ["ry", "h"])
        .add_readout_error(ReadoutError(0.03, 0.01), qubits=[0])
    )
    c = Circuit(3).h(0).cx(0, 1).ry(0.8, 2).cx(1, 2).ry(Feature(0), 0)
    aer = AerSimulator(noise_model=to_aer_noise_model(nm))
    shots = 100_000
    res = Runner(c, backend=aer, optimization_level=0, seed=5).run(shots=shots, data=[0.3])
    p = probabilities(c, None, data=[0.3], noise=nm)
    assert 0.5 * np.abs(res.probs - p).sum() < tvd_bound(p, shots)
    with pytest.raises(ValueError, match="exports as several Qiskit instructions"):
        to_aer_noise_model(NoiseModel().add_gate_noise(depolarizing(0.1, 2), ["su4"]))


def test_dynamic_circuit_statistics_match_qtn():
    # qubit 1 is measured mid-circuit, reset and reused
    prefix = Circuit(3).ry(Trainable(0), 0).cx(0, 1)
    c = prefix.copy().measure(1, 0).reset(1).ry(Trainable(1), 1).cx(1, 2).measure(2, 1)
    theta = np.array([1.0, 2.1])
    shots = 50_000
    res = run(c, shots=shots, params=theta, seed=2)
    c0 = res.bits[0][:, 0].mean()
    c1 = res.bits[0][:, 1].mean()
    p0 = probabilities(prefix, [1], theta)[1]
    p1 = probabilities(Circuit(3, c.ops[:-1]), [2], theta)[1]
    for f, p in ((c0, p0), (c1, p1)):
        assert abs(f - p) < 5 * np.sqrt(p * (1 - p) / shots)


def test_fake_hardware_backend_transpiles_once():
    fake_provider = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    backend = fake_provider.FakeManilaV2()
    c = Circuit(2).ry(Feature(0), 0).cx(0, 1)
    runner = Runner(c, backend=backend, seed=1)
    before = len(runner_mod._TRANSPILED)
    a = runner.run(shots=4000, data=np.array([[0.5], [0.0]]))
    Runner(c, backend=backend, seed=1)  # same structure and backend: cached
    assert len(runner_mod._TRANSPILED) == before
    assert a.probs.shape == (2, 4)
    np.testing.assert_allclose(a.probs.sum(1), 1.0)
    # a Bell state on a noisy device: mostly 00 and 11, not exactly
    assert a.probs[0, 0] + a.probs[0, 3] > 0.85
    assert a.probs[1, 0] > 0.85  # x = 0: |00>


def test_readout_mitigation_recovers_exact_probabilities():
    ro = NoiseModel().add_readout_error(ReadoutError(0.08, 0.12))
    c = Circuit(2).ry(1.1, 0).cx(0, 1).ry(0.4, 1)
    exact = probabilities(c)
    raw = run(c, shots=100_000, noise=ro, seed=4).probs
    mit = ReadoutMitigator.calibrate(2, noise=ro, shots=100_000, seed=9)
    fixed = mit.apply(raw)
    assert np.abs(fixed - exact).sum() < 0.25 * np.abs(raw - exact).sum()
    np.testing.assert_allclose(fixed.sum(), 1.0)
    assert fixed.min() >= 0
    np.testing.assert_allclose(project_to_simplex(np.array([0.7, 0.5, -0.2])), [0.6, 0.4, 0.0])
    with pytest.raises(ValueError, match="column-stochastic"):
        ReadoutMitigator([np.eye(2) * 2])


def _classifier():
    c = Circuit(2).ry(Feature(0), 0).ry(Feature(1), 1)
    c = c.ry(Trainable(0), 0).ry(Trainable(1, scale=2.0), 1).cx(0, 1).rzz(Trainable(2), 0, 1)
    return c.ry(Trainable(0), 0).measure(0, 0)


@pytest.mark.parametrize("noise", [None, NOISE], ids=["noiseless", "noisy"])
def test_parameter_shift_gradient_matches_exact_gradient(noise):
    """Noise channels are fixed maps after the gates, so the shift rule stays exact;
    the shifted circuits must carry the runner's channels and readout errors."""
    c = _classifier()
    rng = np.random.default_rng(1)
    X, y = rng.random((4, 2)), np.array([0, 1, 1, 0])
    theta = np.array([0.3, -0.2, 0.7])
    loss = cross_entropy_loss(y)
    runner = Runner(c, noise=noise, seed=3)
    value, grad, n = parameter_shift_grad(runner, loss, theta, data=X, shots=200_000)
    assert n == (1 + 2 * 4) * 4  # base + two shifts for each of 4 occurrences, 4 inputs
    sim = simulate(Circuit(2, c.ops[:-1]), noise=noise, dtype="complex128")
    with jax.enable_x64(True):
        f = sim.probs_fn([0])

        def exact(t):
            return loss(jnp.stack([f(t, jnp.asarray(x)) for x in X]))

        ref_v, ref_g = float(exact(jnp.asarray(theta))), np.asarray(jax.grad(exact)(theta))
    assert abs(value - ref_v) < 0.02
    np.testing.assert_allclose(grad, ref_g, atol=0.03)
    with pytest.raises(ValueError, match="parameter-shift needs gates with a shift rule"):
        parameter_shift_grad(Runner(staircase(2)), loss, np.zeros(15), data=X, shots=10)


def test_spsa_finetuning_improves_and_is_reproducible():
    c = _classifier()
    rng = np.random.default_rng(2)
    X = rng.random((8, 2))
    y = (X[:, 0] > X[:, 1]).astype(int)
    runner = Runner(c, seed=0)
    theta0 = np.array([0.3, -0.2, 0.1])
    kw = dict(data=X, shots=2000, maxiter=25, seed=0, verbose=0)
    a = finetune(runner, cross_entropy_loss(y), theta0, **kw)
    b = finetune(runner, cross_entropy_loss(y), theta0, **kw)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    np.testing.assert_array_equal(a.params, b.params)
    assert min(h["loss"] for h in a.history) < a.history[0]["loss"] - 0.05
    assert a.n_bindings == 2 * 8 * len(a.history)
    # sampled predictions against the exact class probabilities of the engine
    exact = simulate(Circuit(2, c.ops[:-1]), dtype="complex128").probs([0], params=a.params, data=X)
    clear = np.abs(exact[:, 0] - 0.5) > 0.1  # far from the decision boundary: no shot noise
    pred = predict(runner, X, a.params, shots=4000)
    np.testing.assert_array_equal(pred[clear], exact[clear].argmax(1))
    acc = score(runner, X, y, a.params, shots=4000)
    assert acc == np.mean(predict(runner, X, a.params, shots=4000) == y)
    ps = finetune(
        runner, cross_entropy_loss(y), theta0, method="parameter_shift", learning_rate=0.5,
        data=X, shots=2000, maxiter=6, verbose=0, patience=3,
    )  # fmt: skip
    assert ps.history[-1]["loss"] < ps.history[0]["loss"]


def test_state_circuit_finetuning_with_kl():
    c = Circuit(2).ry(Trainable(0), 0).cx(0, 1)
    target = np.array([0.25, 0, 0, 0.75])  # ry(2 pi/3) then CX
    res = finetune(Runner(c, seed=1), kl_loss(target), np.array([1.0]), shots=4000, maxiter=60,
                   seed=3, verbose=0, learning_rate=2.0, momentum=0.5)  # fmt: skip
    assert abs(res.params[0] - 2 * np.pi / 3) < 0.3


def test_bad_input_errors():
    c = Circuit(2).ry(Trainable(0), 0).cx(0, 1)
    runner = Runner(c, seed=0)
    with pytest.raises(ValueError, match="shots must be a positive integer"):
        runner.run(shots=0, params=[0.1])
    with pytest.raises(ValueError, match="params has 2 values per binding; the circuit needs 1"):
        runner.run(shots=10, params=[0.1, 0.2])
    with pytest.raises(ValueError, match="params: the circuit needs 1 values, got none"):
        runner.run(shots=10)
    generic = GenericBackendV2(3, basis_gates=["cx", "rz", "sx", "x"], seed=0)
    dyn = Circuit(2).h(0).measure(0, 0).cx(0, 1).measure(1, 1)
    with pytest.raises(ValueError, match="mid-circuit measurement is unsupported"):
        Runner(dyn, backend=generic)
    with pytest.raises(ValueError, match="noise= applies to Aer simulators only"):
        Runner(c, backend=generic, noise=NOISE)
    with pytest.raises(ValueError, match="method must be 'spsa' or 'parameter_shift'"):
        finetune(runner, kl_loss([1, 0, 0, 0]), [0.1], method="adam")
    with pytest.raises(ValueError, match=r"params0 must have shape \(1,\)"):
        finetune(runner, kl_loss([1, 0, 0, 0]), [0.1, 0.2])
    with pytest.raises(ValueError, match="n_classes must be in"):
        class_probabilities(np.ones((2, 4)) / 4, 5)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 1\]"):
        cross_entropy_loss([0, 2])
    with pytest.raises(ValueError, match="target must be a 1-D non-negative vector"):
        kl_loss([0.5, -0.5])
    with pytest.raises(ValueError, match="y must have one label per row of X"):
        score(runner, np.zeros((3, 0)), [0, 1], [0.1], shots=10)
    with pytest.raises(TypeError, match="noise must be a qtn.noise.NoiseModel"):
        to_aer_noise_model("depolarizing")
