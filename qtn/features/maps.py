"""Local feature maps x -> phi(x): each scalar feature becomes a unit vector of dimension d.

A :class:`FeatureMap` applies elementwise: an input of shape ``(...,)`` maps to
``(..., d)``. It is a pure function of its input, so it works on one sample,
on a batch, and inside ``jax.jit``/``jax.vmap`` (numpy in gives numpy out; JAX
in gives JAX out). Range checks run on concrete inputs; under a JAX trace they
are skipped, so validate data before a jitted loop (the estimators do).

Maps are registered by name: :func:`get_feature_map` and :func:`list_feature_maps`.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "FeatureMap",
    "register_feature_map",
    "get_feature_map",
    "list_feature_maps",
    "trigonometric",
    "spin_coherent",
    "one_hot",
]

_TOL = 1e-6  # values this far outside the range are treated as rounding and clipped silently


def _xp(x):
    """numpy, or jax.numpy when x is a JAX array or tracer (JAX is never imported here)."""
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, jax.Array):
        import jax.numpy as jnp

        return jnp
    return np


def _is_concrete(x) -> bool:
    jax = sys.modules.get("jax")
    return jax is None or not isinstance(x, jax.core.Tracer)


@dataclass(frozen=True)
class FeatureMap:
    """A named, vectorised local feature map.

    Attributes
    ----------
    name
        Registry name.
    dim
        Local dimension d of phi(x).
    low, high
        Documented input range.
    clip
        If True, inputs outside [low, high] are clipped with a ``UserWarning``;
        if False (default) they raise ``ValueError``.
    discrete
        Inputs must be integers (one-hot maps).
    """

    name: str
    dim: int
    low: float
    high: float
    fn: Callable[[Any, Any], Any] = field(repr=False, compare=False)
    clip: bool = False
    discrete: bool = False

    def validate(self, x, argname: str = "x"):
        """Check (and, if ``clip``, clip) a concrete input; returns the input to map."""
        if not _is_concrete(x):  # traced: only the dtype is known
            if np.issubdtype(x.dtype, np.complexfloating):
                raise ValueError(f"{argname} must be real numbers, got dtype {x.dtype}")
            return x
        arr = np.asarray(x)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{argname} must be numeric, got dtype {arr.dtype}")
        if np.iscomplexobj(arr):
            raise ValueError(
                f"{argname} must be real numbers, got complex values (feature map {self.name!r})"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(
                f"{argname} contains NaN or inf; feature map {self.name!r} needs finite values"
            )
        if self.discrete:
            if arr.size and (
                not np.all(arr == np.round(arr)) or arr.min() < self.low or arr.max() > self.high
            ):
                raise ValueError(
                    f"{argname} must hold integers in [{int(self.low)}, {int(self.high)}] "
                    f"for feature map {self.name!r}, got values in [{arr.min()}, {arr.max()}]"
                )
            return x
        if arr.size == 0:
            return x
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= self.low and hi <= self.high:
            return x
        if lo >= self.low - _TOL and hi <= self.high + _TOL:
            return _xp(x).clip(x, self.low, self.high)
        if self.clip:
            warnings.warn(
                f"{argname} has values in [{lo:.4g}, {hi:.4g}], outside [{self.low}, "
                f"{self.high}] for feature map {self.name!r}; clipping them",
                UserWarning,
                stacklevel=3,
            )
            return _xp(x).clip(x, self.low, self.high)
        raise ValueError(
            f"{argname} has values in [{lo:.4g}, {hi:.4g}], outside the range "
            f"[{self.low}, {self.high}] of feature map {self.name!r}; rescale the data "
            "(for example MinMaxScaler(clip=True)) or pass clip=True to clip with a warning"
        )

    def __call__(self, x, *, validate: bool = True):
        """Map features of shape (...,) to local vectors of shape (..., dim)."""
        if validate:
            x = self.validate(x)
        xp = _xp(x)
        return self.fn(xp, xp.asarray(x))


_REGISTRY: dict[str, Callable[..., FeatureMap]] = {}


def register_feature_map(name: str, factory: Callable[..., FeatureMap] | None = None):
    """Register a factory ``factory(**kw) -> FeatureMap`` under ``name`` (usable as a decorator)."""

    def deco(f):
        _REGISTRY[name] = f
        return f

    return deco(factory) if factory is not None else deco


def list_feature_maps() -> list[str]:
    """Names accepted by :func:`get_feature_map`."""
    return sorted(_REGISTRY)


def get_feature_map(name: str | FeatureMap, **kwargs) -> FeatureMap:
    """Look up a feature map by name and build it with ``kwargs``.

    Examples
    --------
    >>> fm = qtn.get_feature_map("trigonometric")
    >>> fm(np.array([0.0, 1.0])).round(6).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    if isinstance(name, FeatureMap):
        if kwargs:
            raise ValueError("keyword arguments are only accepted with a feature map name")
        return name
    try:
        factory = _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown feature map {name!r}; valid names: {list_feature_maps()}"
        ) from None
    return factory(**kwargs)


def _trig(xp, x):
    a = (math.pi / 2) * x
    return xp.stack([xp.cos(a), xp.sin(a)], axis=-1)


@register_feature_map("trigonometric")
def trigonometric(*, clip: bool = False) -> FeatureMap:
    """phi(x) = [cos(pi x/2), sin(pi x/2)] for x in [0, 1] (Stoudenmire & Schwab, arXiv:1605.05775).

    It equals the state RY(pi x)|0>, see :func:`qtn.features.angle_encoding`.
    """
    return FeatureMap("trigonometric", 2, 0.0, 1.0, _trig, clip=clip)


@register_feature_map("spin_coherent")
def spin_coherent(dim: int = 3, *, clip: bool = False) -> FeatureMap:
    """The d-dimensional generalisation of the trigonometric map (spin-coherent form).

    phi_s(x) = sqrt(C(d-1, s)) cos(pi x/2)^(d-1-s) sin(pi x/2)^s,  s = 0..d-1,

    for x in [0, 1]: the spin-(d-1)/2 coherent state along the polar angle
    pi x, i.e. the symmetric (d-1)-fold tensor power of the trigonometric
    vector. Unit norm by the binomial theorem; ``dim=2`` is the trigonometric map.
    """
    if not isinstance(dim, int | np.integer) or dim < 2:
        raise ValueError(f"dim must be an integer >= 2, got {dim!r}")
    d = int(dim)
    s = np.arange(d)
    coef = np.sqrt([math.comb(d - 1, int(k)) for k in s])

    def fn(xp, x):
        a = (math.pi / 2) * x[..., None]
        c, sn = xp.cos(a), xp.sin(a)
        # powers with 0**0 == 1 so the endpoints stay exact
        return xp.asarray(coef, dtype=c.dtype) * c ** (d - 1 - s) * sn**s

    return FeatureMap("spin_coherent", d, 0.0, 1.0, fn, clip=clip)


@register_feature_map("one_hot")
def one_hot(dim: int = 2) -> FeatureMap:
    """Basis-state map for discrete data: an integer k in {0..dim-1} maps to e_k."""
    if not isinstance(dim, int | np.integer) or dim < 2:
        raise ValueError(f"dim must be an integer >= 2, got {dim!r}")
    d = int(dim)

    def fn(xp, x):
        ks = xp.arange(d)
        return (x[..., None] == ks).astype(xp.float32 if xp is not np else np.float64)

    return FeatureMap("one_hot", d, 0, d - 1, fn, discrete=True)
