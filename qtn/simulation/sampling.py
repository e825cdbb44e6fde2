"""Exact sampling from a simulator: an exact MPS, the whole marginal, or the chain rule.

- **Pure circuits** (gates only; readout errors allowed): the output state is
  built as an exact MPS (:mod:`qtn.simulation.mps_state`) and every qubit is
  sampled by the chain rule along it, all shots at once per site, with the
  right environments shared by all shots (the identity, by canonical form).
  This needs no contraction plan and no compilation.
- **Mixed states**, or a pure state whose MPS would need bonds beyond
  :data:`MAX_BOND`: up to :data:`MAX_WHOLE` qubits the marginal distribution is
  computed at once and sampled with numpy; beyond, qubits are sampled in blocks
  by the chain rule P(b_block | earlier bits): one cached conditional network
  per block, in which the earlier qubits are projected onto each shot's bits
  by one-hot vectors passed as inputs, evaluated for all shots at once.

Readout errors of the noise model act on the drawn bits as independent
classical flips.
"""

from __future__ import annotations

import numpy as np

from qtn._jax import x64_if
from qtn.simulation.mps_state import BondTooLarge, circuit_mps, sample_mps
from qtn.simulation.plan import DTYPES

__all__ = ["sample", "MAX_WHOLE", "MAX_BOND", "index_bits"]

#: the largest number of qubits whose joint marginal is computed whole
MAX_WHOLE = 20
#: the largest bond dimension of the exact MPS sampler
MAX_BOND = 256


def index_bits(idx: np.ndarray, k: int) -> np.ndarray:
    """Basis-state indices -> (n, k) bits, big-endian."""
    return ((np.asarray(idx)[:, None] >> np.arange(k - 1, -1, -1)) & 1).astype(np.uint8)


def _draw(rng, p, shots, k):
    p = np.clip(np.asarray(p, dtype=np.float64), 0, None)
    return index_bits(rng.choice(p.size, size=shots, p=p / p.sum()), k)


def sample(sim, shots: int, qubits: tuple, params, data, seed, state=None) -> np.ndarray:
    """``shots`` exact samples of ``qubits`` for one input of simulator ``sim``."""
    rng = np.random.default_rng(seed)
    if sim.is_pure:
        bits = _sample_pure(sim, rng, shots, params, data, state)
        if bits is not None:
            return _readout(sim, rng, bits[:, list(qubits)], qubits)
    if len(qubits) <= MAX_WHOLE:
        p = sim.probs(qubits, params=params, data=data, state=state)
        return _draw(rng, p, shots, len(qubits))
    return sample_chain(sim, rng, shots, qubits, params, data, state=state)


def _input_cores(sim, state) -> list:
    init = sim.initial_state
    n = sim.circuit.n_qubits
    if init.kind == "mps":
        return [np.asarray(c) for c in init.arrays]
    if init.kind == "product":
        vecs = init.arrays
    elif init.kind == "input":
        vecs = np.asarray(state, dtype=complex)
    else:
        vecs = [np.array([1.0, 0.0])] * n
    return [np.asarray(v, dtype=complex).reshape(1, 2, 1) for v in vecs]


def _sample_pure(sim, rng, shots, params, data, state):
    """All qubits' samples (shots, n) by the exact MPS, or None when its bonds grow too big."""
    p, x, (s, _) = sim._inputs(params, data, state)
    cores = _input_cores(sim, s)
    limit = sim.max_memory
    try:
        sites, qubit_of, _ = circuit_mps(sim._net_circuit, p.astype(np.float64),
                                         x.astype(np.float64), cores, max_bond=MAX_BOND,
                                         max_bytes=limit // 4)  # fmt: skip
    except BondTooLarge:
        return None
    widest = max(c.shape[2] for c in sites)
    if 4 * shots * widest * 16 > limit:  # the shots' environments and their update
        return None
    by_site = sample_mps(sites, shots, rng)
    out = np.empty_like(by_site)
    out[:, qubit_of] = by_site
    return out


def _readout(sim, rng, out, qubits):
    """Readout errors: independent classical flips per qubit."""
    if sim.noise is None:
        return out
    for j, q in enumerate(qubits):
        a = sim.noise.readout_matrix(q)
        if a is not None:
            p_flip = np.where(out[:, j] == 0, a[1, 0], a[0, 1])
            out[:, j] ^= (rng.random(len(out)) < p_flip).astype(np.uint8)
    return out


def sample_chain(sim, rng, shots, qubits, params, data, *, block: int = 10, state=None):
    """Chain-rule sampling in blocks of ``block`` qubits, all shots at once per block."""
    p, x, (s, _) = sim._inputs(params, data, state)
    out = np.zeros((shots, len(qubits)), dtype=np.uint8)
    with x64_if(DTYPES[sim.dtype][1]):
        for lo in range(0, len(qubits), block):
            prefix, blk = qubits[:lo], qubits[lo : lo + block]
            plan = sim.plan("cond", prefix, blk)
            fn = plan.function((False, False, False, False, True), sim.interface, sim.mesh)
            probs = np.real(np.asarray(fn(p, x, s, None, out[:, :lo]))).astype(np.float64)
            probs = np.clip(probs.reshape(shots, -1), 0, None)
            probs /= probs.sum(1, keepdims=True)
            cum = np.cumsum(probs, axis=1)
            idx = (rng.random((shots, 1)) > cum).sum(1).clip(0, probs.shape[1] - 1)
            out[:, lo : lo + len(blk)] = index_bits(idx, len(blk))
    return _readout(sim, rng, out, qubits)
