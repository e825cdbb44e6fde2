"""Conversion between qtn circuits and ``qiskit.QuantumCircuit``.

Qubit labels are kept: qtn qubit q is Qiskit qubit q and clbit c is clbit c, so
noise rules, readout qubits, layouts and measured qubits mean the same on both
sides. Only the order of amplitude and probability indices differs (qtn puts
qubit 0 most significant, Qiskit least); :mod:`qtn.export.order` converts it.
Named gates take their qubits in the same order in both libraries (control
first); explicit matrices (``unitary``, Kraus operators), big-endian in qtn,
are appended with their qubits listed in reverse, which is Qiskit's reading of
the same matrix.
"""

from __future__ import annotations

import numpy as np

from qtn._checks import real_array
from qtn.circuit import (
    GATES,
    Barrier,
    Circuit,
    Discard,
    Feature,
    Measure,
    Noise,
    Reset,
    Trainable,
    kraus_channel,
)
from qtn.errors import ExportError
from qtn.export.gates import DENSE_MAX_QUBITS, qiskit_gate_class, qiskit_name, qtn_gate
from qtn.export.order import qiskit_matrix

__all__ = ["to_qiskit", "from_qiskit", "to_qasm3", "parameter_values"]

# instructions with classical control flow: qtn has no equivalent
_CONTROL_FLOW = {"if_else", "while_loop", "for_loop", "switch_case", "box", "break_loop",
                 "continue_loop", "store"}  # fmt: skip


def parameter_values(parameters, params, data, *, params_name: str = "theta",
                     data_name: str = "x") -> np.ndarray:  # fmt: skip
    """Binding values for Qiskit ``parameters`` of an exported circuit, shape (B, len).

    ``params`` (B, n_params) feed ``params_name[i]`` and ``data`` (B, n_features)
    feed ``data_name[j]``, the two vectors :func:`to_qiskit` creates; transpiled
    circuits keep these parameter objects, in their own order.

    Examples
    --------
    >>> qc = to_qiskit(Circuit(1).ry(Trainable(0), 0).rz(Feature(0), 0))
    >>> parameter_values(qc.parameters, [0.5], [0.25])
    array([[0.5 , 0.25]])
    """
    p, x = np.atleast_2d(params), np.atleast_2d(data)
    cols = []
    for prm in parameters:
        vec = getattr(prm, "vector", None)
        if vec is None or vec.name not in (params_name, data_name):
            raise ValueError(
                f"parameter {prm} is not from qtn's export ({params_name}[i] or {data_name}[j])"
            )
        cols.append((p if vec.name == params_name else x)[:, prm.index])
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


def to_qiskit(circuit: Circuit, *, params=None, data=None, noise=None, name: str | None = None,
              params_name: str = "theta", data_name: str = "x"):  # fmt: skip
    """A ``qiskit.QuantumCircuit`` equal to ``circuit``, qubit labels kept.

    Parameters
    ----------
    circuit
        The qtn circuit.
    params, data
        Optional values that bind the trainable / data-bound angles at export.
        Unbound angles become ``ParameterVector(params_name, n_params)`` and
        ``ParameterVector(data_name, n_features)`` expressions, so one exported
        template serves every input.
    noise
        A :class:`qtn.noise.NoiseModel` whose channels are inserted as
        ``Kraus`` instructions (for Aer; readout errors are not circuit
        instructions and are left to the backend's noise model).
    name
        The circuit's name.
    params_name, data_name
        Names of the two ``ParameterVector``\\ s: give each exported circuit its own
        to compose them (Qiskit refuses two parameters of one name).

    Returns
    -------
    qiskit.QuantumCircuit
        qtn qubit q is Qiskit qubit q. Measure becomes ``measure`` into the
        classical register ``"c"`` (mid-circuit measurements make a dynamic
        circuit), reset and discard become ``reset``, SU(4) blocks become
        u . (rxx ryy rzz) . u, a gate registered outside Qiskit's standard
        library becomes a ``unitary`` once its angles are bound.

    Examples
    --------
    >>> from qtn.circuit import Circuit, Feature
    >>> qc = to_qiskit(Circuit(2).ry(Feature(0), 0).cx(0, 1).measure(1, 0))
    >>> [p.name for p in qc.parameters], qc.num_clbits, qc.data[1].qubits[0]._index
    (['x[0]'], 1, 0)
    """
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit.circuit import ParameterVector
    from qiskit.quantum_info import Kraus

    if not isinstance(circuit, Circuit):
        raise TypeError(f"circuit must be a qtn Circuit, got {type(circuit).__name__}")
    for arg, values, need in (("params", params, circuit.n_params),
                              ("data", data, circuit.n_features)):  # fmt: skip
        if values is None:
            continue
        arr = real_array(arg, values)
        if arr.ndim != 1:
            raise ValueError(f"{arg} must be 1-D (one binding), got shape {arr.shape}")
        if len(arr) < need:
            raise ValueError(f"{arg} has length {len(arr)}; the circuit needs {need}")
    params = None if params is None else real_array("params", params)
    data = None if data is None else real_array("data", data)
    if params_name == data_name:
        raise ValueError(f"params_name and data_name must differ, both are {params_name!r}")
    if noise is not None:
        circuit = noise.apply(circuit)
    n = circuit.n_qubits
    regs = [QuantumRegister(n, "q")]
    if circuit.n_clbits:
        regs.append(ClassicalRegister(circuit.n_clbits, "c"))
    qc = QuantumCircuit(*regs, name=name or "qtn", global_phase=circuit.global_phase)
    theta = ParameterVector(params_name, circuit.n_params) if params is None else None
    x = ParameterVector(data_name, circuit.n_features) if data is None else None

    for pos, op in enumerate(circuit.ops):
        if isinstance(op, Barrier):
            qc.barrier(list(op.qubits))
        elif isinstance(op, Measure):
            qc.measure(op.qubit, op.clbit)
        elif isinstance(op, Reset | Discard):
            qc.reset(op.qubit)
        elif isinstance(op, Noise):
            qc.append(Kraus(list(op.channel.kraus)), list(reversed(op.qubits)))
        elif op.name == "unitary":
            qc.unitary(op.matrix, list(reversed(op.qubits)))
        else:
            ang = [_angle(a, theta, x, params, data) for a in op.angles]
            qname = qiskit_name(op.name)
            if qname is not None:
                qc.append(qiskit_gate_class(qname)(*ang), list(op.qubits))
            elif op.name == "su4":  # k1 . exp(i(a XX + b YY + c ZZ)) . k2, k2 first in time
                a, b = op.qubits
                qc.u(*ang[9:12], a)
                qc.u(*ang[12:15], b)
                qc.rxx(-2 * ang[6], a, b)
                qc.ryy(-2 * ang[7], a, b)
                qc.rzz(-2 * ang[8], a, b)
                qc.u(*ang[0:3], a)
                qc.u(*ang[3:6], b)
            elif op.name == "kak":  # the native 3-CX SU(4) block, gate by gate
                a, b = op.qubits
                qc.u(*ang[0:3], a)
                qc.u(*ang[3:6], b)
                qc.cx(b, a)
                qc.rz(ang[6], a)
                qc.ry(ang[7], b)
                qc.cx(a, b)
                qc.ry(ang[8], b)
                qc.cx(b, a)
                qc.u(*ang[9:12], a)
                qc.u(*ang[12:15], b)
            elif all(isinstance(v, float) for v in ang):
                m = np.asarray(GATES[op.name].matrix(*ang), dtype=complex)
                qc.unitary(m, list(reversed(op.qubits)), label=op.name)
            else:
                raise ValueError(
                    f"operation {pos}: gate {op.name!r} is not in Qiskit's standard library; "
                    "bind its angles (params=, data=) to export it as a unitary"
                )
    return qc


def to_qasm3(circuit: Circuit, *, drop_noise: bool = False, **kwargs) -> str:
    """OpenQASM 3 text of ``to_qiskit(circuit, **kwargs)`` through ``qiskit.qasm3.dumps``.

    OpenQASM 3 has no noise channels: a circuit with :class:`~qtn.circuit.Noise`
    operations (or ``noise=`` with gate rules) raises :class:`qtn.errors.ExportError`
    (a ``ValueError``) unless ``drop_noise=True``, which exports it without them.

    Examples
    --------
    >>> to_qasm3(Circuit(1).h(0)).splitlines()[0]
    'OPENQASM 3.0;'
    """
    from qiskit import qasm3

    if not isinstance(circuit, Circuit):
        raise TypeError(f"circuit must be a qtn Circuit, got {type(circuit).__name__}")
    noise = kwargs.pop("noise", None)
    has_noise = any(isinstance(op, Noise) for op in circuit.ops) or bool(
        noise is not None and noise.gate_rules
    )
    if has_noise and not drop_noise:
        raise ExportError(
            "to_qasm3: OpenQASM 3 cannot express noise channels (Kraus operators), and this "
            "circuit has some; pass drop_noise=True to export it without them"
        )
    if has_noise:
        ops = [op for op in circuit.ops if not isinstance(op, Noise)]
        circuit = Circuit(circuit.n_qubits, ops, global_phase=circuit.global_phase)
    return qasm3.dumps(to_qiskit(circuit, **kwargs))


class _Slots:
    """Qiskit parameters -> qtn angle slots (trainable, or data-bound for the data vector)."""

    def __init__(self, parameters, params_name, data_name):
        self.trainable: dict = {}
        self.feature: dict = {}
        vec_len = 0
        free = []
        for p in parameters:
            vec = getattr(p, "vector", None)
            if vec is not None and data_name is not None and vec.name == data_name:
                self.feature[p] = p.index
            elif vec is not None and params_name is not None and vec.name == params_name:
                self.trainable[p] = p.index
                vec_len = max(vec_len, len(vec))
                self._vector = vec
            else:
                free.append(p)
        self.n_vector = vec_len
        self.free = free
        for j, p in enumerate(free):
            self.trainable[p] = vec_len + j

    def qiskit_parameters(self) -> list:
        vec = [self._vector[i] for i in range(self.n_vector)] if self.n_vector else []
        return vec + self.free

    def angle(self, a, where):
        from qiskit.circuit import ParameterExpression

        if not isinstance(a, ParameterExpression) or not a.parameters:
            return float(a)
        if len(a.parameters) != 1:
            raise ValueError(
                f"{where}: angle {a} depends on {len(a.parameters)} parameters; qtn angles are "
                "scale * parameter + offset"
            )
        (p,) = a.parameters
        scale = a.gradient(p)
        if isinstance(scale, ParameterExpression) and scale.parameters:
            raise ValueError(f"{where}: angle {a} is not linear in {p}")
        scale, offset = float(np.real(complex(scale))), float(a.bind({p: 0.0}))
        if p in self.feature:
            return Feature(self.feature[p], scale=scale, offset=offset)
        return Trainable(self.trainable[p], scale=scale, offset=offset)


def from_qiskit(qc, *, params: str | None = "theta", data: str | None = "x"):
    """A qtn circuit from a ``QuantumCircuit``, qubit labels kept, and its trainable parameters.

    Parameters
    ----------
    qc
        The Qiskit circuit. Every gate of Qiskit's standard library imports (as a
        registered qtn gate, or through its Qiskit definition); so do
        ``unitary`` (any size), ``kraus`` (as a noise channel), ``measure``,
        ``reset``, ``barrier``, ``delay`` (dropped: the identity in qtn's model)
        and ``global_phase``. Any other instruction is decomposed through its
        Qiskit definition until supported; one without a definition becomes a
        dense matrix up to :data:`~qtn.export.gates.DENSE_MAX_QUBITS` qubits,
        beyond which a ``ValueError`` names it and suggests ``transpile``.
        Classical control flow (``if_else``, loops) is refused.
    params, data
        Names of ``ParameterVector``\\ s: elements ``params[i]`` become trainable
        slot i, elements ``data[j]`` become data slots (:class:`~qtn.circuit.Feature`
        j), so qtn -> Qiskit -> qtn keeps the split (the defaults are
        :func:`to_qiskit`'s names). Every other ``Parameter`` becomes a trainable
        slot after the vector's, in ``qc.parameters`` order.

    Returns
    -------
    circuit : qtn.circuit.Circuit
        The global phase is kept (in [-pi, pi)), including those of decomposed
        definitions and ``global_phase`` instructions; a parameterised global
        phase raises (bind it first).
    parameters : list
        The Qiskit parameter of each trainable slot, in slot order.

    Angles must be linear in one parameter, ``scale * p + offset``.

    Examples
    --------
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> qc = QuantumCircuit(2)
    >>> _ = qc.ry(2 * Parameter("a"), 0)
    >>> _ = qc.crx(0.3, 0, 1)
    >>> c, prms = from_qiskit(qc)
    >>> c.n_params, [p.name for p in prms], [op.name for op in c.ops]
    (1, ['a'], ['ry', 'crx'])
    """
    from qiskit import QuantumCircuit

    if not isinstance(qc, QuantumCircuit):
        raise TypeError(f"qc must be a qiskit.QuantumCircuit, got {type(qc).__name__}")
    slots = _Slots(qc.parameters, params, data)
    c = Circuit(qc.num_qubits)
    phase = _import_body(c, qc, list(range(qc.num_qubits)), list(range(qc.num_clbits)), slots, "")
    c.global_phase = float((phase + np.pi) % (2 * np.pi) - np.pi)  # in [-pi, pi)
    return c, slots.qiskit_parameters()


def _phase(value, where) -> float:
    from qiskit.circuit import ParameterExpression

    if isinstance(value, ParameterExpression) and value.parameters:
        raise ValueError(f"{where}: a parameterised global phase ({value}) is not supported; "
                         "bind its parameters first")  # fmt: skip
    return float(value)


def _import_body(c, qc, qmap, cmap, slots, prefix) -> float:
    """Append ``qc``'s instructions to ``c`` (qubits through ``qmap``); returns the phase."""
    from qiskit.quantum_info import Operator

    phase = _phase(qc.global_phase, f"{prefix or 'qc'}")
    for pos, inst in enumerate(qc.data):
        op, name = inst.operation, inst.operation.name
        qubits = [qmap[qc.find_bit(q).index] for q in inst.qubits]
        clbits = [cmap[qc.find_bit(b).index] for b in inst.clbits]
        where = f"instruction {prefix}{pos} ({name!r} on qubits {qubits})"
        if name in _CONTROL_FLOW or getattr(op, "condition", None) is not None:
            raise ValueError(f"unsupported instruction {name!r} at {where}: classical control "
                             "flow has no qtn equivalent")  # fmt: skip
        if name == "barrier":
            c.barrier(qubits)
        elif name == "measure":
            c.measure(qubits[0], clbits[0])
        elif name == "reset":
            c.reset(qubits[0])
        elif name == "delay":
            continue
        elif name == "global_phase":
            phase += _phase(op.params[0], where)
        elif name == "unitary":
            c.unitary(np.asarray(Operator(op).data), list(reversed(qubits)))
        elif name == "kraus":
            ops = [qiskit_matrix(np.asarray(k)) for k in op.params]
            c.noise(kraus_channel(ops), qubits)
        elif (known := qtn_gate(name)) is not None:
            qname, angle_map = known
            angles = [slots.angle(a, where) for a in op.params]
            c.gate(qname, *angle_map(*angles), *qubits)
        elif op.definition is not None:
            sub = op.definition
            phase += _import_body(c, sub, qubits, clbits, slots, f"{prefix}{pos}.")
        elif op.num_qubits <= DENSE_MAX_QUBITS and _numeric(op.params) and not op.num_clbits:
            try:
                m = np.asarray(Operator(op).data)
            except Exception as exc:  # Qiskit raises several types for "no matrix"
                raise ValueError(f"unsupported instruction {name!r} at {where}: it has neither "
                                 f"a definition nor a matrix ({exc})") from None  # fmt: skip
            c.unitary(m, list(reversed(qubits)))
        else:
            raise ValueError(
                f"unsupported instruction {name!r} at {where}: it has no Qiskit definition to "
                f"decompose, and a dense matrix is allowed up to {DENSE_MAX_QUBITS} qubits "
                f"(it acts on {op.num_qubits}) with bound parameters; decompose it first, "
                "e.g. qiskit.transpile(qc, basis_gates=['u', 'cx'])"
            )
    return phase


def _numeric(values) -> bool:
    from qiskit.circuit import ParameterExpression

    return not any(isinstance(v, ParameterExpression) and v.parameters for v in values)
