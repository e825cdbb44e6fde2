"""Scale-out of the simulator: sliced contractions over a Dask cluster, a JAX device mesh
(4 host devices, in a subprocess) and two JAX processes; Dask arrays of inputs.

Everything is real: a ``distributed.LocalCluster`` of 2 worker processes on
127.0.0.1, JAX's host devices from ``--xla_force_host_platform_device_count``,
``jax.distributed`` over loopback with gloo collectives.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from qtn.circuit import Circuit, Feature, Trainable
from qtn.simulation import simulate

#: the sliced contraction of these tests: probabilities of 3 qubits of a 12-qubit random
#: circuit, whose unsliced estimated peak (1.5 MB) exceeds this limit: 8 slices
LIMIT = 2**19
QUBITS = (0, 1, 2)
TIMEOUT = 240  # seconds, for each subprocess
#: these tests check values, not speed: the processes they start compile at XLA's
#: backend optimisation level 0 (a third less compile time on 2 busy cores)
FAST_XLA = "--xla_backend_optimization_level=0"


def random_circuit(n=12, blocks=24, seed=0):
    """Data-encoding RYs, then random pairs of (trainable RZZ, fixed random SU(4))."""
    rng = np.random.default_rng(seed)
    c = Circuit(n)
    for q in range(n):
        c.ry(Feature(q % 3), q)
    for k in range(blocks):
        a, b = (int(v) for v in rng.choice(n, 2, replace=False))
        c.rzz(Trainable(k), a, b)
        c.gate("su4", *rng.normal(size=15), a, b)
    return c


def inputs(seed=1, rows=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=24), rng.random((rows, 3))


@pytest.fixture(scope="module")
def circuit():
    return random_circuit()


@pytest.fixture(scope="module")
def reference(circuit):
    """The single-process results (numpy and JAX agree) and the number of slices."""
    theta, x = inputs()
    sim = simulate(circuit, dtype="complex128", optimizer="greedy", max_memory=LIMIT)
    plan = sim.plan("probs", QUBITS)
    assert plan.program.n_slices > 1  # the limit forces slicing
    ref = simulate(circuit, dtype="complex128", optimizer="greedy", max_memory=LIMIT,
                   interface="numpy").probs(QUBITS, params=theta, data=x)  # fmt: skip
    return {"probs": ref, "jax": sim.probs(QUBITS, params=theta, data=x),
            "n_slices": plan.program.n_slices}  # fmt: skip


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
        host="127.0.0.1", env={"XLA_FLAGS": FAST_XLA},
    )  # fmt: skip
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _child_source(code: str) -> str:
    """``code`` after the imports and the circuit of this module."""
    head = "import numpy as np\nfrom qtn.circuit import Circuit, Feature, Trainable\n"
    return head + textwrap.dedent(inspect.getsource(random_circuit)) + textwrap.dedent(code)


def _run_child(code: str, env: dict | None = None) -> list[dict]:
    """Run ``code`` in a fresh Python (JAX's device count is fixed at its import); every
    stdout line starting with ``{`` is a JSON result."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("QTN_CPU_DEVICES", None)
    cmd = [sys.executable, "-c", _child_source(code)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=full_env)
    assert out.returncode == 0, out.stderr[-4000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


# ----------------------------------------------------------------------------- programs


def test_slice_ranges_add_up_to_the_whole_contraction(circuit):
    sim = simulate(circuit, dtype="complex128", optimizer="greedy", max_memory=LIMIT,
                   interface="numpy")  # fmt: skip
    plan = sim.plan("probs", QUBITS)
    prog, n = plan.program, plan.program.n_slices
    theta, x = inputs()
    arrays = plan.arrays(theta, x[0], None, None, None, np)
    consts = plan.constants("numpy")
    whole = prog(consts, arrays, np)
    # three ranges, the last one overrunning the end (what a padded task or device runs)
    share = -(-n // 3)
    parts = [prog.slice_sum(consts, arrays, np, lo, share) for lo in range(0, n, share)]
    np.testing.assert_allclose(sum(parts[1:], parts[0]), whole, atol=1e-14)
    assert np.all(prog.slice_sum(consts, arrays, np, n, 2) == 0)  # past the end: zero
    with pytest.raises(ValueError, match="count must be a positive number of slices"):
        prog.slice_sum(consts, arrays, np, 0, 0)


# ----------------------------------------------------------------------------- Dask cluster


def test_cluster_sums_slices_like_one_process(circuit, reference, client):
    theta, x = inputs()
    for interface in ("jax", "numpy"):
        sim = simulate(circuit, dtype="complex128", optimizer="greedy", max_memory=LIMIT,
                       interface=interface, executor=client)  # fmt: skip
        assert sim.executor is client
        got = sim.probs(QUBITS, params=theta, data=x)
        np.testing.assert_allclose(got, reference["probs"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(got, reference["jax"], rtol=0, atol=1e-10)
        assert len(sim._executor._scattered) == 1
    # one input; batched parameters with shared data; the plan was scattered once
    one = sim.probs(QUBITS, params=theta, data=x[1])
    np.testing.assert_allclose(one, reference["probs"][1], rtol=0, atol=1e-10)
    two = sim.probs(QUBITS, params=np.stack([theta, theta]), data=x[2])
    np.testing.assert_allclose(two, reference["probs"][[2, 2]], rtol=0, atol=1e-10)
    assert len(sim._executor._scattered) == 1
    assert sim._executor.n_workers() == 2


def test_cluster_splits_unsliced_batches(client):
    c = random_circuit(6, 6, seed=3)
    rng = np.random.default_rng(4)
    theta, x = rng.normal(size=6), rng.random((7, 3))
    ref = simulate(c, dtype="complex128", interface="numpy").probs((0, 1), params=theta, data=x)
    sim = simulate(c, dtype="complex128", interface="numpy", executor=client)
    assert sim.plan("probs", (0, 1)).program.n_slices == 1
    np.testing.assert_allclose(sim.probs((0, 1), params=theta, data=x), ref, atol=1e-12)
    # one unsliced input runs locally
    np.testing.assert_allclose(sim.probs((0, 1), params=theta, data=x[2]), ref[2], atol=1e-12)


def test_any_executor_with_submit_works(circuit, reference):
    theta, x = inputs()
    with ThreadPoolExecutor(max_workers=3) as pool:
        sim = simulate(circuit, dtype="complex128", optimizer="greedy", max_memory=LIMIT,
                       interface="numpy", executor=pool)  # fmt: skip
        assert sim._executor.n_workers() == 3  # 8 slices in ranges of 3, 3 and 2
        got = sim.probs(QUBITS, params=theta, data=x)
    np.testing.assert_allclose(got, reference["probs"], rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------- JAX mesh

_MESH_CHILD = """
import json, jax, numpy as np
jax.config.update("jax_enable_x64", True)
from qtn.simulation import simulate
assert jax.device_count() == 4, jax.devices()
c = random_circuit()
rng = np.random.default_rng(1)
theta, x = rng.normal(size=24), rng.random((3, 3))
qubits, limit = (0, 1, 2), 2**19
kw = dict(dtype="complex128", optimizer="greedy", max_memory=limit)
ref = simulate(c, interface="numpy", **kw)
want = ref.probs(qubits, params=theta, data=x)
n_slices = ref.plan("probs", qubits).program.n_slices
four = simulate(c, devices=4, **kw)
assert four.mesh is not None and four.mesh.size == 4
got = four.probs(qubits, params=theta, data=x)
# gradients of <ZZZ> (2 slices) over 3 of the 4 devices (the third device's one slice is
# padding, masked to zero), against the unsharded gradient and a central finite
# difference of the numpy interface
paulis = "ZZZ" + "I" * 9
three = simulate(c, devices=jax.devices()[1:], **kw)
f3, f1 = three.expectation_fn(paulis), simulate(c, **kw).expectation_fn(paulis)
grad_slices = three.plan("expect", three._paulis(paulis)).program.n_slices
jaxpr = str(jax.make_jaxpr(lambda t: f3(t, x[0]))(theta))
g3 = np.asarray(jax.grad(lambda t: f3(t, x[0]))(theta))
g1 = np.asarray(jax.grad(lambda t: f1(t, x[0]))(theta))
v, eps = rng.normal(size=24), 1e-6
fd = (ref.expectation(paulis, params=theta + eps * v, data=x[0])
      - ref.expectation(paulis, params=theta - eps * v, data=x[0])) / (2 * eps)
print(json.dumps({
    "n_slices": n_slices, "forward": float(np.abs(got - want).max()),
    "grad_slices": grad_slices, "grad": float(np.abs(g3 - g1).max()),
    "grad_scale": float(np.abs(g1).max()), "fd": float(abs(g3 @ v - fd)),
    "sharded": "shard_map" in jaxpr and "psum" in jaxpr,
}))
"""


def test_mesh_of_four_host_devices_matches_one_device_and_differentiates(reference):
    flags = f"--xla_force_host_platform_device_count=4 {FAST_XLA}"
    (res,) = _run_child(_MESH_CHILD, {"XLA_FLAGS": flags})
    assert res["n_slices"] == reference["n_slices"]
    assert res["forward"] < 1e-10
    assert 1 < res["grad_slices"] < 3  # fewer slices than devices: padding
    assert res["sharded"]  # the gradient ran through shard_map and psum
    assert res["grad_scale"] > 1e-3 and res["grad"] < 1e-10
    assert res["fd"] < 1e-6


_PROCESS_CHILD = """
import json, sys, jax, numpy as np
pid, port = int(sys.argv[1]), sys.argv[2]
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                           process_id=pid)
from qtn.simulation import PLAN_STATS, simulate
c = random_circuit()
rng = np.random.default_rng(1)
theta, x = rng.normal(size=24), rng.random((3, 3))
# a different optimizer per process: without the broadcast the processes could shard
# two different programs; with it, process 1 runs the path process 0 searched
opt = "greedy" if pid == 0 else "random-greedy"
sim = simulate(c, dtype="complex128", optimizer=opt, max_memory=2**19, devices=4)
got = sim.probs((0, 1, 2), params=theta, data=x)
plan = sim.plan("probs", (0, 1, 2))
print(json.dumps({"pid": pid, "devices": jax.device_count(), "probs": got.tolist(),
                  "path": [list(s) for s in plan.path], "sliced": list(plan.sliced),
                  "searches": PLAN_STATS["searches"]}))
"""


@pytest.mark.slow
def test_two_jax_processes_shard_one_broadcast_plan(reference):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count=2 {FAST_XLA}"}
    env.pop("QTN_CPU_DEVICES", None)
    src = _child_source(_PROCESS_CHILD)
    procs = [subprocess.Popen([sys.executable, "-c", src, str(pid), port], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for pid in (0, 1)]  # fmt: skip
    try:
        outs = [p.communicate(timeout=TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
    res = [json.loads(next(ln for ln in out.splitlines() if ln.startswith("{")))
           for out, _ in outs]  # fmt: skip
    assert [r["devices"] for r in res] == [4, 4]
    assert res[0]["path"] == res[1]["path"] and res[0]["sliced"] == res[1]["sliced"]
    assert res[0]["sliced"]  # sliced, so sharded over the 4 devices of both processes
    assert res[0]["searches"] >= 1 and res[1]["searches"] == 0  # process 1 never searched
    for r in res:
        np.testing.assert_allclose(r["probs"], reference["probs"], rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------- Dask arrays


def test_dask_array_inputs_give_dask_arrays(client):
    da = pytest.importorskip("dask.array")
    c = random_circuit(5, 4, seed=5)
    rng = np.random.default_rng(6)
    theta, x = rng.normal(size=4), rng.random((10, 3))
    sim = simulate(c, dtype="complex128")
    want = simulate(c, dtype="complex128", interface="numpy").probs((0, 2), params=theta, data=x)
    # rows in chunks of 5; the feature axis split too, and rechunked whole
    X = da.from_array(x, chunks=(5, 2))
    P = sim.probs((0, 2), params=theta, data=X)
    assert isinstance(P, da.Array) and P.shape == (10, 4) and P.chunks[0] == (5, 5)
    np.testing.assert_allclose(P.compute(scheduler="threads"), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(client.compute(P).result(), want, rtol=0, atol=1e-12)
    # batched parameters as a Dask array with numpy data rows; expectation and amplitude
    sim = simulate(c, dtype="complex128", interface="numpy")
    X = da.from_array(x, chunks=(4, 3))  # (4, 4, 2) rows: the parameters follow
    T = da.from_array(rng.normal(size=(10, 4)), chunks=5)
    E = sim.expectation("ZIXII", params=T, data=x)
    np.testing.assert_allclose(E.compute(), sim.expectation("ZIXII", params=T.compute(), data=x),
                               atol=1e-12)  # fmt: skip
    A = sim.amplitude((1, 0, 1, 1, 0), params=T, data=X)
    assert A.dtype == np.complex128 and A.shape == (10,)
    np.testing.assert_allclose(A.compute(),
                               sim.amplitude((1, 0, 1, 1, 0), params=T.compute(), data=x),
                               atol=1e-12)  # fmt: skip
    with pytest.raises(ValueError, match="data: a dask array must carry the batch axis"):
        sim.probs((0,), params=theta, data=da.from_array(x[0]))
    with pytest.raises(ValueError, match="batch sizes must agree"):
        sim.probs((0,), params=T, data=x[:7])
    with pytest.raises(ValueError, match="data has 2 values per sample; the circuit needs 3"):
        sim.probs((0,), params=theta, data=X[:, :2])  # checked at the call, not at compute
    with pytest.raises(ValueError, match="paulis: bad term"):
        sim.expectation({0: "Q"}, params=T, data=x)


def test_simulator_pickles_without_devices_and_executor(circuit, reference, client):
    cloudpickle = pytest.importorskip("cloudpickle")
    sim = simulate(circuit, dtype="complex128", optimizer="greedy", max_memory=LIMIT,
                   interface="numpy", executor=client)  # fmt: skip
    copy = cloudpickle.loads(cloudpickle.dumps(sim))
    assert copy.executor is None and copy.mesh is None and sim.executor is client
    theta, x = inputs()
    np.testing.assert_allclose(copy.probs(QUBITS, params=theta, data=x), reference["probs"],
                               rtol=0, atol=1e-10)  # fmt: skip
    # a plan pickles with plain pickle too (a process pool's tasks): program, constants,
    # network; its compiled functions stay behind
    import pickle

    plan = sim.plan("probs", QUBITS)
    back = pickle.loads(pickle.dumps(plan))
    assert back.fns == {} and back.program.n_slices == plan.program.n_slices
    arrays = back.arrays(theta, x[0], None, None, None, np)
    whole = back.program.slice_sum(back.constants("numpy"), arrays, np)
    np.testing.assert_allclose(np.real(whole).ravel(), reference["probs"][0], atol=1e-10)


def test_qtn_works_without_dask():
    (res,) = _run_child("""
import sys, json
sys.modules["dask"] = sys.modules["distributed"] = None  # as if not installed
import numpy as np
from qtn.simulation import simulate
c = random_circuit(4, 2)
p = simulate(c, interface="numpy").probs((0,), params=np.zeros(2), data=np.ones((2, 3)))
print(json.dumps({"sum": p.sum(1).tolist(), "dask": "dask.array" in sys.modules}))
""")
    assert np.allclose(res["sum"], 1) and not res["dask"]


# ----------------------------------------------------------------------------- bad arguments


def test_bad_devices_and_executor_are_refused():
    c = random_circuit(3, 1)
    for bad, err, match in [
        (True, TypeError, "devices must be None, an int, .* got the bool True"),
        (0, ValueError, "devices must be a positive number of devices, got 0"),
        (10**6, ValueError, r"devices=1000000 asks for more devices than JAX has: \d+ "),
        ("cpu", TypeError, "devices must be None, .* got str"),
        ([], ValueError, "devices: got an empty sequence"),
        ([0, 1], TypeError, "devices: every entry must be a jax.Device .* got int 0"),
        (2.5, TypeError, "devices must be None, .* got float"),
    ]:
        with pytest.raises(err, match=match):
            simulate(c, devices=bad)
    import jax

    d = jax.devices()[0]
    with pytest.raises(ValueError, match="devices: each device may appear once"):
        simulate(c, devices=[d, d])
    with pytest.raises(ValueError, match="devices: sharding .* needs interface='jax'"):
        simulate(c, interface="numpy", devices=1)
    assert simulate(c, devices=1).mesh is None  # one device: the ordinary path
    assert simulate(c, devices=[d]).mesh is None
    for bad in (object(), "client", 4):
        with pytest.raises(TypeError, match="executor must be None, a dask.distributed.Client"):
            simulate(c, executor=bad)
    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="pass one of them"):
        simulate(c, devices=1, executor=pool)
