"""DMRG-style two-site sweep training of MPS classifiers (Stoudenmire & Schwab, arXiv:1605.05775).

At each bond the two cores are merged (:func:`qtn.models.merge`) into a bond
tensor B that carries the label leg; B is optimised on the whole training
set, then split by a truncated SVD (:func:`qtn.models.split`: at most
``bond_dim`` singular values, dropping those below ``cutoff`` times the
largest), which moves the label one site along. The label starts at its site
and one epoch sweeps it right to the last site, left to the first, and right
back, so every bond is optimised twice per epoch.

The local problem
-----------------
With the rest of the chain fixed, the model's outputs are *linear* in B:
g_l(x_n) = B_l . Phi_n, where the projected input Phi_n = L_n (x) phi_i(x_n)
(x) phi_{i+1}(x_n) (x) R_n is the product of the left environment L_n, the
two local feature vectors and the right environment R_n. Environments are
normalised per sample (so Phi_n has unit norm and 196-site chains stay in
float32's range): g is the amplitude relative to the norm of the input's
projection onto the bond's left and right bases.

- ``loss="mse"``, the paper's quadratic cost,
  (1/2W) sum_n w_n ||g(x_n) - y_n||^2 + (l2/2) ||B||^2, is a linear least-squares
  problem. The paper takes gradient steps Delta B = sum_n (y_n - g(x_n)) Phi_n;
  here ``local_steps`` iterations of linear conjugate gradient do the same
  (steepest descent with exact line search, then conjugate directions), starting
  from the current B. Each iteration is one pass over the data forward and one
  back, batched over samples in chunks: two GEMMs of (chunk, chi d) by
  (chi d, d L chi) each. ``l2`` adds a ridge, and a proximal term
  ||B - B_old||^2 / (2 learning_rate) keeps each update a step, as the paper's
  gradient steps are: solved exactly, the two-site problem's optimum has rank
  up to 2 chi, and the SVD back to chi then discarded up to 30% of its weight
  and undid the progress of earlier bonds (measured on the digits). After the
  split the label core is refitted for the kept isometry (the same solver on
  the one-site problem), because the SVD truncation is optimal for the
  Frobenius norm, not for the data. The split keeps the singular values'
  scale (the cost fixes it).
- any other classifier loss: ``local_steps`` minibatch Adam steps of size
  ``learning_rate`` on (B, log_temp), the outputs normalised over the labels
  as in gradient training; the split renormalises.

Cost
----
Environments (one chi-vector per sample and site) are cached: a bond update
reuses them and advances one by a single site, so a sweep costs O(N) bond
updates, each O(n chi^2 d^2 L) per CG iteration for n samples. Environments
the sweep has passed are released, so the cache holds about N of them:
N * n * chi floats (196 sites, 60,000 samples, chi=40: 1.9 GB in float32).
Sweeping left is sweeping right on the mirrored chain
(:func:`qtn.models.reverse_cores`). Bonds are stored padded, so every update
has static shapes (one compile per structure); the number of singular values
kept at each bond (the adapted bond dimension) is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qtn.models import (
    MPS,
    ClassifierParams,
    classifier_forward,
    merge,
    reverse_cores,
    split,
    trim_boundaries,
)
from qtn.training.evaluate import apply
from qtn.training.losses import get_loss

__all__ = [
    "SweepState",
    "sweep_init",
    "sweep_epoch",
    "left_environments",
    "QUADRATIC_LOSSES",
    "env_memory_bytes",
    "solve_quadratic",
]

#: losses whose local problem is linear least squares (solved by conjugate gradient)
QUADRATIC_LOSSES = ("mse",)
_CHUNK = 2048


@dataclass
class SweepState:
    """What sweeps carry between epochs.

    ``envs_left[i]`` / ``envs_right[i]`` is the (n, chi) normalised environment left
    of / right of site i (None where the last sweep released it), ``logs_left[i]`` /
    ``logs_right[i]`` its log-norm (n,); ``ranks`` the
    bond ranks kept by the last sweep; ``data`` the training arrays padded to
    whole chunks (padding rows have weight 0).
    """

    envs_left: list
    envs_right: list
    ranks: list
    logs_left: list = field(default_factory=list)
    logs_right: list = field(default_factory=list)
    max_discarded: float = 0.0
    data: tuple = field(default=(), repr=False)
    local_loss: float = float("nan")


@jax.jit
def _advance(env, core, phi, log_scale):
    """env (n, chi) through one site core (chi, d, chi) with features phi (n, d): the
    normalised environment and its accumulated log-norm (n,)."""
    w = jnp.einsum("na,asb,ns->nb", env, core, phi)
    nrm = jnp.linalg.norm(w, axis=1)
    safe = jnp.where(nrm > 0, nrm, 1)
    return w / safe[:, None], log_scale + jnp.log(jnp.where(nrm > 0, nrm, 1e-30))


def left_environments(cores: list, phi, upto: int, *, with_log: bool = False):
    """Environments left of sites 0..upto (inclusive) of a chain whose label is at or after upto.

    With ``with_log``, also their log-norms (the raw environment is exp(log) * env).
    """
    n, chi = phi.shape[0], cores[0].shape[0]
    envs, logs = [None] * len(cores), [None] * len(cores)
    envs[0] = jnp.zeros((n, chi), phi.dtype).at[:, 0].set(1)
    logs[0] = jnp.zeros(n, phi.dtype)
    for i in range(upto):
        envs[i + 1], logs[i + 1] = _advance(envs[i], cores[i], phi[:, i], logs[i])
    return (envs, logs) if with_log else envs


def env_memory_bytes(n_samples: int, n_sites: int, bond_dim: int, itemsize: int = 4) -> int:
    """Bytes of the environment cache a sweep holds: about one (n, chi) array per site."""
    return int((n_sites + 1) * n_samples * bond_dim * itemsize)


# ----------------------------------------------------------------------------- quadratic cost


def _chunks(x, c):
    return x.reshape(c, x.shape[0] // c, *x.shape[1:])


def solve_quadratic(
    b0, lenv, renv, pi, pj, y, w, *, steps: int, l2: float, chunk: int, prox: float = 0.0
):
    """``steps`` conjugate-gradient iterations on the bond's least-squares problem.

    Minimises (1/2W) sum_n w_n ||g_n(B) - e_{y_n}||^2 + (l2/2) ||B||^2
    + (prox/2) ||B - B_start||^2 over the bond tensor B (chi, d_a, d_b, L, chi), with
    g_n(B) = B . (lenv_n (x) pi_n (x) pj_n (x) renv_n), starting from B_start, the best
    multiple of ``b0`` (the proximal term keeps B near it: an implicit gradient step of
    size 1/prox). The data (n = whole chunks of ``chunk`` rows) are
    visited in chunks: one pass forward and one back per iteration. Pure JAX; returns
    ``(B, local cost)``.
    """
    chi, da, db, n_lab = b0.shape[0], b0.shape[1], b0.shape[2], b0.shape[3]
    c = lenv.shape[0] // chunk
    dt = b0.dtype
    data = tuple(_chunks(v, c) for v in (lenv, renv, pi, pj))
    wc = _chunks(w, c)[..., None]
    tgt = _chunks(jax.nn.one_hot(y, n_lab, dtype=dt), c)
    w_tot = jnp.maximum(jnp.sum(w), 1e-30)

    def x_of(le, p):  # (chunk, chi d): left environment times the left feature
        return (le[:, :, None] * p[:, None, :]).reshape(le.shape[0], chi * da)

    def fwd(bt):  # g (c, chunk, L) for a bond tensor bt (chi, d, d, L, chi)
        mat = bt.reshape(chi * da, db * n_lab * chi)

        def one(blk):
            le, re, p, q = blk
            h = (x_of(le, p) @ mat).reshape(-1, db, n_lab, chi)
            return jnp.einsum("nulb,nu,nb->nl", h, q, re)

        return jax.lax.map(one, data)

    def bwd(e):  # sum_n Phi_n (x) e_n for e (c, chunk, L): the transpose of fwd
        def one(acc, blk):
            (le, re, p, q), ec = blk
            yv = q[:, :, None, None] * ec[:, None, :, None] * re[:, None, None, :]
            return acc + x_of(le, p).T @ yv.reshape(-1, db * n_lab * chi), None

        acc, _ = jax.lax.scan(one, jnp.zeros((chi * da, db * n_lab * chi), dt), (data, e))
        return acc.reshape(b0.shape)

    g = fwd(b0)
    # start from the best multiple of the current bond tensor (moving the label
    # changes the outputs' scale sample by sample)
    num = jnp.sum(wc * g * tgt)
    den = jnp.sum(wc * g * g) + l2 * w_tot * jnp.vdot(b0, b0)
    scale = jnp.where(den > 0, num / jnp.where(den > 0, den, 1), 0)
    b0, g = scale * b0, scale * g
    anchor = b0
    r = bwd(wc * (tgt - g)) / w_tot - l2 * b0

    def body(_, carry):
        b, g, r, p, rs = carry
        gp = fwd(p)
        hp = bwd(wc * gp) / w_tot + (l2 + prox) * p  # the Hessian (Gram + ridge) times p
        php = jnp.vdot(p, hp)
        alpha = jnp.where(php > 0, rs / jnp.where(php > 0, php, 1), 0)
        b, g, r = b + alpha * p, g + alpha * gp, r - alpha * hp
        rs_new = jnp.vdot(r, r)
        p = r + jnp.where(rs > 0, rs_new / jnp.where(rs > 0, rs, 1), 0) * p
        return b, g, r, p, rs_new

    b, g, *_ = jax.lax.fori_loop(0, steps, body, (b0, g, r, r, jnp.vdot(r, r)))
    del anchor  # the proximal term's gradient vanishes at the start (b = anchor)
    loss = 0.5 * jnp.sum(wc * (g - tgt) ** 2) / w_tot + 0.5 * l2 * jnp.vdot(b, b)
    return b, loss


@lru_cache(maxsize=32)
def _make_cg_update(steps: int, l2: float, cutoff: float, chunk: int, prox: float):
    """Right move at bond (i, i+1) for the quadratic cost, by ``steps`` CG iterations."""

    @jax.jit
    def update(t, a, log_temp, lenv, llog, renv, rlog, pi, pj, y, w, log_s):
        # the sweep's cost is on f(x_n) / s_n with s_n = ||f(x_n)|| at the sweep's start;
        # f = exp(llog + rlog) g: fold the per-sample factor into the left environment
        lenv_in = lenv * jnp.exp(llog + rlog - log_s)[:, None]
        b, loss = solve_quadratic(merge(t, a), lenv_in, renv, pi, pj, y, w, steps=steps, l2=l2,
                                  chunk=chunk, prox=prox)  # fmt: skip
        new_a, new_t, discarded, rank = split(b, move="right", max_bond=t.shape[0], cutoff=cutoff)
        new_env, new_log = _advance(lenv, new_a, pi, llog)
        # the SVD truncation is optimal in the Frobenius norm, not in the data's metric:
        # refit the label core for the kept isometry (a one-site least-squares problem)
        lenv2 = new_env * jnp.exp(new_log + rlog - log_s)[:, None]
        ones = jnp.ones((lenv.shape[0], 1), lenv.dtype)
        t2, loss = solve_quadratic(new_t[:, None], lenv2, renv, ones, pj, y, w, steps=steps,
                                   l2=l2, chunk=chunk, prox=prox)  # fmt: skip
        return new_a, t2[:, 0], log_temp, new_env, new_log, loss, rank, discarded

    return update


# ----------------------------------------------------------------------------- other losses


@dataclass(frozen=True)
class _TempOnly:
    """Stand-in exposing ``log_temp`` to the loss functions inside a bond update."""

    log_temp: jax.Array


@lru_cache(maxsize=32)
def _make_adam_update(loss_name: str, lr: float, cutoff: float, steps: int, batch: int):
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
    def update(t, a, log_temp, lenv, llog, renv, rlog, pi, pj, y, w, log_s, key):
        """Right move at bond (i, i+1): label core t at i, plain core a at i+1."""
        theta = (merge(t, a), log_temp)
        state = opt.init(theta)
        # minibatches drawn in proportion to the weights (padding rows have weight 0)
        idx = jax.random.choice(key, w.shape[0], (steps, batch), p=w / jnp.sum(w))

        def step(carry, ix):
            theta, state = carry
            value, g = grad_fn(theta, lenv[ix], pi[ix], pj[ix], renv[ix], y[ix], 1.0)
            upd, state = opt.update(g, state, theta)
            return (optax.apply_updates(theta, upd), state), value

        (theta, _), losses = jax.lax.scan(step, (theta, state), idx)
        bt, log_temp = theta
        new_a, new_t, discarded, rank = split(
            bt, move="right", max_bond=t.shape[0], cutoff=cutoff, normalize=True
        )
        new_env, new_log = _advance(lenv, new_a, pi, llog)
        return new_a, new_t, log_temp, new_env, new_log, losses.mean(), rank, discarded

    return update


# ----------------------------------------------------------------------------- sweeps


def _right_sweep(cores, log_temp, start, stop, envs, logs, data, update, keys):
    """Move the label from ``start`` to ``stop`` (> start), updating each bond on the way.

    Right environments passed are released (set to None): the next sweep recomputes them.
    """
    (envs_l, envs_r), (logs_l, logs_r), (phi, y, w, log_s) = envs, logs, data
    losses, ranks, disc = [], [], 0.0
    for i in range(start, stop):
        extra = () if keys is None else (next(keys),)
        a, t, log_temp, env, lg, loss, rank, dw = update(
            cores[i], cores[i + 1], log_temp, envs_l[i], logs_l[i], envs_r[i + 1],
            logs_r[i + 1], phi[:, i], phi[:, i + 1], y, w, log_s, *extra,
        )  # fmt: skip
        cores[i], cores[i + 1], envs_l[i + 1], logs_l[i + 1] = a, t, env, lg
        envs_r[i] = logs_r[i] = None  # the label has left site i: its right env is stale
        losses.append(loss)
        ranks.append(rank)
        disc = jnp.maximum(disc, dw)
    return log_temp, losses, ranks, disc


def _pad_rows(x, n_pad, fill=0):
    extra = n_pad - x.shape[0]
    if extra == 0:
        return x
    pad = jnp.full((extra, *x.shape[1:]), fill, x.dtype)
    return jnp.concatenate([x, pad])


def _gauge_to_center(cores: list, k: int) -> list:
    """Mixed canonical form around site k without moving the label: cores left of k
    left-isometric, right of k right-isometric (exact: each split keeps the bond's rank).

    Then every environment has norm at most 1 and replacing an isometry by another
    (as sweeps do) keeps the raw outputs' scale comparable.
    """
    cores = trim_boundaries([np.asarray(c, dtype=np.float64) for c in cores])
    chi = cores[k].shape[0]
    for i in range(k):
        a, b, _, _ = split(merge(cores[i], cores[i + 1]), move="right", max_bond=chi)
        cores[i], cores[i + 1] = a, b
    for i in range(len(cores) - 2, k - 1, -1):
        a, b, _, _ = split(merge(cores[i], cores[i + 1]), move="left", max_bond=chi)
        cores[i], cores[i + 1] = a, b
    # the norm gathered in the centre is irrelevant to the outputs (they are normalised)
    # and can leave float32's range (an identity-initialised chain grows like 2^(N/2))
    nrm = np.linalg.norm(cores[k])
    cores[k] = cores[k] / (nrm if nrm > 0 else 1.0)
    return cores


def sweep_init(params: ClassifierParams, phi, y, w=None) -> tuple[ClassifierParams, SweepState]:
    """Compute the environments of every site for the label's current position.

    Returns the parameters with the unused boundary entries zeroed (the same
    function) and the cached environments. The data are padded to whole
    chunks with zero-weight rows.
    """
    n = phi.shape[0]
    w = jnp.ones(n, phi.dtype) if w is None else jnp.asarray(w, phi.dtype)
    chunk = min(_CHUNK, n)
    n_pad = -(-n // chunk) * chunk
    phi_p = _pad_rows(jnp.asarray(phi), n_pad)
    y_p = _pad_rows(jnp.asarray(y, jnp.int32), n_pad)
    w_p = _pad_rows(w, n_pad)
    mps = params.network
    k = mps.center_site
    cores = [jnp.asarray(c, phi.dtype) for c in _gauge_to_center(mps.cores(), k)]
    envs_l, logs_l = left_environments(cores, phi_p, k, with_log=True)
    envs_r, logs_r = left_environments(
        reverse_cores(cores), jnp.flip(phi_p, 1), len(cores) - 1 - k, with_log=True
    )
    new = ClassifierParams(MPS.from_cores(cores, k), params.log_temp)
    return new, SweepState(envs_l, envs_r[::-1], [], logs_l, logs_r[::-1],
                           data=(phi_p, y_p, w_p, chunk))  # fmt: skip


def sweep_epoch(
    params: ClassifierParams,
    state: SweepState,
    *,
    loss: str,
    learning_rate: float,
    cutoff: float,
    local_steps: int,
    batch_size: int,
    l2: float = 0.0,
    rng: np.random.Generator,
):
    """One epoch: label site -> N-1 -> 0 -> label site. Returns (params, state, mean local loss).

    The training data are those given to :func:`sweep_init` (kept in ``state.data``).
    """
    phi, y, w, chunk = state.data
    n_sites = phi.shape[1]
    k = params.network.center_site
    if loss in QUADRATIC_LOSSES:
        prox = 1.0 / float(learning_rate)
        update = _make_cg_update(int(local_steps), float(l2), float(cutoff), int(chunk), prox)
        keys = None
    else:
        b = min(batch_size, phi.shape[0])
        update = _make_adam_update(loss, float(learning_rate), float(cutoff), int(local_steps), b)
        seed = int(rng.integers(0, 2**31 - 1))
        keys = iter(jax.random.split(jax.random.key(seed), 2 * n_sites))

    cores = params.network.cores()
    log_temp = params.log_temp
    # the per-sample scale of this sweep's cost: ||f(x_n)|| of the model at its start
    _, log_s = apply(classifier_forward, params, phi)
    log_s = jnp.asarray(np.where(np.isfinite(log_s), log_s, 0.0), phi.dtype)
    envs_l, envs_r = list(state.envs_left), list(state.envs_right)
    logs_l, logs_r = list(state.logs_left), list(state.logs_right)
    all_losses = []
    # 1) right from k to the end
    log_temp, ls, _, d1 = _right_sweep(
        cores, log_temp, k, n_sites - 1, (envs_l, envs_r), (logs_l, logs_r), (phi, y, w, log_s),
        update, keys,
    )  # fmt: skip
    all_losses += ls
    # 2) left from the end to 0, as a right sweep of the mirrored chain
    mcores, mphi = reverse_cores(cores), jnp.flip(phi, 1)
    m_envs = (envs_r[::-1], envs_l[::-1])
    m_logs = (logs_r[::-1], logs_l[::-1])
    log_temp, ls, mranks, d2 = _right_sweep(
        mcores, log_temp, 0, n_sites - 1, m_envs, m_logs, (mphi, y, w, log_s), update, keys
    )
    all_losses += ls
    cores = reverse_cores(mcores)
    envs_r, envs_l = m_envs[0][::-1], m_envs[1][::-1]
    logs_r, logs_l = m_logs[0][::-1], m_logs[1][::-1]
    # 3) right from 0 back to k
    ranks = [int(r) for r in mranks][::-1]
    d3 = 0.0
    if k > 0:
        log_temp, ls, rranks, d3 = _right_sweep(
            cores, log_temp, 0, k, (envs_l, envs_r), (logs_l, logs_r), (phi, y, w, log_s),
            update, keys,
        )  # fmt: skip
        all_losses += ls
        ranks[:k] = [int(r) for r in rranks]
    disc = float(max(d1, d2, d3))
    new = ClassifierParams(MPS.from_cores(cores, k), log_temp)
    mean_loss = float(jnp.mean(jnp.stack(all_losses)))
    out = SweepState(envs_l, envs_r, ranks, logs_l, logs_r, disc, state.data, mean_loss)
    return new, out, mean_loss
