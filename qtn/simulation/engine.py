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

Scope today: unitary circuits (gates only). Measure/reset/discard and noise
channels need density-matrix networks, which are not built yet; use the dense
oracle (:func:`qtn.simulation.density_matrix`) for those meanwhile.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

import numpy as np

from qtn._jax import x64_if
from qtn.circuit import GATES, Circuit, Feature, Gate, Trainable

__all__ = ["Simulator", "simulate", "PLAN_STATS", "clear_plan_cache"]

#: number of contraction-tree searches run and plan-cache hits, process-wide
PLAN_STATS = {"searches": 0, "hits": 0}
_PLANS: dict = {}

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


def _structure_key(circuit: Circuit) -> tuple:
    parts: list = [circuit.n_qubits]
    for op in circuit.ops:
        if not isinstance(op, Gate):
            parts.append((type(op).__name__, op.qubits))
            continue
        angles = tuple(
            a if isinstance(a, Trainable | Feature) else ("c", float(a)) for a in op.angles
        )
        mat = hashlib.sha1(op.matrix.tobytes()).hexdigest() if op.name == "unitary" else None
        parts.append((op.name, op.qubits, angles, mat))
    return tuple(parts)


def _symbolic(op: Gate) -> bool:
    return any(isinstance(a, Trainable | Feature) for a in op.angles)


@dataclass
class _Network:
    inputs: list = field(default_factory=list)
    consts: dict = field(default_factory=dict)  # position -> numpy array
    variable: list = field(default_factory=list)  # (position, op, conj) in position order
    output: tuple = ()


def _build(circuit: Circuit, quantity: tuple) -> _Network:
    from cotengra import get_symbol

    n = circuit.n_qubits
    net = _Network()
    # single-character index names: the searched tree is reused as is by the expression
    names = (get_symbol(k) for k in itertools.count())

    def half(conj: bool) -> list[str]:
        wire = [next(names) for _ in range(n)]
        for q in range(n):
            net.inputs.append((wire[q],))
            net.consts[len(net.inputs) - 1] = np.array([1.0, 0.0], dtype=complex)
        for op in circuit.ops:
            outs = [next(names) for _ in op.qubits]
            net.inputs.append((*outs, *[wire[q] for q in op.qubits]))
            pos = len(net.inputs) - 1
            if _symbolic(op):
                net.variable.append((pos, op, conj))
            else:
                m = op.numeric_matrix().reshape((2,) * (2 * len(op.qubits)))
                net.consts[pos] = m.conj() if conj else m
            for q, o in zip(op.qubits, outs):
                wire[q] = o
        return wire

    kind = quantity[0]
    ket = half(False)
    if kind == "state":
        net.output = tuple(ket)
        return net
    if kind == "amp":
        for q, b in enumerate(quantity[1]):
            net.inputs.append((ket[q],))
            net.consts[len(net.inputs) - 1] = np.eye(2, dtype=complex)[b]
        return net
    bra = half(True)
    ops = dict(quantity[1]) if kind == "expect" else {}
    rename = {bra[q]: ket[q] for q in range(n) if q not in ops}
    net.inputs = [tuple(rename.get(i, i) for i in term) for term in net.inputs]
    for q, p in ops.items():
        net.inputs.append((bra[q], ket[q]))
        net.consts[len(net.inputs) - 1] = _PAULI[p]
    net.output = tuple(ket[q] for q in quantity[1]) if kind == "probs" else ()
    return net


def _gate_tensor(op: Gate, conj: bool, theta, x, jnp):
    vals = []
    for a in op.angles:
        if isinstance(a, Trainable):
            vals.append(a.scale * theta[a.index] + a.offset)
        elif isinstance(a, Feature):
            vals.append(a.scale * x[a.index] + a.offset)
        else:
            vals.append(jnp.asarray(float(a)))
    m = GATES[op.name].matrix(*vals, xp=jnp).reshape((2,) * (2 * len(op.qubits)))
    return jnp.conj(m) if conj else m


class Simulator:
    """Cached, batched simulation of one circuit structure.

    Parameters
    ----------
    circuit
        A unitary :class:`qtn.circuit.Circuit`.
    dtype
        ``"complex64"`` (default) or ``"complex128"`` (JAX x64 is enabled only
        inside the calls).
    optimizer
        A cotengra optimizer with ``.search(inputs, output, size_dict)``; default
        ``cotengra.ReusableHyperOptimizer(max_repeats=32)``, on disk under
        ``cache_dir`` when given.
    cache_dir
        Directory for cotengra's on-disk tree cache.

    Every method takes ``params`` (shape (P,) shared, or (B, P) one vector per
    sample) and ``data`` (shape (F,) or (B, F)); with a batch axis the result
    gets a leading B axis. JAX runs on the GPU when one is present.

    Examples
    --------
    >>> c = Circuit(2).ry(0, Feature(0)).ry(1, Feature(1)).su4((0, 1), start=0)
    >>> sim = simulate(c)
    >>> sim.probs([0], params=np.zeros(15), data=np.random.rand(100, 2)).shape
    (100, 2)
    """

    def __init__(
        self, circuit: Circuit, *, dtype: str = "complex64", optimizer=None, cache_dir=None
    ):
        if not isinstance(circuit, Circuit):
            raise TypeError(f"circuit must be a qtn Circuit, got {type(circuit).__name__}")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
        if not circuit.is_unitary:
            raise NotImplementedError(
                "the contraction engine handles unitary circuits only so far; for measure, "
                "reset, discard or noise use qtn.simulation.density_matrix (dense oracle)"
            )
        self.circuit = circuit
        self.dtype = dtype
        self._key = _structure_key(circuit)
        self._optimizer = optimizer
        self._cache_dir = cache_dir

    # ------------------------------------------------------------------ planning

    def _opt(self):
        if self._optimizer is not None:
            return self._optimizer
        import cotengra as ctg

        return ctg.ReusableHyperOptimizer(
            max_repeats=32, directory=self._cache_dir, progbar=False, parallel=False
        )

    def _plan(self, quantity: tuple, batched: tuple[bool, bool]):
        key = (self._key, quantity, self.dtype)
        entry = _PLANS.get(key)
        if entry is None:
            import cotengra as ctg

            PLAN_STATS["searches"] += 1
            net = _build(self.circuit, quantity)
            size_dict = {i: 2 for term in net.inputs for i in term}
            tree = self._opt().search(net.inputs, net.output, size_dict)
            cdt = _DTYPES[self.dtype][0]
            consts = {p: np.asarray(a, dtype=cdt) for p, a in net.consts.items()}
            if net.variable:
                expr = ctg.array_contract_expression(
                    net.inputs, net.output, size_dict, optimize=tree, constants=consts
                )
            else:  # nothing depends on params or data: contract once, now
                value = ctg.array_contract(
                    [consts[i] for i in range(len(net.inputs))], net.inputs, net.output,
                    size_dict=size_dict, optimize=tree,
                )  # fmt: skip
                expr = lambda *_, backend=None, _v=value: _v  # noqa: E731
            entry = {"net": net, "tree": tree, "expr": expr, "fns": {}}
            _PLANS[key] = entry
        else:
            PLAN_STATS["hits"] += 1
        fn = entry["fns"].get(batched)
        if fn is None:
            fn = self._compile(entry, batched)
            entry["fns"][batched] = fn
        return fn

    def _compile(self, entry, batched):
        import jax
        import jax.numpy as jnp

        net, expr = entry["net"], entry["expr"]
        cdt = _DTYPES[self.dtype][0]

        def single(theta, x):
            arrays = [
                _gate_tensor(op, conj, theta, x, jnp).astype(cdt) for _, op, conj in net.variable
            ]
            return expr(*arrays, backend="jax")

        pb, xb = batched
        if pb or xb:
            single = jax.vmap(single, in_axes=(0 if pb else None, 0 if xb else None))
        return jax.jit(single)

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
            fn = self._plan(quantity, batched)
            return np.asarray(fn(p, x))

    # ------------------------------------------------------------------ quantities

    def probs(self, qubits=None, *, params=None, data=None) -> np.ndarray:
        """Marginal Z-basis probabilities of ``qubits`` (default all), big-endian in that order."""
        n = self.circuit.n_qubits
        qubits = tuple(range(n)) if qubits is None else tuple(int(q) for q in qubits)
        if not qubits or any(not 0 <= q < n for q in qubits) or len(set(qubits)) != len(qubits):
            raise ValueError(f"qubits must be distinct and in [0, {n - 1}], got {qubits}")
        out = self._run(("probs", qubits), params, data)
        lead = out.shape[: out.ndim - len(qubits)]
        return np.real(out).reshape(*lead, 2 ** len(qubits))

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
        """The amplitude <bits|psi> (bits big-endian, qubit 0 first)."""
        bits = tuple(int(b) for b in bits)
        if len(bits) != self.circuit.n_qubits or any(b not in (0, 1) for b in bits):
            raise ValueError(f"bits must be {self.circuit.n_qubits} values of 0/1, got {bits}")
        return self._run(("amp", bits), params, data)

    def statevector(self, *, params=None, data=None) -> np.ndarray:
        """The full statevector, shape (..., 2**n) (small n only)."""
        n = self.circuit.n_qubits
        if n > 20:
            raise ValueError(
                f"statevector of {n} qubits has 2**{n} entries; use probs or amplitude"
            )
        out = self._run(("state",), params, data)
        return out.reshape(*out.shape[: out.ndim - n], 2**n)

    def sample(self, shots: int, qubits=None, *, params=None, data=None, seed=None) -> np.ndarray:
        """Exact samples of ``qubits`` (default all) for one input: (shots, len(qubits)) of 0/1.

        Drawn from the exact marginal distribution (at most 20 qubits), with
        ``numpy.random.default_rng(seed)``; bits are in the order of ``qubits``.
        """
        if not isinstance(shots, int | np.integer) or shots < 1:
            raise ValueError(f"shots must be a positive integer, got {shots!r}")
        n = self.circuit.n_qubits
        qubits = tuple(range(n)) if qubits is None else tuple(int(q) for q in qubits)
        if len(qubits) > 20:
            raise ValueError(
                f"sampling {len(qubits)} qubits needs 2**{len(qubits)} probabilities; max 20"
            )
        for name, arr in (("params", params), ("data", data)):
            if arr is not None and np.ndim(arr) != 1:
                raise ValueError(
                    f"sample takes one input: {name} must be 1-D, got shape {np.shape(arr)}"
                )
        p = np.asarray(self.probs(qubits, params=params, data=data), dtype=np.float64)
        p = np.clip(p, 0, None)
        idx = np.random.default_rng(seed).choice(p.size, size=shots, p=p / p.sum())
        k = len(qubits)
        return ((idx[:, None] >> np.arange(k - 1, -1, -1)) & 1).astype(np.uint8)

    # ------------------------------------------------------------------ differentiable functions

    def expectation_fn(self, paulis):
        """A jitted JAX function ``f(params, data) -> <P>`` (one sample), for ``jax.grad``/``vmap``.

        Example: ``jax.grad(lambda th: sim.expectation_fn("ZI")(th, x))(theta)``.
        """
        fn = self._plan(("expect", self._paulis(paulis)), (False, False))
        return lambda params, data=None: fn(params, _empty(data, params)).real

    def probs_fn(self, qubits):
        """A jitted JAX function ``f(params, data) -> probabilities of qubits`` (one sample)."""
        qubits = tuple(int(q) for q in qubits)
        fn = self._plan(("probs", qubits), (False, False))
        return lambda params, data=None: fn(params, _empty(data, params)).real.reshape(-1)


def _empty(data, like):
    import jax.numpy as jnp

    return jnp.zeros((0,), jnp.asarray(like).real.dtype) if data is None else data


def simulate(circuit: Circuit, **kwargs) -> Simulator:
    """A :class:`Simulator` for ``circuit`` (see its parameters)."""
    return Simulator(circuit, **kwargs)
