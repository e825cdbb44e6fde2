"""Tensor network models as parameter pytrees and pure JAX functions."""

from qtn.models.interop import entanglement_entropy, from_quimb, plot_entanglement, to_quimb
from qtn.models.mps import (
    MPSParams,
    amplitudes,
    batch_amplitudes,
    bond_dims,
    dense_amplitudes,
    init_mps,
    move_label,
    pad_bond_dim,
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
    "dense_amplitudes",
    "move_label",
    "bond_dims",
    "pad_bond_dim",
]
