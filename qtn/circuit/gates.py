"""The gate registry: every gate's matrix, inverse and gradient rule, by name.

A gate is declared once with :func:`register_gate`: its number of qubits and
angles, a matrix function, how to invert it, and whether a two-term
parameter-shift rule holds for its angles. :meth:`qtn.circuit.Circuit.inverse`,
the simulator, the dense oracle and shot-based fine-tuning all read this table;
nothing else in qtn lists gate names.

Matrix functions are generic over the array namespace ``xp`` (numpy by
default; the simulator passes ``jax.numpy`` to trace and differentiate them)
and return the (2**k, 2**k) matrix in quimb's (big-endian) qubit order: the
first qubit of the gate is the most significant bit of the matrix index.

Examples
--------
>>> from qtn.circuit import gate_matrix, get_gate
>>> gate_matrix("rx", [3.14159265]).round(3)[0, 1]
np.complex128(-1j)
>>> get_gate("ry").shift
(1.5707963267948966, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PAULI",
    "SHIFT_HALF_PAULI",
    "SHIFT_FOUR_TERM",
    "GateDef",
    "GATES",
    "register_gate",
    "get_gate",
    "list_gates",
    "gate_matrix",
]

#: The Pauli matrices, defined once for all of qtn.
PAULI: dict[str, np.ndarray] = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.diag([1.0, -1.0]).astype(complex),
}
for _m in PAULI.values():
    _m.setflags(write=False)

_XX = np.kron(PAULI["X"], PAULI["X"])
_YY = np.kron(PAULI["Y"], PAULI["Y"])
_ZZ = np.kron(PAULI["Z"], PAULI["Z"])
_ZX = np.kron(PAULI["Z"], PAULI["X"])

#: d f / d a = r (f(a + s) - f(a - s)) for exp(-i a P / 2), P a Pauli product
SHIFT_HALF_PAULI = (math.pi / 2, 0.5)
#: The four-term rule (Anselmetti et al., arXiv:2107.12390) for generators with
#: eigenvalue gaps in {1/2, 1}, such as controlled rotations exp(-i a |1><1| (x) P / 2):
#: d f / d a = d1 (f(a + pi/2) - f(a - pi/2)) - d2 (f(a + 3 pi/2) - f(a - 3 pi/2))
SHIFT_FOUR_TERM = (
    (math.pi / 2, (math.sqrt(2) + 1) / (4 * math.sqrt(2))),
    (3 * math.pi / 2, -(math.sqrt(2) - 1) / (4 * math.sqrt(2))),
)


@dataclass(frozen=True)
class GateDef:
    """A registered gate.

    Attributes
    ----------
    name
        Registry name (lower case, Qiskit's name where Qiskit has the gate).
    n_qubits, n_angles
        Number of qubits it acts on and of angles it takes.
    matrix
        ``matrix(*angles, xp=numpy)``: the (2**k, 2**k) matrix, big-endian.
    inverse
        ``inverse(angles) -> (name, angles)``: the inverse as a registered gate,
        valid for symbolic angles (they are only negated or permuted). ``None``
        means the inverse is the conjugate transpose of the numeric matrix.
    shift
        ``(s, r)`` when every angle ``a`` obeys the two-term rule
        d<O>/da = r (<O>(a + s) - <O>(a - s)); ``None`` when it does not.
    shift_terms
        The general rule d<O>/da = sum_t r_t (<O>(a + s_t) - <O>(a - s_t)) as
        ``((s_1, r_1), (s_2, r_2), ...)``, the same for every angle: one term for a
        two-term gate (equal to ``shift``), two for the four-term rule of controlled
        rotations (:data:`SHIFT_FOUR_TERM`); ``None`` when no such rule holds.
    """

    name: str
    n_qubits: int
    n_angles: int
    matrix: Callable[..., np.ndarray]
    inverse: Callable[[tuple], tuple[str, tuple]] | None = None
    shift: tuple[float, float] | None = None
    shift_terms: tuple[tuple[float, float], ...] | None = None


GATES: dict[str, GateDef] = {}


def register_gate(
    name: str,
    n_qubits: int,
    n_angles: int,
    matrix: Callable[..., np.ndarray],
    *,
    inverse: Callable[[tuple], tuple[str, tuple]] | str | None = None,
    shift: tuple[float, float] | None = None,
    shift_terms: Sequence[tuple[float, float]] | None = None,
) -> GateDef:
    """Add a gate to the registry (or replace one of the same name).

    ``inverse`` may also be a gate name: the inverse is that gate with the same
    angles (``"sdg"`` for ``"s"``; the gate's own name for a self-inverse gate).
    ``shift`` is a two-term rule ``(s, r)``; ``shift_terms`` a rule of several
    terms ``((s_1, r_1), ...)`` (give one of them; a one-term ``shift_terms`` is
    also a two-term ``shift``).

    Examples
    --------
    >>> import numpy as np
    >>> g = register_gate("my_x", 1, 0, lambda xp=np: xp.asarray(PAULI["X"]), inverse="my_x")
    >>> g.n_qubits, g.shift_terms
    (1, None)
    >>> _ = GATES.pop("my_x")
    """
    if shift is not None and shift_terms is not None:
        raise ValueError("give shift (a two-term rule) or shift_terms, not both")
    if shift is not None:
        shift = (float(shift[0]), float(shift[1]))
        shift_terms = (shift,)
    elif shift_terms is not None:
        shift_terms = tuple((float(s), float(r)) for s, r in shift_terms)
        if not shift_terms:
            raise ValueError("shift_terms must hold at least one (s, r) pair")
        shift = shift_terms[0] if len(shift_terms) == 1 else None
    if not isinstance(name, str) or not name or name != name.lower():
        raise ValueError(f"name must be a non-empty lower-case string, got {name!r}")
    if name in ("unitary", "measure", "reset", "discard", "barrier", "noise"):
        raise ValueError(f"name {name!r} is reserved for a circuit operation")
    if isinstance(inverse, str):
        other = inverse
        inverse = lambda angles, _o=other: (_o, tuple(angles))  # noqa: E731
    g = GateDef(name, int(n_qubits), int(n_angles), matrix, inverse, shift, shift_terms)
    GATES[name] = g
    return g


def list_gates() -> list[str]:
    """Names of the registered gates, plus ``"unitary"`` for explicit matrices."""
    return sorted(GATES) + ["unitary"]


def get_gate(name: str) -> GateDef:
    """The :class:`GateDef` registered as ``name``; the error lists the valid names."""
    try:
        return GATES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown gate {name!r}; valid gates: {list_gates()}") from None


def gate_matrix(name: str, angles: Sequence[float] = ()) -> np.ndarray:
    """The numeric matrix of gate ``name`` at ``angles`` (big-endian, complex128)."""
    g = get_gate(name)
    if len(angles) != g.n_angles:
        raise ValueError(f"gate {name!r} takes {g.n_angles} angles, got {len(angles)}")
    return np.asarray(g.matrix(*[float(a) for a in angles]), dtype=complex)


# ----------------------------------------------------------------------------- matrix functions


def _const(m):
    m = np.asarray(m, dtype=complex)
    m.setflags(write=False)
    return lambda xp=np: xp.asarray(m)


def _cdt(xp, t):
    """The complex dtype matching the precision of angle ``t``."""
    return (xp.cos(t) + 0j).dtype


def _rx(t, xp=np):
    c, s = xp.cos(t / 2) + 0j, -1j * xp.sin(t / 2)
    return xp.stack([xp.stack([c, s]), xp.stack([s, c])])


def _ry(t, xp=np):
    c, s = xp.cos(t / 2) + 0j, xp.sin(t / 2) + 0j
    return xp.stack([xp.stack([c, -s]), xp.stack([s, c])])


def _rz(t, xp=np):
    z = xp.zeros_like(t) + 0j
    return xp.stack([xp.stack([xp.exp(-0.5j * t), z]), xp.stack([z, xp.exp(0.5j * t)])])


def _phase(t, xp=np):
    z = xp.zeros_like(t) + 0j
    return xp.stack([xp.stack([z + 1, z]), xp.stack([z, xp.exp(1j * t)])])


def _u3(t, p, lam, xp=np):
    c, s = xp.cos(t / 2) + 0j, xp.sin(t / 2) + 0j
    return xp.stack(
        [
            xp.stack([c, -xp.exp(1j * lam) * s]),
            xp.stack([xp.exp(1j * p) * s, xp.exp(1j * (p + lam)) * c]),
        ]
    )


def _rzz(t, xp=np):
    e, f = xp.exp(-0.5j * t), xp.exp(0.5j * t)
    z = xp.zeros_like(e)
    return xp.stack(
        [
            xp.stack([e, z, z, z]),
            xp.stack([z, f, z, z]),
            xp.stack([z, z, f, z]),
            xp.stack([z, z, z, e]),
        ]
    )


def _pauli_rotation(p):
    """exp(-i t/2 P) for a Pauli product P (P^2 = I)."""
    p = np.asarray(p)

    def rot(t, xp=np):
        dt = _cdt(xp, t)
        eye = xp.asarray(np.eye(p.shape[0])).astype(dt)
        return xp.cos(t / 2) * eye - 1j * xp.sin(t / 2) * xp.asarray(p).astype(dt)

    return rot


def _can(a, b, c, xp=np):
    """exp(i (a XX + b YY + c ZZ)) in closed form: the three terms commute and square to I."""
    dt = _cdt(xp, a)
    eye = xp.asarray(np.eye(4)).astype(dt)
    out = eye
    for t, p in ((a, _XX), (b, _YY), (c, _ZZ)):
        out = out @ (xp.cos(t) * eye + 1j * xp.sin(t) * xp.asarray(p).astype(dt))
    return out


def _su4(*t, xp=np):
    """General two-qubit block, 15 parameters (KAK): (u3 x u3) . CAN(a, b, c) . (u3 x u3).

    In time order: the second pair ``t[9:15]`` acts first, then CAN(t[6:9]), then
    ``t[0:6]``.
    """
    k1 = xp.kron(_u3(*t[0:3], xp=xp), _u3(*t[3:6], xp=xp))
    k2 = xp.kron(_u3(*t[9:12], xp=xp), _u3(*t[12:15], xp=xp))
    return k1 @ _can(*t[6:9], xp=xp) @ k2


# ----------------------------------------------------------------------------- inverses


def _negate_all(name):
    return lambda angles: (name, tuple(negate_angle(a) for a in angles))


def negate_angle(a):
    """-a for a float or a symbolic angle (its scale and offset negated)."""
    neg = getattr(a, "negated", None)
    return neg() if neg is not None else -float(a)


def _u3_inverse_angles(t, p, lam):
    return (negate_angle(t), negate_angle(lam), negate_angle(p))


def _u3_inverse(angles):
    return "u3", _u3_inverse_angles(*angles)


def _su4_inverse(t):
    """(k1 CAN k2)^-1 = k2^dagger CAN(-a, -b, -c) k1^dagger, each u3 inverted."""
    k1 = (*_u3_inverse_angles(*t[9:12]), *_u3_inverse_angles(*t[12:15]))
    k2 = (*_u3_inverse_angles(*t[0:3]), *_u3_inverse_angles(*t[3:6]))
    return "su4", (*k1, *(negate_angle(a) for a in t[6:9]), *k2)


_SQ2 = 1 / math.sqrt(2)
_SX = 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]])

for _name, _mat in (("id", np.eye(2)), ("h", [[_SQ2, _SQ2], [_SQ2, -_SQ2]]), ("x", PAULI["X"]),
                    ("y", PAULI["Y"]), ("z", PAULI["Z"])):  # fmt: skip
    register_gate(_name, 1, 0, _const(_mat), inverse=_name)
register_gate("s", 1, 0, _const(np.diag([1, 1j])), inverse="sdg")
register_gate("sdg", 1, 0, _const(np.diag([1, -1j])), inverse="s")
register_gate("t", 1, 0, _const(np.diag([1, np.exp(0.25j * math.pi)])), inverse="tdg")
register_gate("tdg", 1, 0, _const(np.diag([1, np.exp(-0.25j * math.pi)])), inverse="t")
register_gate("sx", 1, 0, _const(_SX), inverse="sxdg")
register_gate("sxdg", 1, 0, _const(_SX.conj().T), inverse="sx")
for _name, _fn in (("rx", _rx), ("ry", _ry), ("rz", _rz)):
    register_gate(_name, 1, 1, _fn, inverse=_negate_all(_name), shift=SHIFT_HALF_PAULI)
# p(l) = exp(i l/2) rz(l): the global phase cancels in every expectation, so the rule holds
register_gate("p", 1, 1, _phase, inverse=_negate_all("p"), shift=SHIFT_HALF_PAULI)
# u3 = exp(i (p + l)/2) rz(p) ry(t) rz(l): each angle enters as one Pauli rotation
register_gate("u3", 1, 3, _u3, inverse=_u3_inverse, shift=SHIFT_HALF_PAULI)
_CX = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
_SWAP = [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]]
register_gate("cx", 2, 0, _const(_CX), inverse="cx")
_CY = np.block([[np.eye(2), np.zeros((2, 2))], [np.zeros((2, 2)), PAULI["Y"]]])
register_gate("cy", 2, 0, _const(_CY), inverse="cy")
register_gate("cz", 2, 0, _const(np.diag([1, 1, 1, -1])), inverse="cz")
register_gate("swap", 2, 0, _const(_SWAP), inverse="swap")
register_gate("iswap", 2, 0, _const([[1, 0, 0, 0], [0, 0, 1j, 0], [0, 1j, 0, 0], [0, 0, 0, 1]]))
register_gate("rzz", 2, 1, _rzz, inverse=_negate_all("rzz"), shift=SHIFT_HALF_PAULI)
register_gate("rxx", 2, 1, _pauli_rotation(_XX), inverse=_negate_all("rxx"), shift=SHIFT_HALF_PAULI)
register_gate("ryy", 2, 1, _pauli_rotation(_YY), inverse=_negate_all("ryy"), shift=SHIFT_HALF_PAULI)
register_gate("rzx", 2, 1, _pauli_rotation(_ZX), inverse=_negate_all("rzx"), shift=SHIFT_HALF_PAULI)
_CX_BA = [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]]


def _kak(*t, xp=np):
    """The native 3-CX SU(4) block (Vatan & Williams, PRA 69, 032315 (2004)), 15 angles.

    In time order: U3(t0..t2) on a, U3(t3..t5) on b, CX(b, a), RZ(t6) on a, RY(t7)
    on b, CX(a, b), RY(t8) on b, CX(b, a), U3(t9..t11) on a, U3(t12..t14) on b. Every
    angle enters as one Pauli rotation (the two-term shift rule holds); Qiskit export
    expands it into those gates. No symbolic inverse: bind angles to invert it.
    """
    dt = _cdt(xp, t[0])
    cx_ba = xp.asarray(np.array(_CX_BA, dtype=complex)).astype(dt)
    cx_ab = xp.asarray(np.array(_CX, dtype=complex)).astype(dt)
    eye = xp.asarray(np.eye(2, dtype=complex)).astype(dt)
    k2 = xp.kron(_u3(*t[0:3], xp=xp), _u3(*t[3:6], xp=xp))
    mid = xp.kron(_rz(t[6], xp=xp), _ry(t[7], xp=xp))
    ry = xp.kron(eye, _ry(t[8], xp=xp))
    k1 = xp.kron(_u3(*t[9:12], xp=xp), _u3(*t[12:15], xp=xp))
    return k1 @ cx_ba @ ry @ cx_ab @ mid @ cx_ba @ k2


register_gate("kak", 2, 15, _kak, shift=SHIFT_HALF_PAULI)
# su4's CAN angles enter as exp(i a P) = exp(-i (-2a) P / 2): a different shift, so no
# single rule covers all 15 angles; fine-tuning refuses it and points to SPSA
register_gate("su4", 2, 15, _su4, inverse=_su4_inverse)


# ----------------------------------------------------------------------------- controlled gates
# Qiskit's standard library beyond the gates above; matrices big-endian with the
# control(s) first, checked against ``qiskit.quantum_info.Operator`` in the tests.


def _controlled(fn):
    """The matrix function of |0><0| (x) I + |1><1| (x) U(angles): the first qubit controls."""

    def m(*t, xp=np):
        u = fn(*t, xp=xp)
        z = xp.zeros_like(u)
        eye = xp.eye(u.shape[0], dtype=u.dtype)
        return xp.concatenate([xp.concatenate([eye, z], 1), xp.concatenate([z, u], 1)], 0)

    return m


def _ctrl_const(m):
    m = np.asarray(m, dtype=complex)
    d = m.shape[0]
    return np.block([[np.eye(d), np.zeros((d, d))], [np.zeros((d, d)), m]])


def _u4(t, p, lam, g, xp=np):
    """exp(i g) U(t, p, lam): the target block of Qiskit's CU."""
    return xp.exp(1j * g) * _u3(t, p, lam, xp=xp)


def _r(t, phi, xp=np):
    """Qiskit's R(theta, phi) = exp(-i theta/2 (cos(phi) X + sin(phi) Y))."""
    c, s = xp.cos(t / 2) + 0j, xp.sin(t / 2) + 0j
    return xp.stack(
        [
            xp.stack([c, -1j * xp.exp(-1j * phi) * s]),
            xp.stack([-1j * xp.exp(1j * phi) * s, c]),
        ]
    )


def _xx_plus_yy(t, beta, xp=np):
    """Qiskit's XXPlusYYGate(theta, beta), big-endian on (qubit1, qubit2)."""
    c, s = xp.cos(t / 2) + 0j, xp.sin(t / 2) + 0j
    o, z = xp.ones_like(c), xp.zeros_like(c)
    a, b = -1j * s * xp.exp(1j * beta), -1j * s * xp.exp(-1j * beta)
    return xp.stack(
        [xp.stack([o, z, z, z]), xp.stack([z, c, a, z]), xp.stack([z, b, c, z]),
         xp.stack([z, z, z, o])]
    )  # fmt: skip


def _xx_minus_yy(t, beta, xp=np):
    """Qiskit's XXMinusYYGate(theta, beta), big-endian on (qubit1, qubit2)."""
    c, s = xp.cos(t / 2) + 0j, xp.sin(t / 2) + 0j
    o, z = xp.ones_like(c), xp.zeros_like(c)
    a, b = -1j * s * xp.exp(-1j * beta), -1j * s * xp.exp(1j * beta)
    return xp.stack(
        [xp.stack([c, z, z, a]), xp.stack([z, o, z, z]), xp.stack([z, z, o, z]),
         xp.stack([b, z, z, c])]
    )  # fmt: skip


def _cu_inverse(angles):
    t, p, lam, g = angles
    return "cu", (*_u3_inverse_angles(t, p, lam), negate_angle(g))


def _first_negated(name):
    return lambda angles: (name, (negate_angle(angles[0]), *angles[1:]))


_H = np.array([[_SQ2, _SQ2], [_SQ2, -_SQ2]])
register_gate("ch", 2, 0, _const(_ctrl_const(_H)), inverse="ch")
register_gate("cs", 2, 0, _const(np.diag([1, 1, 1, 1j])), inverse="csdg")
register_gate("csdg", 2, 0, _const(np.diag([1, 1, 1, -1j])), inverse="cs")
register_gate("csx", 2, 0, _const(_ctrl_const(_SX)))  # inverse: the numeric dagger
_CX10 = [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]]
register_gate("dcx", 2, 0, _const(np.array(_CX10) @ np.array(_CX)))  # CX(0,1) then CX(1,0)
_ECR = (np.kron(PAULI["X"], PAULI["I"]) - np.kron(PAULI["Y"], PAULI["X"])) * _SQ2
register_gate("ecr", 2, 0, _const(_ECR), inverse="ecr")
# cp = exp(i t |11><11|): one eigenvalue gap of 1, so the two-term rule of p holds
register_gate("cp", 2, 1, _controlled(_phase), inverse=_negate_all("cp"), shift=SHIFT_HALF_PAULI)
# controlled rotations exp(-i t |1><1| (x) P / 2): gaps 1/2 and 1, the four-term rule
for _name, _fn in (("crx", _rx), ("cry", _ry), ("crz", _rz)):
    register_gate(
        _name, 2, 1, _controlled(_fn), inverse=_negate_all(_name), shift_terms=SHIFT_FOUR_TERM
    )
# cu = C[P(g)] . C[P(p) RY(t) P(l)]: every angle is a cp- or cry-like generator
register_gate("cu", 2, 4, _controlled(_u4), inverse=_cu_inverse, shift_terms=SHIFT_FOUR_TERM)
# r and xx+-yy: their phase angle enters on both sides (frequencies up to 2): no rule here
register_gate("r", 1, 2, _r, inverse=_first_negated("r"))
register_gate("xx_plus_yy", 2, 2, _xx_plus_yy, inverse=_first_negated("xx_plus_yy"))
register_gate("xx_minus_yy", 2, 2, _xx_minus_yy, inverse=_first_negated("xx_minus_yy"))
register_gate("ccx", 3, 0, _const(_ctrl_const(_CX)), inverse="ccx")
register_gate("ccz", 3, 0, _const(np.diag([1, 1, 1, 1, 1, 1, 1, -1])), inverse="ccz")
register_gate("cswap", 3, 0, _const(_ctrl_const(_SWAP)), inverse="cswap")
