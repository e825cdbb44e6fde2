"""Tensor network models as parameter pytrees and pure JAX functions.

- ``mps.py``: the :class:`MPS` core every model and compiler uses (canonical forms,
  two-site merge/split, log-norms, packing, the forward pass).
- ``classifier.py``: :class:`ClassifierParams` (network + temperature) and the
  forward contract ``forward(params, phi) -> (fhat, log_norm)``.
- ``ttn.py``: the binary :class:`TTN` (the level-by-level forward pass, norms,
  canonical form toward the root, oracles); ``layout.py``: which feature sits on
  which leaf (a quadtree grouping for images, a padding rule).
- ``dense.py``: dense numpy oracles of both (small sizes, for tests).
- ``born.py``: Born machines p(x) = |psi(x)|^2 / Z on an MPS or a TTN: forwards and
  exact marginals; ``sampling.py``: exact batched (conditional) sampling.
- ``interop.py``: quimb conversion both ways, entanglement entropy (MPS and TTN).
"""

from qtn.models.born import (
    assignment_weights,
    born_forward,
    mps_log_marginal,
    right_canonicalize,
    ttn_born_forward,
    ttn_log_marginal,
)
from qtn.models.classifier import (
    ClassifierParams,
    classifier_forward,
    init_mps_classifier,
    init_ttn_classifier,
    mps_forward,
    ttn_classifier_forward,
)
from qtn.models.dense import dense_amplitudes, to_dense, ttn_dense_amplitudes, ttn_to_dense
from qtn.models.interop import (
    entanglement_entropy,
    from_quimb,
    plot_entanglement,
    to_quimb,
    ttn_entanglement_entropy,
    ttn_to_quimb,
)
from qtn.models.layout import TreeLayout, tree_layout
from qtn.models.mps import (
    MPS,
    amplitudes,
    batch_amplitudes,
    bond_dims,
    canonicalize,
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
    trim_boundaries,
    unpack,
)
from qtn.models.sampling import mps_sample, ttn_sample
from qtn.models.ttn import (
    TTN,
    init_ttn,
    level_bond_dims,
    random_ttn,
    trim_padding,
    ttn_amplitudes,
    ttn_batch_amplitudes,
    ttn_canonicalize,
    ttn_log_norm,
    ttn_normalize,
    ttn_to_mps,
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
    "TTN",
    "TreeLayout",
    "tree_layout",
    "init_ttn",
    "random_ttn",
    "trim_padding",
    "level_bond_dims",
    "ttn_amplitudes",
    "ttn_batch_amplitudes",
    "ttn_log_norm",
    "ttn_normalize",
    "ttn_canonicalize",
    "ttn_to_dense",
    "ttn_dense_amplitudes",
    "ttn_to_mps",
    "ttn_to_quimb",
    "ttn_entanglement_entropy",
    "init_ttn_classifier",
    "ttn_classifier_forward",
    "born_forward",
    "ttn_born_forward",
    "mps_log_marginal",
    "ttn_log_marginal",
    "assignment_weights",
    "right_canonicalize",
    "mps_sample",
    "ttn_sample",
]
