"""Circuits: the IR, the gate registry, noise channels and block layouts.

- :mod:`qtn.circuit.ir`: the in-place :class:`Circuit` builder with immutable snapshots.
- :mod:`qtn.circuit.ops`: angles (:class:`Trainable`, :class:`Feature`) and operations.
- :mod:`qtn.circuit.gates`: the gate registry (matrix, inverse, shift rule), the
  Pauli matrices.
- :mod:`qtn.circuit.channels`: Kraus channels (depolarizing, damping, ...).
- :mod:`qtn.circuit.ansatz`: staircase, brickwork and tree layouts of SU(4) blocks.

Nothing here imports JAX or Qiskit.
"""

from qtn.circuit.ansatz import (
    add_blocks,
    brickwork,
    brickwork_layout,
    staircase,
    staircase_layout,
    tree,
    tree_layout,
)
from qtn.circuit.channels import (
    Channel,
    amplitude_damping,
    bit_flip,
    depolarizing,
    kraus_channel,
    phase_damping,
    phase_flip,
    thermal_relaxation,
)
from qtn.circuit.gates import (
    GATES,
    PAULI,
    GateDef,
    gate_matrix,
    get_gate,
    list_gates,
    register_gate,
)
from qtn.circuit.ir import Circuit
from qtn.circuit.ops import (
    Angle,
    Barrier,
    Discard,
    Feature,
    Gate,
    Measure,
    Noise,
    Op,
    Reset,
    Trainable,
    resolve,
)

__all__ = [
    "Circuit",
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
    "resolve",
    "GATES",
    "PAULI",
    "GateDef",
    "register_gate",
    "get_gate",
    "list_gates",
    "gate_matrix",
    "Channel",
    "kraus_channel",
    "depolarizing",
    "amplitude_damping",
    "phase_damping",
    "bit_flip",
    "phase_flip",
    "thermal_relaxation",
    "staircase_layout",
    "brickwork_layout",
    "tree_layout",
    "add_blocks",
    "staircase",
    "brickwork",
    "tree",
]
