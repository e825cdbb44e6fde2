"""The ``qtn`` command: ``qtn datasets``, ``qtn demo``, ``qtn --version``.

:func:`demo` is the pipeline end to end on data that ships with the dependencies.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from qtn._version import __version__

__all__ = ["main", "build_parser", "demo"]


def _cmd_datasets(args: argparse.Namespace) -> int:
    from qtn.data import default_cache_dir, locate_dataset

    print("qtn datasets")
    print("  digits          available  (8x8, 1797 samples, bundled with scikit-learn)")
    print("  bars_and_stripes available (generated exactly for any rows x cols)")
    for name in ("mnist", "fashion-mnist"):
        loc = locate_dataset(name, args.data_dir)
        status = f"found in {loc.found}" if loc.found else "not found (load with download=True)"
        print(f"  {name:<15} {status}  (identified by MD5)")
        for d, other in loc.others:
            print(f"  {'':<15} {d} holds {other} files, not {name}")
        for f, _ in loc.corrupted:
            print(f"  {'':<15} {f} matches no known checksum (corrupted?)")
    print(
        "search order: --data-dir / data_dir=, "
        f"QTN_DATA_DIR={os.environ.get('QTN_DATA_DIR', '')!r}, "
        f"cache {default_cache_dir()}"
    )
    return 0


def demo(*, seed: int = 0, quick: bool = False, verbose: bool = True) -> int:
    """Train an MPS classifier on the digits and print a short summary; returns an exit code."""
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


def _cmd_demo(args: argparse.Namespace) -> int:
    return demo(seed=args.seed, quick=args.quick, verbose=not args.quiet)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qtn",
        description="qtn: quantum-classical tensor network machine learning.",
    )
    parser.add_argument("--version", action="version", version=f"qtn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("datasets", help="list datasets and where they were found")
    p.add_argument("--data-dir", default=None, help="extra directory to look in first")
    p.set_defaults(func=_cmd_datasets)

    p = sub.add_parser("demo", help="run the pipeline end to end on the bundled digits")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quick", action="store_true", help="a smaller, faster run")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    t0 = time.perf_counter()
    rc = args.func(args)
    if args.command == "demo":
        print(f"done in {time.perf_counter() - t0:.1f} s")
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
