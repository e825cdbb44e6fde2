"""Gradient training from any forward function: one jitted optax epoch, a ``lax.scan`` over
shuffled minibatches, on one device or split over a mesh of devices (data parallelism).

With a mesh (:func:`qtn._devices.batch_mesh` automatically, or the one an estimator's
``devices=`` names, :func:`qtn._devices.device_mesh`), the minibatch indices are sharded
along the mesh's ``"batch"`` axis (``NamedSharding``), parameters, optimizer state and
training data are replicated, and XLA sums the gradients across devices (an all-reduce).
A mesh may span the devices of several processes (``jax.distributed.initialize``): then
every process holds the whole dataset and places its own shards
(:func:`place`, through ``jax.make_array_from_callback``), and every process gets the
same parameters back (:func:`to_local`).
"""

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
    "pad_batches",
    "place",
    "to_local",
    "agree",
    "check_same_data",
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
    (:func:`replicate`, :func:`split_batches`), and gets replicated results back. A
    mesh of more axes is split along ``"batch"`` and replicated over the others.
    Without one, the step runs on one device.

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
        split = same = lambda a: a  # noqa: E731
    else:
        from jax.sharding import NamedSharding, PartitionSpec

        rows = NamedSharding(mesh, PartitionSpec("batch"))
        every = NamedSharding(mesh, PartitionSpec())
        split = lambda a: jax.lax.with_sharding_constraint(a, rows)  # noqa: E731
        # results replicated: every device (every process) holds the whole value
        same = lambda t: jax.lax.with_sharding_constraint(t, every)  # noqa: E731

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
        return same(params), same(opt_state), same(stats)

    return epoch


def epoch_mesh(batch_size: int, params, devices=None):
    """The mesh an epoch of minibatches of ``batch_size`` rows is split over, or None.

    With ``devices`` (an estimator's ``devices=``, see :func:`qtn._devices.device_mesh`)
    the mesh it names, always. Without, the automatic policy: every local device when
    the split pays, else None (one device, or too little work per device; see
    :func:`qtn._devices.shard_count`).
    """
    from qtn._devices import batch_mesh, device_mesh, shard_count

    if devices is not None:
        return device_mesh(devices)
    n_params = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(params))
    return batch_mesh() if shard_count(batch_size, n_params) > 1 else None


def place(mesh, tree, spec=None):
    """``tree`` as global arrays on ``mesh`` with ``PartitionSpec`` ``spec`` (default:
    replicated); unchanged without a mesh.

    On a mesh of this process's devices this is ``jax.device_put``. On a mesh spanning
    several processes every process must pass the same whole value (each holds the
    full dataset) and supplies the shards of its own devices, through
    ``jax.make_array_from_callback``.
    """
    if mesh is None:
        return tree
    from jax.sharding import NamedSharding, PartitionSpec

    from qtn._devices import spans_processes

    sharding = NamedSharding(mesh, PartitionSpec() if spec is None else spec)
    if not spans_processes(mesh):
        return jax.device_put(tree, sharding)

    def one(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            return jax.device_put(a, sharding)  # already global: reshard
        full = np.asarray(a)
        return jax.make_array_from_callback(full.shape, sharding, lambda index: full[index])

    return jax.tree_util.tree_map(one, tree)


def replicate(mesh, tree):
    """``tree`` with every array on every device of ``mesh`` (unchanged without a mesh)."""
    return place(mesh, tree)


def split_batches(mesh, idx, mask):
    """Minibatch indices and mask (n_batches, B) split along B over ``mesh``'s devices."""
    from jax.sharding import PartitionSpec

    return place(mesh, (idx, mask), PartitionSpec(None, "batch"))


def pad_batches(idx, mask, shards: int):
    """Minibatches (n_batches, B) widened to a multiple of ``shards`` rows by zero-weight
    rows (index 0, mask 0), so that every device gets as many; they change no sum."""
    pad = -idx.shape[1] % shards
    if not pad:
        return idx, mask
    zeros = np.zeros((idx.shape[0], pad), dtype=idx.dtype)
    return np.concatenate([idx, zeros], 1), np.concatenate([mask, zeros.astype(mask.dtype)], 1)


def to_local(mesh, tree):
    """Replicated results of a step on ``mesh`` as ordinary arrays on this process's default
    device (unchanged without a mesh). On a mesh spanning processes, each process takes
    its own copy, so every process holds the same values."""
    if mesh is None:
        return tree
    device = jax.local_devices()[0]

    def one(a):
        if not isinstance(a, jax.Array):
            return a
        if not a.is_fully_addressable:
            if not a.is_fully_replicated:  # pragma: no cover - the epoch replicates its results
                raise ValueError(f"expected a replicated array, got sharding {a.sharding}")
            a = a.addressable_data(0)
        return jax.device_put(a, device)

    return jax.tree_util.tree_map(one, tree)


def agree(mesh, flag: bool) -> bool:
    """Process 0's ``flag`` on every process of a mesh spanning processes (a decision such
    as stopping at a time limit, which must not differ between processes); ``flag``
    itself otherwise."""
    from qtn._devices import spans_processes

    if not spans_processes(mesh):
        return bool(flag)
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.asarray(bool(flag))))


def check_same_data(mesh, *arrays) -> None:
    """On a mesh spanning processes, raise ValueError unless every process passed the same
    arrays, bit for bit (each process must hold the full dataset and start from the same
    parameters); no-op otherwise.

    Each process hashes its arrays (shape, dtype and bytes, SHA-256) and the digests are
    gathered, so every process sees every digest and all raise together.
    """
    from qtn._devices import spans_processes

    if not spans_processes(mesh):
        return
    import hashlib

    from jax.experimental import multihost_utils

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    digest = np.frombuffer(h.digest(), dtype=np.uint8).astype(np.int32)
    every = np.asarray(multihost_utils.process_allgather(digest))
    differ = [i for i in range(len(every)) if not np.array_equal(every[i], every[0])]
    if differ:  # every process sees the same gathered digests, so every process raises
        raise ValueError(
            f"devices spans {len(every)} processes, and processes {differ} hold training "
            "data or initial parameters different from process 0's: with devices across "
            "processes, every process must pass the whole, identical dataset (each places "
            "its own devices' shards) and the same random_state (an int)"
        )


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
