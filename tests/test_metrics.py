"""qtn.metrics against independent oracles: qiskit.quantum_info, scipy, hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.quantum_info import DensityMatrix, Statevector, random_density_matrix, state_fidelity
from scipy.stats import entropy

from qtn.metrics import (
    accuracy,
    class_probabilities,
    expected_calibration_error,
    fidelity,
    kl_divergence,
    nll,
    total_variation,
)


def test_fidelity_matches_qiskit_for_pure_and_mixed_states():
    rng = np.random.default_rng(0)
    a = rng.normal(size=8) + 1j * rng.normal(size=8)
    b = rng.normal(size=8) + 1j * rng.normal(size=8)
    rho = random_density_matrix(8, seed=1).data
    sigma = random_density_matrix(8, seed=2).data
    sa, sb = Statevector(a / np.linalg.norm(a)), Statevector(b / np.linalg.norm(b))
    np.testing.assert_allclose(fidelity(a, b), state_fidelity(sa, sb), atol=1e-12)
    np.testing.assert_allclose(fidelity(a, rho), state_fidelity(sa, DensityMatrix(rho)), atol=1e-12)
    np.testing.assert_allclose(
        fidelity(rho, sigma), state_fidelity(DensityMatrix(rho), DensityMatrix(sigma)), atol=1e-8
    )
    with pytest.raises(ValueError, match="different dimensions"):
        fidelity(a, a[:4])
    with pytest.raises(ValueError, match="a contains NaN"):
        fidelity(np.array([np.nan, 1]), np.array([1, 0]))


def test_divergences_match_scipy():
    rng = np.random.default_rng(3)
    p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
    np.testing.assert_allclose(kl_divergence(p, q), entropy(p, q), rtol=1e-12)
    np.testing.assert_allclose(total_variation(p, q), 0.5 * np.abs(p - q).sum())
    assert kl_divergence([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == 0.0
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == np.inf
    np.testing.assert_allclose(
        kl_divergence(np.stack([p, q]), np.stack([q, p])), [entropy(p, q), entropy(q, p)]
    )
    with pytest.raises(ValueError, match="p must sum to 1"):
        total_variation([0.5, 0.6], [1.0, 0.0])
    with pytest.raises(ValueError, match="different numbers of outcomes"):
        kl_divergence([1.0], [0.5, 0.5])


def test_classification_metrics():
    assert accuracy([0, 1, 1, 2], [0, 1, 2, 2]) == 0.75
    assert accuracy([0, 1, 1, 2], [0, 1, 2, 2], sample_weight=[1, 1, 2, 0]) == 0.5
    np.testing.assert_allclose(nll([0.5, 0.25]), -np.mean(np.log([0.5, 0.25])))
    outcomes = np.array([[0.2, 0.2, 0.5, 0.1]])  # 4 outcomes of 2 qubits, 3 classes
    np.testing.assert_allclose(
        class_probabilities(outcomes, 3), [[0.2, 0.2, 0.5]] / np.float64(0.9)
    )
    with pytest.raises(ValueError, match="n_classes must be in"):
        class_probabilities(outcomes, 5)
    # perfectly calibrated: confidence 0.75 and 3 of 4 right
    proba = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(proba, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(proba, np.array([1, 1, 1, 1])) == pytest.approx(0.75)
