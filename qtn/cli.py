"""The ``qtn`` command: ``qtn datasets``, ``qtn demo``, ``qtn --version``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from qtn._version import __version__


def _cmd_datasets(args: argparse.Namespace) -> int:
    from qtn.data import default_cache_dir, find_dataset

    print("qtn datasets")
    print("  digits          available  (8x8, 1797 samples, bundled with scikit-learn)")
    print("  bars_and_stripes available (generated exactly for any rows x cols)")
    for name in ("mnist", "fashion-mnist"):
        where = find_dataset(name, args.data_dir)
        status = f"found in {where}" if where else "not found (load with download=True)"
        print(f"  {name:<15} {status}")
    print(
        "search order: --data-dir / data_dir=, "
        f"QTN_DATA_DIR={os.environ.get('QTN_DATA_DIR', '')!r}, "
        f"cache {default_cache_dir()}"
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from qtn import demo

    return demo.run(seed=args.seed, quick=args.quick, verbose=not args.quiet)


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
