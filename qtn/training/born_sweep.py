"""Two-site NLL sweeps of MPS Born machines (Han et al., arXiv:1709.01662).

The MPS is kept in mixed canonical form with its centre on the bond being
updated, so the normalisation is exact and local: Z = ||theta||^2 for the
merged two-site tensor theta. At bond (i, i+1) the exact negative
log-likelihood as a function of theta is

    NLL(theta) = -(2 / W) sum_x w_x log |L_x . theta[:, x_i, x_{i+1}, :] . R_x|
                 + log ||theta||^2 + const,

with L_x, R_x the cached left/right environment vectors of sample x (the
contracted isometric halves of the chain, normalised per sample, their log
scales carried separately). ``local_steps`` full-batch gradient steps of size
``learning_rate`` on the unit sphere (theta normalised after each step, as in
Han et al.; a step longer than ``MAX_STEP`` = 0.5 is shortened to it) lower
it; a truncated SVD then splits theta (at most ``max_bond`` = the stored bond
dimension, dropping singular values below ``cutoff`` times
the largest), leaving the left core an isometry and moving the centre one
site: bond dimensions adapt to the data. One epoch sweeps the centre from
site 0 to N-1 and back (every bond updated twice); sweeping left is sweeping
right on the mirrored chain. The reported loss of an epoch is the exact NLL
of the final, truncated state.

Memory: two (n, chi) environments per site and copies of the cores, estimated before
allocating (:func:`sweep_memory`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from qtn.models import MPS, merge, right_canonicalize, split
from qtn.models.mps import guarded_log, guarded_norm

__all__ = ["BornSweepState", "born_sweep_init", "born_sweep_epoch", "sweep_memory", "SWEEP_MEMORY"]

#: the largest environment cache (bytes) a Born sweep allocates before refusing
SWEEP_MEMORY = 12 * 2**30
#: the longest local gradient step (theta has unit norm); 1/psi(x) in the gradient can be
#: huge for a sample the state nearly misses, and an unclipped step then destroys theta
MAX_STEP = 0.5
_TINY = 1e-30
#: the most samples for which the local steps may use their n x n Gram matrix
KERNEL_MAX_SAMPLES = 8192
#: the Gram-matrix steps are kept only if the formed iterate's norm is 1 within this (else the
#: bond is redone by the direct steps)
KERNEL_TOLERANCE = 1e-3


@dataclass
class BornSweepState:
    """Cached environments: ``envs_left[i]`` (n, chi) / ``logs_left[i]`` (n,) to the left of
    site i, the same to the right; bond ranks and the largest discarded weight of the last sweep."""

    envs_left: list
    logs_left: list
    envs_right: list
    logs_right: list
    ranks: list
    max_discarded: float = 0.0
    #: bond updates of the last epoch whose local steps gave a non-finite or vanishing theta
    #: (those bonds kept their state)
    skipped: int = 0
    #: bond updates of the last epoch whose SVD was redone by QR iteration (gesdd failed)
    svd_retries: int = 0
    #: bond updates of the last epoch whose Gram-matrix steps lost their unit norm to
    #: rounding and were redone by the direct steps
    kernel_fallbacks: int = 0


@jax.jit
def _advance(env, logs, core, phi):
    """(n, chi) environment and log scales through one site core with features (n, d)."""
    w = jnp.einsum("na,asb,ns->nb", env, core, phi.astype(core.dtype))
    nrm, safe = guarded_norm(w, axis=1)
    return w / safe[:, None], logs + guarded_log(nrm, _TINY)


def _left_envs(cores, phi, upto):
    n, chi = phi.shape[0], cores[0].shape[0]
    rdt = jnp.real(cores[0]).dtype
    envs, logs = [None] * len(cores), [None] * len(cores)
    envs[0] = jnp.zeros((n, chi), cores[0].dtype).at[:, 0].set(1)
    logs[0] = jnp.zeros(n, rdt)
    for i in range(upto):
        envs[i + 1], logs[i + 1] = _advance(envs[i], logs[i], cores[i], phi[:, i])
    return envs, logs


def _amplitudes(theta, lenv, renv, pi, pj):
    """<L_n| theta[:, x_i, x_j, :] |R_n> of every sample n."""
    chi, d = theta.shape[0], theta.shape[1]
    x = (lenv @ theta.reshape(chi, d * d * chi)).reshape(-1, d, d, chi)
    return jnp.sum(jnp.einsum("nstb,ns,nt->nb", x, pi, pj) * renv, axis=1)


def _local_nll(theta, lenv, llog, renv, rlog, pi, pj, w):
    mag = jnp.abs(_amplitudes(theta, lenv, renv, pi, pj))
    logpsi = jnp.log(jnp.where(mag > 0, mag, _TINY)) + llog + rlog
    return -2 * jnp.sum(w * logpsi) / jnp.sum(w) + jnp.log(jnp.sum(jnp.abs(theta) ** 2))


def _kernel_descent(theta, lenv, renv, pi, pj, w, lr: float, steps: int):
    """The direct path's ``steps`` local steps, computed in the span of theta and the samples.

    Every gradient of the local NLL is ``2 theta / ||theta||^2`` plus a combination of the
    samples' rank-one terms ``E_m = L_m (x) e_{x_i} (x) e_{x_j} (x) R_m``, so each iterate is
    ``alpha theta_0 + sum_m beta_m E_m``. Amplitudes, norms and step sizes then need only
    ``<theta_0, E_m>`` and the Gram matrix ``<E_n, E_m>`` (n x n): a step costs O(n^2)
    instead of the direct path's O(n d^2 chi^2). Same iterates as the direct path, exactly
    in exact arithmetic; theta is formed once at the end. Returns ``(theta, ok)``: ``ok`` is
    False when rounding has cost the formed theta its unit norm (or made it non-finite).
    """
    amp0 = _amplitudes(theta, lenv, renv, pi, pj)
    gram = (pi @ pi.T) * (pj @ pj.T) * (lenv @ lenv.T) * (renv @ renv.T)
    n0 = jnp.sum(theta * theta)
    wn = w / jnp.sum(w)

    def norm2(a, b, kb):
        return a * a * n0 + 2 * a * jnp.dot(b, amp0) + jnp.dot(b, kb)

    def step(carry, _):
        a, b, kb = carry
        amp = a * amp0 + kb
        nk = norm2(a, b, kb)
        hit = amp != 0
        c = jnp.where(hit, -2 * wn / jnp.where(hit, amp, 1), 0)
        # the gradient (ga, gb) scaled by its largest coefficient s, so that its squared
        # norm cannot overflow when a sample's amplitude is tiny (1/amp ~ 1e30 in float32)
        s = jnp.maximum(jnp.abs(2 * a / nk), jnp.max(jnp.abs(c + 2 * b / nk)))
        s = jnp.where(s > 0, s, 1)
        ga, gb = (2 * a / nk) / s, (c + 2 * b / nk) / s
        kg = gram @ (c / s) + (2 / nk) * (kb / s)
        q = jnp.sqrt(jnp.maximum(norm2(ga, gb, kg), 0))
        eta = jnp.minimum(lr * s, MAX_STEP / jnp.where(q > 0, q, 1))  # trust region
        a, b, kb = a - eta * ga, b - eta * gb, kb - eta * kg
        r = 1 / jnp.sqrt(norm2(a, b, kb))
        return (a * r, b * r, kb * r), None

    zero = jnp.zeros_like(amp0)
    (a, b, _), _ = jax.lax.scan(step, (jnp.ones((), theta.dtype), zero, zero), None, length=steps)
    lb = (lenv * b[:, None])[:, :, None, None] * pi[:, None, :, None] * pj[:, None, None, :]
    new = a * theta + jnp.einsum("nast,nb->astb", lb, renv)
    # the iterate is normalised, so its formed norm must be 1: in float32 a long chain of steps
    # can lose that (coefficients that cancel), and the caller then takes the direct steps
    err = jnp.abs(jnp.sum(new * new) - 1)
    return new, err < KERNEL_TOLERANCE


def use_kernel(n: int, chi: int, d: int, steps: int, dtype) -> bool:
    """Whether the Gram-matrix form of the local steps is cheaper (and fits: n <= 8192)."""
    if steps < 1 or n > KERNEL_MAX_SAMPLES or jnp.issubdtype(dtype, jnp.complexfloating):
        return False
    direct = 2 * steps * d * d * n * chi * chi
    kernel = 2 * n * n * chi + 2 * d * d * n * chi * chi + 3 * steps * n * n
    return kernel < direct


@lru_cache(maxsize=32)
def _make_update(
    lr: float, cutoff: float, steps: int, kernel: bool = False, with_loss: bool = True
):
    grad = jax.grad(_local_nll)

    @jax.jit
    def update(a, b, lenv, llog, renv, rlog, pi, pj, w):
        """Right move at bond (i, i+1): the centre core a at i, the right-isometric b at i+1."""
        chi = a.shape[0]
        pi, pj = pi.astype(a.dtype), pj.astype(a.dtype)
        theta = merge(a, b)[:, :, :, 0, :]
        theta0 = theta / jnp.linalg.norm(theta)

        def step(theta, _):
            g = grad(theta, lenv, llog, renv, rlog, pi, pj, w)
            s = jnp.max(jnp.abs(g))  # scaled: |g|^2 must not overflow (1/psi(x) is huge
            g = g / jnp.where(s > 0, s, 1)  # for a sample the state nearly misses)
            q = jnp.linalg.norm(g)
            # trust region: a step moves the unit theta by at most MAX_STEP
            theta = theta - jnp.minimum(lr * s, MAX_STEP / jnp.where(q > 0, q, 1)) * g
            return theta / jnp.linalg.norm(theta), None

        def direct(theta):
            return jax.lax.scan(step, theta, None, length=steps)[0]

        if kernel:
            wk = w.astype(a.dtype)
            fast, ok = _kernel_descent(theta0, lenv, renv, pi, pj, wk, lr, steps)
            theta = jax.lax.cond(ok, lambda t: t[0], lambda t: direct(t[1]), (fast, theta0))
            fell_back = ~ok
        else:
            theta = direct(theta0)
            fell_back = jnp.zeros((), bool)
        # a non-finite or vanishing iterate (float32 breakdown) is never split: the bond keeps
        # its state and is counted, instead of NaN cores (and Z = 0) spreading down the chain
        good = jnp.all(jnp.isfinite(theta)) & (jnp.sum(jnp.abs(theta) ** 2) > _TINY)
        theta = jnp.where(good, theta, theta0)

        def cut(t, qr_svd):
            return split(t[:, :, :, None, :], move="right", max_bond=chi, cutoff=cutoff,
                         normalize=True, qr_svd=qr_svd)  # fmt: skip

        parts = cut(theta, False)
        # LAPACK's divide-and-conquer SVD fails on rare matrices (JAX then returns NaN, and
        # the cores would become NaN or zero, Z = 0): such a bond is split again by QR iteration
        failed = ~(jnp.all(jnp.isfinite(parts[0])) & jnp.all(jnp.isfinite(parts[1]))
                   & (parts[3] > 0))  # fmt: skip
        parts = jax.lax.cond(failed, lambda t: cut(t, True), lambda t: parts, theta)
        new_a, new_b, discarded, rank = parts
        if with_loss:
            merged = merge(new_a, new_b)[:, :, :, 0, :]
            loss = _local_nll(merged, lenv, llog, renv, rlog, pi, pj, w)
        else:
            loss = jnp.zeros((), jnp.real(a).dtype)
        env, logs = _advance(lenv, llog, new_a, pi)
        flags = jnp.stack([~good, failed, fell_back]).astype(jnp.int32)
        return new_a, new_b, env, logs, loss, rank, discarded, flags

    return update


def check_one_hot(phi) -> None:
    """Born sweeps need orthonormal local vectors (one-hot data): Z = ||psi||^2 only then."""
    ph = np.asarray(phi)
    if not (np.all((ph == 0) | (ph == 1)) and np.all(ph.sum(axis=-1) == 1)):
        raise ValueError(
            "Born-machine sweeps need one-hot inputs (discrete data through the 'one_hot' "
            "feature map); got other feature vectors"
        )


def born_sweep_init(mps: MPS, phi, w=None) -> tuple[MPS, BornSweepState]:
    """Canonicalise ``mps`` with its centre at site 0 (unit norm) and cache every right environment.

    Raises ValueError if the environment cache would exceed :data:`SWEEP_MEMORY`.
    """
    n, n_sites = phi.shape[0], phi.shape[1]
    need = sweep_memory(n, n_sites, mps.bond_dim, mps.phys_dim, mps.dtype)
    if need > SWEEP_MEMORY:
        raise ValueError(
            f"the sweep needs about {need / 2**30:.1f} GiB (environments of {n} samples x "
            f"{n_sites} sites x bond dimension {mps.bond_dim}, and copies of the cores; limit "
            f"{SWEEP_MEMORY / 2**30:.0f} GiB): train on fewer samples or use method='gradient'"
        )
    cores = right_canonicalize(mps).cores()
    rdt = jnp.real(cores[0]).dtype
    envs_r, logs_r = [None] * n_sites, [None] * n_sites
    envs_r[-1] = jnp.zeros((n, cores[-1].shape[-1]), cores[0].dtype).at[:, 0].set(1)
    logs_r[-1] = jnp.zeros(n, rdt)
    for i in range(n_sites - 1, 0, -1):  # the right environments, one core at a time
        mirrored = cores[i].transpose(2, 1, 0)  # leftwards = rightwards on the mirrored core
        envs_r[i - 1], logs_r[i - 1] = _advance(envs_r[i], logs_r[i], mirrored, phi[:, i])
    envs_l, logs_l = _left_envs(cores, phi, 0)
    state = BornSweepState(envs_l, logs_l, envs_r, logs_r, [])
    return MPS.from_cores(cores, 0), state


def sweep_memory(n: int, n_sites: int, bond_dim: int, phys_dim: int, dtype) -> int:
    """Bytes a sweep holds at its peak: the left and right environments of every sample
    (2 n N chi) and four copies of the cores (4 N chi^2 d: the stacked MPS in and out, the
    list swept, and the best epoch's copy that training keeps)."""
    item = np.dtype(getattr(dtype, "name", dtype)).itemsize
    return item * (2 * n_sites * n * bond_dim + 4 * n_sites * bond_dim * bond_dim * phys_dim)


def _mirror(items: list, transpose: bool = False) -> list:
    """Reverse ``items`` in place (and swap each core's bonds, one core at a time): the
    mirrored chain without a second copy of every array."""
    items.reverse()
    if transpose:
        for i, c in enumerate(items):
            items[i] = c.transpose(3, 1, 2, 0) if c.ndim == 4 else c.transpose(2, 1, 0)
    return items


def _right_sweep(cores, envs_l, logs_l, envs_r, logs_r, phi, w, updates, bar=None):
    """Move the centre from 0 to N-1, updating each bond; returns (last loss, ranks, worst,
    [bonds whose steps broke down, bonds whose SVD was redone, Gram-step fallbacks]).

    ``updates`` = (update without the loss, update with it): only the last bond's loss is kept.
    """
    ranks, worst, loss, flags = [], jnp.zeros(()), None, jnp.zeros(3, jnp.int32)
    for i in range(len(cores) - 1):
        if bar is not None:
            bar.update(1)
        update = updates[i == len(cores) - 2]
        a, b, env, logs, loss, rank, disc, bad = update(
            cores[i], cores[i + 1], envs_l[i], logs_l[i], envs_r[i + 1], logs_r[i + 1],
            phi[:, i], phi[:, i + 1], w,
        )  # fmt: skip
        cores[i], cores[i + 1], envs_l[i + 1], logs_l[i + 1] = a, b, env, logs
        ranks.append(rank)
        worst = jnp.maximum(worst, disc)
        flags = flags + bad
    return loss, ranks, worst, flags


def born_sweep_epoch(
    mps: MPS,
    state: BornSweepState,
    phi,
    w,
    *,
    learning_rate: float,
    cutoff: float,
    local_steps: int,
    progress: bool = False,
    kernel: bool | None = None,
) -> tuple[MPS, BornSweepState, float]:
    """One epoch: the centre from site 0 to N-1 and back. Returns (mps, state, exact NLL).

    ``state``'s environment lists are updated in place (memory: one copy of them, not two).

    ``progress`` shows a tqdm bar over the 2 (N-1) bond updates. ``kernel`` picks the
    Gram-matrix form of the local steps (same iterates; O(n^2) per step instead of
    O(n d^2 chi^2)); ``None`` picks it where it costs fewer operations (:func:`use_kernel`).
    """
    from tqdm.auto import tqdm

    if mps.n_sites < 2:
        raise ValueError("Born-machine sweeps need at least 2 sites to form a bond")
    n, chi, d = phi.shape[0], mps.bond_dim, phi.shape[2]
    if kernel is None:
        kernel = use_kernel(n, chi, d, int(local_steps), mps.dtype)
    lr, cut, steps = float(learning_rate), float(cutoff), int(local_steps)
    updates = tuple(_make_update(lr, cut, steps, bool(kernel), last) for last in (False, True))
    w = jnp.asarray(w, jnp.real(mps.center).dtype)
    cores = mps.cores()
    del mps  # the caller's reference remains; the lists below are updated in place
    envs_l, logs_l = state.envs_left, state.logs_left
    envs_r, logs_r = state.envs_right, state.logs_right
    bar = tqdm(total=2 * (len(cores) - 1), desc="sweep", leave=False, disable=not progress)
    _, _, d1, s1 = _right_sweep(cores, envs_l, logs_l, envs_r, logs_r, phi, w, updates, bar)
    mcores, mphi = _mirror(cores, transpose=True), jnp.flip(phi, 1)
    menvs_l, mlogs_l, menvs_r, mlogs_r = map(_mirror, (envs_r, logs_r, envs_l, logs_l))
    loss, mranks, d2, s2 = _right_sweep(
        mcores, menvs_l, mlogs_l, menvs_r, mlogs_r, mphi, w, updates, bar
    )
    bar.close()
    cores = _mirror(mcores, transpose=True)
    new_state = BornSweepState(
        _mirror(menvs_r), _mirror(mlogs_r), _mirror(menvs_l), _mirror(mlogs_l),
        [int(r) for r in mranks][::-1], float(jnp.maximum(d1, d2)), *(int(f) for f in s1 + s2),
    )  # fmt: skip
    return MPS.from_cores(cores, 0), new_state, float(loss)
