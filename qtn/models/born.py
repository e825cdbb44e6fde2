"""Born machines: p(x) = |psi(x)|^2 / Z over discrete data, on an MPS or a TTN.

The model of Han et al. (arXiv:1709.01662) on an :class:`~qtn.models.MPS`, and
its tree version (Cheng et al., arXiv:1901.02217) on a :class:`~qtn.models.TTN`.
Data are integers x_i in range(d), fed to the networks as one-hot vectors
(the ``one_hot`` feature map), so psi(x) is one entry of the state and Z is
its squared norm.

- :func:`born_forward` / :func:`ttn_born_forward`: the forward contract
  ``forward(params, phi) -> (sign, log |psi(x)| - log sqrt(Z))``, which the
  ``unsupervised_nll`` loss turns into -log p(x). Z is computed inside, once
  per batch (it does not depend on the sample, so ``vmap`` leaves it unbatched).
- :func:`mps_log_marginal` / :func:`ttn_log_marginal`: log of the probability
  that each site takes one of the values its weight row allows (one-hot rows:
  fixed sites; all-ones rows: summed out). Marginals of chosen sites and the
  probability of partial assignments (inpainting) are this with 0/1 weights.

Everything is computed in log space with normalised environments, so 784-site
products neither underflow nor overflow. Exact sampling is in
:mod:`qtn.models.sampling`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from qtn.models.mps import MPS, amplitudes, log_norm, trim_boundaries
from qtn.models.ttn import TTN, _norm_envs, ttn_amplitudes, ttn_log_norm

__all__ = [
    "born_forward",
    "ttn_born_forward",
    "mps_log_marginal",
    "ttn_log_marginal",
    "assignment_weights",
    "right_canonicalize",
]

_TINY = 1e-30


def born_forward(mps: MPS, phi) -> tuple[jax.Array, jax.Array]:
    """Forward contract of an MPS Born machine: ``(sign, log|psi(x)| - log sqrt(Z))``.

    Twice the returned log-norm is log p(x); ``loss="unsupervised_nll"`` trains it.

    Examples
    --------
    >>> psi = init_mps(jax.random.key(0), 6, 2)
    >>> phi = jax.nn.one_hot(jnp.array([0, 1, 1, 0, 1, 0]), 2)
    >>> _, lp = born_forward(psi, phi)
    >>> round(float(2 * lp), 3) == round(-6 * np.log(2), 3)   # near-uniform start
    True
    """
    fhat, ln = amplitudes(mps, phi)
    return fhat, ln - log_norm(mps)


def ttn_born_forward(ttn: TTN, phi) -> tuple[jax.Array, jax.Array]:
    """Forward contract of a TTN Born machine (phi: leaf vectors (P, d))."""
    fhat, ln = ttn_amplitudes(ttn, phi)
    return fhat, ln - ttn_log_norm(ttn)


def assignment_weights(values, d: int, dtype=np.float32) -> np.ndarray:
    """0/1 weights (..., N, d) from integer values (..., N): -1 (free) -> all ones, v -> e_v."""
    v = np.asarray(values)
    w = (v[..., None] == np.arange(d)).astype(dtype)
    w[v < 0] = 1
    return w


@jax.jit
def _mps_log_weighted(cores, weights):
    """log sum_x prod_i w_i(x_i) |psi(x)|^2 for weights (B, N, d); cores (N, chi, d, chi)."""
    chi = cores.shape[1]
    b = weights.shape[0]
    e0 = jnp.zeros((b, chi, chi), cores.dtype).at[:, 0, 0].set(1)

    def step(carry, inp):
        env, logs = carry
        a, w = inp
        x = jnp.einsum("nab,asc->nbsc", env, a)
        new = jnp.einsum("nbsc,ns,bsd->ncd", x, w.astype(a.dtype), jnp.conj(a))
        nrm = jnp.linalg.norm(new.reshape(b, -1), axis=1)
        safe = jnp.where(nrm > 0, nrm, 1)
        return (new / safe[:, None, None], logs + jnp.log(jnp.where(nrm > 0, nrm, _TINY))), None

    init = (e0, jnp.zeros(b, jnp.real(e0).dtype))
    (env, logs), _ = jax.lax.scan(step, init, (cores, jnp.swapaxes(weights, 0, 1)))
    top = jnp.real(env[:, 0, 0])
    return jnp.log(jnp.where(top > 0, top, 0)) + logs


def mps_log_marginal(mps: MPS, weights) -> jax.Array:
    """log sum_x prod_i weights[i, x_i] p(x) for each row of ``weights`` (B, N, d).

    With 0/1 weights from :func:`assignment_weights`, this is the log-probability
    that every fixed site takes its value, all others summed out (exact).

    Examples
    --------
    >>> psi = random_mps(0, 5, 3)
    >>> w = assignment_weights(np.array([[0, -1, -1, -1, -1], [1, -1, -1, -1, -1]]), 2)
    >>> p = np.exp(mps_log_marginal(psi, w))
    >>> bool(abs(p.sum() - 1) < 1e-6)
    True
    """
    if mps.n_labels is not None:
        raise ValueError("mps_log_marginal needs an MPS without a label leg")
    cores = jnp.stack([jnp.asarray(c) for c in trim_boundaries(mps.cores())])
    weights = jnp.asarray(weights)
    if weights.ndim != 3 or weights.shape[1:] != (mps.n_sites, mps.phys_dim):
        raise ValueError(
            f"weights must have shape (B, {mps.n_sites}, {mps.phys_dim}), got {weights.shape}"
        )
    return _mps_log_weighted(cores, weights) - 2 * log_norm(
        MPS(jnp.asarray(mps.left), jnp.asarray(mps.center), jnp.asarray(mps.right))
    )


@jax.jit
def _ttn_log_weighted(ttn, weights):
    def one(w):
        envs, logs = _norm_envs(ttn, w)
        tr = jnp.real(jnp.trace(envs[-1][0]))
        return jnp.log(jnp.where(tr > 0, tr, 0)) + logs

    return jax.vmap(one)(weights)


def ttn_log_marginal(ttn: TTN, weights) -> jax.Array:
    """log sum_x prod_p weights[p, x_p] p(x) for each row of ``weights`` (B, P, d) (leaf order)."""
    ttn = TTN(tuple(jnp.asarray(a) for a in ttn.layers))
    weights = jnp.asarray(weights)
    if weights.ndim != 3 or weights.shape[1:] != (ttn.n_leaves, ttn.phys_dim):
        raise ValueError(
            f"weights must have shape (B, {ttn.n_leaves}, {ttn.phys_dim}), got {weights.shape}"
        )
    return _ttn_log_weighted(ttn, weights) - 2 * ttn_log_norm(ttn)


@jax.jit
def _right_canonical_cores(cores):
    n_sites, chi, d, _ = cores.shape
    eps = 16 * jnp.finfo(jnp.real(cores).dtype).eps

    def step(r, a):  # r (chi, chi): what the sweep carries into site i from the right
        c = jnp.einsum("asb,bc->asc", a, r).reshape(chi, d * chi)
        u, s, vh = jnp.linalg.svd(c, full_matrices=False)
        keep = (s > eps * s[0]) & (s > 0)
        rows = jnp.any(c != 0, axis=1)
        cols = jnp.any(c != 0, axis=0)
        vh = vh * (keep[:, None] & cols[None, :])
        kept = jnp.where(keep, s, 0)
        kept = kept / jnp.where(kept[0] > 0, jnp.linalg.norm(kept), 1)  # the scale is dropped:
        r_new = (u * rows[:, None]) * kept[None, :]  # long chains would overflow otherwise
        return r_new.astype(a.dtype), vh.reshape(chi, d, chi).astype(a.dtype)

    r0 = jnp.eye(chi, dtype=cores.dtype)
    r, rest = jax.lax.scan(step, r0, cores[1:], reverse=True)
    first = jnp.einsum("asb,bc->asc", cores[0], r)
    return first / jnp.linalg.norm(first), rest


def right_canonicalize(mps: MPS) -> MPS:
    """Canonical form with the centre at site 0 and unit norm, in one jitted sweep.

    A single right-to-left sweep of SVDs makes every core after site 0
    right-isometric whatever the gauge (the plain MPS's centre position is
    bookkeeping only); the carried singular values are rescaled at every site
    (784-site chains would overflow float32) and site 0 is scaled to unit norm.
    Exact zero rows and columns (padding, unused boundaries) stay exactly zero.
    Runs on the device, in the MPS's dtype.

    Examples
    --------
    >>> psi = right_canonicalize(init_mps(jax.random.key(0), 8, 4, init_std=0.5))
    >>> psi.center_site, round(float(log_norm(psi)), 6)
    (0, 0.0)
    """
    if mps.n_labels is not None:
        raise ValueError("right_canonicalize needs an MPS without a label leg")
    cores = jnp.stack([jnp.asarray(c) for c in trim_boundaries(mps.cores())])
    if cores.shape[0] == 1:
        c = cores[0]
        return MPS(cores[:0], c / jnp.linalg.norm(c), cores[:0])
    first, rest = _right_canonical_cores(cores)
    return MPS(rest[:0], first, rest)
