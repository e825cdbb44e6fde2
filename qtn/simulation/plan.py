"""Contraction plans: searched once per (structure, quantity), cached, compiled, reused.

A :class:`Plan` holds the network of one quantity, its contraction path
(sliced when the estimated peak exceeds the memory limit), the contraction
:class:`~qtn.simulation.program.Program` with its folded constants, the
builder of the variable gate tensors, and the compiled functions (per
interface and batching). Plans live in a process-wide cache keyed by the
circuit's structure, the input state, the quantity, the dtype, the memory
limit and the optimizer, so new data or parameters never trigger a new search
(:data:`PLAN_STATS` counts searches and hits). Paths can also be kept on disk
(``cache_dir``; see :mod:`qtn.simulation.search`).

Sizes are checked before anything large is allocated or searched at length:
the result, then every input tensor, then the peak of a greedy path (sliced if
need be) are compared with ``max_memory``, and a quantity that cannot fit
raises :class:`qtn.errors.ContractionTooLargeError` naming the estimate and
the limit; only then does the full search run.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from qtn.errors import ContractionTooLargeError
from qtn.simulation.memory import format_bytes, too_large
from qtn.simulation.network import Network, gate_tensor_builder
from qtn.simulation.program import Program, build_program
from qtn.simulation.search import AutoPlanner, PathCache, optimizer_key, search_path

__all__ = [
    "Plan",
    "PLAN_STATS",
    "clear_plan_cache",
    "get_plan",
    "check_optimizer",
    "DTYPES",
    "ARGS",
]

#: number of contraction-path searches run and plan-cache hits, process-wide
PLAN_STATS = {"searches": 0, "hits": 0, "disk_hits": 0}
_PLANS: OrderedDict = OrderedDict()
#: plans kept in memory, least recently used dropped first. Each holds compiled XLA
#: programs, and every compiled program maps memory: an unbounded cache in a process
#: that simulates thousands of circuit structures would reach the kernel's map limit
#: (vm.max_map_count, 65,530 by default), where XLA's compiler crashes.
MAX_CACHED_PLANS = 256
_MAX_SLICES = 2**24  # at most this many slices per contraction
#: guards the one-time placement of a plan's constants (threads of a Dask scheduler
#: may ask for them at once, and the first placement releases the host copies)
_CONSTS_LOCK = threading.Lock()
#: complex dtype -> (complex, matching real) dtype names
DTYPES = {"complex64": ("complex64", "float32"), "complex128": ("complex128", "float64")}
#: the per-sample arguments of a compiled function, in order
ARGS = ("params", "data", "state", "bra", "bits")


def clear_plan_cache() -> None:
    """Forget every cached contraction plan and compiled function."""
    _PLANS.clear()


@dataclass
class Plan:
    """One quantity of one circuit structure, planned and ready to run.

    Attributes
    ----------
    key
        The cache key.
    network
        The :class:`~qtn.simulation.network.Network`.
    program
        The :class:`~qtn.simulation.program.Program`: folded constants, steps, memory model.
    path
        The SSA contraction path; ``sliced`` the sliced indices.
    search_s
        Seconds spent building the network, searching and folding constants.
    """

    key: tuple
    network: Network
    program: Program
    path: list
    sliced: tuple
    search_s: float
    dtype: str
    tensors: Callable = field(repr=False, default=None)
    fns: dict = field(repr=False, default_factory=dict)
    _consts: dict = field(repr=False, default_factory=dict)
    _exes: dict = field(repr=False, default_factory=dict)

    @property
    def peak_bytes(self) -> int:
        """Estimated peak bytes of one contraction (one sample), constants included."""
        return self.program.peak_bytes(1)

    @property
    def tree(self):
        """The path as a cotengra ``ContractionTree`` (``tree.sliced_inds`` when sliced)."""
        import cotengra as ctg

        net = self.network
        tree = ctg.ContractionTree.from_path(net.inputs, net.output, net.sizes,
                                             ssa_path=self.path)  # fmt: skip
        for ix in self.sliced:
            tree.remove_ind_(ix)
        return tree

    def variable_flags(self, batched: tuple) -> tuple:
        """Which variable tensors carry the batch, given flags per name in :data:`ARGS`."""
        b = dict(zip(ARGS, batched))
        out = []
        for _, kind, payload in self.network.slots:
            if kind == "gate":
                from qtn.circuit import Feature

                op, _ = payload
                data_bound = any(isinstance(a, Feature) for a in op.angles)
                out.append(b["params"] or (data_bound and b["data"]))
            elif kind == "proj":
                out.append(b["bits"])
            else:
                out.append(b[kind])
        return tuple(out)

    def arrays(self, theta, x, state, bra, bits, xp):
        """The variable tensors in position order, from one sample's inputs."""
        cdt = DTYPES[self.dtype][0]
        gates = iter(self.tensors(theta, x, xp, cdt))
        eye = None
        out = []
        for _, kind, payload in self.network.slots:
            if kind == "gate":
                out.append(next(gates))
            elif kind == "proj":
                eye = xp.eye(2, dtype=cdt) if eye is None else eye
                out.append(eye[bits[payload]])
            else:  # "state" (qubit, conj) or "bra" (core, conj)
                i, conj = payload
                a = xp.asarray(state[i] if kind == "state" else bra[i]).astype(cdt)
                out.append(xp.conj(a) if conj else a)
        return out

    def constants(self, interface: str, mesh=None):
        """The folded constants for ``interface``: numpy arrays, or JAX arrays put on the
        default device once (the numpy copies are then released), or with a
        ``jax.sharding.Mesh`` replicated on its devices once."""
        key = interface if mesh is None else (interface, mesh)
        got = self._consts.get(key)
        if got is not None:
            return got
        with _CONSTS_LOCK:
            got = self._consts.get(key)
            if got is not None:
                return got
            if interface == "jax":
                import jax

                # concrete even when first asked for inside a caller's trace (a jitted
                # loss): a traced device_put would be cached here and leak
                with jax.ensure_compile_time_eval():
                    if mesh is None:
                        got = [jax.device_put(a) for a in self.host_constants()]
                    else:
                        from jax.sharding import NamedSharding, PartitionSpec

                        rep = NamedSharding(mesh, PartitionSpec())
                        # from a callback: the multi-process way (each process supplies
                        # the replicas on its own devices)
                        got = [jax.make_array_from_callback(a.shape, rep, lambda i, a=a: a[i])
                               for a in self.host_constants()]  # fmt: skip
            else:
                got = self.host_constants()
            self._consts[key] = got
            if key == "jax":
                self.program.consts = None  # one copy of the constants, on the device
        return got

    def host_constants(self) -> list:
        """The folded constants as numpy arrays (copied back from the device if they were
        moved there), without caching a second copy."""
        got = self._consts.get("numpy")
        if got is not None:
            return got
        if self.program.consts is not None:
            return list(self.program.consts)
        return [np.asarray(a) for a in self._consts["jax"]]

    def function(self, batched: tuple, interface: str = "jax", mesh=None) -> Callable:
        """``f(params, data, state, bra, bits)``, vmapped over the arguments flagged in
        ``batched`` (one flag per name in :data:`ARGS`), jitted under JAX.

        With a 1-D ``jax.sharding.Mesh`` (JAX only) a sliced program runs its slices
        sharded over the mesh's devices (:func:`_compile_jax`); an unsliced one ignores it.
        """
        if mesh is not None and (interface != "jax" or self.program.n_slices == 1):
            mesh = None
        fn = self.fns.get((interface, batched, mesh))
        if fn is None:
            fn = (_compile_jax(self, batched, mesh) if interface == "jax"
                  else _compile_numpy(self, batched))  # fmt: skip
            self.fns[(interface, batched, mesh)] = fn
        return fn

    def executable(self, batched: tuple, args: tuple, mesh=None):
        """The XLA executable of ``function(batched, "jax", mesh)`` for arguments shaped
        like ``args`` (compiled ahead of time, cached by shapes): call it with ``args``,
        read its ``memory_analysis()``."""
        import jax

        if mesh is not None and self.program.n_slices == 1:
            mesh = None
        leaves, tree = jax.tree_util.tree_flatten(list(args))
        shapes = tuple((np.shape(a), str(getattr(a, "dtype", None) or np.asarray(a).dtype))
                       for a in leaves)  # fmt: skip
        key = (batched, str(tree), shapes, mesh)
        exe = self._exes.get(key)
        if exe is None:
            top = self.function(batched, "jax", mesh).jitted
            consts = self.constants("jax", mesh)
            compiled = top.lower(consts, *args).compile()
            exe = _Executable(compiled, consts)
            self._exes[key] = exe
        return exe

    # pickling (a Dask worker, a process pool): the program with numpy constants and the
    # network travel; compiled functions and device arrays stay behind and are rebuilt

    def __getstate__(self):
        import dataclasses

        state = dict(self.__dict__)
        state["program"] = dataclasses.replace(self.program, consts=self.host_constants())
        state.update(tensors=None, fns={}, _consts={}, _exes={})
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.tensors = gate_tensor_builder(self.network.gate_slots)


@dataclass
class _Executable:
    compiled: object
    consts: list

    def __call__(self, *args):
        return self.compiled(self.consts, *args)

    def device_bytes(self) -> int | None:
        """XLA's own count: arguments (constants and inputs), output and temporaries.

        Asked of XLA once per executable (the analysis costs milliseconds, which
        every call of a small contraction would otherwise pay)."""
        return self._analysed_bytes

    @functools.cached_property
    def _analysed_bytes(self) -> int | None:
        try:
            m = self.compiled.memory_analysis()
        except Exception:  # noqa: BLE001 - not every backend reports it
            return None
        if m is None:
            return None
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)


def _compile_jax(plan: Plan, batched, mesh=None):
    """The jitted (and vmapped) contraction; with a ``mesh``, its slices sharded over it.

    Sharded: every device runs the whole batch (the inputs and constants are
    replicated) on its own contiguous share of the slice numbers, ``ceil(n_slices /
    n_devices)`` of them from ``axis_index * share`` (numbers past the last slice,
    the padding of the last devices, add exactly zero), as one ``lax.scan``; a
    ``lax.psum`` over the mesh axis adds the devices' partial sums. It is a
    ``jax.shard_map``, so ``jax.grad`` flows through it.
    """
    import jax
    import jax.numpy as jnp

    prog = plan.program
    if mesh is None:

        def single(consts, theta, x, state, bra, bits):
            return prog(consts, plan.arrays(theta, x, state, bra, bits, jnp), jnp)

    else:
        (axis,) = mesh.axis_names
        share = -(-prog.n_slices // mesh.size)

        def single(consts, theta, x, state, bra, bits):
            start = jax.lax.axis_index(axis) * share
            arrays = plan.arrays(theta, x, state, bra, bits, jnp)
            return prog.slice_sum(consts, arrays, jnp, start, share)

    if any(batched):
        single = jax.vmap(single, in_axes=(None, *(0 if b else None for b in batched)))
    if mesh is not None:
        from jax.sharding import PartitionSpec

        per_device = single

        def single(*args):
            return jax.lax.psum(per_device(*args), axis)

        single = _shard_map()(single, mesh=mesh, in_specs=(PartitionSpec(),) * 6,
                              out_specs=PartitionSpec())  # fmt: skip
    jitted = jax.jit(single)  # inside a caller's jit (compiler options are top-level only)
    opts = compiler_options(len(prog.steps))
    top = jitted if opts is None else jax.jit(single, compiler_options=opts)

    def fn(*args):
        traced = any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(args))
        return (jitted if traced else top)(plan.constants("jax", mesh), *args)

    fn.jitted = top  # for ahead-of-time lowering (memory and compile-time measurements)
    return fn


def _shard_map():
    """``jax.shard_map`` (JAX >= 0.6), else ``jax.experimental.shard_map.shard_map``."""
    import jax

    fn = getattr(jax, "shard_map", None)
    if fn is not None:
        return fn
    from jax.experimental.shard_map import shard_map

    return lambda f, **kw: shard_map(f, check_rep=True, **kw)


#: programs with at least this many steps compile at XLA backend optimisation level 0 on CPU
FAST_COMPILE_STEPS = 1024


def compiler_options(n_steps: int) -> dict | None:
    """XLA options for a planned expression of ``n_steps`` contractions.

    On CPU, programs of :data:`FAST_COMPILE_STEPS` steps or more compile at LLVM
    backend optimisation level 0. Below that the default level pays: measured on
    2 idle cores (staircase circuits, the last qubit's full light cone), level 0
    made warm calls 1.2-1.4x slower for little compile time saved (123 steps:
    0.9 s against 1.6 s; 279 steps: 4.5 s against 4.8 s; 567 steps: 4.9 s
    against 6.9 s). Only programs of thousands of ``dot_general`` steps, where
    compile time dominates, keep level 0. ``QTN_XLA_OPT_LEVEL`` forces a level.
    """
    import os

    import jax

    level = os.environ.get("QTN_XLA_OPT_LEVEL")
    if level is not None:
        return {"xla_backend_optimization_level": int(level)}
    if jax.default_backend() != "cpu" or n_steps < FAST_COMPILE_STEPS:
        return None
    return {"xla_backend_optimization_level": 0}


def _compile_numpy(plan: Plan, batched):
    cdt = DTYPES[plan.dtype][0]
    prog = plan.program

    def single(*args):
        out = prog(plan.constants("numpy"), plan.arrays(*args, np), np)
        return np.asarray(out, dtype=cdt)

    if not any(batched):
        return single

    def looped(*args):
        size = next(len(a) for a, b in zip(args, batched) if b)
        return np.stack(
            [single(*[a[i] if b else a for a, b in zip(args, batched)]) for i in range(size)]
        )

    return looped


# ----------------------------------------------------------------------------- planning


def check_optimizer(optimizer):
    """Validate ``optimizer``: None/"auto", an :class:`AutoPlanner`, a cotengra preset name,
    a path optimizer or a factory."""
    if optimizer is None or isinstance(optimizer, str | AutoPlanner):
        if isinstance(optimizer, str) and not optimizer.strip():
            raise ValueError("optimizer must be a preset name such as 'auto' or 'greedy', got ''")
        return optimizer
    import cotengra as ctg

    if isinstance(optimizer, ctg.HyperOptimizer):  # (ReusableHyperOptimizer is no subclass)
        raise TypeError(
            "optimizer: a cotengra HyperOptimizer is single-use, and a Simulator searches one "
            "tree per quantity; pass ReusableHyperOptimizer(...) with the same options, or a "
            "factory such as lambda: HyperOptimizer(...)"
        )
    if not (isinstance(optimizer, ctg.PathOptimizer) or callable(optimizer)):
        raise TypeError(
            "optimizer must be 'auto', a cotengra preset name, a qtn AutoPlanner, a cotengra "
            f"path optimizer or a factory, got {type(optimizer).__name__}"
        )
    return optimizer


def get_plan(
    key: tuple,
    build: Callable[[], Network],
    *,
    dtype: str,
    max_memory: int,
    optimizer=None,
    cache_dir=None,
    what: str = "",
    results: int = 0,
    broadcast: bool = False,
) -> Plan:
    """The cached plan for ``key``, or a new one: build, check sizes, search, slice, fold.

    ``results`` copies of the result are reserved in the first size check (the
    results a call will hand back), so an oversized batch of results fails before
    any search. With ``broadcast`` (a simulator sharding over a JAX mesh) the path
    is searched on JAX process 0 only and broadcast to every process
    (:func:`qtn.simulation.scaleout.broadcast_path`), so that a multi-process run
    shards one program even when the search is not reproducible.
    """
    plan = _PLANS.get(key)
    if plan is not None:
        _PLANS.move_to_end(key)
        PLAN_STATS["hits"] += 1
        return plan
    t0 = time.perf_counter()
    net = build()
    itemsize = np.dtype(DTYPES[dtype][0]).itemsize
    _check_sizes(net, itemsize, max_memory, what, results)
    if broadcast:
        path, sliced = _search_on_process_0(net, dtype, max_memory, optimizer, cache_dir, what)
    else:
        path, sliced = _search(net, dtype, max_memory, optimizer, cache_dir, what)
    consts = {p: a for p, a in net.consts.items()}
    program = build_program(net.inputs, net.output, net.sizes, path, consts=consts,
                            sliced=sliced, dtype=DTYPES[dtype][0])  # fmt: skip
    plan = Plan(
        key=key, network=net, program=program, path=path, sliced=tuple(sliced),
        search_s=time.perf_counter() - t0, dtype=dtype,
        tensors=gate_tensor_builder(net.gate_slots),
    )  # fmt: skip
    _PLANS[key] = plan
    while len(_PLANS) > MAX_CACHED_PLANS:
        _PLANS.popitem(last=False)
    return plan


def _search(net: Network, dtype: str, max_memory: int, optimizer, cache_dir, what: str):
    """``(path, sliced)`` for ``net``: from the disk cache, or searched and fitted."""
    opt_key = optimizer_key(optimizer)
    disk = PathCache.from_setting(cache_dir) if opt_key is not None else None
    disk_key = None
    found = None
    if disk is not None:
        disk_key = PathCache.key(net.inputs, net.output, net.sizes, opt_key, (dtype, max_memory))
        found = disk.get(disk_key)
    if found is not None:
        PLAN_STATS["disk_hits"] += 1
        return found
    PLAN_STATS["searches"] += 1
    if optimizer is None or optimizer == "auto" or isinstance(optimizer, AutoPlanner):
        # fail fast on a hopeless estimate from a cheap greedy path. Greedy can overestimate
        # by far (a 24-qubit depth-100 random circuit: 24 TiB by greedy, width 28 by the
        # search), so anything short of hopeless is searched and its path checked below.
        quick = search_path(net.inputs, net.output, net.sizes, "greedy")
        if _peak(net, quick, DTYPES[dtype][0]) > max_memory * _HOPELESS:
            _fit(net, quick, dtype, max_memory, what)  # raises, stating the estimate
    path = search_path(net.inputs, net.output, net.sizes, optimizer)
    path, sliced = _fit(net, path, dtype, max_memory, what)
    if disk is not None:
        disk.put(disk_key, path, sliced)
    return path, sliced


def _search_on_process_0(net: Network, dtype, max_memory, optimizer, cache_dir, what):
    """:func:`_search` on JAX process 0, its result broadcast to every process (in one
    process: the same result, through the same encoding)."""
    import jax

    from qtn.simulation.scaleout import broadcast_path

    path, sliced, error = None, (), None
    if jax.process_index() == 0:
        try:
            path, sliced = _search(net, dtype, max_memory, optimizer, cache_dir, what)
        except ContractionTooLargeError as e:  # the other processes must not wait forever
            error = e
    try:
        return broadcast_path(net, path, sliced, None if error is None else str(error))
    except ContractionTooLargeError:
        if error is not None:
            raise error from None
        raise


def _check_sizes(net: Network, itemsize: int, limit: int, what: str, results: int = 0) -> None:
    """The result (with ``results`` more copies) and every input tensor must fit."""
    out = math.prod(net.sizes[ix] for ix in net.output) * itemsize * (1 + results)
    if out > limit:
        copies = f", with {results} copies for the results," if results else ""
        raise too_large(f"the {what} result{copies} ({len(net.output)} open indices)", out,
                        limit, "ask for fewer qubits or inputs, or raise max_memory")  # fmt: skip
    for p, term in enumerate(net.inputs):
        size = math.prod(net.sizes[ix] for ix in term) * itemsize
        if size > limit:
            raise too_large(
                f"a dense tensor of the {what} network (input {p}, {len(term)} indices: a large "
                "unitary, channel or MPS core)", size, limit,
            )  # fmt: skip


#: a greedy estimate this many times over the limit is refused without a search
_HOPELESS = 2.0**32


def _peak(net: Network, path, cdt: str, sliced=()) -> float:
    """Peak bytes of the program of ``path`` (one sample), folding included."""
    prog = build_program(net.inputs, net.output, net.sizes, path, consts=net.consts,
                         sliced=sliced, dtype=cdt, fold=False)  # fmt: skip
    return max(prog.peak_bytes(1), prog.fold_bytes)


def _fit(net: Network, path, dtype: str, limit: int, what: str):
    """``(path, sliced)`` whose program fits ``limit`` (slicing if need be), else raise."""
    cdt = DTYPES[dtype][0]

    def peak(sliced):
        return _peak(net, path, cdt, sliced)

    need = peak(())
    if need <= limit:
        return path, ()
    if need > limit * _MAX_SLICES:  # no slicing helps: each sliced index at best halves the peak
        raise ContractionTooLargeError(
            f"the {what} contraction needs an estimated {format_bytes(need)} ({int(need):,} "
            f"bytes), more than max_memory = {format_bytes(limit)} ({int(limit):,} bytes) times "
            f"the {_MAX_SLICES:,} slices qtn allows; ask for fewer output qubits, or a "
            "shallower circuit"
        )
    import cotengra as ctg

    itemsize = np.dtype(cdt).itemsize
    tree = ctg.ContractionTree.from_path(net.inputs, net.output, net.sizes, ssa_path=path)
    target = max(limit // (4 * itemsize), 2)
    sliced, best = (), need
    for _ in range(12):  # lower cotengra's size target until the whole program fits
        try:
            st = tree.slice(target_size=target, allow_outer=False, seed=0)
        except (RuntimeError, KeyError, ValueError):
            break  # cotengra ran out of valid indices to slice
        cand = tuple(st.sliced_inds)
        n_slices = math.prod(net.sizes[ix] for ix in cand)
        if n_slices > _MAX_SLICES:
            break
        got = peak(cand)
        if got < best:
            sliced, best = cand, got
        if got <= limit:
            return path, cand
        if target <= 2:
            break
        target = max(target // 2, 2)
    raise ContractionTooLargeError(
        f"the {what} contraction needs an estimated {format_bytes(need)} ({int(need):,} bytes) "
        f"unsliced and {format_bytes(best)} at best with "
        f"{len(sliced)} sliced indices, more than max_memory = {format_bytes(limit)} "
        f"({int(limit):,} bytes); ask for fewer output qubits, or raise max_memory"
    )
