"""Circuits as tensor networks: planned once by cotengra, contracted many times on JAX.

A :class:`Simulator` wraps one circuit structure. Each quantity (marginal
probabilities of some qubits, a Pauli expectation value, an amplitude, the
statevector) is a network: the circuit's ket, and for probabilities and
expectations its conjugate bra, joined at the final wires. For every
(structure, quantity, dtype) the network is built and its contraction tree
searched once; the tree and a compiled expression with every fixed gate baked
in as a constant are cached at module level (optionally on disk through
cotengra's ``ReusableHyperOptimizer``). A call then only builds the
parameterised gate tensors from (params, data) and runs the jitted, vmapped
expression, so new data or parameters never trigger a new search
(:data:`PLAN_STATS` counts searches and cache hits).

Pure circuits (gates only) give ket networks for amplitudes and statevectors.
Measure, reset, discard and noise channels (:mod:`qtn.noise`) make the network
doubled: unitary gates act as U on the ket and U* on the bra wires, and each
non-unitary operation is one superoperator tensor joining both, so
probabilities, expectations and density matrices are exact for mixed states.
Probabilities and expectations keep only the reverse light cone of the
measured qubits: an operation none of whose qubits can still reach them is
the identity once traced out (every operation is trace preserving).

Memory is bounded: a contraction whose estimated peak exceeds ``max_memory``
is sliced by cotengra (slices summed exactly), batches are chunked to fit, and
what cannot fit raises :class:`qtn.errors.ContractionTooLargeError`. The
``numpy`` backend evaluates the same cached expressions without JAX.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

import numpy as np

from qtn._jax import x64_if
from qtn.circuit import GATES, Circuit, Feature, Gate, Measure, Noise, Trainable
from qtn.errors import ContractionTooLargeError
from qtn.noise import NoiseModel

__all__ = ["Simulator", "simulate", "PLAN_STATS", "clear_plan_cache"]

#: number of contraction-tree searches run and plan-cache hits, process-wide
PLAN_STATS = {"searches": 0, "hits": 0}
_PLANS: dict = {}
_MAX_SLICED = 24  # at most 2**24 slices per contraction

_PAULI = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.diag([1.0, -1.0]).astype(complex),
}
_DTYPES = {"complex64": ("complex64", "float32"), "complex128": ("complex128", "float64")}


def clear_plan_cache() -> None:
    """Forget every cached contraction plan and compiled expression."""
    _PLANS.clear()


def _symbolic(op: Gate) -> bool:
    return any(isinstance(a, Trainable | Feature) for a in op.angles)


def _superoperator(op) -> np.ndarray:
    """S[out_ket.., out_bra.., in_ket.., in_bra..] of a non-unitary operation, as (2,)*4k."""
    if isinstance(op, Noise):
        return op.channel.superoperator().reshape((2,) * (4 * len(op.qubits)))
    s = np.zeros((2, 2, 2, 2), dtype=complex)
    if isinstance(op, Measure):  # dephasing: keep the diagonal
        s[0, 0, 0, 0] = s[1, 1, 1, 1] = 1.0
    else:  # Reset, Discard: trace out, leave |0>
        s[0, 0, 0, 0] = s[0, 0, 1, 1] = 1.0
    return s


@dataclass
class _Network:
    inputs: list = field(default_factory=list)
    consts: dict = field(default_factory=dict)  # position -> numpy array
    variable: list = field(default_factory=list)  # (position, op, conj) in position order
    proj: list = field(default_factory=list)  # (position, prefix slot): one-hot inputs ("cond")
    output: tuple = ()

    def add(self, term, array=None) -> int:
        self.inputs.append(tuple(term))
        if array is not None:
            self.consts[len(self.inputs) - 1] = array
        return len(self.inputs) - 1


def _build(circuit: Circuit, quantity: tuple) -> _Network:
    """The network of ``quantity``: the ket alone (state, amp) or ket and bra (doubled)."""
    from cotengra import get_symbol

    n = circuit.n_qubits
    net = _Network()
    # single-character index names: the searched tree is reused as is by the expression
    names = (get_symbol(k) for k in itertools.count())
    kind = quantity[0]
    doubled = kind in ("probs", "expect", "dm", "cond")
    halves = [(False, [next(names) for _ in range(n)])]
    if doubled:
        halves.append((True, [next(names) for _ in range(n)]))
    for _, wire in halves:
        for q in range(n):
            net.add((wire[q],), np.array([1.0, 0.0], dtype=complex))
    kept = circuit.ops
    if kind in ("probs", "expect", "cond"):
        live = {q for q, _ in quantity[1]} if kind == "expect" else set(quantity[1])
        if kind == "cond":
            live |= set(quantity[2])
        kept = _light_cone(kept, live)
    for op in kept:
        if isinstance(op, Gate):
            for conj, wire in halves:
                outs = [next(names) for _ in op.qubits]
                term = (*outs, *[wire[q] for q in op.qubits])
                if _symbolic(op):
                    net.variable.append((net.add(term), op, conj))
                else:
                    m = op.numeric_matrix().reshape((2,) * (2 * len(op.qubits)))
                    net.add(term, m.conj() if conj else m)
                for q, o in zip(op.qubits, outs):
                    wire[q] = o
            continue
        if not doubled:  # guarded by the Simulator; kept as an internal invariant
            raise AssertionError("non-unitary operation in a pure-state network")
        (_, ket), (_, bra) = halves
        ok = [next(names) for _ in op.qubits]
        ob = [next(names) for _ in op.qubits]
        term = (*ok, *ob, *[ket[q] for q in op.qubits], *[bra[q] for q in op.qubits])
        net.add(term, _superoperator(op))
        for q, a, b in zip(op.qubits, ok, ob):
            ket[q], bra[q] = a, b

    ket = halves[0][1]
    if kind == "state":
        net.output = tuple(ket)
        return net
    if kind == "amp":
        for q, b in enumerate(quantity[1]):
            net.add((ket[q],), np.eye(2, dtype=complex)[b])
        return net
    bra = halves[1][1]
    if kind == "dm":
        net.output = (*ket, *bra)
        return net
    if kind == "cond":  # P(prefix = bits, block): prefix projected by one-hot inputs
        prefix, block = quantity[1], quantity[2]
        rename = {bra[q]: ket[q] for q in range(n) if q not in prefix}
        net.inputs = [tuple(rename.get(i, i) for i in term) for term in net.inputs]
        for j, q in enumerate(prefix):
            net.proj.append((net.add((ket[q],)), j))
            net.proj.append((net.add((bra[q],)), j))
        net.output = tuple(ket[q] for q in block)
        return net
    ops = dict(quantity[1]) if kind == "expect" else {}
    rename = {bra[q]: ket[q] for q in range(n) if q not in ops}
    net.inputs = [tuple(rename.get(i, i) for i in term) for term in net.inputs]
    for q, p in ops.items():
        net.add((bra[q], ket[q]), _PAULI[p])
    net.output = tuple(ket[q] for q in quantity[1]) if kind == "probs" else ()
    return net


def _light_cone(ops, live: set) -> list:
    """The operations that can affect the qubits in ``live`` at the end.

    Walking backwards, an operation none of whose qubits is live is dropped:
    every operation is trace preserving (unitary gates, CPTP channels,
    measure, reset, discard), so once its outputs are traced out it equals
    the identity (U^dagger U = 1 for gates). An operation that touches a live
    qubit makes all its qubits live. quimb's ``Circuit`` marginals use the same
    reverse light cone.
    """
    live = set(live)
    kept = []
    for op in reversed(ops):
        if live.intersection(op.qubits):
            kept.append(op)
            live.update(op.qubits)
    return kept[::-1]


def _gate_stack(variable: list):
    """``tensors(theta, x, xp)``: the parameterised gate tensors of ``variable``, in order.

    Gates of one kind are built together: their angles are gathered into one
    (k, n_angles) array and the matrix function runs once, vmapped under JAX.
    A circuit with 30 SU(4) blocks thus traces one SU(4) construction rather
    than 60 (ket and bra), which keeps compile time flat in the gate count.
    """
    uniq: dict = {}
    for _, op, _ in variable:
        uniq.setdefault(id(op), op)
    groups: dict = {}
    for uid, op in uniq.items():
        # gates without data-bound angles form their own groups: under vmap over data
        # they stay unbatched (built once per call, not once per sample)
        data_bound = any(isinstance(a, Feature) for a in op.angles)
        groups.setdefault((op.name, data_bound), []).append((uid, op))
    plans = []
    for (name, data_bound), members in groups.items():
        kind = np.array([[0 if isinstance(a, Trainable) else 1 if isinstance(a, Feature) else 2
                          for a in op.angles] for _, op in members])  # fmt: skip
        index = np.array([[getattr(a, "index", 0) for a in op.angles] for _, op in members])
        scale = np.array([[a.scale if isinstance(a, Trainable | Feature) else 0.0
                           for a in op.angles] for _, op in members])  # fmt: skip
        offset = np.array([[a.offset if isinstance(a, Trainable | Feature) else float(a)
                            for a in op.angles] for _, op in members])  # fmt: skip
        uids = [uid for uid, _ in members]
        plans.append((GATES[name].matrix, uids, kind, index, scale, offset, data_bound))

    def tensors(theta, x, xp, cdt):
        n_p, n_f = theta.shape[0], x.shape[0]
        one = xp.ones(1, theta.dtype)
        src_p = xp.concatenate([theta, one])
        src_x = xp.concatenate([theta, xp.asarray(x, dtype=theta.dtype), one])
        mats = {}
        for fn, uids, kind, index, scale, offset, data_bound in plans:
            if data_bound:
                src = src_x
                gather = np.where(kind == 0, index, np.where(kind == 1, n_p + index, n_p + n_f))
            else:
                src = src_p
                gather = np.where(kind == 0, index, n_p)
            angles = xp.asarray(scale, theta.dtype) * src[gather] + xp.asarray(offset, theta.dtype)
            if xp is np:
                stack = np.stack([fn(*row, xp=np) for row in angles])
            else:
                import jax

                k = angles.shape[1]
                stack = jax.vmap(lambda row, fn=fn, k=k: fn(*[row[i] for i in range(k)], xp=xp))(
                    angles
                )
            stack = stack.astype(cdt)
            for j, uid in enumerate(uids):
                mats[uid] = stack[j]
        out = []
        for _, op, conj in variable:
            m = mats[id(op)].reshape((2,) * (2 * len(op.qubits)))
            out.append(xp.conj(m) if conj else m)
        return out

    return tensors


def _default_memory_limit(backend: str) -> int:
    """Half the accelerator's memory under JAX on a GPU, else half the physical RAM."""
    if backend == "jax":
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


def _parse_bytes(value) -> int:
    if isinstance(value, str):
        units = {"KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40, "B": 1}
        v = value.strip().upper()
        for u, f in units.items():
            if v.endswith(u):
                try:
                    return int(float(v[: -len(u)]) * f)
                except ValueError:
                    break
        raise ValueError(f"max_memory must be bytes or a string like '2GB', got {value!r}")
    if not isinstance(value, int | float | np.integer | np.floating) or value <= 0:
        raise ValueError(f"max_memory must be a positive number of bytes, got {value!r}")
    return int(value)


class Simulator:
    """Cached, batched simulation of one circuit structure.

    Parameters
    ----------
    circuit
        A :class:`qtn.circuit.Circuit`. Gates only: pure-state networks.
        With measure, reset, discard or noise operations (or a ``noise`` model),
        probabilities and expectations come from the density-matrix (doubled)
        network and amplitudes/statevectors are unavailable.
    noise
        A :class:`qtn.noise.NoiseModel`: its channels are inserted after the
        gates they match and its readout errors act on ``probs`` and ``sample``.
    dtype
        ``"complex64"`` (default) or ``"complex128"`` (JAX x64 is enabled only
        inside the calls).
    backend
        ``"jax"`` (default: jitted and vmapped, on the GPU when one is present)
        or ``"numpy"`` (the same cached contraction, evaluated by numpy one
        sample at a time; for machines without JAX or for debugging).
    max_memory
        Bytes (or ``"4GB"``) one contraction may use. Contractions whose
        estimated peak exceeds it are sliced by cotengra (the slices are summed
        exactly) and batches are split into chunks that fit. Default: half the
        GPU memory under JAX on a GPU, else half the physical RAM. A contraction
        that cannot be sliced to fit raises :class:`qtn.errors.ContractionTooLargeError`
        stating the estimated size.
    optimizer
        How contraction trees are searched: a preset name such as ``"greedy"``,
        a ``cotengra.ReusableHyperOptimizer`` (shared by all searches), or a
        zero-argument factory returning a fresh optimizer per search, e.g.
        ``lambda: cotengra.HyperOptimizer(minimize="write")``. A bare
        ``HyperOptimizer`` instance is refused: cotengra makes it single-use,
        and one simulator searches one tree per quantity. Default
        ``cotengra.ReusableHyperOptimizer(max_repeats=32)``, on disk under
        ``cache_dir`` when given.
    cache_dir
        Directory for cotengra's on-disk tree cache.

    Every method takes ``params`` (shape (P,) shared, or (B, P) one vector per
    sample) and ``data`` (shape (F,) or (B, F)); with a batch axis the result
    gets a leading B axis.

    Examples
    --------
    >>> c = Circuit(2).ry(0, Feature(0)).ry(1, Feature(1)).su4((0, 1), start=0)
    >>> sim = simulate(c)
    >>> sim.probs([0], params=np.zeros(15), data=np.random.rand(100, 2)).shape
    (100, 2)
    """

    def __init__(
        self,
        circuit: Circuit,
        *,
        noise: NoiseModel | None = None,
        dtype: str = "complex64",
        backend: str = "jax",
        max_memory=None,
        optimizer=None,
        cache_dir=None,
    ):
        if not isinstance(circuit, Circuit):
            raise TypeError(f"circuit must be a qtn Circuit, got {type(circuit).__name__}")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
        if backend not in ("jax", "numpy"):
            raise ValueError(f"backend must be 'jax' or 'numpy', got {backend!r}")
        if noise is not None and not isinstance(noise, NoiseModel):
            raise TypeError(f"noise must be a qtn.noise.NoiseModel, got {type(noise).__name__}")
        self.circuit = circuit
        self.noise = noise
        self.dtype = dtype
        self.backend = backend
        self._net_circuit = circuit if noise is None else noise.apply(circuit)
        self._key = self._net_circuit.structure_key()
        self._max_memory = None if max_memory is None else _parse_bytes(max_memory)
        self._optimizer = _check_optimizer(optimizer)
        self._cache_dir = cache_dir

    @property
    def is_pure(self) -> bool:
        """True when the simulated circuit (with noise) is unitary: a pure final state."""
        return self._net_circuit.is_unitary

    @property
    def max_memory(self) -> int:
        if self._max_memory is None:
            self._max_memory = _default_memory_limit(self.backend)
        return self._max_memory

    # ------------------------------------------------------------------ planning

    def _search(self, net: _Network, size_dict: dict):
        """One contraction-tree search: a fresh optimizer from a factory, the shared
        ReusableHyperOptimizer, or a preset/path optimizer through cotengra."""
        import cotengra as ctg

        opt = self._optimizer
        if opt is None:
            opt = ctg.ReusableHyperOptimizer(
                max_repeats=32, directory=self._cache_dir, progbar=False, parallel=False
            )
        elif callable(opt) and not isinstance(opt, ctg.PathOptimizer):
            opt = opt()  # a factory: one fresh (single-use) optimizer per search
        if isinstance(opt, ctg.HyperOptimizer | ctg.ReusableHyperOptimizer):
            return opt.search(net.inputs, net.output, size_dict)
        return ctg.array_contract_tree(net.inputs, net.output, size_dict, optimize=opt)

    def _entry(self, quantity: tuple) -> dict:
        key = (self._key, quantity, self.dtype, self.max_memory)
        entry = _PLANS.get(key)
        if entry is not None:
            PLAN_STATS["hits"] += 1
            return entry
        import cotengra as ctg

        PLAN_STATS["searches"] += 1
        net = _build(self._net_circuit, quantity)
        size_dict = {i: 2 for term in net.inputs for i in term}
        tree = self._search(net, size_dict)
        itemsize = np.dtype(_DTYPES[self.dtype][0]).itemsize
        peak = tree.peak_size() * itemsize
        if peak > self.max_memory:
            # inputs stay whole; slice until the intermediates fit the remaining budget
            inputs = sum(2 ** len(t) for t in net.inputs) * itemsize
            target = max((self.max_memory - inputs) // (3 * itemsize), 2)
            tree = tree.slice(target_size=target, allow_outer=False)
            peak = tree.peak_size() * itemsize
            if peak > self.max_memory or len(tree.sliced_inds) > _MAX_SLICED:
                raise ContractionTooLargeError(
                    f"the {quantity[0]!r} contraction of this {self.circuit.n_qubits}-qubit "
                    f"circuit needs an estimated {peak / 2**20:.4g} MiB even after slicing "
                    f"{len(tree.sliced_inds)} indices (at most {_MAX_SLICED}); max_memory is "
                    f"{self.max_memory / 2**20:.4g} MiB (ask for fewer output qubits, or "
                    "raise max_memory)"
                )
        cdt = _DTYPES[self.dtype][0]
        consts = {p: np.asarray(a, dtype=cdt) for p, a in net.consts.items()}
        if tree.sliced_inds:
            expr = _sliced_expression(tree, net, consts)
        elif net.variable or net.proj:
            expr = ctg.array_contract_expression(
                net.inputs, net.output, size_dict, optimize=tree, constants=consts
            )
        else:  # nothing depends on params or data: contract once, now
            value = ctg.array_contract(
                [consts[i] for i in range(len(net.inputs))], net.inputs, net.output,
                size_dict=size_dict, optimize=tree,
            )  # fmt: skip
            expr = lambda *_, backend=None, _v=value: _v  # noqa: E731
        entry = {"net": net, "tree": tree, "expr": expr, "fns": {}, "peak": peak,
                 "tensors": _gate_stack(net.variable)}  # fmt: skip
        _PLANS[key] = entry
        return entry

    def _plan(self, quantity: tuple, batched: tuple[bool, bool], backend: str | None = None):
        return self._fn(self._entry(quantity), batched, backend)

    def _fn(self, entry: dict, batched: tuple[bool, bool], backend: str | None = None):
        backend = backend or self.backend
        fn = entry["fns"].get((backend, batched))
        if fn is None:
            fn = (self._compile_jax if backend == "jax" else self._compile_numpy)(entry, batched)
            entry["fns"][(backend, batched)] = fn
        return fn

    def _compile_jax(self, entry, batched):
        import jax
        import jax.numpy as jnp

        expr, tensors = entry["expr"], entry["tensors"]
        cdt = _DTYPES[self.dtype][0]

        def single(theta, x):
            return expr(*tensors(theta, x, jnp, cdt), backend="jax")

        pb, xb = batched
        if pb or xb:
            single = jax.vmap(single, in_axes=(0 if pb else None, 0 if xb else None))
        return jax.jit(single)

    def _compile_numpy(self, entry, batched):
        expr, tensors = entry["expr"], entry["tensors"]
        cdt = _DTYPES[self.dtype][0]

        def single(theta, x):
            return np.asarray(expr(*tensors(theta, x, np, cdt), backend="numpy"), dtype=cdt)

        pb, xb = batched
        if not (pb or xb):
            return single

        def looped(p, x):
            size = p.shape[0] if pb else x.shape[0]
            return np.stack([single(p[i] if pb else p, x[i] if xb else x) for i in range(size)])

        return looped

    # ------------------------------------------------------------------ inputs

    def _inputs(self, params, data):
        c = self.circuit
        rdt = _DTYPES[self.dtype][1]
        p = np.zeros((0,), rdt) if params is None else np.asarray(params, dtype=rdt)
        x = np.zeros((0,), rdt) if data is None else np.asarray(data, dtype=rdt)
        for name, arr, need in (("params", p, c.n_params), ("data", x, c.n_features)):
            if arr.ndim not in (1, 2):
                raise ValueError(f"{name} must have shape (n,) or (batch, n), got {arr.shape}")
            if arr.shape[-1] < need:
                raise ValueError(
                    f"{name} has {arr.shape[-1]} values per sample; the circuit needs {need}"
                )
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} contains NaN or inf")
        if p.ndim == 2 and x.ndim == 2 and p.shape[0] != x.shape[0]:
            raise ValueError(f"params and data batch sizes differ: {p.shape[0]} vs {x.shape[0]}")
        return p, x, (p.ndim == 2, x.ndim == 2)

    def _run(self, quantity, params, data):
        p, x, batched = self._inputs(params, data)
        with x64_if("float64" if self.dtype == "complex128" else "float32"):
            entry = self._entry(quantity)
            fn = self._fn(entry, batched)
            size = p.shape[0] if batched[0] else x.shape[0] if batched[1] else 1
            chunk = max(1, int(self.max_memory // max(entry["peak"], 1)))
            if size <= chunk or self.backend == "numpy":
                return np.asarray(fn(p, x))
            # a batch that does not fit at once: equal chunks (the last one padded), one compile
            parts = []
            for lo in range(0, size, chunk):
                sl = [a[lo : lo + chunk] if b else a for a, b in zip((p, x), batched)]
                m = (sl[0] if batched[0] else sl[1]).shape[0]
                sl = [np.concatenate([a, np.repeat(a[-1:], chunk - m, 0)]) if b and m < chunk
                      else a for a, b in zip(sl, batched)]  # fmt: skip
                parts.append(np.asarray(fn(*sl))[:m])
            return np.concatenate(parts)

    def _need_pure(self, what: str):
        if not self.is_pure:
            raise ValueError(
                f"{what} needs a pure state, but this circuit has measure/reset/discard or "
                "noise operations; use probs, expectation or density_matrix"
            )

    def _qubits(self, qubits) -> tuple:
        n = self.circuit.n_qubits
        qubits = tuple(range(n)) if qubits is None else tuple(int(q) for q in qubits)
        if not qubits or any(not 0 <= q < n for q in qubits) or len(set(qubits)) != len(qubits):
            raise ValueError(f"qubits must be distinct and in [0, {n - 1}], got {qubits}")
        return qubits

    # ------------------------------------------------------------------ quantities

    def probs(self, qubits=None, *, params=None, data=None) -> np.ndarray:
        """Marginal Z-basis probabilities of ``qubits`` (default all), big-endian in that order.

        Readout errors of the noise model are applied.
        """
        qubits = self._qubits(qubits)
        out = self._run(("probs", qubits), params, data)
        lead = out.shape[: out.ndim - len(qubits)]
        p = np.real(out).reshape(*lead, 2 ** len(qubits))
        return p if self.noise is None else self.noise.apply_readout(p, qubits)

    def expectation(self, paulis, *, params=None, data=None) -> np.ndarray:
        """Expectation value of a Pauli string: ``"ZIX"`` (one letter per qubit) or ``{q: "Z"}``."""
        return np.real(self._run(("expect", self._paulis(paulis)), params, data))

    def _paulis(self, paulis) -> tuple:
        """Normalise ``"ZIX"`` or ``{q: "Z"}`` to sorted ((qubit, letter), ...), validated."""
        n = self.circuit.n_qubits
        if isinstance(paulis, str):
            if len(paulis) != n:
                raise ValueError(f"Pauli string {paulis!r} must have one letter per qubit ({n})")
            paulis = {q: p for q, p in enumerate(paulis.upper()) if p != "I"}
        ops = tuple(sorted((int(q), str(p).upper()) for q, p in dict(paulis).items()))
        for q, p in ops:
            if not 0 <= q < n or p not in _PAULI:
                raise ValueError(
                    f"bad Pauli term ({q}, {p!r}): qubits in [0, {n - 1}], letters IXYZ"
                )
        return ops

    def amplitude(self, bits, *, params=None, data=None) -> np.ndarray:
        """The amplitude <bits|psi> (bits big-endian, qubit 0 first); pure states only."""
        self._need_pure("amplitude")
        bits = tuple(int(b) for b in bits)
        if len(bits) != self.circuit.n_qubits or any(b not in (0, 1) for b in bits):
            raise ValueError(f"bits must be {self.circuit.n_qubits} values of 0/1, got {bits}")
        return self._run(("amp", bits), params, data)

    def statevector(self, *, params=None, data=None) -> np.ndarray:
        """The full statevector, shape (..., 2**n) (small n, pure states only)."""
        self._need_pure("statevector")
        n = self.circuit.n_qubits
        if n > 20:
            raise ValueError(
                f"statevector of {n} qubits has 2**{n} entries; use probs or amplitude"
            )
        out = self._run(("state",), params, data)
        return out.reshape(*out.shape[: out.ndim - n], 2**n)

    def density_matrix(self, *, params=None, data=None) -> np.ndarray:
        """The full density matrix, shape (..., 2**n, 2**n) (at most 10 qubits)."""
        n = self.circuit.n_qubits
        if n > 10:
            raise ValueError(f"density_matrix of {n} qubits has 4**{n} entries; max 10 qubits")
        out = self._run(("dm",), params, data)
        return out.reshape(*out.shape[: out.ndim - 2 * n], 2**n, 2**n)

    def sample(self, shots: int, qubits=None, *, params=None, data=None, seed=None) -> np.ndarray:
        """Exact samples of ``qubits`` (default all) for one input: (shots, len(qubits)) of 0/1.

        Drawn from the exact marginal distribution (with readout errors), with
        ``numpy.random.default_rng(seed)``; bits are in the order of ``qubits``.
        Up to 20 qubits the marginal is computed whole; beyond, qubits are
        sampled in blocks by the chain rule P(b_block | earlier bits), one cached
        network per block evaluated for all shots at once.
        """
        if not isinstance(shots, int | np.integer) or shots < 1:
            raise ValueError(f"shots must be a positive integer, got {shots!r}")
        qubits = self._qubits(qubits)
        for name, arr in (("params", params), ("data", data)):
            if arr is not None and np.ndim(arr) != 1:
                raise ValueError(
                    f"sample takes one input: {name} must be 1-D, got shape {np.shape(arr)}"
                )
        rng = np.random.default_rng(seed)
        if len(qubits) <= 20:
            p = np.asarray(self.probs(qubits, params=params, data=data), dtype=np.float64)
            return _draw(rng, p, shots, len(qubits))
        return self._sample_chain(rng, shots, qubits, params, data)

    def _sample_chain(self, rng, shots, qubits, params, data, block: int = 10):
        p, x, _ = self._inputs(params, data)
        out = np.zeros((shots, len(qubits)), dtype=np.uint8)
        with x64_if("float64" if self.dtype == "complex128" else "float32"):
            for lo in range(0, len(qubits), block):
                prefix, blk = qubits[:lo], qubits[lo : lo + block]
                fn = self._plan_conditional(prefix, blk)
                probs = np.real(np.asarray(fn(p, x, out[:, :lo]))).astype(np.float64)
                probs = np.clip(probs.reshape(shots, -1), 0, None)
                probs /= probs.sum(1, keepdims=True)
                cum = np.cumsum(probs, axis=1)
                idx = (rng.random((shots, 1)) > cum).sum(1).clip(0, probs.shape[1] - 1)
                out[:, lo : lo + len(blk)] = _index_bits(idx, len(blk))
        if self.noise is not None:  # readout errors: independent classical flips per qubit
            for j, q in enumerate(qubits):
                a = self.noise.readout_matrix(q)
                if a is not None:
                    p_flip = np.where(out[:, j] == 0, a[1, 0], a[0, 1])
                    out[:, j] ^= (rng.random(shots) < p_flip).astype(np.uint8)
        return out

    def _plan_conditional(self, prefix: tuple, block: tuple):
        """f(params, data, bits (S, len(prefix))) -> unnormalised P(prefix bits, block), (S, ...).

        The prefix qubits are projected onto the sampled bits by one-hot vectors
        (on the ket and the bra wire) passed as extra inputs, so one plan serves
        every shot.
        """
        entry = self._entry(("cond", prefix, block))
        fn = entry["fns"].get((self.backend, "cond"))
        if fn is not None:
            return fn
        net, expr, tensors = entry["net"], entry["expr"], entry["tensors"]
        cdt = _DTYPES[self.dtype][0]
        order = sorted([(pos, ("gate", k)) for k, (pos, _, _) in enumerate(net.variable)]
                       + [(pos, ("proj", j)) for pos, j in net.proj])  # fmt: skip

        def arrays(theta, x, bits, xp):
            eye = xp.eye(2, dtype=cdt)
            gates = tensors(theta, x, xp, cdt)
            return [gates[v[1]] if v[0] == "gate" else eye[bits[v[1]]] for _, v in order]

        if self.backend == "jax":
            import jax
            import jax.numpy as jnp

            def single(theta, x, bits):
                return expr(*arrays(theta, x, bits, jnp), backend="jax")

            fn = jax.jit(jax.vmap(single, in_axes=(None, None, 0)))
        else:

            def fn(theta, x, bits):
                return np.stack([expr(*arrays(theta, x, b, np), backend="numpy") for b in bits])

        entry["fns"][(self.backend, "cond")] = fn
        return fn

    # ------------------------------------------------------------------ differentiable functions

    def expectation_fn(self, paulis):
        """A jitted JAX function ``f(params, data) -> <P>`` (one sample), for ``jax.grad``/``vmap``.

        Example: ``jax.grad(lambda th: sim.expectation_fn("ZI")(th, x))(theta)``.
        """
        fn = self._plan(("expect", self._paulis(paulis)), (False, False), backend="jax")
        return lambda params, data=None: fn(params, _empty(data, params)).real

    def probs_fn(self, qubits):
        """A jitted JAX function ``f(params, data) -> probabilities of qubits`` (one sample).

        Readout errors of the noise model are applied, differentiably.
        """
        import jax.numpy as jnp

        qubits = self._qubits(qubits)
        fn = self._plan(("probs", qubits), (False, False), backend="jax")
        noise = self.noise

        def f(params, data=None):
            p = fn(params, _empty(data, params)).real.reshape(-1)
            return p if noise is None else noise.apply_readout(p, qubits, xp=jnp)

        return f


def _check_optimizer(optimizer):
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


def _sliced_expression(tree, net: _Network, consts: dict):
    """``expr(*variable_arrays, backend)`` for a sliced tree: the slices are summed exactly.

    Under JAX the sum is a ``lax.scan`` over slice numbers (each slice selected
    with dynamic indexing), so compile time and memory do not grow with the
    number of slices; numpy uses cotengra's own sliced contraction.
    """
    variable_pos = [pos for pos in range(len(net.inputs)) if pos not in consts]
    sliced = list(tree.sliced_inds)
    n_slices = 2 ** len(sliced)

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

        def body(acc, s):
            bits = {ix: (s >> (len(sliced) - 1 - k)) & 1 for k, ix in enumerate(sliced)}
            parts = []
            for term, arr in zip(tree.inputs, everything):
                for ax in reversed(range(len(term))):
                    if term[ax] in bits:
                        arr = jax.lax.dynamic_index_in_dim(arr, bits[term[ax]], ax, False)
                parts.append(arr)
            return acc + tree.contract_core(parts, backend="jax", autojit=False), None

        out_shape = tuple(2 for _ in tree.output)
        zero = jnp.zeros(out_shape, everything[0].dtype)
        return jax.lax.scan(body, zero, jnp.arange(n_slices))[0]

    return expr


def _index_bits(idx: np.ndarray, k: int) -> np.ndarray:
    """Basis-state indices -> (n, k) bits, big-endian."""
    return ((idx[:, None] >> np.arange(k - 1, -1, -1)) & 1).astype(np.uint8)


def _draw(rng, p, shots, k):
    p = np.clip(p, 0, None)
    return _index_bits(rng.choice(p.size, size=shots, p=p / p.sum()), k)


def _empty(data, like):
    import jax.numpy as jnp

    return jnp.zeros((0,), jnp.asarray(like).real.dtype) if data is None else data


def simulate(circuit: Circuit, **kwargs) -> Simulator:
    """A :class:`Simulator` for ``circuit`` (see its parameters)."""
    return Simulator(circuit, **kwargs)
