"""Metrics shared by training, compilation and execution, in one place.

- :func:`fidelity` of pure states (vectors) and mixed states (density matrices);
- :func:`kl_divergence`, :func:`total_variation` between distributions;
- :func:`nll`: mean negative log-likelihood of observed probabilities;
- :func:`accuracy`, :func:`class_probabilities` (classes from measured outcomes),
  :func:`expected_calibration_error`.

Functions that training or fine-tuning trace take ``xp`` (``numpy`` by
default, or ``jax.numpy``); JAX is never imported here.

Examples
--------
>>> import numpy as np
>>> from qtn.metrics import total_variation, kl_divergence
>>> total_variation([0.5, 0.5], [1.0, 0.0])
0.5
>>> round(kl_divergence([0.5, 0.5], [0.25, 0.75]), 4)
0.1438
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "fidelity",
    "kl_divergence",
    "total_variation",
    "nll",
    "accuracy",
    "class_probabilities",
    "expected_calibration_error",
]


def _distribution(name: str, p) -> np.ndarray:
    arr = np.asarray(p, dtype=float)
    if arr.ndim < 1 or arr.shape[-1] == 0:
        raise ValueError(f"{name} must be a non-empty probability vector, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < -1e-12):
        raise ValueError(f"{name} must hold finite, non-negative probabilities")
    total = arr.sum(-1)
    if not np.allclose(total, 1.0, atol=1e-6):
        raise ValueError(
            f"{name} must sum to 1 over its last axis, got sums {np.unique(total)[:4]}"
        )
    return np.clip(arr, 0.0, None)


def total_variation(p, q) -> float | np.ndarray:
    """Total variation distance 0.5 * sum |p - q| (over the last axis)."""
    p, q = _distribution("p", p), _distribution("q", q)
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(f"p and q have different numbers of outcomes: {p.shape} vs {q.shape}")
    out = 0.5 * np.abs(p - q).sum(-1)
    return float(out) if out.ndim == 0 else out


def kl_divergence(p, q) -> float | np.ndarray:
    """KL(p || q) = sum p log(p / q) in nats (terms with p = 0 are 0; inf where q = 0 < p)."""
    p, q = _distribution("p", p), _distribution("q", q)
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(f"p and q have different numbers of outcomes: {p.shape} vs {q.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - np.log(q)), 0.0)
    out = terms.sum(-1)
    return float(out) if out.ndim == 0 else out


def nll(probs, *, xp=np):
    """Mean negative log-likelihood ``-mean(log probs)`` of observed-sample probabilities."""
    probs = xp.asarray(probs)
    return -xp.mean(xp.log(probs))


def fidelity(a, b) -> float:
    """Fidelity of two states: vectors (pure) or density matrices (mixed).

    Pure-pure: |<a|b>|^2; pure-mixed: <a|rho|a>; mixed-mixed: Uhlmann's
    (tr sqrt(sqrt(rho) sigma sqrt(rho)))^2. Vectors are normalised first.
    """
    a, b = np.asarray(a, dtype=complex), np.asarray(b, dtype=complex)
    for name, s in (("a", a), ("b", b)):
        if s.ndim not in (1, 2) or (s.ndim == 2 and s.shape[0] != s.shape[1]) or s.size == 0:
            raise ValueError(f"{name} must be a state vector or a square density matrix")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{name} contains NaN or inf")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b have different dimensions: {a.shape[0]} vs {b.shape[0]}")
    if a.ndim == 1:
        a = a / np.linalg.norm(a)
    if b.ndim == 1:
        b = b / np.linalg.norm(b)
    if a.ndim == 1 and b.ndim == 1:
        return float(abs(np.vdot(a, b)) ** 2)
    if a.ndim == 1 or b.ndim == 1:
        psi, rho = (a, b) if a.ndim == 1 else (b, a)
        return float(np.real(np.vdot(psi, rho @ psi)))
    from scipy.linalg import sqrtm

    root = sqrtm(a)
    return float(np.real(np.trace(sqrtm(root @ b @ root))) ** 2)


def accuracy(y_true, y_pred, *, sample_weight=None, xp=np):
    """Fraction of equal entries, weighted by ``sample_weight`` when given."""
    y_true, y_pred = xp.asarray(y_true), xp.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred have different shapes: {y_true.shape} vs {y_pred.shape}"
        )
    hit = (y_true == y_pred).astype(float if xp is np else "float32")
    if sample_weight is None:
        return xp.mean(hit)
    w = xp.asarray(sample_weight)
    return xp.sum(hit * w) / xp.sum(w)


def class_probabilities(probs, n_classes: int, xp=np):
    """Class probabilities from outcome probabilities: the first ``n_classes`` outcomes,
    renormalised (two classes read from one measured qubit use both outcomes)."""
    probs = xp.asarray(probs)
    if n_classes < 2 or n_classes > probs.shape[-1]:
        raise ValueError(f"n_classes must be in [2, {probs.shape[-1]}], got {n_classes}")
    p = probs[..., :n_classes]
    return p / xp.clip(p.sum(-1, keepdims=True), 1e-12, None)


def expected_calibration_error(proba, y, *, n_bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence, ``n_bins`` equal-width bins.

    ``proba`` is (n, n_classes), ``y`` integer class indices (n,).
    """
    proba, y = np.asarray(proba, dtype=float), np.asarray(y)
    if proba.ndim != 2 or y.shape != (proba.shape[0],):
        raise ValueError(f"proba must be (n, n_classes) and y (n,), got {proba.shape}, {y.shape}")
    conf = proba.max(1)
    correct = proba.argmax(1) == y
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)
