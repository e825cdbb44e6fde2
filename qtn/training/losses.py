"""Per-sample classification losses on normalised MPS amplitudes, by name.

Every loss takes ``(params, fhat, y)`` with fhat (B, L) unit-norm amplitudes and
integer labels y (B,), and returns per-sample losses (B,).

- ``"nll"``: Born negative log-likelihood, -log(|f_y|^2 / sum_l |f_l|^2).
- ``"cross_entropy"``: softmax cross-entropy of the temperature-scaled
  amplitudes exp(log_temp) * fhat (the temperature is learned).
- ``"mse"``: sum_l (fhat_l - delta_{l,y})^2, the quadratic cost of Stoudenmire &
  Schwab (arXiv:1605.05775) on the normalised outputs.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["get_loss", "list_losses", "predicted_class", "LOSS_OUTPUT"]

_TINY = 1e-30


def _nll(params, fhat, y):
    p = fhat**2
    py = jnp.take_along_axis(p, y[:, None], axis=1)[:, 0]
    return -jnp.log(py + _TINY) + jnp.log(jnp.sum(p, axis=1))


def _cross_entropy(params, fhat, y):
    logp = jax.nn.log_softmax(jnp.exp(params.log_temp) * fhat, axis=1)
    return -jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]


def _mse(params, fhat, y):
    onehot = jax.nn.one_hot(y, fhat.shape[1], dtype=fhat.dtype)
    return jnp.sum((fhat - onehot) ** 2, axis=1)


_LOSSES: dict[str, Callable] = {"nll": _nll, "cross_entropy": _cross_entropy, "mse": _mse}

#: the output rule each loss trains for (used for predict_proba when output="auto")
LOSS_OUTPUT = {"nll": "born", "cross_entropy": "softmax", "mse": "born"}


def predicted_class(fhat: jax.Array, output: str) -> jax.Array:
    """Argmax class under an output rule: |f|^2 for ``"born"``, f for ``"softmax"``."""
    return jnp.argmax(fhat**2 if output == "born" else fhat, axis=-1)


def list_losses() -> list[str]:
    """Names accepted by :func:`get_loss`."""
    return sorted(_LOSSES)


def get_loss(name: str) -> Callable:
    """The per-sample loss function registered as ``name``."""
    try:
        return _LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; valid names: {list_losses()}") from None
