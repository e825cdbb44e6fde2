"""Exact compilation of a binary tree tensor network into a tree circuit of unitaries.

The tree is brought to canonical form toward the root (every tensor below the
root an isometry from its parent bond into its two children), bonds are cut
to their exact ranks, and the state is prepared top-down (Huggins et al.,
arXiv:1803.11537, Fig. 1b):

- qubit p carries leaf position p (padding leaves of an image layout stay in |0>);
- a bond of dimension c lives on k(c) = ceil(log2 c) qubits chosen among the
  leaves below it: the bond of a node is carried by the *last* k(c) wires of
  its children's bond wires (left child's wires, then the right child's);
- the unitary of a node acts on its children's wires W = W_left + W_right. Its
  input is the parent bond on the last k(c) wires of W with the others fresh
  in |0>, so the node's isometry fills the first c columns of the unitary and
  the remaining columns are free (completed as in :mod:`qtn.compilation.synthesis`);
- the root is a node whose parent bond has dimension 1: a state preparation.

Block synthesis: two-qubit blocks by KAK, choosing the free columns for the
fewest CX (1 CX for a two-qubit state, 2 for a one-qubit bond into a leaf pair);
larger blocks by Qiskit's quantum Shannon decomposition of the completed unitary.

The blocks are emitted depth-first (a node, then its left subtree, then its
right subtree). With ``reuse=True`` every leaf is measured right after its
last block and its wire reused (:func:`qtn.compilation.reuse.measure_and_reuse`):
at any time only the wires of the current node and the pending right-sibling
bonds of its ancestors are alive, k log2 P + 1 wires at most for a tree of
bond dimension 2^k over P leaves, instead of P.
"""

from __future__ import annotations

import warnings

import numpy as np

from qtn.circuit import Circuit
from qtn.compilation.synthesis import Emitter, complete_isometry, complete_two_qubit
from qtn.models import TTN, ttn_canonicalize

__all__ = ["as_ttn", "compile_tree", "tree_blocks", "MAX_TREE_BLOCK_QUBITS"]

#: the widest node unitary exact tree compilation synthesises (QSD cost grows as 4^n)
MAX_TREE_BLOCK_QUBITS = 6


def _kq(dim: int) -> int:
    """Qubits that carry a bond of dimension ``dim`` (0 for dim = 1)."""
    return int(np.ceil(np.log2(dim))) if dim > 1 else 0


def as_ttn(target, *, name: str = "target") -> TTN:
    """``target`` as a normalised complex128 qubit :class:`~qtn.models.TTN`, canonical toward
    the root. Non-finite entries, a label leg, qudits and the zero state are errors; a norm
    other than 1 is normalised with a warning (within the source precision, silently)."""
    if not isinstance(target, TTN):
        raise ValueError(f"{name} must be a qtn TTN, got {type(target).__name__}")
    if target.n_labels is not None:
        raise ValueError(
            f"{name}: this TTN has a label leg ({target.n_labels} labels); compile one class "
            "with ttn.select_label(l)"
        )
    if target.phys_dim != 2:
        raise ValueError(
            f"{name} has physical dimension {target.phys_dim}; circuits need qubits (2)"
        )
    src = np.asarray(target.layers[0]).dtype
    tol = 1e-9
    if np.issubdtype(src, np.inexact):
        tol = max(tol, 100 * float(np.finfo(src).eps))
    layers = [np.asarray(a, dtype=complex) for a in target.layers]
    if not all(np.all(np.isfinite(a)) for a in layers):
        raise ValueError(f"{name} contains NaN or inf")
    tree = ttn_canonicalize(TTN(tuple(layers)))
    nrm = float(np.linalg.norm(tree.layers[-1]))  # canonical: the norm sits at the root
    if not nrm > 0:
        raise ValueError(f"{name} is the zero state")
    ln = float(np.log(nrm))
    if abs(ln) > tol:
        warnings.warn(
            f"{name} has norm {np.exp(ln):.6g}, not 1; compiling the normalised state",
            UserWarning,
            stacklevel=3,
        )
    return TTN((*tree.layers[:-1], tree.layers[-1] / nrm))


def _compact_nodes(tree: TTN) -> list[list[np.ndarray]]:
    """Per-node tensors (a, b, c) of a canonical tree with every internal bond cut to the
    columns its isometry uses (canonical form leaves the unused ones exactly zero)."""
    nodes = [[np.array(t) for t in level] for level in tree.levels()]
    for lvl in range(len(nodes) - 1):
        for j, t in enumerate(nodes[lvl]):
            used = np.linalg.norm(t.reshape(-1, t.shape[2]), axis=0) > 0.5
            if not used.any():  # cannot happen for a non-zero canonical state; keep one column
                used[0] = True
            nodes[lvl][j] = t[:, :, used]
            parent = nodes[lvl + 1][j // 2]
            nodes[lvl + 1][j // 2] = parent[used] if j % 2 == 0 else parent[:, used]
    return nodes


def tree_blocks(tree: TTN, *, seed: int = 0):
    """The node unitaries of the exact tree circuit of a canonical normalised qubit TTN.

    Returns ``(blocks, phase)``: blocks ``(wires, unitary)`` in depth-first order (big-endian
    on ``wires``), and a global phase from nodes that act on no wire (both children's bonds
    of dimension 1).
    """
    nodes = _compact_nodes(tree)
    n_levels = len(nodes)
    wires_of: dict[tuple[int, int], list[int]] = {}  # children's wires W of each node
    bond_of: dict[tuple[int, int], list[int]] = {}  # parent-bond wires of each node
    for lvl in range(n_levels):
        for j, t in enumerate(nodes[lvl]):
            if lvl == 0:
                w = [2 * j, 2 * j + 1]
            else:
                w = bond_of[(lvl - 1, 2 * j)] + bond_of[(lvl - 1, 2 * j + 1)]
            wires_of[(lvl, j)] = w
            kc = _kq(t.shape[2])
            bond_of[(lvl, j)] = w[len(w) - kc :] if kc else []
    blocks, phase = [], 0.0

    def visit(lvl, j):
        nonlocal phase
        t = nodes[lvl][j]
        w = wires_of[(lvl, j)]
        a, b, c = t.shape
        if lvl == 0:
            ka = kb = 1
        else:
            ka, kb = len(bond_of[(lvl - 1, 2 * j)]), len(bond_of[(lvl - 1, 2 * j + 1)])
        if not w:  # a scalar of modulus 1: its phase is global
            phase += float(np.angle(t.reshape(-1)[0]))
        else:
            v = np.zeros((2**ka, 2**kb, c), dtype=complex)
            v[:a, :b, :] = t
            v = v.reshape(2 ** (ka + kb), c)
            if len(w) > MAX_TREE_BLOCK_QUBITS:
                raise ValueError(
                    f"target: a tree node needs a {len(w)}-qubit unitary (bonds {a}, {b} -> {c}); "
                    f"exact tree compilation synthesises at most {MAX_TREE_BLOCK_QUBITS} qubits: "
                    "train with a smaller bond_dim, or compile the tree as an MPS with "
                    "method='layers' or 'aqc'"
                )
            if len(w) == 2 and c <= 2:
                u = complete_two_qubit(v, seed=seed + len(blocks))[0]
            else:
                u = complete_isometry(v, seed=seed + len(blocks))
            blocks.append((list(w), u))
        if lvl:
            visit(lvl - 1, 2 * j)
            visit(lvl - 1, 2 * j + 1)

    visit(n_levels - 1, 0)
    return blocks, phase


def compile_tree(tree: TTN, *, trainable: bool = True, seed: int = 0):
    """The exact tree circuit of a canonical normalised qubit TTN (see the module docstring).

    Returns ``(circuit, params, widest)``: a :class:`~qtn.circuit.Circuit` on ``n_leaves``
    qubits (qubit p = leaf position p) whose state is the tree's, global phase included,
    its parameter values, and the widest node unitary (qubits).
    """
    blocks, phase = tree_blocks(tree, seed=seed)
    circuit = Circuit(tree.n_leaves)
    em = Emitter(circuit, trainable=trainable)
    for wires, u in blocks:
        em.unitary(u, wires, basis_fidelity=1 - 1e-13 if len(wires) == 2 else 1.0)
    circuit.global_phase = (circuit.global_phase + phase) % (2 * np.pi)
    params = em.finish()
    widest = max((len(w) for w, _ in blocks), default=0)
    return circuit, params, widest
