"""Contraction plans: searched once per (structure, quantity), cached, compiled, reused.

A :class:`Plan` holds the network of one quantity, its cotengra contraction
tree (sliced when the estimated peak exceeds the memory limit), the
expression with every constant tensor baked in, the builder of the variable
gate tensors, and the compiled functions (per interface and batching). Plans
live in a process-wide cache keyed by the circuit's structure, the input
state, the quantity, the dtype, the memory limit and the optimizer, so new
data or parameters never trigger a new search (:data:`PLAN_STATS` counts
searches and hits).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from qtn.errors import ContractionTooLargeError
from qtn.simulation.network import Network, gate_tensor_builder

__all__ = [
    "Plan",
    "PLAN_STATS",
    "clear_plan_cache",
    "get_plan",
    "parse_bytes",
    "default_memory_limit",
    "check_optimizer",
    "DTYPES",
]

#: number of contraction-tree searches run and plan-cache hits, process-wide
PLAN_STATS = {"searches": 0, "hits": 0}
_PLANS: dict = {}
_MAX_SLICED = 24  # at most 2**24 slices per contraction
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
    tree
        The cotengra ``ContractionTree`` (``tree.sliced_inds`` when sliced).
    peak_bytes
        Estimated peak memory of one contraction (one sample), constants included.
    search_s
        Seconds spent building the network and searching the tree.
    """

    key: tuple
    network: Network
    tree: object
    expr: Callable
    peak_bytes: int
    search_s: float
    dtype: str
    tensors: Callable = field(repr=False, default=None)
    fns: dict = field(repr=False, default_factory=dict)

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

    def function(self, batched: tuple, interface: str = "jax") -> Callable:
        """``f(params, data, state, bra, bits)``, vmapped over the arguments flagged in
        ``batched`` (one flag per name in :data:`ARGS`), jitted under JAX."""
        fn = self.fns.get((interface, batched))
        if fn is None:
            fn = (_compile_jax if interface == "jax" else _compile_numpy)(self, batched)
            self.fns[(interface, batched)] = fn
        return fn


def _compile_jax(plan: Plan, batched):
    import jax
    import jax.numpy as jnp

    def single(theta, x, state, bra, bits):
        return plan.expr(*plan.arrays(theta, x, state, bra, bits, jnp), backend="jax")

    if any(batched):
        single = jax.vmap(single, in_axes=tuple(0 if b else None for b in batched))
    return jax.jit(single)


def _compile_numpy(plan: Plan, batched):
    cdt = DTYPES[plan.dtype][0]

    def single(*args):
        out = plan.expr(*plan.arrays(*args, np), backend="numpy")
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
    """Validate ``optimizer``: None, a preset name, a path optimizer or a factory."""
    if optimizer is None or isinstance(optimizer, str):
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
            "optimizer must be a preset name, a cotengra path optimizer or a factory, got "
            f"{type(optimizer).__name__}"
        )
    return optimizer


def _search(net: Network, optimizer, cache_dir):
    """One contraction-tree search: a fresh optimizer from a factory, the shared
    ReusableHyperOptimizer, or a preset/path optimizer through cotengra."""
    import cotengra as ctg

    opt = optimizer
    if opt is None:
        opt = ctg.ReusableHyperOptimizer(
            max_repeats=32, directory=cache_dir, progbar=False, parallel=False
        )
    elif callable(opt) and not isinstance(opt, ctg.PathOptimizer):
        opt = opt()  # a factory: one fresh (single-use) optimizer per search
    if isinstance(opt, ctg.HyperOptimizer | ctg.ReusableHyperOptimizer):
        return opt.search(net.inputs, net.output, net.sizes)
    return ctg.array_contract_tree(net.inputs, net.output, net.sizes, optimize=opt)


def get_plan(
    key: tuple,
    build: Callable[[], Network],
    *,
    dtype: str,
    max_memory: int,
    optimizer=None,
    cache_dir=None,
    what: str = "",
) -> Plan:
    """The cached plan for ``key``, or a new one: build the network, search, slice, compile."""
    plan = _PLANS.get(key)
    if plan is not None:
        PLAN_STATS["hits"] += 1
        return plan
    import cotengra as ctg

    PLAN_STATS["searches"] += 1
    t0 = time.perf_counter()
    net = build()
    tree = _search(net, optimizer, cache_dir)
    itemsize = np.dtype(DTYPES[dtype][0]).itemsize
    peak = tree.peak_size() * itemsize
    if peak > max_memory:
        # inputs stay whole; slice until the intermediates fit the remaining budget
        target = max((max_memory - net.input_bytes(itemsize)) // (3 * itemsize), 2)
        try:
            tree = tree.slice(target_size=target, allow_outer=False)
        except RuntimeError as exc:  # "Ran out of valid indices to slice"
            raise ContractionTooLargeError(
                f"the {what} contraction needs an estimated {peak / 2**20:.4g} MiB and cannot "
                f"be sliced under max_memory = {max_memory / 2**20:.4g} MiB ({exc})"
            ) from None
        peak = tree.peak_size() * itemsize
        if peak > max_memory or len(tree.sliced_inds) > _MAX_SLICED:
            raise ContractionTooLargeError(
                f"the {what} contraction needs an estimated {peak / 2**20:.4g} MiB even after "
                f"slicing {len(tree.sliced_inds)} indices (at most {_MAX_SLICED}); max_memory "
                f"is {max_memory / 2**20:.4g} MiB (ask for fewer output qubits, or raise "
                "max_memory)"
            )
    cdt = DTYPES[dtype][0]
    consts = {p: np.asarray(a, dtype=cdt) for p, a in net.consts.items()}
    if tree.sliced_inds:
        expr = _sliced_expression(tree, net, consts)
    elif net.slots:
        expr = ctg.array_contract_expression(
            net.inputs, net.output, net.sizes, optimize=tree, constants=consts
        )
    else:  # nothing depends on params, data or states: contract once, now
        value = ctg.array_contract(
            [consts[i] for i in range(len(net.inputs))], net.inputs, net.output,
            size_dict=net.sizes, optimize=tree,
        )  # fmt: skip
        expr = lambda *_, backend=None, _v=value: _v  # noqa: E731
    plan = Plan(
        key=key, network=net, tree=tree, expr=expr, peak_bytes=int(peak),
        search_s=time.perf_counter() - t0, dtype=dtype,
        tensors=gate_tensor_builder(net.gate_slots),
    )  # fmt: skip
    _PLANS[key] = plan
    return plan


def _sliced_expression(tree, net: Network, consts: dict):
    """``expr(*variable_arrays, backend)`` for a sliced tree: the slices are summed exactly.

    Under JAX the sum is a ``lax.scan`` over slice numbers (each slice selected
    with dynamic indexing), so compile time and memory do not grow with the
    number of slices; numpy uses cotengra's own sliced contraction.
    """
    variable_pos = [pos for pos, _, _ in net.slots]
    sliced = list(tree.sliced_inds)
    n_slices = int(np.prod([net.sizes[ix] for ix in sliced]))

    def full(arrays):
        out = [None] * len(net.inputs)
        for pos, arr in consts.items():
            out[pos] = arr
        for pos, arr in zip(variable_pos, arrays):
            out[pos] = arr
        return out

    def expr(*arrays, backend="jax"):
        if backend != "jax":
            return tree.contract(full(arrays), backend="numpy")
        import jax
        import jax.numpy as jnp

        everything = [jnp.asarray(a) for a in full(arrays)]
        dims = [net.sizes[ix] for ix in sliced]

        def body(acc, s):
            values, rest = {}, s
            for ix, d in zip(reversed(sliced), reversed(dims)):
                values[ix], rest = rest % d, rest // d
            parts = []
            for term, arr in zip(tree.inputs, everything):
                for ax in reversed(range(len(term))):
                    if term[ax] in values:
                        arr = jax.lax.dynamic_index_in_dim(arr, values[term[ax]], ax, False)
                parts.append(arr)
            return acc + tree.contract_core(parts, backend="jax", autojit=False), None

        out_shape = tuple(net.sizes[ix] for ix in tree.output)
        zero = jnp.zeros(out_shape, everything[0].dtype)
        return jax.lax.scan(body, zero, jnp.arange(n_slices))[0]

    return expr


# ----------------------------------------------------------------------------- memory


def default_memory_limit(interface: str) -> int:
    """Half the accelerator's memory under JAX on a GPU, else half the physical RAM."""
    if interface == "jax":
        import jax

        dev = jax.devices()[0]
        if dev.platform != "cpu":
            stats = dev.memory_stats() or {}
            if "bytes_limit" in stats:
                return int(stats["bytes_limit"]) // 2
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def parse_bytes(value) -> int:
    """Bytes from a positive number or a string like ``"2GB"`` / ``"512 MiB"``."""
    if isinstance(value, str):
        units = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
                 "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40, "B": 1}  # fmt: skip
        v = value.strip().upper().replace(" ", "")
        for u, f in units.items():
            if v.endswith(u):
                try:
                    number = float(v[: -len(u)])
                except ValueError:
                    break
                if not np.isfinite(number) or number <= 0:
                    raise ValueError(f"max_memory must be positive, got {value!r}")
                return int(number * f)
        raise ValueError(
            f"max_memory must be a number of bytes or a string like '2GB' (units B, KB, MB, GB, "
            f"TB, KiB, MiB, GiB, TiB), got {value!r}"
        )
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"max_memory must be a positive number of bytes, got {value!r}")
    return int(value)
