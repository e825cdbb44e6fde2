"""Temperature scaling of a classifier's probabilities (Guo et al. 2017, arXiv:1706.04599).

A classifier's output rule gives log-probabilities z = log p (Born: log |f_l|^2,
softmax: the scaled amplitudes); the calibrated probabilities are

    p_T = softmax(z / T),

one scalar T > 0 for the whole model, fitted by minimising the (weighted)
negative log-likelihood on data the model was *not* trained on. T > 1 softens
overconfident outputs, T < 1 sharpens underconfident ones (a cross-entropy
model whose learned temperature stayed small, for instance). The argmax, and
so ``predict`` and the accuracy, never change.

The NLL is convex in 1/T, so a bounded scalar search finds the optimum.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_temperature", "apply_temperature", "T_BOUNDS"]

#: the fitted temperature is kept within these bounds
T_BOUNDS = (1e-3, 1e3)
_FLOOR = 1e-30


def _log(p):
    return np.log(np.maximum(np.asarray(p, dtype=np.float64), _FLOOR))


def apply_temperature(proba, temperature: float) -> np.ndarray:
    """``softmax(log(proba) / temperature)`` row-wise; rows sum to one."""
    z = _log(proba) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def _nll(beta, z, y, w):
    s = beta * z
    s = s - s.max(axis=1, keepdims=True)
    lse = np.log(np.exp(s).sum(axis=1))
    return float(np.sum(w * (lse - s[np.arange(len(y)), y])) / np.sum(w))


def fit_temperature(proba, y, sample_weight=None) -> float:
    """The temperature T minimising the NLL of ``apply_temperature(proba, T)`` on labels ``y``.

    Parameters
    ----------
    proba
        (n, n_classes) probabilities of held-out samples under the uncalibrated rule.
    y
        Integer class indices (n,).
    sample_weight
        Optional non-negative weights (n,).

    Returns
    -------
    float
        T in :data:`T_BOUNDS`.

    Examples
    --------
    >>> p = np.array([[0.6, 0.4], [0.6, 0.4], [0.6, 0.4], [0.4, 0.6]])
    >>> round(fit_temperature(p, np.array([0, 0, 0, 1])), 3)  # always right: sharpen
    0.001
    """
    from scipy.optimize import minimize_scalar

    z = _log(proba)
    y = np.asarray(y, dtype=np.int64)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if z.ndim != 2 or y.shape != (z.shape[0],) or w.shape != y.shape:
        raise ValueError(
            f"proba must be (n, n_classes) with y and sample_weight (n,); got {z.shape}, "
            f"{y.shape}, {w.shape}"
        )
    if not np.sum(w) > 0:
        raise ValueError("fit_temperature needs samples of positive weight")
    lo, hi = np.log(1.0 / T_BOUNDS[1]), np.log(1.0 / T_BOUNDS[0])
    # unimodal in log(1/T) (convex in 1/T); a coarse grid guards the bracket, Brent refines
    grid = np.linspace(lo, hi, 25)
    vals = [_nll(np.exp(g), z, y, w) for g in grid]
    i = int(np.argmin(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = minimize_scalar(lambda g: _nll(np.exp(g), z, y, w), bounds=(a, b), method="bounded",
                          options={"xatol": 1e-6})  # fmt: skip
    best = res.x if res.fun <= vals[i] else grid[i]
    return float(np.clip(1.0 / np.exp(best), *T_BOUNDS))
