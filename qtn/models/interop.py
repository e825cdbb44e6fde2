"""MPS classifiers <-> quimb, entanglement entropy and its plot.

quimb conventions are kept: physical indices ``k{i}``, site tags ``I{i}``, and
the label index is named ``label``. Amplitudes are f_l(x) = <psi_l | phi(x)>
with phi(x) the product state of the feature vectors (all real here).
"""

from __future__ import annotations

import numpy as np

from qtn.models.mps import MPSParams, _from_site_cores, _trim_boundaries, site_cores

__all__ = ["to_quimb", "from_quimb", "entanglement_entropy", "plot_entanglement"]


def _edge_trimmed(params: MPSParams) -> list[np.ndarray]:
    cores = _trim_boundaries(site_cores(params))
    cores[0] = cores[0][:1]
    cores[-1] = cores[-1][..., :1]
    return cores


def to_quimb(params: MPSParams, *, per_class: bool = False):
    """Export to quimb.

    Parameters
    ----------
    params
        The classifier (at least 2 sites).
    per_class
        If False (default), one ``quimb.tensor.MatrixProductState`` whose
        label-site tensor carries the extra index ``"label"``. If True, a list
        of L ordinary ``MatrixProductState`` objects, one per class, with
        f_l(x) = <psi_l|phi(x)>.

    Examples
    --------
    >>> mps = to_quimb(params)  # doctest: +SKIP
    >>> mps["I0"].inds  # doctest: +SKIP
    """
    import quimb.tensor as qtensor

    if params.n_sites < 2:
        raise ValueError(f"to_quimb needs at least 2 sites, the model has {params.n_sites}")
    cores = _edge_trimmed(params)
    k = params.label_site

    def build(label_core):
        arrs = list(cores)
        arrs[k] = label_core
        arrs[0] = arrs[0][0]  # (d, chi)
        arrs[-1] = arrs[-1][..., 0]  # (chi, d)
        return qtensor.MatrixProductState(arrs, shape="lpr")

    if per_class:
        return [build(cores[k][:, :, lab, :]) for lab in range(params.n_classes)]
    mps = build(cores[k][:, :, 0, :])
    t = mps[k]
    full = cores[k]  # (chi_l, d, L, chi_r), trimmed at the edges
    if k == 0:
        data = full[0].transpose(2, 0, 1)  # (r, p, L)
    elif k == params.n_sites - 1:
        data = full[..., 0]  # (l, p, L)
    else:
        data = full.transpose(0, 3, 1, 2)  # (l, r, p, L)
    t.modify(data=data, inds=(*t.inds, "label"))
    return mps


def from_quimb(mps, *, bond_dim: int | None = None) -> MPSParams:
    """Import from quimb: an MPS with one ``label`` index (as :func:`to_quimb` makes),
    or a list of per-class MPS (combined exactly by a direct sum of their bonds).

    Parameters
    ----------
    bond_dim
        Pad every bond to this dimension (default: the largest bond present).
    """
    if isinstance(mps, list | tuple):
        return _from_class_list(list(mps), bond_dim)
    if not hasattr(mps, "L") or not hasattr(mps, "site_ind"):
        raise TypeError(
            f"mps must be a quimb MatrixProductState or a list of them, got {type(mps).__name__}"
        )
    label_sites = [i for i in range(mps.L) if "label" in mps[i].inds]
    if len(label_sites) != 1:
        raise ValueError(
            f"expected exactly one tensor with a 'label' index, found {len(label_sites)}"
        )
    k = label_sites[0]
    return _pack(_cores_of(mps, label_site=k), k, bond_dim)


def _cores_of(mps, label_site=None) -> list[np.ndarray]:
    """Cores (left bond, phys[, label], right bond) of a quimb MPS, edges given unit bonds."""
    n = mps.L
    cores = []
    for i in range(n):
        t = mps[i]
        left = [ix for ix in t.inds if i > 0 and ix in mps[i - 1].inds]
        right = [ix for ix in t.inds if i < n - 1 and ix in mps[i + 1].inds]
        lab = ["label"] if i == label_site else []
        data = np.asarray(t.transpose(*left, mps.site_ind(i), *lab, *right).data)
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
    return _pack(cores, k, bond_dim)


def _pack(cores, k, bond_dim):
    largest = max(max(c.shape[0], c.shape[-1]) for c in cores)
    chi = largest if bond_dim is None else bond_dim
    if chi < largest:
        raise ValueError(f"bond_dim={bond_dim} is smaller than the largest bond ({largest})")
    out = []
    for c in cores:
        pad = [(0, chi - c.shape[0])] + [(0, 0)] * (c.ndim - 2) + [(0, chi - c.shape[-1])]
        out.append(np.pad(c, pad))
    return _from_site_cores(out, k, np.zeros((), out[0].dtype))


def entanglement_entropy(params: MPSParams) -> np.ndarray:
    """Von Neumann entropy (natural log) across each of the N-1 bonds.

    The state is the normalised MPS with the label index counted as part of its
    site. Computed with quimb's canonical-form Schmidt values.
    """
    mps = to_quimb(params)
    mps = mps.astype("float64")
    mps /= np.sqrt(float(mps.H @ mps))
    info: dict = {}
    # quimb reports entropies in bits; convert to nats
    bits = [mps.entropy(i, info=info) for i in range(1, params.n_sites)]
    return np.log(2.0) * np.array(bits, dtype=np.float64)


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
