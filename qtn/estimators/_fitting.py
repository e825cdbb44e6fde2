"""Helpers of the classifiers' ``fit`` / ``partial_fit``: weights, labels, hold-out splits."""

from __future__ import annotations

import numpy as np

__all__ = ["check_weights", "check_two_classes", "check_warm_start", "encode_labels",
           "holdout_split"]  # fmt: skip


def check_weights(sample_weight, X) -> np.ndarray:
    """Validated float64 sample weights (n,): finite, non-negative, ones when None."""
    from sklearn.utils.validation import _check_sample_weight

    return _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)


def check_two_classes(classes, y_enc, sample_weight, name: str) -> None:
    """Raise unless at least two classes occur (with positive weight, when weights are given)."""
    if len(classes) < 2:
        raise ValueError(f"y has 1 class ({classes[0]!r}); {name} needs at least two classes")
    if sample_weight is not None:
        live = np.unique(y_enc[sample_weight > 0])
        if len(live) < 2:
            raise ValueError(
                f"sample_weight leaves {len(live)} class with positive weight; {name} needs "
                "at least two classes with positive weight"
            )


def check_warm_start(old, n_features: int, classes) -> None:
    """A warm start continues the same problem: same number of features, same classes."""
    n_old, classes_old = old
    if n_features != n_old:
        raise ValueError(
            f"warm_start=True: X has {n_features} features, the fitted model {n_old}; "
            "set warm_start=False to start afresh"
        )
    if len(classes) != len(classes_old) or not np.array_equal(classes, classes_old):
        raise ValueError(
            f"warm_start=True: y has classes {list(classes)}, the fitted model "
            f"{list(classes_old)}; set warm_start=False to start afresh"
        )


def encode_labels(y, classes, argname: str) -> np.ndarray:
    """Indices of the labels ``y`` in ``classes``; unknown labels raise ValueError naming them."""
    lookup = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
    vals = np.asarray(y).tolist()
    unknown = sorted({v for v in vals if v not in lookup}, key=str)
    if unknown:
        raise ValueError(
            f"{argname} has labels {unknown[:5]} not among the classes {list(lookup)[:20]}"
        )
    return np.array([lookup[v] for v in vals], dtype=np.int64)


def holdout_split(y_enc, sample_weight, fraction: float, seed: int, cap: int | None = None):
    """Indices ``(train, held_out, reason)`` of a stratified hold-out of ``fraction``
    (at most ``cap`` samples).

    ``held_out`` is None (and ``reason`` says why) when the data are too few: every
    class needs two samples of positive weight, the hold-out one per class.
    """
    n = len(y_enc)
    everything = np.arange(n)
    if fraction <= 0:
        return everything, None, "no hold-out requested"
    live = sample_weight > 0
    counts = np.bincount(y_enc[live], minlength=int(y_enc.max()) + 1)
    n_classes = int(np.sum(counts > 0))
    n_held = int(np.ceil(fraction * live.sum()))
    n_held = n_held if cap is None else min(n_held, cap)
    if np.min(counts[counts > 0]) < 2 or n_held < n_classes or live.sum() - n_held < n_classes:
        return (
            everything,
            None,
            (
                f"too few samples to hold out {fraction:g} of them stratified "
                f"({int(live.sum())} samples of positive weight, {n_classes} classes)"
            ),
        )
    from sklearn.model_selection import train_test_split

    idx = everything[live]
    tr, held = train_test_split(idx, test_size=n_held, random_state=seed, stratify=y_enc[idx])
    # zero-weight samples never count, but stay in training (they change nothing there)
    tr = np.sort(np.concatenate([tr, everything[~live]]))
    return tr, np.sort(held), ""
