"""Conversion between qtn circuits and ``qiskit.QuantumCircuit``.

Qubit order. qtn follows quimb: qubit 0 is the most significant bit of a basis
index, |q0 q1 ... q_{n-1}>. Qiskit is little-endian: its qubit 0 is the least
significant bit. qtn qubit ``q`` therefore becomes Qiskit qubit ``n - 1 - q``
(:func:`qiskit_qubit`), so that ``Statevector(to_qiskit(c)).data`` equals qtn's
statevector entry by entry. A k-qubit matrix given big-endian on qtn qubits
(a, b, ...) is appended with Qiskit qargs listed least significant first, i.e.
the mapped qubits in reverse. Classical bits keep their numbers; measured
outcomes are returned by :func:`clbit_probabilities` with clbit 0 as the most
significant bit, like qtn's marginal probabilities. This module is the only
place in qtn where the order is converted.
"""

from __future__ import annotations

import numpy as np

from qtn.circuit import Barrier, Circuit, Discard, Feature, Measure, Noise, Reset, Trainable

__all__ = [
    "to_qiskit",
    "from_qiskit",
    "to_qasm3",
    "clbit_probabilities",
    "qiskit_qubit",
    "qiskit_matrix",
    "parameter_values",
]

# qtn gate name -> Qiskit QuantumCircuit method (same matrices; checked in tests)
_DIRECT = {
    "id": "id", "h": "h", "x": "x", "y": "y", "z": "z", "s": "s", "sdg": "sdg", "t": "t",
    "tdg": "tdg", "sx": "sx", "sxdg": "sxdg", "rx": "rx", "ry": "ry", "rz": "rz", "p": "p",
    "u3": "u", "cx": "cx", "cy": "cy", "cz": "cz", "swap": "swap", "iswap": "iswap",
    "rzz": "rzz", "rxx": "rxx", "ryy": "ryy", "rzx": "rzx",
}  # fmt: skip
_FROM = {v: k for k, v in _DIRECT.items()} | {"u3": "u3", "u1": "p", "cnot": "cx"}


def qiskit_qubit(q: int, n_qubits: int) -> int:
    """The Qiskit qubit index of qtn qubit ``q`` (and back: the map is its own inverse)."""
    return n_qubits - 1 - q


def qiskit_matrix(m: np.ndarray) -> np.ndarray:
    """A k-qubit matrix, big-endian on qtn qubits (a, b, ...), in Qiskit's order for
    qargs listed as (qiskit_qubit(a), qiskit_qubit(b), ...) (first qarg least significant)."""
    m = np.asarray(m)
    k = int(round(np.log2(m.shape[0])))
    perm = list(range(k - 1, -1, -1))
    t = m.reshape((2,) * (2 * k)).transpose(perm + [p + k for p in perm])
    return t.reshape(2**k, 2**k)


def parameter_values(parameters, params, data) -> np.ndarray:
    """Binding values for Qiskit ``parameters`` of an exported circuit, shape (B, len).

    ``params`` (B, n_params) feed ``theta[i]`` and ``data`` (B, n_features) feed
    ``x[j]``, the two vectors :func:`to_qiskit` creates; transpiled circuits keep
    these parameter objects, in their own order.
    """
    p, x = np.atleast_2d(params), np.atleast_2d(data)
    cols = []
    for prm in parameters:
        vec = getattr(prm, "vector", None)
        if vec is None or vec.name not in ("theta", "x"):
            raise ValueError(f"parameter {prm} is not from qtn's export (theta[i] or x[j])")
        cols.append((p if vec.name == "theta" else x)[:, prm.index])
    return np.stack(cols, axis=-1) if cols else np.zeros((max(len(p), len(x)), 0))


def _angle(a, theta, x, values_p, values_x):
    """A Qiskit angle: a float, or scale * parameter + offset (bound if values are given)."""
    if isinstance(a, Trainable):
        base = theta[a.index] if values_p is None else float(values_p[a.index])
    elif isinstance(a, Feature):
        base = x[a.index] if values_x is None else float(values_x[a.index])
    else:
        return float(a)
    if (a.scale, a.offset) == (1.0, 0.0):
        return base
    return a.scale * base + a.offset


def to_qiskit(circuit: Circuit, *, params=None, data=None, noise=None, name: str | None = None):
    """A ``qiskit.QuantumCircuit`` equal to ``circuit``.

    Parameters
    ----------
    circuit
        The qtn circuit.
    params, data
        Optional values that bind the trainable / data-bound angles at export.
        Unbound angles become ``ParameterVector("theta", n_params)`` and
        ``ParameterVector("x", n_features)`` expressions, so one exported
        template serves every input.
    noise
        A :class:`qtn.noise.NoiseModel` whose channels are inserted as
        ``Kraus`` instructions (for Aer; readout errors are not circuit
        instructions and are left to the backend's noise model).
    name
        The circuit's name.

    Measure becomes ``measure`` into the classical register ``"c"`` (mid-circuit
    measurements make a dynamic circuit), reset and discard become ``reset``,
    and SU(4) blocks become u . (rxx ryy rzz) . u in standard gates.

    Examples
    --------
    >>> from qtn.circuit import Circuit, Feature
    >>> qc = to_qiskit(Circuit(2).ry(Feature(0), 0).cx(0, 1).measure(1, 0))
    >>> [p.name for p in qc.parameters], qc.num_clbits
    (['x[0]'], 1)
    """
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit.circuit import ParameterVector
    from qiskit.quantum_info import Kraus

    if not isinstance(circuit, Circuit):
        raise TypeError(f"circuit must be a qtn Circuit, got {type(circuit).__name__}")
    if params is not None and len(params) < circuit.n_params:
        raise ValueError(f"params has length {len(params)}; the circuit needs {circuit.n_params}")
    if data is not None and len(data) < circuit.n_features:
        raise ValueError(f"data has length {len(data)}; the circuit needs {circuit.n_features}")
    if noise is not None:
        circuit = noise.apply(circuit)
    n = circuit.n_qubits
    regs = [QuantumRegister(n, "q")]
    if circuit.n_clbits:
        regs.append(ClassicalRegister(circuit.n_clbits, "c"))
    qc = QuantumCircuit(*regs, name=name or "qtn", global_phase=circuit.global_phase)
    theta = ParameterVector("theta", circuit.n_params) if params is None else None
    x = ParameterVector("x", circuit.n_features) if data is None else None

    def qq(q):
        return qiskit_qubit(q, n)

    for op in circuit.ops:
        if isinstance(op, Barrier):
            qc.barrier([qq(q) for q in op.qubits])
        elif isinstance(op, Measure):
            qc.measure(qq(op.qubit), op.clbit)
        elif isinstance(op, Reset | Discard):
            qc.reset(qq(op.qubit))
        elif isinstance(op, Noise):
            qc.append(Kraus(list(op.channel.kraus)), [qq(q) for q in reversed(op.qubits)])
        elif op.name == "unitary":
            qc.unitary(op.matrix, [qq(q) for q in reversed(op.qubits)])
        else:
            ang = [_angle(a, theta, x, params, data) for a in op.angles]
            if op.name == "su4":  # k1 . exp(i(a XX + b YY + c ZZ)) . k2, k2 first in time
                a, b = qq(op.qubits[0]), qq(op.qubits[1])
                qc.u(*ang[9:12], a)
                qc.u(*ang[12:15], b)
                qc.rxx(-2 * ang[6], a, b)
                qc.ryy(-2 * ang[7], a, b)
                qc.rzz(-2 * ang[8], a, b)
                qc.u(*ang[0:3], a)
                qc.u(*ang[3:6], b)
            else:
                getattr(qc, _DIRECT[op.name])(*ang, *[qq(q) for q in op.qubits])
    return qc


def to_qasm3(circuit: Circuit, **kwargs) -> str:
    """OpenQASM 3 text of ``to_qiskit(circuit, **kwargs)`` through ``qiskit.qasm3.dumps``."""
    from qiskit import qasm3

    return qasm3.dumps(to_qiskit(circuit, **kwargs))


def from_qiskit(qc) -> tuple[Circuit, list]:
    """A qtn circuit from a ``QuantumCircuit``, and the Qiskit parameters in slot order.

    Supported: the registered gates of :data:`qtn.circuit.GATES` under their
    Qiskit names (``u``/``u3``, ``p``/``u1``), ``unitary``, parameter-free gates
    (as exact unitaries), ``measure``, ``reset`` and ``barrier``; the global
    phase is kept. Each distinct Qiskit ``Parameter`` becomes a trainable slot, in
    ``qc.parameters`` order (returned as the second value); an angle must be
    linear in one parameter, ``scale * p + offset``. Anything else raises a
    ``ValueError`` naming the instruction and its position.

    Examples
    --------
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> qc = QuantumCircuit(2)
    >>> _ = qc.ry(2 * Parameter("a"), 0)
    >>> _ = qc.cx(0, 1)
    >>> c, params = from_qiskit(qc)
    >>> c.n_params, [p.name for p in params]
    (1, ['a'])
    """
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Operator

    if not isinstance(qc, QuantumCircuit):
        raise TypeError(f"qc must be a qiskit.QuantumCircuit, got {type(qc).__name__}")
    n = qc.num_qubits
    params = list(qc.parameters)
    slot = {p: i for i, p in enumerate(params)}
    phase = qc.global_phase
    if not isinstance(phase, int | float) and getattr(phase, "parameters", None):
        raise ValueError("qc: a parameterised global phase is not supported; bind it first")
    c = Circuit(n, global_phase=float(phase))
    for pos, inst in enumerate(qc.data):
        op, name = inst.operation, inst.operation.name
        qubits = [qiskit_qubit(qc.find_bit(q).index, n) for q in inst.qubits]
        if name == "barrier":
            c.barrier(qubits)
        elif name == "measure":
            c.measure(qubits[0], qc.find_bit(inst.clbits[0]).index)
        elif name == "reset":
            c.reset(qubits[0])
        elif name in _FROM:
            angles = [_from_angle(a, slot, name, pos) for a in op.params]
            c.gate(_FROM[name], *angles, *qubits)
        elif name == "unitary" or (not op.params and hasattr(op, "to_matrix")):
            m = np.asarray(Operator(op).data)
            c.unitary(m, list(reversed(qubits)))  # qiskit matrix is little-endian
        else:
            raise ValueError(
                f"unsupported instruction {name!r} at position {pos} on qubits "
                f"{[qc.find_bit(q).index for q in inst.qubits]}; supported: standard gates, "
                "unitary, measure, reset, barrier"
            )
    return c, params


def _from_angle(a, slot, name, pos):
    from qiskit.circuit import ParameterExpression

    if not isinstance(a, ParameterExpression):
        return float(a)
    if not a.parameters:
        return float(a)
    if len(a.parameters) != 1:
        raise ValueError(
            f"instruction {pos} ({name!r}): angle {a} depends on {len(a.parameters)} "
            "parameters; qtn angles are scale * parameter + offset"
        )
    (p,) = a.parameters
    scale = a.gradient(p)
    if isinstance(scale, ParameterExpression) and scale.parameters:
        raise ValueError(f"instruction {pos} ({name!r}): angle {a} is not linear in {p}")
    offset = float(a.bind({p: 0.0}))
    return Trainable(slot[p], scale=float(scale), offset=offset)


def clbit_probabilities(bits: np.ndarray) -> np.ndarray:
    """Outcome frequencies of sampled classical bits, big-endian in clbit number.

    ``bits`` has shape (..., shots, n_clbits) with column j holding clbit j
    (``BitArray.to_bool_array(order="little")``); the result has shape
    (..., 2**n_clbits) with clbit 0 as the most significant bit.
    """
    bits = np.asarray(bits, dtype=np.int64)
    k = bits.shape[-1]
    idx = bits @ (1 << np.arange(k - 1, -1, -1))
    flat = idx.reshape(-1, idx.shape[-1])
    counts = np.stack([np.bincount(row, minlength=2**k) for row in flat])
    return (counts / idx.shape[-1]).reshape(*idx.shape[:-1], 2**k)
