"""Noise models: channels attached to gates by rule, and classical readout errors.

A :class:`NoiseModel` attaches channels (:class:`qtn.circuit.Channel`, Kraus
operators, checked) after gates, by gate name and optionally qubits, and
readout errors to measured qubits; ``noise.apply(circuit)`` returns the noisy
circuit with :class:`qtn.circuit.Noise` operations inserted, which both the
dense oracle and the contraction engine simulate as density-matrix networks.
The Qiskit bridge maps the same object to an Aer ``NoiseModel``.

The channel constructors live in :mod:`qtn.circuit.channels` and are
re-exported here. Parameter conventions follow Qiskit Aer's ``noise`` module:

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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from qtn.circuit import GATES, Channel, Circuit, Gate, Noise
from qtn.circuit.channels import (
    _prob,
    amplitude_damping,
    bit_flip,
    depolarizing,
    kraus_channel,
    phase_damping,
    phase_flip,
    thermal_relaxation,
)

__all__ = [
    "Channel",
    "ReadoutError",
    "NoiseModel",
    "kraus_channel",
    "depolarizing",
    "amplitude_damping",
    "phase_damping",
    "bit_flip",
    "phase_flip",
    "thermal_relaxation",
]


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
            unknown = sorted(g for g in gset if g not in GATES and g != "unitary")
            if unknown:
                raise ValueError(
                    f"gates: unknown gate name(s) {unknown}; valid: {sorted(GATES)} or 'unitary'"
                )
        qset = _qubit_set(qubits)
        return NoiseModel((*self.gate_rules, _GateRule(channel, gset, qset)), self.readout)

    def add_readout_error(self, error: ReadoutError, qubits=None) -> NoiseModel:
        if not isinstance(error, ReadoutError):
            raise TypeError(f"error must be a qtn.noise.ReadoutError, got {type(error).__name__}")
        qset = _qubit_set(qubits)
        return NoiseModel(self.gate_rules, (*self.readout, (qset, error)))

    def add_readout_matrix(self, matrix, qubits=None) -> NoiseModel:
        """A readout error given by its confusion matrix A[read, true] (columns sum to 1)."""
        m = np.asarray(matrix, dtype=float)
        if m.shape != (2, 2) or not np.allclose(m.sum(0), 1) or np.any(m < 0):
            raise ValueError(f"matrix must be a 2x2 column-stochastic matrix, got {m.tolist()}")
        return self.add_readout_error(ReadoutError(float(m[1, 0]), float(m[0, 1])), qubits)

    def readout_matrix(self, qubit: int) -> np.ndarray | None:
        """The combined confusion matrix of ``qubit`` (None if it has no readout error)."""
        m = None
        for qset, err in self.readout:
            if qset is None or qubit in qset:
                m = err.matrix if m is None else err.matrix @ m
        return m

    def apply(self, circuit):
        """``circuit`` with a :class:`qtn.circuit.Noise` op after every gate a rule matches."""
        if not isinstance(circuit, Circuit):
            raise TypeError(f"circuit must be a qtn Circuit, got {type(circuit).__name__}")
        self.check_qubits(circuit.n_qubits)
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
        return Circuit(circuit.n_qubits, ops, global_phase=circuit.global_phase)

    def check_qubits(self, n_qubits: int) -> None:
        """Every rule's qubits exist in a circuit of ``n_qubits`` qubits (ValueError otherwise):
        a rule on a qubit the circuit lacks would otherwise never match, silently."""
        rules = [("add_gate_noise", r.qubits) for r in self.gate_rules]
        rules += [("add_readout_error", q) for q, _ in self.readout]
        for where, qset in rules:
            bad = sorted(q for q in qset or () if q >= n_qubits)
            if bad:
                raise ValueError(
                    f"qubits: a noise rule ({where}) names qubits {bad}, outside the circuit's "
                    f"{n_qubits} qubits [0, {n_qubits - 1}]"
                )

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


def _qubit_set(qubits) -> frozenset | None:
    """A rule's qubits: None (every qubit) or non-negative integers."""
    if qubits is None:
        return None
    out = []
    for q in np.atleast_1d(np.asarray(qubits, dtype=object)).ravel():
        if isinstance(q, bool | np.bool_) or not isinstance(q, int | np.integer):
            raise ValueError(f"qubits must be integers >= 0, got {qubits!r}")
        if q < 0:
            raise ValueError(f"qubits must be integers >= 0, got {int(q)} in {qubits!r}")
        out.append(int(q))
    if not out:
        raise ValueError("qubits must name at least one qubit (None means every qubit)")
    return frozenset(out)
