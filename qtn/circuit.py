"""Backend-neutral circuit IR: frozen gates, parameter slots, measure/reset/discard, noise.

Nothing here imports JAX or Qiskit. Qubit order follows quimb: qubit 0 is the
leftmost (most significant) factor of a computational basis state, so
``|q0 q1 ... q_{n-1}>``; :mod:`qtn.export` is the one place that converts to
Qiskit's little-endian order.

Angles are one of

- a float (a constant),
- :class:`Trainable` ``(index, scale=1, offset=0)``: ``scale * theta[index] + offset``,
- :class:`Feature` ``(index, scale=pi, offset=0)``: ``scale * x[index] + offset``
  (data-bound, so one circuit structure serves every input; with the default
  scale, RY(pi x)|0> equals the trigonometric feature vector of x).

Examples
--------
>>> from qtn.circuit import Circuit, Feature, Trainable
>>> c = Circuit(2).ry(0, Feature(0)).ry(1, Feature(1)).su4((0, 1), start=0).measure(0, 0)
>>> c.n_params, c.n_features, c.count_2q()
(15, 2, 1)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from qtn.noise import Channel

__all__ = [
    "Trainable",
    "Feature",
    "Gate",
    "Measure",
    "Reset",
    "Discard",
    "Noise",
    "Circuit",
    "GATES",
    "gate_matrix",
    "list_gates",
    "staircase",
]

Angle = "float | Trainable | Feature"


@dataclass(frozen=True)
class Trainable:
    """A trainable angle: ``scale * theta[index] + offset``."""

    index: int
    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self):
        if not isinstance(self.index, int | np.integer) or self.index < 0:
            raise ValueError(f"Trainable index must be an integer >= 0, got {self.index!r}")


@dataclass(frozen=True)
class Feature:
    """A data-bound angle: ``scale * x[index] + offset`` (default scale pi)."""

    index: int
    scale: float = math.pi
    offset: float = 0.0

    def __post_init__(self):
        if not isinstance(self.index, int | np.integer) or self.index < 0:
            raise ValueError(f"Feature index must be an integer >= 0, got {self.index!r}")


# ----------------------------------------------------------------------------- gate library

_I2 = np.eye(2, dtype=complex)
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.diag([1, -1]).astype(complex)
_XX, _YY, _ZZ = np.kron(_X, _X), np.kron(_Y, _Y), np.kron(_Z, _Z)

# Matrix functions are generic over the array namespace ``xp`` (numpy by
# default; the simulator passes jax.numpy to trace and differentiate them).


def _rx(t, xp=np):
    c, s = xp.cos(t / 2), xp.sin(t / 2)
    return xp.stack([xp.stack([c + 0j, -1j * s]), xp.stack([-1j * s, c + 0j])])


def _ry(t, xp=np):
    c, s = xp.cos(t / 2) + 0j, xp.sin(t / 2) + 0j
    return xp.stack([xp.stack([c, -s]), xp.stack([s, c])])


def _rz(t, xp=np):
    z = xp.zeros_like(t) + 0j
    return xp.stack([xp.stack([xp.exp(-0.5j * t), z]), xp.stack([z, xp.exp(0.5j * t)])])


def _u3(t, p, lam, xp=np):
    c, s = xp.cos(t / 2) + 0j, xp.sin(t / 2) + 0j
    return xp.stack(
        [
            xp.stack([c, -xp.exp(1j * lam) * s]),
            xp.stack([xp.exp(1j * p) * s, xp.exp(1j * (p + lam)) * c]),
        ]
    )


def _rzz(t, xp=np):
    e, f = xp.exp(-0.5j * t), xp.exp(0.5j * t)
    z = xp.zeros_like(e)
    return xp.stack(
        [
            xp.stack([e, z, z, z]),
            xp.stack([z, f, z, z]),
            xp.stack([z, z, f, z]),
            xp.stack([z, z, z, e]),
        ]
    )


def _pauli_rot(p):
    """exp(-i t/2 P) for a two-qubit Pauli product P (P^2 = I)."""

    def rot(t, xp=np):
        dt = (xp.cos(t) + 0j).dtype  # constants follow the angle's precision
        eye = xp.asarray(np.eye(4)).astype(dt)
        return xp.cos(t / 2) * eye - 1j * xp.sin(t / 2) * xp.asarray(p).astype(dt)

    return rot


def _can(a, b, c, xp=np):
    """exp(i (a XX + b YY + c ZZ)) in closed form: the three terms commute and square to I."""
    dt = (xp.cos(a) + 0j).dtype  # constants follow the angles' precision
    eye = xp.asarray(np.eye(4)).astype(dt)
    out = eye
    for t, p in ((a, _XX), (b, _YY), (c, _ZZ)):
        out = out @ (xp.cos(t) * eye + 1j * xp.sin(t) * xp.asarray(p).astype(dt))
    return out


def _su4(*t, xp=np):
    """General two-qubit block, 15 parameters (KAK): (u3 x u3) . CAN(a, b, c) . (u3 x u3)."""
    k1 = xp.kron(_u3(*t[0:3], xp=xp), _u3(*t[3:6], xp=xp))
    k2 = xp.kron(_u3(*t[9:12], xp=xp), _u3(*t[12:15], xp=xp))
    return k1 @ _can(*t[6:9], xp=xp) @ k2


@dataclass(frozen=True)
class GateDef:
    """A library gate: number of qubits, number of angles, and its matrix function.

    ``matrix(*angles, xp=numpy)`` returns the (2**k, 2**k) matrix in quimb's
    (big-endian) qubit order.
    """

    n_qubits: int
    n_angles: int
    matrix: Callable[..., np.ndarray]
    hermitian_generator: bool = (
        False  # exp(-i theta G / 2) with G^2 = I: parameter-shift rule applies
    )


def _const(m):
    m = np.asarray(m, dtype=complex)
    return lambda xp=np: xp.asarray(m)


_SQ2 = 1 / math.sqrt(2)
GATES: dict[str, GateDef] = {
    "id": GateDef(1, 0, _const(_I2)),
    "h": GateDef(1, 0, _const([[_SQ2, _SQ2], [_SQ2, -_SQ2]])),
    "x": GateDef(1, 0, _const(_X)),
    "y": GateDef(1, 0, _const(_Y)),
    "z": GateDef(1, 0, _const(_Z)),
    "s": GateDef(1, 0, _const(np.diag([1, 1j]))),
    "sdg": GateDef(1, 0, _const(np.diag([1, -1j]))),
    "t": GateDef(1, 0, _const(np.diag([1, np.exp(0.25j * math.pi)]))),
    "tdg": GateDef(1, 0, _const(np.diag([1, np.exp(-0.25j * math.pi)]))),
    "rx": GateDef(1, 1, _rx, True),
    "ry": GateDef(1, 1, _ry, True),
    "rz": GateDef(1, 1, _rz, True),
    "u3": GateDef(1, 3, _u3),
    "cx": GateDef(2, 0, _const([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])),
    "cz": GateDef(2, 0, _const(np.diag([1, 1, 1, -1]))),
    "swap": GateDef(2, 0, _const([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])),
    "iswap": GateDef(2, 0, _const([[1, 0, 0, 0], [0, 0, 1j, 0], [0, 1j, 0, 0], [0, 0, 0, 1]])),
    "rzz": GateDef(2, 1, _rzz, True),
    "rxx": GateDef(2, 1, _pauli_rot(_XX), True),
    "ryy": GateDef(2, 1, _pauli_rot(_YY), True),
    "su4": GateDef(2, 15, _su4),
}


def list_gates() -> list[str]:
    """Names of the library gates (plus ``"unitary"`` for explicit matrices)."""
    return sorted(GATES) + ["unitary"]


def gate_matrix(name: str, angles: Sequence[float] = ()) -> np.ndarray:
    """The matrix of library gate ``name`` at numeric ``angles`` (quimb/big-endian qubit order)."""
    try:
        g = GATES[name]
    except KeyError:
        raise ValueError(f"unknown gate {name!r}; valid gates: {list_gates()}") from None
    if len(angles) != g.n_angles:
        raise ValueError(f"gate {name!r} takes {g.n_angles} angles, got {len(angles)}")
    return np.asarray(g.matrix(*[float(a) for a in angles]), dtype=complex)


# ----------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Gate:
    """A unitary operation: a library gate with angles, or ``name="unitary"`` with a matrix."""

    name: str
    qubits: tuple[int, ...]
    angles: tuple = ()
    matrix: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "qubits", tuple(int(q) for q in self.qubits))
        object.__setattr__(self, "angles", tuple(self.angles))
        if len(set(self.qubits)) != len(self.qubits):
            raise ValueError(f"gate {self.name!r} acts on repeated qubits {self.qubits}")
        if self.name == "unitary":
            m = np.asarray(self.matrix, dtype=complex)
            dim = 2 ** len(self.qubits)
            if m.shape != (dim, dim):
                raise ValueError(
                    f"unitary on {len(self.qubits)} qubits needs a {dim}x{dim} matrix, "
                    f"got {m.shape}"
                )
            if not np.allclose(m.conj().T @ m, np.eye(dim), atol=1e-10):
                raise ValueError("matrix is not unitary (U^dagger U != I to 1e-10)")
            m.setflags(write=False)
            object.__setattr__(self, "matrix", m)
            return
        if self.name not in GATES:
            raise ValueError(f"unknown gate {self.name!r}; valid gates: {list_gates()}")
        g = GATES[self.name]
        if len(self.qubits) != g.n_qubits:
            raise ValueError(f"gate {self.name!r} acts on {g.n_qubits} qubit(s), got {self.qubits}")
        if len(self.angles) != g.n_angles:
            raise ValueError(
                f"gate {self.name!r} takes {g.n_angles} angles, got {len(self.angles)}"
            )
        for a in self.angles:
            if not isinstance(a, Trainable | Feature | int | float | np.floating | np.integer):
                raise ValueError(
                    f"angle {a!r} of gate {self.name!r} is not a float, Trainable or Feature"
                )

    def numeric_matrix(self, theta=None, x=None) -> np.ndarray:
        """The gate's matrix with trainable angles from ``theta`` and features from ``x``."""
        if self.name == "unitary":
            return self.matrix
        m = GATES[self.name].matrix(*[resolve(a, theta, x) for a in self.angles])
        return np.asarray(m, dtype=complex)


@dataclass(frozen=True)
class Measure:
    """Projective Z measurement of ``qubit`` into classical bit ``clbit`` (non-destructive)."""

    qubit: int
    clbit: int

    @property
    def qubits(self):
        return (self.qubit,)


@dataclass(frozen=True)
class Reset:
    """Reset ``qubit`` to |0> (the channel rho -> |0><0| tr_q rho)."""

    qubit: int

    @property
    def qubits(self):
        return (self.qubit,)


@dataclass(frozen=True)
class Discard:
    """Trace out ``qubit``; it must not be used again unless reset first."""

    qubit: int

    @property
    def qubits(self):
        return (self.qubit,)


@dataclass(frozen=True)
class Noise:
    """A noise channel (:class:`qtn.noise.Channel`, Kraus operators) acting on ``qubits``."""

    channel: Channel
    qubits: tuple[int, ...]

    def __post_init__(self):
        if not isinstance(self.channel, Channel):
            raise ValueError(f"channel must be a qtn.noise.Channel, got {self.channel!r}")
        object.__setattr__(self, "qubits", tuple(int(q) for q in np.atleast_1d(self.qubits)))
        if len(self.qubits) != self.channel.n_qubits or len(set(self.qubits)) != len(self.qubits):
            raise ValueError(
                f"channel {self.channel.name!r} acts on {self.channel.n_qubits} distinct "
                f"qubit(s), got {self.qubits}"
            )


Op = Gate | Measure | Reset | Discard | Noise


def resolve(a, theta=None, x=None) -> float:
    """Numeric value of an angle given trainable values ``theta`` and features ``x``."""
    if isinstance(a, Trainable):
        if theta is None:
            raise ValueError(f"angle {a} needs trainable parameters theta")
        return a.scale * theta[a.index] + a.offset
    if isinstance(a, Feature):
        if x is None:
            raise ValueError(f"angle {a} needs data x")
        return a.scale * x[a.index] + a.offset
    return float(a)


# ----------------------------------------------------------------------------- circuit


@dataclass(frozen=True)
class Circuit:
    """An immutable circuit on ``n_qubits`` qubits; builder methods return new circuits.

    Attributes
    ----------
    n_qubits
        Number of qubits (>= 1).
    ops
        Tuple of :class:`Gate`, :class:`Measure`, :class:`Reset`, :class:`Discard`,
        :class:`Noise`.

    ``n_params``, ``n_features`` and ``n_clbits`` are derived: one more than the
    largest index used.
    """

    n_qubits: int
    ops: tuple = ()

    def __post_init__(self):
        if not isinstance(self.n_qubits, int | np.integer) or self.n_qubits < 1:
            raise ValueError(f"n_qubits must be an integer >= 1, got {self.n_qubits!r}")
        object.__setattr__(self, "ops", tuple(self.ops))
        discarded: set[int] = set()
        for pos, op in enumerate(self.ops):
            if not isinstance(op, Gate | Measure | Reset | Discard | Noise):
                raise ValueError(
                    f"operation {pos} is not a Gate/Measure/Reset/Discard/Noise: {op!r}"
                )
            for q in op.qubits:
                if not 0 <= q < self.n_qubits:
                    raise ValueError(
                        f"operation {pos} ({_label(op)}) uses qubit {q}, "
                        f"outside [0, {self.n_qubits - 1}]"
                    )
                if q in discarded and not isinstance(op, Reset):
                    raise ValueError(
                        f"operation {pos} ({_label(op)}) uses qubit {q} after it was discarded"
                    )
            if isinstance(op, Discard):
                discarded.add(op.qubit)
            elif isinstance(op, Reset):
                discarded.discard(op.qubit)
            if isinstance(op, Measure) and op.clbit < 0:
                raise ValueError(f"operation {pos}: clbit must be >= 0, got {op.clbit}")

    # -- derived counts
    def _angles(self):
        for op in self.ops:
            if isinstance(op, Gate):
                yield from op.angles

    @property
    def n_params(self) -> int:
        return 1 + max((a.index for a in self._angles() if isinstance(a, Trainable)), default=-1)

    @property
    def n_features(self) -> int:
        return 1 + max((a.index for a in self._angles() if isinstance(a, Feature)), default=-1)

    @property
    def n_clbits(self) -> int:
        return 1 + max((op.clbit for op in self.ops if isinstance(op, Measure)), default=-1)

    @property
    def is_unitary(self) -> bool:
        return all(isinstance(op, Gate) for op in self.ops)

    def structure_key(self) -> tuple:
        """A hashable key equal for circuits that differ only in trainable/feature values.

        Constant angles, unitary matrices (by digest), channels (by digest of their
        superoperator), measured clbits and qubits all enter the key; the simulator
        caches contraction plans and the Qiskit runner transpiled circuits by it.
        """
        parts: list = [self.n_qubits]
        for op in self.ops:
            if isinstance(op, Noise):
                parts.append(("noise", op.qubits, _digest(op.channel.superoperator())))
            elif isinstance(op, Measure):
                parts.append(("measure", op.qubits, op.clbit))
            elif not isinstance(op, Gate):
                parts.append((type(op).__name__, op.qubits))
            else:
                angles = tuple(
                    a if isinstance(a, Trainable | Feature) else ("c", float(a)) for a in op.angles
                )
                mat = _digest(op.matrix) if op.name == "unitary" else None
                parts.append((op.name, op.qubits, angles, mat))
        return tuple(parts)

    # -- builders
    def append(self, op: Op) -> Circuit:
        return Circuit(self.n_qubits, (*self.ops, op))

    def gate(self, name: str, qubits, *angles) -> Circuit:
        qubits = (qubits,) if isinstance(qubits, int | np.integer) else tuple(qubits)
        return self.append(Gate(name, qubits, angles))

    def unitary(self, matrix, qubits) -> Circuit:
        qubits = (qubits,) if isinstance(qubits, int | np.integer) else tuple(qubits)
        return self.append(Gate("unitary", qubits, (), matrix))

    def h(self, q):
        return self.gate("h", q)

    def x(self, q):
        return self.gate("x", q)

    def rx(self, q, a):
        return self.gate("rx", q, a)

    def ry(self, q, a):
        return self.gate("ry", q, a)

    def rz(self, q, a):
        return self.gate("rz", q, a)

    def u3(self, q, a, b, c):
        return self.gate("u3", q, a, b, c)

    def cx(self, c, t):
        return self.gate("cx", (c, t))

    def cz(self, a, b):
        return self.gate("cz", (a, b))

    def rzz(self, qubits, a):
        return self.gate("rzz", qubits, a)

    def su4(self, qubits, *, start: int) -> Circuit:
        """A general two-qubit block with trainable angles ``start .. start+14``."""
        return self.gate("su4", qubits, *[Trainable(start + i) for i in range(15)])

    def measure(self, q, c) -> Circuit:
        return self.append(Measure(int(q), int(c)))

    def reset(self, q) -> Circuit:
        return self.append(Reset(int(q)))

    def discard(self, q) -> Circuit:
        return self.append(Discard(int(q)))

    def noise(self, channel: Channel, qubits) -> Circuit:
        """Apply a :class:`qtn.noise.Channel` to ``qubits`` here."""
        return self.append(Noise(channel, qubits))

    # -- utilities
    def compose(self, other: Circuit) -> Circuit:
        """This circuit followed by ``other`` (on the same number of qubits)."""
        if other.n_qubits != self.n_qubits:
            raise ValueError(f"cannot compose {self.n_qubits}- and {other.n_qubits}-qubit circuits")
        return Circuit(self.n_qubits, self.ops + other.ops)

    def inverse(self) -> Circuit:
        """The inverse of a unitary circuit: gates reversed, each negated or daggered."""
        if not self.is_unitary:
            bad = next(i for i, op in enumerate(self.ops) if not isinstance(op, Gate))
            raise ValueError(
                f"inverse needs a unitary circuit; operation {bad} is {_label(self.ops[bad])}"
            )
        inv = []
        dagger_names = {"s": "sdg", "sdg": "s", "t": "tdg", "tdg": "t"}
        for op in reversed(self.ops):
            symbolic = any(isinstance(a, Trainable | Feature) for a in op.angles)
            if op.name in ("rx", "ry", "rz", "rzz", "rxx", "ryy"):
                inv.append(Gate(op.name, op.qubits, (_negate(op.angles[0]),)))
            elif op.name in dagger_names or op.name in (
                "id",
                "h",
                "x",
                "y",
                "z",
                "cx",
                "cz",
                "swap",
            ):
                inv.append(Gate(dagger_names.get(op.name, op.name), op.qubits))
            elif not symbolic:
                inv.append(Gate("unitary", op.qubits, (), op.numeric_matrix().conj().T))
            else:
                raise ValueError(
                    f"inverse of parameterised {op.name!r} needs numeric angles: call bind() first"
                )
        return Circuit(self.n_qubits, tuple(inv))

    def bind(self, params=None, data=None) -> Circuit:
        """Replace trainable angles by ``params`` and/or feature angles by ``data`` (floats)."""
        if params is not None and len(params) < self.n_params:
            raise ValueError(f"params has length {len(params)}, the circuit needs {self.n_params}")
        if data is not None and len(data) < self.n_features:
            raise ValueError(f"data has length {len(data)}, the circuit needs {self.n_features}")
        ops = []
        for op in self.ops:
            if isinstance(op, Gate) and op.angles:
                angles = tuple(
                    resolve(a, params, None) if isinstance(a, Trainable) and params is not None
                    else resolve(a, None, data) if isinstance(a, Feature) and data is not None
                    else a
                    for a in op.angles
                )  # fmt: skip
                op = replace(op, angles=angles)
            ops.append(op)
        return Circuit(self.n_qubits, tuple(ops))

    def depth(self) -> int:
        """Circuit depth: the longest chain of operations sharing qubits."""
        level = [0] * self.n_qubits
        for op in self.ops:
            d = 1 + max(level[q] for q in op.qubits)
            for q in op.qubits:
                level[q] = d
        return max(level)

    def count_2q(self) -> int:
        """Number of gates acting on two or more qubits."""
        return sum(1 for op in self.ops if isinstance(op, Gate) and len(op.qubits) >= 2)

    def draw(self) -> str:
        """A plain-text listing, one operation per line, with the qubit wires it touches."""
        head = (
            f"Circuit({self.n_qubits} qubits, {len(self.ops)} ops, {self.n_params} params, "
            f"{self.n_features} features, depth {self.depth()})"
        )
        lines = [head]
        for i, op in enumerate(self.ops):
            wires = ["|"] * self.n_qubits
            for k, q in enumerate(op.qubits):
                wires[q] = str(k) if len(op.qubits) > 1 else "*"
            lines.append(f"{i:4d} {' '.join(wires)}  {_label(op)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.draw()


def staircase(n_qubits: int, sweeps: int = 1, *, encode: bool = True) -> Circuit:
    """The MPS-staircase circuit: RY(pi x_q) on every qubit (if ``encode``), then
    ``sweeps`` sweeps of 15-parameter SU(4) blocks on qubits (0,1), (1,2), ...

    The block on pair (q, q+1) of sweep s has trainable angles starting at
    ``15 * (s * (n_qubits - 1) + q)`` (Huggins et al. 2019, arXiv:1803.11537).

    Examples
    --------
    >>> staircase(4, sweeps=2).n_params
    90
    """
    if not isinstance(n_qubits, int | np.integer) or n_qubits < 2:
        raise ValueError(f"n_qubits must be an integer >= 2, got {n_qubits!r}")
    if not isinstance(sweeps, int | np.integer) or sweeps < 1:
        raise ValueError(f"sweeps must be an integer >= 1, got {sweeps!r}")
    c = Circuit(n_qubits)
    if encode:
        for q in range(n_qubits):
            c = c.ry(q, Feature(q))
    k = 0
    for _ in range(sweeps):
        for q in range(n_qubits - 1):
            c = c.su4((q, q + 1), start=15 * k)
            k += 1
    return c


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _negate(a):
    if isinstance(a, Trainable | Feature):
        return replace(a, scale=-a.scale, offset=-a.offset)
    return -float(a)


def _label(op) -> str:
    if isinstance(op, Gate):
        args = ", ".join(_fmt_angle(a) for a in op.angles)
        return f"{op.name}({args}) q{list(op.qubits)}" if args else f"{op.name} q{list(op.qubits)}"
    if isinstance(op, Measure):
        return f"measure q{op.qubit} -> c{op.clbit}"
    if isinstance(op, Noise):
        args = ", ".join(f"{k}={v:g}" for k, v in op.channel.params)
        return f"noise {op.channel.name}({args}) q{list(op.qubits)}"
    return f"{type(op).__name__.lower()} q{op.qubit}"


def _fmt_angle(a) -> str:
    if isinstance(a, Trainable):
        return (
            f"theta[{a.index}]"
            if (a.scale, a.offset) == (1.0, 0.0)
            else f"{a.scale:g}*theta[{a.index}]+{a.offset:g}"
        )
    if isinstance(a, Feature):
        return (
            f"pi*x[{a.index}]"
            if (a.scale, a.offset) == (math.pi, 0.0)
            else f"{a.scale:g}*x[{a.index}]+{a.offset:g}"
        )
    return f"{float(a):.4g}"
