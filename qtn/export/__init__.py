"""qtn circuits <-> Qiskit: qubit labels kept, index order converted here and only here.

- :func:`to_qiskit`: a qtn :class:`~qtn.circuit.Circuit` as a ``QuantumCircuit``
  (trainable angles -> ``ParameterVector("theta")``, data-bound angles ->
  ``ParameterVector("x")``, names configurable; measure/reset -> a dynamic circuit,
  noise -> Kraus).
- :func:`from_qiskit`: back, the whole standard gate library, definitions decomposed,
  ``theta``/``x`` vectors back to trainable/data slots.
- :func:`to_qasm3`: OpenQASM 3 text through Qiskit's exporter.
- :mod:`qtn.export.order`: amplitude, probability, matrix, counts and Pauli-label order
  (:func:`to_qiskit_order`, :func:`from_qiskit_order`, :func:`qiskit_matrix`,
  :func:`clbit_probabilities`, :func:`counts_from_bits`, :func:`pauli_to_qiskit`).
- :mod:`qtn.export.gates`: gate names across the bridge.

No JAX here.
"""

from qtn.export.gates import DENSE_MAX_QUBITS, qiskit_name, qtn_gate
from qtn.export.order import (
    clbit_probabilities,
    counts_from_bits,
    from_qiskit_order,
    pauli_to_qiskit,
    qiskit_matrix,
    to_qiskit_order,
)
from qtn.export.qiskit import from_qiskit, parameter_values, to_qasm3, to_qiskit

__all__ = [
    "to_qiskit",
    "from_qiskit",
    "to_qasm3",
    "parameter_values",
    "to_qiskit_order",
    "from_qiskit_order",
    "qiskit_matrix",
    "clbit_probabilities",
    "counts_from_bits",
    "pauli_to_qiskit",
    "qiskit_name",
    "qtn_gate",
    "DENSE_MAX_QUBITS",
]
