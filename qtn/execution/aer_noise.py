"""qtn noise models as Aer noise models, with qtn's semantics exactly.

qtn's rule (:class:`qtn.noise.NoiseModel`): after a gate, every matching rule
applies its channel, **in the order the rules were added**; a 1-qubit channel
on a k-qubit gate acts on each of its qubits. Readout errors compose the same
way (later confusion matrices after earlier ones). Aer's rule differs: a
qubit-specific error *replaces* the all-qubit one, and a 1-qubit error on a
2-qubit instruction is refused. So the composed channel of every
(gate, qubits) that a qubit-specific rule touches is built here and given to
Aer as that qubit set's own error; the all-qubit composition serves the rest.
"""

from __future__ import annotations

import itertools

from qtn.circuit import GATES, Channel
from qtn.export import qiskit_matrix, qiskit_name
from qtn.noise import NoiseModel

__all__ = ["to_aer_noise_model", "rule_channel"]


def rule_channel(channel: Channel, n_gate_qubits: int, gate: str = "?") -> Channel:
    """``channel`` as it acts after a ``n_gate_qubits``-qubit gate (a 1-qubit one on each qubit)."""
    k = channel.n_qubits
    if k == n_gate_qubits:
        return channel
    if k == 1:
        out = channel
        for _ in range(n_gate_qubits - 1):
            out = out.tensor(channel)
        return out
    raise ValueError(
        f"a {k}-qubit channel {channel.name!r} cannot follow the {n_gate_qubits}-qubit gate "
        f"{gate!r}"
    )


def _compose(channels: list[Channel]) -> Channel:
    out = channels[0]
    for ch in channels[1:]:
        out = out.compose(ch)
    return out


def _aer_error(channel: Channel):
    """An Aer ``QuantumError`` of ``channel`` (big-endian Kraus -> Qiskit's order), Kraus
    operators reduced to the channel's Choi rank so composed rules stay small."""
    from qiskit.quantum_info import Choi, Kraus
    from qiskit_aer.noise import QuantumError

    kraus = Kraus([qiskit_matrix(k) for k in channel.kraus])
    if len(channel.kraus) > 4**channel.n_qubits:
        kraus = Kraus(Choi(kraus))
    return QuantumError(kraus)


def to_aer_noise_model(noise: NoiseModel):
    """An Aer ``NoiseModel`` that applies exactly what ``noise`` does in qtn.

    Parameters
    ----------
    noise
        A :class:`qtn.noise.NoiseModel`. Its gate rules must name gates that export
        as one Qiskit instruction (``su4`` and ``unitary`` do not, and a rule for
        all gates has no Aer equivalent: use ``Runner(noise=...)``, which inserts
        the channels into the circuit, for those).

    Returns
    -------
    qiskit_aer.noise.NoiseModel
        Qubit labels are kept (qtn qubit q is Aer qubit q). For each gate, the
        channels of the matching rules are composed in the order added; a
        1-qubit channel on a k-qubit gate is tensored onto each of its qubits.
        Every (gate, qubit tuple) that a qubit-specific rule touches gets its own
        composed error; the all-qubit rules compose into the default error.
        Readout confusion matrices compose per qubit the same way.

    Examples
    --------
    >>> from qtn.noise import NoiseModel, amplitude_damping, depolarizing
    >>> nm = (NoiseModel().add_gate_noise(depolarizing(0.5), ["x"])
    ...       .add_gate_noise(amplitude_damping(0.5), ["x"], qubits=[0]))
    >>> sorted(to_aer_noise_model(nm).noise_qubits)
    [0]
    """
    if not isinstance(noise, NoiseModel):
        raise TypeError(f"noise must be a qtn.noise.NoiseModel, got {type(noise).__name__}")
    from qiskit_aer.noise import NoiseModel as AerNoiseModel
    from qiskit_aer.noise import ReadoutError as AerReadoutError

    aer = AerNoiseModel()
    gates: list[str] = []
    for rule in noise.gate_rules:
        if rule.gates is None:
            raise ValueError(
                "a gate rule for all gates has no Aer equivalent; name the gates, or use "
                "qtn.execution.Runner(..., noise=...), which inserts the channels exactly"
            )
        for g in sorted(rule.gates):
            if qiskit_name(g) is None:
                raise ValueError(
                    f"gate {g!r} exports as several Qiskit instructions (or none), so an Aer "
                    "noise rule cannot match it; use qtn.execution.Runner(..., noise=...) instead"
                )
            if g not in gates:
                gates.append(g)
    for g in gates:
        k = GATES[g].n_qubits
        name = qiskit_name(g)
        rules = [r for r in noise.gate_rules if g in r.gates]
        general = [rule_channel(r.channel, k, g) for r in rules if r.qubits is None]
        tuples: set = set()
        for r in rules:
            if r.qubits is not None:
                tuples |= set(itertools.permutations(sorted(r.qubits), k))
        for qubits in sorted(tuples):
            chans = [rule_channel(r.channel, k, g) for r in rules
                     if r.qubits is None or set(qubits) <= r.qubits]  # fmt: skip
            aer.add_quantum_error(_aer_error(_compose(chans)), name, list(qubits))
        if general:
            aer.add_all_qubit_quantum_error(_aer_error(_compose(general)), name)
    general_ro = None
    specific: set = set()
    for qset, err in noise.readout:
        if qset is None:
            general_ro = err.matrix if general_ro is None else err.matrix @ general_ro
        else:
            specific |= set(qset)
    for q in sorted(specific):  # Aer: rows = true outcome, columns = read outcome
        aer.add_readout_error(AerReadoutError(noise.readout_matrix(q).T), [q])
    if general_ro is not None:
        aer.add_all_qubit_readout_error(AerReadoutError(general_ro.T))
    return aer
