"""Noise channels, NoiseModel, density-matrix networks, slicing, numpy backend, chain sampling."""

from __future__ import annotations

import cotengra as ctg
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qiskit.quantum_info import DensityMatrix, Kraus
from test_circuit import dm_to_big_endian, random_circuits, to_qiskit

from qtn.circuit import Circuit, Measure, Noise, Reset, Trainable, staircase
from qtn.errors import ContractionTooLargeError
from qtn.noise import (
    Channel,
    NoiseModel,
    ReadoutError,
    amplitude_damping,
    bit_flip,
    depolarizing,
    kraus_channel,
    phase_damping,
    thermal_relaxation,
)
from qtn.simulation import build_network, density_matrix, probabilities, simulate
from qtn.simulation.sampling import sample_chain

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't import `kahypar`")

CHANNELS = [
    depolarizing(0.3),
    depolarizing(0.2, 2),
    depolarizing(1.0, 2),
    amplitude_damping(0.4),
    phase_damping(0.7),
    bit_flip(0.1),
    thermal_relaxation(50e-6, 30e-6, 1e-6),
]


def _cheap():
    return lambda: ctg.HyperOptimizer(max_repeats=4, progbar=False, parallel=False, seed=0)


def _random_rho(dim, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim))
    rho = a @ a.conj().T
    return rho / np.trace(rho)


@pytest.mark.parametrize("ch", CHANNELS, ids=lambda c: c.name)
def test_channels_preserve_trace_and_positivity(ch):
    d = 2**ch.n_qubits
    for seed in range(3):
        out = ch.apply(_random_rho(d, seed))
        assert abs(np.trace(out) - 1) < 1e-12
        np.testing.assert_allclose(out, out.conj().T, atol=1e-12)
        assert np.linalg.eigvalsh(out).min() > -1e-12
    # complete positivity: the Choi matrix is positive semidefinite
    choi = sum(np.outer(k.reshape(-1), k.reshape(-1).conj()) for k in ch.kraus)
    assert np.linalg.eigvalsh(choi).min() > -1e-12


def test_channel_validation_and_conventions():
    with pytest.raises(ValueError, match="not complete"):
        kraus_channel([np.eye(2) * 0.9])
    with pytest.raises(ValueError, match=r"kraus\[1\] has shape"):
        kraus_channel([np.eye(2), np.eye(4)])
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        depolarizing(1.5)
    with pytest.raises(ValueError, match="t2 must be <= 2 \\* t1"):
        thermal_relaxation(10.0, 30.0, 1.0)
    with pytest.raises(ValueError, match="acts on 2 distinct qubit"):
        Noise(depolarizing(0.1, 2), (0,))
    # depolarizing(p): (1 - p) rho + p I/d, Aer's convention
    rho = _random_rho(4, 1)
    np.testing.assert_allclose(
        depolarizing(0.3, 2).apply(rho), 0.7 * rho + 0.3 * np.eye(4) / 4, atol=1e-12
    )
    # thermal relaxation: populations decay with T1, coherences with T2
    t1, t2, t = 40.0, 25.0, 3.0
    out = thermal_relaxation(t1, t2, t).apply(np.full((2, 2), 0.5))
    assert abs(out[1, 1] - 0.5 * np.exp(-t / t1)) < 1e-12
    assert abs(abs(out[0, 1]) - 0.5 * np.exp(-t / t2)) < 1e-12


def test_noise_model_rules():
    ch1, ch2 = amplitude_damping(0.1), depolarizing(0.05, 2)
    nm = (
        NoiseModel()
        .add_gate_noise(ch1, ["h"])
        .add_gate_noise(ch2, ["cx"], qubits=[0, 1])
        .add_gate_noise(ch1, "cx")
    )
    c = Circuit(3).h(0).h(2).cx(0, 1).cx(1, 2)
    ops = nm.apply(c).ops
    kinds = [(type(o).__name__, getattr(o, "channel", None), o.qubits) for o in ops]
    assert kinds == [
        ("Gate", None, (0,)),
        ("Noise", ch1, (0,)),
        ("Gate", None, (2,)),
        ("Noise", ch1, (2,)),
        ("Gate", None, (0, 1)),
        ("Noise", ch2, (0, 1)),
        ("Noise", ch1, (0,)),
        ("Noise", ch1, (1,)),
        ("Gate", None, (1, 2)),
        ("Noise", ch1, (1,)),
        ("Noise", ch1, (2,)),
    ]
    with pytest.raises(ValueError, match=r"unknown gate name\(s\) \['cnot'\]"):
        NoiseModel().add_gate_noise(ch2, ["cnot"])
    with pytest.raises(ValueError, match="2-qubit channel 'depolarizing' cannot follow"):
        NoiseModel().add_gate_noise(ch2).apply(Circuit(1).h(0))
    ro = NoiseModel().add_readout_error(ReadoutError(0.1, 0.2), qubits=[1])
    assert ro.readout_matrix(0) is None
    np.testing.assert_allclose(ro.readout_matrix(1), [[0.9, 0.2], [0.1, 0.8]])
    # P(read) = A P(true) on qubit 1 only
    p = ro.apply_readout(np.array([0.5, 0.0, 0.0, 0.5]), [0, 1])
    np.testing.assert_allclose(p, [0.45, 0.05, 0.1, 0.4])


@st.composite
def noisy_circuits(draw, max_qubits=4, max_ops=10):
    c = draw(random_circuits(max_qubits=max_qubits, max_ops=max_ops))
    n = c.n_qubits
    ops = list(c.ops)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(ops)))
        q = draw(st.integers(0, n - 1))
        kind = draw(st.sampled_from(["measure", "reset", "noise1", "noise2"]))
        if kind == "measure":
            ops.insert(pos, Measure(q, 0))
        elif kind == "reset":
            ops.insert(pos, Reset(q))
        elif kind == "noise2" and n >= 2:
            ops.insert(pos, Noise(depolarizing(draw(st.floats(0, 1)), 2), (q, (q + 1) % n)))
        else:
            ch = draw(st.sampled_from(CHANNELS[3:]))
            ops.insert(pos, Noise(ch, (q,)))
    return Circuit(n, tuple(ops))


@settings(max_examples=10, deadline=None)
@given(noisy_circuits(), st.data())
def test_noisy_networks_match_dense_oracle(c, data):
    n = c.n_qubits
    sim = simulate(c, dtype="complex128", optimizer=_cheap())
    rho = density_matrix(c)
    np.testing.assert_allclose(sim.density_matrix(), rho, atol=1e-10)
    qubits = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    p = sim.probs(qubits)
    np.testing.assert_allclose(p, probabilities(c, qubits), atol=1e-10)
    assert abs(p.sum() - 1) < 1e-10 and p.min() > -1e-12
    z = {q: "Z" for q in qubits}
    zz = np.real(np.diag(rho)) @ [(-1) ** sum(int(b) for i, b in enumerate(f"{k:0{n}b}")
                                             if i in qubits) for k in range(2**n)]  # fmt: skip
    np.testing.assert_allclose(sim.expectation(z), zz, atol=1e-10)


def test_noisy_density_matrix_matches_qiskit_kraus():
    ch1, ch2 = amplitude_damping(0.3), depolarizing(0.2, 2)
    c = Circuit(3).h(0).noise(ch1, 0).cx(0, 1).noise(ch2, (0, 1)).ry(0.4, 2).cx(2, 0)
    qc = to_qiskit(Circuit(3))
    for op in c.ops:
        if isinstance(op, Noise):
            # Kraus matrices are big-endian on their qubits; qiskit's qargs are little-endian
            qc.append(Kraus(list(op.channel.kraus)), list(reversed(op.qubits)))
        else:
            qc.compose(to_qiskit(Circuit(3, (op,))), inplace=True)
    ref = dm_to_big_endian(DensityMatrix(qc).data, 3)
    np.testing.assert_allclose(density_matrix(c), ref, atol=1e-12)
    sim = simulate(c, dtype="complex128", optimizer=_cheap())
    np.testing.assert_allclose(sim.density_matrix(), ref, atol=1e-10)


def test_complex64_noisy_tolerance_and_numpy_backend():
    c = staircase(4)
    nm = NoiseModel().add_gate_noise(depolarizing(0.02, 2), ["su4"])
    nm = nm.add_gate_noise(phase_damping(0.05), ["ry"]).add_readout_error(ReadoutError(0.01, 0.03))
    rng = np.random.default_rng(0)
    theta, X = rng.normal(size=c.n_params), rng.random((3, 4))
    ref = np.array([probabilities(c, [0, 3], theta, x, noise=nm) for x in X])
    p64 = simulate(c, noise=nm).probs([0, 3], params=theta, data=X)
    np.testing.assert_allclose(p64, ref, atol=5e-6)  # stated complex64 tolerance
    pnp = simulate(c, noise=nm, interface="numpy", dtype="complex128").probs(
        [0, 3], params=theta, data=X
    )
    np.testing.assert_allclose(pnp, ref, atol=1e-12)


def test_full_depolarizing_gives_uniform_marginals():
    c = staircase(4, encode=True)
    nm = NoiseModel().add_gate_noise(depolarizing(1.0, 2), ["su4"])
    rng = np.random.default_rng(1)
    sim = simulate(c, noise=nm, dtype="complex128")
    p = sim.probs([0, 2, 3], params=rng.normal(size=c.n_params), data=rng.random((4, 4)))
    np.testing.assert_allclose(p, 1 / 8, atol=1e-12)


def test_measure_and_reset_then_reuse_equals_fresh_qubit():
    # qubit 1 is measured, reset and reused; the reference uses fresh qubit 3 instead
    def body(c, q):
        return c.ry(Trainable(1), q).cx(q, 2).ry(Trainable(2), 2)

    reuse = body(Circuit(4).ry(Trainable(0), 0).cx(0, 1).measure(1, 0).reset(1), 1)
    fresh = body(Circuit(4).ry(Trainable(0), 0).cx(0, 1).measure(1, 0), 3)
    theta = np.array([0.7, 1.3, -0.4])
    a = simulate(reuse, dtype="complex128").probs([0, 1, 2], params=theta)
    b = simulate(fresh, dtype="complex128").probs([0, 3, 2], params=theta)
    np.testing.assert_allclose(a, b, atol=1e-12)
    sa = simulate(reuse, dtype="complex128").sample(4000, [0, 1, 2], params=theta, seed=3)
    sb = simulate(fresh, dtype="complex128").sample(4000, [0, 3, 2], params=theta, seed=3)
    np.testing.assert_array_equal(sa, sb)  # same distribution and seed: identical draws


def _random_pairs(n, gates, seed):
    rng = np.random.default_rng(seed)
    c = Circuit(n).ry(Trainable(0), 0)
    for _ in range(gates):
        a, b = rng.choice(n, 2, replace=False)
        c = c.gate("su4", *rng.normal(size=15), int(a), int(b))
    return c


def test_sliced_contraction_is_exact_under_memory_limit():
    c = _random_pairs(10, 30, seed=0)
    paulis = {q: "X" for q in range(10)}
    theta = np.array([[0.3], [1.1]])
    # a deterministic optimizer: the limited search must start from the same tree
    full = simulate(c, dtype="complex128", optimizer="greedy")
    ref = full.expectation(paulis, params=theta)
    plan = full.plan("expect", full._paulis(paulis))
    inputs = plan.network.input_bytes(16)
    limit = inputs + (plan.peak_bytes - inputs) // 2  # the unsliced plan does not fit
    assert plan.peak_bytes > limit
    for interface in ("jax", "numpy"):
        sim = simulate(
            c, dtype="complex128", optimizer="greedy", max_memory=limit, interface=interface
        )
        np.testing.assert_allclose(sim.expectation(paulis, params=theta), ref, atol=1e-12)
    sliced = sim.plan("expect", sim._paulis(paulis))
    assert sliced.tree.sliced_inds and sliced.peak_bytes <= limit
    with pytest.raises(
        ContractionTooLargeError, match=r"needs an estimated .* more than max_memory"
    ):
        simulate(c, optimizer="greedy", max_memory=1000).expectation(paulis, params=theta[0])


def test_chain_rule_sampling_matches_exact_distribution():
    c = staircase(5, sweeps=1)
    rng = np.random.default_rng(2)
    theta, x = rng.normal(size=c.n_params), rng.random(5)
    sim = simulate(c, dtype="complex128", optimizer=_cheap())
    shots = 40_000
    s = sample_chain(sim, np.random.default_rng(0), shots, (0, 1, 2, 3, 4), theta, x, block=2)
    emp = np.bincount(s @ (2 ** np.arange(4, -1, -1)), minlength=32) / shots
    p = probabilities(c, None, theta, x)
    # 5 sigma per outcome
    assert np.all(np.abs(emp - p) < 5 * np.sqrt(p * (1 - p) / shots) + 1e-4)


def test_chain_rule_sampling_applies_readout_errors():
    c = Circuit(3).x(1)
    nm = NoiseModel().add_readout_error(ReadoutError(0.1, 0.3), qubits=[0, 1])
    sim = simulate(c, noise=nm, optimizer=_cheap())
    shots = 20_000
    s = sample_chain(sim, np.random.default_rng(1), shots, (0, 1, 2), None, None, block=1)
    # qubit 0 is |0>: read 1 w.p. 0.1; qubit 1 is |1>: read 0 w.p. 0.3; qubit 2 exact
    for j, p in ((0, 0.1), (1, 0.7), (2, 0.0)):
        assert abs(s[:, j].mean() - p) < 5 * np.sqrt(p * (1 - p) / shots) + 1e-12
    exact = probabilities(c, None, noise=nm)
    np.testing.assert_allclose(sim.probs(), exact, atol=1e-6)


def test_sampling_beyond_20_qubits_ghz():
    n = 22
    c = Circuit(n).h(0)
    for q in range(n - 1):
        c = c.cx(q, q + 1)
    s = simulate(c, optimizer=_cheap()).sample(500, seed=5)
    assert s.shape == (500, n)
    assert np.all((s == s[:, :1]).all(axis=1))  # all zeros or all ones
    assert 0.35 < s[:, 0].mean() < 0.65


def test_channel_is_frozen_and_hashable_by_value():
    ch = depolarizing(0.1)
    assert isinstance(ch, Channel) and ch.n_qubits == 1
    with pytest.raises(AttributeError):
        ch.name = "x"


def test_batches_are_chunked_to_fit_memory():
    c = staircase(3)
    rng = np.random.default_rng(4)
    theta, X = rng.normal(size=c.n_params), rng.random((5, 3))
    full = simulate(c, dtype="complex128")
    ref = full.probs([1], params=theta, data=X)
    plan = full.plan("probs", (1,))
    flags = (False, True, False, False, False)
    with jax.enable_x64(True):  # XLA's own count for chunks of 2 and of 5 inputs
        two, five = (plan.executable(flags, (theta, X[:k], None, None, None)).device_bytes()
                     for k in (2, 5))  # fmt: skip
    results = 2 * 5 * plan.program.output_bytes
    assert five > two
    sim = simulate(c, dtype="complex128", max_memory=results + two)  # two inputs per chunk
    np.testing.assert_allclose(sim.probs([1], params=theta, data=X), ref, atol=1e-12)
    with jax.enable_x64(True):
        inputs = [theta, X, None]
        _, chunk = sim._executable(sim.plan("probs", (1,)), flags, inputs, None, 5, 5, "probs")
    assert chunk == 2


def test_reverse_light_cone_drops_operations_that_cannot_matter():
    """P(qubit 0) of a 6-qubit staircase only sees the blocks on (0,1), (1,2) of the
    first sweep and (0,1) of the second; the rest (and their noise) cancel exactly."""
    c = staircase(6, sweeps=2).measure(4, 0).reset(5)
    nm = (
        NoiseModel()
        .add_gate_noise(depolarizing(0.05, 2), ["su4"])
        .add_gate_noise(amplitude_damping(0.1), ["ry"])
    )
    noisy = nm.apply(c)
    net = build_network(noisy, ("probs", (0,)))
    su4 = [op for op, conj in net.gate_slots if op.name == "su4" and not conj]
    assert sorted(op.qubits for op in su4) == [(0, 1), (0, 1), (1, 2)]
    ry = sorted(op.qubits for op, conj in net.gate_slots if op.name == "ry" and not conj)
    assert ry == [(0,), (1,), (2,)]
    rng = np.random.default_rng(3)
    theta, x = rng.normal(size=c.n_params), rng.random((4, 6))
    sim = simulate(c, noise=nm, dtype="complex128", optimizer="greedy")
    for q in ([0], [2, 5], [3]):
        ref = [probabilities(noisy, q, params=theta, data=xi) for xi in x]
        np.testing.assert_allclose(sim.probs(q, params=theta, data=x), ref, atol=1e-12)
    ref = [probabilities(noisy, [0, 1], params=theta, data=xi) for xi in x]
    zz = np.array([r[0] - r[1] - r[2] + r[3] for r in ref])
    np.testing.assert_allclose(sim.expectation("ZZIIII", params=theta, data=x), zz, atol=1e-12)
