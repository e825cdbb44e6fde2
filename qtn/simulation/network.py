"""Circuits as tensor networks: the ket or doubled (density-matrix) network of a quantity.

A *quantity* (marginal probabilities, a Pauli expectation, an amplitude, the
statevector, the density matrix, a chain-rule conditional, an overlap with an
MPS bra, a fidelity) is registered in :data:`QUANTITIES` with how it closes the
network. :func:`build_network` lays out

- the input state: |0...0>, a fixed product state, a fixed MPS, or a product
  state given per call (``InitialState``);
- the circuit's operations: unitary gates act as U on the ket wires and U* on
  the bra wires; measure, reset, discard and noise channels are one
  superoperator tensor joining both halves (so the network is doubled);
- the quantity's closing tensors.

Probabilities and expectations keep only the reverse light cone of the
measured qubits (:func:`light_cone`). Index names are single characters from
cotengra's symbol table, so a searched tree is reused as is by the expression.
Variable tensors (parameterised gates, per-call states, MPS bra cores,
projectors) are recorded as *slots* in position order; everything else is a
constant baked into the compiled expression.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from qtn.circuit import PAULI, Barrier, Circuit, Feature, Gate, Measure, Noise, Trainable

__all__ = [
    "Network",
    "InitialState",
    "Quantity",
    "QUANTITIES",
    "register_quantity",
    "build_network",
    "light_cone",
    "gate_tensor_builder",
]


@dataclass
class Network:
    """Index names per tensor, index sizes, constants and variable slots, output indices.

    ``slots`` lists the variable tensors in position order as ``(position, kind,
    payload)``: kind ``"gate"`` (payload ``(op, conj)``), ``"state"`` (``(qubit,
    conj)``, a per-call input vector), ``"bra"`` (``core index``, conjugated MPS
    core) or ``"proj"`` (``(prefix index)``, a one-hot projector).
    """

    inputs: list = field(default_factory=list)
    sizes: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)
    slots: list = field(default_factory=list)
    output: tuple = ()
    n_names: int = 0

    def fresh(self) -> str:
        """A new index name (single characters, so cotengra trees apply as they are)."""
        from cotengra import get_symbol

        self.n_names += 1
        return get_symbol(self.n_names - 1)

    def add(self, term, array=None, sizes=None) -> int:
        term = tuple(term)
        self.inputs.append(term)
        for i, ix in enumerate(term):
            self.sizes.setdefault(ix, 2 if sizes is None else sizes[i])
        if array is not None:
            self.consts[len(self.inputs) - 1] = array
        return len(self.inputs) - 1

    def add_slot(self, term, kind: str, payload, sizes=None) -> int:
        pos = self.add(term, sizes=sizes)
        self.slots.append((pos, kind, payload))
        return pos

    def rename(self, mapping: dict) -> None:
        self.inputs = [tuple(mapping.get(i, i) for i in term) for term in self.inputs]

    @property
    def gate_slots(self) -> list:
        return [payload for _, kind, payload in self.slots if kind == "gate"]

    def input_bytes(self, itemsize: int) -> int:
        return sum(int(np.prod([self.sizes[i] for i in t])) for t in self.inputs) * itemsize


# ----------------------------------------------------------------------------- input states


@dataclass(frozen=True)
class InitialState:
    """The state the circuit acts on.

    kind ``"zero"`` (|0...0>), ``"product"`` (fixed single-qubit vectors,
    ``arrays`` of shape (n, 2)), ``"mps"`` (fixed cores (D_left, 2, D_right), edge
    bonds of dimension 1) or ``"input"`` (a product state passed per call).
    """

    kind: str = "zero"
    arrays: tuple = field(default=(), compare=False, repr=False)
    digest: str = ""

    @classmethod
    def from_value(cls, value, n_qubits: int) -> InitialState:
        """Validate a user's ``initial_state``: None, "product", an (n, 2) array, or MPS cores."""
        if value is None:
            return cls()
        if isinstance(value, str):
            if value != "product":
                raise ValueError(
                    f"initial_state must be None, 'product', an (n, 2) array or MPS cores, "
                    f"got {value!r}"
                )
            return cls("input")
        if isinstance(value, np.ndarray) or (
            isinstance(value, list | tuple) and value and np.ndim(value[0]) == 1
        ):
            vecs = np.asarray(value, dtype=complex)
            if vecs.shape != (n_qubits, 2) or not np.all(np.isfinite(vecs)):
                raise ValueError(
                    f"initial_state: a product state needs a finite ({n_qubits}, 2) array, "
                    f"got shape {vecs.shape}"
                )
            norms = np.linalg.norm(vecs, axis=1)
            if np.any(np.abs(norms - 1) > 1e-8):
                raise ValueError("initial_state: every single-qubit vector must have norm 1")
            return cls("product", tuple(vecs), _digest_all([vecs]))
        cores = mps_cores(value, n_qubits, "initial_state")
        return cls("mps", tuple(cores), _digest_all(cores))


def mps_cores(value, n_qubits: int, name: str) -> list[np.ndarray]:
    """MPS cores (D_left, 2, D_right) from a list of arrays or an object with ``to_cores()``."""
    getter = getattr(value, "to_cores", None)
    cores = getter() if callable(getter) else value
    try:
        cores = [np.asarray(c, dtype=complex) for c in cores]
    except TypeError:
        raise ValueError(
            f"{name} must be a list of MPS cores, got {type(value).__name__}"
        ) from None
    if len(cores) != n_qubits:
        raise ValueError(f"{name} has {len(cores)} cores, the circuit has {n_qubits} qubits")
    for i, c in enumerate(cores):
        if c.ndim != 3 or c.shape[1] != 2:
            raise ValueError(
                f"{name}: core {i} must have shape (D_left, 2, D_right), got {c.shape}"
            )
        if i and c.shape[0] != cores[i - 1].shape[2]:
            raise ValueError(f"{name}: bond {i - 1}-{i} sizes differ ({cores[i - 1].shape[2]} vs "
                             f"{c.shape[0]})")  # fmt: skip
        if not np.all(np.isfinite(c)):
            raise ValueError(f"{name}: core {i} contains NaN or inf")
    if cores[0].shape[0] != 1 or cores[-1].shape[2] != 1:
        raise ValueError(f"{name}: the edge bonds must have dimension 1")
    return cores


def _digest_all(arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- quantities


@dataclass(frozen=True)
class Quantity:
    """How a quantity closes the network.

    ``doubled``: ket and bra halves (density-matrix network). ``pure``: needs a
    unitary circuit. ``live(args)``: the qubits whose reverse light cone is kept
    (None keeps every operation). ``close(net, ket, bra, args)``: adds the closing
    tensors and sets ``net.output``.
    """

    name: str
    doubled: bool
    pure: bool
    close: Callable
    live: Callable | None = None


QUANTITIES: dict[str, Quantity] = {}


def register_quantity(q: Quantity) -> Quantity:
    QUANTITIES[q.name] = q
    return q


def _trace_rest(net, ket, bra, keep) -> None:
    net.rename({bra[q]: ket[q] for q in range(len(ket)) if q not in keep})


def _close_probs(net, ket, bra, args):
    (qubits,) = args
    _trace_rest(net, ket, bra, set())  # the measured qubits' diagonal
    net.output = tuple(ket[q] for q in qubits)


def _close_expect(net, ket, bra, args):
    (terms,) = args
    ops = dict(terms)
    _trace_rest(net, ket, bra, set(ops))
    for q, p in ops.items():
        net.add((bra[q], ket[q]), PAULI[p])
    net.output = ()


def _close_dm(net, ket, bra, args):
    net.output = (*ket, *bra)


def _close_state(net, ket, bra, args):
    net.output = tuple(ket)


def _close_amp(net, ket, bra, args):
    (bits,) = args
    for q, b in enumerate(bits):
        net.add((ket[q],), np.eye(2, dtype=complex)[b])


def _close_cond(net, ket, bra, args):
    """P(prefix = bits, block): the prefix projected by per-call one-hot vectors."""
    prefix, block = args
    _trace_rest(net, ket, bra, set(prefix))
    for j, q in enumerate(prefix):
        net.add_slot((ket[q],), "proj", j)
        net.add_slot((bra[q],), "proj", j)
    net.output = tuple(ket[q] for q in block)


def _close_overlap(net, ket, bra, args):
    """<bra|C|in> with the bra an MPS given per call (conjugated inside)."""
    (bonds,) = args
    _add_mps(net, ket, bonds, "bra", conj=True)


def _close_fidelity(net, ket, bra, args):
    """<b| rho |b> with |b> an MPS given per call: the bra MPS on both halves."""
    (bonds,) = args
    _add_mps(net, ket, bonds, "bra", conj=True)
    _add_mps(net, bra, bonds, "bra", conj=False)


register_quantity(Quantity("probs", True, False, _close_probs, live=lambda a: set(a[0])))
register_quantity(
    Quantity("expect", True, False, _close_expect, live=lambda a: {q for q, _ in a[0]})
)
register_quantity(Quantity("dm", True, False, _close_dm))
register_quantity(Quantity("state", False, True, _close_state))
register_quantity(Quantity("amp", False, True, _close_amp))
register_quantity(Quantity("cond", True, False, _close_cond, live=lambda a: set(a[0]) | set(a[1])))
register_quantity(Quantity("overlap", False, True, _close_overlap))
register_quantity(Quantity("fidelity", True, False, _close_fidelity))


# ----------------------------------------------------------------------------- building


def light_cone(ops, live: set) -> list:
    """The operations that can affect the qubits in ``live`` at the end.

    Walking backwards, an operation none of whose qubits is live is dropped:
    every operation is trace preserving (unitary gates, CPTP channels, measure,
    reset, discard), so once its outputs are traced out it equals the identity,
    whatever the input state. An operation that touches a live qubit makes all
    its qubits live. quimb's ``Circuit`` marginals use the same reverse light cone.
    """
    live = set(live)
    kept = []
    for op in reversed(ops):
        if isinstance(op, Barrier):
            continue
        if live.intersection(op.qubits):
            kept.append(op)
            live.update(op.qubits)
    return kept[::-1]


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


def _add_mps(net, wires, bonds, kind, conj, arrays=None):
    """MPS cores on ``wires``: constants (``arrays``) or per-call slots of ``kind``."""
    edges = [net.fresh() for _ in range(len(wires) + 1)]
    dims = (1, *bonds, 1)
    for i, w in enumerate(wires):
        term = (edges[i], w, edges[i + 1])
        sizes = (dims[i], 2, dims[i + 1])
        if arrays is not None:
            a = arrays[i]
            net.add(term, a.conj() if conj else a, sizes=sizes)
        else:
            net.add_slot(term, kind, (i, conj), sizes=sizes)


def build_network(circuit: Circuit, quantity: tuple, initial: InitialState | None = None):
    """The :class:`Network` of ``quantity`` = ``(name, *args)`` for ``circuit``."""
    spec = QUANTITIES[quantity[0]]
    args = quantity[1:]
    initial = initial or InitialState()
    n = circuit.n_qubits
    net = Network()
    halves = [(False, [net.fresh() for _ in range(n)])]
    if spec.doubled:
        halves.append((True, [net.fresh() for _ in range(n)]))
    for conj, wire in halves:
        if initial.kind == "mps":
            bonds = tuple(c.shape[2] for c in initial.arrays[:-1])
            _add_mps(net, wire, bonds, None, conj, arrays=initial.arrays)
            continue
        for q in range(n):
            if initial.kind == "input":
                net.add_slot((wire[q],), "state", (q, conj))
            else:
                vec = initial.arrays[q] if initial.kind == "product" else np.array([1.0, 0.0])
                vec = np.asarray(vec, dtype=complex)
                net.add((wire[q],), vec.conj() if conj else vec)
    ops = circuit.ops
    if spec.live is not None:
        ops = light_cone(ops, spec.live(args))
    for op in ops:
        if isinstance(op, Barrier):
            continue
        if isinstance(op, Gate):
            for conj, wire in halves:
                outs = [net.fresh() for _ in op.qubits]
                term = (*outs, *[wire[q] for q in op.qubits])
                if op.is_symbolic:
                    net.add_slot(term, "gate", (op, conj))
                else:
                    m = op.numeric_matrix().reshape((2,) * (2 * len(op.qubits)))
                    net.add(term, m.conj() if conj else m)
                for q, o in zip(op.qubits, outs):
                    wire[q] = o
            continue
        if not spec.doubled:  # guarded by the Simulator; kept as an internal invariant
            raise AssertionError("non-unitary operation in a pure-state network")
        (_, ket), (_, bra) = halves
        ok = [net.fresh() for _ in op.qubits]
        ob = [net.fresh() for _ in op.qubits]
        term = (*ok, *ob, *[ket[q] for q in op.qubits], *[bra[q] for q in op.qubits])
        net.add(term, _superoperator(op))
        for q, a, b in zip(op.qubits, ok, ob):
            ket[q], bra[q] = a, b
    ket = halves[0][1]
    bra = halves[1][1] if spec.doubled else None
    spec.close(net, ket, bra, args)
    return net


def gate_tensor_builder(gates: list):
    """``tensors(theta, x, xp, cdt)``: the parameterised gate tensors of ``gates``, in order.

    ``gates`` is the list of ``(op, conj)`` of a network's gate slots. Gates of one
    kind are built together: their angles are gathered into one (k, n_angles)
    array and the matrix function runs once, vmapped under JAX. A circuit with
    30 SU(4) blocks thus traces one SU(4) construction rather than 60 (ket and
    bra), which keeps compile time flat in the gate count.
    """
    from qtn.circuit import GATES

    uniq: dict = {}
    for op, _ in gates:
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
        for op, conj in gates:
            m = mats[id(op)].reshape((2,) * (2 * len(op.qubits)))
            out.append(xp.conj(m) if conj else m)
        return out

    return tensors
