"""qtn circuits <-> Qiskit: the one place where qubit order is converted.

- :func:`to_qiskit`: a qtn :class:`~qtn.circuit.Circuit` as a ``QuantumCircuit``
  (trainable angles -> ``ParameterVector("theta")``, data-bound angles ->
  ``ParameterVector("x")``, measure/reset -> a dynamic circuit, noise -> Kraus).
- :func:`from_qiskit`: back, with Qiskit parameters as trainable slots.
- :func:`to_qasm3`: OpenQASM 3 text through Qiskit's exporter.
- :func:`clbit_probabilities`: sampled bits -> probabilities in qtn's order.

No JAX here.
"""

from qtn.export.qiskit import (
    clbit_probabilities,
    from_qiskit,
    parameter_values,
    qiskit_matrix,
    qiskit_qubit,
    to_qasm3,
    to_qiskit,
)

__all__ = [
    "to_qiskit",
    "from_qiskit",
    "to_qasm3",
    "clbit_probabilities",
    "qiskit_qubit",
    "qiskit_matrix",
    "parameter_values",
]
