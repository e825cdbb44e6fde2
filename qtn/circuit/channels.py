"""Quantum channels as Kraus operators, checked at construction.

A :class:`Channel` is a completely positive, trace-preserving map given by
Kraus operators (sum_i K_i^dagger K_i = I to 1e-10). Circuits carry channels
as :class:`qtn.circuit.Noise` operations; :class:`qtn.noise.NoiseModel`
attaches them after gates by rule. Parameter conventions follow Qiskit Aer's
``noise`` module, so one description means the same in both simulators:

- ``depolarizing(p, n)``: rho -> (1 - p) rho + p I / 2**n (``p = 1`` is fully mixed);
- ``amplitude_damping(gamma)``: |1> decays to |0> with probability gamma;
- ``phase_damping(lam)``: coherences shrink by sqrt(1 - lam);
- ``bit_flip(p)`` / ``phase_flip(p)``: X / Z with probability p;
- ``thermal_relaxation(t1, t2, time)``: relaxation towards |0> (T1) and dephasing (T2 <= 2 T1).

Kraus matrices are big-endian on the channel's qubits, like gate matrices.

Examples
--------
>>> from qtn.circuit import depolarizing
>>> ch = depolarizing(0.1)
>>> ch.n_qubits, len(ch.kraus)
(1, 4)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from qtn.circuit.gates import PAULI

__all__ = [
    "Channel",
    "kraus_channel",
    "depolarizing",
    "amplitude_damping",
    "phase_damping",
    "bit_flip",
    "phase_flip",
    "thermal_relaxation",
]

_PAULIS = (PAULI["I"], PAULI["X"], PAULI["Y"], PAULI["Z"])


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
        The constructor's parameters, kept for export (for example ``(("p", 0.01),)``).
    """

    name: str
    kraus: tuple = field(compare=False, repr=False)
    params: tuple = ()

    def __post_init__(self):
        ops = [np.array(k, dtype=complex) for k in self.kraus]
        if not ops:
            raise ValueError("kraus: a channel needs at least one Kraus operator")
        dim = ops[0].shape[0] if ops[0].ndim == 2 else 0
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
        if not isinstance(other, Channel) or other.n_qubits != self.n_qubits:
            raise ValueError("other: compose needs a Channel on the same number of qubits")
        ops = [b @ a for a, b in itertools.product(self.kraus, other.kraus)]
        return Channel(f"{self.name}+{other.name}", tuple(ops))

    def tensor(self, other: Channel) -> Channel:
        """This channel on the first qubits and ``other`` on the next ones (big-endian)."""
        if not isinstance(other, Channel):
            raise ValueError(f"other must be a Channel, got {type(other).__name__}")
        ops = [np.kron(a, b) for a, b in itertools.product(self.kraus, other.kraus)]
        return Channel(f"{self.name}*{other.name}", tuple(ops))


def kraus_channel(ops: Sequence, name: str = "kraus") -> Channel:
    """A channel from explicit Kraus matrices (checked for completeness)."""
    return Channel(name, tuple(ops))


def _prob(name: str, p, hi: float = 1.0) -> float:
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, {hi:g}], got {p!r}") from None
    if not 0.0 <= p <= hi:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, {hi:g}], got {p}")
    return p


def _kron(*ms):
    out = np.array([[1.0 + 0j]])
    for m in ms:
        out = np.kron(out, m)
    return out


def depolarizing(p: float, n_qubits: int = 1) -> Channel:
    """rho -> (1 - p) rho + p I / 2**n on ``n_qubits`` (1 or 2) qubits, p in [0, 1]."""
    p = _prob("p", p)
    if n_qubits not in (1, 2):
        raise ValueError(f"n_qubits must be 1 or 2, got {n_qubits!r}")
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


def phase_flip(p: float) -> Channel:
    """Z with probability ``p`` in [0, 1]: coherences scale by 1 - 2p."""
    p = _prob("p", p)
    ops = (math.sqrt(1 - p) * _PAULIS[0], math.sqrt(p) * _PAULIS[3])
    return Channel("phase_flip", ops, (("p", p),))


def thermal_relaxation(t1: float, t2: float, time: float) -> Channel:
    """Relaxation to |0> for a gate of duration ``time`` on a qubit with ``t1`` and ``t2``.

    Populations relax as exp(-time/T1), coherences decay as exp(-time/T2);
    requires 0 < T2 <= 2 T1 (Aer's ``thermal_relaxation_error`` with zero
    excited-state population).
    """
    t1, t2, time = float(t1), float(t2), float(time)
    if not (t1 > 0 and t2 > 0 and time >= 0) or not all(map(math.isfinite, (t1, t2, time))):
        raise ValueError(f"t1, t2 must be finite and > 0, time >= 0; got {t1}, {t2}, {time}")
    if t2 > 2 * t1 * (1 + 1e-12):
        raise ValueError(f"t2 must be <= 2 * t1 (physical limit), got t1={t1}, t2={t2}")
    gamma = 1 - math.exp(-time / t1)
    lam = min(max(1 - math.exp(-2 * time / t2 + time / t1), 0.0), 1.0)
    ch = amplitude_damping(gamma).compose(phase_damping(lam))
    return Channel("thermal_relaxation", ch.kraus, (("t1", t1), ("t2", t2), ("time", time)))
