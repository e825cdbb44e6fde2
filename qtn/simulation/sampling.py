"""Exact sampling from a simulator: the whole marginal, or the chain rule in blocks.

Up to :data:`MAX_WHOLE` qubits the marginal distribution is computed at once
and sampled with numpy. Beyond, qubits are sampled in blocks by the chain rule
P(b_block | earlier bits): one cached conditional network per block, in which
the earlier qubits are projected onto each shot's bits by one-hot vectors
passed as inputs, evaluated for all shots at once. Readout errors of the noise
model act on the drawn bits as independent classical flips.
"""

from __future__ import annotations

import numpy as np

from qtn._jax import x64_if
from qtn.simulation.plan import DTYPES

__all__ = ["sample", "MAX_WHOLE", "index_bits"]

#: the largest number of qubits whose joint marginal is computed whole
MAX_WHOLE = 20


def index_bits(idx: np.ndarray, k: int) -> np.ndarray:
    """Basis-state indices -> (n, k) bits, big-endian."""
    return ((np.asarray(idx)[:, None] >> np.arange(k - 1, -1, -1)) & 1).astype(np.uint8)


def _draw(rng, p, shots, k):
    p = np.clip(np.asarray(p, dtype=np.float64), 0, None)
    return index_bits(rng.choice(p.size, size=shots, p=p / p.sum()), k)


def sample(sim, shots: int, qubits: tuple, params, data, seed, *, block: int = 10) -> np.ndarray:
    """``shots`` exact samples of ``qubits`` for one input of simulator ``sim``."""
    rng = np.random.default_rng(seed)
    if len(qubits) <= MAX_WHOLE:
        p = sim.probs(qubits, params=params, data=data)
        return _draw(rng, p, shots, len(qubits))
    return sample_chain(sim, rng, shots, qubits, params, data, block=block)


def sample_chain(sim, rng, shots, qubits, params, data, *, block: int = 10) -> np.ndarray:
    """Chain-rule sampling in blocks of ``block`` qubits, all shots at once per block."""
    p, x, _ = sim._inputs(params, data)
    out = np.zeros((shots, len(qubits)), dtype=np.uint8)
    with x64_if(DTYPES[sim.dtype][1]):
        for lo in range(0, len(qubits), block):
            prefix, blk = qubits[:lo], qubits[lo : lo + block]
            plan = sim.plan("cond", prefix, blk)
            fn = plan.function((False, False, False, False, True), sim.interface)
            probs = np.real(np.asarray(fn(p, x, None, None, out[:, :lo]))).astype(np.float64)
            probs = np.clip(probs.reshape(shots, -1), 0, None)
            probs /= probs.sum(1, keepdims=True)
            cum = np.cumsum(probs, axis=1)
            idx = (rng.random((shots, 1)) > cum).sum(1).clip(0, probs.shape[1] - 1)
            out[:, lo : lo + len(blk)] = index_bits(idx, len(blk))
    if sim.noise is not None:  # readout errors: independent classical flips per qubit
        for j, q in enumerate(qubits):
            a = sim.noise.readout_matrix(q)
            if a is not None:
                p_flip = np.where(out[:, j] == 0, a[1, 0], a[0, 1])
                out[:, j] ^= (rng.random(shots) < p_flip).astype(np.uint8)
    return out
