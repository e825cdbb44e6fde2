"""Compilation benchmark: qtn.compile against qiskit-addon-aqc-tensor and Qiskit's synthesis.

Prints one JSON line per case (and a ``ratio`` line where a peer ran in the same
process). Run from the repository root in the ``bench`` environment
(``make .venv-bench/.installed``; the addon: ``pip install
"qiskit-addon-aqc-tensor[quimb-jax]"``)::

    python benchmarks/bench_compilation.py --case all
    python benchmarks/bench_compilation.py --case cx --quick

Cases
-----
parity      the addon's tutorial: a 10-qubit ring, H = sum ZZ + 0.4 sum X, evolved to
            t = 4; the target is a 32-step second-order Trotter circuit; both libraries
            start from the ansatz of a 5-step circuit (the addon's
            ``generate_ansatz_from_circuit``, qtn's ``initial=``); also qtn from the
            target MPS alone (no seed circuit).
heis20      the 20-site Heisenberg ground state (quimb DMRG, chi = 16), brickwork of SU(4)
            blocks, L = 1, 2, 4, 8 brickwork periods (2L sublayers), both libraries from the
            same near-identity circuit, each with a wall-time budget.
heis32      the 32-site Heisenberg ground state: fidelity against L = 2, 3, 4, 8 staircase
            layers for ``layers`` and ``aqc``.
xxz50       the 50-site XXZ antiferromagnet (Delta = 0.5): CZ count and CZ depth (Qiskit
            transpile to {cz, u}, level 1) needed to reach fidelity 0.99, ``layers`` and ``aqc``.
scaling     ``aqc`` wall time and peak memory (fresh process per size) against N = 20, 50,
            100 at two staircase layers, on random chi = 8 targets.
cx          CX per MPS site block of ``exact`` against Qiskit's ``Isometry`` and the quantum
            Shannon decomposition of the completed unitary (transpile level 3), chi = 2, 4,
            7, 8, 16.
classifier  digits classifiers (4x4 and 8x8 pixels, the 3-vs-5 pair and 10 classes):
            classical accuracy, compiled accuracy, qubits, CX and depth per method.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Couldn't import `kahypar`")


def emit(rec):
    print(json.dumps(rec), flush=True)


# ----------------------------------------------------------------------------- targets


def dmrg_state(ham: str, n: int, chi: int, delta: float = 1.0):
    import quimb.tensor as qtensor

    if ham == "heis":
        h = qtensor.MPO_ham_heis(n, cyclic=False)
    else:
        h = qtensor.MPO_ham_heis(n, j=(1.0, 1.0, delta), cyclic=False)
    dmrg = qtensor.DMRG2(h, bond_dims=[min(chi, 8), chi], cutoffs=1e-12)
    dmrg.solve(tol=1e-10, verbosity=0, max_sweeps=30)
    return dmrg.state


def brickwork_qiskit(n: int, periods: int, eps: float, seed: int):
    """A brickwork of near-identity two-qubit unitaries exp(i eps H), H random Hermitian."""
    from qiskit import QuantumCircuit
    from scipy.linalg import expm

    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(n)
    for layer in range(2 * periods):
        for q in range(layer % 2, n - 1, 2):
            h = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
            qc.unitary(expm(1j * eps * (h + h.conj().T) / 2), [q, q + 1])
    return qc


# ----------------------------------------------------------------------------- the addon


def addon_compile(target_quimb, ansatz_qc, x0, *, budget_s: float, maxiter: int = 10_000):
    """The addon: MaximizeStateFidelity with its quimb MPS simulator and JAX gradients."""
    from functools import partial

    import quimb.tensor as qtensor
    from qiskit_addon_aqc_tensor.objective import MaximizeStateFidelity
    from qiskit_addon_aqc_tensor.simulation.quimb import QuimbSimulator
    from scipy.optimize import minimize

    settings = QuimbSimulator(partial(qtensor.CircuitMPS, cutoff=1e-10), autodiff_backend="jax")
    target = qtensor.CircuitMPS(psi0=target_quimb.copy())
    objective = MaximizeStateFidelity(target, ansatz_qc, settings)
    t0 = time.perf_counter()
    best = {"f": 0.0, "x": np.asarray(x0, dtype=float)}

    def fun(x):
        if time.perf_counter() - t0 > budget_s:
            raise TimeoutError
        v, g = objective.loss_function(x)
        if 1 - v > best["f"]:
            best.update(f=1 - v, x=np.array(x))
        return v, g

    stopped = "converged"
    try:
        minimize(fun, best["x"], jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    except TimeoutError:
        stopped = "time budget"
    return best["f"], time.perf_counter() - t0, stopped


# ----------------------------------------------------------------------------- cases


def case_parity(args):
    import quimb.tensor as qtensor
    from qiskit.circuit.library import PauliEvolutionGate
    from qiskit.quantum_info import SparsePauliOp, Statevector
    from qiskit.synthesis import SuzukiTrotter
    from qiskit_addon_aqc_tensor import generate_ansatz_from_circuit

    import qtn
    from qtn.compilation import from_dense
    from qtn.export import from_qiskit
    from qtn.export.order import from_qiskit_order

    n, t = 10, 4.0
    terms = [("ZZ", [i, (i + 1) % n], 1.0) for i in range(n)] + [("X", [i], 0.4) for i in range(n)]
    h = SparsePauliOp.from_sparse_list(terms, num_qubits=n)

    def trotter(steps):
        from qiskit import QuantumCircuit

        qc = QuantumCircuit(n)
        qc.append(PauliEvolutionGate(h, time=t, synthesis=SuzukiTrotter(order=2, reps=steps)),
                  range(n))  # fmt: skip
        return qc.decompose().decompose()

    psi = from_qiskit_order(Statevector(trotter(32)).data)  # qtn's index order
    target = from_dense(psi)
    seed_qc = trotter(5)
    ansatz, x0 = generate_ansatz_from_circuit(seed_qc, qubits_initially_zero=True)
    tq = qtensor.MatrixProductState.from_dense(psi.reshape([2] * n))
    f_addon, s_addon, stop = addon_compile(tq, ansatz, x0, budget_s=args.budget)
    emit({"case": "parity", "library": "qiskit-addon-aqc-tensor", "fidelity": f_addon,
          "seconds": s_addon, "params": len(x0), "depth": ansatz.depth(),
          "stopped": stop})  # fmt: skip
    seed, _ = from_qiskit(seed_qc)
    t0 = time.perf_counter()
    c, rep = qtn.compile(target, method="aqc", initial=seed, maxiter=args.maxiter)
    s_qtn = time.perf_counter() - t0
    emit({"case": "parity", "library": "qtn", "start": "the 5-step Trotter circuit",
          "fidelity": rep.fidelity, "seconds": s_qtn, "params": rep.n_params,
          "depth": rep.depth, "cx": rep.n_2q})  # fmt: skip
    emit({"case": "parity", "ratio": "addon seconds / qtn seconds", "speedup": s_addon / s_qtn,
          "fidelity_gain": rep.fidelity - f_addon})  # fmt: skip
    for layers in (2, 4, 6):
        t0 = time.perf_counter()
        c, rep = qtn.compile(target, method="aqc", n_layers=layers, maxiter=args.maxiter)
        emit({"case": "parity", "library": "qtn", "start": "target MPS alone (staircase)",
              "layers": layers, "fidelity": rep.fidelity, "seconds": time.perf_counter() - t0,
              "params": rep.n_params, "depth": rep.depth, "cx": rep.n_2q})  # fmt: skip


def case_heis20(args):
    from qiskit_addon_aqc_tensor import generate_ansatz_from_circuit

    import qtn
    from qtn.export import from_qiskit
    from qtn.models import from_quimb

    n = 20
    state = dmrg_state("heis", n, 16)
    target = from_quimb(state)
    for periods in args.periods:
        start = brickwork_qiskit(n, periods, 0.05, seed=periods)
        ansatz, x0 = generate_ansatz_from_circuit(start, qubits_initially_zero=True)
        budget = args.budget if periods < 8 else 420.0
        f_addon, s_addon, stop = addon_compile(state, ansatz, x0, budget_s=budget)
        emit({"case": "heis20", "library": "qiskit-addon-aqc-tensor", "periods": periods,
              "fidelity": f_addon, "seconds": s_addon, "stopped": stop})  # fmt: skip
        qstart, _ = from_qiskit(start)
        t0 = time.perf_counter()
        c, rep = qtn.compile(target, method="aqc", initial=qstart, maxiter=args.maxiter)
        s_qtn = time.perf_counter() - t0
        emit({"case": "heis20", "library": "qtn", "periods": periods, "fidelity": rep.fidelity,
              "seconds": s_qtn, "evaluations": len(rep.history), "cx": rep.n_2q})  # fmt: skip
        emit({"case": "heis20", "periods": periods, "ratio": "addon seconds / qtn seconds",
              "speedup": s_addon / s_qtn, "fidelity_gain": rep.fidelity - f_addon})  # fmt: skip


def case_heis32(args):
    import qtn
    from qtn.models import from_quimb

    target = from_quimb(dmrg_state("heis", 32, 32))
    for layers in args.layers:
        for method in ("layers", "aqc"):
            t0 = time.perf_counter()
            kw = {"maxiter": args.maxiter} if method == "aqc" else {}
            c, rep = qtn.compile(target, method=method, n_layers=layers, **kw)
            emit({"case": "heis32", "method": method, "layers": layers, "fidelity": rep.fidelity,
                  "seconds": time.perf_counter() - t0, "cx": rep.n_2q,
                  "layer_fidelities": rep.layer_fidelities})  # fmt: skip


def cz_stats(circuit, params):
    from qiskit import transpile

    from qtn.export import to_qiskit

    qc = transpile(to_qiskit(circuit, params=params), basis_gates=["cz", "u"],
                   optimization_level=1)  # fmt: skip
    return int(qc.count_ops().get("cz", 0)), int(qc.depth(lambda i: i.operation.name == "cz"))


def case_xxz50(args):
    import qtn
    from qtn.models import from_quimb

    target = from_quimb(dmrg_state("xxz", 50, 32, delta=0.5))
    for method in ("layers", "aqc"):
        t0 = time.perf_counter()
        kw = {"maxiter": args.maxiter} if method == "aqc" else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c, rep = qtn.compile(target, method=method, n_layers=1, target_fidelity=0.99,
                                 max_layers=args.max_layers, **kw)  # fmt: skip
        cz, cz_depth = cz_stats(c, rep.params)
        emit({"case": "xxz50", "method": method, "fidelity": rep.fidelity,
              "reached_0.99": rep.fidelity >= 0.99, "layers": len(rep.layer_fidelities or [])
              or rep.metrics.get("layers"), "cz": cz, "cz_depth": cz_depth,
              "seconds": time.perf_counter() - t0})  # fmt: skip


def case_scaling(args):
    for n in args.sizes:
        code = (
            "import json, resource, time, warnings; warnings.filterwarnings('ignore');"
            "import qtn; t=time.perf_counter();"
            f"psi=qtn.random_mps(0, {n}, 8);"
            "c, r = qtn.compile(psi, method='aqc', n_layers=2, growth='none', maxiter=50);"
            "print(json.dumps({'seconds': time.perf_counter()-t, 'fidelity': r.fidelity,"
            "'evaluations': len(r.history), 'params': r.n_params,"
            "'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        emit({"case": "scaling", "qubits": n, "layers": 2, **rec})


def case_cx(args):
    from qiskit import QuantumCircuit, transpile
    from qiskit.circuit.library import Isometry
    from qiskit.synthesis import qs_decomposition

    from qtn.circuit import Circuit
    from qtn.compilation.synthesis import (
        Emitter,
        complete_isometry,
        complete_two_qubit,
        cs_isometry,
        demultiplex,
    )
    from qtn.export.order import qiskit_matrix

    rng = np.random.default_rng(0)
    for chi in args.chis:
        k = int(np.ceil(np.log2(chi)))
        dim = 2**k
        a = rng.normal(size=(chi * 2, chi)) + 1j * rng.normal(size=(chi * 2, chi))
        v_small, _ = np.linalg.qr(a)  # an isometry chi -> (chi, 2): one MPS site
        v = np.zeros((2 * dim, dim), dtype=complex)
        v[: 2 * chi, :chi] = v_small
        v = complete_isometry(v[:, :chi])[:, :dim]
        c = Circuit(k + 1)
        em = Emitter(c)
        if k == 1:
            em.unitary(complete_two_qubit(v[:, :chi])[0], [0, 1], basis_fidelity=1 - 1e-13)
        else:
            b1, theta, a1, a2 = cs_isometry(v)  # b1 is gauged into the neighbouring block
            w = list(range(1, k + 1))
            em.ucr("y", 2 * theta, 0, w)
            wm, ph, vm = demultiplex(a1, a2)
            em.unitary(wm, w)
            em.ucr("z", -2 * ph, 0, w)
            em.unitary(vm, w)
        qtn_cx = c.count_2q()
        iso = QuantumCircuit(k + 1)
        iso.append(Isometry(qiskit_matrix(v), 0, 0), range(k + 1))
        cx_iso = transpile(iso, basis_gates=["cx", "u"], optimization_level=3).count_ops()
        qsd = qs_decomposition(qiskit_matrix(complete_isometry(v)))
        cx_qsd = transpile(qsd, basis_gates=["cx", "u"], optimization_level=3).count_ops()
        emit({"case": "cx", "chi": chi, "block_qubits": k + 1, "qtn": qtn_cx,
              "qiskit_isometry": int(cx_iso.get("cx", 0)), "qiskit_qsd": int(cx_qsd.get("cx", 0)),
              "ratio_isometry": cx_iso.get("cx", 0) / qtn_cx,
              "ratio_qsd": cx_qsd.get("cx", 0) / qtn_cx})  # fmt: skip


def case_classifier(args):
    from sklearn.model_selection import train_test_split

    import qtn
    from qtn.data import downsample, select_classes

    for size, pair in ((4, (3, 5)), (4, None), (8, (3, 5)), (8, None)):
        if args.quick and size == 8:
            continue
        X, y = qtn.load_digits()
        if pair is not None:
            X, y = select_classes(X, y, list(pair))
        X = downsample(X, size).reshape(len(X), -1) if size != 8 else X.reshape(len(X), -1)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
        clf = qtn.MPSClassifier(bond_dim=4, loss="nll", max_epochs=30, learning_rate=1e-2,
                                random_state=0).fit(Xtr, ytr)  # fmt: skip
        for method, kw in (("exact", {}), ("layers", {"n_layers": 2}),
                           ("aqc", {"n_layers": 2, "maxiter": args.maxiter})):  # fmt: skip
            t0 = time.perf_counter()
            model = clf.to_circuit(method, X=Xte, y=yte, **kw)
            r = model.report
            emit({"case": "classifier", "pixels": f"{size}x{size}",
                  "classes": "3 vs 5" if pair else "10", "method": method,
                  "classical_accuracy": r.metrics["classical_accuracy"],
                  "compiled_accuracy": r.metrics["accuracy"], "worst_fidelity": r.fidelity,
                  "qubits": r.n_qubits, "circuits": len(model.circuits), "cx_total": r.n_2q,
                  "depth": r.depth, "seconds": time.perf_counter() - t0})  # fmt: skip


CASES = {"parity": case_parity, "heis20": case_heis20, "heis32": case_heis32,
         "xxz50": case_xxz50, "scaling": case_scaling, "cx": case_cx,
         "classifier": case_classifier}  # fmt: skip


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--case", nargs="+", default=["all"], choices=["all", *CASES])
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    p.add_argument("--maxiter", type=int, default=1000)
    p.add_argument("--budget", type=float, default=60.0, help="addon seconds per run")
    p.add_argument("--periods", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--layers", type=int, nargs="+", default=[2, 3, 4, 8])
    p.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 100])
    p.add_argument("--chis", type=int, nargs="+", default=[2, 4, 7, 8, 16])
    p.add_argument("--max-layers", type=int, default=20)
    args = p.parse_args(argv)
    if args.quick:
        args.maxiter, args.budget, args.periods, args.layers = 20, 5.0, [1], [2]
        args.sizes, args.chis, args.max_layers = [8], [2, 4], 2
    cases = list(CASES) if "all" in args.case else args.case
    emit({"machine": os.uname().nodename, "cpus": os.cpu_count(), "quick": args.quick})
    for name in cases:
        if args.quick and name in ("heis32", "xxz50"):
            continue
        CASES[name](args)


if __name__ == "__main__":
    main()
