"""Circuit-native classifier benchmark: accuracy on 8x8 digit pairs, and training throughput.

Prints one JSON line per case (``ratio`` lines where a peer ran in the same
process). Run from the repository root, in the ``bench`` environment::

    python benchmarks/bench_circuit_classifier.py --data-dir ../shared/data/mnist
    python benchmarks/bench_circuit_classifier.py --quick

Cases
-----
accuracy    MNIST (or, without --data-dir, scikit-learn's digits) averaged down to 8x8 (MNIST:
            the central 24x24 pixels, 3x3 blocks averaged):
            3 vs 5 and even vs odd, tree and MPS, bond_qubits 1 and 2, gradient training
            (Adam, lr 0.05, batch 32, init_scale 1), with fit time and test accuracy; the
            references of Liao et al. (arXiv:2209.01195) for the unitary tree circuit on
            8x8 MNIST are 0.904 (3 vs 5, bond dimension 2), 0.945 (3 vs 5, one extra qubit
            per node) and 0.876 (even vs odd).
warmstart   3 vs 5, MPS v = 1: init="mps" (a classical bond-2 MPS classifier, canonical
            isometries completed to unitaries) against a random start, same epochs.
spsa        3 vs 5, tree v = 1: SPSA with momentum on the hinge loss (qtn's defaults).
throughput  samples/s of exact training (jitted value_and_grad over a batch) on 16 and 64
            qubits, against per-sample simulation of the same circuit on Aer (exact
            probabilities of the bound circuit: the reused dynamic circuit on Aer's
            density-matrix method; forward only, an Aer gradient needs 2 P + 1 of them by
            parameter shift) and PennyLane ``default.qubit`` with JAX (value_and_grad by
            backpropagation, the batch by parameter broadcasting, eager unless
            --pennylane-jit; 16 qubits only, a statevector of 64 qubits is out of reach).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Couldn't import `kahypar`")
REFERENCES = {"3v5": {1: 0.904, 2: 0.945}, "evenodd": {1: 0.876}}


def emit(rec):
    print(json.dumps(rec), flush=True)


def machine() -> dict:
    import jax

    return {"machine": platform.node(), "cpus": os.cpu_count(),
            "jax_device": jax.devices()[0].platform, "jax": jax.__version__}  # fmt: skip


def load(task, data_dir, n_train, n_test, size=8, seed=0):
    from qtn.data import downsample, load_digits, load_mnist, select_classes

    if data_dir:
        (X, y), (Xt, yt) = load_mnist(data_dir, progress=False)
        # 28x28 -> the central 24x24 (the border is blank) -> size x size by area averaging
        X, Xt = downsample(X[:, 2:26, 2:26], size), downsample(Xt[:, 2:26, 2:26], size)
        source = "mnist"
    else:
        X, y = load_digits()
        X = X if size == 8 else downsample(X, size)
        idx = np.random.default_rng(seed).permutation(len(X))
        X, y = X[idx], y[idx]
        cut = int(0.7 * len(X))
        X, Xt, y, yt = X[:cut], X[cut:], y[:cut], y[cut:]
        source = "digits"
    if task == "3v5":
        X, y = select_classes(X, y, [3, 5])
        Xt, yt = select_classes(Xt, yt, [3, 5])
    else:
        y, yt = y % 2, yt % 2
    rng = np.random.default_rng(seed)
    i = rng.permutation(len(X))[:n_train]
    j = rng.permutation(len(Xt))[:n_test]
    return X[i].reshape(len(i), -1), y[i], Xt[j].reshape(len(j), -1), yt[j], source


def fit_case(name, task, data, **kw):
    import qtn

    Xtr, ytr, Xte, yte, source = data
    t0 = time.perf_counter()
    clf = qtn.CircuitClassifier(random_state=0, **kw).fit(Xtr, ytr)
    fit_s = time.perf_counter() - t0
    acc = clf.score(Xte, yte)
    v = kw.get("bond_qubits", 1)
    ref = REFERENCES.get(task, {}).get(v) if Xtr.shape[1] == 64 else None
    rec = {
        "case": name, "task": task, "source": source, "pixels": Xtr.shape[1],
        "n_train": len(Xtr), "n_test": len(Xte), **kw, "test_accuracy": acc,
        "train_accuracy": clf.score(Xtr, ytr), "fit_s": fit_s,
        "epoch_s": [round(h["seconds"], 3) for h in clf.history_],
        "reference_liao": ref, "reached_reference": None if ref is None else bool(acc >= ref),
    }  # fmt: skip
    emit(rec)
    return clf, rec


def accuracy(args):
    for task in args.tasks:
        data = load(task, args.data_dir, args.n_train, args.n_test, args.size)
        for structure in args.structures:
            for v in args.bond_qubits:
                fit_case("accuracy", task, data, structure=structure, bond_qubits=v,
                         max_epochs=args.epochs, learning_rate=args.learning_rate)  # fmt: skip


def warmstart(args):
    data = load("3v5", args.data_dir, args.n_train, args.n_test, args.size)
    recs = {}
    for init in ("mps", "random"):
        for epochs in (1, args.epochs):
            _, rec = fit_case("warmstart", "3v5", data, structure="mps", init=init,
                              max_epochs=epochs, learning_rate=0.05)  # fmt: skip
            recs[init, epochs] = rec["test_accuracy"]
    emit(
        {
            "case": "warmstart",
            "ratio": "warm - random test accuracy",
            "after_1_epoch": recs["mps", 1] - recs["random", 1],
            f"after_{args.epochs}_epochs": recs["mps", args.epochs] - recs["random", args.epochs],
        }
    )


def spsa(args):
    data = load("3v5", args.data_dir, args.n_train, args.n_test, args.size)
    fit_case("spsa", "3v5", data, structure="tree", method="spsa", max_epochs=args.spsa_epochs)


# ----------------------------------------------------------------------------- throughput


def _qtn_throughput(layout, batch, reps):
    import jax
    import jax.numpy as jnp

    from qtn.estimators.circuit import CircuitParams, _forward
    from qtn.models.circuit_classifier import init_circuit_params

    fwd = _forward(layout, None, "float32", True)
    X = jnp.asarray(np.random.default_rng(0).random((batch, layout.n_qubits)), jnp.float32)
    y = jnp.asarray(np.arange(batch) % 2)
    params = CircuitParams(jnp.asarray(init_circuit_params(layout, 0)[None], jnp.float32))

    def loss(p):
        f = jax.vmap(fwd, in_axes=(None, 0))(p, X)[0]
        return -jnp.mean(jnp.log(jnp.take_along_axis(f**2, y[:, None], 1)))

    step = jax.jit(jax.value_and_grad(loss))
    t0 = time.perf_counter()
    jax.block_until_ready(step(params))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(reps):
        jax.block_until_ready(step(params))
    per = (time.perf_counter() - t0) / reps
    return batch / per, compile_s


def _aer_throughput(layout, n_samples):
    from qiskit import transpile
    from qiskit_aer import AerSimulator

    from qtn.circuit import Circuit, Measure
    from qtn.compilation import reuse_wires
    from qtn.export import to_qiskit
    from qtn.models.circuit_classifier import build_circuit, init_circuit_params

    reused = reuse_wires(build_circuit(layout, measure=True))
    out = next(op.qubit for op in reused.ops if isinstance(op, Measure))
    body = Circuit(reused.n_qubits, [op for op in reused.ops if not isinstance(op, Measure)])
    theta = init_circuit_params(layout, 0)
    sim = AerSimulator(method="density_matrix")
    X = np.random.default_rng(0).random((n_samples, layout.n_qubits))
    t0 = time.perf_counter()
    circs = []
    for x in X:  # one bound circuit per sample (Aer 0.18 mis-binds some parameterised gates)
        qc = to_qiskit(body, params=theta, data=x)
        qc.save_probabilities([out])
        circs.append(qc)
    circs = transpile(circs, sim, optimization_level=0)
    res = sim.run(circs).result()
    p1 = np.array([res.data(i)["probabilities"][1] for i in range(n_samples)])
    secs = time.perf_counter() - t0
    return n_samples / secs, p1, layout.n_params


def _pennylane_throughput(layout, batch, reps, jit=False):
    """PennyLane ``default.qubit`` (JAX interface, backpropagation) on the same circuit, the
    batch by parameter broadcasting (one broadcast RY per pixel). ``jit=False`` runs it
    eagerly: jitting this 16-qubit QNode's value_and_grad had not finished compiling after
    20 minutes (XLA's "very slow compile" warning), with vmap and with broadcasting."""
    import jax
    import jax.numpy as jnp
    import pennylane as qml

    from qtn.models.circuit_classifier import init_circuit_params

    n = layout.n_qubits
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, interface="jax")
    def circuit(theta, x):
        for q in range(n):
            qml.RY(jnp.pi * x[..., q], wires=q)
        for node in layout.nodes:
            s = node.start
            for a, b in node.pairs:
                t = theta[s : s + 15]
                qml.U3(t[0], t[1], t[2], wires=a)
                qml.U3(t[3], t[4], t[5], wires=b)
                qml.CNOT(wires=[b, a])
                qml.RZ(t[6], wires=a)
                qml.RY(t[7], wires=b)
                qml.CNOT(wires=[a, b])
                qml.RY(t[8], wires=b)
                qml.CNOT(wires=[b, a])
                qml.U3(t[9], t[10], t[11], wires=a)
                qml.U3(t[12], t[13], t[14], wires=b)
                s += 15
        return qml.probs(wires=layout.output_qubit)

    X = jnp.asarray(np.random.default_rng(0).random((batch, n)), jnp.float32)
    y = jnp.asarray(np.arange(batch) % 2)
    theta = jnp.asarray(init_circuit_params(layout, 0), jnp.float32)

    def loss(th):
        p = circuit(th, X)
        return -jnp.mean(jnp.log(jnp.take_along_axis(p, y[:, None], 1)))

    step = jax.value_and_grad(loss)
    step = jax.jit(step) if jit else step
    t0 = time.perf_counter()
    jax.block_until_ready(step(theta))
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(reps):
        jax.block_until_ready(step(theta))
    per = (time.perf_counter() - t0) / reps
    p_check = np.asarray(circuit(theta, X[:4]))[:, 1]
    return batch / per, first_s, p_check


def throughput(args):
    from qtn.models.circuit_classifier import CircuitLayout, build_circuit, init_circuit_params
    from qtn.simulation import Simulator

    sizes = [16] if args.quick else [16, 64]
    qtn_rate = {}
    for n in sizes if "aer" in args.throughput_peers else ():
        for structure in ("tree", "mps"):
            lay = CircuitLayout(structure, n)
            qtn_sps, comp = _qtn_throughput(lay, args.batch, args.reps)
            aer_sps, aer_p1, n_params = _aer_throughput(lay, args.aer_samples)
            X = np.random.default_rng(0).random((args.aer_samples, n))
            ours = Simulator(build_circuit(lay), optimizer="greedy").probs(
                [lay.output_qubit], params=init_circuit_params(lay, 0), data=X
            )[:, 1]
            qtn_rate[structure, n] = (qtn_sps, ours)
            emit({"case": "throughput", "peer": "aer", "structure": structure, "n_qubits": n,
                  "batch": args.batch, "qtn_train_samples_per_s": qtn_sps,
                  "qtn_compile_s": comp, "aer_forward_samples_per_s": aer_sps,
                  "aer_max_abs_diff": float(np.max(np.abs(aer_p1 - ours))),
                  "ratio_qtn_train_over_aer_forward": qtn_sps / aer_sps,
                  "ratio_qtn_train_over_aer_param_shift_train":
                      qtn_sps / (aer_sps / (2 * n_params + 1))})  # fmt: skip
    for structure in ("tree", "mps") if "pennylane" in args.throughput_peers else ():
        lay = CircuitLayout(structure, 16)
        if (structure, 16) not in qtn_rate:
            qtn_sps, _ = _qtn_throughput(lay, args.batch, args.reps)
            X = np.random.default_rng(0).random((args.aer_samples, 16))
            ours = Simulator(build_circuit(lay), optimizer="greedy").probs(
                [lay.output_qubit], params=init_circuit_params(lay, 0), data=X
            )[:, 1]
        else:
            qtn_sps, ours = qtn_rate[structure, 16]
        try:
            pl_sps, pl_comp, pl_p1 = _pennylane_throughput(
                lay, args.pennylane_batch, args.pennylane_reps, jit=args.pennylane_jit
            )
        except ImportError:
            emit({"case": "throughput", "peer": "pennylane", "structure": structure,
                  "pennylane": "not installed"})  # fmt: skip
            continue
        emit({"case": "throughput", "peer": "pennylane", "structure": structure,
              "n_qubits": 16, "batch": args.batch, "qtn_train_samples_per_s": qtn_sps,
              "pennylane_batch": args.pennylane_batch,
              "pennylane_train_samples_per_s": pl_sps, "pennylane_first_step_s": pl_comp,
              "pennylane_mode": ("jit" if args.pennylane_jit else "eager") + ", broadcast",
              "pennylane_max_abs_diff": float(np.max(np.abs(pl_p1 - ours[:4]))),
              "ratio_qtn_over_pennylane": qtn_sps / pl_sps})  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--case", default="all", choices=["all", "accuracy", "warmstart", "spsa", "throughput"]
    )
    ap.add_argument("--data-dir", default=None, help="MNIST directory (default: digits)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--size", type=int, default=None, help="image side (default 8; quick 4)")
    ap.add_argument("--tasks", nargs="+", default=["3v5", "evenodd"], choices=["3v5", "evenodd"])
    ap.add_argument("--structures", nargs="+", default=["tree", "mps"], choices=["tree", "mps"])
    ap.add_argument("--bond-qubits", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--learning-rate", type=float, default=0.05, help="accuracy: Adam step")
    ap.add_argument("--throughput-peers", nargs="+", default=["aer", "pennylane"],
                    choices=["aer", "pennylane"])  # fmt: skip
    ap.add_argument("--pennylane-jit", action="store_true", help="jit PennyLane's step")
    ap.add_argument("--pennylane-reps", type=int, default=2, help="timed PennyLane steps")
    # backpropagation keeps every intermediate state: 16 qubits x batch 256 would hold ~40 GB
    ap.add_argument("--pennylane-batch", type=int, default=16, help="PennyLane's batch")
    args = ap.parse_args()
    q = args.quick
    args.n_train = args.n_train or (300 if q else 3000)
    args.n_test = args.n_test or (200 if q else 1000)
    args.epochs = args.epochs or (2 if q else 8)
    args.size = args.size or (4 if q else 8)
    args.spsa_epochs = 4 if q else 30
    args.batch, args.reps, args.aer_samples = (64, 3, 8) if q else (256, 5, 32)
    emit({**machine(), **vars(args), "cases": args.case, "case": "settings"})
    cases = ["accuracy", "warmstart", "spsa", "throughput"] if args.case == "all" else [args.case]
    for case in cases:
        globals()[case](args)


if __name__ == "__main__":
    main()
