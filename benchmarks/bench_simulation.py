"""Circuit simulation benchmark: qtn's batched contraction against Qiskit Aer and quimb.

Case ``noiseless``: an n-qubit (default 16) MPS-staircase circuit, RY(pi x_q)
data encoding on every qubit followed by ``sweeps`` (default 2) sweeps of
15-parameter SU(4) blocks on neighbouring qubits; compute P(qubit q = 0) for
many inputs (default 10,000). Two readout qubits by default: qubit 0 (the
issue's case) and the last qubit. The sweeps run 0 -> n-1, so only 3 blocks
can affect qubit 0 and qtn contracts only that reverse light cone (as quimb's
``compute_marginal`` does; Aer simulates everything); the last qubit's light
cone is the whole circuit, the honest worst case.

- qtn: one ``Simulator.probs`` call over the whole batch. Planning (network
  build + cotengra search), compile (first call) and warm time are separate.
- Qiskit Aer (statevector method): the circuit as one parameterised template,
  transpiled once, with every input bound through ``parameter_binds`` in a single
  job and exact probabilities from ``save_probabilities`` (Aer's fastest path for
  many bindings).
- quimb: ``quimb.tensor.Circuit`` built and contracted per sample
  (``compute_marginal``), on a subset, extrapolated per sample.

Case ``noisy``: the same circuit at 10 qubits with depolarizing noise after
every gate (1q p=0.01 after RY, 2q p=0.02 after SU(4)): qtn's density-matrix
(doubled) network against Aer's ``density_matrix`` method running qtn's own
export, with the noise as Kraus instructions, complex128 on both sides.

Case ``sample``: exact samples (``Simulator.sample``), shots per second,
first call (everything: planning, building, sampling) and warm call (a new
seed) separately:

- (a) ``stair16``: the 16-qubit staircase above, one input, 8,192 shots; peers
  quimb (``Circuit.sample``, its default chain rule in groups of 10 qubits, on
  ``--quimb-shots`` shots, extrapolated) and Aer's ``statevector`` method
  (qtn's export with ``measure_all``, transpiled once);
- (b) ``mps30``/``mps50``: "MPS-shaped" circuits of depth 10 on 30 and 50 qubits:
  10 layers of RY(random) on every qubit followed by CZ on alternating
  neighbour pairs (brickwork), so every bond of the output MPS is at most 2**5;
  1,000 shots; peers quimb and Aer's ``matrix_product_state`` method;
- (c) ``ghz30``: H then a CX chain on 30 qubits, 1,000 shots; peers quimb and
  Aer's ``matrix_product_state`` method (a 30-qubit statevector needs 16 GiB).

Case ``cores``: the 2-core speedup of the batched contraction. The noiseless
case's ``probs`` of the last qubit (the whole circuit, ``--inputs`` inputs) runs
in a fresh process per setting, warm time the median of ``--repeats`` calls:
``1core`` (the process pinned to one core before JAX starts), ``all``
(every core this process may use, qtn's default: one JAX device, XLA's intra-op
threads) and ``all-split`` (every core, one JAX CPU device per core through
``QTN_CPU_DEVICES``). Each line reports wall and CPU seconds of the warm calls and
their ratio (about the number of busy cores), and ``parallelism``, the CPU
time over the busiest thread's (how many cores the work keeps busy, which
other processes on a shared machine do not change); the ``ratio`` line gives
``speedup = 1core / all``. ``loadavg`` is the machine's 1-minute load when the
child started: on a shared machine other processes take cores too.

``max_marginal_diff`` is the largest difference between qtn's and the peer's
single-qubit frequencies (sampling noise is about 1/sqrt(shots)).

Prints one JSON line per library and one ``ratio`` line per case;
``max_abs_diff`` is the largest disagreement with qtn on the samples each peer ran.

    python benchmarks/bench_simulation.py --qubits 16 --inputs 10000
    python benchmarks/bench_simulation.py --cases sample
    python benchmarks/bench_simulation.py --cases cores    # 1 core against all cores
    python benchmarks/bench_simulation.py --quick          # tiny sizes, a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Couldn't import `kahypar`")


def emit(rec):
    print(json.dumps(rec), flush=True)


def run_qtn(c, theta, X, dtype, noise=None, qubit=0, repeats=5):
    import jax

    from qtn.simulation import simulate

    sim = simulate(c, dtype=dtype, noise=noise)
    t0 = time.perf_counter()
    sim.plan("probs", (qubit,))  # network build + cotengra search
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = sim.probs([qubit], params=theta, data=X)  # includes XLA compilation
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):  # the median of warm calls: shared machines are noisy
        t0 = time.perf_counter()
        p = sim.probs([qubit], params=theta, data=X)
        times.append(time.perf_counter() - t0)
    warm_s = float(np.median(times))
    return p[:, 0], {
        "library": "qtn",
        "dtype": dtype,
        "plan_s": plan_s,
        "first_call_s": compile_s,
        "warm_s": warm_s,
        "inputs_per_s": len(X) / warm_s,
        "device": str(jax.devices()[0]),
    }


def run_aer(c, theta, X, n_aer, noise=None, qubit=0):
    """Aer on qtn's own export (one parameterised template, transpiled once)."""
    from qiskit import transpile
    from qiskit_aer import AerSimulator

    from qtn.export import parameter_values, to_qiskit

    qc = to_qiskit(c, noise=noise)  # noise: Kraus instructions after the matching gates
    qc.save_probabilities([qubit])  # qubit labels are kept across the bridge
    method = "statevector" if noise is None else "density_matrix"
    backend = AerSimulator(method=method)
    t0 = time.perf_counter()
    tqc = transpile(qc, backend, optimization_level=0)
    transpile_s = time.perf_counter() - t0
    values = parameter_values(tqc.parameters, np.tile(theta, (n_aer, 1)), X[:n_aer])
    binds = {prm: values[:, i].tolist() for i, prm in enumerate(tqc.parameters)}
    t0 = time.perf_counter()
    result = backend.run(tqc, parameter_binds=[binds]).result()
    run_s = time.perf_counter() - t0
    # Aer's Kraus gate fusion occasionally fails one binding with "heevx ... eigensystem_hermitian"
    # (qiskit-aer issue #2455, open): such inputs are counted and left out of the comparison
    ok = [r.success for r in result.results]
    p0 = np.array([result.data(i)["probabilities"][0] if ok[i] else np.nan for i in range(n_aer)])
    return p0, {
        "library": "qiskit-aer",
        "method": method,
        "transpile_s": transpile_s,
        "inputs": n_aer,
        "failed_inputs": n_aer - sum(ok),
        "run_s": run_s,
        "inputs_per_s": n_aer / run_s,
    }


def run_quimb(c, theta, X, n_quimb, qubit=0):
    import quimb.tensor as qtensor

    mats = [(op.qubits, op) for op in c.ops]
    out = []
    t0 = time.perf_counter()
    for x in X[:n_quimb]:
        circ = qtensor.Circuit(c.n_qubits)
        for qubits, op in mats:
            circ.apply_gate_raw(op.numeric_matrix(theta, x), qubits)
        out.append(float(np.real(circ.compute_marginal([qubit], dtype="complex64")[0])))
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
    p.add_argument("--noisy-qubits", type=int, default=10)
    p.add_argument("--noisy-inputs", type=int, default=200)
    p.add_argument("--skip-noisy", action="store_true")
    p.add_argument(
        "--readout", type=int, nargs="+", default=[0, -1],
        help="measured qubit(s); -1 = the last, whose light cone is the whole circuit",
    )  # fmt: skip
    p.add_argument("--cases", nargs="+", default=["noisy", "noiseless", "sample", "cores"],
                   choices=["noisy", "noiseless", "sample", "cores"])  # fmt: skip
    p.add_argument("--repeats", type=int, default=5, help="cores: warm calls per setting")
    p.add_argument("--cores-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--quimb-shots", type=int, default=64)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    args = p.parse_args(argv)
    if args.cores_child is not None:  # before qtn is imported: the pin decides its device count
        return cores_child(args)
    from qtn.circuit import staircase

    if args.quick:
        args.qubits, args.inputs, args.aer_inputs, args.quimb_inputs = 6, 200, 20, 2
        args.noisy_qubits, args.noisy_inputs, args.quimb_shots = 4, 10, 4
    if "noisy" in args.cases and not args.skip_noisy:
        noisy_case(args)
    if "cores" in args.cases:
        cores_case(args)
    if "sample" in args.cases:
        sample_cases(args)
    if "noiseless" not in args.cases:
        return 0

    c = staircase(args.qubits, args.sweeps)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=c.n_params)
    X = rng.random((args.inputs, args.qubits))
    case = {"case": "noiseless", "qubits": args.qubits, "inputs": args.inputs}
    for qubit in args.readout:
        compare(args, case, c, theta, X, args.dtype, None, qubit % args.qubits,
                args.aer_inputs, args.quimb_inputs)  # fmt: skip
    return 0


def compare(args, case, c, theta, X, dtype, noise, qubit, n_aer, n_quimb):
    """qtn, then Aer (and quimb when ``n_quimb``) on the same inputs, then the ratios."""
    case = {**case, "su4_blocks": c.count_2q(), "readout_qubit": qubit,
            "light_cone_su4_blocks": light_cone_blocks(c, qubit)}  # fmt: skip
    p_qtn, rec = run_qtn(c, theta, X, dtype, noise=noise, qubit=qubit)
    emit({**case, **rec})
    if args.only_qtn:
        return
    ratio = {"ratio": "throughput qtn/peer"}
    peers = [("aer", run_aer, n_aer)] + ([("quimb", run_quimb, n_quimb)] if n_quimb else [])
    for name, run, n_peer in peers:
        kw = {"noise": noise} if name == "aer" else {}
        p_peer, rec_peer = run(c, theta, X, n_peer, qubit=qubit, **kw)
        # nanmax: inputs a peer failed on are NaN and left out
        rec_peer["max_abs_diff"] = float(np.nanmax(np.abs(p_peer - p_qtn[:n_peer])))
        emit({**case, **rec_peer})
        ratio[f"vs_{name}"] = rec["inputs_per_s"] / rec_peer["inputs_per_s"]
        ratio[f"max_abs_diff_{name}"] = rec_peer["max_abs_diff"]
    emit({**case, **ratio})


def light_cone_blocks(c, qubit) -> int:
    """SU(4) blocks in the reverse light cone of ``qubit`` (what qtn contracts)."""
    from qtn.simulation import light_cone

    return sum(len(op.qubits) == 2 for op in light_cone(c.ops, {qubit}))


def noisy_case(args):
    """Density-matrix contraction vs Aer's density_matrix method, same noise description."""
    from qtn.circuit import staircase
    from qtn.noise import NoiseModel, depolarizing

    n = args.noisy_qubits
    c = staircase(n, args.sweeps)
    nm = (
        NoiseModel()
        .add_gate_noise(depolarizing(0.01), ["ry"])
        .add_gate_noise(depolarizing(0.02, 2), ["su4"])
    )
    rng = np.random.default_rng(1)
    theta = rng.normal(size=c.n_params)
    X = rng.random((args.noisy_inputs, n))
    case = {"case": "noisy", "qubits": n, "inputs": args.noisy_inputs,
            "noise": "depolarizing 1q p=0.01 after ry, 2q p=0.02 after su4"}  # fmt: skip
    for qubit in args.readout:
        compare(args, case, c, theta, X, "complex128", nm, qubit % n, args.noisy_inputs, 0)


# ----------------------------------------------------------------------------- sampling


def mps_shaped(n: int, depth: int, seed: int = 0):
    """Depth-``depth`` brickwork: RY(random) on every qubit, CZ on alternating pairs."""
    from qtn.circuit import Circuit

    rng = np.random.default_rng(seed)
    c = Circuit(n)
    for d in range(depth):
        for q in range(n):
            c.ry(float(rng.uniform(0, 2 * np.pi)), q)
        for q in range(d % 2, n - 1, 2):
            c.cz(q, q + 1)
    return c


def ghz(n: int):
    from qtn.circuit import Circuit

    c = Circuit(n).h(0)
    for q in range(n - 1):
        c.cx(q, q + 1)
    return c


def sample_qtn(c, shots, params=None, data=None):
    import jax

    from qtn.simulation import simulate

    sim = simulate(c)
    t0 = time.perf_counter()
    bits = sim.sample(shots, params=params, data=data, seed=0)
    first = time.perf_counter() - t0
    times = []
    for seed in (1, 2, 3):
        t0 = time.perf_counter()
        sim.sample(shots, params=params, data=data, seed=seed)
        times.append(time.perf_counter() - t0)
    warm = float(np.median(times))
    return bits.mean(0), {"library": "qtn", "shots": shots, "first_call_s": first,
                          "warm_s": warm, "shots_per_s": shots / warm,
                          "device": str(jax.devices()[0])}  # fmt: skip


def sample_aer(c, shots, method, params=None, data=None):
    from qiskit import transpile
    from qiskit_aer import AerSimulator

    from qtn.export import to_qiskit

    qc = to_qiskit(c, params=params, data=data)
    qc.measure_all()
    backend = AerSimulator(method=method)
    t0 = time.perf_counter()
    tqc = transpile(qc, backend, optimization_level=0)
    transpile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    counts = backend.run(tqc, shots=shots, seed_simulator=0).result().get_counts()
    run_s = time.perf_counter() - t0
    n = c.n_qubits
    freq = np.zeros(n)
    for key, k in counts.items():  # Qiskit keys: qubit 0 rightmost (labels kept by the export)
        bits = key.replace(" ", "")[::-1][:n]
        freq += k * np.array([b == "1" for b in bits])
    return freq / shots, {"library": "qiskit-aer", "method": method, "shots": shots,
                          "transpile_s": transpile_s, "run_s": run_s,
                          "shots_per_s": shots / run_s}  # fmt: skip


def sample_quimb(c, shots, params=None, data=None):
    import quimb.tensor as qtensor

    circ = qtensor.Circuit(c.n_qubits)
    for op in c.ops:
        circ.apply_gate_raw(op.numeric_matrix(params, data), op.qubits)
    t0 = time.perf_counter()
    bits = np.array([[b == "1" for b in s] for s in circ.sample(shots, seed=0)], dtype=float)
    run_s = time.perf_counter() - t0
    return bits.mean(0), {"library": "quimb", "method": "Circuit.sample (group_size 10)",
                          "shots": shots, "run_s": run_s, "shots_per_s": shots / run_s}  # fmt: skip


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


def cores_case(args):
    """The batched contraction in a fresh process per core setting; then the speedup."""
    import subprocess

    times = {}
    for name, (_pin, devices) in CORE_SETTINGS.items():
        env = dict(os.environ)
        env.pop("JAX_NUM_CPU_DEVICES", None)
        if devices is not None:  # one JAX CPU device per core: the opt-in minibatch split
            env["QTN_CPU_DEVICES"] = str(len(os.sched_getaffinity(0)))
        cmd = [sys.executable, __file__, "--cores-child", name, "--qubits", str(args.qubits),
               "--sweeps", str(args.sweeps), "--inputs", str(args.inputs),
               "--repeats", str(args.repeats), "--dtype", args.dtype]  # fmt: skip
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode or not lines:
            emit({"case": "cores", "setting": name, "error": out.stderr[-2000:]})
            continue
        rec = json.loads(lines[-1])
        emit(rec)
        times[name] = rec["warm_s"]
    if "1core" in times and "all" in times:
        emit({"case": "cores", "ratio": "1core/all", "speedup": times["1core"] / times["all"],
              "speedup_split_devices": (times["1core"] / times["all-split"]
                                        if "all-split" in times else None)})  # fmt: skip


def cores_child(args):
    """One core setting: pin first (before JAX starts its threads), then time warm calls."""

    pin = CORE_SETTINGS[args.cores_child][0]
    if pin is not None:
        os.sched_setaffinity(0, {int(pin)})
    load = os.getloadavg()[0]
    import jax

    from qtn.circuit import staircase
    from qtn.simulation import simulate

    c = staircase(args.qubits, args.sweeps)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=c.n_params)
    X = rng.random((args.inputs, args.qubits))
    sim = simulate(c, dtype=args.dtype)
    q = args.qubits - 1
    sim.probs([q], params=theta, data=X)  # plan + compile
    walls, cpus = [], []
    threads = thread_parallelism()
    for _ in range(args.repeats):
        c0, w0 = os.times(), time.perf_counter()
        sim.probs([q], params=theta, data=X)
        c1 = os.times()
        walls.append(time.perf_counter() - w0)
        cpus.append(c1.user + c1.system - c0.user - c0.system)
    k = int(np.argsort(walls)[len(walls) // 2])
    emit({"case": "cores", "setting": args.cores_child, "qubits": args.qubits,
          "inputs": args.inputs, "readout_qubit": q, "cores": len(os.sched_getaffinity(0)),
          "jax_devices": len(jax.devices()), "warm_s": walls[k], "cpu_s": cpus[k],
          "cpu/wall": cpus[k] / walls[k], "inputs_per_s": args.inputs / walls[k],
          "parallelism": thread_parallelism(threads), "loadavg": load})  # fmt: skip
    return 0


def sample_cases(args):
    """qtn's exact sampler against quimb and Aer; throughput ratios in one run."""
    from qtn.circuit import staircase

    rng = np.random.default_rng(0)
    n16 = args.qubits
    stair = staircase(n16, args.sweeps)
    theta, x = rng.normal(size=stair.n_params), rng.random(n16)
    big = (8, 10) if args.quick else (30, 50)
    cases = [
        (f"stair{n16}", stair, 512 if args.quick else 8192, theta, x, "statevector"),
        *[(f"mps{n}", mps_shaped(n, 4 if args.quick else 10), 200 if args.quick else 1000,
           None, None, "matrix_product_state") for n in big],
        (f"ghz{big[0]}", ghz(big[0]), 200 if args.quick else 1000, None, None,
         "matrix_product_state"),
    ]  # fmt: skip
    for name, c, shots, prm, dat, method in cases:
        case = {"case": "sample", "circuit": name, "qubits": c.n_qubits, "shots": shots}
        f_qtn, rec = sample_qtn(c, shots, prm, dat)
        emit({**case, **rec})
        if args.only_qtn:
            continue
        ratio = {"ratio": "shots/s qtn/peer"}
        peers = (("aer", sample_aer, (c, shots, method, prm, dat)),
                 ("quimb", sample_quimb, (c, min(shots, args.quimb_shots), prm, dat)))  # fmt: skip
        for peer, run, run_args in peers:
            f_peer, rec_peer = run(*run_args)
            rec_peer["max_marginal_diff"] = float(np.max(np.abs(f_peer - f_qtn)))
            emit({**case, **rec_peer})
            ratio[f"vs_{peer}"] = rec["shots_per_s"] / rec_peer["shots_per_s"]
        emit({**case, **ratio})


if __name__ == "__main__":
    sys.exit(main())
