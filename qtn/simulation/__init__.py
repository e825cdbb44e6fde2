"""Simulation of qtn circuits. Today: the dense numpy oracle (statevector, density matrix).

The cotengra-planned, batched JAX engine is not written yet (see the open issue).
"""

from qtn.simulation.dense import density_matrix, probabilities, statevector

__all__ = ["statevector", "density_matrix", "probabilities"]
