"""SPSA with momentum (Spall 1992; as used by Huggins et al., arXiv:1803.11537).

Each iteration k perturbs all parameters at once along a random sign vector
Delta in {-1, +1}^P and estimates the gradient from two loss evaluations::

    g_k   = (L(theta + c_k Delta) - L(theta - c_k Delta)) / (2 c_k) * Delta
    v_k+1 = gamma v_k - a_k g_k,    theta_k+1 = theta_k + v_k+1
    a_k   = a / (k + 1 + A)^s,      c_k = b / (k + 1)^t

Two evaluations per step whatever the number of parameters: the optimiser of
choice where only (noisy, sampled) loss values exist. Liao et al.'s example
configuration (arXiv:2209.01195) is ``a=28, b=33, A=7.41, s=1.13, t=0.658,
gamma=0.882`` (:data:`LIAO_CONFIG`); it belongs to their parameterisation and
loss scale. For angles of U3/RY/RZ gates a perturbation of b = 33 rad is no
perturbation at all (angles are 2 pi periodic), so qtn's default
(:class:`SPSAConfig`) keeps their schedule exponents and momentum and scales a
and b to angles: b = 0.2 rad, a = 2 (chosen by a short search over
a in {0.5, 2, 5} and b in {0.2, 0.5} on 4x4 3-vs-5 digits; see the README).

Examples
--------
>>> cfg = SPSAConfig()
>>> theta, hist, _ = spsa_minimize(lambda th, k: float(np.sum(th**2)), np.ones(3), 200, cfg, seed=0)
>>> bool(np.sum(theta**2) < 1e-2)
True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["SPSAConfig", "LIAO_CONFIG", "spsa_minimize"]


@dataclass(frozen=True)
class SPSAConfig:
    """SPSA hyperparameters (see the module docstring), validated at construction."""

    a: float = 2.0
    b: float = 0.2
    A: float = 7.41
    s: float = 1.13
    t: float = 0.658
    gamma: float = 0.882

    def __post_init__(self):
        for name in ("a", "b", "A", "s", "t"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"spsa {name} must be a finite number, got {v!r}")
            if v < 0 or (name in ("a", "b") and v == 0):
                raise ValueError(f"spsa {name} must be {'> 0' if name in 'ab' else '>= 0'}, "
                                 f"got {v!r}")  # fmt: skip
        g = self.gamma
        if isinstance(g, bool) or not isinstance(g, numbers.Real) or not 0 <= g < 1:
            raise ValueError(f"spsa gamma (momentum) must be in [0, 1), got {g!r}")

    def learning_rate(self, k: int) -> float:
        return self.a / (k + 1 + self.A) ** self.s

    def perturbation(self, k: int) -> float:
        return self.b / (k + 1) ** self.t


#: the example configuration of Liao et al.'s code (arXiv:2209.01195)
LIAO_CONFIG = SPSAConfig(a=28.0, b=33.0, A=7.41, s=1.13, t=0.658, gamma=0.882)


def spsa_minimize(
    loss: Callable[[np.ndarray, int], float],
    theta0,
    n_iter: int,
    config: SPSAConfig | None = None,
    *,
    seed: int = 0,
    start: int = 0,
    velocity=None,
    callback: Callable | None = None,
):
    """Minimise ``loss(theta, k)`` (k: the iteration, e.g. to pick a minibatch) by SPSA.

    Parameters
    ----------
    loss
        Returns a float; called twice per iteration with the same ``k``.
    theta0
        Initial parameters (P,).
    n_iter
        Iterations.
    config
        :class:`SPSAConfig` (default: qtn's angle-scaled configuration).
    seed
        Seed of the perturbation signs.
    start, velocity
        Continue a previous run: the first iteration number and the momentum.
    callback
        ``callback(k, theta, loss_estimate)`` after each iteration; returning True stops.

    Returns
    -------
    (theta, history, velocity)
        ``history``: one dict per iteration with the mean of the two loss values;
        ``velocity``: the momentum, to continue with ``velocity=``.
    """
    config = SPSAConfig() if config is None else config
    if not isinstance(config, SPSAConfig):
        raise TypeError(f"config must be an SPSAConfig, got {type(config).__name__}")
    if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < 1:
        raise ValueError(f"n_iter must be an integer >= 1, got {n_iter!r}")
    rng = np.random.default_rng(seed)
    theta = np.array(theta0, dtype=float)
    v = np.zeros_like(theta) if velocity is None else np.array(velocity, dtype=float)
    history = []
    for k in range(start, start + n_iter):
        delta = rng.choice([-1.0, 1.0], size=theta.shape)
        ck, ak = config.perturbation(k), config.learning_rate(k)
        lp, lm = float(loss(theta + ck * delta, k)), float(loss(theta - ck * delta, k))
        if not (math.isfinite(lp) and math.isfinite(lm)):
            raise FloatingPointError(f"spsa: the loss is not finite at iteration {k}")
        g = (lp - lm) / (2 * ck) * delta
        v = config.gamma * v - ak * g
        theta = theta + v
        est = 0.5 * (lp + lm)
        history.append({"iteration": k, "loss": est, "a_k": ak, "c_k": ck})
        if callback is not None and callback(k, theta, est):
            break
    return theta, history, v
