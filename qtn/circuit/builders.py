"""Named gate builders of :class:`qtn.circuit.Circuit`, one per registered gate.

Angles come before qubits and argument names follow Qiskit's ``QuantumCircuit``
methods; every builder appends in place through ``Circuit.gate`` and returns
the circuit, so calls chain. Qubit arguments broadcast as in Qiskit.

Examples
--------
>>> from qtn.circuit import Circuit
>>> c = Circuit(3).h(0).cx(0, 1).crz(0.3, 1, 2).ccx(0, 1, 2)
>>> [op.name for op in c.ops]
['h', 'cx', 'crz', 'ccx']
"""

from __future__ import annotations

from qtn.circuit.ops import Trainable, _check_index

__all__ = ["GateBuilders"]


class GateBuilders:
    """Mixin of :class:`~qtn.circuit.Circuit`: a builder method for each registered gate."""

    __slots__ = ()

    def gate(self, name: str, *args):  # pragma: no cover - provided by Circuit
        raise NotImplementedError

    def id(self, qubit):
        return self.gate("id", qubit)

    def h(self, qubit):
        return self.gate("h", qubit)

    def x(self, qubit):
        return self.gate("x", qubit)

    def y(self, qubit):
        return self.gate("y", qubit)

    def z(self, qubit):
        return self.gate("z", qubit)

    def s(self, qubit):
        return self.gate("s", qubit)

    def sdg(self, qubit):
        return self.gate("sdg", qubit)

    def t(self, qubit):
        return self.gate("t", qubit)

    def tdg(self, qubit):
        return self.gate("tdg", qubit)

    def sx(self, qubit):
        return self.gate("sx", qubit)

    def sxdg(self, qubit):
        return self.gate("sxdg", qubit)

    def rx(self, theta, qubit):
        return self.gate("rx", theta, qubit)

    def ry(self, theta, qubit):
        return self.gate("ry", theta, qubit)

    def rz(self, theta, qubit):
        return self.gate("rz", theta, qubit)

    def p(self, theta, qubit):
        return self.gate("p", theta, qubit)

    def u(self, theta, phi, lam, qubit):
        """Qiskit's U(theta, phi, lambda) (registered as ``u3``)."""
        return self.gate("u3", theta, phi, lam, qubit)

    u3 = u

    def cx(self, control, target):
        return self.gate("cx", control, target)

    def cy(self, control, target):
        return self.gate("cy", control, target)

    def cz(self, control, target):
        return self.gate("cz", control, target)

    def swap(self, qubit1, qubit2):
        return self.gate("swap", qubit1, qubit2)

    def iswap(self, qubit1, qubit2):
        return self.gate("iswap", qubit1, qubit2)

    def rxx(self, theta, qubit1, qubit2):
        return self.gate("rxx", theta, qubit1, qubit2)

    def ryy(self, theta, qubit1, qubit2):
        return self.gate("ryy", theta, qubit1, qubit2)

    def rzz(self, theta, qubit1, qubit2):
        return self.gate("rzz", theta, qubit1, qubit2)

    def rzx(self, theta, qubit1, qubit2):
        return self.gate("rzx", theta, qubit1, qubit2)

    def su4(self, qubit1, qubit2, *, start: int | None = None, angles=None):
        """A general two-qubit block (15 angles, KAK form).

        Give either ``start`` (trainable angles ``start .. start+14``) or ``angles``
        (15 floats, :class:`Trainable` or :class:`Feature`).
        """
        if (start is None) == (angles is None):
            raise ValueError("su4 takes exactly one of start= (trainable slots) or angles=")
        if angles is None:
            _check_index("start", start)
            angles = [Trainable(start + i) for i in range(15)]
        return self.gate("su4", *angles, qubit1, qubit2)

    def kak(self, qubit1, qubit2, *, start: int | None = None, angles=None):
        """The native 3-CX SU(4) block (15 angles; CX, U3, RY, RZ on export).

        Give either ``start`` (trainable angles ``start .. start+14``) or ``angles``.
        """
        if (start is None) == (angles is None):
            raise ValueError("kak takes exactly one of start= (trainable slots) or angles=")
        if angles is None:
            _check_index("start", start)
            angles = [Trainable(start + i) for i in range(15)]
        return self.gate("kak", *angles, qubit1, qubit2)

    # -- the rest of Qiskit's standard gate library
    def ch(self, control_qubit, target_qubit):
        return self.gate("ch", control_qubit, target_qubit)

    def cs(self, control_qubit, target_qubit):
        return self.gate("cs", control_qubit, target_qubit)

    def csdg(self, control_qubit, target_qubit):
        return self.gate("csdg", control_qubit, target_qubit)

    def csx(self, control_qubit, target_qubit):
        return self.gate("csx", control_qubit, target_qubit)

    def dcx(self, qubit1, qubit2):
        return self.gate("dcx", qubit1, qubit2)

    def ecr(self, qubit1, qubit2):
        return self.gate("ecr", qubit1, qubit2)

    def cp(self, theta, control_qubit, target_qubit):
        return self.gate("cp", theta, control_qubit, target_qubit)

    def crx(self, theta, control_qubit, target_qubit):
        return self.gate("crx", theta, control_qubit, target_qubit)

    def cry(self, theta, control_qubit, target_qubit):
        return self.gate("cry", theta, control_qubit, target_qubit)

    def crz(self, theta, control_qubit, target_qubit):
        return self.gate("crz", theta, control_qubit, target_qubit)

    def cu(self, theta, phi, lam, gamma, control_qubit, target_qubit):
        """Controlled exp(i gamma) U(theta, phi, lam), as Qiskit's ``cu``."""
        return self.gate("cu", theta, phi, lam, gamma, control_qubit, target_qubit)

    def r(self, theta, phi, qubit):
        """exp(-i theta/2 (cos(phi) X + sin(phi) Y)), as Qiskit's ``r``."""
        return self.gate("r", theta, phi, qubit)

    def xx_plus_yy(self, theta, beta, qubit1, qubit2):
        return self.gate("xx_plus_yy", theta, beta, qubit1, qubit2)

    def xx_minus_yy(self, theta, beta, qubit1, qubit2):
        return self.gate("xx_minus_yy", theta, beta, qubit1, qubit2)

    def ccx(self, control_qubit1, control_qubit2, target_qubit):
        return self.gate("ccx", control_qubit1, control_qubit2, target_qubit)

    def ccz(self, control_qubit1, control_qubit2, target_qubit):
        return self.gate("ccz", control_qubit1, control_qubit2, target_qubit)

    def cswap(self, control_qubit, target_qubit1, target_qubit2):
        return self.gate("cswap", control_qubit, target_qubit1, target_qubit2)
