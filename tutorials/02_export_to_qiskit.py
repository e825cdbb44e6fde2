# %% [markdown]
# # From a qtn circuit model to Qiskit: Aer, noise, a fake IBM device, mitigation, SPSA
#
# A circuit classifier (Huggins et al., arXiv:1803.11537) is trained exactly on
# qtn's simulator, exported to Qiskit, and run on `AerSimulator` with and
# without noise and on a fake IBM backend through a Runtime `SamplerV2`
# (local testing mode). Sampled predictions are compared with the exact ones,
# readout errors are mitigated, and the parameters are fine-tuned with SPSA
# using samples only.
#
# Conventions of the bridge: qubit labels are kept (qtn qubit q is Qiskit
# qubit q); qtn's probability index puts qubit (or clbit) 0 first, Qiskit's
# last; `RunResult.counts()` uses Qiskit's keys (clbit 0 rightmost).
#
# Percent-format script: run it with `python`, or open it with jupytext.
# `QTN_TUTORIAL_SMALL=1` gives a quick run (the test suite does).

# %%
import os
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from sklearn.model_selection import train_test_split

from qtn.circuit import Circuit, Measure, staircase
from qtn.data import downsample, load_digits, select_classes
from qtn.execution import ReadoutMitigator, Runner, cross_entropy_loss, finetune
from qtn.export import to_qiskit, to_qiskit_order
from qtn.metrics import class_probabilities
from qtn.noise import NoiseModel, ReadoutError, depolarizing
from qtn.simulation import simulate

SMALL = os.environ.get("QTN_TUTORIAL_SMALL") == "1"
OUT = Path(os.environ.get("QTN_TUTORIAL_OUT", tempfile.mkdtemp(prefix="qtn-tutorial-")))
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Data and model
#
# Digits 0 and 1, averaged down to 2x2 pixels: four features in [0, 1], one
# qubit each (RY(pi x) encoding), then a staircase of SU(4) blocks. The last
# qubit sees every block, so it is the readout.

# %%
X, y = load_digits()
X, y = select_classes(X, y, [0, 1], relabel=True)
X = downsample(X, 2).reshape(len(X), -1)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
if SMALL:
    Xte, yte = Xte[:40], yte[:40]

model = staircase(4, 1).measure(3, 0)
body = Circuit(4, [op for op in model.ops if not isinstance(op, Measure)])
print(model.draw())

# %% [markdown]
# ## Exact training on qtn's simulator
#
# `probs_fn` is a JAX function of (params, data); vmapped over the batch and
# differentiated, it trains the circuit with Adam.

# %%
f = jax.vmap(simulate(body).probs_fn([3]), in_axes=(None, 0))
Xj, yj = jnp.asarray(Xtr, jnp.float32), jnp.asarray(ytr)


def loss(t):
    p = class_probabilities(f(t, Xj), 2, xp=jnp)
    return -jnp.mean(jnp.log(jnp.clip(p[jnp.arange(len(yj)), yj], 1e-6)))


opt = optax.adam(0.05)
theta = jnp.asarray(np.random.default_rng(0).normal(0, 0.3, model.n_params), jnp.float32)
state = opt.init(theta)


@jax.jit
def step(t, s):
    v, g = jax.value_and_grad(loss)(t)
    u, s = opt.update(g, s)
    return optax.apply_updates(t, u), s, v


losses = []
for _ in range(60 if SMALL else 300):
    theta, state, v = step(theta, state)
    losses.append(float(v))
theta = np.asarray(theta, dtype=float)
exact = np.asarray(f(jnp.asarray(theta), jnp.asarray(Xte)))
print(f"exact test accuracy: {(exact.argmax(1) == yte).mean():.2%}")

# %% [markdown]
# ## Export
#
# One template: trainable angles become `ParameterVector("theta")`, data angles
# `ParameterVector("x")` (both names can be chosen, so exported circuits
# compose). Statevectors agree once the index order is converted.

# %%
qc = to_qiskit(model)
print(qc.num_qubits, "qubits,", qc.num_parameters, "parameters:", qc.parameters[0], "...")
from qiskit.quantum_info import Statevector  # noqa: E402

sv = Statevector(to_qiskit(body, params=theta, data=Xte[0])).data
assert np.allclose(sv, to_qiskit_order(simulate(body, dtype="complex128").statevector(
    params=theta, data=Xte[0])), atol=1e-6)  # fmt: skip

# %% [markdown]
# ## Aer, with and without noise
#
# A `Runner` transpiles once and sends every input as one binding of a single
# `SamplerV2` job. With a qtn `NoiseModel`, its channels go into the circuit
# as Kraus instructions and its readout errors into Aer's noise model.

# %%
shots = 512 if SMALL else 4096
clean = Runner(model, seed=1).run(shots=shots, params=theta, data=Xte)
noise = (NoiseModel()
         .add_gate_noise(depolarizing(0.02), ["ry"])
         .add_gate_noise(depolarizing(0.05, 2), ["su4"])
         .add_readout_error(ReadoutError(0.05, 0.10)))  # fmt: skip
noisy_runner = Runner(model, noise=noise, seed=2)
noisy = noisy_runner.run(shots=shots, params=theta, data=Xte)
print("counts of the first input (Qiskit's keys):", clean.counts(0))

# %% [markdown]
# ## A fake IBM device through a Runtime SamplerV2 (local testing mode)
#
# `SamplerV2(mode=backend)` is the path to real IBM hardware (which has no
# `backend.run`); with a fake backend it runs locally on Aer with the device's
# noise. The circuit is transpiled once for the device's target.

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # runtime's deprecation notice for SamplerV2
    from qiskit_ibm_runtime import SamplerV2
    from qiskit_ibm_runtime.fake_provider import FakeBelemV2

    device = FakeBelemV2()
    sampler = SamplerV2(mode=device)
    sampler.options.simulator.seed_simulator = 3
    device_runner = Runner(model, sampler=sampler, seed=3)
    raw = device_runner.run(shots=shots, params=theta, data=Xte)
print("physical qubit read:", device_runner.measured_qubits)

# %% [markdown]
# ## Readout mitigation on the transpiled circuit's physical qubits

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    mit = ReadoutMitigator.calibrate(device_runner, shots=4096, seed=4)
mitigated = mit.apply(raw.probs)


def accuracy(p):
    return float((class_probabilities(p, 2).argmax(1) == yte).mean())


results = {"exact": accuracy(exact), "Aer": accuracy(clean.probs),
           "Aer + noise": accuracy(noisy.probs), "fake device": accuracy(raw.probs),
           "device, mitigated": accuracy(mitigated)}  # fmt: skip
for k, v in results.items():
    print(f"{k:>18}: {v:.2%}")

# %% [markdown]
# ## SPSA fine-tuning from samples only
#
# Starting from the classically trained parameters, SPSA improves the sampled
# cross-entropy on the noisy Aer runner (every iteration: two parameter sets
# times the batch, one job).

# %%
batch = Xtr[:24] if SMALL else Xtr[:200]
tuned = finetune(noisy_runner, cross_entropy_loss(ytr[: len(batch)]), theta, data=batch,
                 shots=256 if SMALL else 2048, maxiter=5 if SMALL else 60, seed=5,
                 verbose=0)  # fmt: skip
after = noisy_runner.run(shots=shots, params=tuned.params, data=Xte)
results["Aer + noise, SPSA"] = accuracy(after.probs)
print(f"SPSA: loss {tuned.history[0]['loss']:.3f} -> {min(h['loss'] for h in tuned.history):.3f}")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
ax1.plot(losses, label="exact training (Adam)")
ax1.plot(np.linspace(0, len(losses), len(tuned.history)), [h["loss"] for h in tuned.history],
         label="SPSA on noisy Aer (sampled)")  # fmt: skip
ax1.set_xlabel("step")
ax1.set_ylabel("cross-entropy")
ax1.legend()
ax2.barh(list(results), [100 * v for v in results.values()])
ax2.set_xlabel("test accuracy (%)")
fig.tight_layout()
fig.savefig(OUT / "02_export_to_qiskit.png", dpi=120)
print("saved", OUT / "02_export_to_qiskit.png")
