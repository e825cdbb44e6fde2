"""Simulation of qtn circuits as tensor networks.

- :func:`simulate` / :class:`Simulator` (``engine.py``): cotengra-planned, cached,
  jitted and vmapped contraction on JAX (or numpy), with noise.
- ``network.py``: circuit -> ket or doubled network, input states, the quantity
  registry, the reverse light cone.
- ``plan.py``: typed cached plans, slicing under a memory limit.
- ``program.py``: a path as straight-line contractions; partial sums of slice ranges.
- ``scaleout.py``: sliced contractions over a JAX mesh (``devices=``) or a Dask
  cluster (``executor=``), Dask arrays of inputs.
- ``sampling.py``: exact sampling (whole marginal or chain rule).
- :func:`statevector`, :func:`density_matrix`, :func:`probabilities` (``dense.py``):
  the dense numpy oracle.
"""

from qtn.simulation.dense import density_matrix, probabilities, statevector
from qtn.simulation.engine import Simulator, simulate
from qtn.simulation.network import QUANTITIES, InitialState, build_network, light_cone
from qtn.simulation.plan import PLAN_STATS, Plan, clear_plan_cache

__all__ = [
    "simulate",
    "Simulator",
    "Plan",
    "PLAN_STATS",
    "clear_plan_cache",
    "QUANTITIES",
    "InitialState",
    "build_network",
    "light_cone",
    "statevector",
    "density_matrix",
    "probabilities",
]
