"""Planning benchmark: qtn's default contraction-path search against quimb's default.

Random circuits of ``n`` qubits and ``depth`` layers; each layer is a U(theta,
phi, lambda) gate with trainable angles on every qubit, then CZ gates on a
random perfect matching of the qubits (not only neighbours), seeded. The
quantity is the amplitude <0...0|C|0...0> (the ket network).

For each circuit, one JSON line per planner:

- ``qtn``: ``Simulator.plan("amp", ...)`` with the default optimizer (network
  build, simplification, search, slicing check, program build);
- ``quimb``: quimb's ``Circuit.amplitude_rehearse(optimize="auto-hq")`` on the
  same circuit (quimb's simplifications plus cotengra's 'auto-hq' preset, its
  default for circuits);
- ``auto-hq``: cotengra's 'auto-hq' preset on qtn's own network (the same
  tensors qtn plans);
- ``hyper``: a long cotengra hyper search (``--hyper-seconds``, default 30 s) on
  qtn's simplified network, the reference for the contraction cost.

``plan_s`` is wall-clock planning time; ``cost`` is the contraction cost in
flops (cotengra's ``contraction_cost``) and ``width`` log2 of the largest
intermediate. Then one ``ratio`` line per circuit: ``plan_qtn/quimb`` (target
<= 2) and ``cost_qtn/hyper`` (target <= 2).

    python benchmarks/bench_planning.py                 # 5-24 qubits, depth 10-100
    python benchmarks/bench_planning.py --quick         # tiny sizes, a smoke test
    python benchmarks/bench_planning.py --qubits 24 --quimb-timeout 300   # quimb capped
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Couldn't import `kahypar`")


def emit(rec):
    print(json.dumps(rec), flush=True)


def random_circuit(n: int, depth: int, seed: int):
    """qtn circuit and the (name, qubits, angles) gate list for quimb."""
    from qtn.circuit import Circuit, Trainable

    rng = np.random.default_rng(seed)
    c = Circuit(n)
    gates = []
    k = 0
    for _ in range(depth):
        for q in range(n):
            c.u(Trainable(k), Trainable(k + 1), Trainable(k + 2), q)
            gates.append(("U3", (q,), tuple(rng.normal(size=3))))
            k += 3
        perm = rng.permutation(n)
        for a, b in zip(perm[::2], perm[1::2]):
            c.cz(int(a), int(b))
            gates.append(("CZ", (int(a), int(b)), ()))
    return c, gates


def plan_qtn(c):
    from qtn.simulation import clear_plan_cache, simulate

    clear_plan_cache()
    sim = simulate(c, max_memory="64GB")
    t0 = time.perf_counter()
    plan = sim.plan("amp", (0,) * c.n_qubits)
    t = time.perf_counter() - t0
    tree = plan.tree
    return plan, {"plan_s": t, "cost": float(tree.contraction_cost()),
                  "width": float(tree.contraction_width())}  # fmt: skip


def plan_quimb(n, gates):
    import quimb.tensor as qtensor

    circ = qtensor.Circuit(n)
    for name, qubits, params in gates:
        circ.apply_gate(name, *params, *qubits)
    t0 = time.perf_counter()
    reh = circ.amplitude_rehearse("0" * n, optimize="auto-hq")
    t = time.perf_counter() - t0
    tree = reh["tree"]
    return {"plan_s": t, "cost": float(tree.contraction_cost()),
            "width": float(tree.contraction_width())}  # fmt: skip


def _quimb_worker(n, gates, queue):
    queue.put(plan_quimb(n, gates))


def plan_quimb_limited(n, gates, timeout):
    """quimb's planning in a fresh process, stopped after ``timeout`` seconds (the
    record then holds ``plan_s: null`` and ``timed_out_after_s``)."""
    import multiprocessing as mp

    if timeout is None:
        return plan_quimb(n, gates)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_quimb_worker, args=(n, gates, queue))
    proc.start()
    try:
        return queue.get(timeout=timeout)
    except Exception:  # queue.Empty: over the limit
        return {"plan_s": None, "cost": None, "width": None, "timed_out_after_s": timeout}
    finally:
        proc.terminate()
        proc.join()


def plan_autohq(net):
    import cotengra as ctg

    t0 = time.perf_counter()
    tree = ctg.array_contract_tree(net.inputs, net.output, net.sizes, optimize="auto-hq")
    t = time.perf_counter() - t0
    return {"plan_s": t, "cost": float(tree.contraction_cost()),
            "width": float(tree.contraction_width())}  # fmt: skip


def plan_hyper(net, seconds):
    """A long hyper search on qtn's simplified network, mapped back onto the full one."""
    import importlib.util

    import cotengra as ctg

    from qtn.simulation.search import search_path

    methods = ["greedy"] + (["kahypar"] if importlib.util.find_spec("kahypar") else ["labels"])

    def factory():
        return ctg.HyperOptimizer(methods=methods, max_time=seconds, max_repeats=10**6,
                                  reconf_opts={}, parallel=False, progbar=False)  # fmt: skip

    t0 = time.perf_counter()
    path = search_path(net.inputs, net.output, net.sizes, factory)
    t = time.perf_counter() - t0
    tree = ctg.ContractionTree.from_path(net.inputs, net.output, net.sizes, ssa_path=path)
    return {"plan_s": t, "cost": float(tree.contraction_cost()),
            "width": float(tree.contraction_width())}  # fmt: skip


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--qubits", type=int, nargs="+", default=[5, 10, 16, 20, 24])
    p.add_argument("--depths", type=int, nargs="+", default=[10, 30, 100])
    p.add_argument("--hyper-seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-quimb", action="store_true")
    p.add_argument("--no-autohq", action="store_true", help="skip cotengra's auto-hq peer")
    p.add_argument(
        "--quimb-timeout",
        type=float,
        default=None,
        help="run quimb's planning in a subprocess, stopped after this many seconds",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, short hyper search")
    args = p.parse_args(argv)
    if args.quick:
        args.qubits, args.depths, args.hyper_seconds = [5, 8], [10, 20], 2.0
    # warm-up: imports and first-call costs of every planner stay out of the timings
    c, gates = random_circuit(3, 2, args.seed)
    plan, _ = plan_qtn(c)
    if not args.no_autohq:
        plan_autohq(plan.network)
    if not args.no_quimb:
        plan_quimb(3, gates)
    for n in args.qubits:
        for depth in args.depths:
            c, gates = random_circuit(n, depth, args.seed)
            case = {"case": "amplitude", "qubits": n, "depth": depth, "gates": len(gates)}
            plan, rec = plan_qtn(c)
            emit({**case, "planner": "qtn", **rec})
            peers = {} if args.no_autohq else {"auto-hq": plan_autohq(plan.network)}
            if not args.no_quimb:
                peers["quimb"] = plan_quimb_limited(n, gates, args.quimb_timeout)
            peers["hyper"] = plan_hyper(plan.network, args.hyper_seconds)
            for name, r in peers.items():
                emit({**case, "planner": name, **r})
            ratio = {"ratio": "qtn/peer", "cost_qtn/hyper": rec["cost"] / peers["hyper"]["cost"]}
            if "auto-hq" in peers:
                ratio["plan_qtn/auto-hq"] = rec["plan_s"] / peers["auto-hq"]["plan_s"]
                ratio["cost_qtn/auto-hq"] = rec["cost"] / peers["auto-hq"]["cost"]
            if "quimb" in peers and peers["quimb"]["plan_s"] is not None:
                ratio["plan_qtn/quimb"] = rec["plan_s"] / peers["quimb"]["plan_s"]
                ratio["cost_qtn/quimb"] = rec["cost"] / peers["quimb"]["cost"]
            elif "quimb" in peers:  # quimb over its limit: qtn's time against the limit
                ratio["plan_qtn/quimb_limit"] = rec["plan_s"] / args.quimb_timeout
            emit({**case, **{k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                             for k, v in ratio.items()}})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
