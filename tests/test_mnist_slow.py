"""Full-size MNIST training (slow: about 5 minutes on 2 cores). Run by `make test-slow`."""

from __future__ import annotations

import pytest

from qtn import MPSClassifier
from qtn.data import downsample, load_mnist


@pytest.mark.slow
def test_mnist_14x14_trains_to_97_percent(mnist_dir):
    (X, y), (Xt, yt) = load_mnist(mnist_dir, progress=False)
    X = downsample(X, 14).reshape(len(X), -1)
    Xt = downsample(Xt, 14).reshape(len(Xt), -1)
    clf = MPSClassifier(bond_dim=16, max_epochs=4, random_state=0, verbose=0).fit(X, y)
    acc = clf.score(Xt, yt)
    assert acc >= 0.97, acc
    assert all(h["loss"] == h["loss"] for h in clf.history_)  # no NaN along the way


@pytest.mark.slow
def test_mnist_14x14_with_shift_augmentation_near_99_percent(mnist_dir):
    """The README's 99% recipe (about 4 minutes on 2 cores): one-pixel shifts at
    28x28 (4 copies), downsample to 14x14, chi=32, 4 epochs, default schedule.
    Measured 99.08% on the development machine; the bound leaves 0.28 points for
    CPU-dependent float32 rounding in XLA."""
    from qtn.data import shift_augment

    (X, y), (Xt, yt) = load_mnist(mnist_dir, progress=False)
    X, y = shift_augment(X, y, 1)
    X = downsample(X, 14).reshape(len(X), -1)
    Xt = downsample(Xt, 14).reshape(len(Xt), -1)
    clf = MPSClassifier(bond_dim=32, max_epochs=4, random_state=0, verbose=0).fit(X, y)
    acc = clf.score(Xt, yt)
    assert acc >= 0.988, acc
