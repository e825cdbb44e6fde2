"""The one fit loop shared by every model and training method.

:func:`fit` takes a model's forward function ``forward(params, phi) ->
(fhat, log_norm)`` (one sample), its initial parameters, the data and a
:class:`FitConfig`, and runs epochs of a training *method* from a registry
(:func:`register_method`): ``"gradient"`` (jitted optax epochs over
shuffled minibatches, for any model), ``"sweep"`` (two-site DMRG-style updates
of an MPS classifier), ``"born_sweep"`` (two-site NLL updates of an MPS Born
machine kept canonical, so Z is exact) and ``"tree_sweep"`` (one-tensor
updates of a TTN classifier with cached environments). The loop keeps the
history, evaluates validation data, stops early or at a time limit, guards
against NaN, and shows a tqdm bar.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qtn._checks import check_model_bytes
from qtn.errors import NonFiniteError
from qtn.training.born_sweep import born_sweep_epoch, born_sweep_init, check_one_hot
from qtn.training.evaluate import evaluate
from qtn.training.gradient import (
    agree,
    batch_indices,
    check_same_data,
    epoch_mesh,
    make_epoch,
    pad_batches,
    replicate,
    split_batches,
    to_local,
)
from qtn.training.losses import get_loss, list_losses
from qtn.training.sweep import QUADRATIC_LOSSES, env_memory_bytes, sweep_epoch, sweep_init
from qtn.training.tree_sweep import tree_sweep_epoch, tree_sweep_init

__all__ = [
    "FitConfig",
    "fit",
    "Method",
    "register_method",
    "list_methods",
    "default_optimizer",
    "EpochMonitor",
    "LR_SCHEDULES",
]

LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class Method:
    """A training method.

    ``init(forward, params, phi, y, w, config, rng) -> (params, state)`` and
    ``epoch(forward, params, state, phi, y, w, config, rng) -> (params, state, stats)``,
    where ``stats`` holds ``loss``, ``accuracy`` (None for generative losses) and
    optional extra ``info`` entries.
    """

    name: str
    init: Callable
    epoch: Callable
    default_epochs: int
    default_learning_rate: Callable  # (params) -> float


_METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    _METHODS[method.name] = method
    return method


def list_methods() -> list[str]:
    """Names of the registered training methods."""
    return sorted(_METHODS)


def _real(name, v, *, positive=False, allow_none=False):
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    if (positive and v <= 0) or v < 0:
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {v!r}")


def _int(name, v, lo, *, allow_none=False):
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit`, validated at construction; defaults equal the estimators'.

    ``learning_rate=None`` and ``max_epochs=None`` take the method's defaults:
    gradient ``min(1e-3, 0.032 / bond_dim)`` and 30 epochs, sweeps 1e-4 (100 with a
    quadratic loss: the proximal step size) and 5.
    See :class:`qtn.MPSClassifier` for the meaning of every field.

    ``devices`` (None, ``"all"``, an int, a sequence of jax devices or a
    ``jax.sharding.Mesh``; see :func:`qtn._devices.device_mesh`) splits every minibatch
    of gradient training over that mesh; the sweep methods refuse it (they run on one
    device).

    Examples
    --------
    >>> FitConfig(batch_size=32, devices=1).mesh().shape["batch"]
    1
    >>> FitConfig(method="sweep", devices="all")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: devices='all' splits gradient training over devices; method='sweep' runs ...
    """

    method: str = "gradient"
    loss: str = "cross_entropy"
    optimizer: optax.GradientTransformation | None = None
    learning_rate: float | None = None
    clip_norm: float | None = 1.0
    lr_schedule: str = "cosine"
    batch_size: int = 64
    max_epochs: int | None = None
    l2: float = 0.0
    cutoff: float = 1e-10
    local_steps: int = 10
    early_stopping: bool = False
    n_iter_no_change: int = 5
    tol: float = 1e-4
    verbose: int = 0
    max_seconds: float | None = None
    devices: object = None

    def __post_init__(self):
        if self.method not in _METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid methods: {list_methods()}")
        if self.loss not in list_losses():
            raise ValueError(f"unknown loss {self.loss!r}; valid losses: {list_losses()}")
        if self.optimizer is not None and not (
            hasattr(self.optimizer, "init") and hasattr(self.optimizer, "update")
        ):
            raise ValueError(
                f"optimizer must be an optax GradientTransformation, got {self.optimizer!r}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"unknown lr_schedule {self.lr_schedule!r}; valid values: {list(LR_SCHEDULES)}"
            )
        _real("learning_rate", self.learning_rate, positive=True, allow_none=True)
        if self.clip_norm is not None:
            try:
                _real("clip_norm", self.clip_norm, positive=True)
            except ValueError:
                raise ValueError(
                    f"clip_norm must be a positive number or None, got {self.clip_norm!r}"
                ) from None
        _int("batch_size", self.batch_size, 1)
        _int("max_epochs", self.max_epochs, 1, allow_none=True)
        _int("local_steps", self.local_steps, 1)
        _int("n_iter_no_change", self.n_iter_no_change, 1)
        _int("verbose", self.verbose, 0)
        for name in ("l2", "cutoff", "tol"):
            _real(name, getattr(self, name))
        _real("max_seconds", self.max_seconds, positive=True, allow_none=True)
        if not isinstance(self.early_stopping, bool | np.bool_):
            raise ValueError(f"early_stopping must be a bool, got {self.early_stopping!r}")
        if self.devices is not None:
            from qtn._devices import device_mesh

            device_mesh(self.devices)  # raises ValueError / TypeError naming devices
            if self.method != "gradient":
                raise ValueError(
                    f"devices={self.devices!r} splits gradient training over devices; "
                    f"method={self.method!r} runs on one device: use method='gradient' or "
                    "devices=None"
                )

    def mesh(self):
        """The mesh ``devices`` names (None for ``devices=None``)."""
        from qtn._devices import device_mesh

        return device_mesh(self.devices)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def resolved_learning_rate(self, params) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return float(_METHODS[self.method].default_learning_rate(params))

    def resolved_epochs(self) -> int:
        return self.max_epochs or _METHODS[self.method].default_epochs


def fit(
    forward: Callable,
    params,
    phi,
    y,
    config: FitConfig,
    *,
    sample_weight=None,
    validation=None,
    seed: int = 0,
    desc: str = "training",
):
    """Train ``params`` on feature-mapped data; returns ``(params, history, info)``.

    Parameters
    ----------
    forward
        ``forward(params, phi_one) -> (fhat, log_norm)`` for one sample.
    params
        Initial parameters (a pytree).
    phi, y
        Training inputs (n, ...) and integer labels (n,); ``y=None`` for generative losses.
    config
        A :class:`FitConfig`.
    sample_weight
        Optional non-negative weights (n,).
    validation
        Optional ``(phi_val, y_val)``, evaluated after every epoch.

    ``history`` has one entry per epoch with ``loss``, ``accuracy`` (running over
    the epoch's minibatches for gradient training; after the epoch for sweeps),
    ``val_loss``/``val_accuracy`` with validation data, and ``seconds``. With
    ``early_stopping`` the parameters of the best monitored loss are returned.
    """
    from tqdm.auto import tqdm

    if not isinstance(config, FitConfig):
        raise TypeError(f"config must be a FitConfig, got {type(config).__name__}")
    method = _METHODS[config.method]
    rng = np.random.default_rng(seed)
    phi = jnp.asarray(phi)
    n = phi.shape[0]
    y = jnp.zeros(n, jnp.int32) if y is None else jnp.asarray(y)
    w = jnp.ones(n, phi.dtype) if sample_weight is None else jnp.asarray(sample_weight, phi.dtype)
    params, state = method.init(forward, params, phi, y, w, config, rng)
    mesh = config.mesh()  # a mesh across processes: every process takes the same decisions
    history: list[dict] = []
    info: dict = {}
    stop = EpochMonitor(config, params)
    epochs = config.resolved_epochs()
    bar = tqdm(range(epochs), desc=f"{desc} ({config.method})", disable=config.verbose <= 0)
    for epoch in bar:
        t0 = time.perf_counter()
        params, state, stats = method.epoch(forward, params, state, phi, y, w, config, rng)
        loss, acc = stats.pop("loss"), stats.pop("accuracy")
        info.update(stats)
        _check_finite(params, loss, epoch)
        rec = {"epoch": epoch, "loss": loss, "accuracy": acc, "seconds": time.perf_counter() - t0}
        # Born sweeps: the float32 breakdowns met and handled in this epoch
        for key in ("skipped_bonds", "svd_retries", "kernel_fallbacks"):
            if key in stats:
                rec[key] = stats[key]
        monitor = loss
        if validation is not None:
            vl, va = evaluate(forward, params, jnp.asarray(validation[0]),
                              None if validation[1] is None else jnp.asarray(validation[1]),
                              config.loss)  # fmt: skip
            rec.update(val_loss=vl, val_accuracy=va)
            monitor = vl
        history.append(rec)
        shown = ("loss", "accuracy", "val_accuracy")
        bar.set_postfix({k: f"{v:.4f}" for k, v in rec.items() if k in shown and v is not None})
        if _stop(stop, mesh, epoch, monitor, params, info):
            break
    bar.close()
    return stop.final(params, info), history, info


def _stop(monitor: EpochMonitor, mesh, epoch, loss, params, info) -> bool:
    """``monitor.update``, agreed by every process of a mesh spanning processes (only the
    time limit can differ between them: the losses are the same everywhere)."""
    stop = monitor.update(epoch, loss, params, info)
    agreed = agree(mesh, stop)
    if agreed and not stop:
        info.setdefault("stopped_at_time_limit", epoch)
    return agreed


class EpochMonitor:
    """The bookkeeping every epoch loop shares: the best monitored loss, early stopping
    after ``n_iter_no_change`` epochs without a ``tol`` improvement, and the
    ``max_seconds`` limit. :func:`fit` and :func:`fit_batch_loss` use it."""

    def __init__(self, config: FitConfig, params):
        self.config = config
        self.best = (math.inf, params, -1)
        self.bad = 0
        self.t_start = time.perf_counter()

    def update(self, epoch: int, monitor: float, params, info: dict) -> bool:
        """Record an epoch; True when training should stop (the reason goes into ``info``)."""
        cfg = self.config
        if monitor < self.best[0] - cfg.tol:
            self.best, self.bad = (monitor, params, epoch), 0
        else:
            self.bad += 1
        if cfg.early_stopping and self.bad >= cfg.n_iter_no_change:
            info["stopped_early_at"] = epoch
            return True
        if cfg.max_seconds is not None and time.perf_counter() - self.t_start > cfg.max_seconds:
            info["stopped_at_time_limit"] = epoch
            return True
        return False

    def final(self, params, info: dict):
        """The parameters to return: the best epoch's with early stopping, else ``params``."""
        if self.config.early_stopping and self.best[2] >= 0:
            info["best_epoch"] = self.best[2]
            return self.best[1]
        return params


def _check_finite(params, loss: float, epoch: int):
    leaves = jax.tree_util.tree_leaves(params)
    if not math.isfinite(loss) or not all(bool(jnp.all(jnp.isfinite(x))) for x in leaves):
        raise NonFiniteError(
            f"training produced non-finite values at epoch {epoch} (loss={loss}); "
            "lower learning_rate or init_std, or use dtype='float64'. "
            "The estimator keeps its previous state."
        )


# ----------------------------------------------------------------------------- gradient method


def _gradient_init(forward, params, phi, y, w, config, rng):
    leaves = jax.tree_util.tree_leaves(params)
    nbytes = sum(int(np.size(x)) * np.dtype(x.dtype).itemsize for x in leaves)
    check_model_bytes(
        f"gradient training of {sum(int(np.size(x)) for x in leaves):,} parameters (the "
        "parameters, their gradients and two Adam moments)", 4 * nbytes,
        "lower bond_dim, or train with method='sweep'",
    )  # fmt: skip
    steps = config.resolved_epochs() * (-(-phi.shape[0] // config.batch_size))
    opt = config.optimizer or default_optimizer(
        config.resolved_learning_rate(params), config.clip_norm, config.lr_schedule, steps
    )
    # each minibatch is split over the devices that ``devices`` names, or, without it,
    # over every local device (one per core on CPU) when that pays
    mesh = epoch_mesh(config.batch_size, params, config.devices)
    check_same_data(mesh, phi, y, w, *leaves)  # across processes: the same everywhere
    epoch_fn = make_epoch(forward, config.loss, opt, float(config.l2), mesh)
    data = replicate(mesh, (phi, y, w))  # placed once for every epoch
    return params, (replicate(mesh, opt.init(params)), epoch_fn, mesh, data)


def _gradient_epoch(forward, params, state, phi, y, w, config, rng):
    from qtn._devices import batch_shards

    opt_state, epoch_fn, mesh, (phi, y, w) = state
    # minibatches padded with zero-weight rows to a multiple of the devices on the mesh
    idx, mask = pad_batches(*batch_indices(phi.shape[0], config.batch_size, rng),
                            batch_shards(mesh))  # fmt: skip
    idx, mask = split_batches(mesh, idx, mask)
    params, opt_state, stats = epoch_fn(replicate(mesh, params), opt_state, phi, y, w, idx, mask)
    state = (opt_state, epoch_fn, mesh, (phi, y, w))
    # hand back ordinary arrays on this process's default device (on every process)
    params, stats = to_local(mesh, (params, stats))
    stats = np.asarray(stats, dtype=np.float64).sum(0)
    loss = float(stats[0] / stats[2])
    acc = float(stats[1] / stats[2]) if get_loss(config.loss).supervised else None
    return params, state, {"loss": loss, "accuracy": acc, "batch_shards": batch_shards(mesh)}


def _gradient_lr(params) -> float:
    chi = getattr(params, "bond_dim", None)
    return min(1e-3, 0.032 / chi) if chi else 1e-3


register_method(Method("gradient", _gradient_init, _gradient_epoch, 30, _gradient_lr))


# ----------------------------------------------------------------------------- sweep method


def _sweep_init(forward, params, phi, y, w, config, rng):
    from qtn.models import MPS, ClassifierParams

    if not isinstance(params, ClassifierParams) or not isinstance(params.network, MPS):
        raise ValueError("method='sweep' trains MPS classifiers (ClassifierParams of an MPS)")
    if params.network.n_sites < 2:
        raise ValueError("method='sweep' needs at least 2 features (sites) to form a bond")
    if not get_loss(config.loss).supervised:
        raise ValueError(f"method='sweep' needs a classifier loss, got {config.loss!r}")
    need = env_memory_bytes(phi.shape[0], params.network.n_sites, params.network.bond_dim,
                            jnp.dtype(phi.dtype).itemsize)  # fmt: skip
    avail = _physical_memory()
    if avail and need > 0.6 * avail:
        raise MemoryError(
            f"method='sweep' caches about {need / 2**30:.1f} GiB of environments "
            f"({phi.shape[0]} samples x {params.network.n_sites} sites x bond_dim "
            f"{params.network.bond_dim}), more than 60% of this machine's "
            f"{avail / 2**30:.1f} GiB; train on fewer samples, lower bond_dim, or use "
            "method='gradient'"
        )
    return sweep_init(params, phi, y, w)


def _physical_memory() -> int | None:
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not on POSIX
        return None


#: step size of the proximal update of sweeps with a quadratic loss (learning_rate=None)
SWEEP_QUADRATIC_LR = 100.0


def _sweep_epoch(forward, params, state, phi, y, w, config, rng):
    quadratic = config.loss in QUADRATIC_LOSSES
    lr = config.resolved_learning_rate(params)
    if quadratic and config.learning_rate is None:
        lr = SWEEP_QUADRATIC_LR
    params, state, _ = sweep_epoch(
        params, state, loss=config.loss, learning_rate=lr, cutoff=config.cutoff,
        local_steps=config.local_steps, batch_size=config.batch_size, l2=float(config.l2),
        rng=rng,
    )  # fmt: skip
    loss, acc = evaluate(forward, params, phi, y, config.loss, weights=w)
    return params, state, {
        "loss": loss, "accuracy": acc, "bond_ranks": state.ranks,
        "max_discarded_weight": state.max_discarded, "local_loss": state.local_loss,
        "local_solver": "conjugate_gradient" if quadratic else "adam", "learning_rate": lr,
    }  # fmt: skip


register_method(Method("sweep", _sweep_init, _sweep_epoch, 5, lambda params: 1e-4))


# ----------------------------------------------------------------------------- Born-machine sweep


def _born_sweep_init(forward, params, phi, y, w, config, rng):
    from qtn.models import MPS

    if not isinstance(params, MPS) or params.n_labels is not None:
        raise ValueError("method='born_sweep' trains MPS Born machines (an MPS without a label)")
    if params.n_sites < 2:
        raise ValueError("method='born_sweep' needs at least 2 sites to form a bond")
    if config.loss != "unsupervised_nll":
        raise ValueError(f"method='born_sweep' minimises 'unsupervised_nll', got {config.loss!r}")
    check_one_hot(phi)
    return born_sweep_init(params, phi, w)


def _born_sweep_epoch(forward, params, state, phi, y, w, config, rng):
    params, state, loss = born_sweep_epoch(
        params, state, phi, w, learning_rate=config.resolved_learning_rate(params),
        cutoff=config.cutoff, local_steps=config.local_steps, progress=config.verbose >= 2,
    )  # fmt: skip
    return params, state, {"loss": loss, "accuracy": None, "bond_ranks": state.ranks,
                           "max_discarded_weight": state.max_discarded,
                           "skipped_bonds": state.skipped,
                           "svd_retries": state.svd_retries,
                           "kernel_fallbacks": state.kernel_fallbacks}  # fmt: skip


register_method(Method("born_sweep", _born_sweep_init, _born_sweep_epoch, 10, lambda p: 0.05))


# ----------------------------------------------------------------------------- tree sweep


def _tree_sweep_init(forward, params, phi, y, w, config, rng):
    from qtn.models import TTN, ClassifierParams

    if not isinstance(params, ClassifierParams) or not isinstance(params.network, TTN):
        raise ValueError("method='tree_sweep' trains TTN classifiers (ClassifierParams of a TTN)")
    if not get_loss(config.loss).supervised:
        raise ValueError(f"method='tree_sweep' needs a classifier loss, got {config.loss!r}")
    return tree_sweep_init(params, phi, y)


def _tree_sweep_epoch(forward, params, state, phi, y, w, config, rng):
    params, state, _ = tree_sweep_epoch(
        params, state, phi, y, w, loss=config.loss,
        learning_rate=config.resolved_learning_rate(params), local_steps=config.local_steps,
        batch_size=config.batch_size, rng=rng,
    )  # fmt: skip
    loss, acc = evaluate(forward, params, phi, y, config.loss, weights=w)
    return params, state, {"loss": loss, "accuracy": acc}


register_method(Method("tree_sweep", _tree_sweep_init, _tree_sweep_epoch, 5, lambda p: 1e-2))


# ----------------------------------------------------------------------------- optimizer

_OPT_CACHE: dict[tuple, optax.GradientTransformation] = {}


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
