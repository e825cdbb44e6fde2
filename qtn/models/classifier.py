"""Classifier heads over tensor networks, and the forward contract training consumes.

Every model exposes ``forward(params, phi) -> (fhat, log_norm)`` for one
sample: unit-norm outputs fhat and the log of their scale, f = exp(log_norm) *
fhat. Training (:mod:`qtn.training`) vmaps it over a batch and applies a loss.

A classifier's parameters are a :class:`ClassifierParams` pytree: the network
carrying the label leg (an :class:`~qtn.models.MPS`, the model of Stoudenmire &
Schwab, arXiv:1605.05775) and a learned log-temperature used by the softmax
output rule.

Examples
--------
>>> import jax
>>> p = init_mps_classifier(jax.random.key(0), n_sites=16, n_classes=3, bond_dim=4)
>>> phi = qtn.get_feature_map("trigonometric")(np.random.rand(16))
>>> fhat, log_norm = classifier_forward(p, phi)
>>> fhat.shape
(3,)
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from qtn.models.mps import MPS, amplitudes, init_mps
from qtn.models.ttn import TTN, init_ttn, ttn_amplitudes

__all__ = [
    "ClassifierParams",
    "init_mps_classifier",
    "init_ttn_classifier",
    "classifier_forward",
    "ttn_classifier_forward",
    "mps_forward",
]


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class ClassifierParams:
    """A network with a label leg, and a log-temperature (a scalar) for the softmax rule.

    Attributes
    ----------
    network
        An :class:`~qtn.models.MPS` or a :class:`~qtn.models.TTN` with a label leg.
    log_temp
        log of the softmax temperature.
    """

    network: MPS | TTN
    log_temp: jax.Array

    @property
    def n_classes(self) -> int:
        return self.network.n_labels

    @property
    def bond_dim(self) -> int:
        return self.network.bond_dim

    @property
    def n_params(self) -> int:
        return int(self.network.n_params + 1)


def init_mps_classifier(
    key: jax.Array,
    n_sites: int,
    n_classes: int,
    bond_dim: int,
    phys_dim: int = 2,
    *,
    label_site: int | None = None,
    init_std: float = 1e-2,
    dtype=jnp.float32,
) -> ClassifierParams:
    """An MPS classifier near the identity (see :func:`qtn.models.init_mps`), temperature 1."""
    mps = init_mps(key, n_sites, bond_dim, phys_dim, n_labels=n_classes, center=label_site,
                   init_std=init_std, dtype=dtype)  # fmt: skip
    return ClassifierParams(mps, jnp.zeros((), jnp.dtype(dtype)))


def init_ttn_classifier(
    key: jax.Array,
    n_leaves: int,
    n_classes: int,
    bond_dim: int,
    phys_dim: int = 2,
    *,
    padded=None,
    init_std: float = 1e-2,
    dtype=jnp.float32,
) -> ClassifierParams:
    """A TTN classifier near the constant map (see :func:`qtn.models.init_ttn`), temperature 1."""
    ttn = init_ttn(key, n_leaves, bond_dim, phys_dim, n_labels=n_classes, init_std=init_std,
                   padded=padded, dtype=dtype)  # fmt: skip
    return ClassifierParams(ttn, jnp.zeros((), jnp.dtype(dtype)))


def ttn_classifier_forward(params: ClassifierParams, phi) -> tuple[jax.Array, jax.Array]:
    """The forward contract of a TTN classifier (phi: leaf vectors (P, d))."""
    return ttn_amplitudes(params.network, phi)


def mps_forward(mps: MPS, phi) -> tuple[jax.Array, jax.Array]:
    """The forward contract for a bare MPS (a Born machine's amplitude): ``amplitudes``."""
    return amplitudes(mps, phi)


def classifier_forward(params: ClassifierParams, phi) -> tuple[jax.Array, jax.Array]:
    """The forward contract of a classifier: its network's amplitudes over the labels."""
    return amplitudes(params.network, phi)
