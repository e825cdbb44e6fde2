"""Epochs of minibatch steps on any batch loss: SPSA with momentum, or an optax optimiser.

:func:`fit` trains on a *registered* loss of a model's forward outputs. Some
models train on a loss of their own, with its own settings: the circuit-native
classifiers (:class:`qtn.CircuitClassifier`) minimise the hinge loss of
Huggins et al. with a margin and a power, on one output qubit or one-vs-rest,
by SPSA (two loss evaluations per step, whatever the number of parameters) or
by Adam. :func:`fit_batch_loss` runs those epochs over equal-sized shuffled
minibatches with the same history records, validation, early stopping, time
limit and non-finite checks as :func:`fit` (:class:`EpochMonitor`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from qtn._devices import batch_shards
from qtn.training.evaluate import evaluate
from qtn.training.fit import EpochMonitor, FitConfig, _check_finite, _stop
from qtn.training.gradient import check_same_data, place, replicate, to_local
from qtn.training.spsa import SPSAConfig, spsa_minimize

__all__ = ["fit_batch_loss"]


def fit_batch_loss(
    batch_loss: Callable,
    forward: Callable,
    params,
    phi,
    y,
    config: FitConfig,
    *,
    spsa: SPSAConfig | None = None,
    optimizer=None,
    learning_rate: float = 0.01,
    sample_weight=None,
    validation=None,
    seed: int = 0,
    desc: str = "training",
):
    """Train ``params`` on ``batch_loss``; returns ``(params, history, info)`` as :func:`fit`.

    Parameters
    ----------
    batch_loss
        ``batch_loss(params, phi_b, y_b, w_b) -> scalar``, the weighted mean loss of a
        minibatch (jitted here).
    forward
        ``forward(params, phi_one) -> (fhat, log_norm)``: accuracy after each epoch
        (Born rule, as for the ``"nll"`` loss).
    params, phi, y
        Initial parameters (any pytree), inputs (n, ...) and integer labels (n,).
    config
        A :class:`FitConfig`: ``batch_size``, ``max_epochs``, ``clip_norm``,
        ``early_stopping``, ``n_iter_no_change``, ``tol``, ``max_seconds`` and
        ``verbose`` are used.
    spsa
        With an :class:`SPSAConfig`, each minibatch is one SPSA iteration on the
        flattened parameters (the gain sequences run on across epochs, with
        momentum). Otherwise ``optimizer`` (default: Adam at ``learning_rate``
        after clipping at ``config.clip_norm``) takes one gradient step per minibatch.
    sample_weight, validation, seed, desc
        As for :func:`fit`; ``val_loss`` is ``batch_loss`` on the validation data.

    With ``config.devices`` (see :func:`qtn._devices.device_mesh`) every minibatch is
    split over that mesh's ``"batch"`` axis, the parameters and optimizer state
    replicated, and each step (or SPSA loss evaluation) runs there; XLA sums across
    devices. A minibatch is padded with zero-weight rows to a multiple of the device
    count, so ``batch_loss`` must weight its rows by ``w_b`` (as a weighted mean does).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> fwd = lambda p, x: (jnp.stack([jnp.cos(p * x), jnp.sin(p * x)]), 0.0)
    >>> loss = lambda p, xb, yb, wb: jnp.mean((jnp.sin(p * xb) ** 2 - yb) ** 2)
    >>> x, y = jnp.array([0.1, 3.0]), jnp.array([0, 1])
    >>> p, hist, _ = fit_batch_loss(loss, fwd, jnp.array(0.1), x, y, FitConfig(max_epochs=300))
    >>> hist[-1]["accuracy"]
    1.0
    """
    from tqdm.auto import tqdm

    if not isinstance(config, FitConfig):
        raise TypeError(f"config must be a FitConfig, got {type(config).__name__}")
    for name, fn in (("batch_loss", batch_loss), ("forward", forward)):
        if not callable(fn):
            raise TypeError(f"{name} must be a function, got {type(fn).__name__}")
    if spsa is not None and not isinstance(spsa, SPSAConfig):
        raise TypeError(f"spsa must be an SPSAConfig or None, got {type(spsa).__name__}")
    lr = learning_rate
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < float("inf"):
        raise ValueError(f"learning_rate must be a positive finite number, got {lr!r}")
    phi, y = jnp.asarray(phi), jnp.asarray(y)
    n = phi.shape[0] if phi.ndim else 0
    if n < 1 or y.shape != (n,):
        raise ValueError(
            f"phi must have a leading sample axis and y shape (n,): got phi {phi.shape}, "
            f"y {y.shape}"
        )
    w = jnp.ones(n, phi.dtype) if sample_weight is None else jnp.asarray(sample_weight, phi.dtype)
    if w.shape != (n,) or not bool(jnp.all(jnp.isfinite(w) & (w >= 0))):
        raise ValueError(
            f"sample_weight must be {n} finite non-negative numbers, got shape {w.shape}"
        )
    batch = jax.jit(batch_loss)
    rng = np.random.default_rng(seed)
    bs = min(int(config.batch_size), n)
    steps_per_epoch = -(-n // bs)
    mesh = config.mesh()
    check_same_data(mesh, phi, y, w, *jax.tree_util.tree_leaves(params))
    rows = _batch_rows(mesh, phi, y, w)
    history: list[dict] = []
    info: dict = {"batch_shards": batch_shards(mesh)}
    if spsa is not None:
        info["spsa"] = {k: getattr(spsa, k) for k in ("a", "b", "A", "s", "t", "gamma")}
        flat, unravel = ravel_pytree(params)
        theta, velocity, k0 = np.asarray(flat, dtype=np.float64), None, 0
    else:
        import optax

        opt = optimizer or optax.chain(
            optax.clip_by_global_norm(config.clip_norm or 1e9), optax.adam(learning_rate)
        )
        opt_state = opt.init(params)
        grad = jax.jit(jax.value_and_grad(batch))
        if mesh is not None:  # one jitted step on the mesh, its results replicated
            step = _mesh_step(mesh, batch_loss, opt)
            params, opt_state = replicate(mesh, (params, opt_state))
    stop = EpochMonitor(config, params)
    name = "spsa" if spsa is not None else "gradient"
    bar = tqdm(range(config.resolved_epochs()), desc=f"{desc} ({name})",
               disable=config.verbose <= 0)  # fmt: skip
    for epoch in bar:
        t0 = time.perf_counter()
        perm = rng.permutation(n)
        # equal-sized minibatches (the last one wraps around): one compiled shape
        batches = [perm[np.arange(i * bs, (i + 1) * bs) % n] for i in range(steps_per_epoch)]
        if spsa is not None:

            def fn(th, k, _b=batches, _k0=k0):
                idx = _b[k - _k0]
                p = replicate(mesh, unravel(jnp.asarray(th, flat.dtype)))
                return float(batch(p, *rows(idx)))

            theta, hist, velocity = spsa_minimize(
                fn, theta, len(batches), spsa, seed=seed + epoch, start=k0, velocity=velocity
            )
            k0 += len(batches)
            losses = [h["loss"] for h in hist]
            params = unravel(jnp.asarray(theta, flat.dtype))
        else:
            losses = []
            for idx in batches:
                if mesh is not None:
                    params, opt_state, val = step(params, opt_state, *rows(idx))
                else:
                    val, g = grad(params, phi[idx], y[idx], w[idx])
                    upd, opt_state = opt.update(g, opt_state, params)
                    params = optax.apply_updates(params, upd)
                losses.append(float(val))
        local = to_local(mesh, params) if spsa is None else params
        _, acc = evaluate(forward, local, phi, y, "nll")
        rec = {"epoch": epoch, "loss": float(np.mean(losses)), "accuracy": acc,
               "seconds": time.perf_counter() - t0}  # fmt: skip
        _check_finite(local, rec["loss"], epoch)
        monitor = rec["loss"]
        if validation is not None:
            vphi, vy = jnp.asarray(validation[0]), jnp.asarray(validation[1])
            vl = float(batch(local, vphi, vy, jnp.ones(len(vy), phi.dtype)))
            rec.update(val_loss=vl, val_accuracy=evaluate(forward, local, vphi, vy, "nll")[1])
            monitor = vl
        history.append(rec)
        bar.set_postfix({k: f"{v:.4f}" for k, v in rec.items()
                         if k in ("loss", "accuracy", "val_accuracy")})  # fmt: skip
        if _stop(stop, mesh, epoch, monitor, local, info):
            break
    bar.close()
    return stop.final(to_local(mesh, params) if spsa is None else params, info), history, info


def _batch_rows(mesh, phi, y, w):
    """``rows(idx) -> (phi_b, y_b, w_b)``: the minibatch ``idx``, on one device, or padded
    with zero-weight rows to a multiple of the mesh's devices and split over them."""
    if mesh is None:
        return lambda idx: (phi[idx], y[idx], w[idx])
    from jax.sharding import PartitionSpec

    shards = batch_shards(mesh)

    def rows(idx):
        pad = -len(idx) % shards
        full = np.concatenate([idx, np.zeros(pad, dtype=idx.dtype)])
        keep = jnp.asarray(np.concatenate([np.ones(len(idx)), np.zeros(pad)]), w.dtype)
        return place(mesh, (phi[full], y[full], w[full] * keep), PartitionSpec("batch"))

    return rows


def _mesh_step(mesh, batch_loss, opt):
    """A jitted optax step on ``mesh``: rows sharded, results replicated."""
    import optax
    from jax.sharding import NamedSharding, PartitionSpec

    every = NamedSharding(mesh, PartitionSpec())
    grad = jax.value_and_grad(batch_loss)

    @jax.jit
    def step(params, opt_state, xb, yb, wb):
        val, g = grad(params, xb, yb, wb)
        upd, opt_state = opt.update(g, opt_state, params)
        out = (optax.apply_updates(params, upd), opt_state, val)
        return jax.lax.with_sharding_constraint(out, every)

    return step
