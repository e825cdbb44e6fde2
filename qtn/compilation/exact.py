"""Exact compilation of an MPS into a sequential circuit of (k+1)-qubit blocks.

For bond dimension chi <= 2^k, the MPS is brought to left-canonical form, so
each core A_i is an isometry from its right bond into (left bond, site). The
circuit prepares the state right to left as a staircase: block i acts on
qubits i-k .. i, taking the right bond b_i (qubits i-k+1 .. i, produced by
block i+1) and a fresh qubit i-k in |0> to the left bond b_{i-1} (qubits
i-k .. i-1) and the site's qubit i. The first k sites come last, as one
k-qubit unitary from b_{k-1}. Bonds smaller than 2^k are padded; the padded
inputs never occur, so their columns are free.

Block synthesis (see :mod:`qtn.compilation.synthesis`):

- k = 1 (chi <= 2): each block is a two-qubit isometry completed to a unitary
  needing 2 CX (1 CX for the first block, which starts from |00>);
- k >= 2: the cosine-sine decomposition, 2^(k+1) + 2 C(k) CX per block, where
  C(k) is the CX count of a k-qubit unitary (3 for k = 2, 19 for k = 3, 95 for
  k = 4). Its input-side unitary B1 is absorbed into the next block by a gauge
  transformation of the bond between them, so it costs nothing (except in the
  first block, which acts on |0>).

With ``reuse=True`` the same blocks run on k + 1 physical qubits: qubit q of the
staircase is wire q mod (k + 1), measured (into clbit q) right after its last
block and reset before its wire is used again (Huggins et al.,
arXiv:1803.11537; Wall et al., arXiv:2010.03641).
"""

from __future__ import annotations

import numpy as np

from qtn.circuit import Circuit
from qtn.compilation.synthesis import (
    Emitter,
    complete_isometry,
    complete_two_qubit,
    cs_isometry,
    demultiplex,
)
from qtn.models import MPS, unpack

__all__ = ["compile_exact", "sequential_blocks", "bond_qubits", "MAX_BOND_QUBITS"]

#: the largest k (blocks on k + 1 qubits) exact compilation synthesises
MAX_BOND_QUBITS = 6


def bond_qubits(mps: MPS) -> int:
    """k with 2^(k-1) < chi <= 2^k for the largest bond (at least 1)."""
    chi = max(c.shape[-1] for c in unpack(mps)[:-1])
    return max(1, int(np.ceil(np.log2(chi))))


def _isometries(cores, k):
    """Padded block isometries V_i (2^(k+1) x 2^k) for i = k .. N-1, and the tail (2^k x 2^k)."""
    n = len(cores)
    dim = 2**k
    blocks = {}
    for i in range(k, n):
        a = cores[i]  # (D_left, 2, D_right), left-isometric
        dl, _, dr = a.shape
        v = np.zeros((2 * dim, dr), dtype=complex)
        for s in range(2):
            v[np.arange(dl) * 2 + s, :] = a[:, s, :]
        blocks[i] = complete_isometry(v, seed=i)[:, :dim]
    # the first k sites: b_{k-1} -> (s_0 .. s_{k-1}), an isometry from D_{k-1} columns
    t = cores[0][0]  # (2, D)
    for c in cores[1:k]:
        t = np.einsum("xa,asb->xsb", t, c).reshape(-1, c.shape[-1])
    tail = complete_isometry(t, seed=n)
    return blocks, tail


def sequential_blocks(mps: MPS, *, k: int | None = None, seed: int = 0):
    """The blocks of the exact sequential circuit of a left-canonical normalised qubit MPS.

    Returns ``(k, blocks)`` with the blocks in time order, each ``(kind, wires, data)``:
    ``"unitary"`` (data: a matrix, big-endian on the wires; k = 1 blocks and the first
    k sites) or ``"csd"`` (data: ``(b1 or None, theta, a1, a2)``, see
    :func:`qtn.compilation.synthesis.cs_isometry`).
    """
    cores = unpack(mps)
    n = len(cores)
    k = bond_qubits(mps) if k is None else k
    if n <= k + 1:  # one block holds everything: a state on n qubits
        psi = cores[0][0]
        for c in cores[1:]:
            psi = np.einsum("xa,asb->xsb", psi, c).reshape(-1, c.shape[-1])
        u = complete_two_qubit(psi, seed=seed)[0] if n == 2 else complete_isometry(psi, seed)
        return k, [("unitary", list(range(n)), u)]
    blocks, tail = _isometries(cores, k)
    plans = {}
    if k == 1:
        for i in range(n - 1, 0, -1):
            used = cores[i].shape[-1]
            plans[i] = ("unitary", complete_two_qubit(blocks[i][:, :used], seed=seed + i)[0])
    else:
        # cosine-sine blocks; each input-side unitary b1 is a gauge of bond b_i, moved into
        # the output of block i+1 (processed before it, left to right)
        for i in range(k, n):
            b1, theta, a1, a2 = cs_isometry(blocks[i], seed=seed + i)
            if i + 1 < n:
                blocks[i + 1] = np.kron(b1, np.eye(2)) @ blocks[i + 1]
                b1 = None
            plans[i] = ("csd", (b1, theta, a1, a2))
    out = [(plans[i][0], list(range(i - k, i + 1)), plans[i][1]) for i in range(n - 1, k - 1, -1)]
    out.append(("unitary", list(range(k)), tail))
    return k, out


def compile_exact(mps: MPS, *, reuse: bool = False, trainable: bool = True, seed: int = 0):
    """The exact sequential circuit of a normalised left-canonical qubit MPS.

    Returns ``(circuit, params, k)``. The circuit's state is the MPS up to a
    global phase (kept in ``circuit.global_phase``).
    """
    chi = max(c.shape[-1] for c in unpack(mps)[:-1])
    k = bond_qubits(mps)
    if k > MAX_BOND_QUBITS:
        raise ValueError(
            f"target: bond dimension {chi} needs {k + 1}-qubit blocks; exact compilation "
            f"synthesises at most {MAX_BOND_QUBITS + 1}: truncate it (max_bond=...) or use "
            "method='layers' or 'aqc'"
        )
    k, blocks = sequential_blocks(mps, k=k, seed=seed)
    circuit = Circuit(mps.n_sites)
    em = Emitter(circuit, trainable=trainable)
    for kind, wires, data in blocks:
        if kind == "unitary":
            em.unitary(data, wires, basis_fidelity=1 - 1e-13)
            continue
        b1, theta, a1, a2 = data
        if b1 is not None:
            em.unitary(b1, wires[1:])
        em.ucr("y", 2 * theta, wires[0], wires[1:])
        w, phases, v = demultiplex(a1, a2)
        em.unitary(w, wires[1:])
        em.ucr("z", -2 * phases, wires[0], wires[1:])
        em.unitary(v, wires[1:])
    params = em.finish()
    if reuse:
        from qtn.compilation.reuse import measure_and_reuse

        circuit = measure_and_reuse(circuit)
    return circuit, params, k
