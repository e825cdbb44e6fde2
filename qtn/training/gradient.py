"""Gradient training from any forward function: one jitted optax epoch, a ``lax.scan`` over
shuffled minibatches."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qtn.training.losses import get_loss, predicted_class

__all__ = ["make_epoch", "batch_indices", "tree_sq_norm"]


def tree_sq_norm(params):
    """Sum of squares of every leaf of the params pytree (the L2 penalty)."""
    return sum(jnp.sum(jnp.abs(x) ** 2) for x in jax.tree_util.tree_leaves(params))


@lru_cache(maxsize=32)
def make_epoch(forward: Callable, loss_name: str, optimizer: optax.GradientTransformation,
               l2: float):  # fmt: skip
    """A jitted ``epoch(params, opt_state, phi, y, w, idx, mask) -> (params, opt_state, stats)``.

    ``forward(params, phi_one) -> (fhat, log_norm)`` is vmapped over each batch.
    ``idx`` (n_batches, B) indexes the training arrays, ``mask`` (n_batches, B) is 0
    for padding in the last batch; ``w`` (n,) weights the samples. ``stats`` is
    (n_batches, 3): summed weighted loss, summed weighted correct predictions (0 for
    generative losses) and batch weight, so the caller gets running loss and
    accuracy without another pass over the data. Cached per (forward, loss,
    optimizer, l2), so repeated fits reuse the compiled function.
    """
    loss = get_loss(loss_name)
    batched = jax.vmap(forward, in_axes=(None, 0))

    def batch_loss(params, phi, y, w):
        fhat, logn = batched(params, phi)
        per = loss(params, fhat, logn, y)
        total = jnp.sum(per * w) / jnp.maximum(jnp.sum(w), 1e-12)
        if l2:
            total = total + l2 * tree_sq_norm(params)
        if loss.supervised:
            correct = jnp.sum((predicted_class(fhat, loss.output) == y) * w)
        else:
            correct = jnp.zeros((), per.dtype)
        return total, (jnp.sum(per * w), correct)

    grad_fn = jax.value_and_grad(batch_loss, has_aux=True)

    def step(carry, batch):
        params, opt_state, phi_all, y_all, w_all = carry
        idx, m = batch
        w = w_all[idx] * m
        (_, (lsum, correct)), grads = grad_fn(params, phi_all[idx], y_all[idx], w)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state, phi_all, y_all, w_all), jnp.stack([lsum, correct, jnp.sum(w)])

    @jax.jit
    def epoch(params, opt_state, phi, y, w, idx, mask):
        carry = (params, opt_state, phi, y, w.astype(phi.dtype))
        (params, opt_state, *_), stats = jax.lax.scan(step, carry, (idx, mask.astype(phi.dtype)))
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
