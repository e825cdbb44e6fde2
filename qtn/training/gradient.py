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

__all__ = [
    "make_epoch",
    "epoch_mesh",
    "replicate",
    "split_batches",
    "batch_indices",
    "tree_sq_norm",
]


def tree_sq_norm(params):
    """Sum of squares of every leaf of the params pytree (the L2 penalty)."""
    return sum(jnp.sum(jnp.abs(x) ** 2) for x in jax.tree_util.tree_leaves(params))


@lru_cache(maxsize=32)
def make_epoch(forward: Callable, loss_name: str, optimizer: optax.GradientTransformation,
               l2: float, mesh=None):  # fmt: skip
    """A jitted ``epoch(params, opt_state, phi, y, w, idx, mask) -> (params, opt_state, stats)``.

    With a ``mesh`` (a 1-D ``jax.sharding.Mesh``, axis ``"batch"``), every minibatch is
    split over its devices (data parallelism: each device runs the forward and
    backward pass of its rows, XLA sums the gradients); the caller passes ``idx``
    and ``mask`` sharded along their batch axis and the rest replicated
    (:func:`replicate`, :func:`split_batches`). Without one, the step runs on one device.

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

    if mesh is None:
        split = lambda a: a  # noqa: E731
    else:
        from jax.sharding import NamedSharding, PartitionSpec

        rows = NamedSharding(mesh, PartitionSpec("batch"))
        split = lambda a: jax.lax.with_sharding_constraint(a, rows)  # noqa: E731

    def step(carry, batch):
        params, opt_state, phi_all, y_all, w_all = carry
        idx, m = split(batch[0]), split(batch[1])
        w = w_all[idx] * m
        (_, (lsum, correct)), grads = grad_fn(params, split(phi_all[idx]), y_all[idx], w)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state, phi_all, y_all, w_all), jnp.stack([lsum, correct, jnp.sum(w)])

    @jax.jit
    def epoch(params, opt_state, phi, y, w, idx, mask):
        carry = (params, opt_state, phi, y, w.astype(phi.dtype))
        (params, opt_state, *_), stats = jax.lax.scan(step, carry, (idx, mask.astype(phi.dtype)))
        return params, opt_state, stats

    return epoch


def epoch_mesh(batch_size: int, params):
    """The mesh an epoch of minibatches of ``batch_size`` rows is split over, or None (one
    device, or too little work per device; see :func:`qtn._devices.shard_count`)."""
    from qtn._devices import batch_mesh, shard_count

    n_params = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(params))
    return batch_mesh() if shard_count(batch_size, n_params) > 1 else None


def replicate(mesh, tree):
    """``tree`` with every array on every device of ``mesh`` (unchanged without a mesh)."""
    if mesh is None:
        return tree
    from jax.sharding import NamedSharding, PartitionSpec

    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def split_batches(mesh, idx, mask):
    """Minibatch indices and mask (n_batches, B) split along B over ``mesh``'s devices."""
    if mesh is None:
        return idx, mask
    from jax.sharding import NamedSharding, PartitionSpec

    return jax.device_put((idx, mask), NamedSharding(mesh, PartitionSpec(None, "batch")))


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
