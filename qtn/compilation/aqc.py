"""Approximate quantum compilation (AQC): optimise a parameterised circuit against an MPS.

Maximise F(theta) = |<psi|C(theta)|0>|^2 (Robertson et al., arXiv:2301.08609;
Rudolph et al., arXiv:2208.13673, arXiv:2209.00595).

- **Objective.** The overlap <psi|C(theta)|0> is the simulation engine's
  ``overlap`` quantity: the network of the circuit closed by the MPS bra is
  planned once by cotengra (a sweep-like order for these quasi-1D networks,
  sliced under ``max_memory``), compiled by JAX and differentiated by
  ``jax.value_and_grad``. No dense state is ever formed.
- **Loss.** -log F rather than 1 - F: F decays exponentially with the number of
  qubits at fixed per-qubit error, and so do its gradients; grad log F =
  grad F / F does not, so the optimiser sees well-scaled gradients at any N.
- **Optimiser.** L-BFGS (``scipy.optimize.minimize``) by default, or any optax
  transform; thousands of parameters are fine (memory O(history x params)).
- **Ansatz and start.** ``ansatz="staircase"`` (default): Ran's layers
  (:mod:`qtn.compilation.layers`) give both the structure and the starting
  point, so no seed circuit is needed. ``"brickwork"``: alternating SU(4)
  layers starting at the identity. A qtn or Qiskit parameterised circuit is
  taken as given (with ``initial_params``), and ``initial`` (any circuit)
  becomes an ansatz of SU(4) blocks with its own angles as the start.
- **Iterative growth** (staircase, ``growth="iterative"``, the default): as in
  Rudolph et al. (arXiv:2209.00595), optimise one layer, then prepend Ran's
  analytic layer of the residual state C(theta)^dagger |psi> (acting first, on
  |0>) and optimise everything again, up to ``n_layers``; ``growth="none"``
  optimises Ran's ``n_layers`` layers once. Brickwork layers grow as identities.
- **Depth growth to a target.** With ``target_fidelity``, layers are added until
  the target or ``max_layers``; a target out of reach returns the best circuit
  with a warning, never a loop.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from qtn.circuit import Circuit, Gate, Trainable, brickwork_layout
from qtn.compilation.report import CompileReport, cx_count, two_qubit_depth
from qtn.models import MPS, unpack

__all__ = ["compile_aqc", "ansatz_from_circuit", "overlap_objective"]


def ansatz_from_circuit(circuit: Circuit, params=None) -> tuple[Circuit, np.ndarray]:
    """An ansatz of trainable SU(4) blocks (and U3s) with the same unitary as ``circuit``.

    Runs of gates on one qubit pair (with one-qubit gates on those qubits between them)
    are consolidated into one ``su4`` block started at its KAK angles, as Qiskit's
    block consolidation does; other one-qubit gates are merged into the next block on
    their qubit. Gates on 3+ qubits are refused.
    """
    from qtn.compilation.layers import su4_circuit

    blocks: list = []  # [matrix (4x4, big-endian on pair), pair]
    last: dict[int, int] = {}  # qubit -> index of the last block on it
    pending: dict[int, np.ndarray] = {}
    for op in circuit.ops:
        if not isinstance(op, Gate):
            continue
        m = op.numeric_matrix(params)
        if len(op.qubits) == 1:
            q = op.qubits[0]
            j = last.get(q)
            if j is not None and all(last.get(p) == j for p in blocks[j][1]):
                a, b = blocks[j][1]  # absorb into the block this qubit finished with
                eye = np.eye(2)
                blocks[j][0] = (np.kron(m, eye) if q == a else np.kron(eye, m)) @ blocks[j][0]
            else:
                pending[q] = m @ pending.get(q, np.eye(2))
            continue
        if len(op.qubits) > 2:
            raise ValueError(f"initial: gate {op.name!r} acts on {len(op.qubits)} qubits")
        a, b = op.qubits
        pair = tuple(sorted((a, b)))
        if (a, b) != pair:  # express the gate on the sorted pair
            m = m.reshape(2, 2, 2, 2).transpose(1, 0, 3, 2).reshape(4, 4)
        pre = np.kron(pending.pop(pair[0], np.eye(2)), pending.pop(pair[1], np.eye(2)))
        j = last.get(pair[0])
        if j is not None and last.get(pair[1]) == j and blocks[j][1] == pair:
            blocks[j][0] = m @ pre @ blocks[j][0]  # the same pair again: one block
            continue
        blocks.append([m @ pre, pair])
        last[pair[0]] = last[pair[1]] = len(blocks) - 1
    steps = [(u, list(pair)) for u, pair in blocks]
    steps += [(u, [q]) for q, u in sorted(pending.items())]
    c, p = su4_circuit(circuit.n_qubits, [steps])
    c.global_phase = (c.global_phase + circuit.global_phase) % (2 * np.pi)
    return c, p


def _brickwork(n: int, n_layers: int) -> tuple[Circuit, np.ndarray]:
    c = Circuit(n)
    for k, (a, b) in enumerate(brickwork_layout(n, n_layers)):
        c.su4(a, b, start=15 * k)
    return c, np.zeros(c.n_params)


def overlap_objective(circuit: Circuit, target: MPS, *, optimizer="auto-hq", max_memory=None):
    """``f(theta) -> (loss, grad)`` with loss = -log |<target|C(theta)|0>|^2, in float64.

    Returns ``(value_and_grad, fidelity)``: both numpy-in, numpy-out.
    """
    import jax
    import jax.numpy as jnp

    from qtn.simulation import simulate

    sim = simulate(circuit, dtype="complex128", optimizer=optimizer, max_memory=max_memory)
    cores = unpack(target)
    with jax.enable_x64(True):
        ov = sim.overlap_fn(cores)

        def loss(theta):
            return -jnp.log(jnp.abs(ov(theta)) ** 2)

        vg = jax.jit(jax.value_and_grad(loss))
        fid = jax.jit(lambda t: jnp.abs(ov(t)) ** 2)

    def value_and_grad(theta):
        with jax.enable_x64(True):
            v, g = vg(jnp.asarray(theta, jnp.float64))
            return float(v), np.asarray(g, dtype=np.float64)

    def fidelity(theta):
        with jax.enable_x64(True):
            return float(fid(jnp.asarray(theta, jnp.float64)))

    return value_and_grad, fidelity


def _optimise(value_and_grad, x0, *, optimizer, maxiter, tol, history, t0, verbose):
    """Minimise; every evaluation's fidelity goes into ``history`` (no extra evaluations)."""
    from scipy.optimize import minimize

    best = {"loss": np.inf, "x": np.asarray(x0, dtype=float)}

    def recorded(theta):
        v, g = value_and_grad(theta)
        if v < best["loss"]:
            best.update(loss=v, x=np.array(theta, dtype=float))
        history.append({"evaluation": len(history), "fidelity": float(np.exp(-v)),
                        "seconds": time.perf_counter() - t0})  # fmt: skip
        if verbose:
            print(f"aqc evaluation {len(history)}: fidelity {np.exp(-v):.10f}")
        return v, g

    if optimizer == "lbfgs":
        minimize(recorded, best["x"], jac=True, method="L-BFGS-B",
                 options={"maxiter": maxiter, "ftol": tol, "gtol": 1e-12})  # fmt: skip
        return best["x"]
    import optax

    state = optimizer.init(best["x"])
    x = best["x"]
    for _ in range(maxiter):
        _, g = recorded(x)
        upd, state = optimizer.update(g, state, x)
        x = np.asarray(optax.apply_updates(x, upd))
    return best["x"]


def compile_aqc(
    mps: MPS,
    *,
    t0: float | None = None,
    ansatz="staircase",
    n_layers: int = 2,
    initial_params=None,
    initial: Circuit | None = None,
    target_fidelity: float | None = None,
    max_layers: int | None = None,
    optimizer="lbfgs",
    maxiter: int = 200,
    tol: float = 1e-12,
    contraction_optimizer="auto-hq",
    max_memory=None,
    growth: str = "iterative",
    seed: int = 0,
    verbose: int = 0,
):
    """Optimise an ansatz against ``mps``; see the module docstring for every option."""
    if growth not in ("iterative", "none"):
        raise ValueError(f"growth must be 'iterative' or 'none', got {growth!r}")
    t0 = time.perf_counter() if t0 is None else t0
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"n_layers must be an integer >= 1, got {n_layers!r}")
    if target_fidelity is not None and not 0 < target_fidelity <= 1:
        raise ValueError(f"target_fidelity must be in (0, 1], got {target_fidelity!r}")
    if optimizer != "lbfgs" and not hasattr(optimizer, "update"):
        raise ValueError(f"optimizer must be 'lbfgs' or an optax transform, got {optimizer!r}")
    if max_layers is not None and (not isinstance(max_layers, int) or max_layers < n_layers):
        raise ValueError(f"max_layers must be an integer >= n_layers, got {max_layers!r}")
    notes, history = [], []
    run = dict(optimizer=optimizer, maxiter=maxiter, tol=tol, history=history, t0=t0,
               verbose=verbose)  # fmt: skip
    objective = dict(optimizer=contraction_optimizer, max_memory=max_memory)
    if initial is not None or not isinstance(ansatz, str):
        circuit, x0, _ = _initial_ansatz(mps, ansatz, n_layers, initial, initial_params, seed)
        vg, _ = overlap_objective(circuit, mps, **objective)
        x = _optimise(vg, x0, **run)
        fidelity = float(np.exp(-vg(x)[0]))
        if target_fidelity is not None and fidelity < target_fidelity:
            notes.append(f"target fidelity {target_fidelity} not reached: best {fidelity:.6f} "
                         "(a given ansatz does not grow)")  # fmt: skip
            warnings.warn(notes[-1], UserWarning, stacklevel=3)
        return circuit, _report(circuit, x, fidelity, t0, history, notes, None)
    if ansatz not in ("staircase", "brickwork"):
        raise ValueError(f"ansatz must be 'staircase', 'brickwork' or a circuit, got {ansatz!r}")
    total = n_layers if target_fidelity is None else (max_layers or n_layers)
    slots = _Slots(mps.n_sites, total, ansatz)
    iterative = growth == "iterative" and ansatz == "staircase"
    active = 1 if iterative else n_layers
    x = np.zeros(slots.n_params)
    if ansatz == "staircase":
        from qtn.compilation.layers import analytic_layers

        layers, _, _ = analytic_layers(mps, active, seed=seed)
        for j, layer in enumerate(layers):  # layers[0] acts last
            slots.set_layer(x, total - 1 - j, layer)
    else:
        x[slots.start(total - active) :] = np.random.default_rng(seed).normal(
            scale=0.1, size=slots.n_params - slots.start(total - active)
        )
    vg, _ = overlap_objective(slots.circuit, mps, **objective)  # planned and compiled once
    while True:
        lo = slots.start(total - active)

        def sub(xa, lo=lo):
            v, g = vg(np.concatenate([x[:lo], xa]))
            return v, g[lo:]

        x[lo:] = _optimise(sub, x[lo:], **run)
        fidelity = float(np.exp(-vg(x)[0]))
        done = active >= total or (
            active >= n_layers and (target_fidelity is None or fidelity >= target_fidelity)
        )
        if done:
            break
        slot = total - 1 - active  # the next layer acts before the active ones
        if ansatz == "staircase":
            from qtn.compilation.layers import mpd_layer, residual

            part, part_x = slots.active_circuit(x, active)
            slots.set_layer(x, slot, mpd_layer(residual(mps, part, part_x), seed=seed + active))
        active += 1
        if active > n_layers:
            notes.append(f"grew to {active} layers")
    if target_fidelity is not None and fidelity < target_fidelity:
        notes.append(f"target fidelity {target_fidelity} not reached: best {fidelity:.6f} with "
                     f"{active} layers (max_layers={total})")  # fmt: skip
        warnings.warn(notes[-1], UserWarning, stacklevel=3)
    circuit, params = slots.active_circuit(x, active)
    return circuit, _report(circuit, params, fidelity, t0, history, notes, active)


def _report(circuit, x, fidelity, t0, history, notes, layers):
    report = CompileReport(
        method="aqc", fidelity=fidelity, n_qubits=circuit.n_qubits, depth=circuit.depth(),
        n_2q=cx_count(circuit, x), two_qubit_depth=two_qubit_depth(circuit, x),
        n_params=circuit.n_params, wall_s=time.perf_counter() - t0, params=np.asarray(x),
        history=history, notes=notes,
    )  # fmt: skip
    if layers is not None:
        report.metrics["layers"] = layers
    return report


class _Slots:
    """``total`` layers in time order (slot 0 acts first), each a fixed block structure:
    staircase = su4 on (n-2, n-1), ..., (0, 1) then a u3 on qubit 0; brickwork = su4 on
    even or odd pairs. Zero angles are the identity, so inactive slots cost nothing but
    time, and the objective is compiled once for all stages."""

    def __init__(self, n: int, total: int, ansatz: str):
        self.n, self.total, self.ansatz = n, total, ansatz
        self.circuit = Circuit(n)
        self._starts = []
        k = 0
        for slot in range(total):
            self._starts.append(k)
            if ansatz == "staircase":
                pairs = [(q, q + 1) for q in range(n - 2, -1, -1)]
            else:
                parity = (slot - total) % 2  # the last slot is even, as brickwork_layout ends
                pairs = [(q, q + 1) for q in range(parity, n - 1, 2)]
            for a, b in pairs:
                self.circuit.su4(a, b, angles=[Trainable(k + i) for i in range(15)])
                k += 15
            if ansatz == "staircase":
                self.circuit.u(Trainable(k), Trainable(k + 1), Trainable(k + 2), 0)
                k += 3
        self._starts.append(k)
        self.n_params = k

    def start(self, slot: int) -> int:
        return self._starts[slot]

    def set_layer(self, x, slot: int, layer) -> None:
        """Set a staircase slot to an analytic layer [(U, wires), ...] (time order)."""
        from qtn.compilation.layers import su4_circuit

        _, p = su4_circuit(self.n, [layer])
        size = self._starts[slot + 1] - self._starts[slot]
        x[self._starts[slot] : self._starts[slot + 1]] = np.pad(p, (0, size - len(p)))

    def active_circuit(self, x, active: int):
        """The circuit of the last ``active`` slots and its parameters, re-indexed from 0."""
        lo = self._starts[self.total - active]
        ops = [op for op in self.circuit.ops if min(
            (a.index for a in op.angles if isinstance(a, Trainable)), default=0) >= lo]  # fmt: skip
        c = Circuit(self.n)
        for op in ops:
            c.append(_shift_params(op, -lo))
        return c, np.asarray(x[lo:], dtype=float)


def _initial_ansatz(mps, ansatz, n_layers, initial, initial_params, seed):
    """(circuit, start params, whether layers can be added)."""
    n = mps.n_sites
    if initial is not None:
        if not isinstance(initial, Circuit):
            from qtn.export import from_qiskit

            initial, _ = from_qiskit(initial)
        if initial.n_qubits != n:
            raise ValueError(f"initial has {initial.n_qubits} qubits, the target {n} sites")
        c, p = ansatz_from_circuit(initial, initial_params)
        return c, p, False
    if isinstance(ansatz, str):
        if ansatz == "staircase":
            from qtn.compilation.layers import compile_layers

            c, rep = compile_layers(mps, n_layers=n_layers, seed=seed)
            return c, rep.params, True
        if ansatz == "brickwork":
            c, p = _brickwork(n, n_layers)
            return c, p, True
        raise ValueError(f"ansatz must be 'staircase', 'brickwork' or a circuit, got {ansatz!r}")
    if not isinstance(ansatz, Circuit):
        from qtn.export import from_qiskit

        ansatz, _ = from_qiskit(ansatz)
    if ansatz.n_qubits != n:
        raise ValueError(f"ansatz has {ansatz.n_qubits} qubits, the target {n} sites")
    if not ansatz.is_unitary:
        raise ValueError("ansatz must be a unitary circuit (no measure/reset/noise)")
    if initial_params is None:
        p = np.random.default_rng(seed).normal(scale=0.1, size=ansatz.n_params)
    else:
        p = np.asarray(initial_params, dtype=float)
        if p.shape != (ansatz.n_params,) or not np.all(np.isfinite(p)):
            raise ValueError(
                f"initial_params must be {ansatz.n_params} finite values, got shape {p.shape}"
            )
    return ansatz, p, False


def _shift_params(op, shift: int):
    from dataclasses import replace

    if not isinstance(op, Gate):
        return op
    angles = tuple(replace(a, index=a.index + shift) if isinstance(a, Trainable) else a
                   for a in op.angles)  # fmt: skip
    return replace(op, angles=angles)
