# %% [markdown]
# # Born machines: learning a distribution with a tensor network
#
# A Born machine (Han et al., arXiv:1709.01662) models discrete data with the
# squared amplitudes of a quantum state: p(x) = |psi(x)|^2 / Z. With psi an MPS,
# the normalisation Z is exact and cheap, and samples are drawn exactly, one
# site after another, with no Markov chain. qtn trains it by the paper's
# two-site sweeps (the MPS stays canonical, so Z is exact at every step, and
# bond dimensions adapt) or by gradients, and offers the same model on a tree
# tensor network.
#
# This file is a percent-format script: run it with `python`, or open it as a
# notebook with jupytext. `QTN_TUTORIAL_SMALL=1` makes a quick run (the test
# suite does); `QTN_DATA_DIR` pointing at a folder with `mnist/` enables the
# MNIST part.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import qtn
from qtn.data import bars_and_stripes, binarize, find_dataset

SMALL = os.environ.get("QTN_TUTORIAL_SMALL") == "1"
OUT = Path(os.environ.get("QTN_TUTORIAL_OUT", tempfile.mkdtemp(prefix="qtn-tutorial-")))
OUT.mkdir(parents=True, exist_ok=True)


def image_grid(images, shape, path, title, ncols=8):
    """Save images (n, h*w) as a grid of black-and-white pictures."""
    n = len(images)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 0.9, nrows * 0.9))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, img in zip(np.ravel(axes), images):
        ax.imshow(np.asarray(img).reshape(shape), cmap="gray_r", vmin=0, vmax=1)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# %% [markdown]
# ## Bars and stripes
#
# The 4x4 bars-and-stripes images (every row constant, or every column
# constant) are 30 of the 65,536 binary 4x4 images. A perfect model gives each
# probability 1/30: its negative log-likelihood is ln 30 = 3.40.

# %%
side = 3 if SMALL else 4
X = bars_and_stripes(side, side, flatten=True)
born = qtn.BornMachine(bond_dim=16 if SMALL else 32, max_epochs=3 if SMALL else 6, random_state=0)
born.fit(X)
print(f"{len(X)} patterns; NLL {born.nll(X):.4f} (optimum ln {len(X)} = {np.log(len(X)):.4f})")
print("bond ranks after the sweeps:", born.fit_info_["bond_ranks"])

samples = born.sample(32, seed=0)
patterns = {tuple(r) for r in X.tolist()}
print(f"{np.mean([tuple(s) in patterns for s in samples.tolist()]):.0%} of samples are patterns")
image_grid(samples, (side, side), OUT / "bas_samples.png", "exact samples")

# %% [markdown]
# ## Inpainting
#
# Fix some pixels and sample the rest from the exact conditional distribution
# p(missing | known). Here the middle row of each pattern is hidden.

# %%
missing = np.zeros(side * side, bool)
missing[side : 2 * side] = True
filled = born.inpaint(X[:8], missing, seed=1)
shown = np.where(missing, 0.5, X[:8])  # grey: hidden
image_grid(np.concatenate([shown, filled]), (side, side), OUT / "bas_inpainting.png",
           "top: hidden middle row, bottom: inpainted")  # fmt: skip

# %% [markdown]
# ## NLL against bond dimension
#
# The bond dimension bounds the correlations the MPS can hold. Too small a
# bond cannot reach ln(30); the middle cut of the 4x4 patterns needs rank 17.

# %%
dims = [4, 16] if SMALL else [2, 4, 8, 16, 32]
nll = []
for d in dims:
    m = qtn.BornMachine(bond_dim=d, max_epochs=2 if SMALL else 6, random_state=0).fit(X)
    nll.append(m.nll(X))
    print(f"bond dim {d:3d}: NLL {nll[-1]:.4f}")
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(dims, nll, marker="o", label="MPS Born machine")
ax.axhline(np.log(len(X)), ls="--", color="gray", label=f"ln {len(X)}")
ax.set_xscale("log", base=2)
ax.set_xlabel("maximum bond dimension")
ax.set_ylabel("training NLL (nats)")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "bas_nll_vs_bond_dim.png", dpi=100)

# %% [markdown]
# ## The same on a tree
#
# `structure="ttn"` puts the pixels on the leaves of a binary tree; with
# `image_shape` neighbouring pixels are grouped in 2x2 blocks first. Trees
# train by gradients; their samples are exact too, drawn top-down.

# %%
tree = qtn.BornMachine(
    "ttn", bond_dim=16, image_shape=(side, side), max_epochs=150 if SMALL else 600,
    batch_size=len(X), learning_rate=0.01, lr_schedule="constant", random_state=0,
)  # fmt: skip
tree.fit(X)
print(f"TTN Born machine: NLL {tree.nll(X):.4f}")
image_grid(tree.sample(16, seed=2), (side, side), OUT / "bas_tree_samples.png", "tree samples")
print("tree levels:", [a.shape for a in tree.tree_.levels()])

# %% [markdown]
# ## Save, reload, hand over
#
# `save`/`load` round-trip bit for bit. `mps_` is the trained state as a
# `qtn.MPS` (unit norm, canonical with its centre at site 0), ready for the
# circuit compiler; `to_quimb()` gives quimb's `MatrixProductState`.

# %%
born.save(OUT / "bas_born.npz")
again = qtn.BornMachine.load(OUT / "bas_born.npz")
assert np.array_equal(again.log_prob(X), born.log_prob(X))
print(born.mps_.n_sites, "sites, bond dims", qtn.models.bond_dims(born.mps_))
print("exact marginal of the two corner pixels:\n", born.marginal([0, side * side - 1]).round(3))

# %% [markdown]
# ## Binarised MNIST
#
# Han et al. trained on the first 1,000 MNIST training images, binarised at
# 0.5, with 784 sites in row order. qtn's sweeps go site by site across the
# whole image; the NLL falls as the bond dimension grows (the README's
# benchmark goes to larger D). Samples and inpainting of the lower half follow.

# %%
if find_dataset("mnist") is None:
    print("MNIST not found (set QTN_DATA_DIR or use load_mnist(download=True)); skipping this part")
else:
    (Xm, _), (Xt, _) = qtn.load_mnist(progress=False)
    n = 200 if SMALL else 1000
    Xm = binarize(Xm[:n].reshape(n, -1), 0.5)
    Xt = binarize(Xt[:n].reshape(n, -1), 0.5)
    mnist_dims = [6] if SMALL else [10, 20, 40]
    train_nll, models = [], {}
    for d in mnist_dims:
        m = qtn.BornMachine(bond_dim=d, max_epochs=1 if SMALL else 4, random_state=0,
                            verbose=0 if SMALL else 1).fit(Xm)  # fmt: skip
        train_nll.append(m.nll(Xm))
        models[d] = m
        lp = m.log_prob(Xt)
        ok = np.isfinite(lp)
        print(f"D={d:3d}: train NLL {train_nll[-1]:.2f}; test NLL {-lp[ok].mean():.2f} over "
              f"{ok.sum()} images ({(~ok).sum()} have probability 0)")  # fmt: skip
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(mnist_dims, train_nll, marker="o", label="qtn, training NLL")
    han = {10: 95.19, 100: 39.86, 200: 26.83, 500: 12.95}
    ax.plot(list(han), list(han.values()), "x", color="gray", label="Han et al. (2018)")
    ax.set_xscale("log")
    ax.set_xlabel("maximum bond dimension D")
    ax.set_ylabel("NLL (nats)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "mnist_nll_vs_bond_dim.png", dpi=100)
    best = models[mnist_dims[-1]]
    image_grid(best.sample(16, seed=0), (28, 28), OUT / "mnist_samples.png", "MNIST samples")
    lower = np.zeros(784, bool)
    lower[392:] = True
    done = best.inpaint(Xt[:8], lower, seed=0)
    shown = np.concatenate([np.where(lower, 0.5, Xt[:8]), done])
    image_grid(
        shown, (28, 28), OUT / "mnist_inpainting.png", "top: lower half hidden, bottom: inpainted"
    )
