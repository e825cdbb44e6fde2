"""Circuit simulation benchmark: qtn's batched contraction against Qiskit Aer and quimb.

Case ``noiseless``: an n-qubit (default 16) MPS-staircase circuit, RY(pi x_q)
data encoding on every qubit followed by ``sweeps`` (default 2) sweeps of
15-parameter SU(4) blocks on neighbouring qubits; compute P(qubit 0 = 0) for
many inputs (default 10,000).

- qtn: one ``Simulator.probs`` call over the whole batch. Planning (network
  build + cotengra search), compile (first call) and warm time are separate.
- Qiskit Aer (statevector method): the circuit as one parameterised template,
  transpiled once, with every input bound through ``parameter_binds`` in a single
  job and exact probabilities from ``save_probabilities`` (Aer's fastest path for
  many bindings).
- quimb: ``quimb.tensor.Circuit`` built and contracted per sample
  (``compute_marginal``), on a subset, extrapolated per sample.

Prints one JSON line per library and one ``ratio`` line; ``max_abs_diff`` is the
largest disagreement with qtn on the samples each peer ran.

    python benchmarks/bench_simulation.py --qubits 16 --inputs 10000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Couldn't import `kahypar`")


def emit(rec):
    print(json.dumps(rec), flush=True)


def run_qtn(c, theta, X, dtype):
    import jax

    from qtn.simulation import simulate

    sim = simulate(c, dtype=dtype)
    t0 = time.perf_counter()
    sim._plan(("probs", (0,)), (False, True))  # network build + cotengra search
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = sim.probs([0], params=theta, data=X)  # includes XLA compilation
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = sim.probs([0], params=theta, data=X)
    warm_s = time.perf_counter() - t0
    return p[:, 0], {
        "library": "qtn",
        "dtype": dtype,
        "plan_s": plan_s,
        "first_call_s": compile_s,
        "warm_s": warm_s,
        "inputs_per_s": len(X) / warm_s,
        "device": str(jax.devices()[0]),
    }


def to_qiskit_template(c):
    """The staircase as a parameterised Qiskit circuit (peer setup, same qubit labels)."""
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector

    n = c.n_qubits
    th = ParameterVector("theta", c.n_params)
    xs = ParameterVector("x", c.n_features)
    qc = QuantumCircuit(n)
    for op in c.ops:
        if op.name == "ry":
            qc.ry(np.pi * xs[op.angles[0].index], op.qubits[0])
        else:  # su4 = (u3 x u3) . exp(i(a XX + b YY + c ZZ)) . (u3 x u3): k2 first in time
            a, b = op.qubits
            t = [th[ang.index] for ang in op.angles]
            qc.u(t[9], t[10], t[11], a)
            qc.u(t[12], t[13], t[14], b)
            qc.rxx(-2 * t[6], a, b)
            qc.ryy(-2 * t[7], a, b)
            qc.rzz(-2 * t[8], a, b)
            qc.u(t[0], t[1], t[2], a)
            qc.u(t[3], t[4], t[5], b)
    return qc, th, xs


def run_aer(c, theta, X, n_aer):
    from qiskit import transpile
    from qiskit_aer import AerSimulator

    qc, th, xs = to_qiskit_template(c)
    qc.save_probabilities([0])
    backend = AerSimulator(method="statevector")
    t0 = time.perf_counter()
    tqc = transpile(qc, backend, optimization_level=0)
    transpile_s = time.perf_counter() - t0
    binds = {p: [float(v)] * n_aer for p, v in zip(th, theta)}
    binds.update({p: X[:n_aer, i].tolist() for i, p in enumerate(xs)})
    t0 = time.perf_counter()
    result = backend.run(tqc, parameter_binds=[binds]).result()
    run_s = time.perf_counter() - t0
    p0 = np.array([result.data(i)["probabilities"][0] for i in range(n_aer)])
    return p0, {
        "library": "qiskit-aer",
        "method": "statevector",
        "transpile_s": transpile_s,
        "inputs": n_aer,
        "run_s": run_s,
        "inputs_per_s": n_aer / run_s,
    }


def run_quimb(c, theta, X, n_quimb):
    import quimb.tensor as qtensor

    mats = [(op.qubits, op) for op in c.ops]
    out = []
    t0 = time.perf_counter()
    for x in X[:n_quimb]:
        circ = qtensor.Circuit(c.n_qubits)
        for qubits, op in mats:
            circ.apply_gate_raw(op.numeric_matrix(theta, x), qubits)
        out.append(float(np.real(circ.compute_marginal([0], dtype="complex64")[0])))
    run_s = time.perf_counter() - t0
    return np.array(out), {
        "library": "quimb",
        "method": "Circuit per sample",
        "inputs": n_quimb,
        "run_s": run_s,
        "inputs_per_s": n_quimb / run_s,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--qubits", type=int, default=16)
    p.add_argument("--sweeps", type=int, default=2)
    p.add_argument("--inputs", type=int, default=10_000)
    p.add_argument("--aer-inputs", type=int, default=1000)
    p.add_argument("--quimb-inputs", type=int, default=20)
    p.add_argument("--dtype", default="complex64")
    p.add_argument("--only-qtn", action="store_true", help="skip the peers (e.g. on a GPU box)")
    args = p.parse_args(argv)
    from qtn.circuit import staircase

    c = staircase(args.qubits, args.sweeps)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=c.n_params)
    X = rng.random((args.inputs, args.qubits))
    case = {"case": "noiseless", "qubits": args.qubits, "su4_blocks": c.count_2q(),
            "inputs": args.inputs}  # fmt: skip
    p_qtn, rec = run_qtn(c, theta, X, args.dtype)
    emit({**case, **rec})
    if args.only_qtn:
        return 0
    p_aer, rec_aer = run_aer(c, theta, X, args.aer_inputs)
    rec_aer["max_abs_diff"] = float(np.abs(p_aer - p_qtn[: args.aer_inputs]).max())
    emit({**case, **rec_aer})
    p_q, rec_q = run_quimb(c, theta, X, args.quimb_inputs)
    rec_q["max_abs_diff"] = float(np.abs(p_q - p_qtn[: args.quimb_inputs]).max())
    emit({**case, **rec_q})
    emit({**case, "ratio": "throughput qtn/peer",
          "vs_aer": rec["inputs_per_s"] / rec_aer["inputs_per_s"],
          "vs_quimb": rec["inputs_per_s"] / rec_q["inputs_per_s"]})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
