"""Image transforms: downsample, binarize, select classes, split, pixel orderings, shifts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "downsample",
    "binarize",
    "select_classes",
    "train_val_split",
    "pixel_order",
    "flatten_images",
    "shift_augment",
    "PIXEL_ORDERS",
]

PIXEL_ORDERS = ("row", "column", "snake")


def _as_images(images, name: str = "images") -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"{name} must have shape (height, width) or (n, height, width), got {arr.shape}"
        )
    return arr


def downsample(images, size: int | tuple[int, int]) -> np.ndarray:
    """Downsample images by area averaging (each output pixel is the mean of a block).

    Parameters
    ----------
    images
        Array of shape (h, w) or (n, h, w).
    size
        Output size (h', w') or one int for a square; h and w must be multiples of it.

    Examples
    --------
    >>> X, _ = qtn.data.load_digits()
    >>> qtn.data.downsample(X, 4).shape
    (1797, 4, 4)
    """
    arr = _as_images(images)
    out_h, out_w = (size, size) if np.isscalar(size) else tuple(size)
    h, w = arr.shape[-2:]
    if out_h < 1 or out_w < 1 or h % out_h or w % out_w:
        raise ValueError(f"size must divide the image size {(h, w)} exactly, got {(out_h, out_w)}")
    fh, fw = h // out_h, w // out_w
    lead = arr.shape[:-2]
    blocks = arr.reshape(*lead, out_h, fh, out_w, fw)
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float32
    return blocks.mean(axis=(-3, -1), dtype=np.float64).astype(dtype)


def binarize(images, threshold: float = 0.5) -> np.ndarray:
    """Map pixels to {0, 1} (uint8): 1 where ``images > threshold``."""
    arr = np.asarray(images)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    return (arr > threshold).astype(np.uint8)


def select_classes(X, y, classes: Sequence, *, relabel: bool = False):
    """Keep only samples whose label is in ``classes`` (for example the digit pair 3 vs 5).

    Parameters
    ----------
    X, y
        Samples (first axis) and labels.
    classes
        The labels to keep, at least one, each present in ``y``.
    relabel
        Map the kept labels to 0..len(classes)-1 in the order given.

    Examples
    --------
    >>> X, y = qtn.data.load_digits()
    >>> X35, y35 = qtn.data.select_classes(X, y, [3, 5], relabel=True)
    >>> sorted(set(y35.tolist()))
    [0, 1]
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    classes = list(classes)
    if not classes:
        raise ValueError("classes must name at least one label")
    missing = [c for c in classes if not np.any(y == c)]
    if missing:
        raise ValueError(f"classes {missing} do not occur in y (labels present: {np.unique(y)})")
    mask = np.isin(y, classes)
    Xs, ys = X[mask], y[mask]
    if relabel:
        lookup = {c: i for i, c in enumerate(classes)}
        ys = np.array([lookup[v] for v in ys.tolist()], dtype=np.int64)
    return Xs, ys


def train_val_split(X, y, val_fraction: float = 0.2, *, seed: int = 0, stratify: bool = True):
    """Seeded, optionally stratified, train/validation split (scikit-learn's ``train_test_split``).

    Returns
    -------
    X_train, X_val, y_train, y_val
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    return train_test_split(
        X, y, test_size=val_fraction, random_state=seed, stratify=y if stratify else None
    )


def pixel_order(height: int, width: int, kind: str = "row") -> np.ndarray:
    """A permutation of ``height*width`` row-major pixel indices: the order pixels become sites.

    Parameters
    ----------
    kind
        ``"row"`` (row-major, the identity), ``"column"`` (column-major) or
        ``"snake"`` (boustrophedon: row-major with every odd row reversed, so
        consecutive sites are always neighbouring pixels).

    Examples
    --------
    >>> qtn.data.pixel_order(2, 3, "snake").tolist()
    [0, 1, 2, 5, 4, 3]
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height}, {width}")
    grid = np.arange(height * width).reshape(height, width)
    if kind == "row":
        return grid.ravel()
    if kind == "column":
        return grid.T.ravel()
    if kind == "snake":
        grid = grid.copy()
        grid[1::2] = grid[1::2, ::-1]
        return grid.ravel()
    raise ValueError(f"unknown pixel order kind {kind!r}; valid kinds: {list(PIXEL_ORDERS)}")


def flatten_images(images, order: str = "row") -> np.ndarray:
    """Flatten (n, h, w) images to (n, h*w) with pixels in the given :func:`pixel_order`."""
    arr = _as_images(images)
    h, w = arr.shape[-2:]
    flat = arr.reshape(*arr.shape[:-2], h * w)
    return flat[..., pixel_order(h, w, order)]


def shift_augment(images, labels, shifts: int = 1, *, diagonal: bool = False):
    """Training-set augmentation by whole-pixel translations, with zero fill.

    Returns the original images followed by one copy per shift: (dy, dx) for
    every 0 < |d| <= ``shifts`` along one axis (4 * shifts copies), plus the
    diagonal combinations when ``diagonal`` (then (2 * shifts + 1)**2 - 1
    copies). Shifting the 28x28 MNIST images by one pixel before
    ``downsample(..., 14)`` gives half-pixel shifts at 14x14. Uses
    ``scipy.ndimage.shift`` (order 0: pixels are moved, never interpolated).

    Parameters
    ----------
    images
        Array of shape (n, h, w).
    labels
        Array of shape (n,); repeated alongside.
    shifts
        Largest shift in pixels (>= 1).
    diagonal
        Also shift along both axes at once.

    Returns
    -------
    images, labels
        Shapes (n * (1 + copies), h, w) and (n * (1 + copies),), the originals first.

    Examples
    --------
    >>> X, y = qtn.data.load_digits()
    >>> Xa, ya = qtn.data.shift_augment(X[:10], y[:10])
    >>> Xa.shape, ya.shape
    ((50, 8, 8), (50,))
    """
    from scipy import ndimage

    arr = _as_images(images)
    if arr.ndim != 3:
        raise ValueError(f"images must have shape (n, height, width), got {arr.shape}")
    lab = np.asarray(labels)
    if lab.shape != arr.shape[:1]:
        raise ValueError(f"labels must have shape ({arr.shape[0]},), got {lab.shape}")
    if not isinstance(shifts, int | np.integer) or shifts < 1:
        raise ValueError(f"shifts must be an integer >= 1, got {shifts!r}")
    r = range(-shifts, shifts + 1)
    offsets = [
        (dy, dx) for dy in r for dx in r if (dy, dx) != (0, 0) and (diagonal or 0 in (dy, dx))
    ]
    out = [arr] + [
        ndimage.shift(arr, (0, dy, dx), order=0, mode="constant", cval=0) for dy, dx in offsets
    ]
    return np.concatenate(out), np.tile(lab, len(offsets) + 1)
