"""Every core: one JAX CPU device per core at import, and data-parallel training over them.

Each check runs in a fresh interpreter, because JAX fixes its device count when it
starts (the test process's own JAX is already running).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(code: str, **env) -> str:
    full = {k: v for k, v in os.environ.items()
            if k not in ("JAX_NUM_CPU_DEVICES", "QTN_CPU_DEVICES", "XLA_FLAGS")}  # fmt: skip
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join([str(REPO), full.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                         timeout=300, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_import_asks_for_cpu_devices_only_when_told_without_importing_jax():
    code = "import os, sys, qtn; print(json.dumps([os.environ.get('JAX_NUM_CPU_DEVICES'), 'jax' in sys.modules]))"  # noqa: E501
    code = "import json; " + code
    assert json.loads(_run(code, QTN_CPU_DEVICES="3")) == ["3", False]
    # the user's own setting is kept
    assert json.loads(_run(code, JAX_NUM_CPU_DEVICES="1", QTN_CPU_DEVICES="3")) == ["1", False]
    assert json.loads(_run(code, QTN_CPU_DEVICES="1")) == ["1", False]
    # by default JAX's own CPU device count stands (the split is slower on CPU: qtn._devices)
    assert json.loads(_run(code)) == [None, False]


_SPLIT = """
import json
import numpy as np, jax, jax.numpy as jnp, optax
import qtn
from qtn._devices import batch_mesh, shard_count
from qtn.models import classifier_forward, init_mps_classifier
from qtn.training.gradient import make_epoch, replicate, split_batches, batch_indices

mesh = batch_mesh()
rng = np.random.default_rng(0)
phi = qtn.get_feature_map("trigonometric")(rng.random((256, 12)).astype(np.float32))
y = jnp.asarray(rng.integers(0, 3, 256))
w = jnp.ones(256, jnp.float32)
params = init_mps_classifier(jax.random.key(0), n_sites=12, n_classes=3, bond_dim=8,
                             init_std=0.1)
opt = optax.adam(1e-2)
idx, mask = batch_indices(256, 64, np.random.default_rng(1))
one = make_epoch(classifier_forward, "cross_entropy", opt, 0.0)
p1, _, s1 = one(params, opt.init(params), phi, y, w, idx, mask)
split = make_epoch(classifier_forward, "cross_entropy", opt, 0.0, mesh)
args = (replicate(mesh, params), replicate(mesh, opt.init(params)), *replicate(mesh, (phi, y, w)),
        *split_batches(mesh, idx, mask))
p2, _, s2 = split(*args)
hlo = split.lower(*args).compile().as_text()
diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in
           zip(jax.tree_util.tree_leaves(p1), jax.tree_util.tree_leaves(p2)))
print(json.dumps({"devices": len(jax.devices()), "mesh": mesh.size, "diff": diff,
                  "stats": float(jnp.max(jnp.abs(s1 - s2))), "all_reduce": "all-reduce" in hlo,
                  "shards": [list(sh.data.shape) for sh in args[5].addressable_shards],
                  "small_model_split": shard_count(64, 10), "odd_batch_split": shard_count(63)}))
"""


def test_split_training_equals_one_device():
    """An epoch split over 2 CPU devices sums the same gradients as one device (to float32
    rounding), really is split (an all-reduce in the compiled program, half the rows on
    each device), and small models or uneven batches are not split."""
    got = json.loads(_run(_SPLIT, QTN_CPU_DEVICES="2"))
    assert got["devices"] == 2 and got["mesh"] == 2
    assert got["all_reduce"]
    assert got["shards"] == [[4, 32], [4, 32]]  # 4 batches of 64 rows, split in two
    assert got["diff"] < 1e-5 and got["stats"] < 1e-3
    assert got["small_model_split"] == 1 and got["odd_batch_split"] == 1


@pytest.mark.slow
def test_estimator_trains_split_and_predicts():
    """The estimator's fit runs the split epoch (work threshold off) and gives back ordinary
    single-device parameters: predict, save and a second fit work."""
    code = """
import json, numpy as np, jax, qtn, tempfile, os
from qtn.training import fit as _  # noqa
X = np.random.default_rng(0).random((200, 6)); y = (X[:, 0] > 0.5).astype(int)
a = qtn.MPSClassifier(bond_dim=4, max_epochs=3, learning_rate=1e-2, random_state=0,
                      calibration=None).fit(X, y)
losses = [h["loss"] for h in a.history_]
devs = {d.id for leaf in jax.tree_util.tree_leaves(a.params_)
        for d in getattr(leaf, "devices", lambda: [jax.devices()[0]])()}
with tempfile.TemporaryDirectory() as d:
    a.save(os.path.join(d, "m.npz")); b = qtn.MPSClassifier.load(os.path.join(d, "m.npz"))
a.set_params(warm_start=True, max_epochs=1).fit(X, y)
print(json.dumps({"losses": losses, "devices": sorted(devs),
                  "same": bool((b.predict(X) == b.predict(X)).all())}))
"""
    got = json.loads(_run(code, QTN_CPU_DEVICES="2", QTN_MIN_FLOPS_PER_DEVICE="0"))
    assert got["devices"] == [0] and got["same"]
    assert got["losses"][-1] < got["losses"][0]
