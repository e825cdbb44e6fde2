"""The matrix product state core that every qtn model and compiler uses.

Structure
---------
An open-boundary MPS on N sites with physical dimension d, stored as a pytree
of zero-padded stacked cores around one distinguished site, the *centre* k::

    left   (k, chi, d, chi)          sites 0 .. k-1
    center (chi, d, chi)             site k, or (chi, d, L, chi) with a label leg
    right  (N-k-1, chi, d, chi)      sites k+1 .. N-1

The optional label leg (L classes) rides on the centre: the classifier of
Stoudenmire & Schwab carries it there, and sweeps move it with the same
two-site SVD that adapts bond dimensions. A Born machine or a compilation
target has no label. The boundary vectors are the basis vector e0, so the
first core's rows and the last core's columns beyond 0 are unused
(:func:`trim_boundaries` zeros them). All bonds are padded to one bond
dimension chi, so cores stack, the forward pass is one ``lax.scan`` whose
compile time does not grow with N, and sweep updates have static shapes.

What lives here: canonical forms (:func:`canonicalize`, :func:`move_center`),
two-site :func:`merge` / :func:`split` by truncated SVD (``max_bond``,
``cutoff``, returning the discarded weight), :func:`log_norm` / :func:`normalize`,
:func:`pack` / :func:`unpack` of ragged cores, the forward pass
:func:`amplitudes` with log-norm tracking. Dense oracles for tests are in
:mod:`qtn.models.dense`.
Conversion to and from quimb is in :mod:`qtn.models.interop`.

Functions marked *xp-generic* work on numpy and JAX arrays alike (and under
``jax.jit``); the others run on the host in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from qtn._checks import check_model_bytes

__all__ = [
    "MPS",
    "init_mps",
    "random_mps",
    "pack",
    "unpack",
    "trim_boundaries",
    "reverse_cores",
    "merge",
    "split",
    "move_center",
    "canonicalize",
    "log_norm",
    "normalize",
    "amplitudes",
    "batch_amplitudes",
    "bond_dims",
    "pad_bond_dim",
]

_TINY = 1e-30


def guarded_norm(x, axis=None, xp=jnp):
    """(norm, safe): the 2-norm of ``x`` and a divisor that is 1 where the norm is 0.

    ``linalg.norm`` has no gradient at 0 (x / ||x|| is 0/0), and a ``where`` around it
    does not help: the unselected branch's NaN still multiplies into the gradient. Here
    the square root only ever sees a positive number, so an environment vector that is
    exactly zero gets a finite (zero) gradient.
    """
    sq = xp.sum(xp.real(x * xp.conj(x)), axis=axis)
    pos = sq > 0
    root = xp.sqrt(xp.where(pos, sq, 1))
    return xp.where(pos, root, 0), root


def guarded_log(nrm, floor):
    """log(nrm) where nrm > 0, else log(floor), with a finite gradient at nrm == 0."""
    xp = _xp(nrm)
    pos = nrm > 0
    return xp.where(
        pos, xp.log(xp.where(pos, nrm, 1)), float(np.log(floor)) if floor > 0 else -np.inf
    )  # a Python float: weakly typed, keeps nrm's dtype


def _xp(x):
    return jnp if isinstance(x, jax.Array) else np


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class MPS:
    """An open-boundary MPS: zero-padded stacked cores around the centre site.

    Attributes
    ----------
    left
        Cores of sites ``0 .. k-1``, shape (k, chi, d, chi).
    center
        Core of the centre site ``k``: (chi, d, chi), or (chi, d, L, chi) with a label leg.
    right
        Cores of sites ``k+1 .. N-1``, shape (N-k-1, chi, d, chi).

    ``n_sites``, ``center_site``, ``bond_dim``, ``phys_dim`` and ``n_labels``
    (None without a label leg) are read off the shapes.

    Examples
    --------
    >>> psi = random_mps(0, n_sites=6, bond_dim=4)
    >>> psi.n_sites, psi.bond_dim, psi.n_labels
    (6, 4, None)
    >>> [c.shape for c in psi.to_cores()][:2]
    [(1, 2, 2), (2, 2, 4)]
    """

    left: jax.Array
    center: jax.Array
    right: jax.Array

    def __post_init__(self):
        # validate real constructions only: pytree maps (optax, tree_map) rebuild MPS
        # with arbitrary leaves, such as per-leaf scalars or placeholders
        shapes = [getattr(a, "shape", None) for a in (self.left, self.center, self.right)]
        if any(s is None or len(s) == 0 for s in shapes):
            return
        ls, cs, rs = shapes
        if len(ls) != 4 or len(rs) != 4 or len(cs) not in (3, 4):
            raise ValueError(
                f"MPS expects left (k, chi, d, chi), center (chi, d, chi) or (chi, d, L, chi), "
                f"right (m, chi, d, chi); got shapes {ls}, {cs}, {rs}"
            )
        chi, d = cs[0], cs[1]
        if cs[-1] != chi or ls[1:] != (chi, d, chi) or rs[1:] != (chi, d, chi):
            raise ValueError(
                f"inconsistent core shapes: left {ls}, center {cs}, right {rs} "
                f"(expected bond dimension {chi} and physical dimension {d} throughout)"
            )

    @property
    def n_sites(self) -> int:
        return self.left.shape[0] + 1 + self.right.shape[0]

    @property
    def center_site(self) -> int:
        return self.left.shape[0]

    @property
    def bond_dim(self) -> int:
        return self.center.shape[0]

    @property
    def phys_dim(self) -> int:
        return self.center.shape[1]

    @property
    def n_labels(self) -> int | None:
        return self.center.shape[2] if self.center.ndim == 4 else None

    @property
    def n_params(self) -> int:
        return int(self.left.size + self.center.size + self.right.size)

    @property
    def dtype(self):
        return self.center.dtype

    def cores(self) -> list:
        """The N padded cores (the centre's label leg kept), as arrays of the stored kind."""
        return [*list(self.left), self.center, *list(self.right)]

    @classmethod
    def from_cores(cls, cores: list, center: int) -> MPS:
        """Stack padded cores (xp-generic); ``cores[center]`` may carry the label leg."""
        xp = _xp(cores[center])
        chi, d = cores[center].shape[0], cores[center].shape[1]
        empty = xp.zeros((0, chi, d, chi), cores[center].dtype)
        left = xp.stack(cores[:center]) if center else empty
        right = xp.stack(cores[center + 1 :]) if center + 1 < len(cores) else empty
        return cls(left, cores[center], right)

    def select_label(self, label: int) -> MPS:
        """The plain MPS of one label (the centre's label leg fixed to ``label``)."""
        if self.n_labels is None:
            raise ValueError("this MPS has no label leg")
        if not 0 <= label < self.n_labels:
            raise ValueError(f"label must be in [0, {self.n_labels - 1}], got {label}")
        return MPS(self.left, self.center[:, :, label, :], self.right)

    def to_cores(self) -> list[np.ndarray]:
        """Ragged numpy cores (D_left, d, D_right), edge bonds 1, padding removed (no label leg)."""
        if self.n_labels is not None:
            raise ValueError("this MPS has a label leg: call select_label(l).to_cores()")
        return unpack(self)

    def to_quimb(self, *, per_class: bool = False):
        """A quimb ``MatrixProductState`` (see :func:`qtn.models.to_quimb`)."""
        from qtn.models.interop import to_quimb

        return to_quimb(self, per_class=per_class)

    @classmethod
    def from_quimb(cls, q, *, bond_dim: int | None = None) -> MPS:
        """From a quimb ``MatrixProductState`` (see :func:`qtn.models.from_quimb`)."""
        from qtn.models.interop import from_quimb

        return from_quimb(q, bond_dim=bond_dim)


def _check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def init_mps(
    key: jax.Array,
    n_sites: int,
    bond_dim: int,
    phys_dim: int = 2,
    *,
    n_labels: int | None = None,
    center: int | None = None,
    init_std: float = 1e-2,
    dtype=jnp.float32,
) -> MPS:
    """An MPS near the identity map, for training.

    Every core is ``A[:, s, :] = I`` for all s plus Gaussian noise of standard
    deviation ``init_std`` (the label core ``T[:, s, l, :] = I`` plus noise), so
    each site maps an environment to (sum_s phi_s) times itself up to small noise:
    long products neither vanish nor explode, and all labels start equally likely.

    Examples
    --------
    >>> p = init_mps(jax.random.key(0), n_sites=64, bond_dim=8, n_labels=10)
    >>> p.left.shape, p.center.shape, p.right.shape
    ((32, 8, 2, 8), (8, 2, 10, 8), (31, 8, 2, 8))
    """
    n = _check_int("n_sites", n_sites, 1)
    chi = _check_int("bond_dim", bond_dim, 1)
    d = _check_int("phys_dim", phys_dim, 2)
    n_lab = None if n_labels is None else _check_int("n_labels", n_labels, 2)
    k = n // 2 if center is None else center
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k < n:
        raise ValueError(f"center must be an integer in [0, {n - 1}], got {center!r}")
    if not (isinstance(init_std, int | float) and 0 <= init_std < np.inf):
        raise ValueError(f"init_std must be a finite number >= 0, got {init_std!r}")
    lab = 1 if n_lab is None else n_lab
    size = ((n - 1) * chi * d * chi + chi * d * lab * chi) * jnp.dtype(dtype).itemsize
    # the initialiser holds the noise, the identity cores and their sum at once
    what = f"an MPS of {n} sites with bond_dim={chi} (phys_dim {d}, {lab} label(s))"
    check_model_bytes(what, 3 * size, "lower bond_dim")
    return _init_arrays(key, int(k), n - int(k) - 1, chi, d, n_lab, float(init_std),
                        jnp.dtype(dtype))  # fmt: skip


@partial(jax.jit, static_argnames=("k", "m", "chi", "d", "n_labels", "dtype"))
def _init_arrays(key, k, m, chi, d, n_labels, init_std, dtype):
    """One compiled initialiser per structure (eager random ops would compile one by one)."""
    eye = jnp.eye(chi, dtype=dtype)
    lab = 1 if n_labels is None else n_labels
    size = (k + m) * chi * d * chi + chi * d * lab * chi
    # drawn in float32 whatever the dtype, so float32 and float64 models start identical
    noise = init_std * jax.random.normal(key, (size,), jnp.float32).astype(dtype)
    n_site = (k + m) * chi * d * chi
    cores = jnp.broadcast_to(eye[:, None, :], (k + m, chi, d, chi))
    cores = cores + noise[:n_site].reshape(k + m, chi, d, chi)
    center = jnp.broadcast_to(eye[:, None, None, :], (chi, d, lab, chi))
    center = center + noise[n_site:].reshape(chi, d, lab, chi)
    if n_labels is None:
        center = center[:, :, 0, :]
    return MPS(cores[:k], center, cores[k:])


def random_mps(
    seed, n_sites: int, bond_dim: int, phys_dim: int = 2, *, complex: bool = False
) -> MPS:
    """A random normalised MPS (Gaussian cores, canonicalised at site 0), float64 or complex128.

    Bonds are min(bond_dim, d**i, d**(N-i)) inside the padding.
    """
    n = _check_int("n_sites", n_sites, 1)
    chi = _check_int("bond_dim", bond_dim, 1)
    d = _check_int("phys_dim", phys_dim, 2)
    item = 16 if complex else 8
    # packed with every bond padded to bond_dim; canonicalising holds about three copies
    check_model_bytes(f"a random MPS of {n} sites with bond_dim={chi} (phys_dim {d})",
                      3 * n * chi * d * chi * item, "lower bond_dim")  # fmt: skip
    rng = np.random.default_rng(seed)
    dims = [1] + [min(chi, d**i, d ** (n - i)) for i in range(1, n)] + [1]
    cores = []
    for i in range(n):
        shape = (dims[i], d, dims[i + 1])
        c = rng.normal(size=shape)
        if complex:
            c = c + 1j * rng.normal(size=shape)
        # variance 1/(d D_right) keeps the expected squared norm at 1 site by site (the
        # normalised state is unchanged), so long chains do not overflow while canonicalising
        cores.append(c / np.sqrt(d * dims[i + 1] * (2 if complex else 1)))
    return normalize(canonicalize(pack(cores, center=0, bond_dim=chi), 0))


# ----------------------------------------------------------------------------- packing


def trim_boundaries(cores: list) -> list:
    """Zero the first core's rows and the last core's columns that the e0 boundaries never
    see, so they take up no bond rank (xp-generic; returns a new list)."""
    cores = list(cores)
    first = cores[0]
    if _xp(first) is jnp:
        cores[0] = first.at[1:].set(0)
        cores[-1] = cores[-1].at[..., 1:].set(0)
    else:
        cores[0] = np.array(first)
        cores[0][1:] = 0
        cores[-1] = np.array(cores[-1] if len(cores) > 1 else cores[0])
        cores[-1][..., 1:] = 0
    return cores


def unpack(mps: MPS) -> list[np.ndarray]:
    """Ragged numpy cores: edge bonds 1, trailing zero padding of every bond removed."""
    cores = [np.asarray(c) for c in trim_boundaries(mps.cores())]
    cores[0], cores[-1] = cores[0][:1], cores[-1][..., :1]
    for i in range(len(cores) - 1):
        a, b = cores[i], cores[i + 1]
        used = np.flatnonzero(np.any(a.reshape(-1, a.shape[-1]) != 0, axis=0)
                              | np.any(b.reshape(b.shape[0], -1) != 0, axis=1))  # fmt: skip
        r = max(int(used[-1]) + 1, 1) if used.size else 1
        cores[i], cores[i + 1] = a[..., :r], b[:r]
    return cores


def pack(cores: list, *, center: int = 0, bond_dim: int | None = None) -> MPS:
    """An :class:`MPS` from ragged cores (D_left, d, [L,] D_right), zero-padded to ``bond_dim``.

    Edge bonds may have dimension 1. ``cores[center]`` may carry a label leg.
    """
    cores = [np.asarray(c) for c in cores]
    if not cores:
        raise ValueError("cores must not be empty")
    largest = max(max(c.shape[0], c.shape[-1]) for c in cores)
    chi = largest if bond_dim is None else _check_int("bond_dim", bond_dim, 1)
    if chi < largest:
        raise ValueError(f"bond_dim={bond_dim} is smaller than the largest bond ({largest})")
    for i, c in enumerate(cores):
        if c.ndim != (4 if i == center and c.ndim == 4 else 3):
            raise ValueError(f"core {i} has shape {c.shape}; expected (D_left, d, D_right)")
        if i and c.shape[0] != cores[i - 1].shape[-1]:
            raise ValueError(f"bond {i - 1}-{i}: dimensions {cores[i - 1].shape[-1]} and "
                             f"{c.shape[0]} differ")  # fmt: skip
    out = []
    for c in cores:
        pad = [(0, chi - c.shape[0])] + [(0, 0)] * (c.ndim - 2) + [(0, chi - c.shape[-1])]
        out.append(np.pad(c, pad))
    return MPS.from_cores(out, center)


def reverse_cores(cores: list) -> list:
    """The mirrored chain: site order reversed, each core's bonds swapped (xp-generic)."""
    return [c.transpose(3, 1, 2, 0) if c.ndim == 4 else c.transpose(2, 1, 0) for c in cores[::-1]]


def pad_bond_dim(mps: MPS, bond_dim: int) -> MPS:
    """The same state with every bond zero-padded to ``bond_dim`` (>= the current chi)."""
    chi = mps.bond_dim
    if bond_dim < chi:
        raise ValueError(f"bond_dim must be >= the current bond dimension {chi}, got {bond_dim}")
    extra = bond_dim - chi

    def pad(x, axes):
        return jnp.pad(x, [(0, extra if i in axes else 0) for i in range(x.ndim)])

    c = mps.center
    return MPS(pad(mps.left, (1, 3)), pad(c, (0, c.ndim - 1)), pad(mps.right, (1, 3)))


def bond_dims(mps: MPS, tol: float = 0.0) -> list[int]:
    """Numerical rank of each of the N-1 bonds (the padding is not counted)."""
    dims = []
    for c in [np.asarray(c) for c in trim_boundaries(mps.cores())][:-1]:
        s = np.linalg.svd(c.reshape(-1, c.shape[-1]), compute_uv=False)
        dims.append(int(np.sum(s > tol * max(s[0], 1e-300))) if s.size else 0)
    return dims


# ----------------------------------------------------------------------------- two-site updates


def merge(a, b):
    """The two-site tensor theta (D_l, d_a, d_b, L, D_r) of neighbouring cores (xp-generic).

    Either core may carry the label leg (at most one); L = 1 without one.
    """
    xp = _xp(a)
    a4 = a if a.ndim == 4 else a[:, :, None, :]
    b4 = b if b.ndim == 4 else b[:, :, None, :]
    return xp.einsum("asLc,cuMb->asuLMb", a4, b4).reshape(
        a4.shape[0], a4.shape[1], b4.shape[1], a4.shape[2] * b4.shape[2], b4.shape[3]
    )


def split(
    theta,
    *,
    move: str,
    max_bond: int,
    cutoff: float = 0.0,
    normalize: bool = False,
    qr_svd: bool = False,
):
    """Split theta (D_l, d_a, d_b, L, D_r) by a truncated SVD (xp-generic, static shapes).

    ``move="right"``: the left core becomes left-isometric (D_l, d_a, chi) and the
    singular values and the label go right, (chi, d_b, [L,] D_r). ``move="left"``:
    the mirror image. At most ``max_bond`` values are kept, those below
    ``cutoff`` times the largest (or below rounding) are dropped; outputs are
    zero-padded to ``max_bond``. With ``normalize`` the kept values are rescaled
    to unit norm. Returns ``(a, b, discarded_weight, rank)``; the label leg is
    dropped from the output when L = 1. ``qr_svd`` (JAX arrays) uses LAPACK's QR-iteration
    SVD (gesvd) instead of divide and conquer (gesdd): slower, but it converges on the rare
    matrices where gesdd fails and JAX returns NaN.
    """
    xp = _xp(theta)
    dl, da, db, n_lab, dr = theta.shape
    chi = max_bond
    if move == "right":
        mat = theta.reshape(dl * da, db * n_lab * dr)
    elif move == "left":
        mat = theta.transpose(0, 1, 3, 2, 4).reshape(dl * da * n_lab, db * dr)
    else:
        raise ValueError(f"move must be 'right' or 'left', got {move!r}")
    if qr_svd and xp is jnp:
        u, s, vh = jax.lax.linalg.svd(
            mat, full_matrices=False, algorithm=jax.lax.linalg.SvdAlgorithm.QR
        )
    else:
        u, s, vh = xp.linalg.svd(mat, full_matrices=False)
    k = s.shape[0]
    if k < chi:  # pad to the static bond dimension
        u = xp.concatenate([u, xp.zeros((u.shape[0], chi - k), u.dtype)], axis=1)
        s = xp.concatenate([s, xp.zeros((chi - k,), s.dtype)])
        vh = xp.concatenate([vh, xp.zeros((chi - k, vh.shape[1]), vh.dtype)], axis=0)
    total = xp.sum(s**2)
    u, s, vh = u[:, :chi], s[:chi], vh[:chi]
    # singular values below the dtype's rounding level are noise, whatever cutoff says
    eff = max(float(cutoff), 16 * float(np.finfo(np.dtype(s.dtype.name)).eps))
    keep = (s > eff * s[0]) & (s > 0)
    kept = xp.where(keep, s, 0)
    discarded = 1.0 - xp.sum(kept**2) / xp.where(total > 0, total, 1)
    if normalize:
        kept = kept / xp.where(xp.sum(kept**2) > 0, xp.sqrt(xp.sum(kept**2)), 1)
    # rows/columns of theta that are exactly zero (padding, unused boundaries) stay exactly
    # zero: LAPACK leaves rounding noise there, which would look like extra bond rank
    rows = xp.any(mat != 0, axis=1)
    cols = xp.any(mat != 0, axis=0)
    u = u * (keep[None, :] & rows[:, None])
    vh = vh * (keep[:, None] & cols[None, :])
    if move == "right":
        a = u.reshape(dl, da, chi)
        b = (kept[:, None] * vh).reshape(chi, db, n_lab, dr)
        b = b[:, :, 0, :] if n_lab == 1 else b
    else:
        a = (u * kept[None, :]).reshape(dl, da, n_lab, chi)
        a = a[:, :, 0, :] if n_lab == 1 else a
        b = vh.reshape(chi, db, dr)
    return a, b, discarded, xp.sum(keep)


def move_center(mps: MPS, site: int, *, max_bond: int | None = None, cutoff: float = 0.0):
    """Move the centre (and the label leg with it) to ``site``: returns ``(mps, discarded)``.

    Each step is a two-site SVD split, so the cores passed on the way become
    isometries. At most ``max_bond`` (default the bond dimension) singular values
    are kept at each bond passed (moving a label leg through a bond can raise its
    rank up to a factor L); the largest discarded weight is returned (0.0 when exact).
    A ``max_bond`` below the bond dimension truncates; above it, pads.
    """
    n = mps.n_sites
    if isinstance(site, bool) or not isinstance(site, int | np.integer) or not 0 <= site < n:
        raise ValueError(f"site must be an integer in [0, {n - 1}], got {site!r}")
    cap = mps.bond_dim if max_bond is None else _check_int("max_bond", max_bond, 1)
    cores = unpack(mps)
    k, worst = mps.center_site, 0.0
    while k != site:
        step = 1 if site > k else -1
        i = min(k, k + step)
        theta = merge(cores[i], cores[i + 1])
        dl, da, db, n_lab, dr = theta.shape
        full = min(dl * da, db * n_lab * dr) if step == 1 else min(dl * da * n_lab, db * dr)
        a, b, disc, rank = split(theta, move="right" if step == 1 else "left",
                                 max_bond=min(cap, full), cutoff=cutoff)  # fmt: skip
        r = max(int(rank), 1)
        cores[i], cores[i + 1] = a[..., :r], b[:r]
        worst = max(worst, float(disc))
        k += step
    largest = max(max(c.shape[0], c.shape[-1]) for c in cores)
    return pack(cores, center=k, bond_dim=max(largest, min(cap, mps.bond_dim))), worst


def canonicalize(mps: MPS, center: int | None = None) -> MPS:
    """Mixed canonical form with the centre at ``center`` (default: where it is).

    Cores left of the centre become left-isometric, cores right of it
    right-isometric; the state is unchanged (no truncation: a plain MPS's bond
    ranks never exceed its bond dimension). With a label leg, moving it may need
    a larger bond dimension; :func:`move_center` reports that.
    """
    k = mps.center_site if center is None else center
    end = mps.n_sites - 1
    # sweep the centre to each end and back, so every core passes through an SVD
    out, _ = move_center(mps, 0)
    out, _ = move_center(out, end)
    out, disc = move_center(out, k)
    if disc > 1e-10 and mps.n_labels is None:  # pragma: no cover - cannot happen exactly
        raise AssertionError(f"canonicalize discarded weight {disc}")
    return out


# ----------------------------------------------------------------------------- norms


def _transfer(cores, env, xp):
    """Push the norm environment (chi, chi) through ``cores``; returns (env, log scale)."""

    def step(carry, a):
        e, logs = carry
        new = xp.einsum("ab,asc,bsd->cd", e, a, xp.conj(a))
        nrm, safe = guarded_norm(new, xp=xp)
        return (new / safe, logs + guarded_log(nrm, _TINY)), None

    carry = (env, xp.zeros((), xp.real(env).dtype))
    if not len(cores):
        return carry
    if xp is np:
        for a in cores:
            carry, _ = step(carry, a)
        return carry
    return jax.lax.scan(step, carry, xp.stack(cores))[0]


def log_norm(mps: MPS):
    """log ||psi|| (the label leg counted as part of the centre), xp-generic.

    Transfer matrices from both ends toward the centre, normalised after every
    site, so 1,000-site chains stay finite; differentiable under JAX.
    """
    xp = _xp(mps.center)
    cores = trim_boundaries(mps.cores())
    k = mps.center_site
    chi = mps.bond_dim
    e0 = np.zeros((chi, chi), np.dtype(mps.dtype.name))
    e0[0, 0] = 1
    e0 = xp.asarray(e0)
    el, ll = _transfer(cores[:k], e0, xp)
    er, lr = _transfer(reverse_cores(cores[k + 1 :]), e0, xp)
    c = cores[k] if cores[k].ndim == 4 else cores[k][:, :, None, :]
    sq = xp.einsum("ab,asLc,bsLd,cd->", el, c, xp.conj(c), er)
    return 0.5 * (guarded_log(xp.abs(sq), 0) + ll + lr)


def normalize(mps: MPS) -> MPS:
    """The MPS scaled to unit norm (the centre core rescaled)."""
    xp = _xp(mps.center)
    scale = xp.exp(-log_norm(mps)).astype(mps.dtype)
    return MPS(mps.left, mps.center * scale, mps.right)


# ----------------------------------------------------------------------------- forward pass


def _scan_envs(left, right, phi_left, phi_right):
    """Contract both halves toward the centre at once; returns (vL, vR, log_scale).

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
        e0 = jnp.zeros((extra, d), phis.dtype).at[:, 0].set(1)
        # pad at the start: identity steps before the real ones leave e0 unchanged
        return jnp.concatenate([ident, cores]), jnp.concatenate([e0, phis])

    lc, lp = pad(left, phi_left, k)
    rc, rp = pad(right_t, phi_right, m)
    cores = jnp.stack([lc, rc], axis=1)  # (n, 2, chi, d, chi)
    phis = jnp.stack([lp, rp], axis=1).astype(dtype)  # (n, 2, d)
    v0 = jnp.zeros((2, chi), dtype).at[:, 0].set(1)

    def step(carry, inp):
        v, logn = carry
        a, p = inp
        w = jnp.einsum("jsb,js->jb", jnp.einsum("ja,jasb->jsb", v, a), p)
        nrm, safe = guarded_norm(w, axis=-1)
        return (w / safe[:, None], logn + guarded_log(nrm, _TINY)), None

    (v, logn), _ = jax.lax.scan(step, (v0, jnp.zeros(2, jnp.real(v0).dtype)), (cores, phis))
    return v[0], v[1], logn.sum()


def amplitudes(mps: MPS, phi: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The forward pass for one sample: ``(fhat, log_norm)`` with f = exp(log_norm) * fhat.

    f_l(x) = <e0| A_0(x_0) ... T_l(x_k) ... A_{N-1}(x_{N-1}) |e0> with A_i(x) =
    sum_s phi_s(x) A_i[:, s, :]. The scan normalises its environment vector after
    every site and accumulates the log-norm, so 784-site models are finite in float32.

    Parameters
    ----------
    mps
        The model; with a label leg, L amplitudes, else one.
    phi
        Feature-mapped input of shape (N, d).

    Returns
    -------
    fhat
        Unit-norm amplitudes, shape (L,) (or (1,) without a label leg: the sign).
    log_norm
        log ||f(x)||_2 (``-inf`` if every amplitude is exactly zero).
    """
    k = mps.center_site
    vl, vr, logs = _scan_envs(mps.left, mps.right, phi[:k], phi[k + 1 :])
    c = mps.center if mps.center.ndim == 4 else mps.center[:, :, None, :]
    f = jnp.einsum("a,asLb,s,b->L", vl, c, phi[k].astype(c.dtype), vr)
    nrm, safe = guarded_norm(f)
    return f / safe, logs + guarded_log(nrm, 0)


batch_amplitudes = jax.jit(jax.vmap(amplitudes, in_axes=(None, 0)))
"""``amplitudes`` vmapped over a batch and jitted: phi (B, N, d) -> fhat (B, L), log_norm (B,)."""
