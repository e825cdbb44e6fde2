"""Angles and operations of the circuit IR.

Angles are one of

- a float (a constant),
- :class:`Trainable` ``(index, scale=1, offset=0)``: ``scale * theta[index] + offset``,
- :class:`Feature` ``(index, scale=pi, offset=0)``: ``scale * x[index] + offset``
  (data-bound, so one circuit structure serves every input; with the default
  scale, RY(pi x)|0> equals the trigonometric feature vector of x).

Operations are frozen dataclasses, validated at construction: :class:`Gate`
(a registered gate, or an explicit unitary), :class:`Measure`, :class:`Reset`,
:class:`Discard`, :class:`Barrier` and :class:`Noise` (a Kraus channel).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace

import numpy as np

from qtn.circuit.channels import Channel
from qtn.circuit.gates import GATES, get_gate

__all__ = [
    "Trainable",
    "Feature",
    "Angle",
    "Gate",
    "Measure",
    "Reset",
    "Discard",
    "Barrier",
    "Noise",
    "Op",
    "OPS",
    "resolve",
]


def _check_real(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite real number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class Trainable:
    """A trainable angle: ``scale * theta[index] + offset``."""

    index: int
    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self):
        _check_index(type(self).__name__, self.index)
        object.__setattr__(self, "scale", _check_real("Trainable scale", self.scale))
        object.__setattr__(self, "offset", _check_real("Trainable offset", self.offset))

    def negated(self) -> Trainable:
        return replace(self, scale=-self.scale, offset=-self.offset)


@dataclass(frozen=True)
class Feature:
    """A data-bound angle: ``scale * x[index] + offset`` (default scale pi)."""

    index: int
    scale: float = math.pi
    offset: float = 0.0

    def __post_init__(self):
        _check_index(type(self).__name__, self.index)
        object.__setattr__(self, "scale", _check_real("Feature scale", self.scale))
        object.__setattr__(self, "offset", _check_real("Feature offset", self.offset))

    def negated(self) -> Feature:
        return replace(self, scale=-self.scale, offset=-self.offset)


def _check_index(kind, index):
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
        raise ValueError(f"{kind} index must be an integer >= 0, got {index!r}")


Angle = float | Trainable | Feature


def resolve(a, theta=None, x=None) -> float:
    """Numeric value of an angle given trainable values ``theta`` and features ``x``."""
    if isinstance(a, Trainable):
        if theta is None:
            raise ValueError(f"angle {a} needs trainable parameters (params)")
        return a.scale * theta[a.index] + a.offset
    if isinstance(a, Feature):
        if x is None:
            raise ValueError(f"angle {a} needs data")
        return a.scale * x[a.index] + a.offset
    return float(a)


# ----------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Gate:
    """A unitary operation: a registered gate with angles, or ``name="unitary"`` with a matrix.

    A ``unitary`` matrix is big-endian on ``qubits``: the first listed qubit is the
    most significant bit of the matrix index (Qiskit's ``unitary`` is little-endian).
    """

    name: str
    qubits: tuple[int, ...]
    angles: tuple = ()
    matrix: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "qubits", _qubit_tuple(self.qubits, f"gate {self.name!r}"))
        object.__setattr__(self, "angles", tuple(self.angles))
        if self.name == "unitary":
            self._check_unitary()
            return
        g = get_gate(self.name)
        if len(self.qubits) != g.n_qubits:
            raise ValueError(f"gate {self.name!r} acts on {g.n_qubits} qubit(s), got {self.qubits}")
        if len(self.angles) != g.n_angles:
            raise ValueError(
                f"gate {self.name!r} takes {g.n_angles} angles, got {len(self.angles)}"
            )
        angles = []
        for k, a in enumerate(self.angles):
            if not isinstance(a, Trainable | Feature):
                try:
                    a = _check_real(f"angle {k} of gate {self.name!r}", a)
                except ValueError:
                    raise ValueError(
                        f"angle {k} of gate {self.name!r} must be a finite float, Trainable "
                        f"or Feature, got {a!r}"
                    ) from None
            angles.append(a)
        object.__setattr__(self, "angles", tuple(angles))

    def _check_unitary(self):
        try:
            m = np.array(self.matrix, dtype=complex)
        except (TypeError, ValueError):
            raise ValueError(f"matrix must be a numeric array, got {self.matrix!r}") from None
        dim = 2 ** len(self.qubits)
        if m.shape != (dim, dim):
            raise ValueError(
                f"unitary on {len(self.qubits)} qubits needs a {dim}x{dim} matrix, got {m.shape}"
            )
        if not np.all(np.isfinite(m)):
            raise ValueError("matrix contains NaN or inf")
        if not np.allclose(m.conj().T @ m, np.eye(dim), atol=1e-10):
            raise ValueError("matrix is not unitary (U^dagger U != I to 1e-10)")
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)
        if self.angles:
            raise ValueError("a 'unitary' gate takes no angles")

    @property
    def is_symbolic(self) -> bool:
        """True when some angle is a :class:`Trainable` or :class:`Feature`."""
        return any(isinstance(a, Trainable | Feature) for a in self.angles)

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

    def __post_init__(self):
        object.__setattr__(self, "qubit", _qubit_tuple((self.qubit,), "measure")[0])
        _check_index("clbit", self.clbit)
        object.__setattr__(self, "clbit", int(self.clbit))

    @property
    def qubits(self):
        return (self.qubit,)


@dataclass(frozen=True)
class Reset:
    """Reset ``qubit`` to |0> (the channel rho -> |0><0| tr_q rho)."""

    qubit: int

    def __post_init__(self):
        object.__setattr__(self, "qubit", _qubit_tuple((self.qubit,), "reset")[0])

    @property
    def qubits(self):
        return (self.qubit,)


@dataclass(frozen=True)
class Discard:
    """Trace out ``qubit``; it must not be used again unless reset first."""

    qubit: int

    def __post_init__(self):
        object.__setattr__(self, "qubit", _qubit_tuple((self.qubit,), "discard")[0])

    @property
    def qubits(self):
        return (self.qubit,)


@dataclass(frozen=True)
class Barrier:
    """A barrier on ``qubits``: no effect on any result; kept for export and drawing."""

    qubits: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "qubits", _qubit_tuple(self.qubits, "barrier"))


@dataclass(frozen=True)
class Noise:
    """A noise channel (:class:`qtn.circuit.Channel`, Kraus operators) acting on ``qubits``."""

    channel: Channel
    qubits: tuple[int, ...]

    def __post_init__(self):
        if not isinstance(self.channel, Channel):
            raise ValueError(f"channel must be a qtn Channel, got {self.channel!r}")
        object.__setattr__(self, "qubits", _qubit_tuple(np.atleast_1d(self.qubits), "noise"))
        if len(self.qubits) != self.channel.n_qubits:
            raise ValueError(
                f"channel {self.channel.name!r} acts on {self.channel.n_qubits} distinct "
                f"qubit(s), got {self.qubits}"
            )


Op = Gate | Measure | Reset | Discard | Barrier | Noise
OPS = (Gate, Measure, Reset, Discard, Barrier, Noise)


def _qubit_tuple(qubits, what: str) -> tuple[int, ...]:
    out = []
    for q in qubits:
        if isinstance(q, bool) or not isinstance(q, numbers.Integral):
            raise ValueError(f"{what}: qubits must be integers, got {q!r}")
        if q < 0:
            raise ValueError(f"{what}: qubit indices must be >= 0, got {int(q)}")
        out.append(int(q))
    if len(set(out)) != len(out):
        raise ValueError(f"{what} acts on repeated qubits {tuple(out)}")
    return tuple(out)
