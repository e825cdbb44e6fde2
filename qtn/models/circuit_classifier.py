"""Circuit-native classifiers (Huggins et al., arXiv:1803.11537): layouts, blocks, circuits.

A circuit classifier encodes pixel j of an image with RY(pi x_j) on qubit j (the
trigonometric feature map: RY(pi x)|0> = [cos(pi x / 2), sin(pi x / 2)]) and
applies parameterised unitaries to groups of qubits in an MPS (staircase) or
binary-tree pattern. After each unitary every qubit of its group except those
that carry the bond on is discarded (traced out); the last qubit, ``n - 1``, is
the output: P(output = 1) is the probability of class 1.

Layouts (``bond_qubits`` = v, bond dimension 2^v):

- ``"mps"``: a window of v + 1 consecutive qubits slides over the image. The
  first node acts on qubits 0 .. v; node i acts on i - v .. i (the v bond
  qubits and the fresh pixel qubit i) and then discards qubit i - v. There are
  n - v nodes; with qubit reuse the whole circuit runs on v + 1 wires.
- ``"tree"``: the leaves are groups of v consecutive pixel qubits; each node
  acts on the two groups of its children (2 v qubits: v + 1 = 2 for v = 1),
  keeps the right child's group as its bond and discards the left one. The
  number of pixels must be v 2^L (L >= 1); there is no padding rule. Nodes are
  emitted depth-first, so with reuse the circuit needs v (L + 1) wires
  (7 for 64 pixels at v = 1).

Blocks (export to native CX + U3 gates):

- two qubits (every block of v = 1): the general SU(4) in its KAK form with
  3 CX (Vatan & Williams, PRA 69, 032315 (2004)), 15 angles: U3 on both
  qubits, CX(b, a), RZ(t1) on a and RY(t2) on b, CX(a, b), RY(t3) on b,
  CX(b, a), U3 on both. With t = 2 (x, y, z) + pi/2 the middle is locally
  equivalent to exp(i (x XX + y YY + z ZZ)), so every two-qubit unitary is
  one setting of the 15 angles (:func:`kak_angles` finds it).
- more qubits (v >= 2): ``block_layers`` brickwork layers of these SU(4) blocks
  over the group's qubits in order (default: as many layers as the group has
  qubits). This is a documented, trainable decomposition; it is not universal
  for v >= 2 (a general 3-qubit unitary needs 14 CX, three layers have 9).

Examples
--------
>>> lay = CircuitLayout("mps", 4)
>>> [node.qubits for node in lay.nodes], lay.n_params
([(0, 1), (1, 2), (2, 3)], 45)
>>> build_circuit(lay).count_ops()["cx"]
9
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from qtn.circuit import Circuit, Feature, Trainable

__all__ = [
    "STRUCTURES",
    "PARAMS_PER_BLOCK",
    "CircuitLayout",
    "Node",
    "kak_block",
    "build_circuit",
    "init_circuit_params",
    "block_matrix",
]

STRUCTURES = ("mps", "tree")
#: trainable angles of one native SU(4) block
PARAMS_PER_BLOCK = 15
_MIDDLE = slice(6, 9)


@dataclass(frozen=True)
class Node:
    """One parameterised unitary: its qubits (in order), the qubits discarded after it,
    the SU(4) blocks it consists of (pairs of qubits) and its first trainable angle."""

    qubits: tuple
    discard: tuple
    pairs: tuple
    start: int


def _check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _brick_pairs(qubits: tuple, layers: int) -> tuple:
    if len(qubits) == 2:
        return (tuple(qubits),)
    m = len(qubits)
    return tuple((qubits[j], qubits[j + 1]) for k in range(layers) for j in range(k % 2, m - 1, 2))


@dataclass(frozen=True)
class CircuitLayout:
    """Where the unitaries of a circuit classifier act (see the module docstring).

    Parameters
    ----------
    structure
        ``"mps"`` or ``"tree"``.
    n_qubits
        Number of pixels (one qubit each).
    bond_qubits
        v >= 1: the bond carries v qubits (bond dimension 2^v).
    block_layers
        Brickwork layers of SU(4) blocks inside a group of more than two qubits
        (None: one layer per qubit of the group). Ignored for v = 1.

    Raises
    ------
    ValueError
        Naming the argument, what it got and what was expected: an unknown
        structure, ``bond_qubits < 1``, too few pixels, or (tree) a pixel count
        that is not v 2^L.
    """

    structure: str
    n_qubits: int
    bond_qubits: int = 1
    block_layers: int | None = None

    def __post_init__(self):
        if self.structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {list(STRUCTURES)}, got {self.structure!r}")
        v = self.bond_qubits
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(
                f"bond_qubits must be an integer >= 1 (the bond carries bond_qubits qubits, "
                f"bond dimension 2**bond_qubits), got {v!r}"
            )
        n = self.n_qubits
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
            raise ValueError(f"n_qubits (the number of pixels) must be an integer >= 2, got {n!r}")
        if self.block_layers is not None:
            _check_int("block_layers", self.block_layers, 1)
        if self.structure == "mps" and n < v + 1:
            raise ValueError(
                f"an MPS circuit with bond_qubits={v} needs at least {v + 1} pixels, got {n}"
            )
        if self.structure == "tree":
            leaves = n // v
            if n % v or leaves < 2 or leaves & (leaves - 1):
                good = [v * 2**k for k in range(1, 8)]
                raise ValueError(
                    f"a tree circuit with bond_qubits={v} needs a number of pixels equal to "
                    f"bond_qubits * 2**L (L >= 1; e.g. {good[:6]}), got {n} pixels; there is no "
                    "padding rule: downsample or crop the images (4x4 = 16 and 8x8 = 64 pixels "
                    "work for bond_qubits = 1 and 2)"
                )

    # -- nodes
    def _layers(self, m: int) -> int:
        return self.block_layers if self.block_layers is not None else m

    @cached_property
    def nodes(self) -> tuple:
        """The :class:`Node` s in time order (tree: depth-first, so wires can be reused)."""
        n, v = self.n_qubits, self.bond_qubits
        groups = []
        if self.structure == "mps":
            for i in range(v, n):
                qs = tuple(range(i - v, i + 1))
                groups.append((qs, (qs[0],)))
        else:

            def visit(lo, hi):  # pixels lo .. hi-1, a multiple of v; returns the kept group
                if hi - lo == v:
                    return tuple(range(lo, hi))
                mid = (lo + hi) // 2
                left, right = visit(lo, mid), visit(mid, hi)
                groups.append((left + right, left))
                return right

            visit(0, n)
        out, start = [], 0
        for qs, disc in groups:
            pairs = _brick_pairs(qs, self._layers(len(qs)))
            out.append(Node(qs, disc, pairs, start))
            start += PARAMS_PER_BLOCK * len(pairs)
        return tuple(out)

    @property
    def output_qubit(self) -> int:
        return self.n_qubits - 1

    @property
    def n_blocks(self) -> int:
        return sum(len(nd.pairs) for nd in self.nodes)

    @property
    def n_params(self) -> int:
        return PARAMS_PER_BLOCK * self.n_blocks

    @property
    def bond_dim(self) -> int:
        return 2**self.bond_qubits


def kak_block(circuit: Circuit, a: int, b: int, start: int, *, native: bool = True) -> int:
    """Append the native 3-CX SU(4) block on (a, b), angles ``start .. start + 14``.

    In time order: U3(t0..t2) on a, U3(t3..t5) on b, CX(b, a), RZ(t6) on a,
    RY(t7) on b, CX(a, b), RY(t8) on b, CX(b, a), U3(t9..t11) on a,
    U3(t12..t14) on b: ten gates with ``native``, else one registered ``kak``
    gate (the same matrix, one tensor: what the simulator trains on, compiling
    several times faster). Returns the next free angle.
    """
    if not native:
        circuit.kak(a, b, start=start)
        return start + PARAMS_PER_BLOCK
    t = [Trainable(start + i) for i in range(PARAMS_PER_BLOCK)]
    circuit.u(t[0], t[1], t[2], a).u(t[3], t[4], t[5], b)
    circuit.cx(b, a).rz(t[6], a).ry(t[7], b).cx(a, b).ry(t[8], b).cx(b, a)
    circuit.u(t[9], t[10], t[11], a).u(t[12], t[13], t[14], b)
    return start + PARAMS_PER_BLOCK


def block_matrix(angles) -> np.ndarray:
    """The 4 x 4 unitary of :func:`kak_block` (qubit a most significant), from its 15 angles."""
    from qtn.circuit.gates import gate_matrix

    return gate_matrix("kak", [float(a) for a in angles])


def build_circuit(
    layout: CircuitLayout,
    *,
    encode: bool = True,
    discard: bool = True,
    measure: bool = False,
    native: bool = True,
) -> Circuit:
    """The classifier's circuit on ``layout.n_qubits`` qubits.

    Pixel qubit j is encoded (RY(pi x_j), :class:`~qtn.circuit.Feature` j) right
    before the first node that uses it, nodes follow in ``layout.nodes`` order,
    and the discarded qubits are traced out after each node (``discard``). With
    ``measure`` the output qubit is measured into clbit 0. ``native=False`` puts
    one ``kak`` gate per block (for noiseless simulation) instead of its ten
    native gates (which noise models and hardware see).
    """
    if not isinstance(layout, CircuitLayout):
        raise TypeError(f"layout must be a CircuitLayout, got {type(layout).__name__}")
    c = Circuit(layout.n_qubits)
    seen: set[int] = set()
    for node in layout.nodes:
        for q in node.qubits:
            if q not in seen:
                seen.add(q)
                if encode:
                    c.ry(Feature(q), q)
        start = node.start
        for a, b in node.pairs:
            start = kak_block(c, a, b, start, native=native)
        if discard:
            c.discard(list(node.discard))
    if measure:
        c.measure(layout.output_qubit, 0)
    return c


def init_circuit_params(layout: CircuitLayout, seed: int = 0, *, scale: float = math.pi):
    """Random initial angles: U3 angles uniform in [-scale, scale], the middle angles of
    each block pi/2 plus uniform noise in [-scale/4, scale/4] (pi/2 is the identity
    interaction: ``scale=0`` gives a product of local unitaries)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-scale, scale, (layout.n_blocks, PARAMS_PER_BLOCK))
    p[:, _MIDDLE] = math.pi / 2 + rng.uniform(-scale / 4, scale / 4, (layout.n_blocks, 3))
    return p.reshape(-1)
