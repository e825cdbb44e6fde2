"""``qtn demo``: the pipeline end to end on data that ships with the dependencies."""

from __future__ import annotations

import time

import numpy as np


def run(*, seed: int = 0, quick: bool = False, verbose: bool = True) -> int:
    """Run the demo and print a short summary; returns a process exit code."""
    from qtn.data import downsample, load_digits
    from qtn.features import angle_encoding, get_feature_map, ry_matrix

    t0 = time.perf_counter()
    X, y = load_digits()
    print(
        f"[data]     digits: {X.shape[0]} images of {X.shape[1]}x{X.shape[2]}, "
        f"{len(np.unique(y))} classes ({time.perf_counter() - t0:.2f} s)"
    )
    X4 = downsample(X, 4)
    fm = get_feature_map("trigonometric")
    phi = fm(X4.reshape(len(X4), -1))
    states = ry_matrix(angle_encoding(X4.reshape(len(X4), -1)))[..., 0]
    print(
        f"[features] trigonometric map: {phi.shape} local vectors, "
        f"max |norm-1| = {np.abs((phi**2).sum(-1) - 1).max():.1e}, "
        f"angle encoding agrees to {np.abs(states - phi).max():.1e}"
    )
    return 0
