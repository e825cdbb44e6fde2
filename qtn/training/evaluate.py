"""The one evaluation loop: a model's forward over many samples in padded chunks.

Fit (per-epoch metrics) and predict (estimators) both use :func:`apply`.
Chunks are padded to a few fixed sizes (powers of two up to ``chunk``) by
repeating the last real row, so inference compiles once per chunk size and
padding rows are always valid inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from qtn.metrics import accuracy
from qtn.training.losses import get_loss, predicted_class

__all__ = ["apply", "evaluate", "chunk_size"]


def chunk_size(n: int, chunk: int = 1024) -> int:
    """The padded chunk size for ``n`` samples: ``chunk``, or the next power of two >= 8."""
    return chunk if n >= chunk else max(8, 1 << (max(n, 1) - 1).bit_length())


@lru_cache(maxsize=64)
def _batched(forward: Callable):
    return jax.jit(jax.vmap(forward, in_axes=(None, 0)))


def apply(forward: Callable, params, phi, *, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``forward`` over every sample of ``phi`` (n, ...): numpy (fhat (n, L), log_norm (n,))."""
    n = phi.shape[0]
    if n == 0:
        raise ValueError("phi has no samples")
    fn = _batched(forward)
    size = chunk_size(n, chunk)
    fh, ln = [], []
    for s in range(0, n, size):
        part = np.asarray(phi[s : s + size])
        m = part.shape[0]
        if m < size:
            part = np.concatenate([part, np.repeat(part[-1:], size - m, axis=0)])
        f, lg = fn(params, part)
        fh.append(np.asarray(f)[:m])
        ln.append(np.asarray(lg)[:m])
    return np.concatenate(fh), np.concatenate(ln)


def evaluate(forward: Callable, params, phi, y, loss: str, *, weights=None, chunk: int = 4096):
    """(mean loss, accuracy) of ``params`` on (phi, y); accuracy is None for generative losses.

    The means are weighted by ``weights`` when given.
    """
    loss_obj = get_loss(loss)
    fhat, logn = apply(forward, params, phi, chunk=chunk)
    yy = jnp.asarray(np.zeros(len(fhat), np.int32) if y is None else y)
    per = np.asarray(loss_obj(params, jnp.asarray(fhat), jnp.asarray(logn), yy), dtype=np.float64)
    w = np.ones(len(per)) if weights is None else np.asarray(weights, dtype=np.float64)
    mean = float(np.sum(per * w) / np.sum(w))
    if not loss_obj.supervised:
        return mean, None
    pred = np.asarray(predicted_class(jnp.asarray(fhat), loss_obj.output))
    return mean, float(accuracy(np.asarray(y), pred, sample_weight=w))
