"""Execution on Qiskit backends: Aer, fake hardware backends, any BackendV2.

- :class:`Runner` / :func:`run`: transpile once per structure, run many
  (params, data) bindings through ``SamplerV2`` parameter arrays.
- :func:`to_aer_noise_model`: a qtn :class:`~qtn.noise.NoiseModel` as an Aer one.
- :class:`ReadoutMitigator`: tensored calibration-matrix readout mitigation.
- :func:`finetune`: shot-based SPSA or parameter-shift fine-tuning.
- :func:`predict`, :func:`score`: classes and sampled accuracy from a runner.
"""

from qtn.execution.finetune import (
    FinetuneResult,
    cross_entropy_loss,
    finetune,
    kl_loss,
    parameter_shift_grad,
)
from qtn.execution.mitigation import ReadoutMitigator, project_to_simplex
from qtn.execution.runner import (
    Runner,
    RunResult,
    predict,
    run,
    score,
    to_aer_noise_model,
)

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
