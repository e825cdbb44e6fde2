"""Layouts of two-qubit blocks: staircase (MPS), brickwork and binary tree.

A *layout* is the list of qubit pairs that blocks act on, in time order; the
circuit builders place one 15-parameter SU(4) block (trainable angles
``15 k .. 15 k + 14`` for the k-th block) on each pair. Models (circuit-native
classifiers) and compilation (layered and AQC ansätze) share these layouts.

- :func:`staircase_layout`: (0, 1), (1, 2), ..., (n-2, n-1), repeated ``sweeps``
  times: the sequential MPS circuit (Huggins et al., arXiv:1803.11537).
- :func:`brickwork_layout`: alternating even (0, 1), (2, 3), ... and odd
  (1, 2), (3, 4), ... layers.
- :func:`tree_layout`: a binary tree: level 0 pairs neighbouring qubits, each
  block's second qubit carries on to the next level; an odd qubit out waits
  for the next level. The root's output is the last qubit.

Examples
--------
>>> staircase_layout(4)
[(0, 1), (1, 2), (2, 3)]
>>> brickwork_layout(4, 2)
[(0, 1), (2, 3), (1, 2)]
>>> tree_layout(4)
[[(0, 1), (2, 3)], [(1, 3)]]
"""

from __future__ import annotations

import numbers

from qtn.circuit.ir import Circuit, Feature

__all__ = [
    "staircase_layout",
    "brickwork_layout",
    "tree_layout",
    "add_blocks",
    "staircase",
    "brickwork",
    "tree",
]

PARAMS_PER_BLOCK = 15


def _check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def staircase_layout(n_qubits: int, sweeps: int = 1) -> list[tuple[int, int]]:
    """Pairs (q, q+1) for q = 0 .. n-2, repeated ``sweeps`` times."""
    n = _check_int("n_qubits", n_qubits, 2)
    sweeps = _check_int("sweeps", sweeps, 1)
    return [(q, q + 1) for _ in range(sweeps) for q in range(n - 1)]


def brickwork_layout(n_qubits: int, layers: int) -> list[tuple[int, int]]:
    """Even layers pair (0, 1), (2, 3), ...; odd layers pair (1, 2), (3, 4), ..."""
    n = _check_int("n_qubits", n_qubits, 2)
    layers = _check_int("layers", layers, 1)
    return [(q, q + 1) for k in range(layers) for q in range(k % 2, n - 1, 2)]


def tree_layout(n_qubits: int) -> list[list[tuple[int, int]]]:
    """Levels of a binary tree over qubits 0 .. n-1; block (a, b) passes b upward."""
    n = _check_int("n_qubits", n_qubits, 2)
    alive = list(range(n))
    levels = []
    while len(alive) > 1:
        level = [(alive[i], alive[i + 1]) for i in range(0, len(alive) - 1, 2)]
        carried = [b for _, b in level] + ([alive[-1]] if len(alive) % 2 else [])
        levels.append(level)
        alive = carried
    return levels


def add_blocks(circuit: Circuit, pairs, *, start: int = 0) -> int:
    """Append one trainable SU(4) block per pair, in place; returns the next free parameter."""
    for a, b in pairs:
        circuit.su4(a, b, start=start)
        start += PARAMS_PER_BLOCK
    return start


def _encoded(n: int, encode: bool) -> Circuit:
    c = Circuit(n)
    if encode:
        for q in range(n):
            c.ry(Feature(q), q)
    return c


def staircase(n_qubits: int, sweeps: int = 1, *, encode: bool = True) -> Circuit:
    """The MPS-staircase circuit: RY(pi x_q) on every qubit (if ``encode``), then
    ``sweeps`` sweeps of SU(4) blocks on (0, 1), (1, 2), ...

    The block on pair (q, q+1) of sweep s has trainable angles starting at
    ``15 * (s * (n_qubits - 1) + q)`` (Huggins et al. 2019, arXiv:1803.11537).

    Examples
    --------
    >>> staircase(4, sweeps=2).n_params
    90
    """
    layout = staircase_layout(n_qubits, sweeps)
    c = _encoded(n_qubits, encode)
    add_blocks(c, layout)
    return c


def brickwork(n_qubits: int, layers: int, *, encode: bool = False) -> Circuit:
    """``layers`` alternating layers of SU(4) blocks (see :func:`brickwork_layout`)."""
    layout = brickwork_layout(n_qubits, layers)
    c = _encoded(n_qubits, encode)
    add_blocks(c, layout)
    return c


def tree(n_qubits: int, *, encode: bool = True, discard: bool = False) -> Circuit:
    """A binary tree of SU(4) blocks (see :func:`tree_layout`); the output is the last qubit.

    With ``discard``, each block's first qubit is traced out after the block, as
    in the tree classifier of Huggins et al. (arXiv:1803.11537).
    """
    c = _encoded(n_qubits, encode)
    start = 0
    for level in tree_layout(n_qubits):
        for a, b in level:
            start = add_blocks(c, [(a, b)], start=start)
            if discard:
                c.discard(a)
    return c
