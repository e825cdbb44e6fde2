"""Gate names across the Qiskit bridge.

Every gate of Qiskit's standard library (``get_standard_gate_name_mapping()``)
is either a registered qtn gate under the same name and qubit-argument order
(same matrix, checked in the tests), an alias of one (``u``/``u3`` -> ``u3``,
``u1`` -> ``p``, ``cu1`` -> ``cp``, ``u2`` -> ``u3(pi/2, phi, lam)``,
``cu3`` -> ``cu(theta, phi, lam, 0)``), a non-gate instruction the importer
handles (``measure``, ``reset``, ``delay``, ``global_phase``), or decomposed
through its Qiskit definition (``rccx``, ``c3sx``, ``rcccx``).

No JAX here, and no Qiskit import at module level.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from qtn.circuit import GATES

__all__ = ["DENSE_MAX_QUBITS", "qiskit_name", "qtn_gate", "qiskit_gate_class"]

#: The largest instruction (in qubits) that :func:`qtn.export.from_qiskit` turns into one
#: dense matrix when it has no Qiskit definition to decompose (a 5-qubit matrix is 32x32).
DENSE_MAX_QUBITS = 5

# qtn registry name -> Qiskit standard gate name, where they differ
_TO_QISKIT = {"u3": "u"}

# Qiskit name -> (qtn name, map of the Qiskit angles to qtn's)
_same: Callable = lambda *a: a  # noqa: E731
_ALIASES: dict[str, tuple[str, Callable]] = {
    "u": ("u3", _same),
    "u3": ("u3", _same),
    "u1": ("p", _same),
    "cu1": ("cp", _same),
    "u2": ("u3", lambda phi, lam: (math.pi / 2, phi, lam)),
    "cu3": ("cu", lambda t, p, lam: (t, p, lam, 0.0)),
}

_CLASSES: dict = {}


def qiskit_gate_class(name: str):
    """The Qiskit class of standard gate ``name`` (None when Qiskit has no such gate)."""
    if not _CLASSES:
        from qiskit.circuit.library import get_standard_gate_name_mapping

        _CLASSES.update({k: type(v) for k, v in get_standard_gate_name_mapping().items()})
    return _CLASSES.get(name)


def qiskit_name(name: str) -> str | None:
    """The Qiskit standard gate a registered qtn gate exports as (None: no single gate).

    Examples
    --------
    >>> qiskit_name("u3"), qiskit_name("crx"), qiskit_name("su4")
    ('u', 'crx', None)
    """
    q = _TO_QISKIT.get(name, name)
    return q if name in GATES and qiskit_gate_class(q) is not None else None


def qtn_gate(qiskit_gate_name: str) -> tuple[str, Callable] | None:
    """``(qtn name, angle map)`` for a Qiskit gate name, or None when qtn has no such gate.

    Examples
    --------
    >>> name, angles = qtn_gate("u2")
    >>> name, [round(a, 4) for a in angles(0.1, 0.2)]
    ('u3', [1.5708, 0.1, 0.2])
    """
    if qiskit_gate_name in _ALIASES:
        return _ALIASES[qiskit_gate_name]
    if qiskit_gate_name in GATES and qiskit_name(qiskit_gate_name) == qiskit_gate_name:
        return qiskit_gate_name, _same
    return None
