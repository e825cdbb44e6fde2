"""The one fit loop shared by gradient and sweep training of MPS classifiers."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qtn.errors import NonFiniteError
from qtn.models.mps import MPSParams, batch_amplitudes
from qtn.training.gradient import batch_indices, make_epoch
from qtn.training.losses import LOSS_OUTPUT, get_loss, predicted_class
from qtn.training.sweep import sweep_epoch, sweep_init

__all__ = ["FitConfig", "fit_mps", "evaluate", "METHODS"]

METHODS = ("gradient", "sweep")


@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit_mps` (validated by the estimator that builds it)."""

    method: str = "gradient"
    loss: str = "nll"
    optimizer: optax.GradientTransformation | None = None
    learning_rate: float = 1e-2
    clip_norm: float | None = 1.0
    lr_schedule: str = "cosine"
    batch_size: int = 64
    max_epochs: int = 20
    l2: float = 0.0
    cutoff: float = 1e-10
    local_steps: int = 10
    early_stopping: bool = False
    n_iter_no_change: int = 5
    tol: float = 1e-4
    verbose: int = 1
    max_seconds: float | None = None


def evaluate(params: MPSParams, phi, y, loss: str, chunk: int = 4096) -> tuple[float, float]:
    """Mean loss and accuracy (argmax under the loss's output rule), in fixed-size chunks."""
    loss_fn = get_loss(loss)
    tot_loss, correct = 0.0, 0
    for s in range(0, phi.shape[0], chunk):
        fhat, _ = batch_amplitudes(params, phi[s : s + chunk])
        yy = y[s : s + chunk]
        tot_loss += float(jnp.sum(loss_fn(params, fhat, yy)))
        correct += int(jnp.sum(predicted_class(fhat, LOSS_OUTPUT[loss]) == yy))
    n = phi.shape[0]
    return tot_loss / n, correct / n


def _check_finite(params: MPSParams, loss: float, epoch: int):
    leaves = jax.tree_util.tree_leaves(params)
    if not math.isfinite(loss) or not all(bool(jnp.all(jnp.isfinite(x))) for x in leaves):
        raise NonFiniteError(
            f"training produced non-finite values at epoch {epoch} (loss={loss}); "
            "lower learning_rate or init_std, or use dtype='float64'. "
            "The estimator keeps its previous state."
        )


def fit_mps(
    params: MPSParams,
    phi_train,
    y_train,
    config: FitConfig,
    *,
    phi_val=None,
    y_val=None,
    seed: int = 0,
):
    """Train ``params`` on feature-mapped data; returns (params, history, info).

    ``history`` has one entry per epoch with ``loss``, ``accuracy`` (running,
    over the epoch's minibatches for gradient training; after the epoch for
    sweeps), ``val_loss``/``val_accuracy`` when validation data is given, and
    ``seconds``. With ``early_stopping`` the parameters of the best validation
    loss are returned.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    phi_train = jnp.asarray(phi_train)
    y_train = jnp.asarray(y_train)
    n = phi_train.shape[0]
    history: list[dict] = []
    info: dict = {}
    if config.method == "gradient":
        steps = config.max_epochs * (-(-n // config.batch_size))
        opt = config.optimizer or default_optimizer(
            config.learning_rate, config.clip_norm, config.lr_schedule, steps
        )
        opt_state = opt.init(params)
        epoch_fn = make_epoch(config.loss, opt, float(config.l2))
    elif config.method == "sweep":
        if params.n_sites < 2:
            raise ValueError("method='sweep' needs at least 2 features (sites) to form a bond")
        params, state = sweep_init(params, phi_train, y_train)
    else:
        raise ValueError(f"unknown method {config.method!r}; valid methods: {list(METHODS)}")

    best = (math.inf, params, -1)
    bad_epochs = 0
    t_start = time.perf_counter()
    bar = tqdm(range(config.max_epochs), desc=f"MPS {config.method}", disable=config.verbose <= 0)
    for epoch in bar:
        t0 = time.perf_counter()
        if config.method == "gradient":
            idx, mask = batch_indices(n, config.batch_size, rng)
            params, opt_state, stats = epoch_fn(params, opt_state, phi_train, y_train, idx, mask)
            stats = np.asarray(stats).sum(0)
            loss, acc = float(stats[0] / stats[2]), float(stats[1] / stats[2])
        else:
            params, state, _ = sweep_epoch(
                params, state, phi_train, y_train, loss=config.loss,
                learning_rate=config.learning_rate, cutoff=config.cutoff,
                local_steps=config.local_steps, batch_size=config.batch_size, rng=rng,
            )  # fmt: skip
            loss, acc = evaluate(params, phi_train, y_train, config.loss)
            info["bond_ranks"] = state.ranks
            info["max_discarded_weight"] = state.max_discarded
        _check_finite(params, loss, epoch)
        rec = {"epoch": epoch, "loss": loss, "accuracy": acc, "seconds": time.perf_counter() - t0}
        monitor = loss
        if phi_val is not None:
            vl, va = evaluate(params, jnp.asarray(phi_val), jnp.asarray(y_val), config.loss)
            rec.update(val_loss=vl, val_accuracy=va)
            monitor = vl
        history.append(rec)
        bar.set_postfix(
            {k: f"{v:.4f}" for k, v in rec.items() if k in ("loss", "accuracy", "val_accuracy")}
        )
        if monitor < best[0] - config.tol:
            best, bad_epochs = (monitor, params, epoch), 0
        else:
            bad_epochs += 1
        if config.early_stopping and bad_epochs >= config.n_iter_no_change:
            info["stopped_early_at"] = epoch
            break
        if config.max_seconds is not None and time.perf_counter() - t_start > config.max_seconds:
            info["stopped_at_time_limit"] = epoch
            break
    bar.close()
    if config.early_stopping and best[2] >= 0:
        params = best[1]
        info["best_epoch"] = best[2]
    return params, history, info


_OPT_CACHE: dict[tuple, optax.GradientTransformation] = {}


LR_SCHEDULES = ("cosine", "constant")


def default_optimizer(
    lr: float,
    clip_norm: float | None = 1.0,
    schedule: str = "cosine",
    total_steps: int | None = None,
) -> optax.GradientTransformation:
    """Adam after clipping the gradient's global norm, with an optional learning-rate schedule.

    ``schedule="cosine"`` warms up linearly over the first 10% of ``total_steps``
    (at most 1000 steps) and then decays to zero by a cosine; ``"constant"``
    keeps ``lr``. ``clip_norm=None`` disables clipping.

    Both guard long chains: Adam moves every entry by about ``lr`` per step, so
    a coherent update changes each core's operator norm by about ``lr * chi``,
    compounded over all sites. On 14x14 MNIST (196 sites) a constant 1e-3
    made accuracy collapse mid-training at chi=32 without clipping and at
    chi=64 even with it; warm-up + cosine decay trained both stably (98.6% and
    98.4%). One object per setting is cached, so compiled epochs are reused.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {schedule!r}; valid values: {list(LR_SCHEDULES)}")
    if schedule == "cosine" and not total_steps:
        raise ValueError("the cosine schedule needs total_steps")
    key = (float(lr), None if clip_norm is None else float(clip_norm), schedule, total_steps)
    if key not in _OPT_CACHE:
        rate = lr
        if schedule == "cosine":
            warmup = max(1, min(1000, total_steps // 10))
            rate = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1))
        adam = optax.adam(rate)
        _OPT_CACHE[key] = (
            adam if clip_norm is None else optax.chain(optax.clip_by_global_norm(clip_norm), adam)
        )
    return _OPT_CACHE[key]
