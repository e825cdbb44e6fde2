"""Exact sampling: the MPS sampler of pure circuits against exact distributions."""

from __future__ import annotations

import numpy as np
import pytest

from qtn.circuit import Circuit, Trainable
from qtn.noise import NoiseModel, ReadoutError
from qtn.simulation import probabilities, simulate
from qtn.simulation import sampling as sampling_mod
from qtn.simulation.mps_state import circuit_mps, sample_mps

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't import `kahypar`")


def _random_pairs(n, gates, seed):
    rng = np.random.default_rng(seed)
    c = Circuit(n)
    for _ in range(gates):
        a, b = rng.choice(n, 2, replace=False)  # non-neighbours: the MPS swaps them together
        c.gate("su4", *rng.normal(size=15), int(a), int(b))
    return c


def _within(emp, p, shots, sigmas=5.0):
    """Every outcome frequency within ``sigmas`` binomial standard deviations (+1e-4)."""
    return np.all(np.abs(emp - p) <= sigmas * np.sqrt(p * (1 - p) / shots) + 1e-4)


def test_exact_mps_of_a_circuit_equals_the_statevector():
    from qtn.simulation import statevector

    c = _random_pairs(6, 25, seed=1).ccx(0, 4, 2).cswap(5, 1, 3).ry(0.3, 2)
    cores = [np.array([1.0, 0.0], complex).reshape(1, 2, 1)] * 6
    sites, qubit_of, discarded = circuit_mps(c, None, None, cores)
    psi = sites[0]
    for s in sites[1:]:
        psi = np.tensordot(psi, s, axes=([psi.ndim - 1], [0]))
    psi = np.moveaxis(psi.reshape((2,) * 6), list(range(6)), qubit_of).reshape(-1)
    np.testing.assert_allclose(psi, statevector(c), atol=1e-12)
    assert discarded < 1e-24


def test_pure_circuit_samples_follow_the_exact_distribution():
    c = _random_pairs(6, 30, seed=0).ccx(0, 4, 2)
    sim = simulate(c, dtype="complex128")
    shots = 100_000
    s = sim.sample(shots, seed=1)
    emp = np.bincount(s @ (2 ** np.arange(5, -1, -1)), minlength=64) / shots
    assert _within(emp, probabilities(c), shots)
    sub = sim.sample(shots, qubits=[4, 1], seed=2)  # a marginal, in the order asked
    emp = np.bincount(sub @ [2, 1], minlength=4) / shots
    assert _within(emp, probabilities(c, [4, 1]), shots)
    np.testing.assert_array_equal(sim.sample(50, seed=3), sim.sample(50, seed=3))


def test_mps_sampler_input_states_parameters_and_readout():
    """Trainable and data angles, an MPS input state, and readout flips on a pure circuit."""
    from qtn.circuit import Feature
    from qtn.models import random_mps

    psi = random_mps(0, n_sites=5, bond_dim=3, complex=True)
    c = Circuit(5).ry(Feature(0), 0).rzz(Trainable(0), 1, 4).cx(3, 0).ry(Trainable(1), 2)
    theta, x = np.array([0.7, -1.2]), np.array([0.35])
    nm = NoiseModel().add_readout_error(ReadoutError(0.05, 0.1), qubits=[0, 3])
    sim = simulate(c, dtype="complex128", initial_state=psi, noise=nm)
    assert sim.is_pure
    shots = 100_000
    s = sim.sample(shots, params=theta, data=x, seed=4)
    emp = np.bincount(s @ (2 ** np.arange(4, -1, -1)), minlength=32) / shots
    ref = probabilities(c, None, theta, x, noise=nm, initial_state=psi.to_cores())
    assert _within(emp, ref, shots)


def test_large_bonds_fall_back_to_contraction(monkeypatch):
    """When the MPS would need bonds beyond MAX_BOND, the whole marginal is sampled instead."""
    c = _random_pairs(5, 20, seed=3)
    sim = simulate(c, dtype="complex128")
    monkeypatch.setattr(sampling_mod, "MAX_BOND", 1)
    shots = 50_000
    s = sim.sample(shots, seed=5)
    emp = np.bincount(s @ (2 ** np.arange(4, -1, -1)), minlength=32) / shots
    assert _within(emp, probabilities(c), shots)


def test_ghz_of_fifty_qubits_samples_at_once():
    c = Circuit(50).h(0)
    for q in range(49):
        c.cx(q, q + 1)
    s = simulate(c).sample(2000, seed=0)
    assert s.shape == (2000, 50) and np.all(s == s[:, :1])
    assert abs(s[:, 0].mean() - 0.5) < 5 * np.sqrt(0.25 / 2000)


def test_sample_mps_of_a_product_state():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(4, 2)) + 1j * rng.normal(size=(4, 2))
    cores = [v.reshape(1, 2, 1) * 3.0 for v in vecs]  # unnormalised on purpose
    shots = 40_000
    s = sample_mps(cores, shots, np.random.default_rng(1))
    p1 = np.abs(vecs[:, 1]) ** 2 / np.sum(np.abs(vecs) ** 2, axis=1)
    assert np.all(np.abs(s.mean(0) - p1) < 5 * np.sqrt(p1 * (1 - p1) / shots))
