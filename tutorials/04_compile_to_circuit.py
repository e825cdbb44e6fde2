# %% [markdown]
# # From a trained tensor network to a circuit
#
# A model trained classically as a tensor network is only useful on a quantum
# computer once it is a circuit. `qtn.compile(target, method=...)` does that
# for a state, and every trained model has `to_circuit()`:
#
# - `method="exact"`: the MPS is brought to canonical form and every core, an
#   isometry, is completed to a unitary on k + 1 qubits (bond dimension 2^k);
#   the circuit reproduces the state to machine precision. With `reuse=True`
#   it runs on k + 1 qubits, measuring and resetting them as it goes.
# - `method="layers"`: Ran's analytic layers of two-qubit gates (a chi = 2
#   truncation disentangled layer by layer); cheap, approximate.
# - `method="aqc"`: a staircase of SU(4) blocks optimised against the target
#   (-log fidelity, L-BFGS), started from the analytic layers.
#
# Every method reports the fidelity it reached, computed exactly, with the CX
# count and depth. This tutorial compiles a Born machine and a classifier by
# each method, plots fidelity and accuracy against depth, and runs the
# qubit-reuse circuit on Aer.
#
# A percent-format script: run it with `python` or open it with jupytext.
# `QTN_TUTORIAL_SMALL=1` makes a quick run (the test suite does).

# %%
import os
import tempfile
import warnings
from itertools import product
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import qtn
from qtn.data import bars_and_stripes, downsample, load_digits, select_classes, train_val_split

SMALL = os.environ.get("QTN_TUTORIAL_SMALL") == "1"
OUT = Path(os.environ.get("QTN_TUTORIAL_OUT", tempfile.mkdtemp(prefix="qtn-tutorial-")))
OUT.mkdir(parents=True, exist_ok=True)
warnings.filterwarnings("ignore", message="Couldn't import `kahypar`")

# %% [markdown]
# ## A Born machine on bars and stripes
#
# The 3x3 (quick run) or 4x4 bars-and-stripes images, one qubit per pixel.

# %%
side = 3 if SMALL else 4
X = bars_and_stripes(side, side, flatten=True)
born = qtn.BornMachine(bond_dim=4, max_epochs=4 if SMALL else 10, random_state=0).fit(X)
print(f"{len(X)} patterns; model NLL {born.nll(X):.3f} (ideal ln {len(X)} = {np.log(len(X)):.3f})")

# %% [markdown]
# ### Exact compilation
#
# Bond dimension 4 = 2^2: blocks of 3 qubits, decomposed into CX and U3.

# %%
circuit, report = born.to_circuit("exact", X=X)
print(report)
m = report.metrics
print(f"KL(model || circuit) = {m['kl']:.2e} nats; NLL circuit {m['nll']:.4f} vs model "
      f"{m['model_nll']:.4f}")  # fmt: skip

# %% [markdown]
# ### Fidelity against depth: layers and AQC
#
# L staircase layers of SU(4) blocks (3 CX each). The analytic layers are fast
# but plateau; AQC, warm-started from them, climbs higher at the same depth.

# %%
depths = [1, 2] if SMALL else [1, 2, 3, 4]
curves = {"layers": [], "aqc": []}
for L in depths:
    _, rep_l = born.to_circuit("layers", n_layers=L, X=X)
    _, rep_a = born.to_circuit("aqc", n_layers=L, maxiter=60 if SMALL else 200, X=X)
    for name, rep in (("layers", rep_l), ("aqc", rep_a)):
        curves[name].append((rep.n_2q, rep.fidelity, rep.metrics["kl"]))
    print(f"L={L}: layers F={rep_l.fidelity:.4f} KL={rep_l.metrics['kl']:.3f} | "
          f"aqc F={rep_a.fidelity:.4f} KL={rep_a.metrics['kl']:.3f} ({rep_a.n_2q} CX)")  # fmt: skip

# %% [markdown]
# ## A classifier: digits 3 vs 5 at 4x4 pixels
#
# A trained `MPSClassifier` compiles to one state-preparation circuit per
# class; a test image x is encoded with RY(pi x) gates (the trigonometric
# feature map) and the class with the largest overlap |<phi(x)|psi_l>|^2,
# weighted by the class norms, wins. Each class circuit is measured on all
# qubits; the all-zeros outcome estimates the overlap. A circuit measures
# |amplitude|^2, so the model is trained with the Born-rule loss (`loss="nll"`):
# a cross-entropy model predicts by its signed amplitudes, which no
# measurement reads, and `to_circuit` warns that the two can disagree.

# %%
Xd, yd = load_digits()
Xd, yd = select_classes(downsample(Xd, 4).reshape(len(Xd), -1), yd, [3, 5])
Xtr, Xte, ytr, yte = train_val_split(Xd, yd, val_fraction=0.3, seed=0)
clf = qtn.MPSClassifier(
    bond_dim=4, loss="nll", max_epochs=10 if SMALL else 30, learning_rate=0.02, random_state=0
).fit(Xtr, ytr)
print(f"classical test accuracy {clf.score(Xte, yte):.3f}")

acc = {}
for method, opts in (("exact", {}), ("layers", {"n_layers": 2}), ("aqc", {"n_layers": 2})):
    if method == "aqc":
        opts["maxiter"] = 60 if SMALL else 200
    compiled = clf.to_circuit(method, X=Xte, y=yte, **opts)
    r = compiled.report
    acc[method] = (r.n_2q, r.metrics["accuracy"])
    print(f"{method:>6}: compiled accuracy {r.metrics['accuracy']:.3f} "
          f"(classical {r.metrics['classical_accuracy']:.3f}), min class fidelity "
          f"{r.fidelity:.4f}, {r.n_2q} CX over {r.metrics['circuits']} circuits")  # fmt: skip

# %% [markdown]
# ## Fidelity and accuracy against depth

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for name, pts in curves.items():
    axes[0].plot(depths, [f for _, f, _ in pts], "o-", label=name)
axes[0].axhline(report.fidelity, color="k", ls="--", label=f"exact ({report.n_2q} CX)")
axes[0].set(xlabel="staircase layers L", ylabel="fidelity", title="Born machine (BAS)")
axes[0].legend()
names = list(acc)
axes[1].bar(names, [a for _, a in acc.values()])
axes[1].axhline(clf.score(Xte, yte), color="k", ls="--", label="classical")
axes[1].set(ylabel="test accuracy", title="compiled classifier, 3 vs 5", ylim=(0, 1))
axes[1].legend()
fig.tight_layout()
fig.savefig(OUT / "compile_fidelity_depth.png", dpi=80)
plt.close(fig)

# %% [markdown]
# ## The qubit-reuse circuit on Aer
#
# With `reuse=True` the exact circuit of the Born machine runs on k + 1 = 3
# qubits for any number of pixels: each qubit is measured as soon as its last
# block is done, reset, and reused for the next pixel. This is a dynamic
# circuit; qtn exports it to Qiskit with its mid-circuit measurements and
# resets, and Aer samples it. The sampled distribution matches the model's.

# %%
reused, rep_r = born.to_circuit("exact", reuse=True)
print(f"{reused.n_qubits} qubits for {reused.n_clbits} pixels")
qc = qtn.to_qiskit(reused, params=rep_r.params)
print(dict(qc.count_ops()))  # qc.draw() shows it (wide: one column per gate)

from qtn.execution import Runner  # noqa: E402

shots = 4_000 if SMALL else 20_000
res = Runner(reused, seed=7).run(shots=shots, params=rep_r.params)
grid = np.array(list(product((0, 1), repeat=X.shape[1])))
p_model = np.exp(born.log_prob(grid))
tvd = 0.5 * np.abs(res.probs - p_model).sum()
print(f"total variation distance Aer vs model over {shots} shots: {tvd:.3f}")
top = np.argsort(res.probs)[::-1][:8]
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(np.arange(8) - 0.2, p_model[top], 0.4, label="model p(x)")
ax.bar(np.arange(8) + 0.2, res.probs[top], 0.4, label=f"Aer, {shots} shots")
ax.set(xlabel="most frequent patterns", ylabel="probability", title="reused circuit on Aer")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "reuse_on_aer.png", dpi=80)
plt.close(fig)

# %% [markdown]
# ## A tree Born machine: the tree circuit and logarithmic qubit reuse
#
# A TTN Born machine compiles to the tree circuit of its node unitaries: the
# root prepares a state on two bonds, and every node maps its bond (and fresh
# qubits in |0>) onto its two children. Qubit p carries leaf position p. The
# nodes are emitted depth-first, so with `reuse=True` only the current node's
# wires and the pending bonds of its ancestors are alive: the number of wires
# grows with log2 of the number of pixels, not with the pixels.

# %%
tree_born = qtn.BornMachine("ttn", bond_dim=2, image_shape=(side, side),
                            max_epochs=20 if SMALL else 60, random_state=0).fit(X)  # fmt: skip
tree_circuit, tree_rep = tree_born.to_circuit("exact", reuse=True, X=X)
print(tree_rep.summary())
print(f"tree: {tree_circuit.n_clbits} leaf qubits measured on {tree_circuit.n_qubits} wires; "
      f"KL(model || circuit) = {tree_rep.metrics['kl']:.2e}")  # fmt: skip
print(f"figures in {OUT}")
