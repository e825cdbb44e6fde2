"""Every core: JAX's CPU devices, and the batch mesh that training shards over.

XLA on CPU spreads one large operation over the cores (its intra-op thread
pool). A training step is a few hundred small operations on a minibatch of 64,
too small for that. Data parallelism is the other way: with several JAX
devices, each device runs the step on its slice of the minibatch and the
gradients are summed by an all-reduce; the same program runs on one GPU (a
mesh of one device: nothing is split) and on several.

On CPU the split is opt-in, because it was measured to be slower: on an idle
2-core machine, splitting each minibatch over 2 CPU devices took 1.9x the wall
time per epoch of one device (digits at chi = 32: 85 ms against 45 ms; 14x14
MNIST, 10,000 images, chi = 32: 1.69 s against 0.90 s), with twice the CPU
time, while independent processes on the same machine do run twice as fast:
the devices' per-step synchronisation costs more than the halved work saves.
So :func:`configure`, which runs at ``import qtn`` (without importing JAX),
leaves JAX's CPU device count alone unless ``QTN_CPU_DEVICES=n`` asks for n
devices (through ``JAX_NUM_CPU_DEVICES``, which JAX reads when it is imported,
or ``jax.config`` when JAX is imported but not started). A count the user set
(``JAX_NUM_CPU_DEVICES``, ``--xla_force_host_platform_device_count``) is kept.
Once JAX has started it is too late, and qtn uses the devices there are.

That automatic split is what an estimator does with ``devices=None``. An explicit
``devices=`` (:func:`device_mesh`) always splits gradient training over the mesh it
names, whatever the rules above say: several CPU devices, several GPUs, or the
devices of several processes after ``jax.distributed.initialize``.
"""

from __future__ import annotations

import numbers
import os
import sys

__all__ = [
    "configure",
    "batch_mesh",
    "shard_count",
    "device_mesh",
    "batch_shards",
    "spans_processes",
    "DEVICES_HELP",
]

#: what the estimators' ``devices=`` accepts, for error messages
DEVICES_HELP = (
    "None (automatic), 'all' (every device of the default backend, across processes "
    "after jax.distributed.initialize), an int n >= 1 (the first n of jax.devices()), a "
    "sequence of jax devices, or a jax.sharding.Mesh with an axis named 'batch' (or a "
    "single axis)"
)

#: training splits a minibatch over the devices only when each gets at least this many rows
MIN_ROWS_PER_DEVICE = 16

#: ... and when each device's share of a step is at least this many flops (about
#: 6 x rows x parameters for the forward and backward pass of a tensor network):
#: below it, the per-step gradient sum across devices costs more than it saves
MIN_FLOPS_PER_DEVICE = 2e7


def _wanted() -> int | None:
    """The CPU device count qtn asks for, or None to leave JAX's setting alone."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "JAX_NUM_CPU_DEVICES" in os.environ or "xla_force_host_platform_device_count" in flags:
        return None
    value = os.environ.get("QTN_CPU_DEVICES")
    if value is not None:
        try:
            n = int(value)
        except ValueError:
            raise ValueError(
                f"QTN_CPU_DEVICES must be an integer number of CPU devices, got {value!r}"
            ) from None
        return n if n >= 1 else None
    return None  # CPU devices are opt-in (see the module docstring)


def configure() -> None:
    """Ask JAX for ``QTN_CPU_DEVICES`` CPU devices, if set, the user set nothing else, and it is
    not too late."""
    n = _wanted()
    if n is None:
        return
    jax = sys.modules.get("jax")
    if jax is None:
        os.environ["JAX_NUM_CPU_DEVICES"] = str(n)
        return
    try:
        from jax._src import xla_bridge

        if not xla_bridge.backends_are_initialized():
            jax.config.update("jax_num_cpu_devices", n)
    except Exception:  # noqa: BLE001 - another JAX version: keep its devices
        pass


_MESH: dict = {}


def batch_mesh():
    """A 1-D ``jax.sharding.Mesh`` (axis ``"batch"``) over the default backend's local
    devices, or None with a single device (one GPU, or one CPU device)."""
    import jax

    devices = tuple(jax.local_devices())
    if devices not in _MESH:
        mesh = None
        if len(devices) > 1:
            import numpy as np
            from jax.sharding import Mesh

            mesh = Mesh(np.array(devices), ("batch",))
        _MESH[devices] = mesh
    return _MESH[devices]


def shard_count(rows: int, n_params: int | None = None) -> int:
    """How many devices a minibatch of ``rows`` (of a model of ``n_params`` parameters) is
    split over: all of them when the rows divide evenly with at least
    :data:`MIN_ROWS_PER_DEVICE` each and :data:`MIN_FLOPS_PER_DEVICE` of work each,
    else 1 (no split). ``QTN_MIN_FLOPS_PER_DEVICE`` overrides the work threshold."""
    mesh = batch_mesh()
    if mesh is None:
        return 1
    n = mesh.size
    if rows % n or rows // n < MIN_ROWS_PER_DEVICE:
        return 1
    if n_params is not None:
        floor = float(os.environ.get("QTN_MIN_FLOPS_PER_DEVICE", MIN_FLOPS_PER_DEVICE))
        if 6.0 * (rows // n) * n_params < floor:
            return 1
    return n


_NAMED: dict = {}


def _mesh_of(devices: tuple):
    """The 1-D ``"batch"`` mesh over ``devices`` (one object per device tuple, so the
    compiled epochs keyed on it are reused)."""
    if devices not in _NAMED:
        import numpy as np
        from jax.sharding import Mesh

        _NAMED[devices] = Mesh(np.array(devices, dtype=object), ("batch",))
    return _NAMED[devices]


def device_mesh(devices):
    """The mesh that an estimator's ``devices=`` names, or None for ``devices=None``.

    Parameters
    ----------
    devices
        ``None``: no explicit mesh (the automatic policy of :func:`shard_count`).
        ``"all"``: every device of ``jax.devices()`` (the default backend; after
        ``jax.distributed.initialize``, the devices of every process). An int ``n``:
        the first ``n`` of ``jax.devices()``. A sequence of ``jax.Device``: those
        (distinct, one platform). A ``jax.sharding.Mesh``: used as it is when it has
        an axis named ``"batch"`` (the minibatch is split along it and replicated
        over the other axes); a mesh of one axis of another name is renamed
        ``"batch"``.

    Returns
    -------
    jax.sharding.Mesh or None
        A mesh with a ``"batch"`` axis; it may hold one device (then nothing is split,
        but the computation runs on that device).

    Raises
    ------
    TypeError, ValueError
        For anything else, naming ``devices``, the value and what is accepted. A mesh
        spanning several processes must include a device of the calling process.

    Examples
    --------
    >>> from qtn._devices import device_mesh
    >>> device_mesh(None) is None
    True
    >>> device_mesh(1).shape["batch"]
    1
    """
    if devices is None:
        return None
    import jax
    from jax.sharding import Mesh

    if isinstance(devices, Mesh):
        names = tuple(devices.axis_names)
        if "batch" in names:
            mesh = devices
        elif len(names) == 1:
            mesh = _mesh_of(tuple(devices.devices.flat))
        else:
            raise ValueError(
                f"devices: a Mesh needs an axis named 'batch' (or a single axis), got a Mesh "
                f"with axes {names}"
            )
    elif isinstance(devices, str):
        if devices != "all":
            raise ValueError(f"devices must be {DEVICES_HELP}; got the string {devices!r}")
        mesh = _mesh_of(tuple(jax.devices()))
    elif isinstance(devices, bool):
        raise TypeError(f"devices must be {DEVICES_HELP}; got the bool {devices!r}")
    elif isinstance(devices, numbers.Integral):
        every = jax.devices()
        if not 1 <= devices <= len(every):
            raise ValueError(
                f"devices={devices!r} asks for {devices} devices; there are {len(every)} "
                f"({every[0].platform}); pass an int in [1, {len(every)}] or 'all'"
            )
        mesh = _mesh_of(tuple(every[: int(devices)]))
    elif isinstance(devices, list | tuple) or (
        hasattr(devices, "__iter__") and not isinstance(devices, dict | set | bytes)
    ):
        seq = list(devices.flat) if hasattr(devices, "flat") else list(devices)
        bad = [d for d in seq if not isinstance(d, jax.Device)]
        if bad:
            raise TypeError(
                f"devices must be {DEVICES_HELP}; got a sequence holding "
                f"{type(bad[0]).__name__} {bad[0]!r}, not a jax device"
            )
        if not seq:
            raise ValueError(f"devices must be {DEVICES_HELP}; got an empty sequence")
        if len(set(seq)) != len(seq):
            raise ValueError(f"devices must be distinct, got {seq!r}")
        if len({d.platform for d in seq}) > 1:
            raise ValueError(f"devices must share one platform, got {seq!r}")
        mesh = _mesh_of(tuple(seq))
    else:
        raise TypeError(f"devices must be {DEVICES_HELP}; got {type(devices).__name__} "
                        f"{devices!r}")  # fmt: skip
    owners = {d.process_index for d in mesh.devices.flat}
    if jax.process_index() not in owners:
        raise ValueError(
            f"devices: the mesh holds devices of processes {sorted(owners)} but none of this "
            f"process ({jax.process_index()}); every process that trains must hold a device "
            "of the mesh (use devices='all')"
        )
    return mesh


def batch_shards(mesh) -> int:
    """How many parts a minibatch is split into on ``mesh`` (the size of its ``"batch"``
    axis; 1 without a mesh)."""
    return 1 if mesh is None else int(mesh.shape["batch"])


def spans_processes(mesh) -> bool:
    """Whether ``mesh`` holds devices of more than one process (``jax.distributed``)."""
    return mesh is not None and len({d.process_index for d in mesh.devices.flat}) > 1
