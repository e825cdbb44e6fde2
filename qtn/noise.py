"""Noise: quantum channels as Kraus operators, readout errors, and a NoiseModel.

Backend-neutral (numpy only). A :class:`Channel` is a completely positive,
trace-preserving map given by Kraus operators, checked for completeness
(sum_i K_i^dagger K_i = I) at construction. A :class:`NoiseModel` attaches
channels after gates (by gate name, optionally restricted to qubits) and
readout errors to measured qubits; ``noise.apply(circuit)`` returns the noisy
circuit with :class:`qtn.circuit.Noise` operations inserted, which both the
dense oracle and the contraction engine simulate as density-matrix networks.
The Qiskit bridge maps the same object to an Aer ``NoiseModel``.

Parameter conventions follow Qiskit Aer's ``noise`` module, so one description
means the same thing in both simulators:

- ``depolarizing(p, n)``: rho -> (1 - p) rho + p I / 2**n (``p = 1`` is fully mixed);
- ``amplitude_damping(gamma)``: |1> decays to |0> with probability gamma;
- ``phase_damping(lam)``: coherences shrink by sqrt(1 - lam);
- ``thermal_relaxation(t1, t2, time)``: relaxation towards |0> (T1) and dephasing (T2 <= 2 T1);
- :class:`ReadoutError` ``(p1_given0, p0_given1)``: classical bit flips of measured outcomes.

Examples
--------
>>> from qtn.circuit import Circuit
>>> from qtn.noise import NoiseModel, depolarizing, ReadoutError
>>> nm = NoiseModel().add_gate_noise(depolarizing(0.01, 2), ["cx"])
>>> nm = nm.add_readout_error(ReadoutError(0.02, 0.05))
>>> noisy = nm.apply(Circuit(2).h(0).cx(0, 1))
>>> [type(op).__name__ for op in noisy.ops]
['Gate', 'Gate', 'Noise']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Channel",
    "ReadoutError",
    "NoiseModel",
    "kraus_channel",
    "depolarizing",
    "amplitude_damping",
    "phase_damping",
    "bit_flip",
    "thermal_relaxation",
]

_PAULIS = (
    np.eye(2, dtype=complex),
    np.array([[0, 1], [1, 0]], dtype=complex),
    np.array([[0, -1j], [1j, 0]], dtype=complex),
    np.diag([1.0, -1.0]).astype(complex),
)


@dataclass(frozen=True)
class Channel:
    """A CPTP map on ``n_qubits`` qubits given by Kraus operators.

    Parameters
    ----------
    name
        A label (``"depolarizing"``, ``"amplitude_damping"``, ``"kraus"``, ...).
    kraus
        Kraus matrices of shape (2**n, 2**n); completeness is checked to 1e-10.
    params
        The constructor's parameters, kept for export (for example ``{"p": 0.01}``).
    """

    name: str
    kraus: tuple = field(compare=False, repr=False)
    params: tuple = ()

    def __post_init__(self):
        ops = [np.array(k, dtype=complex) for k in self.kraus]
        if not ops:
            raise ValueError("kraus: a channel needs at least one Kraus operator")
        dim = ops[0].shape[0]
        n = int(round(math.log2(dim))) if dim > 0 else 0
        for i, k in enumerate(ops):
            if k.shape != (dim, dim) or 2**n != dim or n < 1:
                raise ValueError(
                    f"kraus[{i}] has shape {k.shape}; expected square (2**n, 2**n) matrices "
                    f"of one size (the first is {ops[0].shape})"
                )
            if not np.all(np.isfinite(k)):
                raise ValueError(f"kraus[{i}] contains NaN or inf")
            k.setflags(write=False)
        total = sum(k.conj().T @ k for k in ops)
        err = float(np.max(np.abs(total - np.eye(dim))))
        if err > 1e-10:
            raise ValueError(
                f"Kraus operators of {self.name!r} are not complete: "
                f"max |sum K^dagger K - I| = {err:.3g} (> 1e-10); the map is not trace preserving"
            )
        object.__setattr__(self, "kraus", tuple(ops))
        object.__setattr__(self, "params", tuple(self.params))

    @property
    def n_qubits(self) -> int:
        return int(round(math.log2(self.kraus[0].shape[0])))

    def superoperator(self) -> np.ndarray:
        """The tensor S[out_ket, out_bra, in_ket, in_bra] = sum_i K_i[o, i] conj(K_i[o', i'])."""
        d = self.kraus[0].shape[0]
        s = sum(np.einsum("ab,cd->acbd", k, k.conj()) for k in self.kraus)
        return s.reshape(d, d, d, d)

    def apply(self, rho: np.ndarray) -> np.ndarray:
        """sum_i K_i rho K_i^dagger for a (2**n, 2**n) density matrix."""
        return sum(k @ rho @ k.conj().T for k in self.kraus)

    def compose(self, other: Channel) -> Channel:
        """This channel followed by ``other`` (same number of qubits)."""
        if other.n_qubits != self.n_qubits:
            raise ValueError("compose needs channels on the same number of qubits")
        ops = [b @ a for a, b in itertools.product(self.kraus, other.kraus)]
        return Channel(f"{self.name}+{other.name}", tuple(ops))


def kraus_channel(ops: Sequence, name: str = "kraus") -> Channel:
    """A channel from explicit Kraus matrices (checked for completeness)."""
    return Channel(name, tuple(ops))


def _prob(name: str, p, hi: float = 1.0) -> float:
    p = float(p)
    if not 0.0 <= p <= hi:
        raise ValueError(f"{name} must be in [0, {hi:g}], got {p}")
    return p


def depolarizing(p: float, n_qubits: int = 1) -> Channel:
    """rho -> (1 - p) rho + p I / 2**n on ``n_qubits`` (1 or 2) qubits, p in [0, 1]."""
    p = _prob("p", p)
    if n_qubits not in (1, 2):
        raise ValueError(f"n_qubits must be 1 or 2, got {n_qubits}")
    d2 = 4**n_qubits
    paulis = [_kron(*ps) for ps in itertools.product(_PAULIS, repeat=n_qubits)]  # identity first
    ops = [math.sqrt(1 - p * (d2 - 1) / d2) * paulis[0]]
    ops += [math.sqrt(p / d2) * m for m in paulis[1:]]
    return Channel("depolarizing", tuple(ops), (("p", p), ("n_qubits", n_qubits)))


def amplitude_damping(gamma: float) -> Channel:
    """Energy relaxation: |1> -> |0> with probability ``gamma`` in [0, 1]."""
    g = _prob("gamma", gamma)
    k0 = np.array([[1, 0], [0, math.sqrt(1 - g)]], dtype=complex)
    k1 = np.array([[0, math.sqrt(g)], [0, 0]], dtype=complex)
    return Channel("amplitude_damping", (k0, k1), (("gamma", g),))


def phase_damping(lam: float) -> Channel:
    """Pure dephasing: off-diagonal elements scale by sqrt(1 - ``lam``), lam in [0, 1]."""
    lam = _prob("lam", lam)
    k0 = np.array([[1, 0], [0, math.sqrt(1 - lam)]], dtype=complex)
    k1 = np.array([[0, 0], [0, math.sqrt(lam)]], dtype=complex)
    return Channel("phase_damping", (k0, k1), (("lam", lam),))


def bit_flip(p: float) -> Channel:
    """X with probability ``p`` in [0, 1]."""
    p = _prob("p", p)
    ops = (math.sqrt(1 - p) * _PAULIS[0], math.sqrt(p) * _PAULIS[1])
    return Channel("bit_flip", ops, (("p", p),))


def thermal_relaxation(t1: float, t2: float, time: float) -> Channel:
    """Relaxation to |0> for a gate of duration ``time`` on a qubit with ``t1`` and ``t2``.

    Populations relax as exp(-time/T1), coherences decay as exp(-time/T2);
    requires 0 < T2 <= 2 T1 (Aer's ``thermal_relaxation_error`` with zero
    excited-state population).
    """
    t1, t2, time = float(t1), float(t2), float(time)
    if not (t1 > 0 and t2 > 0 and time >= 0):
        raise ValueError(f"t1, t2 must be > 0 and time >= 0, got {t1}, {t2}, {time}")
    if t2 > 2 * t1 * (1 + 1e-12):
        raise ValueError(f"t2 must be <= 2 * t1 (physical limit), got t1={t1}, t2={t2}")
    gamma = 1 - math.exp(-time / t1)
    lam = min(max(1 - math.exp(-2 * time / t2 + time / t1), 0.0), 1.0)
    ch = amplitude_damping(gamma).compose(phase_damping(lam))
    return Channel("thermal_relaxation", ch.kraus, (("t1", t1), ("t2", t2), ("time", time)))


def _kron(*ms):
    out = np.array([[1.0 + 0j]])
    for m in ms:
        out = np.kron(out, m)
    return out


@dataclass(frozen=True)
class ReadoutError:
    """Classical flips of a measured bit: P(read 1 | was 0) and P(read 0 | was 1)."""

    p1_given0: float
    p0_given1: float

    def __post_init__(self):
        _prob("p1_given0", self.p1_given0)
        _prob("p0_given1", self.p0_given1)

    @property
    def matrix(self) -> np.ndarray:
        """The confusion matrix A[read, true] (columns sum to 1)."""
        a, b = float(self.p1_given0), float(self.p0_given1)
        return np.array([[1 - a, b], [a, 1 - b]])


@dataclass(frozen=True)
class _GateRule:
    channel: Channel
    gates: frozenset | None  # None: every gate
    qubits: frozenset | None  # None: any qubits


@dataclass(frozen=True)
class NoiseModel:
    """Channels attached after gates, and readout errors on measured qubits.

    Immutable: ``add_*`` return a new model. Rules apply in the order added.

    - :meth:`add_gate_noise` ``(channel, gates=None, qubits=None)``: after every
      gate whose name is in ``gates`` (all gates if None) and, if ``qubits`` is
      given, which acts only on those qubits. A 1-qubit channel on a k-qubit
      gate is applied to each of its qubits; a k-qubit channel needs a k-qubit gate.
    - :meth:`add_readout_error` ``(error, qubits=None)``: applied to final
      Z-basis probabilities and samples of those qubits (all if None).

    Examples
    --------
    >>> nm = NoiseModel().add_gate_noise(depolarizing(1e-3), ["ry", "su4"])
    >>> nm.readout_matrix(0) is None
    True
    """

    gate_rules: tuple = ()
    readout: tuple = ()  # ((qubits or None, ReadoutError), ...)

    def add_gate_noise(
        self, channel: Channel, gates: Iterable[str] | None = None, qubits=None
    ) -> NoiseModel:
        if not isinstance(channel, Channel):
            raise TypeError(f"channel must be a qtn.noise.Channel, got {type(channel).__name__}")
        gset = None if gates is None else frozenset([gates] if isinstance(gates, str) else gates)
        if gset is not None:
            from qtn.circuit import GATES

            unknown = sorted(g for g in gset if g not in GATES and g != "unitary")
            if unknown:
                raise ValueError(
                    f"gates: unknown gate name(s) {unknown}; valid: {sorted(GATES)} or 'unitary'"
                )
        qset = None if qubits is None else frozenset(int(q) for q in np.atleast_1d(qubits))
        return NoiseModel((*self.gate_rules, _GateRule(channel, gset, qset)), self.readout)

    def add_readout_error(self, error: ReadoutError, qubits=None) -> NoiseModel:
        if not isinstance(error, ReadoutError):
            raise TypeError(f"error must be a qtn.noise.ReadoutError, got {type(error).__name__}")
        qset = None if qubits is None else frozenset(int(q) for q in np.atleast_1d(qubits))
        return NoiseModel(self.gate_rules, (*self.readout, (qset, error)))

    def readout_matrix(self, qubit: int) -> np.ndarray | None:
        """The combined confusion matrix of ``qubit`` (None if it has no readout error)."""
        m = None
        for qset, err in self.readout:
            if qset is None or qubit in qset:
                m = err.matrix if m is None else err.matrix @ m
        return m

    def apply(self, circuit):
        """``circuit`` with a :class:`qtn.circuit.Noise` op after every gate a rule matches."""
        from qtn.circuit import Circuit, Gate, Noise

        if not isinstance(circuit, Circuit):
            raise TypeError(f"circuit must be a qtn Circuit, got {type(circuit).__name__}")
        ops = []
        for pos, op in enumerate(circuit.ops):
            ops.append(op)
            if not isinstance(op, Gate):
                continue
            for rule in self.gate_rules:
                if rule.gates is not None and op.name not in rule.gates:
                    continue
                if rule.qubits is not None and not set(op.qubits) <= rule.qubits:
                    continue
                k = rule.channel.n_qubits
                if k == len(op.qubits):
                    ops.append(Noise(rule.channel, op.qubits))
                elif k == 1:
                    ops.extend(Noise(rule.channel, (q,)) for q in op.qubits)
                else:
                    raise ValueError(
                        f"a {k}-qubit channel {rule.channel.name!r} cannot follow the "
                        f"{len(op.qubits)}-qubit gate {op.name!r} at position {pos}"
                    )
        return Circuit(circuit.n_qubits, tuple(ops))

    def apply_readout(self, probs, qubits: Sequence[int], xp=np):
        """Apply readout confusion to marginal ``probs`` (..., 2**k) of ``qubits`` (big-endian)."""
        k = len(qubits)
        mats = [self.readout_matrix(q) for q in qubits]
        if all(m is None for m in mats):
            return probs
        lead = probs.shape[:-1]
        p = probs.reshape(*lead, *(2,) * k)
        nl = len(lead)
        for j, m in enumerate(mats):
            if m is None:
                continue
            mj = xp.asarray(m, dtype=p.dtype)
            p = xp.moveaxis(xp.tensordot(mj, p, ([1], [nl + j])), 0, nl + j)
        return p.reshape(*lead, 2**k)

    @property
    def is_empty(self) -> bool:
        return not self.gate_rules and not self.readout
