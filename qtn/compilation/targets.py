"""Compilation targets: whatever the user hands over, as one normalised qubit MPS.

Accepted: a qtn :class:`~qtn.models.MPS` (without a label leg), a quimb
``MatrixProductState``, a list of cores (D_left, 2, D_right), a dense state
vector of length 2**n, or any object with a ``to_mps()`` method (models).
The result is a numpy complex128 MPS of physical dimension 2, normalised; a
target whose norm is not 1 is normalised with a warning naming the norm, and
non-finite entries are an error.
"""

from __future__ import annotations

import warnings

import numpy as np

from qtn.models import MPS, canonicalize, from_quimb, log_norm, pack

__all__ = ["as_mps", "from_dense"]


def from_dense(psi, *, cutoff: float = 1e-14) -> MPS:
    """An exact MPS of a dense state vector of length 2**n (successive SVDs)."""
    psi = np.asarray(psi, dtype=complex).reshape(-1)
    n = int(round(np.log2(psi.size))) if psi.size else 0
    if psi.size < 2 or 2**n != psi.size:
        raise ValueError(f"target: a dense state needs length 2**n >= 2, got {psi.size}")
    cores, rest, d_left = [], psi.reshape(1, -1), 1
    for _ in range(n - 1):
        mat = rest.reshape(d_left * 2, -1)
        u, s, vh = np.linalg.svd(mat, full_matrices=False)
        r = max(1, int(np.sum(s > cutoff * s[0]))) if s[0] > 0 else 1
        cores.append(u[:, :r].reshape(d_left, 2, r))
        rest, d_left = s[:r, None] * vh[:r], r
    cores.append(rest.reshape(d_left, 2, 1))
    return pack(cores, center=n - 1)


def as_mps(target, *, name: str = "target") -> MPS:
    """``target`` as a normalised complex128 qubit :class:`~qtn.models.MPS` (numpy arrays)."""
    to_mps = getattr(target, "to_mps", None)
    if callable(to_mps) and not isinstance(target, MPS):
        target = to_mps()
    tol = 1e-9  # |log norm| accepted as unit norm: rounding of the source's precision
    if isinstance(target, MPS):
        src = np.asarray(target.center).dtype
        if np.issubdtype(src, np.inexact):
            tol = max(tol, 100 * float(np.finfo(src).eps))
        if target.n_labels is not None:
            raise ValueError(
                f"{name}: this MPS has a label leg; compile one class with "
                "mps.select_label(l), or the classifier with clf.to_circuit()"
            )
        mps = MPS(*(np.asarray(a, dtype=complex) for a in (target.left, target.center,
                                                           target.right)))  # fmt: skip
    elif hasattr(target, "site_ind") and hasattr(target, "L"):  # a quimb MPS
        mps = from_quimb(target)
        mps = MPS(*(np.asarray(a, dtype=complex) for a in (mps.left, mps.center, mps.right)))
    elif isinstance(target, list | tuple) and target and np.ndim(target[0]) == 3:
        mps = pack([np.asarray(c, dtype=complex) for c in target], center=0)
    else:
        try:
            arr = np.asarray(target)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.dtype == object or arr.ndim != 1:
            raise ValueError(
                f"{name} must be a qtn MPS, a quimb MatrixProductState, a list of cores "
                f"(D_left, 2, D_right) or a dense state vector; got {type(target).__name__}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")
        mps = from_dense(arr)
    for a in (mps.left, mps.center, mps.right):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or inf")
    if mps.phys_dim != 2:
        raise ValueError(f"{name} has physical dimension {mps.phys_dim}; circuits need qubits (2)")
    if mps.n_sites < 2:
        raise ValueError(f"{name} needs at least 2 sites, got {mps.n_sites}")
    ln = float(log_norm(mps))
    if not np.isfinite(ln):
        raise ValueError(f"{name} is the zero state")
    if abs(ln) > tol:
        warnings.warn(
            f"{name} has norm {np.exp(ln):.6g}, not 1; compiling the normalised state",
            UserWarning,
            stacklevel=3,
        )
    mps = MPS(mps.left, mps.center * np.exp(-ln), mps.right)  # silently within tol
    return canonicalize(mps, mps.n_sites - 1)
