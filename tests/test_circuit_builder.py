"""The Qiskit-style builder: in place, angles before qubits, snapshots that keep caches honest;
the gate registry's inverse and shift rules against numeric oracles."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from qiskit.quantum_info import Statevector

from qtn.circuit import (
    GATES,
    Barrier,
    Circuit,
    Feature,
    Trainable,
    brickwork,
    brickwork_layout,
    gate_matrix,
    get_gate,
    list_gates,
    staircase,
    tree,
    tree_layout,
)
from qtn.execution import Runner
from qtn.execution import runner as runner_mod
from qtn.export import from_qiskit, to_qiskit
from qtn.simulation import PLAN_STATS, probabilities, simulate, statevector

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't import `kahypar`")

_METHOD = {"u3": "u"}  # registry name -> builder method where they differ


def test_builder_appends_in_place_and_chains():
    c = Circuit(2)
    assert c.h(0) is c
    c.cx(0, 1)
    assert len(c) == 2 and [op.name for op in c.ops] == ["h", "cx"]
    c.ry(0.3, 1).rzz(Trainable(0), 0, 1)
    assert c.ops[-1].angles == (Trainable(0),) and c.ops[-1].qubits == (0, 1)
    # Qiskit-style broadcasting of qubit arguments
    d = Circuit(3).h([0, 1, 2]).cx([0, 1], [1, 2])
    assert [op.qubits for op in d.ops] == [(0,), (1,), (2,), (0, 1), (1, 2)]


@pytest.mark.parametrize("name", sorted(GATES))
def test_every_registered_gate_has_a_builder_with_angles_first(name):
    g = GATES[name]
    method = getattr(Circuit, _METHOD.get(name, name))
    angles = list(np.random.default_rng(0).uniform(-2, 2, g.n_angles))
    qubits = list(range(g.n_qubits))
    c = Circuit(g.n_qubits)
    if name in ("su4", "kak"):
        method(c, *qubits, angles=angles)
    else:
        params = list(inspect.signature(method).parameters)[1:]
        assert len(params) == g.n_angles + g.n_qubits
        method(c, *angles, *qubits)
    op = c.ops[0]
    assert op.name == name and op.qubits == tuple(qubits)
    np.testing.assert_allclose(op.numeric_matrix(), gate_matrix(name, angles))


def test_measure_all_barrier_compose_and_copy():
    c = Circuit(3).h(0).measure(0, 0)
    c.measure_all()
    assert c.n_clbits == 4 and isinstance(c.ops[2], Barrier)
    assert [(op.qubit, op.clbit) for op in c.ops[3:]] == [(0, 1), (1, 2), (2, 3)]
    assert c.count_ops() == {"measure": 4, "h": 1, "barrier": 1}
    small = Circuit(2).cx(0, 1)
    big = Circuit(4).compose(small, qubits=[3, 1])
    assert big.ops[0].qubits == (3, 1)
    assert Circuit(2).compose(small, inplace=True) is None
    copy = small.copy().x(0)
    assert len(small) == 1 and len(copy) == 2


def test_snapshots_are_frozen_and_keep_plans_honest():
    c = Circuit(2).ry(Feature(0), 0).cx(0, 1)
    sim = simulate(c, dtype="complex128")
    p_before = sim.probs([1], data=[0.4])
    c.x(1)  # change the circuit after planning
    searches = PLAN_STATS["searches"]
    np.testing.assert_allclose(sim.probs([1], data=[0.4]), p_before)  # the snapshot it holds
    fresh = simulate(c, dtype="complex128").probs([1], data=[0.4])
    assert (
        PLAN_STATS["searches"] == searches + 1
    )  # a new structure: a new plan, never the stale one
    np.testing.assert_allclose(fresh, probabilities(c, [1], data=[0.4]), atol=1e-12)
    np.testing.assert_allclose(fresh, p_before[::-1], atol=1e-12)
    snap = c.snapshot()
    assert snap.frozen and snap.snapshot() is snap
    with pytest.raises(ValueError, match="frozen snapshot"):
        snap.h(0)
    with pytest.raises(ValueError, match="frozen snapshot"):
        snap.global_phase = 1.0


def test_runner_never_reuses_a_stale_transpilation():
    c = Circuit(2).x(0)
    runner = Runner(c, seed=0)
    n_cached = len(runner_mod._TRANSPILED)
    c.x(1)
    # the runner measures what it was built with
    np.testing.assert_allclose(runner.run(shots=200).probs, [0, 0, 1, 0])
    again = Runner(c, seed=0)
    assert len(runner_mod._TRANSPILED) == n_cached + 1
    np.testing.assert_allclose(again.run(shots=200).probs, [0, 0, 0, 1])
    assert len(c) == 2  # the runner added its measurements to its own copy


@pytest.mark.parametrize("name", sorted(GATES))
def test_registry_inverse_is_the_dagger(name):
    g = GATES[name]
    angles = tuple(np.random.default_rng(1).uniform(-2, 2, g.n_angles))
    m = gate_matrix(name, angles)
    inv = Circuit(g.n_qubits)
    inv.gate(name, *angles, *range(g.n_qubits))
    inv = inv.inverse()
    np.testing.assert_allclose(inv.ops[0].numeric_matrix(), m.conj().T, atol=1e-12)
    if g.n_angles and g.inverse is not None:  # symbolic: a trainable inverse stays trainable
        sym = Circuit(g.n_qubits)
        sym.gate(name, *[Trainable(i) for i in range(g.n_angles)], *range(g.n_qubits))
        assert sym.inverse().n_params == g.n_angles
        np.testing.assert_allclose(
            sym.inverse().ops[0].numeric_matrix(theta=np.array(angles)), m.conj().T, atol=1e-12
        )


@pytest.mark.parametrize("name", sorted(n for n, g in GATES.items() if g.shift_terms is not None))
def test_registry_shift_rule_is_exact(name):
    """d<Z...Z>/da = sum_t r_t (f(a + s_t) - f(a - s_t)) for every angle (two-term and
    four-term rules), against finite differences."""
    g = get_gate(name)
    rng = np.random.default_rng(2)
    n = g.n_qubits
    prep = Circuit(n)
    for q in range(n):  # a generic product state
        prep.u(0.7 + 0.4 * q, 0.3 - q, -1.1 + 0.5 * q, q)
    obs = np.diag(np.array([(-1) ** bin(k).count("1") for k in range(2**n)], float))

    def f(angles):
        c = prep.copy()
        c.gate(name, *angles, *range(n))
        for q in range(n):  # a generic basis change, so that diagonal gates move <Z...Z> too
            c.u(0.9, 0.4 * q, 0.1, q)
        psi = statevector(c)
        return float(np.real(psi.conj() @ obs @ psi))

    if g.shift is not None:
        assert g.shift_terms == (g.shift,)
    for k in range(g.n_angles):
        a = rng.uniform(-2, 2, g.n_angles)
        e = np.zeros(g.n_angles)
        e[k] = 1
        fd = (f(a + 1e-6 * e) - f(a - 1e-6 * e)) / 2e-6
        rule = sum(r * (f(a + s * e) - f(a - s * e)) for s, r in g.shift_terms)
        assert abs(fd) > 1e-3 or k > 0  # the check is not vacuous
        np.testing.assert_allclose(rule, fd, atol=1e-7)


def test_global_phase_kept_across_the_qiskit_bridge():
    c = Circuit(2, global_phase=0.4).h(0).cx(0, 1)
    np.testing.assert_allclose(statevector(c)[0], np.exp(0.4j) / np.sqrt(2))
    qc = to_qiskit(c)
    assert qc.global_phase == pytest.approx(0.4)
    np.testing.assert_allclose(Statevector(qc).data, statevector(c), atol=1e-12)
    back, _ = from_qiskit(qc)
    assert back.global_phase == pytest.approx(0.4)
    np.testing.assert_allclose(
        simulate(c, dtype="complex128").statevector(), statevector(c), atol=1e-12
    )


def test_layouts():
    assert brickwork_layout(5, 3) == [(0, 1), (2, 3), (1, 2), (3, 4), (0, 1), (2, 3)]
    assert tree_layout(5) == [[(0, 1), (2, 3)], [(1, 3)], [(3, 4)]]
    t = tree(4, discard=True)
    assert t.n_params == 45 and sum(type(op).__name__ == "Discard" for op in t.ops) == 3
    assert brickwork(4, 2).count_2q() == 3 and staircase(4, 2).n_features == 4
    assert "unitary" in list_gates()


def test_builder_errors_name_the_argument():
    with pytest.raises(ValueError, match="takes exactly one of start="):
        Circuit(2).su4(0, 1)
    with pytest.raises(ValueError, match="qubits must be integers"):
        Circuit(2).h("0")
    with pytest.raises(ValueError, match="angle 0 of gate 'ry' must be a finite float"):
        Circuit(1).ry(float("nan"), 0)
    with pytest.raises(ValueError, match="Trainable scale must be a finite real number"):
        Trainable(0, scale=float("nan"))
    with pytest.raises(ValueError, match="unknown gate 'foo'; valid gates"):
        Circuit(1).gate("foo", 0)
    with pytest.raises(ValueError, match="cannot broadcast"):
        Circuit(3).cx([0, 1], [1, 2, 0])
    with pytest.raises(ValueError, match="clbit index must be an integer >= 0"):
        Circuit(1).measure(0, -1)
