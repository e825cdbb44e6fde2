"""Scale-out of training and inference: ``devices=`` (data-parallel gradient epochs over a
JAX mesh: host devices, and two processes through ``jax.distributed``) and Dask arrays
in the inference methods (default scheduler and a ``distributed`` cluster).

JAX fixes its device count when it starts, so the checks on several host devices (and
on several processes) run in fresh interpreters; each compares with a one-device epoch
of the same estimator, in float64. Tolerances: 1e-10 for tensor-network models (the
split only changes the order of the gradient sums); 1e-7 for circuit classifiers,
whose angles include directions of zero gradient: there float rounding of ~1e-17
reaches Adam, which divides it by its epsilon 1e-8 (so 1e-10 per step).
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qtn import BornMachine, CircuitClassifier, MPSClassifier, TTNClassifier

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 150  # seconds for any child interpreter; then it is killed and the test fails


def _env(**extra) -> dict:
    drop = ("JAX_NUM_CPU_DEVICES", "QTN_CPU_DEVICES", "XLA_FLAGS", "JAX_PLATFORMS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["JAX_PLATFORMS"] = "cpu"
    env.update(extra)
    return env


def _run(code: str, **env) -> dict:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON."""
    try:
        out = subprocess.run([sys.executable, "-c", code], env=_env(**env), capture_output=True,
                             text=True, timeout=TIMEOUT, check=False)  # fmt: skip
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed the child
        pytest.fail(f"child interpreter ran over {TIMEOUT} s: {exc.stderr!r:.3000}")
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _digits(n=160):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:n, ::4], y[:n]  # 16 of the 64 pixels: 16 sites


# one epoch (two where said) of a small float64 MPS classifier, the same everywhere
MPS_KW = dict(bond_dim=4, max_epochs=1, dtype="float64", calibration=None, random_state=0,
              batch_size=32, learning_rate=1e-2, lr_schedule="constant")  # fmt: skip

_LEAVES = """
import json, numpy as np, jax
from sklearn.datasets import load_digits
def leaves(est):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(est.params_)]
def diff(a, b):
    return max(float(np.max(np.abs(x - y), initial=0.0)) for x, y in zip(a, b, strict=True))
X, y = load_digits(return_X_y=True)
X, y = X[:160, ::4], y[:160]
"""


# ----------------------------------------------------------------------------- the parameter


@pytest.mark.parametrize("cls", [MPSClassifier, TTNClassifier, BornMachine, CircuitClassifier])
def test_devices_is_an_ordinary_sklearn_parameter(cls):
    import jax
    from jax.sharding import Mesh
    from sklearn.base import clone

    est = cls()
    assert est.get_params()["devices"] is None
    mesh = Mesh(np.array(jax.devices()[:1]), ("batch",))
    for value in ("all", 1, mesh):
        est.set_params(devices=value)
        assert est.devices is value and est.get_params()["devices"] is value  # unmodified
        assert clone(est).get_params()["devices"] == value


_BAD = [
    ("gpu", ValueError, r"devices must be .*'all'.*got the string 'gpu'"),
    (0, ValueError, r"devices=0 asks for 0 devices; there are \d+"),
    (10**6, ValueError, r"devices=1000000 asks for 1000000 devices"),
    (True, TypeError, r"devices must be .*got the bool True"),
    (1.5, TypeError, r"devices must be .*got float 1.5"),
    ([1, 2], TypeError, r"devices must be .*got a sequence holding int 1, not a jax device"),
    ([], ValueError, r"devices must be .*got an empty sequence"),
]


@pytest.mark.parametrize("value, error, match", _BAD)
def test_bad_devices_raise_naming_devices(value, error, match):
    X, y = _digits(40)
    with pytest.raises(error, match=match):
        MPSClassifier(bond_dim=2, max_epochs=1, devices=value).fit(X, y)


def test_bad_devices_meshes_and_methods():
    import jax
    from jax.sharding import Mesh

    from qtn.training import FitConfig

    X, y = _digits(40)
    dev = jax.devices()[0]
    with pytest.raises(ValueError, match=r"devices must be distinct"):
        MPSClassifier(bond_dim=2, devices=[dev, dev]).fit(X, y)
    two_axes = Mesh(np.array([dev]).reshape(1, 1), ("data", "model"))
    with pytest.raises(ValueError, match=r"devices: a Mesh needs an axis named 'batch'.*"
                                         r"\('data', 'model'\)"):  # fmt: skip
        MPSClassifier(bond_dim=2, devices=two_axes).fit(X, y)
    # sweeps run on one device: devices= is refused, naming the method
    with pytest.raises(ValueError, match=r"devices=1 splits gradient training.*'sweep'"):
        MPSClassifier(bond_dim=2, method="sweep", devices=1).fit(X, y)
    with pytest.raises(ValueError, match=r"method='born_sweep' runs on one device"):
        BornMachine(bond_dim=2, devices="all").fit((X > 8).astype(int))
    with pytest.raises(ValueError, match=r"'tree_sweep'"):
        FitConfig(method="tree_sweep", devices=1)
    assert FitConfig(devices=1).mesh().shape["batch"] == 1


def test_one_device_mesh_trains_as_no_mesh_and_is_neither_saved_nor_pickled(tmp_path):
    """``devices=1`` (a mesh of one device) gives the parameters of ``devices=None``; a saved
    model has no devices; device objects are dropped from pickles, counts are kept."""
    import jax

    X, y = _digits()
    ref = MPSClassifier(**MPS_KW).fit(X, y)
    one = MPSClassifier(**MPS_KW, devices=[jax.devices()[0]]).fit(X, y)
    for a, b in zip(jax.tree_util.tree_leaves(ref.params_), jax.tree_util.tree_leaves(one.params_)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=0, atol=1e-12)
    assert one.fit_info_["batch_shards"] == 1 and ref.fit_info_["batch_shards"] == 1
    one.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as z:
        header = json.loads(str(z["__meta__"]))
    assert "devices" not in header["estimator_params"]
    back = MPSClassifier.load(tmp_path / "m.npz")
    assert back.devices is None
    np.testing.assert_array_equal(back.predict_proba(X), one.predict_proba(X))
    copy = pickle.loads(pickle.dumps(one))
    assert copy.devices is None and one.devices is not None  # the original keeps its devices
    np.testing.assert_array_equal(copy.predict_proba(X), one.predict_proba(X))
    for portable in ("all", 2):
        assert pickle.loads(pickle.dumps(one.set_params(devices=portable))).devices == portable


# ----------------------------------------------------------------------------- host devices

_FOUR = (
    _LEAVES
    + """
import qtn
from jax.sharding import Mesh
kw = KW
ref = qtn.MPSClassifier(**kw).fit(X, y)
devs = jax.devices()
meshes = {"4": 4, "all": "all", "list": [devs[3], devs[1], devs[2], devs[0]],
          "mesh_1d_named_x": Mesh(np.array(devs), ("x",)),
          "mesh_batch_by_model": Mesh(np.array(devs).reshape(2, 2), ("batch", "model"))}
out = {"n_devices": len(devs), "auto_shards": ref.fit_info_["batch_shards"]}
for name, d in meshes.items():
    est = qtn.MPSClassifier(**kw, devices=d).fit(X, y)
    out[name] = [diff(leaves(ref), leaves(est)), est.fit_info_["batch_shards"],
                 abs(est.history_[0]["loss"] - ref.history_[0]["loss"])]
# 30 rows do not split in 4: each minibatch gets two zero-weight rows
ref30 = qtn.MPSClassifier(**{**kw, "batch_size": 30}).fit(X, y)
est30 = qtn.MPSClassifier(**{**kw, "batch_size": 30}, devices=4).fit(X, y)
out["padded"] = [diff(leaves(ref30), leaves(est30)), est30.fit_info_["batch_shards"]]
out["batches_differ"] = diff(leaves(ref), leaves(ref30))
print(json.dumps(out))
"""
)


def test_four_host_devices_give_the_one_device_epoch():
    """devices=4, "all", a device list, a 1-axis mesh of another name and a 2-D mesh with a
    "batch" axis each give the one-device epoch's parameters (float64, 1e-10); a batch
    that 4 does not divide is padded with zero-weight rows and gives the same too."""
    got = _run(_FOUR.replace("KW", repr(MPS_KW)),
               XLA_FLAGS="--xla_force_host_platform_device_count=4")  # fmt: skip
    assert got["n_devices"] == 4 and got["auto_shards"] == 1  # 8 rows a device: no auto split
    for name, shards in [("4", 4), ("all", 4), ("list", 4), ("mesh_1d_named_x", 4),
                         ("mesh_batch_by_model", 2)]:  # fmt: skip
        d, s, dloss = got[name]
        assert s == shards, name
        assert d < 1e-10 and dloss < 1e-12, (name, d, dloss)
    assert got["padded"][0] < 1e-10 and got["padded"][1] == 4
    assert got["batches_differ"] > 1e-4  # the comparison is not vacuous: training moved


_TWO = (
    _LEAVES
    + """
import qtn
from qtn.data import bars_and_stripes
out = {}
Xb = np.concatenate([bars_and_stripes(3, 3, flatten=True)] * 3)  # 42 rows
kw = dict(bond_dim=4, method="gradient", max_epochs=2, dtype="float64", random_state=0,
          batch_size=10, learning_rate=1e-2)
a, b = qtn.BornMachine(**kw).fit(Xb), qtn.BornMachine(**kw, devices=2).fit(Xb)
out["born"] = [diff(leaves(a), leaves(b)), b.fit_info_["batch_shards"],
               abs(a.nll(Xb) - b.nll(Xb))]
rng = np.random.default_rng(0)
Xc = rng.random((30, 4)); yc = (Xc[:, 3] > 0.5).astype(int)
for method in ("gradient", "spsa"):
    kw = dict(method=method, loss="hinge", max_epochs=2, dtype="float64", random_state=0,
              batch_size=9)  # 9 rows on 2 devices: padded to 10
    a = qtn.CircuitClassifier("mps", **kw).fit(Xc, yc)
    b = qtn.CircuitClassifier("mps", **kw, devices="all").fit(Xc, yc)
    out[method] = [diff(leaves(a), leaves(b)), b.fit_info_["batch_shards"],
                   abs(a.history_[-1]["loss"] - b.history_[-1]["loss"])]
print(json.dumps(out))
"""
)


def test_two_host_devices_born_machine_and_circuit_classifier():
    """A gradient Born machine (the shared fit loop) and a circuit classifier's own batch
    loss (hinge; gradient and SPSA steps, fit_batch_loss) on 2 host devices give the
    one-device results."""
    got = _run(_TWO, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    d, shards, dnll = got["born"]
    assert shards == 2 and d < 1e-10 and dnll < 1e-12, got["born"]
    for method in ("gradient", "spsa"):
        d, shards, dloss = got[method]
        assert shards == 2 and d < 1e-7 and dloss < 1e-10, (method, got[method])


# ----------------------------------------------------------------------------- two processes

_PROCESS = (
    _LEAVES
    + """
import sys
jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{PORT}", num_processes=2,
                           process_id=int(sys.argv[1]))
import qtn
assert jax.process_count() == 2 and len(jax.devices()) == 2 and len(jax.local_devices()) == 1
est = qtn.MPSClassifier(**KW, devices="all").fit(X, y)  # every process: the whole dataset
np.savez(sys.argv[2], *leaves(est))
# other data, or other initial parameters (no fixed seed), on one process are caught
# before training, on every process
X2 = X.copy()
X2[0, 0] += jax.process_index()
refused = []
for data, seed in ((X2, 0), (X, None)):
    try:
        qtn.MPSClassifier(**{**KW, "random_state": seed}, devices="all").fit(data, y)
        refused.append("")
    except ValueError as exc:
        refused.append(str(exc))
print(json.dumps({"process": jax.process_index(), "loss": est.history_[-1]["loss"],
                  "shards": est.fit_info_["batch_shards"], "refused": refused}))
"""
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_one_device_epoch(tmp_path):
    """Two processes on 127.0.0.1 (jax.distributed, gloo CPU collectives, one CPU device
    each) train two epochs over the global mesh of both devices (devices="all"): both get
    the same parameters, equal to the one-device epochs' within 1e-10 (float64). Data or
    seeds that differ between the processes are refused on both."""
    import jax

    kw = {**MPS_KW, "max_epochs": 2}
    code = _PROCESS.replace("KW", repr(kw)).replace("PORT", str(_free_port()))
    env = _env(JAX_NUM_CPU_DEVICES="1")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i), str(tmp_path / f"p{i}.npz")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]  # fmt: skip
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=TIMEOUT))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the two training processes ran over {TIMEOUT} s")
    finally:
        for p in procs:  # never leave a process behind (one waits for the other forever)
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert [r["process"] for r in reports] == [0, 1]
    assert all(r["shards"] == 2 for r in reports)
    assert reports[0]["loss"] == reports[1]["loss"]
    for r in reports:
        for why in r["refused"]:
            assert "processes [1] hold training data or initial parameters different" in why

    X, y = _digits()
    ref = MPSClassifier(**kw).fit(X, y)
    ref_leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(ref.params_)]
    got = [np.load(tmp_path / f"p{i}.npz") for i in range(2)]
    for k, r in enumerate(ref_leaves):
        a, b = got[0][f"arr_{k}"], got[1][f"arr_{k}"]
        np.testing.assert_array_equal(a, b)  # the same on both processes, to the bit
        np.testing.assert_allclose(a, r, rtol=0, atol=1e-10)
    assert abs(reports[0]["loss"] - ref.history_[-1]["loss"]) < 1e-12


# ----------------------------------------------------------------------------- Dask inference


@pytest.fixture(scope="module")
def fitted():
    X, y = _digits(200)
    clf = MPSClassifier(bond_dim=4, max_epochs=2, random_state=0, dtype="float64").fit(X, y)
    rng = np.random.default_rng(1)
    Xn = rng.random((230, 16)) * 16  # new data, not in the domain (scaled, clipped)
    Xb = (Xn[:, :9] > 8).astype(int)
    born = BornMachine(bond_dim=4, max_epochs=2, random_state=0).fit(Xb)
    return clf, born, Xn, Xb


def test_dask_arrays_in_and_out_equal_numpy(fitted):
    da = pytest.importorskip("dask.array")
    clf, born, Xn, Xb = fitted
    X = da.from_array(Xn, chunks=(60, 5))  # columns chunked too: rechunked to one
    shapes = {"predict": (230,), "predict_proba": (230, 10), "predict_log_proba": (230, 10),
              "decision_function": (230, 10)}  # fmt: skip
    for method, shape in shapes.items():
        lazy = getattr(clf, method)(X)
        assert isinstance(lazy, da.Array) and lazy.shape == shape, method
        assert lazy.chunks[0] == (60, 60, 60, 50)
        got, want = lazy.compute(), getattr(clf, method)(Xn)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12) if got.dtype.kind == "f" \
            else np.testing.assert_array_equal(got, want)  # fmt: skip
    lazy = born.log_prob(da.from_array(Xb, chunks=100))
    assert isinstance(lazy, da.Array) and lazy.shape == (230,)
    np.testing.assert_allclose(lazy.compute(), born.log_prob(Xb), rtol=1e-5)


def test_dask_binary_decision_function_and_circuit_classifier():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    X = rng.random((40, 4))
    y = (X[:, 3] > 0.5).astype(int)
    circ = CircuitClassifier("mps", max_epochs=1, random_state=0, dtype="float64").fit(X, y)
    Xd = da.from_array(X, chunks=15)
    np.testing.assert_allclose(circ.predict_proba(Xd).compute(), circ.predict_proba(X),
                               atol=1e-12)  # fmt: skip
    np.testing.assert_array_equal(circ.predict(Xd).compute(), circ.predict(X))
    np.testing.assert_allclose(circ.decision_function(Xd).compute(), circ.decision_function(X),
                               atol=1e-9)  # fmt: skip
    assert circ.decision_function(Xd).shape == (40,)


def test_dask_bad_input(fitted):
    da = pytest.importorskip("dask.array")
    from sklearn.exceptions import NotFittedError

    clf, _, Xn, _ = fitted
    with pytest.raises(ValueError, match=r"X has 15 features, but MPSClassifier is expecting 16"):
        clf.predict(da.from_array(Xn[:, :15]))
    with pytest.raises(ValueError, match=r"X must be a 2-D array.*\(230,\)"):
        clf.predict_proba(da.from_array(Xn[:, 0]))
    with pytest.raises(NotFittedError):
        MPSClassifier().predict(da.from_array(Xn))


def test_qtn_predicts_without_dask():
    code = """
import json, sys
sys.modules["dask"] = sys.modules["dask.array"] = None  # as if Dask were not installed
import numpy as np, qtn
from qtn.estimators._dask import is_dask_array
X = np.random.default_rng(0).random((40, 3)); y = (X[:, 0] > 0.5).astype(int)
clf = qtn.MPSClassifier(bond_dim=2, max_epochs=1, random_state=0).fit(X, y)
print(json.dumps([is_dask_array(X), clf.predict(X).shape[0]]))
"""
    assert _run(code) == [False, 40]


def test_dask_on_a_distributed_cluster_equals_numpy(fitted):
    """Two worker processes compute the chunks: the fitted estimator travels to them by
    cloudpickle (once, as one graph key) and they give the numpy results."""
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    clf, born, Xn, Xb = fitted
    with (
        distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                 dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        X = da.from_array(Xn, chunks=(60, -1))
        proba, pred = client.compute([clf.predict_proba(X), clf.predict(X)], sync=True)
        logp = born.log_prob(da.from_array(Xb, chunks=120)).compute()
        workers = client.run(lambda: os.getpid())
    assert len(set(workers.values())) == 2
    np.testing.assert_allclose(proba, clf.predict_proba(Xn), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(pred, clf.predict(Xn))
    np.testing.assert_allclose(logp, born.log_prob(Xb), rtol=1e-5)
