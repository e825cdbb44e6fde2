"""Execution through Qiskit's V2 primitives: Aer, fake and real IBM backends, any SamplerV2.

- :class:`Runner` / :func:`run`: transpile once per structure into an ISA circuit,
  run many (params, data) bindings through any ``BaseSamplerV2`` (Aer's,
  ``BackendSamplerV2``, ``qiskit_ibm_runtime.SamplerV2`` in job, session or batch
  mode); Pauli expectations through any ``BaseEstimatorV2``.
- :func:`to_aer_noise_model`: a qtn :class:`~qtn.noise.NoiseModel` as an Aer one,
  with qtn's composition rule exactly.
- :class:`ReadoutMitigator`: tensored calibration-matrix readout mitigation on the
  physical qubits a runner's transpiled circuit measures.
- :func:`finetune`: shot-based SPSA or parameter-shift fine-tuning.
- :func:`predict`, :func:`score`: classes and sampled accuracy from a runner.
"""

from qtn.execution.aer_noise import to_aer_noise_model
from qtn.execution.finetune import (
    FinetuneResult,
    cross_entropy_loss,
    finetune,
    kl_loss,
    parameter_shift_grad,
)
from qtn.execution.mitigation import ReadoutMitigator, project_to_simplex
from qtn.execution.runner import Runner, RunResult, predict, run, score

__all__ = [
    "run",
    "Runner",
    "RunResult",
    "to_aer_noise_model",
    "predict",
    "score",
    "ReadoutMitigator",
    "project_to_simplex",
    "finetune",
    "FinetuneResult",
    "cross_entropy_loss",
    "kl_loss",
    "parameter_shift_grad",
]
