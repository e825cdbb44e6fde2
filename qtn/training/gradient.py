"""Gradient training of MPS classifiers: one jitted optax epoch, a ``lax.scan`` over minibatches."""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qtn.models.mps import MPSParams, batch_amplitudes
from qtn.training.losses import LOSS_OUTPUT, get_loss, predicted_class

__all__ = ["make_epoch", "batch_indices"]


def _tree_sq_norm(params: MPSParams):
    return sum(jnp.sum(x**2) for x in (params.left, params.label, params.right))


@lru_cache(maxsize=32)
def make_epoch(loss_name: str, optimizer: optax.GradientTransformation, l2: float):
    """A jitted ``epoch(params, opt_state, phi, y, idx, mask) -> (params, opt_state, stats)``.

    ``idx`` (n_batches, B) indexes the training arrays, ``mask`` (n_batches, B)
    is 0 for padding in the last batch. ``stats`` is (n_batches, 3): summed
    loss, summed correct predictions and batch weight, so the caller gets
    running loss and accuracy without another pass over the data. Cached per
    (loss, optimizer, l2), so repeated fits reuse the compiled function.
    """
    loss_fn = get_loss(loss_name)

    def batch_loss(params, phi, y, w):
        fhat, _ = batch_amplitudes(params, phi)
        per = loss_fn(params, fhat, y)
        total = jnp.sum(per * w) / jnp.maximum(jnp.sum(w), 1)
        if l2:
            total = total + l2 * _tree_sq_norm(params)
        correct = jnp.sum((predicted_class(fhat, LOSS_OUTPUT[loss_name]) == y) * w)
        return total, (jnp.sum(per * w), correct)

    grad_fn = jax.value_and_grad(batch_loss, has_aux=True)

    def step(carry, batch):
        params, opt_state, phi_all, y_all = carry
        idx, w = batch
        (_, (lsum, correct)), grads = grad_fn(params, phi_all[idx], y_all[idx], w)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state, phi_all, y_all), jnp.stack([lsum, correct, jnp.sum(w)])

    @jax.jit
    def epoch(params, opt_state, phi, y, idx, mask):
        (params, opt_state, _, _), stats = jax.lax.scan(
            step, (params, opt_state, phi, y), (idx, mask.astype(phi.dtype))
        )
        return params, opt_state, stats

    return epoch


def batch_indices(n: int, batch_size: int, rng: np.random.Generator):
    """Shuffled minibatch indices (n_batches, B) and a 0/1 mask padding the last batch."""
    perm = rng.permutation(n)
    n_batches = -(-n // batch_size)
    pad = n_batches * batch_size - n
    idx = np.concatenate([perm, np.zeros(pad, dtype=perm.dtype)]).reshape(n_batches, batch_size)
    mask = np.ones(n_batches * batch_size, dtype=np.float32)
    if pad:
        mask[-pad:] = 0
    return idx, mask.reshape(n_batches, batch_size)
