"""Tensor network models as parameter pytrees and pure JAX functions.

- ``mps.py``: the :class:`MPS` core every model and compiler uses (canonical forms,
  two-site merge/split, log-norms, packing, the forward pass, dense oracles).
- ``classifier.py``: :class:`ClassifierParams` (network + temperature) and the
  forward contract ``forward(params, phi) -> (fhat, log_norm)``.
- ``interop.py``: quimb conversion both ways, entanglement entropy.
"""

from qtn.models.classifier import (
    ClassifierParams,
    classifier_forward,
    init_mps_classifier,
    mps_forward,
)
from qtn.models.interop import entanglement_entropy, from_quimb, plot_entanglement, to_quimb
from qtn.models.mps import (
    MPS,
    amplitudes,
    batch_amplitudes,
    bond_dims,
    canonicalize,
    dense_amplitudes,
    init_mps,
    log_norm,
    merge,
    move_center,
    normalize,
    pack,
    pad_bond_dim,
    random_mps,
    reverse_cores,
    split,
    to_dense,
    trim_boundaries,
    unpack,
)

__all__ = [
    "MPS",
    "init_mps",
    "random_mps",
    "pack",
    "unpack",
    "trim_boundaries",
    "reverse_cores",
    "merge",
    "split",
    "move_center",
    "canonicalize",
    "log_norm",
    "normalize",
    "amplitudes",
    "batch_amplitudes",
    "dense_amplitudes",
    "to_dense",
    "bond_dims",
    "pad_bond_dim",
    "ClassifierParams",
    "init_mps_classifier",
    "classifier_forward",
    "mps_forward",
    "to_quimb",
    "from_quimb",
    "entanglement_entropy",
    "plot_entanglement",
]
