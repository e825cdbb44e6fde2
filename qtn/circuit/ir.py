"""Backend-neutral circuit IR: the :class:`Circuit` builder (angles and operations: ``ops.py``).

Nothing here imports JAX or Qiskit. Qubit order follows quimb: qubit 0 is the
leftmost (most significant) factor of a computational basis state,
``|q0 q1 ... q_{n-1}>``; :mod:`qtn.export` is the one place that converts to
Qiskit's little-endian order (qubit *labels* are kept there: qubit q is qubit q).

Angles are one of

- a float (a constant),
- :class:`Trainable` ``(index, scale=1, offset=0)``: ``scale * theta[index] + offset``,
- :class:`Feature` ``(index, scale=pi, offset=0)``: ``scale * x[index] + offset``
  (data-bound, so one circuit structure serves every input; with the default
  scale, RY(pi x)|0> equals the trigonometric feature vector of x).

A :class:`Circuit` is built in place, as in Qiskit and quimb, with angles
before qubits (``c.ry(theta, q)``, ``c.rzz(theta, q0, q1)``); builder methods
also return the circuit, so calls chain. Simulators and runners work from
:meth:`Circuit.snapshot`, an immutable copy: changing a circuit after
planning never reuses a stale plan or transpilation.

Examples
--------
>>> from qtn.circuit import Circuit, Feature
>>> c = Circuit(2)
>>> _ = c.ry(Feature(0), 0).ry(Feature(1), 1)   # in place; returns c for chaining
>>> _ = c.su4(0, 1, start=0).measure(0, 0)
>>> c.n_params, c.n_features, c.count_2q()
(15, 2, 1)
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from qtn._checks import real_array
from qtn.circuit.builders import GateBuilders
from qtn.circuit.channels import Channel
from qtn.circuit.gates import GATES, get_gate
from qtn.circuit.ops import (
    OPS,
    Barrier,
    Discard,
    Feature,
    Gate,
    Measure,
    Noise,
    Op,
    Reset,
    Trainable,
    _check_real,
    resolve,
)

__all__ = ["Circuit"]


# ----------------------------------------------------------------------------- circuit


class Circuit(GateBuilders):
    """A quantum circuit on ``n_qubits`` qubits, built in place.

    Parameters
    ----------
    n_qubits
        Number of qubits (>= 1).
    ops
        Initial operations: :class:`Gate`, :class:`Measure`, :class:`Reset`,
        :class:`Discard`, :class:`Barrier`, :class:`Noise`.
    global_phase
        A global phase phi: the circuit's unitary is exp(i phi) times the product
        of its gates (kept so that amplitudes agree with Qiskit's).

    Builder methods (``h``, ``ry``, ``cx``, ``su4``, ``measure``, ...) append in
    place and return the circuit. ``n_params``, ``n_features`` and ``n_clbits``
    are one more than the largest index used.

    Examples
    --------
    >>> c = Circuit(2)
    >>> _ = c.h(0)
    >>> _ = c.cx(0, 1)
    >>> len(c), c.depth()
    (2, 2)
    """

    __slots__ = ("_n", "_ops", "_phase", "_discarded", "_frozen", "_key")

    def __init__(self, n_qubits: int, ops: Iterable = (), *, global_phase: float = 0.0):
        if isinstance(n_qubits, bool) or not isinstance(n_qubits, numbers.Integral) or n_qubits < 1:
            raise ValueError(f"n_qubits must be an integer >= 1, got {n_qubits!r}")
        self._n = int(n_qubits)
        self._ops: list = []
        self._phase = _check_real("global_phase", global_phase)
        self._discarded: set[int] = set()
        self._frozen = False
        self._key = None
        for op in ops:
            self.append(op)

    # -- basic attributes
    @property
    def n_qubits(self) -> int:
        return self._n

    @property
    def ops(self) -> tuple:
        """The operations, in time order (a tuple: edit through the builder methods)."""
        return tuple(self._ops)

    @property
    def global_phase(self) -> float:
        return self._phase

    @global_phase.setter
    def global_phase(self, value: float) -> None:
        self._check_mutable()
        self._phase = _check_real("global_phase", value)

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self):
        return iter(tuple(self._ops))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Circuit):
            return NotImplemented
        return (
            self._n == other._n
            and self._phase == other._phase
            and self.structure_key() == other.structure_key()
            and self._ops == other._ops
        )

    __hash__ = None  # a mutable builder; snapshot().structure_key() is the hashable identity

    def __repr__(self) -> str:
        frozen = ", frozen" if self._frozen else ""
        return f"<qtn.Circuit {self._n} qubits, {len(self._ops)} ops{frozen}>"

    def __str__(self) -> str:
        return self.draw()

    # -- derived counts
    def _angles(self):
        for op in self._ops:
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
        return 1 + max((op.clbit for op in self._ops if isinstance(op, Measure)), default=-1)

    @property
    def is_unitary(self) -> bool:
        """True when every operation is a gate (or a barrier): a pure final state."""
        return all(isinstance(op, Gate | Barrier) for op in self._ops)

    # -- snapshots
    @property
    def frozen(self) -> bool:
        """True for snapshots, which refuse every change."""
        return self._frozen

    def snapshot(self) -> Circuit:
        """An immutable copy (``self`` when already frozen); simulators and runners keep these."""
        if self._frozen:
            return self
        snap = self.copy()
        snap._frozen = True
        return snap

    def copy(self) -> Circuit:
        """A mutable copy."""
        out = Circuit.__new__(Circuit)
        out._n, out._ops, out._phase = self._n, list(self._ops), self._phase
        out._discarded, out._frozen, out._key = set(self._discarded), False, None
        return out

    def _check_mutable(self):
        if self._frozen:
            raise ValueError(
                "this Circuit is a frozen snapshot (simulators and runners keep these); "
                "build on circuit.copy() instead"
            )

    def structure_key(self) -> tuple:
        """A hashable key equal for circuits that differ only in trainable/feature values.

        Constant angles, unitary matrices and channels (by digest), measured clbits,
        qubits and the global phase all enter the key; the simulator caches
        contraction plans and the Qiskit runner transpiled circuits by it.
        """
        if self._key is not None:
            return self._key
        parts: list = [self._n, self._phase]
        for op in self._ops:
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
        key = tuple(parts)
        if self._frozen:
            self._key = key
        return key

    # -- appending
    def append(self, op: Op) -> Circuit:
        """Append one operation in place (validated); returns the circuit."""
        self._check_mutable()
        if not isinstance(op, OPS):
            raise ValueError(
                f"op must be a Gate, Measure, Reset, Discard, Barrier or Noise, got {op!r}"
            )
        pos = len(self._ops)
        for q in op.qubits:
            if not 0 <= q < self._n:
                raise ValueError(
                    f"operation {pos} ({_label(op)}) uses qubit {q}, outside [0, {self._n - 1}]"
                )
            if q in self._discarded and not isinstance(op, Reset | Barrier):
                raise ValueError(
                    f"operation {pos} ({_label(op)}) uses qubit {q} after it was discarded"
                )
        if isinstance(op, Discard):
            self._discarded.add(op.qubit)
        elif isinstance(op, Reset):
            self._discarded.discard(op.qubit)
        self._ops.append(op)
        return self

    def extend(self, ops: Iterable[Op]) -> Circuit:
        """Append several operations in place; returns the circuit."""
        for op in ops:
            self.append(op)
        return self

    def gate(self, name: str, *args) -> Circuit:
        """Append gate ``name``: its angles first, then its qubits, as the named builders do.

        Qubit arguments may be sequences, which broadcast as in Qiskit:
        ``c.gate("h", [0, 1, 2])`` or ``c.gate("cx", [0, 1], [1, 2])``.
        """
        g = get_gate(name)
        if len(args) != g.n_angles + g.n_qubits:
            raise ValueError(
                f"gate {name!r} takes {g.n_angles} angle(s) then {g.n_qubits} qubit(s), "
                f"got {len(args)} arguments"
            )
        angles, qargs = args[: g.n_angles], args[g.n_angles :]
        for qubits in _broadcast(qargs):
            self.append(Gate(name, qubits, angles))
        return self

    def unitary(self, matrix, qubits) -> Circuit:
        """Append an explicit unitary, big-endian on ``qubits`` (first listed most significant)."""
        qubits = (qubits,) if isinstance(qubits, numbers.Integral) else tuple(qubits)
        return self.append(Gate("unitary", qubits, (), matrix))

    # -- non-unitary operations
    def measure(self, qubit, clbit) -> Circuit:
        """Measure ``qubit`` into ``clbit`` (both may be equal-length sequences)."""
        qs = [qubit] if isinstance(qubit, numbers.Integral) else list(qubit)
        cs = [clbit] if isinstance(clbit, numbers.Integral) else list(clbit)
        if len(qs) != len(cs):
            raise ValueError(f"measure: {len(qs)} qubit(s) but {len(cs)} clbit(s)")
        for q, c in zip(qs, cs):
            self.append(Measure(q, c))
        return self

    def measure_all(self) -> Circuit:
        """Measure every qubit q into a fresh clbit ``n_clbits + q`` (after a barrier)."""
        first = self.n_clbits
        self.barrier()
        return self.measure(list(range(self._n)), [first + q for q in range(self._n)])

    def reset(self, qubit) -> Circuit:
        for q in [qubit] if isinstance(qubit, numbers.Integral) else list(qubit):
            self.append(Reset(q))
        return self

    def discard(self, qubit) -> Circuit:
        for q in [qubit] if isinstance(qubit, numbers.Integral) else list(qubit):
            self.append(Discard(q))
        return self

    def barrier(self, *qubits) -> Circuit:
        """A barrier on ``qubits`` (all qubits if none are given)."""
        flat = [q for a in qubits for q in ([a] if isinstance(a, numbers.Integral) else a)]
        live = [q for q in range(self._n) if q not in self._discarded]
        return self.append(Barrier(tuple(flat) if flat else tuple(live)))

    def noise(self, channel: Channel, qubits) -> Circuit:
        """Apply a :class:`qtn.circuit.Channel` to ``qubits`` here."""
        return self.append(Noise(channel, qubits))

    # -- whole-circuit transformations (new circuits)
    def compose(self, other: Circuit, qubits: Sequence[int] | None = None, *, inplace=False):
        """This circuit followed by ``other``; ``qubits[i]`` receives ``other``'s qubit i.

        Returns a new circuit unless ``inplace`` (then None, as in Qiskit).
        """
        if not isinstance(other, Circuit):
            raise ValueError(f"other must be a qtn Circuit, got {type(other).__name__}")
        if qubits is None:
            if other.n_qubits != self._n:
                raise ValueError(
                    f"cannot compose a {other.n_qubits}-qubit circuit onto {self._n} qubits "
                    "without qubits=[...]"
                )
            mapping = list(range(self._n))
        else:
            mapping = [int(q) for q in qubits]
            if len(mapping) != other.n_qubits:
                raise ValueError(f"qubits has {len(mapping)} entries, other has {other.n_qubits}")
        target = self if inplace else self.copy()
        target._check_mutable()
        for op in other._ops:
            target.append(_remap(op, mapping))
        target._phase += other._phase
        return None if inplace else target

    def inverse(self) -> Circuit:
        """The inverse of a unitary circuit: gates reversed, each inverted through the registry.

        A gate without a symbolic inverse rule (``iswap``, ``unitary``) becomes the
        conjugate transpose of its numeric matrix; with symbolic angles, call
        :meth:`bind` first.
        """
        inv = Circuit(self._n, global_phase=-self._phase)
        for pos in range(len(self._ops) - 1, -1, -1):
            op = self._ops[pos]
            if isinstance(op, Barrier):
                inv.append(op)
                continue
            if not isinstance(op, Gate):
                raise ValueError(
                    f"inverse needs a unitary circuit; operation {pos} is {_label(op)}"
                )
            rule = GATES[op.name].inverse if op.name != "unitary" else None
            if rule is not None:
                name, angles = rule(op.angles)
                inv.append(Gate(name, op.qubits, angles))
            elif not op.is_symbolic:
                inv.append(Gate("unitary", op.qubits, (), op.numeric_matrix().conj().T))
            else:  # pragma: no cover - every registered parameterised gate has a rule
                raise ValueError(
                    f"inverse of parameterised {op.name!r} needs numeric angles: call bind() first"
                )
        return inv

    def bind(self, params=None, data=None) -> Circuit:
        """A new circuit with trainable angles set from ``params`` and/or features from ``data``."""
        params = None if params is None else _finite_vector("params", params, self.n_params)
        data = None if data is None else _finite_vector("data", data, self.n_features)
        out = Circuit(self._n, global_phase=self._phase)
        for op in self._ops:
            if isinstance(op, Gate) and op.angles:
                angles = tuple(
                    resolve(a, params, None) if isinstance(a, Trainable) and params is not None
                    else resolve(a, None, data) if isinstance(a, Feature) and data is not None
                    else a
                    for a in op.angles
                )  # fmt: skip
                op = replace(op, angles=angles)
            out.append(op)
        return out

    # -- inspection
    def depth(self) -> int:
        """Circuit depth: the longest chain of operations sharing qubits (barriers excluded)."""
        level = [0] * self._n
        for op in self._ops:
            if isinstance(op, Barrier):
                continue
            d = 1 + max(level[q] for q in op.qubits)
            for q in op.qubits:
                level[q] = d
        return max(level)

    def count_2q(self) -> int:
        """Number of gates acting on two or more qubits."""
        return sum(1 for op in self._ops if isinstance(op, Gate) and len(op.qubits) >= 2)

    def count_ops(self) -> dict[str, int]:
        """Operation counts by name, most frequent first (as Qiskit's ``count_ops``)."""
        counts: dict[str, int] = {}
        for op in self._ops:
            name = op.name if isinstance(op, Gate) else type(op).__name__.lower()
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def draw(self) -> str:
        """A plain-text listing, one operation per line, with the qubit wires it touches."""
        head = (
            f"Circuit({self._n} qubits, {len(self._ops)} ops, {self.n_params} params, "
            f"{self.n_features} features, depth {self.depth()})"
        )
        lines = [head]
        for i, op in enumerate(self._ops):
            wires = ["|"] * self._n
            for k, q in enumerate(op.qubits):
                wires[q] = str(k) if len(op.qubits) > 1 else "*"
            lines.append(f"{i:4d} {' '.join(wires)}  {_label(op)}")
        return "\n".join(lines)


def _broadcast(qargs) -> list[tuple[int, ...]]:
    """Qiskit-style broadcasting of qubit arguments (ints or sequences)."""
    lists = [[q] if isinstance(q, numbers.Integral) else list(q) for q in qargs]
    size = max((len(a) for a in lists), default=1)
    for a in lists:
        if len(a) not in (1, size):
            raise ValueError(f"qubit arguments of different lengths cannot broadcast: {qargs}")
    return [tuple(a[i] if len(a) > 1 else a[0] for a in lists) for i in range(size)]


def _remap(op, mapping):
    if isinstance(op, Measure | Reset | Discard):
        return replace(op, qubit=mapping[op.qubit])
    return replace(op, qubits=tuple(mapping[q] for q in op.qubits))


def _finite_vector(name, values, need):
    arr = real_array(name, values)
    if arr.ndim != 1 or arr.shape[0] < need:
        raise ValueError(f"{name} has shape {arr.shape}; the circuit needs {need} values")
    return arr


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _label(op) -> str:
    if isinstance(op, Gate):
        args = ", ".join(_fmt_angle(a) for a in op.angles)
        return f"{op.name}({args}) q{list(op.qubits)}" if args else f"{op.name} q{list(op.qubits)}"
    if isinstance(op, Measure):
        return f"measure q{op.qubit} -> c{op.clbit}"
    if isinstance(op, Noise):
        args = ", ".join(f"{k}={v:g}" for k, v in op.channel.params)
        return f"noise {op.channel.name}({args}) q{list(op.qubits)}"
    if isinstance(op, Barrier):
        return f"barrier q{list(op.qubits)}"
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
