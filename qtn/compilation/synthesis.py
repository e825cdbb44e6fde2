"""Synthesis of unitaries and isometries into CX and U3 gates, using the freedom isometries leave.

The documented synthesis (every count below is of CX gates):

- one qubit: one U3;
- two qubits: the KAK decomposition (Qiskit's ``TwoQubitBasisDecomposer``, at most 3 CX).
  An *isometry* on two qubits (a state: 1 column; one qubit into two: 2 columns)
  leaves free columns; :func:`complete_two_qubit` chooses them so the completed
  unitary needs the fewest CX: 1 for a state (Schmidt form), 2 for a one-qubit
  isometry (2 CX suffice iff tr gamma(U) is real, Shende, Bullock & Markov,
  PRA 70, 012310 (2004); solved for over the free columns);
- k >= 3 qubits: the quantum Shannon decomposition (Qiskit's ``qs_decomposition``);
- an isometry from k qubits to k + 1 qubits (one fresh qubit in |0>), the block of
  a sequential MPS circuit of bond dimension 2^k: the cosine-sine decomposition
  V = (A1 + A2) [C; S] B1 (``scipy.linalg.cossin``) gives a k-qubit unitary B1, a
  uniformly controlled RY on the fresh qubit (2^k CX), and a multiplexor of two
  k-qubit unitaries, demultiplexed into two k-qubit unitaries around a uniformly
  controlled RZ (2^k CX): 2^(k+1) + 2 C(k) CX in all, plus B1, which a caller can
  absorb into the neighbouring block by a gauge transformation.

Gates are emitted into a qtn :class:`~qtn.circuit.Circuit` by :class:`Emitter`,
with every U3 angle a :class:`~qtn.circuit.Trainable` parameter (its value kept
in ``Emitter.params``), so compiled circuits can be fine-tuned.
"""

from __future__ import annotations

import numpy as np

from qtn.circuit import Circuit, Trainable

__all__ = [
    "Emitter",
    "su4_angles",
    "complete_isometry",
    "complete_two_qubit",
    "cs_isometry",
    "demultiplex",
    "two_qubit_cx_count",
]

_ATOL = 1e-10


class Emitter:
    """Appends synthesised gates to a circuit, U3 angles as trainable parameters.

    Attributes
    ----------
    circuit
        The circuit being built (in place).
    params
        Values of the trainable angles, in slot order.
    """

    def __init__(self, circuit: Circuit, *, trainable: bool = True):
        self.circuit = circuit
        self.params: list[float] = []
        self.trainable = trainable
        self.phase = 0.0

    def u3(self, angles, qubit: int) -> None:
        if self.trainable:
            start = len(self.params)
            self.params.extend(float(a) for a in angles)
            self.circuit.u(*[Trainable(start + i) for i in range(3)], qubit)
        else:
            self.circuit.u(*[float(a) for a in angles], qubit)

    def cx(self, control: int, target: int) -> None:
        self.circuit.cx(control, target)

    def matrix_1q(self, m: np.ndarray, qubit: int) -> None:
        theta, phi, lam, phase = _u3_angles(m)
        self.phase += phase
        self.u3((theta, phi, lam), qubit)

    def qiskit(self, qc, wires) -> None:
        """Emit a Qiskit circuit of cx and one-qubit gates; Qiskit qubit j -> ``wires[j]``."""
        from qiskit import transpile

        t = transpile(qc, basis_gates=["cx", "u"], optimization_level=1)
        self.phase += float(t.global_phase)
        for inst in t.data:
            name = inst.operation.name
            qs = [wires[t.find_bit(q).index] for q in inst.qubits]
            if name == "cx":
                self.cx(*qs)
            elif name == "u":
                self.u3([float(p) for p in inst.operation.params], qs[0])
            elif name in ("barrier", "delay"):
                continue
            else:  # pragma: no cover - transpile guarantees the basis
                raise AssertionError(f"unexpected gate {name!r} after transpilation")

    def unitary(self, u: np.ndarray, wires, *, basis_fidelity: float = 1.0) -> None:
        """Any unitary, big-endian on ``wires`` (first wire most significant)."""
        u = np.asarray(u, dtype=complex)
        k = len(wires)
        if k == 1:
            self.matrix_1q(u, wires[0])
            return
        # Qiskit qubit j -> our wire k-1-j: Qiskit's little-endian index is then our
        # big-endian index, so Qiskit synthesises u itself
        rev = list(wires)[::-1]
        if k == 2:
            from qiskit.circuit.library import CXGate
            from qiskit.synthesis import TwoQubitBasisDecomposer

            dec = TwoQubitBasisDecomposer(CXGate(), euler_basis="U3")
            approximate = basis_fidelity < 1.0
            qc = dec(u, basis_fidelity=basis_fidelity, approximate=approximate)
        else:
            from qiskit.synthesis import qs_decomposition

            qc = qs_decomposition(u)
        self.qiskit(qc, rev)

    def ucr(self, axis: str, angles, target: int, controls) -> None:
        """A uniformly controlled RY or RZ on ``target``: angle ``angles[j]`` when the
        ``controls`` (big-endian) hold j. 2**len(controls) CX."""
        from qiskit import QuantumCircuit
        from qiskit.circuit.library import UCRYGate, UCRZGate

        controls = list(controls)
        gate = (UCRYGate if axis == "y" else UCRZGate)([float(a) for a in angles])
        qc = QuantumCircuit(1 + len(controls))
        qc.append(gate, list(range(1 + len(controls))))
        # Qiskit: qubit 0 the target, qubit 1 the least significant control
        self.qiskit(qc, [target, *controls[::-1]])

    def finish(self) -> np.ndarray:
        self.circuit.global_phase = (self.circuit.global_phase + self.phase) % (2 * np.pi)
        return np.asarray(self.params, dtype=float)


def _little_endian(m: np.ndarray) -> np.ndarray:
    """A big-endian k-qubit matrix in Qiskit's little-endian order."""
    k = int(round(np.log2(m.shape[0])))
    perm = list(range(k - 1, -1, -1))
    return m.reshape((2,) * (2 * k)).transpose(perm + [p + k for p in perm]).reshape(m.shape)


def _u3_angles(m: np.ndarray):
    """(theta, phi, lam, global phase) with m = exp(i phase) u3(theta, phi, lam)."""
    from qiskit.synthesis import OneQubitEulerDecomposer

    theta, phi, lam, phase = OneQubitEulerDecomposer("U3").angles_and_phase(m)
    return theta, phi, lam, phase


def su4_angles(u: np.ndarray) -> tuple[np.ndarray, float]:
    """The 15 angles of qtn's ``su4`` gate and a global phase with u = exp(i phase) su4(angles).

    From Qiskit's Weyl (KAK) decomposition u = exp(i g) (K1l x K1r) CAN(a, b, c) (K2l x K2r):
    angles 0-5 are K1l, K1r as U3, 6-8 are (a, b, c), 9-14 are K2l, K2r.
    """
    from qiskit.synthesis import OneQubitEulerDecomposer, TwoQubitWeylDecomposition

    w = TwoQubitWeylDecomposition(np.asarray(u, dtype=complex))
    euler = OneQubitEulerDecomposer("U3")
    angles, phase = [], float(w.global_phase)
    for k in (w.K1l, w.K1r, None, w.K2l, w.K2r):
        if k is None:
            angles += [w.a, w.b, w.c]
            continue
        t, p, lam, ph = euler.angles_and_phase(k)
        angles += [t, p, lam]
        phase += ph
    return np.asarray(angles, dtype=float), phase


def complete_isometry(v: np.ndarray, seed: int = 0) -> np.ndarray:
    """A unitary whose first columns are the isometry ``v`` (n x m, orthonormal columns)."""
    v = np.asarray(v, dtype=complex)
    n, m = v.shape
    err = np.abs(v.conj().T @ v - np.eye(m)).max() if m else 0.0
    if err > 1e-8:
        raise ValueError(f"v is not an isometry: max |V^dagger V - I| = {err:.3g}")
    if m == n:
        return v
    rng = np.random.default_rng(seed)
    extra = rng.normal(size=(n, n - m)) + 1j * rng.normal(size=(n, n - m))
    extra -= v @ (v.conj().T @ extra)
    q, _ = np.linalg.qr(extra)
    q -= v @ (v.conj().T @ q)  # one more Gram-Schmidt pass for orthogonality to 1e-16
    q, _ = np.linalg.qr(q)
    return np.concatenate([v, q], axis=1)


def _gamma_trace_imag(u: np.ndarray) -> float:
    yy = np.kron([[0, -1j], [1j, 0]], [[0, -1j], [1j, 0]])
    su = u / np.linalg.det(u) ** 0.25
    return float(np.imag(np.trace(su @ yy @ su.T @ yy)))


def two_qubit_cx_count(u: np.ndarray) -> int:
    """The fewest CX that realise the two-qubit unitary ``u`` exactly (0 to 3)."""
    from qiskit.synthesis import TwoQubitWeylDecomposition

    w = TwoQubitWeylDecomposition(_little_endian(np.asarray(u, dtype=complex)))
    a, b, c = abs(w.a), abs(w.b), abs(w.c)
    tol = 1e-9
    if a < tol and b < tol and c < tol:
        return 0
    if abs(a - np.pi / 4) < tol and b < tol and c < tol:
        return 1
    return 2 if c < tol else 3


def complete_two_qubit(v: np.ndarray, seed: int = 0) -> tuple[np.ndarray, int]:
    """Complete a two-qubit isometry (4 x m) to a unitary needing the fewest CX.

    m = 1 (a state) completes to a 1-CX unitary (Schmidt form); m = 2 to a 2-CX
    unitary, found by solving Im tr gamma(U) = 0 over the free columns. Returns
    the unitary and its CX count.
    """
    v = np.asarray(v, dtype=complex)
    m = v.shape[1]
    if m == 1:
        psi = v[:, 0].reshape(2, 2)
        uu, s, vh = np.linalg.svd(psi)
        ry = np.array([[s[0], -s[1]], [s[1], s[0]]]) / np.hypot(s[0], s[1])
        cx = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
        u = np.kron(uu, vh.T) @ cx @ np.kron(ry, np.eye(2))
        return u, two_qubit_cx_count(u)
    base = complete_isometry(v, seed)
    if m != 2:
        return base, two_qubit_cx_count(base)
    x = base[:, 2:]
    from scipy.optimize import least_squares

    def unitary(p):
        a, b, c = p
        g = np.array([[np.cos(a) * np.exp(1j * b), -np.sin(a) * np.exp(-1j * c)],
                      [np.sin(a) * np.exp(1j * c), np.cos(a) * np.exp(-1j * b)]])  # fmt: skip
        return np.concatenate([v, x @ g], axis=1)

    rng = np.random.default_rng(seed)
    best = base
    for _ in range(20):
        res = least_squares(lambda p: [_gamma_trace_imag(unitary(p))], rng.uniform(-3, 3, 3),
                            xtol=1e-15, ftol=1e-15, gtol=1e-15)  # fmt: skip
        cand = unitary(res.x)
        if two_qubit_cx_count(cand) <= 2:
            return cand, two_qubit_cx_count(cand)
    return best, two_qubit_cx_count(best)


def cs_isometry(v: np.ndarray, seed: int = 0):
    """The cosine-sine decomposition of an isometry from k to k + 1 qubits.

    ``v`` is (2^(k+1), 2^k): rows big-endian over (w0, w1..wk), columns over
    (w1..wk) with the fresh qubit w0 in |0>. Returns ``(b1, theta, a1, a2)`` with
    v = [[a1 C], [a2 S]] b1, C = diag(cos theta), S = diag(sin theta): apply b1 on
    w1..wk, then RY(2 theta_j) on w0 controlled by w1..wk = j, then a1 (w0 = 0) or
    a2 (w0 = 1) on w1..wk.
    """
    from scipy.linalg import cossin

    v = np.asarray(v, dtype=complex)
    half = v.shape[1]
    u = complete_isometry(v, seed)
    (a1, a2), theta, (b1, _) = cossin(u, p=half, q=half, separate=True)
    return b1, theta, a1, a2


def demultiplex(a1: np.ndarray, a2: np.ndarray):
    """(W, phases, V) with a1 = V D W, a2 = V D^dagger W, D = diag(exp(i phases))."""
    from scipy.linalg import schur

    t, z = schur(a1 @ a2.conj().T, output="complex")
    lam = np.diag(t)
    d = np.sqrt(lam)
    w = np.diag(d) @ z.conj().T @ a2
    return w, np.angle(d), z
