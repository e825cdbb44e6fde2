"""Readout-error mitigation by tensored calibration matrices.

Choice: per-qubit 2x2 confusion matrices measured from two calibration
circuits (all qubits in |0>, all in |1>), inverted qubit by qubit and followed
by the nearest probability vector (Euclidean projection onto the simplex).
This is exact for independent readout errors, costs two circuits whatever the
width, and needs no extra dependency; mthree (matrix-free, correlated errors
within its subspace) is the step up for wide registers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qtn.circuit import Circuit

__all__ = ["ReadoutMitigator", "project_to_simplex"]


def project_to_simplex(p: np.ndarray) -> np.ndarray:
    """The nearest probability vectors (last axis) in Euclidean distance."""
    p = np.asarray(p, dtype=float)
    u = -np.sort(-p, axis=-1)
    css = np.cumsum(u, axis=-1) - 1
    k = np.arange(1, p.shape[-1] + 1)
    rho = (u - css / k > 0).sum(-1, keepdims=True)
    tau = np.take_along_axis(css, rho - 1, axis=-1) / rho
    return np.clip(p - tau, 0, None)


class ReadoutMitigator:
    """Undo independent readout errors on outcome probabilities.

    Parameters
    ----------
    matrices
        One 2x2 confusion matrix A[read, true] per classical bit (clbit 0 first).

    Examples
    --------
    >>> m = ReadoutMitigator([np.array([[0.9, 0.2], [0.1, 0.8]])])
    >>> m.apply(np.array([0.9, 0.1])).round(6)
    array([1., 0.])
    """

    def __init__(self, matrices: Sequence[np.ndarray]):
        mats = [np.asarray(m, dtype=float) for m in matrices]
        for j, m in enumerate(mats):
            if m.shape != (2, 2) or not np.allclose(m.sum(0), 1) or np.any(m < 0):
                raise ValueError(f"matrices[{j}] must be a 2x2 column-stochastic matrix, got {m}")
            if abs(np.linalg.det(m)) < 1e-6:
                raise ValueError(f"matrices[{j}] is singular: readout carries no information")
        self.matrices = mats
        self._inverses = [np.linalg.inv(m) for m in mats]

    @classmethod
    def calibrate(
        cls, n_qubits: int, qubits: Sequence[int] | None = None, *, backend=None, noise=None,
        shots: int = 8192, seed=None,
    ) -> ReadoutMitigator:  # fmt: skip
        """Measure the confusion matrices of ``qubits`` (clbit j <- qubits[j]) on a backend."""
        from qtn.execution.runner import run

        qubits = list(range(n_qubits)) if qubits is None else [int(q) for q in qubits]
        zero, one = Circuit(n_qubits), Circuit(n_qubits)
        one.x(qubits)
        for j, q in enumerate(qubits):
            zero.measure(q, j)
            one.measure(q, j)
        bits0 = run(zero, backend=backend, noise=noise, shots=shots, seed=seed).bits[0]
        seed1 = None if seed is None else seed + 1
        bits1 = run(one, backend=backend, noise=noise, shots=shots, seed=seed1).bits[0]
        mats = []
        for j in range(len(qubits)):
            p1_0, p0_1 = bits0[:, j].mean(), 1 - bits1[:, j].mean()
            mats.append(np.array([[1 - p1_0, p0_1], [p1_0, 1 - p0_1]]))
        return cls(mats)

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Mitigated probabilities, shape as ``probs`` (..., 2**n_clbits)."""
        probs = np.asarray(probs, dtype=float)
        k = len(self.matrices)
        if probs.shape[-1] != 2**k:
            raise ValueError(f"probs must end in 2**{k} = {2**k} outcomes, got {probs.shape}")
        lead = probs.shape[:-1]
        p = probs.reshape(*lead, *(2,) * k)
        nl = len(lead)
        for j, inv in enumerate(self._inverses):
            p = np.moveaxis(np.tensordot(inv, p, ([1], [nl + j])), 0, nl + j)
        return project_to_simplex(p.reshape(*lead, 2**k))
