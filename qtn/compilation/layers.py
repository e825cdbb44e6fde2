"""Analytic layered compilation (Ran, arXiv:1908.07958): MPS -> staircase layers of 2-qubit gates.

Repeat L times: truncate the current state to bond dimension 2 (an SVD sweep of
the MPS core's :func:`~qtn.models.split`), build the exact chi = 2 circuit of
that truncation (one staircase layer of two-qubit unitaries, see
:mod:`qtn.compilation.exact`), and apply the layer's inverse to the current
state, which disentangles it. The circuit is the layers in reverse order:
|psi> ~ G_1 G_2 ... G_L |0>. After layer l the state left to disentangle is
psi_l = G_l^dagger ... G_1^dagger |psi>, and the fidelity of the l-layer circuit
is |<0...0|psi_l>|^2, exact whenever no singular value was truncated while
applying the inverse layers (the report says so, and the final fidelity is
recomputed from the circuit itself).

Every two-qubit gate becomes a trainable ``su4`` block whose 15 angles come
from its KAK decomposition, so ``method="aqc"`` can start from the result; the
one-qubit gate closing each layer is merged into the next layer's block on
qubit 0, and the very last one stays a ``u3``.
"""

from __future__ import annotations

import time

import numpy as np

from qtn.circuit import Circuit, Trainable
from qtn.compilation.exact import sequential_blocks
from qtn.compilation.report import CompileReport, circuit_fidelity, cx_count, two_qubit_depth
from qtn.compilation.synthesis import su4_angles
from qtn.models import MPS, merge, pack, split, unpack

__all__ = ["compile_layers", "layer_unitaries", "mpd_layer", "residual", "su4_circuit"]


def _apply_two_site(cores, gate, i, max_bond, cutoff) -> float:
    """Gate (4x4, big-endian on (i, i+1)) on neighbouring cores; the centre moves to i+1."""
    theta = merge(cores[i], cores[i + 1])  # (Dl, 2, 2, 1, Dr)
    dl, _, _, _, dr = theta.shape
    theta = np.einsum("ab,xbr->xar", gate, theta.reshape(dl, 4, dr)).reshape(dl, 2, 2, 1, dr)
    cap = min(dl * 2, 2 * dr) if max_bond is None else min(max_bond, dl * 2, 2 * dr)
    a, b, disc, rank = split(theta, move="right", max_bond=cap, cutoff=cutoff)
    r = max(int(rank), 1)
    cores[i], cores[i + 1] = a[..., :r], b[:r]
    return float(disc)


def _sweep_right(cores, max_bond, cutoff, normalize=False) -> float:
    """Move the centre from 0 to the end (left-canonical), truncating; returns the worst
    discarded weight."""
    worst = 0.0
    eye = np.eye(4)
    for i in range(len(cores) - 1):
        worst = max(worst, _apply_two_site(cores, eye, i, max_bond, cutoff))
    if normalize:
        cores[-1] = cores[-1] / np.linalg.norm(cores[-1])
    return worst


def _sweep_left(cores, cutoff) -> float:
    """Move the centre from the end back to 0 (right-canonical); singular values below
    ``cutoff`` (relative) are dropped. Returns the worst discarded weight."""
    worst = 0.0
    for i in range(len(cores) - 2, -1, -1):
        theta = merge(cores[i], cores[i + 1])
        dl, dr = theta.shape[0], theta.shape[-1]
        a, b, disc, rank = split(theta, move="left", max_bond=min(dl * 2, 2 * dr), cutoff=cutoff)
        r = max(int(rank), 1)
        cores[i], cores[i + 1] = a[..., :r], b[:r]
        worst = max(worst, float(disc))
    return worst


def residual(mps: MPS, circuit: Circuit, params, *, max_bond=None, cutoff=1e-12):
    """C(params)^dagger |mps> as right-canonical ragged cores, for a circuit of one- and
    neighbouring two-qubit gates; bonds capped at ``max_bond`` (default: the target's)."""
    from qtn.circuit import Gate

    cores = unpack(mps)
    if max_bond is None:
        max_bond = max(c.shape[-1] for c in cores[:-1])
    _sweep_left(cores, cutoff)
    for op in reversed(circuit.ops):
        if not isinstance(op, Gate):
            continue
        u = op.numeric_matrix(params).conj().T
        if len(op.qubits) == 1:
            q = op.qubits[0]
            cores[q] = np.einsum("ab,xbr->xar", u, cores[q])
            continue
        a, b = op.qubits
        if abs(a - b) != 1:
            raise ValueError(f"residual: gate on qubits {op.qubits} is not nearest-neighbour")
        if a > b:  # the gate's first qubit is the right one: swap its legs
            u = u.reshape(2, 2, 2, 2).transpose(1, 0, 3, 2).reshape(4, 4)
            a, b = b, a
        _apply_two_site(cores, u, a, max_bond, cutoff)
    _sweep_left(cores, cutoff)
    return cores


def mpd_layer(cores_right_canonical, seed: int = 0):
    """Ran's analytic layer of a state: its bond-2 truncation's staircase, [(U, wires), ...]."""
    trunc = [c.copy() for c in cores_right_canonical]
    _sweep_right(trunc, 2, 0.0, normalize=True)
    return layer_unitaries(trunc, seed=seed)


def layer_unitaries(cores_left_canonical, seed: int = 0):
    """The staircase layer (time order) of an MPS of bond dimension <= 2: [(U, wires), ...]."""
    mps = pack(cores_left_canonical, center=len(cores_left_canonical) - 1)
    _, blocks = sequential_blocks(mps, k=1, seed=seed)
    return [(data, wires) for _, wires, data in blocks]


def _zero_amplitude(cores) -> complex:
    v = np.ones(1)
    for c in cores:
        v = v @ c[:, 0, :]
    return complex(v[0])


def su4_circuit(n_qubits: int, layers: list) -> tuple[Circuit, np.ndarray]:
    """A circuit of trainable su4 blocks (and a final u3) from layers of (U, wires), layers in
    time order; one-qubit gates are merged into the next two-qubit block on their qubit."""
    c = Circuit(n_qubits)
    params: list[float] = []
    pending: dict[int, np.ndarray] = {}
    phase = 0.0
    for layer in layers:
        for u, wires in layer:
            if len(wires) == 1:
                q = wires[0]
                pending[q] = u @ pending.get(q, np.eye(2))
                continue
            a, b = wires
            pre = np.kron(pending.pop(a, np.eye(2)), pending.pop(b, np.eye(2)))
            angles, ph = su4_angles(u @ pre)
            phase += ph
            start = len(params)
            params.extend(angles)
            c.su4(a, b, angles=[Trainable(start + i) for i in range(15)])
    from qtn.compilation.synthesis import _u3_angles

    for q, m in sorted(pending.items()):
        t, p, lam, ph = _u3_angles(m)
        phase += ph
        start = len(params)
        params.extend([t, p, lam])
        c.u(Trainable(start), Trainable(start + 1), Trainable(start + 2), q)
    c.global_phase = phase % (2 * np.pi)
    return c, np.asarray(params, dtype=float)


def analytic_layers(mps: MPS, n_layers: int, *, target_fidelity=None, max_bond=None,
                    cutoff: float = 1e-12, seed: int = 0):  # fmt: skip
    """Ran's layers of ``mps``: ``(layers, fidelity estimates, worst discarded weight)``.

    ``layers[0]`` is the first layer found (the last to act); each is a list of
    ``(U, wires)`` in time order.
    """
    current = unpack(mps)  # left-canonical: centre at the end
    if max_bond is None:
        max_bond = max(c.shape[-1] for c in current[:-1])
    _sweep_left(current, cutoff)
    layers, fids, worst = [], [], 0.0
    for layer_index in range(n_layers):
        layer = mpd_layer(current, seed=seed + layer_index)
        # apply the inverse layer: reverse time order, daggered; a left-to-right sweep
        for u, wires in reversed(layer):
            if len(wires) == 1:
                current[0] = np.einsum("ab,xbr->xar", u.conj().T, current[0])
            else:
                worst = max(worst, _apply_two_site(current, u.conj().T, wires[0], max_bond, cutoff))
        worst = max(worst, _sweep_left(current, cutoff))
        layers.append(layer)
        fids.append(abs(_zero_amplitude(current)) ** 2)
        if target_fidelity is not None and fids[-1] >= target_fidelity:
            break
        if fids[-1] > 1 - 1e-12 and worst <= 1e-12:
            break  # exact: further layers would be identities
    return layers, fids, worst


def compile_layers(
    mps: MPS,
    *,
    t0: float | None = None,
    n_layers: int = 4,
    target_fidelity: float | None = None,
    max_bond: int | None = None,
    cutoff: float = 1e-12,
    seed: int = 0,
):
    """``n_layers`` of Ran's analytic layers (stop early at ``target_fidelity``).

    ``max_bond`` caps the bond dimension of the state being disentangled (default: the
    target's, as in Ran's paper: without a cap it doubles with every layer for little
    gain); ``cutoff`` drops relative singular values below it. The reported fidelities
    (per layer and final) are always exact: recomputed from the circuits when a cap cut.
    """
    t0 = time.perf_counter() if t0 is None else t0
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"n_layers must be an integer >= 1, got {n_layers!r}")
    if target_fidelity is not None and not 0 < target_fidelity <= 1:
        raise ValueError(f"target_fidelity must be in (0, 1], got {target_fidelity!r}")
    n = mps.n_sites
    layers, fids, worst = analytic_layers(mps, n_layers, target_fidelity=target_fidelity,
                                          max_bond=max_bond, cutoff=cutoff, seed=seed)  # fmt: skip
    circuit, params = su4_circuit(n, layers[::-1])
    fidelity = circuit_fidelity(circuit, params, mps)
    notes = []
    if worst > 1e-12:
        # the disentangled state was truncated: recompute every layer's fidelity exactly
        exact = []
        for n_used in range(1, len(layers)):
            sub, sub_params = su4_circuit(n, layers[:n_used][::-1])
            exact.append(circuit_fidelity(sub, sub_params, mps))
        fids = exact + [fidelity]
        notes.append(
            f"the state being disentangled was kept at the target's bond dimension (worst "
            f"discarded weight {worst:.3g}); every layer fidelity is recomputed exactly"
        )
    if target_fidelity is not None and fidelity < target_fidelity:
        notes.append(f"target fidelity {target_fidelity} not reached with {len(layers)} layers")
    report = CompileReport(
        method="layers", fidelity=fidelity, n_qubits=n, depth=circuit.depth(),
        n_2q=cx_count(circuit, params), two_qubit_depth=two_qubit_depth(circuit, params),
        n_params=circuit.n_params, wall_s=time.perf_counter() - t0, params=params,
        layer_fidelities=fids, notes=notes,
    )  # fmt: skip
    if target_fidelity is not None and fidelity < target_fidelity:
        import warnings

        warnings.warn(notes[-1], UserWarning, stacklevel=3)
    return circuit, report
