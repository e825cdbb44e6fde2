"""Simulation of qtn circuits.

- :func:`simulate` / :class:`Simulator`: cotengra-planned, cached, jitted and
  vmapped tensor-network contraction on JAX (unitary circuits so far).
- :func:`statevector`, :func:`density_matrix`, :func:`probabilities`: the dense
  numpy oracle, with measure/reset/discard as channels.
"""

from qtn.simulation.dense import density_matrix, probabilities, statevector
from qtn.simulation.engine import PLAN_STATS, Simulator, clear_plan_cache, simulate

__all__ = [
    "simulate",
    "Simulator",
    "PLAN_STATS",
    "clear_plan_cache",
    "statevector",
    "density_matrix",
    "probabilities",
]
