"""Sweeps of TTN classifiers: local updates of one tree tensor with cached environments.

The label leg stays at the root. For a node v with tensor T (a, b, c), the class
amplitudes of sample x are

    f_l(x) = sum_{a,b,c} u_a(x) w_b(x) T[a, b, c] top_{c,l}(x),

where u, w are the bottom-up vectors of v's two children (feature vectors at
the leaves) and top(x) (c, L) is the contraction of everything above v. One
epoch visits every node once in depth-first post-order from the root: descend
into the left child with its top environment, then into the right child
(whose top environment uses the left child's refreshed vector), then update
the node with ``local_steps`` minibatch Adam steps of the loss (the softmax
temperature included) and refresh its bottom-up vector. Post-order learns
features from the leaves up; on the digits it reached a lower loss per sweep
than pre-order (root first). Bottom-up vectors of every node are cached (one (n, chi) array per
node, normalised per sample); top environments live only along the current
path. A sweep therefore costs about three forward passes plus the local
steps. Tensors are rescaled to unit norm after each update (the outputs are
normalised, so only directions matter).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qtn.models import TTN, ClassifierParams
from qtn.training.losses import get_loss

__all__ = ["TreeSweepState", "tree_sweep_init", "tree_sweep_epoch", "SWEEP_MEMORY"]

#: the largest cache of bottom-up vectors (bytes) a tree sweep allocates before refusing
SWEEP_MEMORY = 8 * 2**30


@dataclass
class TreeSweepState:
    """``ups[l][j]``: the (n, c) normalised bottom-up vector of node j of level l (l < K-1)."""

    ups: list


def _unit(v, axes):
    nrm = jnp.sqrt(jnp.sum(jnp.abs(v) ** 2, axis=axes, keepdims=True))
    return v / jnp.where(nrm > 0, nrm, 1)


@jax.jit
def _up(ul, ur, t):
    return _unit(jnp.einsum("na,nb,abc->nc", ul, ur, t), (1,))


@jax.jit
def _top_left(t, ur, top):
    return _unit(jnp.einsum("abc,nb,ncl->nal", t, ur, top), (1, 2))


@jax.jit
def _top_right(t, ul, top):
    return _unit(jnp.einsum("na,abc,ncl->nbl", ul, t, top), (1, 2))


@dataclass(frozen=True)
class _TempOnly:
    """Stand-in exposing ``log_temp`` to the loss functions inside a node update."""

    log_temp: jax.Array


@lru_cache(maxsize=32)
def _make_node_update(loss_name: str, lr: float):
    loss = get_loss(loss_name)
    opt = optax.adam(lr)

    def local_loss(theta, ul, ur, top, y, w):
        t, log_temp = theta
        f = jnp.einsum("na,nb,abc,ncl->nl", ul, ur, t, top)
        nrm = jnp.linalg.norm(f, axis=1, keepdims=True)
        fhat = f / jnp.where(nrm > 0, nrm, 1)
        per = loss(_TempOnly(log_temp), fhat, jnp.log(nrm[:, 0] + 1e-30), y)
        return jnp.sum(per * w) / jnp.maximum(jnp.sum(w), 1e-12)

    grad_fn = jax.value_and_grad(local_loss)

    @jax.jit
    def update(t, log_temp, ul, ur, top, y, w_all, idx, mask):
        theta = (t, log_temp)
        state = opt.init(theta)

        def step(carry, batch):
            theta, state = carry
            ix, m = batch
            value, g = grad_fn(theta, ul[ix], ur[ix], top[ix], y[ix], w_all[ix] * m)
            upd, state = opt.update(g, state, theta)
            return (optax.apply_updates(theta, upd), state), value

        (theta, _), losses = jax.lax.scan(step, (theta, state), (idx, mask.astype(t.dtype)))
        t, log_temp = theta
        return t / jnp.where(jnp.linalg.norm(t) > 0, jnp.linalg.norm(t), 1), log_temp, losses

    return update


def _leaf_vectors(phi, lvl, j, ups):
    if lvl == 0:
        return phi[:, 2 * j], phi[:, 2 * j + 1]
    return ups[lvl - 1][2 * j], ups[lvl - 1][2 * j + 1]


def tree_sweep_init(params: ClassifierParams, phi, y) -> tuple[ClassifierParams, TreeSweepState]:
    """Cache the bottom-up vector of every node below the root.

    Raises ValueError if the cache would exceed :data:`SWEEP_MEMORY`.
    """
    ttn = params.network
    n = phi.shape[0]
    size = sum(a.shape[0] * a.shape[3] for a in ttn.layers[:-1]) * n
    need = size * np.dtype(ttn.dtype.name).itemsize
    if need > SWEEP_MEMORY:
        raise ValueError(
            f"the tree sweep's cache needs {need / 2**30:.1f} GiB for {n} samples (limit "
            f"{SWEEP_MEMORY / 2**30:.0f} GiB): train on fewer samples or use method='gradient'"
        )
    layers = [jnp.asarray(a) for a in ttn.layers]
    ups: list = []
    for lvl in range(len(layers) - 1):
        ups.append(
            [
                _up(*_leaf_vectors(phi, lvl, j, ups), layers[lvl][j])
                for j in range(layers[lvl].shape[0])
            ]
        )
    return ClassifierParams(TTN(tuple(layers)), params.log_temp), TreeSweepState(ups)


def tree_sweep_epoch(
    params: ClassifierParams,
    state: TreeSweepState,
    phi,
    y,
    w,
    *,
    loss: str,
    learning_rate: float,
    local_steps: int,
    batch_size: int,
    rng: np.random.Generator,
):
    """One depth-first sweep over every tensor. Returns (params, state, mean local loss)."""
    n = phi.shape[0]
    update = _make_node_update(loss, float(learning_rate))
    b = min(batch_size, n)
    nodes = [[a[j] for j in range(a.shape[0])] for a in params.network.layers]
    k = len(nodes)
    ups = [list(level) for level in state.ups]
    log_temp = params.log_temp
    losses = []
    w = jnp.asarray(w, params.network.dtype)
    n_lab = nodes[-1][0].shape[2]

    def visit(lvl, j, top):
        nonlocal log_temp
        ul, ur = _leaf_vectors(phi, lvl, j, ups)
        if lvl > 0:  # children first (post-order): features are learnt from the leaves up
            visit(lvl - 1, 2 * j, _top_left(nodes[lvl][j], ur, top))
            ul = ups[lvl - 1][2 * j]
            visit(lvl - 1, 2 * j + 1, _top_right(nodes[lvl][j], ul, top))
            ur = ups[lvl - 1][2 * j + 1]
        idx = rng.integers(0, n, size=(local_steps, b))
        mask = np.ones((local_steps, b), np.float32)
        t, log_temp, ls = update(nodes[lvl][j], log_temp, ul, ur, top, y, w, idx, mask)
        nodes[lvl][j] = t
        losses.append(ls)
        if lvl < k - 1:
            ups[lvl][j] = _up(ul, ur, t)

    top0 = jnp.broadcast_to(jnp.eye(n_lab, dtype=nodes[-1][0].dtype), (n, n_lab, n_lab))
    visit(k - 1, 0, top0)
    layers = tuple(jnp.stack(level) for level in nodes)
    mean = float(jnp.mean(jnp.concatenate(losses)))
    return ClassifierParams(TTN(layers), log_temp), TreeSweepState(ups), mean
