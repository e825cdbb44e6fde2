"""Dense oracles for tests and small-size reports: MPS and TTN states as plain numpy arrays.

Each function contracts the network by ``numpy.einsum`` or ``tensordot`` with
no log-norm tracking, so use them for small sizes only: :func:`to_dense` and
:func:`ttn_to_dense` refuse states of more than 2**24 entries; the per-sample
amplitude oracles cost one pass over the cores.
"""

from __future__ import annotations

import numpy as np

from qtn.models.mps import MPS, unpack
from qtn.models.ttn import TTN

__all__ = ["dense_amplitudes", "to_dense", "ttn_to_dense", "ttn_dense_amplitudes"]


def dense_amplitudes(mps: MPS, phi: np.ndarray) -> np.ndarray:
    """Raw amplitudes f_l(x) of one sample by plain ``numpy.einsum``, for testing on small N."""
    chi = mps.bond_dim
    v = np.zeros(chi)
    v[0] = 1.0
    for i, c in enumerate(np.asarray(c) for c in mps.cores()):
        if c.ndim == 4:
            v = np.einsum("a,asLb,s->Lb", v, c, phi[i])
        else:
            v = np.einsum("...a,asb,s->...b", v, c, phi[i])
    e0 = np.zeros(chi)
    e0[0] = 1.0
    out = v @ e0
    return out if mps.n_labels is not None else np.atleast_1d(out)


def to_dense(mps: MPS) -> np.ndarray:
    """The full state, shape (d**N,), or (d**N, L) with a label leg (small N only)."""
    if mps.phys_dim**mps.n_sites > 2**24:
        raise ValueError(f"to_dense: d**N = {mps.phys_dim}**{mps.n_sites} entries is too large")
    t, labelled = np.ones(1), False
    for c in unpack(mps):
        if c.ndim == 4:  # (Dl, d, L, Dr): contract, then keep the label axis in front
            t = np.moveaxis(np.tensordot(t, c.transpose(0, 1, 3, 2), axes=([-1], [0])), -1, 0)
            labelled = True
        else:
            t = np.tensordot(t, c, axes=([-1], [0]))
    if labelled:
        return t.reshape(t.shape[0], -1).T
    return t.reshape(-1)


def _dense_node(layers, lvl, j):
    """Dense tensor of the subtree under node (lvl, j): shape (d**(2**(lvl+1)), out)."""
    t = np.asarray(layers[lvl][j])
    if lvl == 0:
        a, b, c = t.shape
        return t.reshape(a * b, c)
    left = _dense_node(layers, lvl - 1, 2 * j)
    right = _dense_node(layers, lvl - 1, 2 * j + 1)
    x = np.einsum("pa,abc->pbc", left, t)
    x = np.einsum("qb,pbc->pqc", right, x)
    return x.reshape(-1, t.shape[2])


def ttn_to_dense(ttn: TTN) -> np.ndarray:
    """The full state over the leaf positions, shape (d**P,) or (d**P, L) (small P only)."""
    if ttn.phys_dim**ttn.n_leaves > 2**24:
        raise ValueError(f"ttn_to_dense: d**P = {ttn.phys_dim}**{ttn.n_leaves} is too large")
    out = _dense_node(ttn.layers, ttn.n_levels - 1, 0)
    return out[:, 0] if ttn.n_labels is None else out


def ttn_dense_amplitudes(ttn: TTN, phi: np.ndarray) -> np.ndarray:
    """Raw amplitudes f_l(x) of one sample (leaf vectors (P, d)) by plain numpy recursion."""
    v = np.asarray(phi)
    for t in ttn.levels():
        v = np.einsum("ja,jb,jabc->jc", v[0::2], v[1::2], t)
    return v[0]
