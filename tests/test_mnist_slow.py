"""Full-size MNIST training (slow: about a minute on 2 cores). Run by `make test-slow`."""

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
