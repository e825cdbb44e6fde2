"""Angle encodings: the single-qubit rotation that prepares a feature map's state.

RY(theta)|0> = cos(theta/2)|0> + sin(theta/2)|1>, so with theta = pi x the
qubit holds exactly the trigonometric feature vector [cos(pi x/2), sin(pi x/2)].
Circuit models and classical MPS models therefore see identical inputs.
"""

from __future__ import annotations

import math

from qtn.features.maps import _xp, trigonometric

__all__ = ["angle_encoding", "ry_matrix"]


def angle_encoding(x, *, validate: bool = True):
    """RY angles theta = pi x for features x in [0, 1] (same range rules as the trigonometric map).

    Examples
    --------
    >>> theta = qtn.features.angle_encoding(np.array([0.5]))
    >>> state = qtn.features.ry_matrix(theta[0]) @ np.array([1.0, 0.0])
    >>> np.allclose(state, qtn.get_feature_map("trigonometric")(0.5))
    True
    """
    if validate:
        x = trigonometric().validate(x)
    return math.pi * _xp(x).asarray(x)


def ry_matrix(theta):
    """The RY(theta) rotation matrix(es), shape (..., 2, 2)."""
    xp = _xp(theta)
    t = xp.asarray(theta) / 2
    c, s = xp.cos(t), xp.sin(t)
    return xp.stack([xp.stack([c, -s], -1), xp.stack([s, c], -1)], -2)
