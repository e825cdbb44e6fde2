"""The MPS classifier model of Stoudenmire & Schwab (arXiv:1605.05775) as pure JAX functions.

Structure
---------
N sites, one per input feature, each with a physical index of dimension d
(the feature map's). Site ``k`` (the *label site*) carries an extra label index
of dimension L (the number of classes)::

    f_l(x) = e0 . A_0(x_0) ... A_{k-1}(x_{k-1}) T_l(x_k) A_{k+1}(x_{k+1}) ... A_{N-1}(x_{N-1}) . e0

with A_i(x) = sum_s phi_s(x) A_i[:, s, :] and open boundaries (the boundary
vectors are the basis vector e0, so the first and last cores act as
(1, d, chi) and (chi, d, 1) tensors). All bonds are stored padded to one bond
dimension chi (zeros beyond a bond's actual rank), so cores stack and the
forward pass is a single ``lax.scan`` whose compile time does not grow with N.

Scale
-----
For hundreds of sites the raw amplitudes f_l(x) under- or overflow. The scan
normalises its environment vector after every site and accumulates the
log-norm, so the forward pass returns the exact amplitudes as
``f(x) = exp(log_norm(x)) * fhat(x)`` with ``||fhat(x)||_2 = 1``. Every output
qtn uses (Born probabilities, argmax, the temperature-scaled softmax) is a
function of ``fhat``, so 784-site models are finite in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "MPSParams",
    "init_mps",
    "amplitudes",
    "batch_amplitudes",
    "dense_amplitudes",
    "move_label",
    "bond_dims",
    "pad_bond_dim",
]

_TINY = 1e-30


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class MPSParams:
    """Parameters of an MPS classifier: a pytree of stacked cores.

    Attributes
    ----------
    left
        Cores of sites ``0..k-1``, shape (k, chi, d, chi).
    label
        Core of the label site ``k``, shape (chi, d, L, chi).
    right
        Cores of sites ``k+1..N-1``, shape (N-k-1, chi, d, chi).
    log_temp
        Log of the softmax temperature (a scalar), used only by the softmax output rule.

    The static structure is read off the shapes: ``n_sites``, ``label_site``,
    ``bond_dim``, ``phys_dim``, ``n_classes``.
    """

    left: jax.Array
    label: jax.Array
    right: jax.Array
    log_temp: jax.Array

    def __post_init__(self):
        # Validate real constructions only: pytree maps (optax, tree_map) rebuild
        # MPSParams with arbitrary leaves, such as per-leaf scalars or placeholders.
        shapes = [getattr(a, "shape", None) for a in (self.left, self.label, self.right)]
        if any(s is None or len(s) == 0 for s in shapes):
            return
        ls, ts, rs = shapes
        if len(ts) != 4 or len(ls) != 4 or len(rs) != 4:
            raise ValueError(
                f"MPSParams expects left (k, chi, d, chi), label (chi, d, L, chi), right "
                f"(m, chi, d, chi); got shapes {ls}, {ts}, {rs}"
            )
        chi, d, _, chi2 = ts
        if chi != chi2 or ls[1:] != (chi, d, chi) or rs[1:] != (chi, d, chi):
            raise ValueError(
                f"inconsistent core shapes: left {ls}, label {ts}, right {rs} "
                f"(expected bond dimension {chi} and physical dimension {d} throughout)"
            )

    @property
    def n_sites(self) -> int:
        return self.left.shape[0] + 1 + self.right.shape[0]

    @property
    def label_site(self) -> int:
        return self.left.shape[0]

    @property
    def bond_dim(self) -> int:
        return self.label.shape[0]

    @property
    def phys_dim(self) -> int:
        return self.label.shape[1]

    @property
    def n_classes(self) -> int:
        return self.label.shape[2]

    @property
    def n_params(self) -> int:
        return int(self.left.size + self.label.size + self.right.size)


def init_mps(
    key: jax.Array,
    n_sites: int,
    n_classes: int,
    bond_dim: int,
    phys_dim: int = 2,
    *,
    label_site: int | None = None,
    init_std: float = 1e-2,
    dtype=jnp.float32,
) -> MPSParams:
    """Initialise an MPS classifier near the identity.

    Every core is ``A[:, s, :] = I`` for all s, plus Gaussian noise of standard
    deviation ``init_std``; the label core is ``T[:, s, l, :] = I`` plus noise.
    Each site then maps the environment to (sum_s phi_s) times itself, up to
    small noise, so long products neither vanish nor explode, and all classes
    start equally likely.

    Parameters
    ----------
    key
        A ``jax.random`` key.
    n_sites, n_classes, bond_dim, phys_dim
        N >= 1, L >= 2, chi >= 1, d >= 2.
    label_site
        Site carrying the label index; default ``n_sites // 2`` (the centre).

    Examples
    --------
    >>> p = init_mps(jax.random.key(0), n_sites=64, n_classes=10, bond_dim=8)
    >>> p.left.shape, p.label.shape, p.right.shape
    ((32, 8, 2, 8), (8, 2, 10, 8), (31, 8, 2, 8))
    """
    for name, v, lo in (
        ("n_sites", n_sites, 1),
        ("n_classes", n_classes, 2),
        ("bond_dim", bond_dim, 1),
        ("phys_dim", phys_dim, 1),
    ):
        if not isinstance(v, int | np.integer) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    k = n_sites // 2 if label_site is None else label_site
    if not 0 <= k < n_sites:
        raise ValueError(f"label_site must be in [0, {n_sites - 1}], got {label_site}")
    if not init_std >= 0:
        raise ValueError(f"init_std must be >= 0, got {init_std}")
    return _init_arrays(
        key, k, n_sites - k - 1, int(bond_dim), int(phys_dim), int(n_classes), init_std,
        jnp.dtype(dtype),
    )  # fmt: skip


@partial(jax.jit, static_argnames=("k", "m", "chi", "d", "n_classes", "dtype"))
def _init_arrays(key, k, m, chi, d, n_classes, init_std, dtype):
    """One compiled initialiser per structure (eager random ops would compile one by one)."""
    eye = jnp.eye(chi, dtype=dtype)
    # drawn in float32 whatever the dtype, so float32 and float64 models start identical
    size = (k + m) * chi * d * chi + chi * d * n_classes * chi
    noise = init_std * jax.random.normal(key, (size,), jnp.float32).astype(dtype)
    n_site = (k + m) * chi * d * chi
    cores = jnp.broadcast_to(eye[:, None, :], (k + m, chi, d, chi)) + noise[:n_site].reshape(
        k + m, chi, d, chi
    )
    label = jnp.broadcast_to(eye[:, None, None, :], (chi, d, n_classes, chi)) + noise[
        n_site:
    ].reshape(chi, d, n_classes, chi)
    return MPSParams(cores[:k], label, cores[k:], jnp.zeros((), dtype))


def _scan_envs(left, right, phi_left, phi_right):
    """Contract both halves toward the label site at once; returns (vL, vR, log_scale).

    The two halves are walked in lockstep by one ``lax.scan``; the shorter one is
    padded with exact identity steps (core I in slot s=0, feature e0).
    """
    chi, d = left.shape[1], left.shape[2]
    k, m = left.shape[0], right.shape[0]
    n = max(k, m)
    dtype = left.dtype
    # right cores walked from the right edge, transposed so both halves update as v @ A
    right_t = jnp.flip(right, 0).transpose(0, 3, 2, 1)
    phi_right = jnp.flip(phi_right, 0)

    def pad(cores, phis, length):
        extra = n - length
        if extra == 0:
            return cores, phis
        ident = jnp.zeros((extra, chi, d, chi), dtype).at[:, :, 0, :].set(jnp.eye(chi, dtype=dtype))
        e0 = jnp.zeros((extra, d), dtype).at[:, 0].set(1)
        # pad at the start: identity steps before the real ones leave e0 unchanged
        return jnp.concatenate([ident, cores]), jnp.concatenate([e0, phis])

    lc, lp = pad(left, phi_left, k)
    rc, rp = pad(right_t, phi_right, m)
    cores = jnp.stack([lc, rc], axis=1)  # (n, 2, chi, d, chi)
    phis = jnp.stack([lp, rp], axis=1)  # (n, 2, d)
    v0 = jnp.zeros((2, chi), dtype).at[:, 0].set(1)

    def step(carry, inp):
        v, logn = carry
        a, p = inp
        w = jnp.einsum("jsb,js->jb", jnp.einsum("ja,jasb->jsb", v, a), p)
        nrm = jnp.linalg.norm(w, axis=-1)
        safe = jnp.where(nrm > 0, nrm, 1)
        return (w / safe[:, None], logn + jnp.log(jnp.where(nrm > 0, nrm, _TINY))), None

    (v, logn), _ = jax.lax.scan(step, (v0, jnp.zeros(2, dtype)), (cores, phis))
    return v[0], v[1], logn.sum()


def amplitudes(params: MPSParams, phi: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Amplitudes of one sample: ``(fhat, log_norm)`` with f = exp(log_norm) * fhat.

    Parameters
    ----------
    params
        The model.
    phi
        Feature-mapped input of shape (N, d).

    Returns
    -------
    fhat
        Unit-norm amplitudes over the L classes, shape (L,).
    log_norm
        log ||f(x)||_2 (``-inf`` if every amplitude is exactly zero).
    """
    k = params.label_site
    vl, vr, logs = _scan_envs(params.left, params.right, phi[:k], phi[k + 1 :])
    f = jnp.einsum("a,asLb,s,b->L", vl, params.label, phi[k], vr)
    nrm = jnp.linalg.norm(f)
    fhat = f / jnp.where(nrm > 0, nrm, 1)
    return fhat, logs + jnp.log(jnp.where(nrm > 0, nrm, 0))


batch_amplitudes = jax.jit(jax.vmap(amplitudes, in_axes=(None, 0)))
"""``amplitudes`` vmapped over a batch and jitted: phi (B, N, d) -> fhat (B, L), log_norm (B,)."""


# ----------------------------------------------------------------------------- oracle, utilities


def site_cores(params: MPSParams) -> list[np.ndarray]:
    """All N cores as numpy arrays; the label core has shape (chi, d, L, chi)."""
    left = [np.asarray(c) for c in params.left]
    right = [np.asarray(c) for c in params.right]
    return left + [np.asarray(params.label)] + right


def dense_amplitudes(params: MPSParams, phi: np.ndarray) -> np.ndarray:
    """Raw amplitudes f_l(x) of one sample by plain ``numpy.einsum``, for testing on small N."""
    chi = params.bond_dim
    v = np.zeros(chi)
    v[0] = 1.0
    k = params.label_site
    for i, c in enumerate(site_cores(params)):
        if i == k:
            v = np.einsum("a,asLb,s->Lb", v, c, phi[i])
        else:
            v = np.einsum("...a,asb,s->...b", v, c, phi[i])
    e0 = np.zeros(chi)
    e0[0] = 1.0
    return v @ e0


def pad_bond_dim(params: MPSParams, bond_dim: int) -> MPSParams:
    """The same function with every bond zero-padded to ``bond_dim`` (>= the current chi)."""
    chi = params.bond_dim
    if bond_dim < chi:
        raise ValueError(f"bond_dim must be >= the current bond dimension {chi}, got {bond_dim}")
    extra = bond_dim - chi

    def pad(x, axes):
        return jnp.pad(x, [(0, extra if i in axes else 0) for i in range(x.ndim)])

    return MPSParams(
        pad(params.left, (1, 3)),
        pad(params.label, (0, 3)),
        pad(params.right, (1, 3)),
        params.log_temp,
    )


def bond_dims(params: MPSParams, tol: float = 0.0) -> list[int]:
    """Numerical rank of each of the N-1 bonds (the padding to chi is not counted)."""
    dims = []
    for c in _trim_boundaries(site_cores(params))[:-1]:
        s = np.linalg.svd(c.reshape(-1, c.shape[-1]), compute_uv=False)
        dims.append(int(np.sum(s > tol * max(s[0], 1e-300))) if s.size else 0)
    return dims


def move_label(params: MPSParams, site: int) -> MPSParams:
    """Rebuild ``params`` with the label index at ``site``.

    The label index is moved one bond at a time by an SVD of the two-site
    tensor, keeping up to chi singular values. Moving the label through a bond
    can raise its rank by up to a factor L, so this is exact only when that
    rank fits in chi (for example after :func:`pad_bond_dim`).
    """
    if not 0 <= site < params.n_sites:
        raise ValueError(f"site must be in [0, {params.n_sites - 1}], got {site}")
    cores = _trim_boundaries(site_cores(params))
    k = params.label_site
    chi = params.bond_dim
    while k != site:
        step = 1 if site > k else -1
        cores[k], cores[k + step] = _split_two_site(cores[k], cores[k + step], step, chi)
        k += step
    return _from_site_cores(cores, k, params.log_temp)


def _split_two_site(t, a, step, chi, cutoff=0.0):
    """Move the label from core t to its neighbour a (step=+1 right, -1 left)."""
    if step == 1:  # t (a, s, L, c), a (c, u, b) -> A (a, s, c'), T' (c', u, L, b)
        theta = np.einsum("asLc,cub->asLub", t, a)
        mat = theta.reshape(t.shape[0] * t.shape[1], -1)
        u, s, vh = np.linalg.svd(mat, full_matrices=False)
        r = _keep(s, chi, cutoff)
        left = _pad_bond(u[:, :r].reshape(t.shape[0], t.shape[1], r), chi, right=True)
        sv = (s[:r, None] * vh[:r]).reshape(r, t.shape[2], a.shape[1], a.shape[2])
        return left, _pad_bond(sv.transpose(0, 2, 1, 3), chi, right=False)
    # step == -1: a (a, u, c) is the left neighbour, t (c, s, L, b)
    theta = np.einsum("auc,csLb->auLsb", a, t)
    mat = theta.reshape(a.shape[0] * a.shape[1] * t.shape[2], -1)
    u, s, vh = np.linalg.svd(mat, full_matrices=False)
    r = _keep(s, chi, cutoff)
    newt = (u[:, :r] * s[:r]).reshape(a.shape[0], a.shape[1], t.shape[2], r)
    newa = vh[:r].reshape(r, t.shape[1], t.shape[3])
    return _pad_bond(newa, chi, right=False), _pad_bond(newt, chi, right=True)


def _trim_boundaries(cores):
    """Zero the rows of the first core and columns of the last that the e0 boundaries never see."""
    cores = [c.copy() for c in cores]
    cores[0][1:] = 0
    cores[-1][..., 1:] = 0
    return cores


def _keep(s, chi, cutoff):
    r = int(np.sum(s > cutoff * s[0])) if s.size and s[0] > 0 else 1
    return max(1, min(chi, r))


def _pad_bond(x, chi, right):
    axis = x.ndim - 1 if right else 0
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, chi - x.shape[axis])
    return np.pad(x, pad)


def _from_site_cores(cores, k, log_temp) -> MPSParams:
    dtype = cores[0].dtype
    chi, d = cores[k].shape[0], cores[k].shape[1]
    empty = np.zeros((0, chi, d, chi), dtype)
    left = np.stack(cores[:k]) if k else empty
    right = np.stack(cores[k + 1 :]) if k + 1 < len(cores) else empty
    return MPSParams(
        jnp.asarray(left), jnp.asarray(cores[k]), jnp.asarray(right), jnp.asarray(log_temp)
    )
