"""Exact i.i.d. sampling from Born machines on an MPS or a TTN, unconditional or conditional.

All samples are drawn together: one ``lax.scan`` over the sites (MPS) or the
leaf pairs (TTN), each step a batched contraction over every sample, so the
compile time does not depend on the number of samples or of sites.

**MPS** (Han et al., arXiv:1709.01662; Ferris & Vidal, arXiv:1201.3974). With
the MPS in canonical form with its centre at site 0 (every other core
right-isometric) and unit norm, the conditional p(x_i | x_<i) is ||v A_i[:, x_i, :]||^2
for the normalised left vector v of the values already drawn: one (n, chi) x
(chi, d chi) product per site. With fixed sites (``given``), right environments
that sum the free sites and project the fixed ones are computed first (one
(n, chi, chi) matrix per site, in memory-bounded chunks of samples).

**TTN** (top-down). Leaf pairs are drawn left to right. The density matrix on
the bond above each node of the current root-to-leaf path, given every value
already drawn and every fixed value, is passed down: into a left child with
the sibling subtree's norm environment (which sums its free leaves and
projects its fixed ones), into a right child with the completed left
sibling's amplitude vector. Only the nodes whose path changes are recomputed
(``lax.switch`` on the step index), so a full pass costs O(P chi^4) per sample.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from qtn.models.born import assignment_weights, right_canonicalize
from qtn.models.mps import MPS, trim_boundaries
from qtn.models.ttn import TTN, _norm_envs

__all__ = ["mps_sample", "ttn_sample", "SAMPLING_MEMORY", "SAMPLING_CHUNK"]

#: bytes allowed for the per-sample environments of one chunk of conditional samples
SAMPLING_MEMORY = 256 * 2**20
#: samples drawn per compiled call; smaller requests are padded to a power of two (>= 8),
#: so a handful of shapes is ever compiled
SAMPLING_CHUNK = 4096


def _bucket(n: int) -> int:
    return max(8, 1 << (n - 1).bit_length())


def _plan(n: int, cap: int) -> list[tuple[int, int, int]]:
    """(start, stop, padded size) of the calls that draw n samples, at most ``cap`` per call."""
    cap = max(1, min(cap, SAMPLING_CHUNK))
    cap = 1 << (cap.bit_length() - 1)  # a power of two
    return [(s, min(s + cap, n), _bucket(min(cap, n - s))) for s in range(0, n, cap)]


def _draw(p, u):
    """Categorical draws from unnormalised rows p (n, m) with uniforms u (n,)."""
    cum = jnp.cumsum(p, axis=1)
    total = cum[:, -1]
    idx = jnp.sum(cum < (u * total)[:, None], axis=1)
    return jnp.minimum(idx, p.shape[1] - 1), total


def _unit(v):
    nrm = jnp.linalg.norm(v, axis=-1, keepdims=True)
    return v / jnp.where(nrm > 0, nrm, 1)


def _check_key(key):
    if isinstance(key, int | np.integer):
        return jax.random.key(int(key))
    return key


# ----------------------------------------------------------------------------- MPS


@partial(jax.jit, static_argnames=("n",))
def _mps_sample_free(cores, key, n):
    n_sites, chi, d, _ = cores.shape
    rdt = jnp.real(cores[0]).dtype
    u = jax.random.uniform(key, (n_sites, n), rdt)
    v0 = jnp.zeros((n, chi), cores.dtype).at[:, 0].set(1)

    def step(v, inp):
        a, ui = inp
        w = (v @ a.reshape(chi, d * chi)).reshape(n, d, chi)
        s, total = _draw(jnp.sum(jnp.abs(w) ** 2, axis=2), ui)
        vs = jnp.take_along_axis(w, s[:, None, None], axis=1)[:, 0]
        return _unit(vs), (s, total)

    _, (xs, totals) = jax.lax.scan(step, v0, (cores, u))
    return xs.T, jnp.min(totals, axis=0)


@jax.jit
def _mps_sample_given(cores, weights, key):
    n_sites, chi, d, _ = cores.shape
    n = weights.shape[0]
    rdt = jnp.real(cores[0]).dtype
    w_sites = jnp.swapaxes(weights, 0, 1).astype(rdt)  # (N, n, d)
    r0 = jnp.zeros((n, chi, chi), cores.dtype).at[:, 0, 0].set(1)

    def right(env, inp):  # env: to the right of site i+1 -> to the right of site i
        a, w = inp
        x = jnp.einsum("asc,ncd->nasd", a, env)
        new = jnp.einsum("nasd,ns,bsd->nab", x, w.astype(a.dtype), jnp.conj(a))
        nrm = jnp.linalg.norm(new.reshape(n, -1), axis=1)
        new = new / jnp.where(nrm > 0, nrm, 1)[:, None, None]
        return new, env

    _, envs = jax.lax.scan(right, r0, (cores, w_sites), reverse=True)  # envs[i]: right of i
    u = jax.random.uniform(key, (n_sites, n), rdt)
    v0 = jnp.zeros((n, chi), cores.dtype).at[:, 0].set(1)

    def step(v, inp):
        a, renv, w, ui = inp
        x = (v @ a.reshape(chi, d * chi)).reshape(n, d, chi)
        p = jnp.real(jnp.einsum("nsc,ncd,nsd->ns", x, renv, jnp.conj(x))) * w
        s, total = _draw(jnp.maximum(p, 0), ui)
        vs = jnp.take_along_axis(x, s[:, None, None], axis=1)[:, 0]
        return _unit(vs), (s, total)

    _, (xs, totals) = jax.lax.scan(step, v0, (cores, envs, w_sites, u))
    return xs.T, jnp.min(totals, axis=0)


def mps_sample(mps: MPS, n_samples: int, key, *, given=None, canonical: bool = False) -> np.ndarray:
    """Exact i.i.d. samples x ~ |psi(x)|^2 / Z of a plain MPS, shape (n_samples, N) int32.

    Parameters
    ----------
    mps
        The state (no label leg).
    n_samples
        Number of samples (with ``given``: its number of rows).
    key
        A JAX PRNG key or an integer seed.
    given
        Optional integer array (n_samples, N): a value in range(d) fixes that site
        (the sample follows the exact conditional distribution given all fixed
        sites), -1 leaves it free.
    canonical
        The MPS is already canonical with its centre at site 0 and unit norm
        (skips the host canonicalisation).

    Raises
    ------
    ValueError
        If the fixed values of a row have probability zero under the model.

    Examples
    --------
    >>> x = mps_sample(random_mps(0, 10, 4), 1000, 0)
    >>> x.shape
    (1000, 10)
    """
    if mps.n_labels is not None:
        raise ValueError("mps_sample needs an MPS without a label leg")
    key = _check_key(key)
    if given is None:
        if not canonical:
            mps = right_canonicalize(mps)
        cores = jnp.stack([jnp.asarray(c) for c in trim_boundaries(mps.cores())])
        out = []
        for i, (a, b, size) in enumerate(_plan(int(n_samples), SAMPLING_CHUNK)):
            xs, worst = _mps_sample_free(cores, jax.random.fold_in(key, i), size)
            if not float(jnp.min(worst)) > 0:  # pragma: no cover - only a zero state gets here
                raise ValueError("the MPS has zero norm; nothing to sample")
            out.append(np.asarray(xs)[: b - a])
        return np.concatenate(out)
    given = np.asarray(given)
    cores = jnp.stack([jnp.asarray(c) for c in trim_boundaries(mps.cores())])
    n_sites, chi = cores.shape[0], cores.shape[1]
    per = n_sites * chi * chi * cores.dtype.itemsize * 2
    out = []
    for i, (a, b, size) in enumerate(_plan(len(given), SAMPLING_MEMORY // per)):
        w = jnp.asarray(assignment_weights(_pad_rows(given[a:b], size), mps.phys_dim))
        xs, worst = _mps_sample_given(cores, w, jax.random.fold_in(key, i))
        _check_possible(np.asarray(worst)[: b - a], a)
        out.append(np.asarray(xs)[: b - a])
    return np.concatenate(out)


def _pad_rows(rows, size):
    """Rows padded to ``size`` by repeating the first (a valid condition), for static shapes."""
    return np.concatenate([rows, np.repeat(rows[:1], size - len(rows), axis=0)])


def _check_possible(worst, offset):
    bad = np.flatnonzero(~(worst > 0))
    if bad.size:
        raise ValueError(
            f"the fixed values of given row {offset + int(bad[0])} have probability zero "
            "under the model; nothing consistent with them can be sampled"
        )


# ----------------------------------------------------------------------------- TTN


def _ttn_sampler(layers, envs, weights, key):
    """The scan over leaf pairs; envs[l]: (B, nodes_l, c, c) norm environments, B in {1, n}."""
    k_levels = len(layers)
    n = weights.shape[0]
    d = layers[0].shape[1]
    dt = layers[0].dtype
    rdt = jnp.real(layers[0]).dtype
    out_dims = [layers[lv].shape[3] for lv in range(k_levels)]
    n_pairs = layers[0].shape[0]
    d_root = jnp.broadcast_to(jnp.eye(out_dims[-1], dtype=dt), (n, out_dims[-1], out_dims[-1]))
    dens0 = [jnp.zeros((n, c, c), dt) for c in out_dims[:-1]]
    ul0 = [jnp.zeros((n, c), dt) for c in out_dims[:-1]]  # ul[l-1]: left child of level l
    u = jax.random.uniform(key, (n_pairs, n), rdt)

    def trace_normalise(m):
        tr = jnp.real(jnp.trace(m, axis1=1, axis2=2))
        return m / jnp.where(tr > 0, tr, 1)[:, None, None].astype(m.dtype)

    def step(carry, inp):
        dens, ul = (list(c) for c in carry)
        k, uk = inp
        for lv in range(k_levels - 1, 0, -1):  # parent level lv, child level lv - 1
            t = jax.lax.dynamic_index_in_dim(layers[lv], k >> lv, keepdims=False)
            parent = d_root if lv == k_levels - 1 else dens[lv]
            jc = k >> (lv - 1)
            need = (k & ((1 << (lv - 1)) - 1)) == 0
            branch = jnp.where(need, 1 + (jc & 1), 0)
            e_sib = jax.lax.dynamic_index_in_dim(envs[lv - 1], jc + 1, axis=1, keepdims=False)
            e_sib = jnp.broadcast_to(e_sib, (n, *e_sib.shape[1:]))

            def keep(ops, lv=lv):
                return ops[0]

            def left(ops, t=t):
                _, par, es, _ = ops
                x = jnp.einsum("abc,ncd->nabd", t, par)
                return trace_normalise(jnp.einsum("nabd,nby,xyd->nax", x, es, jnp.conj(t)))

            def right(ops, t=t):
                _, par, _, ulv = ops
                x = jnp.einsum("na,abc->nbc", ulv, t)
                return trace_normalise(jnp.einsum("nbc,ncd,nyd->nby", x, par, jnp.conj(x)))

            dens[lv - 1] = jax.lax.switch(
                branch, [keep, left, right], (dens[lv - 1], parent, e_sib, ul[lv - 1])
            )
        t0 = jax.lax.dynamic_index_in_dim(layers[0], k, keepdims=False)  # (d, d, c)
        wl = jax.lax.dynamic_index_in_dim(weights, 2 * k, axis=1, keepdims=False)
        wr = jax.lax.dynamic_index_in_dim(weights, 2 * k + 1, axis=1, keepdims=False)
        x = jnp.einsum("stc,ncd->nstd", t0, dens[0])
        p = jnp.real(jnp.einsum("nstd,std->nst", x, jnp.conj(t0)))
        p = jnp.maximum(p, 0) * wl[:, :, None] * wr[:, None, :]
        idx, total = _draw(p.reshape(n, d * d), uk)
        s, tt = idx // d, idx % d
        cur = _unit(t0[s, tt])  # (n, c)
        for lv in range(1, k_levels):
            completed = ((k + 1) & ((1 << (lv - 1)) - 1)) == 0  # the level lv-1 node finished
            is_right = ((k >> (lv - 1)) & 1) == 1
            ul[lv - 1] = jnp.where(completed & ~is_right, cur, ul[lv - 1])
            if lv < k_levels - 1:
                t = jax.lax.dynamic_index_in_dim(layers[lv], k >> lv, keepdims=False)
                cur = _unit(jnp.einsum("na,nb,abc->nc", ul[lv - 1], cur, t))
        return (tuple(dens), tuple(ul)), (s, tt, total)

    ks = jnp.arange(n_pairs, dtype=jnp.int32)
    _, (s, tt, totals) = jax.lax.scan(step, (tuple(dens0), tuple(ul0)), (ks, u))
    xs = jnp.stack([s, tt], axis=1).reshape(n_pairs * 2, n).T  # leaf order
    return xs, jnp.min(totals, axis=0)


@jax.jit
def _ttn_sample_free(layers, weights1, key, template):
    envs, _ = jax.vmap(lambda w: _norm_envs(TTN(layers), w))(weights1)
    return _ttn_sampler(layers, envs, template, key)


@jax.jit
def _ttn_sample_given(layers, weights, key):
    envs, _ = jax.vmap(lambda w: _norm_envs(TTN(layers), w))(weights)
    return _ttn_sampler(layers, envs, weights, key)


def ttn_sample(ttn: TTN, n_samples: int, key, *, given=None, padded=None) -> np.ndarray:
    """Exact i.i.d. samples of a plain TTN Born machine in leaf order, shape (n_samples, P).

    Parameters
    ----------
    ttn
        The state (no label leg); any gauge (canonical form is not required).
    n_samples
        Number of samples (with ``given``: its number of rows).
    key
        A JAX PRNG key or an integer seed.
    given
        Optional integer array (n_samples, P) in leaf order: a value fixes that
        leaf, -1 leaves it free (the exact conditional distribution).
    padded
        Boolean mask of padding leaves (always 0).
    """
    if ttn.n_labels is not None:
        raise ValueError("ttn_sample needs a TTN without a label leg")
    key = _check_key(key)
    layers = tuple(jnp.asarray(a) for a in ttn.layers)
    p, d = ttn.n_leaves, ttn.phys_dim
    pad = np.zeros(p, bool) if padded is None else np.asarray(padded, bool)
    if given is None:
        base = np.where(pad, 0, -1)
        w1 = jnp.asarray(assignment_weights(base[None], d))
        out = []
        for i, (a, b, size) in enumerate(_plan(int(n_samples), SAMPLING_CHUNK)):
            template = jnp.broadcast_to(w1, (size, p, d))
            xs, worst = _ttn_sample_free(layers, w1, jax.random.fold_in(key, i), template)
            if not float(jnp.min(worst)) > 0:  # pragma: no cover - only a zero state gets here
                raise ValueError("the TTN has zero norm; nothing to sample")
            out.append(np.asarray(xs)[: b - a])
        return np.concatenate(out)
    given = np.where(pad, 0, np.asarray(given))
    chi = max(a.shape[3] for a in layers)
    per = p * chi * chi * layers[0].dtype.itemsize * 2
    out = []
    for i, (a, b, size) in enumerate(_plan(len(given), SAMPLING_MEMORY // per)):
        w = jnp.asarray(assignment_weights(_pad_rows(given[a:b], size), d))
        xs, worst = _ttn_sample_given(layers, w, jax.random.fold_in(key, i))
        _check_possible(np.asarray(worst)[: b - a], a)
        out.append(np.asarray(xs)[: b - a])
    return np.concatenate(out)
