"""qtn MPS <-> quimb, entanglement entropy and its plot.

quimb conventions are kept: physical indices ``k{i}``, site tags ``I{i}``, and a
label leg is the index named ``label``. For a classifier the amplitudes are
f_l(x) = <psi_l | phi(x)> with phi(x) the product state of the feature vectors
(all real here).
"""

from __future__ import annotations

import numpy as np

from qtn.models.layout import TreeLayout
from qtn.models.mps import MPS, pack, unpack
from qtn.models.ttn import TTN, ttn_canonicalize

__all__ = [
    "to_quimb",
    "from_quimb",
    "entanglement_entropy",
    "plot_entanglement",
    "ttn_to_quimb",
    "ttn_entanglement_entropy",
]


def to_quimb(mps: MPS, *, per_class: bool = False):
    """Export to quimb.

    Parameters
    ----------
    mps
        A qtn :class:`~qtn.models.MPS` (at least 2 sites).
    per_class
        With a label leg: if False (default), one ``quimb.tensor.MatrixProductState``
        whose centre tensor carries the extra index ``"label"``; if True, a list of
        L ordinary ``MatrixProductState`` objects, one per label.

    Examples
    --------
    >>> q = to_quimb(random_mps(0, 5, 3))  # doctest: +SKIP
    >>> q.max_bond()  # doctest: +SKIP
    3
    """
    import quimb.tensor as qtensor

    if not isinstance(mps, MPS):
        raise TypeError(f"mps must be a qtn MPS, got {type(mps).__name__}")
    if mps.n_sites < 2:
        raise ValueError(f"to_quimb needs at least 2 sites, the MPS has {mps.n_sites}")
    k = mps.center_site

    def build(cores):
        arrs = list(cores)
        arrs[0] = arrs[0][0]  # (d, chi)
        arrs[-1] = arrs[-1][..., 0]  # (chi, d)
        return qtensor.MatrixProductState(arrs, shape="lpr")

    if mps.n_labels is None:
        if per_class:
            raise ValueError("per_class=True needs an MPS with a label leg")
        return build(unpack(mps))
    if per_class:
        return [build(unpack(mps.select_label(lab))) for lab in range(mps.n_labels)]
    cores = unpack(mps)
    full = cores[k]  # (chi_l, d, L, chi_r), trimmed at the edges
    cores[k] = full[:, :, 0, :]
    q = build(cores)
    t = q[k]
    if k == 0:
        data = full[0].transpose(2, 0, 1)  # (r, p, L)
    elif k == mps.n_sites - 1:
        data = full[..., 0]  # (l, p, L)
    else:
        data = full.transpose(0, 3, 1, 2)  # (l, r, p, L)
    t.modify(data=data, inds=(*t.inds, "label"))
    return q


def from_quimb(q, *, bond_dim: int | None = None) -> MPS:
    """Import from quimb: a ``MatrixProductState`` (an index ``label`` on one tensor
    becomes the label leg, as :func:`to_quimb` makes), or a list of per-class
    MPS (combined exactly by a direct sum of their bonds, the label on the last site).

    Parameters
    ----------
    bond_dim
        Pad every bond to this dimension (default: the largest bond present).
    """
    if isinstance(q, list | tuple):
        return _from_class_list(list(q), bond_dim)
    if not hasattr(q, "L") or not hasattr(q, "site_ind"):
        raise TypeError(
            f"mps must be a quimb MatrixProductState or a list of them, got {type(q).__name__}"
        )
    label_sites = [i for i in range(q.L) if "label" in q[i].inds]
    if len(label_sites) > 1:
        raise ValueError(
            f"expected at most one tensor with a 'label' index, found {len(label_sites)}"
        )
    k = label_sites[0] if label_sites else 0
    return pack(_cores_of(q, label_site=k if label_sites else None), center=k, bond_dim=bond_dim)


def _cores_of(q, label_site=None) -> list[np.ndarray]:
    """Cores (left bond, phys[, label], right bond) of a quimb MPS, edges given unit bonds."""
    n = q.L
    cores = []
    for i in range(n):
        t = q[i]
        left = [ix for ix in t.inds if i > 0 and ix in q[i - 1].inds]
        right = [ix for ix in t.inds if i < n - 1 and ix in q[i + 1].inds]
        lab = ["label"] if i == label_site else []
        data = np.asarray(t.transpose(*left, q.site_ind(i), *lab, *right).data)
        if i == 0:
            data = data[None]
        if i == n - 1:
            data = data[..., None]
        cores.append(data)
    return cores


def _from_class_list(mpss, bond_dim):
    n_cls = len(mpss)
    if n_cls < 2:
        raise ValueError(f"need at least two per-class MPS, got {n_cls}")
    n = mpss[0].L
    if any(m.L != n for m in mpss):
        raise ValueError("all per-class MPS must have the same number of sites")
    per = [_cores_of(m) for m in mpss]
    # direct sum: block-diagonal bonds; the label sits on the last site, which
    # picks class l's block; the first site concatenates the blocks
    k = n - 1
    cores = []
    for i in range(n):
        blocks = [cs[i] for cs in per]
        d = blocks[0].shape[1]
        if i == 0:
            core = np.concatenate(blocks, axis=2)  # (1, d, sum chi)
        elif i < k:
            dl, dr = sum(b.shape[0] for b in blocks), sum(b.shape[2] for b in blocks)
            core = np.zeros((dl, d, dr), dtype=blocks[0].dtype)
            ol = orr = 0
            for b in blocks:
                core[ol : ol + b.shape[0], :, orr : orr + b.shape[2]] = b
                ol, orr = ol + b.shape[0], orr + b.shape[2]
        else:
            dl = sum(b.shape[0] for b in blocks)
            core = np.zeros((dl, d, n_cls, 1), dtype=blocks[0].dtype)
            ol = 0
            for lab, b in enumerate(blocks):
                core[ol : ol + b.shape[0], :, lab, :] = b
                ol += b.shape[0]
        cores.append(core)
    return pack(cores, center=k, bond_dim=bond_dim)


def entanglement_entropy(mps: MPS) -> np.ndarray:
    """Von Neumann entropy (natural log) across each of the N-1 bonds.

    The state is the normalised MPS with the label leg counted as part of its
    site. Computed with quimb's canonical-form Schmidt values.
    """
    q = to_quimb(mps).astype("float64" if not np.iscomplexobj(mps.center) else "complex128")
    q /= np.sqrt(abs(complex(q.H @ q)))
    info: dict = {}
    # quimb reports entropies in bits; convert to nats
    bits = [q.entropy(i, info=info) for i in range(1, mps.n_sites)]
    return np.log(2.0) * np.array(bits, dtype=np.float64)


def ttn_to_quimb(ttn: TTN, layout: TreeLayout | None = None):
    """Export a TTN as a quimb ``TensorNetwork``.

    Node j of level l becomes a tensor tagged ``"TTN"``, ``f"LEVEL{l}"`` and
    ``f"NODE{l},{j}"`` with indices (left child, right child, parent) named
    ``f"b{l-1},{2j}"``, ``f"b{l-1},{2j+1}"``, ``f"b{l},{j}"``; level-0 children are
    the physical indices ``f"k{i}"``. With a ``layout``, ``i`` is the feature
    index and padding leaves are contracted with e0 (so only real features
    remain); without one, ``i`` is the leaf position. The root's parent index is
    ``"label"`` with a label leg and absent otherwise.

    Examples
    --------
    >>> tn = ttn_to_quimb(random_ttn(0, 8, 2))  # doctest: +SKIP
    >>> sorted(tn.outer_inds())  # doctest: +SKIP
    ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7']
    """
    import quimb.tensor as qtensor

    if not isinstance(ttn, TTN):
        raise TypeError(f"ttn must be a qtn TTN, got {type(ttn).__name__}")
    if layout is not None and layout.n_leaves != ttn.n_leaves:
        raise ValueError(f"layout has {layout.n_leaves} leaves, the TTN {ttn.n_leaves}")
    levels = ttn.levels()
    k = len(levels)
    tensors = []
    for lvl, arr in enumerate(levels):
        for j in range(arr.shape[0]):
            data = arr[j]
            if lvl == 0:
                inds = []
                for child in (2 * j, 2 * j + 1):
                    feat = child if layout is None else layout.leaf_features[child]
                    inds.append(f"k{feat}" if feat >= 0 else None)
            else:
                inds = [f"b{lvl - 1},{2 * j}", f"b{lvl - 1},{2 * j + 1}"]
            out = f"b{lvl},{j}" if lvl < k - 1 else ("label" if ttn.n_labels else None)
            inds.append(out)
            # padding legs read e0, a trivial root leg is dimension 1: slice both away
            index = tuple(0 if ix is None else slice(None) for ix in inds)
            tags = {"TTN", f"LEVEL{lvl}", f"NODE{lvl},{j}"}
            tensors.append(
                qtensor.Tensor(data[index], inds=[ix for ix in inds if ix is not None], tags=tags)
            )
    return qtensor.TensorNetwork(tensors)


def ttn_entanglement_entropy(ttn: TTN) -> list[np.ndarray]:
    """Von Neumann entropy (natural log) across every tree bond, level by level.

    Entry j of level l (0 <= l <= K-2) is the entropy between the leaves under
    node (l, j) and all other leaves (the label leg, if any, counted with the
    rest), for the normalised state. Computed from the canonical form toward
    the root: the subtree states are orthonormal, so the reduced density matrix
    on a bond is the top-down environment.
    """
    layers = tuple(np.asarray(a, np.complex128 if np.iscomplexobj(a) else np.float64)
                   for a in ttn.layers)  # fmt: skip
    t = ttn_canonicalize(TTN(layers), normalize=True)
    levels = t.levels()
    lab = levels[-1].shape[3]
    dens = np.eye(lab, dtype=levels[-1].dtype)[None]  # (1, L, L) above the root
    out: list[np.ndarray] = []
    for lvl in range(len(levels) - 1, 0, -1):
        tt = levels[lvl]
        x = np.einsum("jabc,jcd->jabd", tt, dens)
        dl = np.einsum("jabd,jxbd->jax", x, tt.conj())
        dr = np.einsum("jabd,jayd->jby", x, tt.conj())
        dens = np.stack([dl, dr], axis=1).reshape(-1, *dl.shape[1:])  # children in order
        out.append(_entropies(dens))
    return out[::-1]


def _entropies(dens: np.ndarray) -> np.ndarray:
    dens = 0.5 * (dens + np.conj(np.swapaxes(dens, 1, 2)))
    tr = np.real(np.trace(dens, axis1=1, axis2=2))
    lam = np.linalg.eigvalsh(dens / np.where(tr > 0, tr, 1)[:, None, None])
    lam = np.clip(lam, 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(lam > 1e-15, -lam * np.log(lam), 0.0)
    return terms.sum(axis=1)


def plot_entanglement(entropies, *, ax=None, bond_dim: int | None = None, label=None):
    """Plot entanglement entropy per bond; with ``bond_dim``, also the maximum log(chi).

    Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    s = np.asarray(entropies)
    ax.plot(np.arange(1, len(s) + 1), s, marker=".", label=label)
    if bond_dim is not None:
        ax.axhline(np.log(bond_dim), ls="--", color="gray", label=f"log({bond_dim})")
    ax.set_xlabel("bond")
    ax.set_ylabel("entanglement entropy")
    if label is not None or bond_dim is not None:
        ax.legend()
    return ax
