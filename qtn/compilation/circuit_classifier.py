"""Circuit classifiers from classical ones: native SU(4) angles and the MPS warm start.

- :func:`kak_angles`: the 15 angles of qtn's native 3-CX SU(4) block
  (:func:`qtn.models.circuit_classifier.kak_block`) realising any two-qubit
  unitary up to a global phase, from Qiskit's Weyl (KAK) decomposition.
- :func:`warm_start_angles`: the angles of an MPS circuit classifier (v = 1)
  from a trained MPS classifier with bond dimension <= 2 and its label leg on
  the last site. Brought to left-canonical form, every core is a co-isometry
  from (bond, pixel) to the next bond; completed to a unitary
  (:func:`qtn.compilation.synthesis.complete_isometry`) it is the circuit's
  block, with the discarded qubit in |0> on the rows the MPS uses. The label
  core is replaced by its polar (nearest co-isometric) factor. The circuit then
  reproduces the MPS on the branch where every discarded qubit reads 0 and adds
  the other branches, so this is a starting point, not an exact compilation
  (the exact, per-class compilation is :func:`qtn.compilation.compile_classifier`).
"""

from __future__ import annotations

import math

import numpy as np

from qtn.compilation.synthesis import complete_isometry
from qtn.models import MPS, canonicalize
from qtn.models.circuit_classifier import (
    PARAMS_PER_BLOCK,
    CircuitLayout,
    block_matrix,
)

__all__ = ["kak_angles", "warm_start_angles", "block_infidelity"]


def block_infidelity(u: np.ndarray, angles) -> float:
    """1 - |tr(u^dagger B(angles))| / 4: zero when the block equals u up to a phase."""
    return float(1 - abs(np.trace(np.asarray(u).conj().T @ block_matrix(angles))) / 4)


def _u3(m):
    from qiskit.synthesis import OneQubitEulerDecomposer

    t, p, lam, _ = OneQubitEulerDecomposer("U3").angles_and_phase(m)
    return [t, p, lam]


def kak_angles(u: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Angles ``a`` (15,) with ``block_matrix(a)`` = exp(i phi) ``u`` (qubit a most significant).

    The middle angles are t = 2 (x, y, z) + pi/2 for the Weyl coordinates (x, y, z)
    of ``u``; the outer U3 gates absorb the local parts of both decompositions.
    Checked to 1e-9; if Qiskit's decomposition of the core picks another point of
    the Weyl chamber, a least-squares fit from that start finishes the job.
    """
    from qiskit.synthesis import TwoQubitWeylDecomposition

    u = np.asarray(u, dtype=complex)
    if u.shape != (4, 4) or not np.allclose(u.conj().T @ u, np.eye(4), atol=1e-8):
        raise ValueError(f"u must be a 4 x 4 unitary, got shape {u.shape}")
    w = TwoQubitWeylDecomposition(u)
    mid = [2 * w.a + math.pi / 2, 2 * w.b + math.pi / 2, 2 * w.c + math.pi / 2]
    core = block_matrix([0.0] * 6 + mid + [0.0] * 6)
    wc = TwoQubitWeylDecomposition(core)
    # u = e^{i g} K1 Ud K2 and core = e^{i g'} A1 Ud A2, so u ~ (K1 A1^+) core (A2^+ K2)
    angles = np.array(
        _u3(wc.K2l.conj().T @ w.K2l) + _u3(wc.K2r.conj().T @ w.K2r) + mid
        + _u3(w.K1l @ wc.K1l.conj().T) + _u3(w.K1r @ wc.K1r.conj().T)
    )  # fmt: skip
    if block_infidelity(u, angles) < 1e-9:
        return angles
    return _fit_block(u, angles, seed)


def _fit_block(u, start, seed):
    from scipy.optimize import least_squares

    def resid(a):
        b = block_matrix(a)
        ph = np.trace(u.conj().T @ b)
        ph = ph / abs(ph) if abs(ph) > 1e-12 else 1.0
        d = (b - ph * u).reshape(-1)
        return np.concatenate([d.real, d.imag])

    rng = np.random.default_rng(seed)
    best, x0 = None, np.asarray(start, dtype=float)
    for _ in range(20):
        res = least_squares(resid, x0, xtol=1e-14, ftol=1e-14, gtol=1e-14)
        if best is None or res.cost < best.cost:
            best = res
        if block_infidelity(u, res.x) < 1e-9:
            return res.x
        x0 = rng.uniform(-math.pi, math.pi, PARAMS_PER_BLOCK)
    raise ValueError(
        f"kak_angles: no block angles reproduce u (best infidelity "
        f"{block_infidelity(u, best.x):.3g})"
    )


def _coisometry_unitary(m: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """A 4 x 4 unitary whose first rows are the polar factor of ``m`` (2 x 4): ``m`` itself
    when its rows are orthonormal (canonical cores), the nearest co-isometry otherwise
    (the label core, and cores of rank < 2)."""
    uu, _, vh = np.linalg.svd(np.asarray(m, dtype=complex), full_matrices=False)
    m = uu @ vh
    return complete_isometry(m.conj().T, seed=seed).conj().T


def warm_start_angles(mps: MPS, layout: CircuitLayout, *, seed: int = 0) -> np.ndarray:
    """Angles of the MPS circuit classifier ``layout`` from a trained MPS classifier.

    Parameters
    ----------
    mps
        An :class:`qtn.MPS` with a two-valued label leg on its last site, bond
        dimension <= 2 and physical dimension 2 (an ``MPSClassifier(bond_dim=2,
        label_site=n - 1, loss="nll")``'s ``params_.network``).
    layout
        ``CircuitLayout("mps", n, bond_qubits=1)``.
    """
    if not isinstance(layout, CircuitLayout):
        raise TypeError(f"layout must be a CircuitLayout, got {type(layout).__name__}")
    if layout.structure != "mps" or layout.bond_qubits != 1:
        raise ValueError(
            "the MPS warm start maps bond dimension 2 onto two-qubit blocks: it needs "
            f"structure='mps' and bond_qubits=1, got structure={layout.structure!r}, "
            f"bond_qubits={layout.bond_qubits}"
        )
    if not isinstance(mps, MPS) or mps.n_labels != 2:
        raise ValueError("mps must be an MPS with a label leg of 2 labels")
    n = layout.n_qubits
    if mps.n_sites != n or mps.center_site != n - 1 or mps.phys_dim != 2 or mps.bond_dim > 2:
        raise ValueError(
            f"mps must have {n} sites, its label on the last site, physical dimension 2 and "
            f"bond dimension <= 2; got {mps.n_sites} sites, label site {mps.center_site}, "
            f"physical dimension {mps.phys_dim}, bond dimension {mps.bond_dim}"
        )
    mps = canonicalize(MPS(*(np.asarray(a, dtype=np.float64) for a in
                             (mps.left, mps.center, mps.right))), n - 1)  # fmt: skip
    cores = [np.asarray(c) for c in mps.cores()]
    chi = cores[0].shape[0]
    if chi < 2:  # pad the bond to 2
        cores = [np.pad(c, [(0, 2 - chi)] + [(0, 0)] * (c.ndim - 2) + [(0, 2 - chi)])
                 for c in cores]  # fmt: skip
    angles = []
    for j in range(n - 1):
        site = j + 1
        if j == 0:
            a = np.einsum("sa,a...->s...", cores[0][0], cores[1])  # (s0, s1, [l,] beta)
        else:
            a = cores[site]  # (beta, s, [l,] beta')
        if site == n - 1:
            m = a[..., 0].reshape(4, 2).T  # rows: label l; columns: (in0, in1)
        else:
            m = a.reshape(4, -1).T  # rows: beta'; columns: (in0, in1)
        u = _coisometry_unitary(m, seed=seed + j)
        angles.append(kak_angles(u, seed=seed + j))
    return np.concatenate(angles)
