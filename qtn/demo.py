"""``qtn demo``: the pipeline end to end on data that ships with the dependencies."""

from __future__ import annotations

import time

import numpy as np


def run(*, seed: int = 0, quick: bool = False, verbose: bool = True) -> int:
    """Run the demo and print a short summary; returns a process exit code."""
    from sklearn.model_selection import train_test_split

    from qtn.data import load_digits
    from qtn.estimators import MPSClassifier
    from qtn.features import angle_encoding, get_feature_map, ry_matrix

    t0 = time.perf_counter()
    X, y = load_digits(flatten=True)
    print(
        f"[data]     digits: {X.shape[0]} images of 8x8 = {X.shape[1]} pixels, "
        f"{len(np.unique(y))} classes ({time.perf_counter() - t0:.2f} s)"
    )
    phi = get_feature_map("trigonometric")(X)
    states = ry_matrix(angle_encoding(X))[..., 0]
    print(
        f"[features] trigonometric map -> {phi.shape} local vectors; RY(pi x)|0> "
        f"agrees to {np.abs(states - phi).max():.1e}"
    )
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    chi, epochs = (8, 10) if quick else (16, 30)
    clf = MPSClassifier(
        bond_dim=chi, max_epochs=epochs, learning_rate=3e-3, random_state=seed, verbose=int(verbose)
    )
    t0 = time.perf_counter()
    clf.fit(Xtr, ytr)
    fit_s = time.perf_counter() - t0
    clf.predict(Xte)  # compile the inference path for this batch shape once
    t0 = time.perf_counter()
    acc = clf.score(Xte, yte)
    pred_us = (time.perf_counter() - t0) / len(Xte) * 1e6
    print(
        f"[model]    MPSClassifier: 64 sites, bond dimension {chi}, "
        f"{clf.params_.n_params:,} parameters"
    )
    print(
        f"[training] {epochs} epochs of Adam in {fit_s:.1f} s "
        f"({np.median([h['seconds'] for h in clf.history_[1:]]) * 1e3:.0f} ms/epoch after compile)"
    )
    print(
        f"[result]   test accuracy {acc:.2%} on {len(Xte)} held-out digits "
        f"({pred_us:.0f} us/sample)"
    )
    return 0
