"""Which feature sits on which leaf of a tree tensor network.

:func:`tree_layout` gives images a quadtree grouping (horizontal pixel pairs,
then vertical pairs of pairs: 2x2 blocks, then 2x2 blocks of blocks) and 1D
data a balanced tree; sizes that are not powers of two are padded by recursive
bisection (see :func:`tree_layout`). The TTN itself lives in ``ttn.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qtn.models.mps import _check_int, _xp

__all__ = ["TreeLayout", "tree_layout"]


@dataclass(frozen=True)
class TreeLayout:
    """Which feature sits on which leaf of a TTN.

    Attributes
    ----------
    n_features
        Number of real features (pixels).
    image_shape
        (height, width) of the images, or None for 1D data.
    leaf_features
        Tuple of length P: the feature index on each leaf position, -1 for padding.
    """

    n_features: int
    image_shape: tuple | None
    leaf_features: tuple

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_features)

    @property
    def n_levels(self) -> int:
        return int(math.log2(self.n_leaves))

    @property
    def padded(self) -> np.ndarray:
        """Boolean mask (P,) of the padding leaves."""
        return np.asarray(self.leaf_features) < 0

    def feature_leaves(self) -> np.ndarray:
        """The leaf position of every feature, (n_features,)."""
        lf = np.asarray(self.leaf_features)
        out = np.empty(self.n_features, dtype=np.int64)
        out[lf[lf >= 0]] = np.flatnonzero(lf >= 0)
        return out

    def to_leaves(self, phi):
        """Feature vectors (..., n_features, d) -> leaf vectors (..., P, d); padding gets e0.

        Works on numpy and JAX arrays.
        """
        xp = _xp(phi)
        lf = np.asarray(self.leaf_features)
        out = phi[..., np.maximum(lf, 0), :]
        if np.any(lf < 0):
            e0 = np.zeros(phi.shape[-1])
            e0[0] = 1
            out = xp.where((lf < 0)[:, None], xp.asarray(e0, dtype=phi.dtype), out)
        return out

    def to_leaf_values(self, x, fill: int = 0) -> np.ndarray:
        """Integer data (..., n_features) -> (..., P), padding leaves set to ``fill``."""
        x = np.asarray(x)
        lf = np.asarray(self.leaf_features)
        out = x[..., np.maximum(lf, 0)]
        return np.where(lf < 0, fill, out)

    def from_leaf_values(self, v) -> np.ndarray:
        """Leaf values (..., P) -> feature values (..., n_features)."""
        return np.asarray(v)[..., self.feature_leaves()]


def tree_layout(n_features: int, image_shape: tuple | None = None) -> TreeLayout:
    """The leaf layout of a TTN over ``n_features`` features (pixels of ``image_shape``).

    Padding rule (recursive bisection): the K = ceil(log2 h) + ceil(log2 w)
    levels alternate between the image axes from the bottom (level 0 pairs
    horizontal neighbours, level 1 vertical pairs of pairs, ...; when one axis
    has no levels left the other continues), with at least 2 levels in all.
    Each node splits its rectangle along its axis into ceil/floor halves (the
    first half goes left). Leaves whose rectangle is empty are padding. For
    power-of-two images this is the quadtree (Z-order) grouping; 1D data
    (``image_shape=None``, a 1 x n image) gets a balanced binary tree.

    Examples
    --------
    >>> tree_layout(4, (2, 2)).leaf_features
    (0, 1, 2, 3)
    >>> tree_layout(5).leaf_features
    (0, 1, 2, -1, 3, -1, 4, -1)
    """
    n = _check_int("n_features", n_features, 1)
    if image_shape is None:
        h, w = 1, n
    else:
        try:
            h, w = (int(v) for v in image_shape)
        except (TypeError, ValueError):
            raise ValueError(f"image_shape must be (height, width), got {image_shape!r}") from None
        if h < 1 or w < 1 or h * w != n:
            raise ValueError(
                f"image_shape {tuple(image_shape)} does not hold n_features={n} pixels "
                f"(height * width must equal the number of features)"
            )
        image_shape = (h, w)
    kx = math.ceil(math.log2(w)) if w > 1 else 0
    ky = math.ceil(math.log2(h)) if h > 1 else 0
    if kx + ky < 2:  # at least 4 leaves: the root's children are tree nodes
        kx += 2 - (kx + ky)
    axes: list[str] = []  # from the bottom level up
    rx, ry = kx, ky
    while rx or ry:
        if rx:
            axes.append("x")
            rx -= 1
        if ry:
            axes.append("y")
            ry -= 1
    depth = len(axes)
    leaves: list[int] = []

    def assign(r0, r1, c0, c1, level):
        if level < 0:
            leaves.append(r0 * w + c0 if (r1 - r0) * (c1 - c0) == 1 else -1)
            return
        if axes[level] == "x":
            mid = c0 + (c1 - c0 + 1) // 2
            assign(r0, r1, c0, mid, level - 1)
            assign(r0, r1, mid, c1, level - 1)
        else:
            mid = r0 + (r1 - r0 + 1) // 2
            assign(r0, mid, c0, c1, level - 1)
            assign(mid, r1, c0, c1, level - 1)

    assign(0, h, 0, w, depth - 1)
    return TreeLayout(n, image_shape, tuple(leaves))
