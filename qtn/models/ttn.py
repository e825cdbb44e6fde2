"""Binary tree tensor networks (TTN): layout, forward pass, norms, canonical form, oracles.

Structure
---------
A TTN over ``P = 2**K`` leaf positions (K >= 2 levels) is a pytree of K
stacked layers::

    layers[0]      (P/2,      d,     d,     chi_1)    leaf pairs -> bond
    layers[l]      (P/2**(l+1), chi_l, chi_l, chi_{l+1})
    layers[K-1]    (1,        chi,   chi,   L)        the root; L = 1 without a label

Every tensor's index order is ``(left child, right child, parent)``. Node j of
level l has the children 2j and 2j+1 of level l-1; the children of level-0
node j are the leaf positions 2j and 2j+1. Bond dimensions are capped
naturally, chi_{l+1} = min(chi, chi_l**2) with chi_0 = d, so no level stores
more than it can use. The root's parent leg carries the class label of a
classifier (L classes) or has dimension 1 for a plain state (a Born machine,
a compilation target).

Which feature sits on which leaf is the job of a :class:`TreeLayout`
(:func:`tree_layout`, in ``layout.py``): images get a quadtree grouping (horizontal pixel pairs,
then vertical pairs of pairs: 2x2 blocks, then 2x2 blocks of blocks), 1D data
a balanced tree. Sizes that are not powers of two are padded by recursive
bisection: each node splits its rectangle of pixels into ceil/floor halves
along its level's axis, and a leaf whose rectangle is empty is *padding*. A
padded leaf always receives the basis vector e0 (pixel value 0 under the
one-hot and trigonometric maps), and :func:`trim_padding` zeroes the entries
of its leg that e0 never reads, so a padded leaf takes up no norm: the norm
of the network equals the sum over the real features only.

The forward pass :func:`ttn_amplitudes` runs level by level; each level is
one batched contraction over all of its tensors (no loop over nodes), and
the vector of every node is normalised with its log-norm accumulated, so
compile time grows by one small contraction per level (K = log2 P levels)
and products over 1,024 leaves stay finite in float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from qtn._checks import check_model_bytes
from qtn.models.mps import _check_int, _xp, guarded_log, guarded_norm, pack

__all__ = [
    "TTN",
    "init_ttn",
    "random_ttn",
    "trim_padding",
    "ttn_amplitudes",
    "ttn_batch_amplitudes",
    "ttn_log_norm",
    "ttn_normalize",
    "ttn_canonicalize",
    "ttn_to_mps",
    "level_bond_dims",
]

_TINY = 1e-30


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class TTN:
    """A binary tree tensor network: one stacked array per level (see the module docstring).

    Attributes
    ----------
    layers
        ``layers[l]`` has shape (P / 2**(l+1), left, right, parent); the last is the root
        (1, chi, chi, L), L = 1 without a label leg.

    ``n_leaves`` (P), ``n_levels`` (K), ``phys_dim``, ``bond_dim`` (the largest bond),
    ``n_labels`` (None without a label leg) are read off the shapes.

    Examples
    --------
    >>> t = init_ttn(jax.random.key(0), n_leaves=16, bond_dim=4)
    >>> [a.shape for a in t.levels()]
    [(8, 2, 2, 4), (4, 4, 4, 4), (2, 4, 4, 4), (1, 4, 4, 1)]
    """

    layers: tuple

    def __post_init__(self):
        # validate real constructions only: pytree maps rebuild TTNs with arbitrary leaves
        shapes = [getattr(a, "shape", None) for a in self.layers]
        if any(s is None or len(s) == 0 for s in shapes):
            return
        if len(shapes) < 2:
            raise ValueError(f"a TTN needs at least 2 levels (4 leaves), got {len(shapes)}")
        k = len(shapes)
        for lvl, s in enumerate(shapes):
            want_nodes = 2 ** (k - 1 - lvl)
            if len(s) != 4 or s[0] != want_nodes or s[1] != s[2]:
                raise ValueError(
                    f"layer {lvl} must have shape ({want_nodes}, a, a, b), got {tuple(s)}"
                )
            if lvl and s[1] != shapes[lvl - 1][3]:
                raise ValueError(
                    f"layer {lvl} takes bonds of dimension {s[1]}, layer {lvl - 1} "
                    f"gives {shapes[lvl - 1][3]}"
                )

    @property
    def n_levels(self) -> int:
        return len(self.layers)

    @property
    def n_leaves(self) -> int:
        return 2 ** len(self.layers)

    @property
    def phys_dim(self) -> int:
        return self.layers[0].shape[1]

    @property
    def bond_dim(self) -> int:
        return max(a.shape[3] for a in self.layers[:-1])

    @property
    def n_labels(self) -> int | None:
        lab = self.layers[-1].shape[3]
        return None if lab == 1 else lab

    @property
    def n_params(self) -> int:
        return int(sum(a.size for a in self.layers))

    @property
    def dtype(self):
        return self.layers[0].dtype

    def levels(self) -> list[np.ndarray]:
        """The tensors level by level, as numpy arrays (n_nodes, left, right, parent).

        Level 0 holds the leaf pairs (its left/right legs are the physical legs of
        leaf positions 2j, 2j+1); the last level is the root, whose parent leg is
        the label (dimension 1 for a plain state).
        """
        return [np.asarray(a) for a in self.layers]

    def select_label(self, label: int) -> TTN:
        """The plain TTN of one label (the root's label leg fixed to ``label``)."""
        if self.n_labels is None:
            raise ValueError("this TTN has no label leg")
        if not 0 <= label < self.n_labels:
            raise ValueError(f"label must be in [0, {self.n_labels - 1}], got {label}")
        root = self.layers[-1][..., label : label + 1]
        return TTN((*self.layers[:-1], root))


# ----------------------------------------------------------------------------- construction


def level_bond_dims(n_levels: int, bond_dim: int, phys_dim: int) -> list[int]:
    """[d, chi_1, ..., chi_{K-1}]: the input bond dimension of each level (natural caps)."""
    dims = [phys_dim]
    for _ in range(n_levels - 1):
        dims.append(min(bond_dim, dims[-1] ** 2))
    return dims


def _n_levels(n_leaves: int) -> int:
    p = _check_int("n_leaves", n_leaves, 4)
    k = int(round(math.log2(p)))
    if 2**k != p:
        raise ValueError(f"n_leaves must be a power of two >= 4, got {n_leaves}")
    return k


_BLOCK = 2**15


@jax.jit
def _normal_block(key, i):
    return jax.random.normal(jax.random.fold_in(key, i), (_BLOCK,), jnp.float32)


def _normal(key, size: int) -> np.ndarray:
    """``size`` standard normals from ``key`` in fixed blocks: one compile for every size."""
    blocks = [np.asarray(_normal_block(key, i)) for i in range(-(-size // _BLOCK))]
    return np.concatenate(blocks)[:size] if blocks else np.zeros(0, np.float32)


def init_ttn(
    key: jax.Array,
    n_leaves: int,
    bond_dim: int,
    phys_dim: int = 2,
    *,
    n_labels: int | None = None,
    init_std: float = 1e-2,
    padded=None,
    dtype=jnp.float32,
) -> TTN:
    """A TTN near the constant map, for training.

    Every tensor is ``T[a, b, c] = delta_{a0} delta_{b0} delta_{c0}`` (leaf pairs:
    ``T[s, t, 0] = 1`` for all s, t; the root ``T[0, 0, l] = 1`` for every label)
    plus Gaussian noise of standard deviation ``init_std``, so the network starts
    as (almost) the same function of every input: all labels equally likely, and
    as a Born machine the uniform distribution. ``padded`` (a boolean mask of
    the leaves) zeroes what padding leaves never read (:func:`trim_padding`).

    Examples
    --------
    >>> t = init_ttn(jax.random.key(0), 8, bond_dim=3, n_labels=5)
    >>> t.layers[-1].shape
    (1, 3, 3, 5)
    """
    k = _n_levels(n_leaves)
    chi = _check_int("bond_dim", bond_dim, 1)
    d = _check_int("phys_dim", phys_dim, 2)
    lab = 1 if n_labels is None else _check_int("n_labels", n_labels, 2)
    if not (isinstance(init_std, int | float) and 0 <= init_std < np.inf):
        raise ValueError(f"init_std must be a finite number >= 0, got {init_std!r}")
    dims = level_bond_dims(k, chi, d)
    shapes = [
        (2 ** (k - 1 - lvl), dims[lvl], dims[lvl], dims[lvl + 1] if lvl + 1 < k else lab)
        for lvl in range(k)
    ]
    sizes = [int(np.prod(s)) for s in shapes]
    # float64 noise, the base tensors and the result at once
    check_model_bytes(f"a TTN of {n_leaves} leaves with bond_dim={chi} (phys_dim {d})",
                      3 * 8 * sum(sizes), "lower bond_dim")  # fmt: skip
    # one random draw (one compile per total size), drawn in float32 whatever the dtype
    noise = np.asarray(_normal(key, sum(sizes)), dtype=np.float64) * init_std
    offsets = np.cumsum([0, *sizes])
    layers = []
    for lvl, shape in enumerate(shapes):
        base = np.zeros(shape)
        if lvl == 0:
            base[:, :, :, 0] = 1.0
        else:
            base[:, 0, 0, :] = 1.0 if lvl == k - 1 else 0.0
            base[:, 0, 0, 0] = 1.0
        base += noise[offsets[lvl] : offsets[lvl + 1]].reshape(shape)
        layers.append(jnp.asarray(base, dtype=jnp.dtype(dtype)))
    t = TTN(tuple(layers))
    return t if padded is None else trim_padding(t, padded)


def random_ttn(
    seed, n_leaves: int, bond_dim: int, phys_dim: int = 2, *, n_labels: int | None = None,
    complex: bool = False,
) -> TTN:  # fmt: skip
    """A random normalised TTN (Gaussian tensors, canonical toward the root), float64/complex128."""
    k = _n_levels(n_leaves)
    chi = _check_int("bond_dim", bond_dim, 1)
    d = _check_int("phys_dim", phys_dim, 2)
    lab = 1 if n_labels is None else _check_int("n_labels", n_labels, 2)
    rng = np.random.default_rng(seed)
    dims = level_bond_dims(k, chi, d)
    layers = []
    for lvl in range(k):
        shape = (2 ** (k - 1 - lvl), dims[lvl], dims[lvl], dims[lvl + 1] if lvl + 1 < k else lab)
        t = rng.normal(size=shape)
        if complex:
            t = t + 1j * rng.normal(size=shape)
        layers.append(t)
    return ttn_normalize(ttn_canonicalize(TTN(tuple(layers))))


def trim_padding(ttn: TTN, padded) -> TTN:
    """Zero the entries of padding leaves' legs that their input e0 never reads (xp-generic).

    ``padded`` is a boolean mask of the P leaves (``TreeLayout.padded``). Afterwards
    the network's norm is the sum over the real leaves only, with padding fixed to 0.
    """
    padded = np.asarray(padded, dtype=bool)
    if padded.shape != (ttn.n_leaves,):
        raise ValueError(f"padded must be a mask of the {ttn.n_leaves} leaves, got {padded.shape}")
    if not padded.any():
        return ttn
    bottom = ttn.layers[0]
    xp = _xp(bottom)
    d = bottom.shape[1]
    keep = np.ones((len(padded), d), dtype=bool)
    keep[padded, 1:] = False
    kl, kr = keep[0::2], keep[1::2]  # (P/2, d) each
    mask = (kl[:, :, None] & kr[:, None, :])[..., None]
    new = bottom * xp.asarray(mask.astype(np.dtype(bottom.dtype.name)))
    return TTN((new, *ttn.layers[1:]))


# ----------------------------------------------------------------------------- forward pass


def _contract_level(t, left, right):
    """Children vectors (j, a), (j, b) through tensors (j, a, b, c) -> (j, c)."""
    return jnp.einsum("jbc,jb->jc", jnp.einsum("ja,jabc->jbc", left, t), right)


def ttn_amplitudes(ttn: TTN, phi: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The forward pass for one sample: ``(fhat, log_norm)`` with f = exp(log_norm) * fhat.

    Parameters
    ----------
    ttn
        The model; with a label leg, L amplitudes, else one.
    phi
        Leaf vectors (P, d), padding leaves e0 (:meth:`TreeLayout.to_leaves`).

    Each level is one batched contraction over all its tensors; the node vectors
    are normalised after every level and their log-norms summed, so the raw
    amplitudes may be far outside the float range.
    """
    v = phi.astype(ttn.dtype)
    logn = jnp.zeros((), jnp.real(v).dtype)
    k = ttn.n_levels
    for lvl, t in enumerate(ttn.layers):
        w = _contract_level(t, v[0::2], v[1::2])
        if lvl < k - 1:
            nrm, safe = guarded_norm(w, axis=1)
            v = w / safe[:, None]
            logn = logn + jnp.sum(guarded_log(nrm, _TINY))
        else:
            v = w
    f = v[0]
    nrm, safe = guarded_norm(f)
    return f / safe, logn + guarded_log(nrm, 0)


ttn_batch_amplitudes = jax.jit(jax.vmap(ttn_amplitudes, in_axes=(None, 0)))
"""``ttn_amplitudes`` vmapped over a batch and jitted: phi (B, P, d) -> (B, L), (B,)."""


# ----------------------------------------------------------------------------- norms


def _norm_envs(ttn: TTN, weights=None):
    """Bottom-up norm environments E (j, c, c') of every level, each normalised.

    ``weights`` (P, d) restricts/weights each leaf's physical sum (None: plain sum).
    Returns (list of per-level envs, total log scale); xp-generic.
    """
    xp = _xp(ttn.layers[0])
    t0 = ttn.layers[0]
    if weights is None:
        env = xp.einsum("jstc,jstd->jcd", t0, xp.conj(t0))
    else:
        w = xp.asarray(weights, dtype=t0.dtype)
        env = xp.einsum("js,jt,jstc,jstd->jcd", w[0::2], w[1::2], t0, xp.conj(t0))
    envs, logs = [], 0.0
    for lvl in range(ttn.n_levels):
        if lvl:
            t = ttn.layers[lvl]
            el, er = envs[-1][0::2], envs[-1][1::2]
            x = xp.einsum("jax,jabc->jxbc", el, t)
            x = xp.einsum("jby,jxbc->jxyc", er, x)
            env = xp.einsum("jxyc,jxyd->jcd", x, xp.conj(t))
        nrm = xp.sqrt(xp.sum(xp.abs(env) ** 2, axis=(1, 2)))
        safe = xp.where(nrm > 0, nrm, 1)
        env = env / safe[:, None, None]
        logs = logs + xp.sum(xp.log(xp.where(nrm > 0, nrm, _TINY)))
        envs.append(env)
    return envs, logs


def ttn_log_norm(ttn: TTN):
    """log ||psi|| (the label leg counted as part of the state), xp-generic and differentiable.

    Bottom-up norm environments, normalised at every level; finite for 1,024 leaves.
    """
    xp = _xp(ttn.layers[0])
    envs, logs = _norm_envs(ttn)
    tr = xp.real(xp.trace(envs[-1][0]))
    return 0.5 * (xp.log(xp.abs(tr)) + logs)


def ttn_normalize(ttn: TTN) -> TTN:
    """The TTN scaled to unit norm (the root rescaled)."""
    xp = _xp(ttn.layers[0])
    scale = xp.exp(-ttn_log_norm(ttn)).astype(ttn.dtype)
    return TTN((*ttn.layers[:-1], ttn.layers[-1] * scale))


def ttn_canonicalize(ttn: TTN, *, normalize: bool = False) -> TTN:
    """Canonical form toward the root: every non-root tensor an isometry, the norm at the root.

    For each tensor below the root, sum_{a,b} T[a,b,c] conj(T[a,b,c']) = delta_{cc'} on
    its used bonds (zero on unused ones), so the subtree below every bond is an
    orthonormal set of states. Bottom-up batched SVDs on the host (numpy), the
    remainder R absorbed into the parent; the state is unchanged. Exact zero
    rows (padding legs) stay exactly zero, as in :func:`qtn.models.split`.
    With ``normalize`` the remainders are rescaled on the way and the state
    returned has unit norm (the norm of a deep trained tree can exceed the
    float range; the direction never does).
    """
    layers = [np.array(a) for a in ttn.layers]
    for lvl in range(len(layers) - 1):
        t = layers[lvl]
        j, a, b, c = t.shape
        mat = t.reshape(j, a * b, c)
        u, s, vh = np.linalg.svd(mat, full_matrices=False)  # (j, ab, r), (j, r), (j, r, c)
        r = s.shape[1]
        eps = 16 * np.finfo(np.dtype(s.dtype.name)).eps
        keep = (s > eps * np.maximum(s[:, :1], _TINY)) & (s > 0)
        rows = np.any(mat != 0, axis=2)
        u = u * keep[:, None, :] * rows[:, :, None]
        rmat = (s * keep)[:, :, None] * vh  # (j, r, c)
        if normalize:
            top = np.max(s * keep, axis=1)
            rmat = rmat / np.where(top > 0, top, 1)[:, None, None]
        if r < c:  # pad the bond back to c
            u = np.concatenate([u, np.zeros((j, a * b, c - r), u.dtype)], axis=2)
            rmat = np.concatenate([rmat, np.zeros((j, c - r, c), rmat.dtype)], axis=1)
        layers[lvl] = u.reshape(j, a, b, c)
        parent = layers[lvl + 1]
        parent = np.einsum("jxa,jabc->jxbc", rmat[0::2], parent)
        parent = np.einsum("jyb,jxbc->jxyc", rmat[1::2], parent)
        layers[lvl + 1] = parent
    if normalize:
        root = layers[-1]
        nrm = np.linalg.norm(root)
        layers[-1] = root / (nrm if nrm > 0 else 1)
    return TTN(tuple(layers))


# ----------------------------------------------------------------------------- to an MPS

#: the largest intermediate bond :func:`ttn_to_mps` builds before compressing
MAX_MERGE_BOND = 4096


def _compress_cores(cores, cutoff, max_bond):
    """Left-to-right QR, then right-to-left truncated SVD of a chain whose last core's right
    leg is left open. Returns (cores, discarded weight relative to the norm squared)."""
    cores = [np.asarray(c) for c in cores]
    for i in range(len(cores) - 1):
        dl, d, dr = cores[i].shape
        q, r = np.linalg.qr(cores[i].reshape(dl * d, dr))
        cores[i] = q.reshape(dl, d, q.shape[1])
        cores[i + 1] = np.einsum("ab,bsc->asc", r, cores[i + 1])
    total = float(np.linalg.norm(cores[-1]) ** 2)
    discarded = 0.0
    for i in range(len(cores) - 1, 0, -1):
        dl, d, dr = cores[i].shape
        u, s, vh = np.linalg.svd(cores[i].reshape(dl, d * dr), full_matrices=False)
        keep = max(1, int(np.sum(s > cutoff * s[0]))) if s[0] > 0 else 1
        if max_bond is not None:
            keep = min(keep, max_bond)
        discarded += float(np.sum(s[keep:] ** 2))
        cores[i] = vh[:keep].reshape(keep, d, dr)
        cores[i - 1] = np.einsum("asb,bc->asc", cores[i - 1], u[:, :keep] * s[:keep])
    return cores, discarded / total if total > 0 else 0.0


def ttn_to_mps(ttn: TTN, *, cutoff: float = 1e-13, max_bond: int | None = None):
    """The TTN's state as an :class:`~qtn.models.MPS` over its leaf positions (numpy).

    Subtrees are merged bottom-up: the right subtree's chain carries the left child's bond
    index until the parent tensor is contracted into its last core, and each merged chain is
    compressed by truncated SVDs (singular values below ``cutoff`` times the largest are
    exact zeros up to rounding; ``max_bond`` truncates further). Returns ``(mps, discarded)``
    with the largest relative discarded weight of any compression. A label leg is kept at
    the last site. An intermediate bond above 4,096 raises ``ValueError`` before allocating.

    Examples
    --------
    >>> t = random_ttn(0, n_leaves=8, bond_dim=2)
    >>> mps, discarded = ttn_to_mps(t)
    >>> bool(np.allclose(to_dense(mps), ttn_to_dense(t)))  # doctest: +SKIP
    True
    """
    if not isinstance(ttn, TTN):
        raise ValueError(f"ttn must be a qtn TTN, got {type(ttn).__name__}")
    if isinstance(cutoff, bool) or not isinstance(cutoff, int | float) or not 0 <= cutoff < 1:
        raise ValueError(f"cutoff must be a number in [0, 1), got {cutoff!r}")
    if max_bond is not None:
        max_bond = _check_int("max_bond", max_bond, 1)
    levels = ttn.levels()
    worst = 0.0

    def chain(lvl, j):
        nonlocal worst
        t = levels[lvl][j]
        a, b, c = t.shape
        if lvl == 0:
            u, s, vh = np.linalg.svd(t.reshape(a, b * c), full_matrices=False)
            return [u.reshape(1, a, -1), (s[:, None] * vh).reshape(-1, b, c)]
        left, right = chain(lvl - 1, 2 * j), chain(lvl - 1, 2 * j + 1)
        carried = left[-1].shape[2]
        biggest = carried * max(r.shape[2] for r in right[:-1])
        if biggest > MAX_MERGE_BOND:
            raise ValueError(
                f"ttn_to_mps: merging the subtrees of node ({lvl}, {j}) needs a bond of "
                f"{biggest} > {MAX_MERGE_BOND}; pass max_bond=... to truncate"
            )
        eye = np.eye(carried, dtype=t.dtype)
        merged = list(left)
        for i, core in enumerate(right):
            dl, d, dr = core.shape
            if i == len(right) - 1:
                new = np.einsum("xsb,abc->axsc", core, t).reshape(carried * dl, d, c)
            else:
                new = np.einsum("ae,xsy->axsey", eye, core).reshape(carried * dl, d, carried * dr)
            merged.append(new)
        merged, disc = _compress_cores(merged, cutoff, max_bond)
        worst = max(worst, disc)
        return merged

    cores = chain(len(levels) - 1, 0)
    if ttn.n_labels is not None:  # (D, d, L) -> (D, d, L, 1): the label leg at the last site
        cores[-1] = cores[-1][:, :, :, None]
    return pack(cores, center=len(cores) - 1), worst
