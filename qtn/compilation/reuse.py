"""Qubit reuse: run a circuit on fewer wires by measuring and resetting finished qubits.

:func:`measure_and_reuse` measures every qubit right after its last operation
(qubit q into clbit q) and then assigns physical wires greedily: a qubit takes
the lowest-numbered free wire when it is first used (after a reset if that wire
was used before), and frees it after its measurement. The number of wires is
the largest number of qubits alive at once: k + 1 for a sequential MPS circuit
of bond dimension 2^k, logarithmic in N for a tree circuit. The clbit record
equals the unrolled circuit's, so the sampling distribution is unchanged.

Examples
--------
>>> from qtn.circuit import Circuit
>>> c = Circuit(4).h(0).cx(0, 1).cx(1, 2).cx(2, 3)
>>> r = measure_and_reuse(c)
>>> r.n_qubits, r.n_clbits
(2, 4)
"""

from __future__ import annotations

from dataclasses import replace

from qtn.circuit import Barrier, Circuit, Discard, Measure, Reset

__all__ = ["measure_and_reuse", "reuse_wires"]


def measure_and_reuse(circuit: Circuit) -> Circuit:
    """``circuit`` with each qubit measured after its last use, on as few wires as possible."""
    if any(isinstance(op, Measure | Reset | Discard) for op in circuit.ops):
        raise ValueError(
            "circuit: measure_and_reuse takes a unitary circuit (it adds the measurements); "
            "use reuse_wires for one that already measures"
        )
    last = {}
    for pos, op in enumerate(circuit.ops):
        for q in op.qubits:
            last[q] = pos
    measured = Circuit(circuit.n_qubits, global_phase=circuit.global_phase)
    done_at: dict[int, list[int]] = {}
    for q, pos in last.items():
        done_at.setdefault(pos, []).append(q)
    for q in range(circuit.n_qubits):  # idle qubits are measured first (they are |0>)
        if q not in last:
            measured.measure(q, q)
    for pos, op in enumerate(circuit.ops):
        measured.append(op)
        for q in sorted(done_at.get(pos, [])):
            measured.measure(q, q)
    return reuse_wires(measured)


def reuse_wires(circuit: Circuit) -> Circuit:
    """Map qubits to as few wires as possible: a qubit whose last operation is a
    measurement or a discard frees its wire, which a later qubit reuses after a reset."""
    ops = [op for op in circuit.ops if not isinstance(op, Barrier)]
    last = {}
    for pos, op in enumerate(ops):
        for q in op.qubits:
            last[q] = pos
    wire_of: dict[int, int] = {}
    free: list[int] = []
    used_wires = 0
    dirty: set[int] = set()
    out_ops = []
    for pos, op in enumerate(ops):
        for q in op.qubits:
            if q not in wire_of:
                if free:
                    free.sort()
                    w = free.pop(0)
                else:
                    w, used_wires = used_wires, used_wires + 1
                if w in dirty:
                    out_ops.append(Reset(w))
                wire_of[q] = w
        out_ops.append(_on_wires(op, wire_of))
        for q in op.qubits:
            if last[q] == pos and isinstance(op, Measure | Discard):
                dirty.add(wire_of[q])
                free.append(wire_of[q])
    return Circuit(max(used_wires, 1), out_ops, global_phase=circuit.global_phase)


def _on_wires(op, wire_of):
    if isinstance(op, Measure | Reset | Discard):
        return replace(op, qubit=wire_of[op.qubit])
    return replace(op, qubits=tuple(wire_of[q] for q in op.qubits))
