"""MPS classifier benchmark: qtn against tn4ml on digits, and qtn on MNIST.

Prints one JSON line per case. Run from the repository root, in an environment
with the ``bench`` extra (``make bench`` creates ``.venv-bench``)::

    python benchmarks/bench_mps_classifier.py --case digits
    python benchmarks/bench_mps_classifier.py --case digits-sweep
    python benchmarks/bench_mps_classifier.py --case mnist14 --data-dir ../shared/data/mnist
    python benchmarks/bench_mps_classifier.py --case mnist14-sweep --data-dir ../shared/data/mnist
    python benchmarks/bench_mps_classifier.py --case mnist28 --data-dir ../shared/data/mnist

``--quick`` shrinks every case (a few hundred samples, one or two epochs) to check
that the script runs; its numbers mean nothing.

Cases
-----
digits   8x8 digits, train_test_split(test_size=0.25, random_state=0), trigonometric
         map, batch 64, Adam lr 1e-3, bond dimensions 10 and 32, the same number of
         epochs for qtn (float32) and tn4ml (float64 with x64, its documented
         setting: in float32 its loss is NaN). A ``ratio`` line per bond dimension
         gives tn4ml/qtn seconds per epoch and inference time, and the accuracy gap.
         qtn runs once per loss (--losses; default cross_entropy, nll, mse), each with
         its default calibration, and reports test log loss and expected calibration
         error (15 bins) beside the accuracy.
digits-sweep  qtn's method="sweep" (the paper's quadratic cost, CG per bond) against
         tn4ml's "sweeps" strategy on the same digits split: seconds per sweep and
         test accuracy, and their ratios.
mnist14  MNIST downsampled to 14x14 (196 sites), full 60k/10k; test accuracy after
         every epoch against wall time, for gradient and sweep training.
mnist14-sweep  the sweep table: method="sweep", loss="mse" at bond dimensions 20, 40,
         80, 120 (--bond-dims), test accuracy after every sweep against wall time
         (``curve``); --augment adds shifted copies, --time-budget stops a run.
mnist28  MNIST at 28x28 (784 sites), bond dimension 10.
cores    the 2-core speedup of gradient training: the same fit (digits by default, or
         --cores-data mnist14 on the first --cores-train images; bond dimensions
         --bond-dims, default 10 and 32; --epochs, default 5 here) in a fresh process
         per setting: ``1core`` (pinned to one core before JAX starts), ``all`` (every
         core, qtn's default: one JAX device, XLA's intra-op threads) and ``all-split``
         (every core, ``QTN_CPU_DEVICES=<cores>``: one JAX CPU device per core and
         each minibatch split over them, the opt-in data-parallel path). One compiling epoch,
         then --epochs timed ones (warm start): median seconds per epoch, CPU and
         wall time, ``parallelism`` (CPU time over the busiest thread's: the cores
         the work keeps busy, whatever else runs on the machine) and a ``ratio`` line with
         ``speedup = 1core / all`` per bond dimension; ``loadavg`` is the machine's
         load when each child started (other processes take cores too).

Timings: ``first_epoch_s`` includes JIT compilation, ``median_epoch_s`` is the
median of the other epochs, ``infer_us`` is warm inference time per test sample.
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


def _record(library, method, bond_dim, secs, acc, fit_s, infer_us) -> dict:
    """The fields every training case reports, per-epoch times summarised."""
    return {
        "library": library,
        "method": method,
        "bond_dim": bond_dim,
        "epochs": len(secs),
        "test_accuracy": acc,
        "fit_s": fit_s,
        "first_epoch_s": secs[0],
        "median_epoch_s": statistics.median(secs[1:]) if len(secs) > 1 else secs[0],
        "infer_us": infer_us,
    }


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


def digits_split():
    from sklearn.model_selection import train_test_split

    from qtn.data import load_digits

    X, y = load_digits(flatten=True)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def run_qtn(
    Xtr,
    ytr,
    Xte,
    yte,
    *,
    bond_dim,
    epochs,
    lr=1e-3,
    method="gradient",
    max_seconds=None,
    label=None,
    **kw,
):
    from sklearn.metrics import log_loss

    from qtn import MPSClassifier
    from qtn.metrics import expected_calibration_error

    clf = MPSClassifier(
        bond_dim=bond_dim,
        method=method,
        learning_rate=lr,
        max_epochs=epochs,
        batch_size=64,
        random_state=0,
        verbose=0,
        max_seconds=max_seconds,
        **kw,
    )
    t0 = time.perf_counter()
    clf.fit(Xtr, ytr, eval_set=(Xte, yte))
    fit_s = time.perf_counter() - t0
    clf.predict(Xte)  # warm the inference path
    t0 = time.perf_counter()
    acc = clf.score(Xte, yte)
    infer_us = (time.perf_counter() - t0) / len(Xte) * 1e6
    secs = [h["seconds"] for h in clf.history_]
    wall = np.cumsum(secs).tolist()
    proba = clf.predict_proba(Xte)
    y_idx = np.searchsorted(clf.classes_, yte)
    return {
        **_record("qtn", method, bond_dim, secs, acc, fit_s, infer_us),
        "loss": clf.loss,
        "test_log_loss": float(log_loss(y_idx, proba, labels=np.arange(len(clf.classes_)))),
        "test_ece": expected_calibration_error(proba, y_idx),
        "temperature": clf.temperature_,
        "n_params": clf.params_.n_params,
        "curve": [[round(w, 2), round(h["val_accuracy"], 4)] for w, h in zip(wall, clf.history_)],
        **({"label": label} if label else {}),
    }


def run_tn4ml(Xtr, ytr, Xte, yte, *, bond_dim, epochs, lr=1e-3):
    import jax
    import jax.numpy as jnp
    import optax
    from tn4ml.embeddings import TrigonometricEmbedding
    from tn4ml.initializers import randn
    from tn4ml.metrics import OptaxWrapper
    from tn4ml.models.model import TrainingType
    from tn4ml.models.mps import MPS_initialize
    from tn4ml.util import integer_to_one_hot

    jax.config.update("jax_enable_x64", True)

    def cross_entropy(*a, **k):
        return OptaxWrapper(optax.softmax_cross_entropy)(*a, **k).mean()

    n_sites = Xtr.shape[1]
    model = MPS_initialize(
        L=n_sites,
        initializer=randn(1e-4),
        key=jax.random.key(0),
        shape_method="noteven",
        compress=False,
        cyclic=False,
        phys_dim=2,
        bond_dim=bond_dim,
        class_index=n_sites // 2,
        canonical_center=n_sites // 2,
        class_dim=10,
        add_identity=True,
        boundary="obc",
        dtype=jnp.float64,
    )
    model.configure(
        optimizer=optax.adam,
        strategy="global",
        loss=cross_entropy,
        train_type=TrainingType.SUPERVISED,
        learning_rate=lr,
    )
    emb = TrigonometricEmbedding()
    t0 = time.perf_counter()
    hist = model.train(
        Xtr,
        targets=integer_to_one_hot(ytr, 10),
        epochs=epochs,
        batch_size=64,
        embedding=emb,
        normalize=True,
        dtype=jnp.float64,
    )
    fit_s = time.perf_counter() - t0
    yoh = integer_to_one_hot(yte, 10)
    model.accuracy(Xte[:64], yoh[:64], embedding=emb, batch_size=64, dtype=jnp.float64)  # warm
    t0 = time.perf_counter()
    acc = float(model.accuracy(Xte, yoh, embedding=emb, batch_size=64, dtype=jnp.float64))
    infer_us = (time.perf_counter() - t0) / len(Xte) * 1e6
    secs = list(hist["epoch_time"])
    jax.config.update("jax_enable_x64", False)
    return {
        **_record("tn4ml", "gradient", bond_dim, secs, acc, fit_s, infer_us),
        "dtype": "float64",
    }


def case_digits(args):
    Xtr, Xte, ytr, yte = digits_split()
    if args.quick:
        Xtr, ytr = Xtr[:300], ytr[:300]
    for chi in args.bond_dims or [10, 32]:
        for loss in args.losses:
            q = run_qtn(Xtr, ytr, Xte, yte, bond_dim=chi, epochs=args.epochs, loss=loss)
            emit({"case": "digits", **q, **machine()})
        if args.no_peer:
            continue
        try:
            t = run_tn4ml(Xtr, ytr, Xte, yte, bond_dim=chi, epochs=args.peer_epochs or args.epochs)
        except ImportError as exc:
            emit({"case": "digits", "library": "tn4ml", "skipped": f"not installed: {exc}"})
            continue
        emit({"case": "digits", **t})
        emit(
            {
                "case": "digits",
                "ratio": "tn4ml/qtn",
                "bond_dim": chi,
                "epoch_speedup": t["median_epoch_s"] / q["median_epoch_s"],
                "first_epoch_speedup": t["first_epoch_s"] / q["first_epoch_s"],
                "infer_speedup": t["infer_us"] / q["infer_us"],
                "accuracy_qtn_minus_tn4ml": q["test_accuracy"] - t["test_accuracy"],
                "epochs_qtn": q["epochs"],
                "epochs_tn4ml": t["epochs"],
            }
        )


def run_tn4ml_sweeps(Xtr, ytr, Xte, yte, *, bond_dim, sweeps, lr=1e-2):
    """tn4ml's DMRG-like "sweeps" strategy (two-site updates, SVD split at each bond)."""
    import jax
    import jax.numpy as jnp
    import optax
    from tn4ml.embeddings import TrigonometricEmbedding
    from tn4ml.initializers import randn
    from tn4ml.metrics import OptaxWrapper
    from tn4ml.models.model import TrainingType
    from tn4ml.models.mps import MPS_initialize
    from tn4ml.util import integer_to_one_hot

    jax.config.update("jax_enable_x64", True)

    def cross_entropy(*a, **k):
        return OptaxWrapper(optax.softmax_cross_entropy)(*a, **k).mean()

    n_sites = Xtr.shape[1]
    model = MPS_initialize(
        L=n_sites, initializer=randn(1e-4), key=jax.random.key(0), shape_method="noteven",
        compress=False, cyclic=False, phys_dim=2, bond_dim=bond_dim, class_index=n_sites // 2,
        canonical_center=n_sites // 2, class_dim=10, add_identity=True, boundary="obc",
        dtype=jnp.float64,
    )  # fmt: skip
    model.configure(optimizer=optax.adam, strategy="sweeps", loss=cross_entropy,
                    train_type=TrainingType.SUPERVISED, learning_rate=lr)  # fmt: skip
    emb = TrigonometricEmbedding()
    t0 = time.perf_counter()
    hist = model.train(Xtr, targets=integer_to_one_hot(ytr, 10), epochs=sweeps, batch_size=64,
                       embedding=emb, normalize=True, dtype=jnp.float64)  # fmt: skip
    fit_s = time.perf_counter() - t0
    acc = float(model.accuracy(Xte, integer_to_one_hot(yte, 10), embedding=emb, batch_size=64,
                               dtype=jnp.float64))  # fmt: skip
    secs = list(hist.get("epoch_time", [fit_s / sweeps] * sweeps))
    jax.config.update("jax_enable_x64", False)
    return {**_record("tn4ml", "sweeps", bond_dim, secs, acc, fit_s, float("nan")),
            "dtype": "float64", "learning_rate": lr}  # fmt: skip


def case_digits_sweep(args):
    Xtr, Xte, ytr, yte = digits_split()
    sweeps = args.epochs if args.epochs != 30 else 4  # --epochs: sweeps (default 4)
    if args.quick:
        Xtr, ytr, sweeps = Xtr[:300], ytr[:300], 2
    for chi in args.bond_dims or [10, 32]:
        q = run_qtn(Xtr, ytr, Xte, yte, bond_dim=chi, epochs=sweeps, method="sweep", loss="mse",
                    local_steps=args.local_steps, l2=args.l2)  # fmt: skip
        emit({"case": "digits-sweep", **q, **machine()})
        if args.no_peer:
            continue
        try:
            t = run_tn4ml_sweeps(Xtr, ytr, Xte, yte, bond_dim=chi, sweeps=sweeps)
        except ImportError as exc:
            emit({"case": "digits-sweep", "library": "tn4ml", "skipped": f"not installed: {exc}"})
            continue
        emit({"case": "digits-sweep", **t})
        emit({"case": "digits-sweep", "ratio": "tn4ml/qtn", "bond_dim": chi,
              "sweep_time_ratio": t["median_epoch_s"] / q["median_epoch_s"],
              "first_sweep_time_ratio": t["first_epoch_s"] / q["first_epoch_s"],
              "accuracy_qtn_minus_tn4ml": q["test_accuracy"] - t["test_accuracy"],
              "accuracy_ratio_qtn_over_tn4ml": q["test_accuracy"] / max(t["test_accuracy"], 1e-9),
              "sweeps": sweeps})  # fmt: skip


def case_mnist_sweep(args):
    """The sweep table: test accuracy against wall time per bond dimension (method="sweep")."""
    X, y, Xt, yt = mnist(args, 14)
    sweeps = args.epochs if args.epochs != 30 else 4
    if args.quick:
        X, y, Xt, yt, sweeps = X[:500], y[:500], Xt[:500], yt[:500], 1
    for chi in args.bond_dims or [20, 40, 80, 120]:
        rec = run_qtn(
            X,
            y,
            Xt,
            yt,
            bond_dim=chi,
            epochs=sweeps,
            method="sweep",
            loss="mse",
            local_steps=args.local_steps,
            l2=args.l2,
            max_seconds=args.time_budget,
        )
        emit({"case": "mnist14-sweep", **rec, "n_train": len(X), "local_steps": args.local_steps,
              "l2": args.l2, "augment": {"shifts": args.augment,
                                         "diagonal": args.augment_diagonal},
              "best_accuracy": max(a for _, a in rec["curve"]), **machine()})  # fmt: skip


def mnist(args, size):
    from qtn.data import downsample, load_mnist, shift_augment

    (X, y), (Xt, yt) = load_mnist(args.data_dir, progress=False)
    if args.augment:  # whole-pixel shifts at 28x28: half-pixel shifts after downsampling to 14
        X, y = shift_augment(X, y, args.augment, diagonal=args.augment_diagonal)
    if size != 28:
        X, Xt = downsample(X, size), downsample(Xt, size)
    return X.reshape(len(X), -1), y, Xt.reshape(len(Xt), -1), yt


def schedule_optimizer(args, n_train):
    """Clipped Adam with linear warm-up and cosine decay over the whole run (--schedule)."""
    import optax

    steps = args.epochs * (-(-n_train // 64))
    sched = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(1000, steps // 10), steps)
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(sched))


def case_mnist(args, size):
    X, y, Xt, yt = mnist(args, size)
    chis = args.bond_dims or ([16, 32] if size == 14 else [10])
    for method in args.methods:
        for chi in chis:
            kw = {} if method == "gradient" else {"local_steps": args.local_steps}
            if method == "gradient" and args.schedule:
                kw["optimizer"] = schedule_optimizer(args, len(X))
            lr = args.lr if method == "gradient" else args.sweep_lr
            rec = run_qtn(
                X,
                y,
                Xt,
                yt,
                bond_dim=chi,
                epochs=args.epochs,
                lr=lr,
                method=method,
                max_seconds=args.time_budget,
                **kw,
            )
            best5 = max([a for w, a in rec["curve"] if w <= 300] or [0.0])
            best30 = max([a for w, a in rec["curve"] if w <= 1800] or [0.0])
            emit(
                {
                    "case": f"mnist{size}",
                    **rec,
                    "best_acc_within_5min": best5,
                    "best_acc_within_30min": best30,
                    "lr": lr,
                    "n_train": len(X),
                    "augment": {"shifts": args.augment, "diagonal": args.augment_diagonal},
                    **machine(),
                }
            )


def thread_parallelism(before=None):
    """CPU seconds of each of this process's threads (Linux /proc); with ``before``, the
    total CPU since then over the busiest thread's share: how many cores the work kept busy
    whatever else ran on the machine (an idle machine's wall-clock speedup is at most this)."""
    now = {}
    try:
        for t in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{t}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            now[t] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None if before is not None else {}
    if before is None:
        return now
    d = [now[t] - before.get(t, 0.0) for t in now]
    return sum(d) / max(d) if d and max(d) > 0 else None


CORE_SETTINGS = {"1core": ("0", None), "all": (None, None), "all-split": (None, "cores")}


def case_cores(args, argv):
    """Gradient training in a fresh process per core setting; then the speedups."""
    import subprocess

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--epochs" not in argv:
        argv += ["--epochs", "2" if args.quick else "5"]
    times: dict = {}
    for name, (_pin, devices) in CORE_SETTINGS.items():
        env = dict(os.environ)
        env.pop("JAX_NUM_CPU_DEVICES", None)
        if devices is not None:  # one JAX CPU device per core: the opt-in minibatch split
            env["QTN_CPU_DEVICES"] = str(len(os.sched_getaffinity(0)))
        cmd = [sys.executable, __file__, *argv, "--cores-child", name]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode or not lines:
            emit({"case": "cores", "setting": name, "error": out.stderr[-2000:]})
            continue
        for ln in lines:
            rec = json.loads(ln)
            emit(rec)
            times[(name, rec["bond_dim"])] = rec["median_epoch_s"]
    for chi in sorted({k[1] for k in times}):
        one, both = times.get(("1core", chi)), times.get(("all", chi))
        split = times.get(("all-split", chi))
        if one and both:
            emit({"case": "cores", "ratio": "1core/all", "data": args.cores_data, "bond_dim": chi,
                  "speedup": one / both, "speedup_split": one / split if split else None,
                  "split_vs_default": both / split if split else None})  # fmt: skip
    return 0


def cores_child(args):
    """One core setting: pin first (before JAX starts its threads), then train and time."""
    pin = CORE_SETTINGS[args.cores_child][0]
    if pin is not None:
        os.sched_setaffinity(0, {int(pin)})
    load = os.getloadavg()[0]
    import jax

    from qtn import MPSClassifier

    if args.cores_data == "digits":
        Xtr, _, ytr, _ = digits_split()
    else:
        Xtr, ytr, _, _ = mnist(args, 14)
        Xtr, ytr = Xtr[: args.cores_train], ytr[: args.cores_train]
    if args.quick:
        Xtr, ytr = Xtr[:512], ytr[:512]
    # time each epoch's threads: the registered gradient method, wrapped (benchmark only)
    import dataclasses

    from qtn.training import fit as _fit_module  # noqa: F401 - the module, for its registry

    fit_mod = sys.modules["qtn.training.fit"]
    inner = fit_mod._METHODS["gradient"].epoch

    def timed_epoch(*a):
        before, c0 = thread_parallelism(), os.times()
        out = inner(*a)
        c1 = os.times()
        EPOCHS.append((c1.user + c1.system - c0.user - c0.system, thread_parallelism(before)))
        return out

    fit_mod._METHODS["gradient"] = dataclasses.replace(fit_mod._METHODS["gradient"],
                                                       epoch=timed_epoch)  # fmt: skip
    EPOCHS: list = []
    for chi in args.bond_dims or [10, 32]:
        EPOCHS.clear()
        clf = MPSClassifier(bond_dim=chi, learning_rate=args.lr, max_epochs=args.epochs,
                            batch_size=64, random_state=0, calibration=None)  # fmt: skip
        c0 = os.times()
        clf.fit(Xtr, ytr)
        c1 = os.times()
        par = [p for _, p in EPOCHS[1:] if p is not None]  # the warm epochs
        secs = [h["seconds"] for h in clf.history_]
        warm = secs[1:] or secs
        # CPU time of the warm epochs: the process total less the first epoch's share
        cpu = c1.user + c1.system - c0.user - c0.system
        emit({"case": "cores", "setting": args.cores_child, "data": args.cores_data,
              "n_train": len(Xtr), "bond_dim": chi, "epochs": len(secs),
              "first_epoch_s": secs[0], "median_epoch_s": float(np.median(warm)),
              "fit_cpu_s": cpu, "fit_wall_s": sum(secs),
              "cores": len(os.sched_getaffinity(0)), "jax_devices": len(jax.devices()),
              "train_accuracy": clf.history_[-1]["accuracy"],
              "parallelism": float(np.median(par)) if par else None,
              "epoch_cpu_s": float(np.median([c for c, _ in EPOCHS[1:]])) if EPOCHS[1:] else None,
              "loadavg": load})  # fmt: skip
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--case",
        default="digits",
        choices=["digits", "digits-sweep", "mnist14", "mnist14-sweep", "mnist28", "cores",
                 "all"],
    )  # fmt: skip
    p.add_argument("--cores-data", default="digits", choices=["digits", "mnist14"])
    p.add_argument("--cores-train", type=int, default=10_000, help="cores: mnist14 images")
    p.add_argument("--cores-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    p.add_argument(
        "--losses",
        nargs="*",
        default=["cross_entropy", "nll", "mse"],
        help="digits: qtn losses to run (each reports log loss and ECE)",
    )
    p.add_argument("--l2", type=float, default=1e-4, help="sweeps: ridge on each bond tensor")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--peer-epochs", type=int, default=None, help="tn4ml epochs (default: --epochs)")
    p.add_argument("--bond-dims", type=int, nargs="*", default=None)
    p.add_argument("--methods", nargs="*", default=["gradient", "sweep"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--sweep-lr", type=float, default=1e-4)
    p.add_argument("--local-steps", type=int, default=10, help="sweeps: CG iterations per bond")
    p.add_argument("--time-budget", type=float, default=None, help="seconds per MNIST run")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--schedule", action="store_true", help="warm-up + cosine decay of --lr")
    p.add_argument("--label", default=None, help="free text copied into each JSON line")
    p.add_argument("--augment", type=int, default=0, help="MNIST: shift_augment by this many px")
    p.add_argument("--augment-diagonal", action="store_true", help="with --augment: diagonals too")
    args = p.parse_args(argv)
    if args.cores_child is not None:  # before qtn is imported: the pin decides its device count
        return cores_child(args)
    if args.quick:
        args.epochs = min(args.epochs, 2)
    if args.case == "cores":
        return case_cores(args, argv)
    if args.case in ("digits", "all"):
        case_digits(args)
    if args.case in ("digits-sweep", "all"):
        case_digits_sweep(args)
    if args.case in ("mnist14-sweep", "all"):
        case_mnist_sweep(args)
    if args.case in ("mnist14", "all"):
        case_mnist(args, 14)
    if args.case in ("mnist28", "all"):
        case_mnist(args, 28)
    return 0


if __name__ == "__main__":
    sys.exit(main())
