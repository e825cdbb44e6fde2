"""Shot-based fine-tuning: SPSA and parameter-shift gradients on a backend.

"Trained classically, then transferred to the quantum setting for additional
optimization": start from classically trained parameters and improve them
where only samples are available. Each iteration submits all its circuits
(perturbed or shifted parameter sets, times the data batch) as one job of
parameter bindings on a transpiled-once :class:`~qtn.execution.Runner`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from qtn._checks import real_array
from qtn.circuit import GATES, Circuit, Gate, Trainable
from qtn.execution.runner import Runner
from qtn.metrics import class_probabilities

__all__ = [
    "finetune",
    "FinetuneResult",
    "cross_entropy_loss",
    "kl_loss",
    "parameter_shift_grad",
]


@dataclass
class FinetuneResult:
    """Best parameters found, the loss history (one entry per iteration) and circuit count."""

    params: np.ndarray
    history: list = field(default_factory=list)
    n_bindings: int = 0


def cross_entropy_loss(labels, n_classes: int = 2) -> Callable:
    """``loss(probs)``: mean -log P(label) of class probabilities (JAX-traceable)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes - 1}], got [{labels.min()}, "
                         f"{labels.max()}]")  # fmt: skip

    def loss(probs):
        import jax.numpy as jnp

        p = class_probabilities(probs, n_classes, xp=jnp)
        picked = jnp.take_along_axis(p, jnp.asarray(labels)[:, None], axis=-1)[:, 0]
        return -jnp.mean(jnp.log(jnp.clip(picked, 1e-6)))

    return loss


def kl_loss(target) -> Callable:
    """``loss(probs)``: KL(target || probs) for state circuits (JAX-traceable)."""
    target = np.asarray(target, dtype=float)
    if target.ndim != 1 or np.any(target < 0) or not target.sum() > 0:
        raise ValueError("target must be a 1-D non-negative vector with a positive sum")
    target = target / target.sum()

    def loss(probs):
        import jax.numpy as jnp

        q = jnp.clip(jnp.asarray(probs).reshape(-1), 1e-6)
        t = jnp.asarray(target)
        return jnp.sum(jnp.where(t > 0, t * (jnp.log(jnp.clip(t, 1e-300)) - jnp.log(q)), 0.0))

    return loss


def _eval(runner, thetas, data, shots, mitigator):
    """Outcome probabilities for each parameter set over the data: (S, B, 2**k) or (S, 2**k)."""
    thetas = np.atleast_2d(thetas)
    s = thetas.shape[0]
    if data is None:
        probs = runner.run(shots=shots, params=thetas).probs.reshape(s, -1)
    else:
        x = np.atleast_2d(data)
        b = x.shape[0]
        probs = runner.run(shots=shots, params=np.repeat(thetas, b, 0), data=np.tile(x, (s, 1)))
        probs = probs.probs.reshape(s, b, -1)
    return probs if mitigator is None else mitigator.apply(probs)


def parameter_shift_grad(runner: Runner, loss: Callable, theta, *, data=None, shots: int,
                         mitigator=None) -> tuple[float, np.ndarray, int]:  # fmt: skip
    """Loss and its gradient by the gate registry's shift rules, in one batched job.

    Every trainable occurrence (gate angle phi_j = s_j theta_i + o_j) gets its
    own slot in an otherwise identical circuit (no extra gates), is shifted
    alone by each term of its gate's rule, d/dphi = sum_t r_t (f(phi + s_t) -
    f(phi - s_t)) (two-term for Pauli rotations, four-term for controlled
    rotations: ``GateDef.shift_terms``), and the chain rule sums dL/dtheta_i =
    sum_j s_j dL/dphi_j, so shared parameters and scaled angles are exact.
    dL/dprobs comes from ``jax.grad`` of ``loss`` (which must be JAX-traceable).
    Returns (loss, gradient, number of bindings run).
    """
    import jax

    theta = np.asarray(theta, dtype=float)
    if theta.shape != (runner.circuit.n_params,):
        raise ValueError(f"theta must have shape ({runner.circuit.n_params},), got {theta.shape}")
    iso, occ = _isolated(runner)
    phi = np.array([o[3] * theta[o[2]] + o[4] for o in occ])
    rows = [phi]
    where = []  # (occurrence, r, row of +s, row of -s)
    for j, o in enumerate(occ):
        for s, r in o[5]:
            for sign in (+1, -1):
                row = phi.copy()
                row[j] += sign * s
                rows.append(row)
            where.append((j, r, len(rows) - 2, len(rows) - 1))
    probs = _eval(iso, np.stack(rows), data, shots, mitigator)
    value, dldp = jax.value_and_grad(loss)(probs[0])
    dldp = np.asarray(dldp)
    grad = np.zeros_like(theta)
    for j, r, plus, minus in where:
        _, _, idx, scale, _, _ = occ[j]
        grad[idx] += scale * r * float(np.sum(dldp * (probs[plus] - probs[minus])))
    n = len(rows) * (1 if data is None else np.atleast_2d(data).shape[0])
    return float(value), grad, n


def _isolated(runner: Runner):
    """The runner's circuit with one trainable slot per occurrence (cached on the runner)."""
    if runner._isolated is not None:
        return runner._isolated
    c = runner.circuit
    occ, ops = [], []
    for pos, op in enumerate(c.ops):
        if isinstance(op, Gate) and any(isinstance(a, Trainable) for a in op.angles):
            terms = GATES[op.name].shift_terms if op.name in GATES else None
            if terms is None:
                raise ValueError(
                    f"parameter-shift needs gates with a shift rule; operation {pos} "
                    f"({op.name!r}) has trainable angles: use method='spsa' or decompose it"
                )
            angles = []
            for k, a in enumerate(op.angles):
                if isinstance(a, Trainable):
                    occ.append((pos, k, a.index, a.scale, a.offset, terms))
                    a = Trainable(len(occ) - 1)
                angles.append(a)
            op = Gate(op.name, op.qubits, tuple(angles))
        ops.append(op)
    # same backend and primitives (readout errors live in its noise model), same channels
    iso = runner.twin(Circuit(c.n_qubits, ops, global_phase=c.global_phase))
    runner._isolated = (iso, occ)
    return iso, occ


def finetune(
    runner: Runner,
    loss: Callable,
    params0,
    *,
    data=None,
    shots: int = 1024,
    method: str = "spsa",
    maxiter: int = 50,
    learning_rate: float | None = None,
    perturbation: float = 0.1,
    momentum: float = 0.0,
    patience: int | None = None,
    mitigator=None,
    seed=None,
    verbose: int = 1,
) -> FinetuneResult:
    """Improve ``params0`` using samples from ``runner``'s backend only.

    Parameters
    ----------
    runner
        A :class:`~qtn.execution.Runner` (the circuit, transpiled once for its backend).
    loss
        ``loss(probs) -> float`` of outcome probabilities, shape (B, 2**n_clbits)
        with ``data`` (B inputs) or (2**n_clbits,) without: e.g.
        :func:`cross_entropy_loss` for classifiers, :func:`kl_loss` for state circuits.
    method
        ``"spsa"`` (Spall's gains a_k = a / (k + 1 + A)^0.602, c_k = c / (k + 1)^0.101,
        A = maxiter / 10; with ``learning_rate=None`` the first step is calibrated
        to move parameters by about 0.1 rad) or ``"parameter_shift"`` (plain
        gradient descent with ``learning_rate``, default 0.1; every trainable gate
        needs a two-term shift rule in the gate registry).
    momentum
        Heavy-ball momentum on the update (0 disables it).
    patience
        Stop when the best loss has not improved for this many iterations.
    mitigator
        A :class:`~qtn.execution.ReadoutMitigator` applied to every probability vector.
    seed
        Seeds the SPSA perturbations.
    verbose
        1 shows a tqdm bar with the loss; 0 is silent.

    Returns
    -------
    FinetuneResult
        The parameters with the best loss seen (SPSA: the mean of its two
        evaluations), the per-iteration history and the number of bindings run.

    Examples
    --------
    >>> runner = Runner(circuit, seed=0)                                # doctest: +SKIP
    >>> res = finetune(runner, cross_entropy_loss(y), theta, data=X)   # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    if method not in ("spsa", "parameter_shift"):
        raise ValueError(f"method must be 'spsa' or 'parameter_shift', got {method!r}")
    if not isinstance(shots, int | np.integer) or shots < 1:
        raise ValueError(f"shots must be a positive integer, got {shots!r}")
    if not isinstance(maxiter, int | np.integer) or maxiter < 1:
        raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")
    for name, v, ok, want in (
        ("perturbation", perturbation, lambda v: v > 0, "a finite number > 0"),
        (
            "learning_rate",
            learning_rate,
            lambda v: v is None or v > 0,
            "None or a finite number > 0",
        ),
        ("momentum", momentum, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ):
        if v is None and name == "learning_rate":
            continue
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) or \
                not np.isfinite(v) or not ok(v):  # fmt: skip
            raise ValueError(f"{name} must be {want}, got {v!r}")
    if patience is not None and (not isinstance(patience, int | np.integer) or patience < 1):
        raise ValueError(f"patience must be None or a positive integer, got {patience!r}")
    theta = np.array(real_array("params0", params0), dtype=float)
    if theta.shape != (runner.circuit.n_params,):
        raise ValueError(f"params0 must have shape ({runner.circuit.n_params},), got {theta.shape}")
    rng = np.random.default_rng(seed)
    result = FinetuneResult(params=theta.copy())
    best, since_best = np.inf, 0
    velocity = np.zeros_like(theta)
    big_a, alpha, gamma = maxiter / 10, 0.602, 0.101
    n_data = 1 if data is None else np.atleast_2d(data).shape[0]
    a = learning_rate
    bar = tqdm(range(maxiter), disable=not verbose, desc=f"finetune ({method})")
    for k in bar:
        if method == "spsa":
            ck = perturbation / (k + 1) ** gamma
            delta = rng.choice([-1.0, 1.0], size=theta.shape)
            probs = _eval(runner, np.stack([theta + ck * delta, theta - ck * delta]), data,
                          shots, mitigator)  # fmt: skip
            lp, lm = _loss_value(loss, probs[0], k), _loss_value(loss, probs[1], k)
            result.n_bindings += 2 * n_data
            grad = (lp - lm) / (2 * ck) * delta
            value = (lp + lm) / 2
            if a is None:  # calibrate: first step of about 0.1 rad per parameter
                a = 0.1 * (big_a + 1) ** alpha / max(abs(lp - lm) / (2 * ck), 1e-8)
            step = a / (k + 1 + big_a) ** alpha
        else:
            value, grad, n = parameter_shift_grad(
                runner, loss, theta, data=data, shots=shots, mitigator=mitigator
            )
            result.n_bindings += n
            value = _loss_value(float, value, k)
            if not np.all(np.isfinite(grad)):
                raise ValueError(f"the gradient of loss is not finite at iteration {k}: {grad}")
            step = 0.1 if learning_rate is None else learning_rate
        if value < best:
            best, since_best = value, 0
            result.params = theta.copy()
        else:
            since_best += 1
        result.history.append({"iteration": k, "loss": value})
        bar.set_postfix(loss=f"{value:.4f}")
        if patience is not None and since_best >= patience:
            break
        velocity = momentum * velocity + grad
        theta = theta - step * velocity
    return result


def _loss_value(loss, probs, k: int) -> float:
    """``loss(probs)`` as a finite float; a clear error naming the loss otherwise."""
    v = loss(probs)
    try:
        out = float(v)
    except (TypeError, ValueError):
        raise TypeError(
            f"loss returned {v!r} at iteration {k}; it must return one real number"
        ) from None
    if not np.isfinite(out):
        raise ValueError(
            f"loss returned {out} at iteration {k}; it must be finite (check the loss for "
            "log(0) or division by zero, e.g. clip the probabilities)"
        )
    return out
