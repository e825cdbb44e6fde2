"""``qtn.to_quimb``: any qtn object quimb can hold, converted by its type.

- a :class:`qtn.MPS` -> ``quimb.tensor.MatrixProductState`` (:func:`qtn.models.to_quimb`);
- a :class:`qtn.TTN` -> ``quimb.tensor.TensorNetwork`` (:func:`qtn.models.ttn_to_quimb`);
- a :class:`qtn.Circuit` -> ``quimb.tensor.Circuit`` (:func:`circuit_to_quimb`);
- anything with a ``to_quimb()`` method (a fitted :class:`qtn.MPSClassifier`) -> its result.

This module sits above the model and circuit layers (it imports both) and
below nothing: no layer imports it.
"""

from __future__ import annotations

import numpy as np

from qtn.circuit import Circuit
from qtn.circuit.ops import Barrier, Feature, Gate, Trainable
from qtn.models import MPS, TTN, ttn_to_quimb
from qtn.models import to_quimb as _mps_to_quimb

__all__ = ["to_quimb", "circuit_to_quimb"]


def circuit_to_quimb(circuit: Circuit, *, params=None, data=None):
    """A ``quimb.tensor.Circuit`` applying the same gates to |0...0>.

    Qubit q of the qtn circuit is quimb's qubit q, and both put the first
    listed qubit of a gate in the most significant bit of its matrix, so
    ``circuit_to_quimb(c).to_dense()`` equals qtn's statevector. The global
    phase is applied as a phase gate on qubit 0.

    Parameters
    ----------
    circuit
        A qtn :class:`~qtn.circuit.Circuit` of gates (and barriers).
    params, data
        Values for its trainable angles and features (as :meth:`Circuit.bind`).

    Raises
    ------
    ValueError
        Angles left unbound, or an operation a pure-state quimb circuit cannot hold
        (measure, reset, discard, noise); the message names it and its position.
    """
    import quimb.tensor as qtensor

    if params is not None or data is not None:
        circuit = circuit.bind(params, data)
    qc = qtensor.Circuit(circuit.n_qubits)
    for pos, op in enumerate(circuit.ops):
        if isinstance(op, Barrier):
            continue
        if not isinstance(op, Gate):
            raise ValueError(
                f"to_quimb: operation {pos} is {type(op).__name__.lower()} on qubits "
                f"{tuple(op.qubits)}; a quimb Circuit holds pure states (gates only). Simulate "
                "measurement, reset and noise with qtn.simulation.simulate"
            )
        if op.is_symbolic:
            kinds = sorted(
                {type(a).__name__ for a in op.angles if isinstance(a, Trainable | Feature)}
            )
            raise ValueError(
                f"to_quimb: gate {op.name!r} at position {pos} has unbound {' and '.join(kinds)} "
                f"angles; pass params= (n_params={circuit.n_params}) and/or data= "
                f"(n_features={circuit.n_features}), or bind the circuit first"
            )
        qc.apply_gate_raw(op.numeric_matrix(), tuple(op.qubits), contract=False)
    if circuit.global_phase:
        qc.apply_gate_raw(np.exp(1j * circuit.global_phase) * np.eye(2), (0,), contract=False)
    return qc


def to_quimb(obj, **kwargs):
    """Convert a qtn object to its quimb counterpart, by type.

    Parameters
    ----------
    obj
        A :class:`qtn.MPS` (keyword ``per_class``), a :class:`qtn.Circuit`
        (keywords ``params``, ``data``), or an object with a ``to_quimb`` method,
        such as a fitted :class:`qtn.MPSClassifier`.

    Examples
    --------
    >>> qtn.to_quimb(qtn.random_mps(0, 6, 4)).max_bond()  # doctest: +SKIP
    4
    >>> qtn.to_quimb(qtn.Circuit(2).h(0).cx(0, 1)).to_dense().ravel().round(3)  # doctest: +SKIP
    array([0.707+0.j, 0.   +0.j, 0.   +0.j, 0.707+0.j])
    """
    if isinstance(obj, MPS):
        return _mps_to_quimb(obj, **kwargs)
    if isinstance(obj, TTN):
        return ttn_to_quimb(obj, **kwargs)
    if isinstance(obj, Circuit):
        return circuit_to_quimb(obj, **kwargs)
    method = getattr(obj, "to_quimb", None)
    if callable(method) and not isinstance(obj, type):
        return method(**kwargs)
    raise TypeError(
        f"to_quimb takes a qtn MPS, a qtn Circuit or a fitted estimator, got {type(obj).__name__}"
    )
