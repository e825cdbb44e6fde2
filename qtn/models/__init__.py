"""Tensor network models as parameter pytrees and pure JAX functions."""

from qtn.models.interop import entanglement_entropy, from_quimb, plot_entanglement, to_quimb
from qtn.models.mps import (
    MPSParams,
    amplitudes,
    batch_amplitudes,
    bond_dims,
    born_probs,
    dense_amplitudes,
    init_mps,
    move_label,
    pad_bond_dim,
    predict_logits,
    softmax_probs,
)

__all__ = [
    "to_quimb",
    "from_quimb",
    "entanglement_entropy",
    "plot_entanglement",
    "MPSParams",
    "init_mps",
    "amplitudes",
    "batch_amplitudes",
    "predict_logits",
    "born_probs",
    "softmax_probs",
    "dense_amplitudes",
    "move_label",
    "bond_dims",
    "pad_bond_dim",
]
