"""What a compiled circuit achieves: :class:`CompileReport`, and how it is measured.

The fidelity is always the fidelity actually achieved: |<target|C(params)|0>|^2,
computed by applying the circuit's gates to an MPS with quimb (exact: no
truncation beyond a relative singular-value cutoff of 1e-14), never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qtn.circuit import Barrier, Circuit, Gate
from qtn.models import MPS, unpack

__all__ = ["CompileReport", "circuit_fidelity", "circuit_state", "cx_count", "two_qubit_depth"]

DECOMPOSITION = (
    "CX + U3: one-qubit gates as U3, two-qubit unitaries by KAK (fewest CX for their Weyl "
    "class), k-qubit unitaries by Qiskit's quantum Shannon decomposition, SU(4) blocks "
    "counted at their KAK class (0-3 CX)"
)


@dataclass
class CompileReport:
    """The outcome of :func:`qtn.compile`.

    Attributes
    ----------
    method
        ``"exact"``, ``"layers"`` or ``"aqc"``.
    fidelity
        |<target|C(params)|0>|^2, computed, not assumed.
    n_qubits, depth, n_2q, two_qubit_depth, n_params
        Circuit size: depth of the qtn circuit as emitted, CX count and CX depth
        after the decomposition in ``decomposition``, number of trainable angles.
    wall_s
        Seconds spent compiling (the fidelity evaluation included).
    params
        Values of the circuit's trainable angles: ``circuit.bind(report.params)``.
    layer_fidelities
        ``layers``: the exact fidelity after each layer.
    history
        ``aqc``: one entry per optimiser iteration (fidelity and time).
    metrics
        Task metrics of compiled models (accuracy, KL divergence, NLL, ...).
    notes
        Anything the user should know (truncations, stopping reasons).
    """

    method: str
    fidelity: float
    n_qubits: int
    depth: int
    n_2q: int
    two_qubit_depth: int
    n_params: int
    wall_s: float
    params: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    layer_fidelities: list | None = None
    history: list | None = field(default=None, repr=False)
    metrics: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    decomposition: str = DECOMPOSITION

    def summary(self) -> str:
        """One line per figure, for printing."""
        lines = [
            f"method {self.method}: fidelity {self.fidelity:.10f}",
            f"{self.n_qubits} qubits, depth {self.depth}, {self.n_2q} CX "
            f"(CX depth {self.two_qubit_depth}), {self.n_params} parameters, {self.wall_s:.2f} s",
        ]
        lines += [f"{k}: {v}" for k, v in self.metrics.items()]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _gate_cx(op: Gate, params) -> int:
    if len(op.qubits) == 1:
        return 0
    if op.name == "cx":
        return 1
    if len(op.qubits) == 2:
        from qtn.compilation.synthesis import two_qubit_cx_count

        return two_qubit_cx_count(op.numeric_matrix(params))
    raise ValueError(f"cx_count: {op.name!r} acts on {len(op.qubits)} qubits; decompose it first")


def cx_count(circuit: Circuit, params=None) -> int:
    """CX gates after decomposition: cx counts 1, other two-qubit gates their KAK class."""
    return sum(_gate_cx(op, params) for op in circuit.ops if isinstance(op, Gate))


def two_qubit_depth(circuit: Circuit, params=None) -> int:
    """Depth counting only two-qubit gates that need CX (a block of c CX counts c)."""
    level = [0] * circuit.n_qubits
    for op in circuit.ops:
        if not isinstance(op, Gate) or isinstance(op, Barrier) or len(op.qubits) < 2:
            continue
        d = max(level[q] for q in op.qubits) + _gate_cx(op, params)
        for q in op.qubits:
            level[q] = d
    return max(level) if level else 0


def circuit_state(circuit: Circuit, params=None) -> MPS:
    """The state C(params)|0> of a unitary circuit as a qtn MPS (complex128, global phase
    included), by exact quimb gate application (relative singular-value cutoff 1e-14)."""
    import quimb.tensor as qtensor

    from qtn.models import from_quimb

    psi = qtensor.CircuitMPS(circuit.n_qubits, cutoff=1e-14, dtype="complex128")
    for op in circuit.ops:
        if isinstance(op, Barrier):
            continue
        if not isinstance(op, Gate):
            raise ValueError("the circuit must be unitary (no measure/reset/noise)")
        psi.apply_gate_raw(op.numeric_matrix(params), op.qubits, contract="swap+split")
    mps = from_quimb(psi.psi)
    phase = np.exp(1j * circuit.global_phase)
    return MPS(np.asarray(mps.left), np.asarray(mps.center) * phase, np.asarray(mps.right))


def circuit_fidelity(circuit: Circuit, params, target: MPS) -> float:
    """|<target|C(params)|0>|^2 for a unitary circuit, exactly.

    Circuits of up to 1,500 gates are contracted by the engine (numpy, greedy plan) with
    the target as an MPS bra; longer gate lists by quimb MPS gate application, which is
    linear in their length.
    """
    n = circuit.n_qubits
    if target.n_sites != n:
        raise ValueError(f"target has {target.n_sites} sites, the circuit {n} qubits")
    if not circuit.is_unitary:
        raise ValueError("circuit_fidelity needs a unitary circuit (no measure/reset/noise)")
    if len(circuit) <= 1500:
        from qtn.simulation import simulate

        sim = simulate(circuit, dtype="complex128", interface="numpy", optimizer="greedy")
        return float(abs(complex(sim.overlap(unpack(target), params=params))) ** 2)
    psi = circuit_state(circuit, params)
    from qtn.models import to_quimb

    overlap = complex(to_quimb(target).H @ to_quimb(psi))
    return float(abs(overlap) ** 2)
