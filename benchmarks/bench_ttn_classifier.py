"""TTN classifier benchmark: TTNClassifier against MPSClassifier at equal parameter counts.

Prints one JSON line per model and case, and a ratio line. Run from the repository root::

    python benchmarks/bench_ttn_classifier.py --case digits
    python benchmarks/bench_ttn_classifier.py --case mnist14 --data-dir ../shared/data/mnist
    python benchmarks/bench_ttn_classifier.py --quick          # both cases at tiny sizes

Cases
-----
digits   8x8 digits, train_test_split(test_size=0.25, random_state=0); the TTN groups
         2x2 pixel blocks (image_shape=(8, 8)), the MPS reads pixels row by row.
mnist14  MNIST downsampled to 14x14 (196 pixels; the TTN pads to 16x16 = 256 leaves),
         full 60k/10k (``--n-train`` to subsample).

For each case the MPS bond dimension is given (``--mps-bond-dim``); the TTN bond
dimension is the one whose stored parameter count is closest to the MPS's. Both
train by gradients (Adam, warm-up + cosine, clipping) for the same number of
epochs, batch 64, trigonometric feature map, float32. ``first_epoch_s`` includes
compilation; ``median_epoch_s`` is the median of the others; ``infer_us`` is warm
inference time per test sample.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np


def emit(rec: dict) -> None:
    print(json.dumps(rec), flush=True)


def machine() -> dict:
    import jax

    dev = jax.devices()[0]
    return {
        "machine": platform.node(),
        "cpus": os.cpu_count(),
        "jax_device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
        "jax": jax.__version__,
    }


def ttn_params(n_features, image_shape, bond, n_classes, d=2):
    """Stored parameter count of a TTN classifier (tensors + temperature)."""
    from qtn.models import level_bond_dims, tree_layout

    lay = tree_layout(n_features, image_shape)
    k = lay.n_levels
    dims = level_bond_dims(k, bond, d)
    total = 1
    for lvl in range(k):
        out = dims[lvl + 1] if lvl + 1 < k else n_classes
        total += 2 ** (k - 1 - lvl) * dims[lvl] ** 2 * out
    return total


def matching_ttn_bond(n_features, image_shape, target, n_classes):
    return min(range(1, 129), key=lambda c: abs(ttn_params(n_features, image_shape, c,
                                                           n_classes) - target))  # fmt: skip


def run(est, Xtr, ytr, Xte, yte):
    t0 = time.perf_counter()
    est.fit(Xtr, ytr, eval_set=(Xte, yte))
    fit_s = time.perf_counter() - t0
    est.predict(Xte)  # warm the inference path (same chunk shapes as the timed call)
    t0 = time.perf_counter()
    acc = est.score(Xte, yte)
    infer_us = (time.perf_counter() - t0) / len(Xte) * 1e6
    secs = [h["seconds"] for h in est.history_]
    return {
        "model": type(est).__name__,
        "bond_dim": est.bond_dim,
        "n_params": int(est.params_.n_params),
        "epochs": len(secs),
        "test_accuracy": acc,
        "best_test_accuracy": max(h["val_accuracy"] for h in est.history_),
        "fit_s": fit_s,
        "first_epoch_s": secs[0],
        "median_epoch_s": statistics.median(secs[1:]) if len(secs) > 1 else secs[0],
        "infer_us": infer_us,
    }


def compare(case, Xtr, ytr, Xte, yte, image_shape, args):
    from qtn import MPSClassifier, TTNClassifier

    n_classes = len(np.unique(ytr))
    mps = MPSClassifier(bond_dim=args.mps_bond_dim, learning_rate=args.lr,
                        max_epochs=args.epochs, random_state=0)  # fmt: skip
    m = run(mps, Xtr, ytr, Xte, yte)
    emit({"case": case, "library": "qtn", **m, "n_train": len(Xtr), **machine()})
    bond = args.ttn_bond_dim or matching_ttn_bond(Xtr.shape[1], image_shape, m["n_params"],
                                                  n_classes)  # fmt: skip
    lr = args.ttn_lr or args.lr
    ttn = TTNClassifier(bond_dim=bond, image_shape=image_shape, learning_rate=lr,
                        max_epochs=args.epochs, random_state=0)  # fmt: skip
    t = run(ttn, Xtr, ytr, Xte, yte)
    emit({"case": case, "library": "qtn", **t, "n_train": len(Xtr), **machine()})
    emit({
        "case": case, "ratio": "TTN/MPS", "params_ratio": t["n_params"] / m["n_params"],
        "accuracy_ttn_minus_mps": t["test_accuracy"] - m["test_accuracy"],
        "epoch_time_ratio": t["median_epoch_s"] / m["median_epoch_s"],
        "infer_time_ratio": t["infer_us"] / m["infer_us"],
    })  # fmt: skip


def case_digits(args):
    from sklearn.model_selection import train_test_split

    from qtn.data import load_digits

    X, y = load_digits(flatten=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    compare("digits", Xtr, ytr, Xte, yte, (8, 8), args)


def case_mnist14(args):
    from qtn.data import downsample, load_mnist

    (X, y), (Xt, yt) = load_mnist(args.data_dir, progress=False)
    n = args.n_train or (2000 if args.quick else len(X))
    X, y = X[:n], y[:n]
    if args.quick:
        Xt, yt = Xt[:500], yt[:500]
    X, Xt = (downsample(a, 14).reshape(len(a), -1) for a in (X, Xt))
    compare("mnist14", X, y, Xt, yt, (14, 14), args)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--case", choices=["digits", "mnist14", "all"], default="all")
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check the script runs")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--mps-bond-dim", type=int, default=None)
    p.add_argument("--ttn-bond-dim", type=int, default=None, help="default: equal parameters")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate of both models")
    p.add_argument("--ttn-lr", type=float, default=None, help="TTN learning rate (default --lr)")
    p.add_argument("--n-train", type=int, default=None, help="mnist14: training images")
    args = p.parse_args(argv)
    quick = args.quick
    if args.case in ("digits", "all"):
        a = argparse.Namespace(**vars(args))
        a.epochs = args.epochs or (3 if quick else 30)
        a.mps_bond_dim = args.mps_bond_dim or (4 if quick else 16)
        case_digits(a)
    if args.case in ("mnist14", "all"):
        from qtn.data import find_dataset

        if find_dataset("mnist", args.data_dir) is None:
            emit({"case": "mnist14", "skipped": "MNIST not found (--data-dir)"})
        else:
            a = argparse.Namespace(**vars(args))
            a.epochs = args.epochs or (2 if quick else 10)
            a.mps_bond_dim = args.mps_bond_dim or (4 if quick else 32)
            case_mnist14(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
