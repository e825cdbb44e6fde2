"""DMRG-style two-site sweep training of MPS classifiers (Stoudenmire & Schwab, arXiv:1605.05775).

At each bond the two cores are merged into a bond tensor that carries the
label index; the bond tensor is optimised by a few minibatch Adam steps of the
chosen loss, then split by a truncated SVD (at most ``max_bond`` singular
values, dropping those below ``cutoff`` times the largest), which moves the
label index one site along. The label starts at ``label_site`` and one epoch
sweeps it right to the last site, left to the first, and right back to
``label_site``, so every bond is optimised twice per epoch.

Left and right environments (the contracted halves of the chain, one
``chi``-vector per sample, normalised) are cached: each bond update reuses
them and advances one of them by a single site, so a sweep costs O(N) bond
updates. Sweeping left is sweeping right on the mirrored chain.

Bond dimensions adapt to the data: bonds are stored padded to ``max_bond``,
and the number of singular values kept at each bond is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qtn.models.mps import MPSParams
from qtn.training.losses import get_loss

__all__ = ["SweepState", "sweep_init", "sweep_epoch"]


@dataclass
class SweepState:
    """Cached environments between epochs: ``envs_left[i]``/``envs_right[i]`` is the (n, chi)
    environment to the left/right of site i; ``ranks`` the bond ranks kept by the last sweep."""

    envs_left: list
    envs_right: list
    ranks: list
    max_discarded: float = 0.0


def _to_cores(params: MPSParams) -> list:
    return list(params.left) + [params.label] + list(params.right)


def _from_cores(cores: list, k: int, log_temp) -> MPSParams:
    chi, d = cores[k].shape[0], cores[k].shape[1]
    empty = jnp.zeros((0, chi, d, chi), cores[k].dtype)
    left = jnp.stack(cores[:k]) if k else empty
    right = jnp.stack(cores[k + 1 :]) if k + 1 < len(cores) else empty
    return MPSParams(left, cores[k], right, log_temp)


def _mirror(cores: list) -> list:
    out = []
    for c in reversed(cores):
        out.append(c.transpose(3, 1, 2, 0) if c.ndim == 4 else c.transpose(2, 1, 0))
    return out


@jax.jit
def _advance(env, core, phi):
    """env (n, chi) through one site core (chi, d, chi) with features phi (n, d); normalised."""
    w = jnp.einsum("na,asb,ns->nb", env, core, phi)
    nrm = jnp.linalg.norm(w, axis=1, keepdims=True)
    return w / jnp.where(nrm > 0, nrm, 1)


def _boundary(n, chi, dtype):
    return jnp.zeros((n, chi), dtype).at[:, 0].set(1)


def _left_envs(cores: list, phi, upto: int) -> list:
    """Environments left of sites 0..upto (inclusive) of a chain whose label is at or after upto."""
    n, chi = phi.shape[0], cores[0].shape[0]
    envs = [None] * len(cores)
    envs[0] = _boundary(n, chi, phi.dtype)
    for i in range(upto):
        envs[i + 1] = _advance(envs[i], cores[i], phi[:, i])
    return envs


@lru_cache(maxsize=32)
def _make_bond_update(loss_name: str, lr: float, cutoff: float):
    loss_fn = get_loss(loss_name)
    opt = optax.adam(lr)

    def local_loss(theta, lenv, pi, pj, renv, y, w):
        bt, log_temp = theta
        f = jnp.einsum("na,ns,asLub,nu,nb->nL", lenv, pi, bt, pj, renv)
        nrm = jnp.linalg.norm(f, axis=1, keepdims=True)
        fhat = f / jnp.where(nrm > 0, nrm, 1)
        per = loss_fn(_TempOnly(log_temp), fhat, y)
        return jnp.sum(per * w) / jnp.maximum(jnp.sum(w), 1)

    grad_fn = jax.value_and_grad(local_loss)

    @jax.jit
    def update(t, a, log_temp, lenv, renv, pi, pj, y, idx, mask):
        """Right move at bond (i, i+1): label core t at i, plain core a at i+1."""
        chi, d, n_cls = t.shape[0], t.shape[1], t.shape[2]
        bt = jnp.einsum("asLc,cub->asLub", t, a)
        theta = (bt, log_temp)
        state = opt.init(theta)

        def step(carry, batch):
            theta, state = carry
            ix, w = batch
            loss, g = grad_fn(theta, lenv[ix], pi[ix], pj[ix], renv[ix], y[ix], w)
            upd, state = opt.update(g, state, theta)
            return (optax.apply_updates(theta, upd), state), loss

        (theta, _), losses = jax.lax.scan(step, (theta, state), (idx, mask.astype(t.dtype)))
        bt, log_temp = theta
        mat = bt.reshape(chi * d, n_cls * d * chi)
        u, s, vh = jnp.linalg.svd(mat, full_matrices=False)
        total = jnp.sum(s**2)
        u, s, vh = u[:, :chi], s[:chi], vh[:chi]
        # singular values below the dtype's rounding level are noise, whatever ``cutoff`` says
        eff = jnp.maximum(cutoff, 16 * jnp.finfo(t.dtype).eps)
        keep = (s > eff * s[0]) & (s > 0)
        keep = keep.at[0].set(True)
        discarded = 1.0 - jnp.sum(jnp.where(keep, s, 0) ** 2) / jnp.where(total > 0, total, 1)
        s = jnp.where(keep, s, 0)
        s = s / jnp.linalg.norm(s)
        new_a = (u * keep[None, :]).reshape(chi, d, chi)
        new_t = (s[:, None] * vh).reshape(chi, n_cls, d, chi).transpose(0, 2, 1, 3)
        new_env = _advance(lenv, new_a, pi)
        return new_a, new_t, log_temp, new_env, losses.mean(), jnp.sum(keep), discarded

    return update


@dataclass(frozen=True)
class _TempOnly:
    """Stand-in exposing ``log_temp`` to the loss functions inside a bond update."""

    log_temp: jax.Array


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


def _trim(cores: list) -> list:
    """Zero what the e0 boundaries never see, so it does not take up bond rank."""
    cores = list(cores)
    cores[0] = cores[0].at[1:].set(0)
    cores[-1] = cores[-1].at[..., 1:].set(0)
    return cores


def sweep_init(params: MPSParams, phi, y) -> tuple[MPSParams, SweepState]:
    """Compute the environments of every site for the label's current position.

    Returns the parameters with the unused boundary entries zeroed (the same
    function) and the cached environments.
    """
    cores = _trim(_to_cores(params))
    params = _from_cores(cores, params.label_site, params.log_temp)
    k = params.label_site
    envs_l = _left_envs(cores, phi, k)
    mphi = jnp.flip(phi, 1)
    envs_r = _left_envs(_mirror(cores), mphi, len(cores) - 1 - k)[::-1]
    return params, SweepState(envs_l, envs_r, [])


def sweep_epoch(
    params: MPSParams,
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
    """One epoch: label_site -> N-1 -> 0 -> label_site. Returns (params, state, mean loss)."""
    n, n_sites = phi.shape[0], phi.shape[1]
    k = params.label_site
    update = _make_bond_update(loss, float(learning_rate), float(cutoff))
    b = min(batch_size, n)

    def batches():
        idx = rng.integers(0, n, size=(local_steps, b))
        return idx, np.ones((local_steps, b), np.float32)

    cores = _to_cores(params)
    log_temp = params.log_temp
    envs_l, envs_r = state.envs_left, state.envs_right
    all_losses, disc = [], 0.0
    # 1) right from k to the end
    log_temp, ls, _, d1 = _right_sweep(
        cores, log_temp, k, n_sites - 1, envs_l, envs_r, phi, y, update, batches
    )
    all_losses += ls
    # 2) left from the end to 0, as a right sweep of the mirrored chain
    mcores, mphi, menvs_l, menvs_r = _mirror(cores), jnp.flip(phi, 1), envs_r[::-1], envs_l[::-1]
    log_temp, ls, mranks, d2 = _right_sweep(
        mcores, log_temp, 0, n_sites - 1, menvs_l, menvs_r, mphi, y, update, batches
    )
    all_losses += ls
    cores, envs_r, envs_l = _mirror(mcores), menvs_l[::-1], menvs_r[::-1]
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
    new = _from_cores(cores, k, log_temp)
    return new, SweepState(envs_l, envs_r, ranks, disc), float(jnp.mean(jnp.stack(all_losses)))
