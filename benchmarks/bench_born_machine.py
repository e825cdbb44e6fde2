"""Born machine benchmark: bars and stripes, binarised MNIST NLL against bond dimension,
and exact sampling throughput against quimb.

Prints one JSON line per case. Run from the repository root::

    python benchmarks/bench_born_machine.py --case bas
    python benchmarks/bench_born_machine.py --case mnist --data-dir ../shared/data/mnist \\
        --bond-dims 10 20 50 100 200 --epochs 10 --time-budget 1800
    python benchmarks/bench_born_machine.py --case sampling
    python benchmarks/bench_born_machine.py --quick            # every case at tiny sizes

Cases
-----
bas       Bars and stripes 4x4 (30 patterns, optimum ln 30 = 3.401): seconds until the
          exact training NLL is within 0.01 of ln 30, for two-site sweeps and for
          gradient training (full batch, Adam), in the same run. Both the time
          including the first (compiling) epoch and the time after it are reported.
mnist     Binarised MNIST (28x28, threshold 0.5, the first 1,000 training images;
          Han et al., arXiv:1709.01662): exact training NLL after each sweep against
          the maximum bond dimension D, with wall time, and the NLL of the first
          1,000 test images (which Han et al. do not report). A test image can have
          probability exactly zero (a pixel that is never on in the training images),
          so ``test_nll`` may be inf: ``test_nll_finite`` and ``test_zero_prob`` give
          the mean over the others and their count. Han et al.'s training NLLs (95.19
          at D=10, 39.86 at D=100, 26.83 at D=200, 12.95 at D=500) are in ``han_nll``.
          Each D gets ``--time-budget`` seconds (sweeps stop after the one that crosses
          it); a D whose environment cache and cores would exceed ``--memory-gb`` is
          skipped with the estimate.
sampling  Exact i.i.d. samples from a 784-site MPS of bond dimension 100 (random,
          canonical): samples per second of qtn's batched sampler (warm, compile time
          separate) against quimb's ``MatrixProductState.sample`` (its canonicalisation
          timed separately, then per-sample time), and their ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

HAN_NLL = {10: 95.19, 100: 39.86, 200: 26.83, 500: 12.95}


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


# ----------------------------------------------------------------------------- bas


def time_to_target(history, target, key="val_loss"):
    """(seconds incl. the first epoch, seconds after it, epoch) when history reaches target."""
    total = 0.0
    for h in history:
        total += h["seconds"]
        if h[key] <= target:
            return total, total - history[0]["seconds"], h["epoch"] + 1
    return None, None, None


def case_bas(args):
    from qtn import BornMachine
    from qtn.data import bars_and_stripes

    rows = 3 if args.quick else 4
    X = bars_and_stripes(rows, rows, flatten=True)
    target = math.log(len(X)) + 0.01
    runs = {
        "sweep": dict(method="sweep", max_epochs=args.epochs or (4 if args.quick else 20)),
        "gradient": dict(method="gradient", batch_size=len(X), learning_rate=1e-2,
                         lr_schedule="constant",
                         max_epochs=args.grad_epochs or (300 if args.quick else 3000)),
    }  # fmt: skip
    for method, kw in runs.items():
        born = BornMachine(bond_dim=args.bas_bond_dim, random_state=0, **kw)
        t0 = time.perf_counter()
        born.fit(X, eval_set=X)  # val_loss: the exact training NLL after every epoch
        fit_s = time.perf_counter() - t0
        total, warm, epoch = time_to_target(born.history_, target)
        emit({
            "case": f"bas{rows}x{rows}", "library": "qtn", "method": method,
            "bond_dim": args.bas_bond_dim, "n_patterns": len(X), "optimum": math.log(len(X)),
            "final_nll": born.nll(X), "epochs": born.n_iter_, "fit_s": fit_s,
            "seconds_to_target": total, "seconds_to_target_after_compile": warm,
            "epochs_to_target": epoch, **machine(),
        })  # fmt: skip


# ----------------------------------------------------------------------------- mnist


def mnist_binary(args, n_train, n_test):
    from qtn.data import binarize, load_mnist

    (X, _), (Xt, _) = load_mnist(args.data_dir, progress=False)
    return (binarize(X[:n_train].reshape(n_train, -1), 0.5),
            binarize(Xt[:n_test].reshape(n_test, -1), 0.5))  # fmt: skip


def memory_estimate(n, n_sites, d, bond):
    """Bytes for the sweep's environment cache (two (n, D) vectors per site) and the cores."""
    return 4 * (2 * n_sites * n * bond + n_sites * bond * d * bond)


def case_mnist(args):
    from qtn import BornMachine

    n = 100 if args.quick else 1000
    X, Xt = mnist_binary(args, n, n)
    for bond in args.bond_dims or ([4, 8] if args.quick else [10, 20, 50, 100]):
        need = memory_estimate(n, X.shape[1], 2, bond) / 2**30
        base = {"case": "mnist_binary", "library": "qtn", "method": "sweep", "bond_dim": bond,
                "n_train": n, "n_test": n, "han_nll": HAN_NLL.get(bond)}  # fmt: skip
        if need > args.memory_gb:
            emit({**base, "skipped": f"needs ~{need:.1f} GiB > --memory-gb {args.memory_gb}"})
            continue
        born = BornMachine(
            bond_dim=bond, method="sweep", max_epochs=args.epochs or (2 if args.quick else 10),
            max_seconds=args.time_budget, random_state=0, verbose=args.verbose,
            **({} if args.local_steps is None else {"local_steps": args.local_steps}),
            **({} if args.learning_rate is None else {"learning_rate": args.learning_rate}),
        )  # fmt: skip
        t0 = time.perf_counter()
        born.fit(X)
        fit_s = time.perf_counter() - t0
        lp = born.log_prob(Xt)
        finite = np.isfinite(lp)
        emit({
            **base, "train_nll": born.history_[-1]["loss"],
            "train_nll_per_sweep": [round(h["loss"], 3) for h in born.history_],
            "test_nll": float(-lp.mean()),
            "test_nll_finite": float(-lp[finite].mean()) if finite.any() else None,
            "test_zero_prob": int((~finite).sum()), "sweeps": born.n_iter_, "fit_s": fit_s,
            "seconds_per_sweep": [round(h["seconds"], 2) for h in born.history_],
            "max_bond_rank": max(born.fit_info_["bond_ranks"]),
            "local_steps": born.local_steps, "learning_rate": born.learning_rate,
            "skipped_bonds_per_sweep": [h.get("skipped_bonds") for h in born.history_],
            "svd_retries_per_sweep": [h.get("svd_retries") for h in born.history_],
            "kernel_fallbacks_per_sweep": [h.get("kernel_fallbacks") for h in born.history_],
            "memory_estimate_gib": round(need, 2), "time_budget_s": args.time_budget,
            **machine(),
        })  # fmt: skip


# ----------------------------------------------------------------------------- sampling


def random_canonical_mps(n_sites, bond, seed=0):
    """A random 784-site MPS, canonical at site 0, built on the device (seconds, not minutes)."""
    import jax
    import jax.numpy as jnp

    from qtn.models import init_mps, right_canonicalize

    raw = init_mps(jax.random.key(seed), n_sites, bond, init_std=1.0, dtype=jnp.float32)
    return right_canonicalize(raw)


def case_sampling(args):
    import jax

    from qtn.models import mps_sample, to_quimb

    n_sites, bond = (64, 16) if args.quick else (784, 100)
    n = 512 if args.quick else args.n_samples
    mps = random_canonical_mps(n_sites, bond)
    t0 = time.perf_counter()
    x = mps_sample(mps, n, jax.random.key(0), canonical=True)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    x = mps_sample(mps, n, jax.random.key(1), canonical=True)
    warm = time.perf_counter() - t0
    qtn_rate = n / warm
    emit({"case": "sampling", "library": "qtn", "n_sites": n_sites, "bond_dim": bond,
          "n_samples": n, "first_call_s": first, "warm_s": warm, "samples_per_s": qtn_rate,
          "mean_bit": float(x.mean()), **machine()})  # fmt: skip
    q = to_quimb(jax.tree_util.tree_map(np.asarray, mps)).astype("float64")  # float32 gives NaN
    info: dict = {}
    t0 = time.perf_counter()
    q.canonicalize_(0, info=info)
    canon_s = time.perf_counter() - t0
    gen = q.sample(10**9, seed=0, info=info)
    next(gen)  # warm-up
    t0 = time.perf_counter()
    count = 0
    while count < args.peer_samples and time.perf_counter() - t0 < args.peer_seconds:
        next(gen)
        count += 1
    peer_s = time.perf_counter() - t0
    peer_rate = count / peer_s
    import quimb

    emit({"case": "sampling", "library": f"quimb {quimb.__version__}", "n_sites": n_sites,
          "bond_dim": bond, "n_samples": count, "canonicalize_s": canon_s, "warm_s": peer_s,
          "samples_per_s": peer_rate, **machine()})  # fmt: skip
    emit({"case": "sampling", "ratio": "qtn/quimb", "samples_per_s_ratio": qtn_rate / peer_rate})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--case", choices=["bas", "mnist", "sampling", "all"], default="all")
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check the script runs")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--bond-dims", type=int, nargs="*", default=None, help="mnist: values of D")
    p.add_argument("--epochs", type=int, default=None, help="sweeps per run (bas, mnist)")
    p.add_argument("--grad-epochs", type=int, default=None, help="bas: gradient epochs")
    p.add_argument("--bas-bond-dim", type=int, default=16)
    p.add_argument("--time-budget", type=float, default=None, help="mnist: seconds per D")
    p.add_argument("--memory-gb", type=float, default=20.0, help="mnist: skip D beyond this")
    p.add_argument("--n-samples", type=int, default=10000, help="sampling: qtn samples")
    p.add_argument("--peer-samples", type=int, default=200, help="sampling: quimb samples")
    p.add_argument("--peer-seconds", type=float, default=120.0, help="sampling: quimb budget")
    p.add_argument("--local-steps", type=int, default=None, help="mnist: steps per bond")
    p.add_argument("--learning-rate", type=float, default=None, help="mnist: sweep step size")
    p.add_argument("--verbose", type=int, default=0)
    args = p.parse_args(argv)
    if args.case in ("bas", "all"):
        case_bas(args)
    if args.case in ("mnist", "all"):
        from qtn.data import find_dataset

        if find_dataset("mnist", args.data_dir) is None:
            emit({"case": "mnist_binary", "skipped": "MNIST not found (--data-dir)"})
        else:
            case_mnist(args)
    if args.case in ("sampling", "all"):
        case_sampling(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
