"""Readout-error mitigation by tensored calibration matrices.

Choice: per-qubit 2x2 confusion matrices measured from two calibration
circuits (all qubits in |0>, all in |1>) on exactly the physical qubits a
runner's transpiled circuit measures, inverted qubit by qubit and followed
by the nearest probability vector (Euclidean projection onto the simplex).
This is exact for independent readout errors, costs two circuits whatever the
width, and needs no extra dependency; mthree (matrix-free, correlated errors
within its subspace) is the step up for wide registers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qtn.circuit import Circuit
from qtn.noise import NoiseModel

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

    qubits: tuple | None = None  # the physical qubits calibrated, clbit order (calibrate)

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
        cls, target, qubits: Sequence[int] | None = None, *, backend=None, noise=None,
        shots: int = 8192, seed=None,
    ) -> ReadoutMitigator:  # fmt: skip
        """Measure the confusion matrices of physical qubits on a backend.

        Parameters
        ----------
        target
            A :class:`~qtn.execution.Runner`: calibrate exactly the physical qubits its
            transpiled circuit measures (``runner.measured_qubits``, clbit j <-
            ``measured_qubits[j]``), through its own sampler and backend, so the
            matrices match the circuit's final layout. Or ``n_qubits`` (an int):
            calibrate ``qubits`` (default all), taken as physical qubits (clbit j <-
            ``qubits[j]``) on ``backend`` (default: qtn's Aer backend with ``noise``'s
            readout errors).
        shots, seed
            Shots per calibration circuit (two circuits: all |0>, all |1>), and the seed.

        Examples
        --------
        >>> from qtn.circuit import Circuit
        >>> from qtn.execution import Runner
        >>> from qtn.noise import NoiseModel, ReadoutError
        >>> nm = NoiseModel().add_readout_error(ReadoutError(0.1, 0.2))
        >>> runner = Runner(Circuit(2).h(0).measure(0, 0), noise=nm, seed=0)
        >>> mit = ReadoutMitigator.calibrate(runner, shots=20_000, seed=1)
        >>> np.round(mit.matrices[0], 2)
        array([[0.9, 0.2],
               [0.1, 0.8]])
        """
        from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, transpile

        from qtn.execution.runner import Runner

        if isinstance(target, Runner):
            if qubits is not None or backend is not None or noise is not None:
                raise ValueError(
                    "calibrate(runner): qubits, backend and noise come from the runner"
                )
            runner = target
        else:
            n = int(target)
            qubits = list(range(n)) if qubits is None else [int(q) for q in qubits]
            c = Circuit(n).measure(qubits, list(range(len(qubits))))
            ro = None if noise is None else NoiseModel(readout=noise.readout)
            runner = Runner(c, backend=backend, noise=ro, seed=seed, initial_layout=range(n))
        phys = runner.measured_qubits
        width = runner.transpiled.num_qubits
        circuits = []
        for flip in (False, True):
            qc = QuantumCircuit(QuantumRegister(width, "q"), ClassicalRegister(len(phys), "c"))
            for j, q in enumerate(phys):
                if flip:
                    qc.x(q)
                qc.measure(q, j)
            circuits.append(qc)
        if runner.backend is not None:
            circuits = transpile(circuits, runner.backend, initial_layout=list(range(width)),
                                 optimization_level=0, seed_transpiler=seed)  # fmt: skip
        results = runner._sample([(qc, None, int(shots)) for qc in circuits])
        bits0, bits1 = (r.data.c.to_bool_array(order="little") for r in results)
        mats = []
        for j in range(len(phys)):
            p1_0, p0_1 = bits0[:, j].mean(), 1 - bits1[:, j].mean()
            mats.append(np.array([[1 - p1_0, p0_1], [p1_0, 1 - p0_1]]))
        out = cls(mats)
        out.qubits = tuple(phys)
        return out

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
