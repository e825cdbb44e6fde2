"""Dense numpy oracle: exact statevector and density-matrix simulation of a qtn Circuit.

For testing and small systems (about 14 qubits for statevectors, 7 for density
matrices). Qubit order is quimb's: qubit 0 is the most significant bit of a
basis-state index. Non-unitary operations act as channels on the density matrix:

- ``Measure``: the non-selective measurement rho -> P0 rho P0 + P1 rho P1
  (outcome probabilities come from :func:`probabilities`);
- ``Reset``: rho -> |0><0| (x) tr_q(rho);
- ``Discard``: trace the qubit out. The register keeps its size, so the qubit
  is left in |0> (an unusable qubit until reset, which the IR enforces), which
  changes no later quantity;
- ``Noise``: rho -> sum_i K_i rho K_i^dagger on its qubits.

A :class:`qtn.noise.NoiseModel` passed as ``noise`` is applied to the circuit
first (channels after gates); its readout errors act on :func:`probabilities`.
``initial_state`` may be a statevector (2**n,), a product state (n, 2) or MPS
cores (D_left, 2, D_right); barriers are skipped; the global phase is applied.
"""

from __future__ import annotations

import numpy as np

from qtn.circuit import Barrier, Circuit, Gate, Measure, Noise

__all__ = [
    "statevector",
    "density_matrix",
    "probabilities",
    "initial_vector",
    "MAX_SV_QUBITS",
    "MAX_DM_QUBITS",
]

MAX_SV_QUBITS = 16
MAX_DM_QUBITS = 8


def _apply(tensor: np.ndarray, mat: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Apply a k-qubit matrix to the given axes of a (2,)*m tensor."""
    k = len(axes)
    g = mat.reshape((2,) * (2 * k))
    out = np.tensordot(g, tensor, axes=(list(range(k, 2 * k)), list(axes)))
    # tensordot puts the gate's output axes first; move them back into place
    return np.moveaxis(out, list(range(k)), list(axes))


def _check(circuit: Circuit, limit: int, what: str):
    if circuit.n_qubits > limit:
        raise ValueError(
            f"{what} of {circuit.n_qubits} qubits needs {2**circuit.n_qubits:,} amplitudes per "
            f"axis; the dense oracle is limited to {limit} qubits"
        )


def initial_vector(initial_state, n: int) -> np.ndarray:
    """The dense (2**n,) vector of an initial state: None, a vector, (n, 2) or MPS cores."""
    if initial_state is None:
        psi = np.zeros(2**n, dtype=complex)
        psi[0] = 1.0
        return psi
    if isinstance(initial_state, np.ndarray) and initial_state.shape == (2**n,):
        return initial_state.astype(complex)
    if isinstance(initial_state, np.ndarray) and initial_state.shape == (n, 2):
        psi = np.array([1.0 + 0j])
        for v in initial_state:
            psi = np.kron(psi, v)
        return psi
    cores = [np.asarray(c, dtype=complex) for c in initial_state]
    psi = cores[0]
    for c in cores[1:]:
        psi = np.tensordot(psi, c, axes=([psi.ndim - 1], [0]))
    return psi.reshape(-1)


def statevector(circuit: Circuit, params=None, data=None, initial_state=None) -> np.ndarray:
    """Exact final state of a unitary circuit, shape (2**n,), complex128."""
    _check(circuit, MAX_SV_QUBITS, "a statevector")
    if not circuit.is_unitary:
        bad = next(i for i, op in enumerate(circuit.ops) if not isinstance(op, Gate | Barrier))
        raise ValueError(
            f"statevector needs a unitary circuit; operation {bad} is not a gate "
            "(use density_matrix for measure/reset/discard)"
        )
    _check_lengths(circuit, params, data)
    n = circuit.n_qubits
    psi = initial_vector(initial_state, n).reshape((2,) * n)
    for op in circuit.ops:
        if isinstance(op, Gate):
            psi = _apply(psi, op.numeric_matrix(params, data), op.qubits)
    return np.exp(1j * circuit.global_phase) * psi.reshape(-1)


def density_matrix(
    circuit: Circuit, params=None, data=None, noise=None, initial_state=None
) -> np.ndarray:
    """Exact final density matrix, shape (2**n, 2**n), with measure/reset/discard as channels."""
    _check(circuit, MAX_DM_QUBITS, "a density matrix")
    if noise is not None:
        circuit = noise.apply(circuit)
    _check_lengths(circuit, params, data)
    n = circuit.n_qubits
    psi0 = initial_vector(initial_state, n)
    rho = np.outer(psi0, psi0.conj()).reshape((2,) * (2 * n))
    for op in circuit.ops:
        if isinstance(op, Barrier):
            continue
        if isinstance(op, Gate):
            u = op.numeric_matrix(params, data)
            rho = _apply(rho, u, op.qubits)
            rho = _apply(rho, u.conj(), tuple(q + n for q in op.qubits))
        elif isinstance(op, Noise):
            new = np.zeros_like(rho)
            for k in op.channel.kraus:
                new += _apply(_apply(rho, k, op.qubits), k.conj(), tuple(q + n for q in op.qubits))
            rho = new
        elif isinstance(op, Measure):
            q = op.qubit
            idx0 = [slice(None)] * (2 * n)
            keep = np.zeros_like(rho)
            for b in (0, 1):
                idx = list(idx0)
                idx[q] = b
                idx[q + n] = b
                keep[tuple(idx)] = rho[tuple(idx)]
            rho = keep
        else:  # Reset and Discard: trace out, leave |0>
            q = op.qubit
            reduced = np.trace(rho, axis1=q, axis2=q + n)  # removes both axes
            new = np.zeros_like(rho)
            idx = [slice(None)] * (2 * n)
            idx[q], idx[q + n] = 0, 0
            new[tuple(idx)] = reduced
            rho = new
    return rho.reshape(2**n, 2**n)


def probabilities(
    circuit: Circuit, qubits=None, params=None, data=None, noise=None, initial_state=None
) -> np.ndarray:
    """Marginal probabilities of measuring ``qubits`` (default all) in the Z basis.

    The result has 2**len(qubits) entries, indexed big-endian in the order given.
    Uses the statevector for unitary noiseless circuits and the density matrix
    otherwise; readout errors of ``noise`` are applied to the result.
    """
    n = circuit.n_qubits
    qubits = tuple(range(n)) if qubits is None else tuple(int(q) for q in qubits)
    if any(not 0 <= q < n for q in qubits) or len(set(qubits)) != len(qubits):
        raise ValueError(f"qubits must be distinct and in [0, {n - 1}], got {qubits}")
    if circuit.is_unitary and (noise is None or not noise.gate_rules):
        p = np.abs(statevector(circuit, params, data, initial_state).reshape((2,) * n)) ** 2
    else:
        rho = density_matrix(circuit, params, data, noise=noise, initial_state=initial_state)
        p = np.real(np.diagonal(rho)).reshape((2,) * n)
    others = tuple(q for q in range(n) if q not in qubits)
    p = p.sum(axis=others) if others else p
    # remaining axes are in increasing qubit order; reorder to the requested order
    order = sorted(qubits)
    p = np.transpose(p, [order.index(q) for q in qubits]).reshape(-1)
    return p if noise is None else noise.apply_readout(p, qubits)


def _check_lengths(circuit, params, data):
    if circuit.n_params and (params is None or len(params) < circuit.n_params):
        got = "none" if params is None else len(params)
        raise ValueError(f"params: the circuit needs {circuit.n_params} values, got {got}")
    if circuit.n_features and (data is None or len(data) < circuit.n_features):
        got = "none" if data is None else len(data)
        raise ValueError(f"data: the circuit needs {circuit.n_features} features, got {got}")
