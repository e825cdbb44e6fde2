"""DMRG-style two-site sweep training of MPS classifiers (Stoudenmire & Schwab, arXiv:1605.05775).

At each bond the two cores are merged (:func:`qtn.models.merge`) into a bond
tensor that carries the label leg; it is optimised by a few minibatch Adam
steps of the chosen loss, then split by a truncated SVD (:func:`qtn.models.split`:
at most ``bond_dim`` singular values, dropping those below ``cutoff`` times the
largest), which moves the label one site along. The label starts at its site
and one epoch sweeps it right to the last site, left to the first, and right
back, so every bond is optimised twice per epoch.

Left and right environments (the contracted halves of the chain, one
chi-vector per sample, normalised) are cached: each bond update reuses them
and advances one of them by a single site, so a sweep costs O(N) bond
updates. Sweeping left is sweeping right on the mirrored chain
(:func:`qtn.models.reverse_cores`). Bonds are stored padded, so every update
has static shapes (one compile per structure); the number of singular values
kept at each bond is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qtn.models import MPS, ClassifierParams, merge, reverse_cores, split, trim_boundaries
from qtn.training.losses import get_loss

__all__ = ["SweepState", "sweep_init", "sweep_epoch", "left_environments"]


@dataclass
class SweepState:
    """Cached environments between epochs: ``envs_left[i]``/``envs_right[i]`` is the (n, chi)
    environment to the left/right of site i; ``ranks`` the bond ranks kept by the last sweep."""

    envs_left: list
    envs_right: list
    ranks: list
    max_discarded: float = 0.0


@jax.jit
def _advance(env, core, phi):
    """env (n, chi) through one site core (chi, d, chi) with features phi (n, d); normalised."""
    w = jnp.einsum("na,asb,ns->nb", env, core, phi)
    nrm = jnp.linalg.norm(w, axis=1, keepdims=True)
    return w / jnp.where(nrm > 0, nrm, 1)


def left_environments(cores: list, phi, upto: int) -> list:
    """Environments left of sites 0..upto (inclusive) of a chain whose label is at or after upto."""
    n, chi = phi.shape[0], cores[0].shape[0]
    envs = [None] * len(cores)
    envs[0] = jnp.zeros((n, chi), phi.dtype).at[:, 0].set(1)
    for i in range(upto):
        envs[i + 1] = _advance(envs[i], cores[i], phi[:, i])
    return envs


@dataclass(frozen=True)
class _TempOnly:
    """Stand-in exposing ``log_temp`` to the loss functions inside a bond update."""

    log_temp: jax.Array


@lru_cache(maxsize=32)
def _make_bond_update(loss_name: str, lr: float, cutoff: float):
    loss = get_loss(loss_name)
    opt = optax.adam(lr)

    def local_loss(theta, lenv, pi, pj, renv, y, w):
        bt, log_temp = theta
        f = jnp.einsum("na,ns,asuLb,nu,nb->nL", lenv, pi, bt, pj, renv)
        nrm = jnp.linalg.norm(f, axis=1, keepdims=True)
        fhat = f / jnp.where(nrm > 0, nrm, 1)
        per = loss(_TempOnly(log_temp), fhat, jnp.log(nrm[:, 0] + 1e-30), y)
        return jnp.sum(per * w) / jnp.maximum(jnp.sum(w), 1e-12)

    grad_fn = jax.value_and_grad(local_loss)

    @jax.jit
    def update(t, a, log_temp, lenv, renv, pi, pj, y, idx, mask):
        """Right move at bond (i, i+1): label core t at i, plain core a at i+1."""
        theta = (merge(t, a), log_temp)
        state = opt.init(theta)

        def step(carry, batch):
            theta, state = carry
            ix, w = batch
            value, g = grad_fn(theta, lenv[ix], pi[ix], pj[ix], renv[ix], y[ix], w)
            upd, state = opt.update(g, state, theta)
            return (optax.apply_updates(theta, upd), state), value

        (theta, _), losses = jax.lax.scan(step, (theta, state), (idx, mask.astype(t.dtype)))
        bt, log_temp = theta
        new_a, new_t, discarded, rank = split(
            bt, move="right", max_bond=t.shape[0], cutoff=cutoff, normalize=True
        )
        new_env = _advance(lenv, new_a, pi)
        return new_a, new_t, log_temp, new_env, losses.mean(), rank, discarded

    return update


def _right_sweep(cores, log_temp, start, stop, envs_l, envs_r, phi, y, update, batches):
    """Move the label from ``start`` to ``stop`` (> start), updating each bond on the way."""
    losses, ranks, disc = [], [], 0.0
    for i in range(start, stop):
        idx, mask = batches()
        a, t, log_temp, env, loss, rank, dw = update(
            cores[i], cores[i + 1], log_temp, envs_l[i], envs_r[i + 1],
            phi[:, i], phi[:, i + 1], y, idx, mask,
        )  # fmt: skip
        cores[i], cores[i + 1], envs_l[i + 1] = a, t, env
        losses.append(loss)
        ranks.append(rank)
        disc = jnp.maximum(disc, dw)
    return log_temp, losses, ranks, disc


def sweep_init(params: ClassifierParams, phi, y) -> tuple[ClassifierParams, SweepState]:
    """Compute the environments of every site for the label's current position.

    Returns the parameters with the unused boundary entries zeroed (the same
    function) and the cached environments.
    """
    mps = params.network
    cores = trim_boundaries([jnp.asarray(c) for c in mps.cores()])
    k = mps.center_site
    envs_l = left_environments(cores, phi, k)
    envs_r = left_environments(reverse_cores(cores), jnp.flip(phi, 1), len(cores) - 1 - k)[::-1]
    new = ClassifierParams(MPS.from_cores(cores, k), params.log_temp)
    return new, SweepState(envs_l, envs_r, [])


def sweep_epoch(
    params: ClassifierParams,
    state: SweepState,
    phi,
    y,
    *,
    loss: str,
    learning_rate: float,
    cutoff: float,
    local_steps: int,
    batch_size: int,
    rng: np.random.Generator,
):
    """One epoch: label site -> N-1 -> 0 -> label site. Returns (params, state, mean loss)."""
    n, n_sites = phi.shape[0], phi.shape[1]
    k = params.network.center_site
    update = _make_bond_update(loss, float(learning_rate), float(cutoff))
    b = min(batch_size, n)

    def batches():
        idx = rng.integers(0, n, size=(local_steps, b))
        return idx, np.ones((local_steps, b), np.float32)

    cores = params.network.cores()
    log_temp = params.log_temp
    envs_l, envs_r = state.envs_left, state.envs_right
    all_losses = []
    # 1) right from k to the end
    log_temp, ls, _, d1 = _right_sweep(
        cores, log_temp, k, n_sites - 1, envs_l, envs_r, phi, y, update, batches
    )
    all_losses += ls
    # 2) left from the end to 0, as a right sweep of the mirrored chain
    mcores, mphi = reverse_cores(cores), jnp.flip(phi, 1)
    menvs_l, menvs_r = envs_r[::-1], envs_l[::-1]
    log_temp, ls, mranks, d2 = _right_sweep(
        mcores, log_temp, 0, n_sites - 1, menvs_l, menvs_r, mphi, y, update, batches
    )
    all_losses += ls
    cores, envs_r, envs_l = reverse_cores(mcores), menvs_l[::-1], menvs_r[::-1]
    # 3) right from 0 back to k
    ranks = [int(r) for r in mranks][::-1]
    d3 = 0.0
    if k > 0:
        log_temp, ls, rranks, d3 = _right_sweep(
            cores, log_temp, 0, k, envs_l, envs_r, phi, y, update, batches
        )
        all_losses += ls
        ranks[:k] = [int(r) for r in rranks]
    disc = float(max(d1, d2, d3))
    new = ClassifierParams(MPS.from_cores(cores, k), log_temp)
    return new, SweepState(envs_l, envs_r, ranks, disc), float(jnp.mean(jnp.stack(all_losses)))
