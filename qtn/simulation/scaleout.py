"""Scale-out of the simulator: sliced contractions over a JAX mesh or a task executor,
batched inference over Dask arrays.

Three ways to spread one :class:`~qtn.simulation.engine.Simulator` call:

- **A JAX mesh** (``Simulator(..., devices=...)``): a contraction that cotengra
  sliced (its estimated peak exceeded ``max_memory``) runs its slices sharded over
  the devices. Each device scans over a contiguous share of the slice numbers
  with the whole (replicated) batch, and ``lax.psum`` adds the partial sums
  (:func:`qtn.simulation.plan._compile_jax`). It is one ``jax.shard_map``, so
  ``jax.grad`` flows through it. :func:`resolve_devices` turns the argument into
  the 1-D mesh. In a multi-process JAX run (``jax.distributed.initialize``) the
  contraction path is searched on process 0 only and broadcast to the others
  (:func:`broadcast_path`): every process then runs the same program, even when
  the search itself is not reproducible (a time-budgeted hyper search).
- **A task executor** (``Simulator(..., executor=client)``): a Dask
  ``distributed.Client`` or any object with ``submit`` (a
  ``concurrent.futures.Executor``). The slice range of a sliced contraction is
  split into one contiguous range per worker thread; each task returns its
  partial sum (:meth:`qtn.simulation.program.Program.slice_sum`) and the client
  adds them in task order, so the result is deterministic. An unsliced batched
  call sends chunks of the batch instead and concatenates them. The plan (the
  program with its folded constants) is scattered to every worker once
  (:class:`ExecutorRunner`).
- **Dask arrays** (:func:`dask_map`): ``probs``, ``expectation`` and ``amplitude``
  map over the row chunks of a ``dask.array.Array`` of data, parameters or states
  and return a Dask array, computed by whatever scheduler computes it (threads,
  or a ``distributed`` cluster, which receives the pickled simulator).

Dask is imported only when one of these is used: qtn imports and runs without it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from qtn._checks import is_dask_array
from qtn._jax import x64_if
from qtn.simulation.plan import DTYPES

__all__ = [
    "resolve_devices",
    "check_executor",
    "ExecutorRunner",
    "broadcast_path",
    "is_dask_array",
    "dask_map",
    "MESH_AXIS",
]

#: the name of the mesh axis that slices are sharded over
MESH_AXIS = "slices"


# ----------------------------------------------------------------------------- devices


def resolve_devices(devices, interface: str = "jax"):
    """The 1-D ``jax.sharding.Mesh`` (axis :data:`MESH_AXIS`) for ``Simulator(devices=...)``.

    ``devices`` is None (no mesh), a positive int n (the first n of
    ``jax.devices()``), a sequence of distinct ``jax.Device`` objects, or a
    ``jax.sharding.Mesh`` (its devices, flattened in the mesh's order, form the
    1-D mesh). One device gives no mesh: a single device runs the ordinary path.
    Raises ``TypeError``/``ValueError`` naming ``devices``, what it got and what
    was expected.

    Examples
    --------
    ::

        resolve_devices(4)                      # Mesh over jax.devices()[:4], axis "slices"
        resolve_devices(jax.devices("gpu"))     # every GPU
        resolve_devices(jax.make_mesh((2, 2), ("a", "b")))  # flattened to 4 devices
    """
    if devices is None:
        return None
    if interface != "jax":
        raise ValueError(
            f"devices: sharding slices over devices needs interface='jax', got "
            f"interface={interface!r} with devices={devices!r}"
        )
    import jax
    from jax.sharding import Mesh

    if isinstance(devices, bool):
        raise TypeError(f"devices must be None, an int, a sequence of jax devices or a "
                        f"jax.sharding.Mesh, got the bool {devices!r}")  # fmt: skip
    if isinstance(devices, int | np.integer):
        n = int(devices)
        have = jax.devices()
        if n < 1:
            raise ValueError(f"devices must be a positive number of devices, got {n}")
        if n > len(have):
            raise ValueError(
                f"devices={n} asks for more devices than JAX has: {len(have)} "
                f"{have[0].platform} device(s). On CPU, set "
                f"XLA_FLAGS=--xla_force_host_platform_device_count={n} (or QTN_CPU_DEVICES={n}) "
                "before JAX starts"
            )
        devs = list(have[:n])
    elif isinstance(devices, Mesh):
        devs = list(np.asarray(devices.devices).flat)
    elif isinstance(devices, str | bytes) or not isinstance(devices, Sequence | np.ndarray):
        raise TypeError(
            "devices must be None, an int, a sequence of jax devices or a jax.sharding.Mesh, "
            f"got {type(devices).__name__}"
        )
    else:
        devs = list(np.asarray(devices, dtype=object).flat)
        if not devs:
            raise ValueError("devices: got an empty sequence; pass at least one jax device")
        bad = [d for d in devs if not isinstance(d, jax.Device)]
        if bad:
            raise TypeError(f"devices: every entry must be a jax.Device (from jax.devices()), "
                            f"got {type(bad[0]).__name__} {bad[0]!r}")  # fmt: skip
        if len({id(d) for d in devs}) != len(devs):
            raise ValueError(f"devices: each device may appear once, got {devs}")
    if len(devs) == 1:
        return None
    return Mesh(np.array(devs, dtype=object), (MESH_AXIS,))


def broadcast_path(net, path, sliced, failed: str | None = None):
    """``(path, sliced)`` as searched on JAX process 0, on every process.

    Process 0 passes its SSA path and sliced indices (or ``failed``, the message of
    the error its search raised); the other processes pass anything (they skip the
    search) and receive process 0's. The path is sent as integers, the sliced
    indices as positions among the network's index names (the network is built
    identically everywhere), with
    ``jax.experimental.multihost_utils.broadcast_one_to_all``. In a single process
    it returns the path through the same encoding.

    Examples
    --------
    ``get_plan(..., broadcast=True)`` (a simulator with ``devices``) runs::

        path, sliced = search() if jax.process_index() == 0 else (None, ())
        path, sliced = broadcast_path(net, path, sliced)   # equal on every process
    """
    import jax
    from jax.experimental.multihost_utils import broadcast_one_to_all

    from qtn.errors import ContractionTooLargeError

    names = list(net.sizes)
    source = jax.process_index() == 0
    if source and failed is None:
        header = np.array([len(path), len(sliced)], np.int32)
    else:
        header = np.array([-1, 0], np.int32)
    header = np.asarray(broadcast_one_to_all(header))
    if header[0] < 0:
        raise ContractionTooLargeError(failed or "the contraction search failed on JAX process 0")
    n_steps, n_sliced = int(header[0]), int(header[1])
    steps = np.zeros((n_steps, 2), np.int32)
    where = np.zeros((n_sliced,), np.int32)
    if source:
        steps[:] = np.asarray(path, np.int32).reshape(n_steps, 2)
        where[:] = [names.index(ix) for ix in sliced]
    steps, where = broadcast_one_to_all((steps, where))
    out_path = [tuple(int(v) for v in row) for row in np.asarray(steps)]
    return out_path, tuple(names[int(i)] for i in np.asarray(where))


# ----------------------------------------------------------------------------- executors


def check_executor(executor):
    """Validate ``Simulator(executor=...)``: None, or an object with a callable ``submit``
    (a Dask ``distributed.Client``, a ``concurrent.futures.Executor``).

    Examples
    --------
    ::

        check_executor(Client(LocalCluster(n_workers=2)))   # returned as is
        check_executor(ThreadPoolExecutor(4))               # returned as is
        check_executor("client")                            # TypeError
    """
    if executor is None:
        return None
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(
            "executor must be None, a dask.distributed.Client or an object with "
            "submit(fn, *args) returning futures (a concurrent.futures.Executor), got "
            f"{type(executor).__name__}"
        )
    return executor


def _is_dask_client(executor) -> bool:
    return all(callable(getattr(executor, a, None)) for a in ("scatter", "gather", "nthreads"))


class ExecutorRunner:
    """Runs a simulator's sliced contractions and batch chunks as tasks of an executor.

    With a Dask client each plan is scattered to every worker once
    (``client.scatter(plan, broadcast=True)``) and the tasks receive the future, so
    the program and its constants are not sent per task. A
    ``concurrent.futures`` executor receives the plan with every task (a thread
    pool shares it; a process pool pickles it). The number of tasks is the
    executor's worker threads (``sum(client.nthreads().values())``, or an
    executor's ``_max_workers``, else ``os.cpu_count()``).

    Examples
    --------
    What ``Simulator(executor=client)`` does with a sliced plan::

        runner = ExecutorRunner(client)
        total = runner.slices(plan, "numpy", flags, [params, data, None], None)
    """

    def __init__(self, executor):
        self.executor = executor
        self._scattered: dict = {}

    def n_workers(self) -> int:
        ex = self.executor
        if _is_dask_client(ex):
            n = sum(ex.nthreads().values())
        else:
            n = getattr(ex, "_max_workers", None) or os.cpu_count() or 1
        return max(1, int(n))

    def _plan_ref(self, plan):
        """What the tasks receive for ``plan``: its future on every worker, or the plan."""
        ex = self.executor
        if not _is_dask_client(ex):
            return plan
        got = self._scattered.get(plan.key)
        if got is None or got[0] is not plan:  # (a plan searched again may differ)
            got = (plan, ex.scatter(plan, broadcast=True, hash=False))
            self._scattered[plan.key] = got
        return got[1]

    def _gather(self, futures):
        ex = self.executor
        if callable(getattr(ex, "gather", None)):
            return list(ex.gather(futures))
        return [f.result() for f in futures]

    def slices(self, plan, interface, flags, inputs, bra):
        """The contraction summed over its slices, one contiguous range per task."""
        n = plan.program.n_slices
        tasks = min(self.n_workers(), n)
        share = math.ceil(n / tasks)
        ref = self._plan_ref(plan)
        submit = self.executor.submit
        futures = [
            submit(_slice_task, ref, interface, flags, lo, share, *inputs, bra)
            for lo in range(0, n, share)
        ]
        parts = self._gather(futures)
        total = parts[0]
        for part in parts[1:]:  # in task order: the same sum every time
            total = total + part
        return total

    def rows(self, plan, interface, flags, inputs, bra, size, chunk):
        """An unsliced batched contraction, the batch split into equal chunks (the last
        one padded, so a worker compiles one shape) of at most ``chunk`` rows."""
        batched = flags[:3]
        rows = min(chunk, math.ceil(size / self.n_workers()))
        ref = self._plan_ref(plan)
        futures = []
        for lo in range(0, size, rows):
            part = []
            for a, b in zip(inputs, batched):
                if b:
                    a = a[lo : lo + rows]
                    if len(a) < rows:
                        a = np.concatenate([a, np.repeat(a[-1:], rows - len(a), 0)])
                part.append(a)
            futures.append(self.executor.submit(_rows_task, ref, interface, flags, *part, bra))
        parts = self._gather(futures)
        return np.concatenate(parts)[:size]


def _slice_task(plan, interface, flags, start, count, p, x, s, bra):
    """A task: slices ``start .. start + count - 1`` of ``plan``'s contraction (those past
    the last slice add zero), for every input of the (possibly batched) call."""
    batched = flags[:3]
    prog = plan.program
    cdt = DTYPES[plan.dtype][0]
    with x64_if(DTYPES[plan.dtype][1]):
        if interface == "numpy":
            consts = plan.constants("numpy")

            def one(*args):
                arrays = plan.arrays(*args, bra, None, np)
                return np.asarray(prog.slice_sum(consts, arrays, np, start, count), cdt)

            size = next((len(a) for a, b in zip((p, x, s), batched) if b), None)
            if size is None:
                return one(p, x, s)
            return np.stack([one(*[a[i] if b else a for a, b in zip((p, x, s), batched)])
                             for i in range(size)])  # fmt: skip
        fn = _slice_fn(plan, batched, count)
        return np.asarray(fn(plan.constants("jax"), np.int32(start), p, x, s, bra))


def _slice_fn(plan, batched, count):
    """The jitted slice-range function of ``plan`` (cached on the plan: a worker's copy
    compiles once per batching and range length; the range start is an argument)."""
    key = ("slice_range", batched, count)
    fn = plan.fns.get(key)
    if fn is not None:
        return fn
    import jax
    import jax.numpy as jnp

    prog = plan.program

    def single(consts, start, theta, x, state, bra):
        arrays = plan.arrays(theta, x, state, bra, None, jnp)
        return prog.slice_sum(consts, arrays, jnp, start, count)

    if any(batched):
        single = jax.vmap(single, in_axes=(None, None, *(0 if b else None for b in batched),
                                           None))  # fmt: skip
    fn = jax.jit(single)
    plan.fns[key] = fn
    return fn


def _rows_task(plan, interface, flags, p, x, s, bra):
    """A task: the whole (unsliced) contraction for a chunk of the batch."""
    with x64_if(DTYPES[plan.dtype][1]):
        return np.asarray(plan.function(flags, interface)(p, x, s, bra, None))


# ----------------------------------------------------------------------------- Dask arrays


#: the batched number of dimensions of each per-call input
_NDIM = {"params": 2, "data": 2, "state": 3}


def dask_map(sim, method: str, args: tuple, tail: tuple, dtype, **inputs):
    """``getattr(sim, method)(*args, **inputs)`` over the row chunks of the Dask inputs,
    as a Dask array of shape ``(rows, *tail)``.

    Each Dask input must carry the batch axis (``params``/``data`` 2-D, ``state``
    3-D); it is rechunked so that only the row axis is split, and every batched
    input (Dask or numpy) takes the row chunks of the first Dask input. Unbatched
    inputs are passed whole to every chunk.

    Examples
    --------
    What ``sim.probs((0,), params=theta, data=X)`` does for a Dask array ``X``::

        P = dask_map(sim, "probs", ((0,),), (2,), np.dtype("float32"), params=theta, data=X)
    """
    import dask.array as da

    names = [k for k, v in inputs.items() if is_dask_array(v)]
    first = inputs[names[0]]
    for k in names:
        v = inputs[k]
        if v.ndim != _NDIM[k]:
            raise ValueError(
                f"{k}: a dask array must carry the batch axis (shape (batch, ...) with "
                f"{_NDIM[k]} dimensions), got shape {v.shape}"
            )
    rows = first.chunks[0]
    total = first.shape[0]
    blocks, indices, shared = [], [], {}
    letters = iter("abcdefgh")
    for k, v in inputs.items():
        if v is None:
            continue
        if not is_dask_array(v) and np.ndim(v) != _NDIM[k]:
            shared[k] = v
            continue
        n = v.shape[0]
        if math.isnan(n) or math.isnan(total) or n != total:
            raise ValueError(
                f"{k} has {n} rows, {names[0]} has {total}: the batch sizes must agree "
                "(and be known: call compute_chunk_sizes())"
            )
        if not is_dask_array(v):
            v = da.from_array(np.asarray(v), chunks=(rows, *np.shape(v)[1:]))
        v = v.rechunk((rows, *v.shape[1:]))
        blocks.append(v)
        indices.append("i" + "".join(next(letters) for _ in range(v.ndim - 1)))
        shared.pop(k, None)
    batched_names = tuple(k for k, v in inputs.items() if v is not None and k not in shared)
    # the shapes are checked now, on one row of zeros per batched input (values: per chunk)
    probe = {k: np.zeros((1, *b.shape[1:]), b.dtype) for k, b in zip(batched_names, blocks)}
    sim._inputs(**{"params": None, "data": None, "state": None, **shared, **probe})
    out_index = "i" + "z" * len(tail)
    pairs = [x for pair in zip(blocks, indices) for x in pair]
    return da.blockwise(
        _dask_block, out_index, *pairs, token=f"qtn-{method}",
        new_axes={"z": tail[0]} if tail else None,
        concatenate=True, dtype=dtype, meta=np.empty((0,) * len(out_index), dtype),
        sim=sim, method=method, args=args, names=batched_names, shared=shared, out_dtype=dtype,
    )  # fmt: skip


def _dask_block(*blocks, sim, method, args, names, shared, out_dtype):
    kwargs = dict(shared)
    kwargs.update(zip(names, blocks))
    return np.asarray(getattr(sim, method)(*args, **kwargs), dtype=out_dtype)
