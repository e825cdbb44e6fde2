"""Losses by name: ``register_loss``, ``get_loss``, ``list_losses``.

Every loss has one signature, ``fn(params, fhat, log_norm, y) -> per-sample
losses (B,)``, over a model's forward outputs (fhat (B, L) unit-norm, log_norm
(B,)) and integer labels y (B,) (ignored by unsupervised losses).

Classifier losses (``output`` names the prediction rule they train for):

- ``"cross_entropy"``: softmax cross-entropy of the temperature-scaled
  amplitudes exp(log_temp) * fhat (the temperature is learned); rule ``softmax``.
- ``"nll"``: Born-rule negative log-likelihood, -log(|f_y|^2 / sum_l |f_l|^2); rule ``born``.
- ``"mse"``: sum_l (fhat_l - delta_{l,y})^2, the quadratic cost of Stoudenmire &
  Schwab (arXiv:1605.05775) on the normalised outputs; rule ``born``.

Generative losses:

- ``"unsupervised_nll"``: -log p(x) = -2 log_norm for a Born machine whose
  forward returns log |psi(x)| / sqrt(Z) as its log-norm.

Examples
--------
>>> list_losses()
['cross_entropy', 'mse', 'nll', 'unsupervised_nll']
>>> get_loss("nll").output
'born'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

__all__ = ["Loss", "register_loss", "get_loss", "list_losses", "predicted_class", "OUTPUT_RULES"]

_TINY = 1e-30
#: prediction rules of classifier outputs
OUTPUT_RULES = ("born", "softmax")


@dataclass(frozen=True)
class Loss:
    """A registered loss: ``fn(params, fhat, log_norm, y) -> (B,)``.

    ``output`` is the prediction rule a classifier loss trains for (``"born"`` or
    ``"softmax"``); ``None`` marks an unsupervised (generative) loss.
    """

    name: str
    fn: Callable
    output: str | None = None

    @property
    def supervised(self) -> bool:
        return self.output is not None

    def __call__(self, params, fhat, log_norm, y):
        return self.fn(params, fhat, log_norm, y)


_LOSSES: dict[str, Loss] = {}


def register_loss(name: str, fn: Callable, *, output: str | None = None) -> Loss:
    """Register ``fn(params, fhat, log_norm, y) -> (B,)`` under ``name``."""
    if output is not None and output not in OUTPUT_RULES:
        raise ValueError(f"output must be one of {OUTPUT_RULES} or None, got {output!r}")
    loss = Loss(name, fn, output)
    _LOSSES[name] = loss
    return loss


def list_losses(*, supervised: bool | None = None) -> list[str]:
    """Registered loss names (only classifier or only generative losses if asked)."""
    return sorted(n for n, v in _LOSSES.items() if supervised in (None, v.supervised))


def get_loss(name: str) -> Loss:
    """The :class:`Loss` registered as ``name``; the error lists the valid names."""
    try:
        return _LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; valid losses: {list_losses()}") from None


def predicted_class(fhat: jax.Array, output: str) -> jax.Array:
    """Argmax class under an output rule: |f|^2 for ``"born"``, f for ``"softmax"``."""
    return jnp.argmax(fhat**2 if output == "born" else fhat, axis=-1)


def _nll(params, fhat, log_norm, y):
    p = fhat**2
    py = jnp.take_along_axis(p, y[:, None], axis=1)[:, 0]
    return -jnp.log(py + _TINY) + jnp.log(jnp.sum(p, axis=1))


def _cross_entropy(params, fhat, log_norm, y):
    logp = jax.nn.log_softmax(jnp.exp(params.log_temp) * fhat, axis=1)
    return -jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]


def _mse(params, fhat, log_norm, y):
    onehot = jax.nn.one_hot(y, fhat.shape[1], dtype=fhat.dtype)
    return jnp.sum((fhat - onehot) ** 2, axis=1)


def _unsupervised_nll(params, fhat, log_norm, y):
    return -2.0 * log_norm


register_loss("cross_entropy", _cross_entropy, output="softmax")
register_loss("nll", _nll, output="born")
register_loss("mse", _mse, output="born")
register_loss("unsupervised_nll", _unsupervised_nll)
