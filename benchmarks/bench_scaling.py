"""Scale-out benchmark: strong scaling from 1 to 2 workers, and a weak-scaling projection.

Prints one JSON line per case. Run from the repository root::

    python benchmarks/bench_scaling.py --data-dir ../shared/data/mnist
    python benchmarks/bench_scaling.py --quick

Cases
-----
training     MPS classifier gradient epochs on 14x14 MNIST (digits with --quick), one
             device against two: both in one process started with two host devices
             (``--xla_force_host_platform_device_count=2``), ``devices=1`` and
             ``devices=2`` on the estimator (the minibatch split over a mesh, gradients
             summed by an XLA all-reduce). Seconds per warm epoch and the ratio.
contraction  A sliced 30-qubit contraction: the amplitude <0...0|C|0...0> of a brickwork of
             random SU(4) blocks (depth 16 on a line), with ``max_memory`` small enough
             that cotengra slices it. Warm seconds on 1 and 2 host devices
             (``Simulator(devices=...)``: slices sharded over the mesh, ``psum``), and on
             a Dask ``LocalCluster`` of 1 and 2 worker processes (``executor=client``:
             one slice range per worker, partial sums added on the client); the results
             are checked equal.
projection   A weak-scaling model, not a measurement: from the measured per-slice cost and
             per-step cost of the cases above and the bytes each reduction moves, the time
             per unit of work on P = 8, 64 and 512 GPUs, with its inputs stated.

Every case runs its 1-worker baseline in the same run; the 2-worker runs share this
machine's cores with each other (strong scaling on 2 cores: at most 2x).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Couldn't import `kahypar`")


def emit(rec):
    print(json.dumps(rec), flush=True)


def machine() -> dict:
    import jax

    return {"machine": platform.node(), "cpus": os.cpu_count(),
            "jax_device": jax.devices()[0].platform, "jax": jax.__version__}  # fmt: skip


def _in_subprocess(args, part: str, n_devices: int) -> list[dict]:
    """Run ``--part part`` of this script in a fresh process with ``n_devices`` host devices
    (JAX fixes its device count at import); returns its JSON lines."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        f" --xla_force_host_platform_device_count={n_devices}").strip()  # fmt: skip
    env.pop("JAX_NUM_CPU_DEVICES", None)
    env.pop("QTN_CPU_DEVICES", None)
    cmd = [sys.executable, __file__, "--part", part] + (["--quick"] if args.quick else [])
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    cmd += ["--n-train", str(args.n_train), "--epochs", str(args.epochs)]
    cmd += ["--bond-dim", str(args.bond_dim)]
    cmd += ["--depth", str(args.depth), "--max-memory", args.max_memory]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"{part} subprocess failed:\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


# ----------------------------------------------------------------------------- training


def _training_data(args):
    from sklearn.datasets import load_digits

    from qtn.data import downsample, load_mnist

    if args.data_dir and not args.quick:
        (X, y), _ = load_mnist(args.data_dir, progress=False)
        X = downsample(X[: args.n_train], (14, 14)).reshape(args.n_train, -1)
        return X, y[: args.n_train], "mnist14"
    X, y = load_digits(return_X_y=True)
    return X[: args.n_train] / 16.0, y[: args.n_train], "digits"


def part_training(args):
    """(in a 2-device process) seconds per warm epoch with devices=1 and devices=2."""
    import jax

    from qtn import MPSClassifier

    X, y, name = _training_data(args)
    rows = []
    for n_dev in (1, 2):
        clf = MPSClassifier(bond_dim=args.bond_dim, max_epochs=args.epochs, batch_size=64,
                            random_state=0, devices=n_dev)  # fmt: skip
        t0 = time.perf_counter()
        clf.fit(X, y)
        fit_s = time.perf_counter() - t0
        warm = [h["seconds"] for h in clf.history_[1:]] or [clf.history_[0]["seconds"]]
        n_params = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(clf.params_))
        rows.append({"part": "training", "dataset": name, "n_train": len(X), "devices": n_dev,
                     "bond_dim": args.bond_dim, "batch_size": 64, "epochs": clf.n_iter_,
                     "fit_s": fit_s, "seconds_per_warm_epoch": float(np.median(warm)),
                     "steps_per_epoch": math.ceil(len(X) / 64), "n_params": n_params,
                     "train_accuracy": float(clf.score(X[:2000], y[:2000]))})  # fmt: skip
    for r in rows:
        emit(r)


# ----------------------------------------------------------------------------- contraction


def brickwork(n, depth, seed=0):
    """RY(pi x_q) data encoding, then ``depth`` brickwork layers of RZZ(theta_k) and a random
    constant SU(4) on neighbours: the trainable and data angles keep the tensors variable
    (a circuit of constants only is folded whole at planning time, and nothing is sliced)."""
    from qtn.circuit import Circuit, Feature, Trainable

    rng = np.random.default_rng(seed)
    c = Circuit(n)
    for q in range(n):
        c.ry(Feature(q), q)
    k = 0
    for d in range(depth):
        for a in range(d % 2, n - 1, 2):
            c.rzz(Trainable(k), a, a + 1)
            c.gate("su4", *rng.normal(size=15), a, a + 1)
            k += 1
    return c


def _inputs(c, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=c.n_params), rng.random(c.n_features)


def _timed_amplitude(sim, bits, reps=2):
    theta, x = _inputs(sim.circuit)
    t0 = time.perf_counter()
    first = sim.amplitude(bits, params=theta, data=x)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(reps):
        val = sim.amplitude(bits, params=theta, data=x)
    return complex(np.asarray(val).ravel()[0]), first_s, (time.perf_counter() - t0) / reps, first


def part_contraction(args):
    """(in a 2-device process) the sliced amplitude on 1 and 2 devices."""
    from qtn.simulation import simulate

    n = 12 if args.quick else 30
    c = brickwork(n, args.depth)
    bits = [0] * n
    for n_dev in (1, 2):
        sim = simulate(c, dtype="complex64", max_memory=args.max_memory, devices=n_dev)
        plan = sim.plan("amp", tuple(bits))
        val, first_s, warm_s, _ = _timed_amplitude(sim, bits)
        emit({"part": "contraction", "executor": "devices", "workers": n_dev, "n_qubits": n,
              "depth": args.depth, "n_slices": plan.program.n_slices,
              "max_memory": args.max_memory, "first_s": first_s, "warm_s": warm_s,
              "amplitude": [val.real, val.imag],
              "output_bytes": plan.program.output_bytes})  # fmt: skip


def _dask_contraction(args):
    from dask.distributed import Client, LocalCluster

    from qtn.simulation import simulate

    n = 12 if args.quick else 30
    c = brickwork(n, args.depth)
    bits = [0] * n
    rows = []
    for workers in (1, 2):
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        with cluster, Client(cluster) as client:
            sim = simulate(c, dtype="complex64", max_memory=args.max_memory, executor=client)
            val, first_s, warm_s, _ = _timed_amplitude(sim, bits)
            rows.append({"workers": workers, "first_s": first_s, "warm_s": warm_s,
                         "amplitude": [val.real, val.imag]})  # fmt: skip
    return rows


# ----------------------------------------------------------------------------- projection

#: the model's stated assumptions (not measured here): all-reduce link bandwidth and latency
#: within a node of 8 GPUs (NVLink class) and between nodes (200 Gb/s InfiniBand class)
LINK = {"intra_node_GBps": 300.0, "inter_node_GBps": 25.0, "latency_us": 5.0}


def allreduce_seconds(n_bytes: float, p: int) -> float:
    """All-reduce of ``n_bytes`` over P GPUs: the cheaper of a ring (2 (P-1)/P of the bytes
    over the slowest link, 2 (P-1) latencies) and a tree (all the bytes twice, 2 log2 P
    latencies), as NCCL chooses between them by message size."""
    if p == 1:
        return 0.0
    bw = (LINK["intra_node_GBps"] if p <= 8 else LINK["inter_node_GBps"]) * 1e9
    lat = LINK["latency_us"] * 1e-6
    ring = 2 * (p - 1) / p * n_bytes / bw + 2 * (p - 1) * lat
    tree = 2 * n_bytes / bw + 2 * math.log2(p) * lat
    return min(ring, tree)


def case_projection(args, measured):
    """Weak scaling: each GPU keeps the work one device did here (its slices, or its
    minibatch share); the time per round grows only by the all-reduce."""
    gpu_factor = args.gpu_speedup
    for what, per_unit, units, n_bytes in measured:
        t_compute = per_unit * units / gpu_factor
        for p in (8, 64, 512):
            t_comm = allreduce_seconds(n_bytes, p)
            emit({"case": "projection", "what": what, "gpus": p,
                  "model": "units x t_unit / gpu_speedup + min(ring, tree) all-reduce",
                  "t_unit_s_measured": per_unit, "units_per_gpu": units,
                  "gpu_speedup_assumed": gpu_factor, "bytes_reduced": n_bytes,
                  "t_compute_s": t_compute, "t_allreduce_s": t_comm,
                  "weak_scaling_efficiency": t_compute / (t_compute + t_comm),
                  "total_units": units * p, **LINK})  # fmt: skip


# ----------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", nargs="+", default=["training", "contraction", "projection"],
                    choices=["training", "contraction", "projection"])  # fmt: skip
    ap.add_argument("--part", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", default=None, help="MNIST directory (default: digits)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, to check the script runs")
    ap.add_argument("--n-train", type=int, default=10000, help="training: MNIST images")
    ap.add_argument("--epochs", type=int, default=3, help="training: epochs (first = compile)")
    ap.add_argument("--bond-dim", type=int, default=32, help="training: MPS bond dimension")
    ap.add_argument("--depth", type=int, default=16, help="contraction: brickwork depth")
    ap.add_argument("--max-memory", default="16MB", help="contraction: forces slicing")
    ap.add_argument(
        "--gpu-speedup",
        type=float,
        default=1.0,
        help="projection: a GPU's speed over the device measured here (assumed)",
    )
    args = ap.parse_args()
    if args.quick:
        args.n_train, args.epochs, args.depth, args.bond_dim = 500, 2, 8, 8
        args.max_memory = "16KB"
    if args.part:
        {"training": part_training, "contraction": part_contraction}[args.part](args)
        return
    emit({"case": "settings", **vars(args), **machine()})
    measured = []
    if "training" in args.case:
        rows = {r["devices"]: r for r in _in_subprocess(args, "training", 2)}
        one, two = rows[1], rows[2]
        emit({"case": "training", **{k: one[k] for k in ("dataset", "n_train", "bond_dim",
                                                          "batch_size", "epochs", "n_params")},
              "seconds_per_epoch_1_device": one["seconds_per_warm_epoch"],
              "seconds_per_epoch_2_devices": two["seconds_per_warm_epoch"],
              "speedup_2_over_1": one["seconds_per_warm_epoch"] / two["seconds_per_warm_epoch"],
              "train_accuracy_1": one["train_accuracy"],
              "train_accuracy_2": two["train_accuracy"], **machine()})  # fmt: skip
        step = one["seconds_per_warm_epoch"] / one["steps_per_epoch"]
        measured.append(("training step (minibatch 64 per GPU)", step, 1, 4 * one["n_params"]))
    if "contraction" in args.case:
        rows = {r["workers"]: r for r in _in_subprocess(args, "contraction", 2)}
        one, two = rows[1], rows[2]
        ref = complex(*one["amplitude"])
        base = {"case": "contraction", "n_qubits": one["n_qubits"], "depth": one["depth"],
                "n_slices": one["n_slices"], "max_memory": one["max_memory"]}  # fmt: skip
        emit({**base, "executor": "jax host devices",
              "warm_s_1": one["warm_s"], "warm_s_2": two["warm_s"],
              "speedup_2_over_1": one["warm_s"] / two["warm_s"],
              "first_s_1": one["first_s"], "first_s_2": two["first_s"],
              "rel_diff": abs(complex(*two["amplitude"]) - ref) / abs(ref),
              **machine()})  # fmt: skip
        try:
            drows = {r["workers"]: r for r in _dask_contraction(args)}
        except ImportError:
            emit({**base, "executor": "dask", "skipped": "dask[distributed] not installed"})
        else:
            d1, d2 = drows[1], drows[2]
            emit({**base, "executor": "dask LocalCluster (1 thread per worker process)",
                  "warm_s_1": d1["warm_s"], "warm_s_2": d2["warm_s"],
                  "speedup_2_over_1": d1["warm_s"] / d2["warm_s"],
                  "first_s_1": d1["first_s"], "first_s_2": d2["first_s"],
                  "rel_diff_to_devices": max(abs(complex(*d["amplitude"]) - ref) / abs(ref)
                                             for d in (d1, d2)), **machine()})  # fmt: skip
        per_slice = one["warm_s"] / one["n_slices"]
        measured.append((f"contraction slice ({one['n_qubits']} qubits)", per_slice,
                         one["n_slices"], one["output_bytes"]))  # fmt: skip
    if "projection" in args.case:
        if not measured:
            raise SystemExit("projection needs the training or contraction case in the run")
        case_projection(args, measured)


if __name__ == "__main__":
    main()
