"""Compilation: tensor-network states and models into parameterised circuits.

:func:`compile` ``(target, method="exact" | "layers" | "aqc", ...) -> (Circuit, CompileReport)``:

- ``exact``: the sequential circuit of (k+1)-qubit blocks of an MPS of bond
  dimension chi <= 2^k (``exact.py``), fewer CX than Qiskit's ``Isometry`` and
  QSD at every chi; ``reuse=True`` runs it on k + 1 qubits with mid-circuit
  measurement and reset (``reuse.py``). A TTN target gives the tree circuit of
  its node unitaries (``tree.py``); with ``reuse=True`` it runs on a number of
  wires logarithmic in the number of leaves;
- ``layers``: Ran's analytic layers of two-qubit gates (``layers.py``);
- ``aqc``: approximate compilation by optimising a staircase or brickwork of
  SU(4) blocks against the target, warm-started from ``layers`` (``aqc.py``).

``layers`` and ``aqc`` work on MPS; a TTN target is first converted to its exact
MPS (:func:`qtn.models.ttn_to_mps`), and the report's fidelity is against it.

Every method reports the fidelity it actually achieved (:class:`CompileReport`).
The circuits' angles are trainable parameters; ``report.params`` holds their
values, so ``circuit.bind(report.params)`` is the compiled state's circuit.
"""

from __future__ import annotations

import time

from qtn.compilation.exact import compile_exact
from qtn.compilation.models import CompiledClassifier, compile_classifier, to_qiskit
from qtn.compilation.report import (
    CompileReport,
    circuit_fidelity,
    cx_count,
    two_qubit_depth,
)
from qtn.compilation.reuse import measure_and_reuse, reuse_wires
from qtn.compilation.targets import as_mps, from_dense

__all__ = [
    "compile",
    "to_qiskit",
    "CompiledClassifier",
    "compile_classifier",
    "CompileReport",
    "METHODS",
    "as_mps",
    "from_dense",
    "circuit_fidelity",
    "cx_count",
    "measure_and_reuse",
    "reuse_wires",
]

METHODS = ("exact", "layers", "aqc")


def compile(target, method: str = "exact", **options):  # noqa: A001 - the pipeline's verb
    """Compile ``target`` into a parameterised circuit.

    Parameters
    ----------
    target
        A qtn :class:`~qtn.MPS` or :class:`~qtn.TTN`, a quimb ``MatrixProductState``,
        a list of cores (D_left, 2, D_right), a dense state vector, a tree Born machine
        (``structure="ttn"``), or a model with ``to_mps()``.
        It is normalised (with a warning if its norm is not 1).
    method
        ``"exact"``, ``"layers"`` or ``"aqc"``.
    **options
        ``exact``: ``reuse`` (bool, run on k + 1 qubits with measure/reset; a tree on
        O(k log P) wires), ``max_bond`` (MPS targets: truncate the target first; the
        report says what that cost),
        ``max_qubits`` (refuse a circuit wider than this), ``seed``.
        ``layers``: ``n_layers``, ``target_fidelity``, ``max_bond``, ``cutoff``.
        ``aqc``: ``ansatz`` ("staircase", "brickwork" or a circuit), ``n_layers``,
        ``initial_params``, ``initial`` (a circuit to start from), ``target_fidelity``,
        ``max_layers``, ``optimizer`` ("lbfgs" or an optax transform), ``maxiter``.

    Returns
    -------
    circuit, report
        A :class:`~qtn.circuit.Circuit` with trainable angles and a
        :class:`CompileReport` (``report.params`` binds it).

    Examples
    --------
    >>> psi = qtn.random_mps(0, n_sites=8, bond_dim=4)
    >>> circuit, report = qtn.compile(psi, method="exact")
    >>> round(report.fidelity, 10), report.n_2q
    (1.0, 84)
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {list(METHODS)}")
    t0 = time.perf_counter()
    tree = _as_tree(target)
    if tree is not None and method == "exact":
        return _exact_tree(tree, t0, **options)
    if tree is not None:
        from qtn.models import ttn_to_mps

        mps, _ = ttn_to_mps(tree)
        mps = as_mps(mps, name="the tree's MPS")
        circuit, report = _mps_method(mps, method, t0, **options)
        report.notes.insert(0, f"TTN target converted to its exact MPS (bond dimension "
                            f"{mps.bond_dim}) for method={method!r}")  # fmt: skip
        return circuit, report
    mps = as_mps(target)
    if method == "exact":
        return _exact(mps, t0, **options)
    return _mps_method(mps, method, t0, **options)


def _mps_method(mps, method, t0, **options):
    if method == "layers":
        from qtn.compilation.layers import compile_layers

        return compile_layers(mps, t0=t0, **options)
    from qtn.compilation.aqc import compile_aqc

    return compile_aqc(mps, t0=t0, **options)


def _exact(mps, t0, *, reuse: bool = False, max_bond: int | None = None,
           max_qubits: int | None = None, seed: int = 0):  # fmt: skip
    from qtn.compilation.exact import bond_qubits

    notes = []
    if max_bond is not None:
        from qtn.models import move_center

        if not isinstance(max_bond, int) or max_bond < 1:
            raise ValueError(f"max_bond must be an integer >= 1, got {max_bond!r}")
        truncated, disc = move_center(mps, 0, max_bond=max_bond)
        truncated, _ = move_center(truncated, mps.n_sites - 1, max_bond=max_bond)
        notes.append(f"target truncated to bond dimension {max_bond} (discarded weight {disc:.3g})")
        target_for_circuit = as_mps(_renorm(truncated), name="truncated target")
    else:
        target_for_circuit = mps
    if max_qubits is not None:
        k = bond_qubits(target_for_circuit)
        need = k + 1 if reuse else mps.n_sites
        if need > max_qubits:
            raise ValueError(
                f"max_qubits={max_qubits}: the exact circuit of this target needs {need} qubits "
                f"(bond dimension up to 2^{k}{', reused' if reuse else ''}); "
                "truncate it (max_bond=...), use reuse=True, or method='layers'/'aqc'"
            )
    circuit, params, k = compile_exact(target_for_circuit, reuse=False, seed=seed)
    fidelity = circuit_fidelity(circuit, params, mps)
    unrolled = circuit
    if reuse:
        circuit = measure_and_reuse(circuit)
        notes.append(f"runs on {circuit.n_qubits} qubits (k + 1 = {k + 1}) with measure and reset")
    return circuit, _exact_report(circuit, unrolled, params, fidelity, t0, notes)


def _as_tree(target):
    """The TTN of a tree target (a TTN, or a model whose ``structure`` is ``"ttn"``), else None."""
    from qtn.compilation.tree import as_ttn
    from qtn.models import TTN

    if isinstance(target, TTN):
        return as_ttn(target)
    if getattr(target, "structure", None) == "ttn" and hasattr(target, "params_"):
        return as_ttn(target.params_)
    return None


def _exact_tree(tree, t0, *, reuse: bool = False, max_qubits: int | None = None,
                seed: int = 0, max_bond=None):  # fmt: skip
    from qtn.compilation.tree import compile_tree
    from qtn.models import ttn_to_mps

    if max_bond is not None:
        raise ValueError(
            "max_bond: truncation before exact compilation applies to MPS targets; for a tree, "
            "train it with a smaller bond_dim or use method='layers'/'aqc' (which compile its MPS)"
        )
    circuit, params, widest = compile_tree(tree, seed=seed)
    unrolled = circuit
    notes = [f"tree circuit: node unitaries on up to {widest} qubits, qubit p = leaf position p"]
    if reuse:
        circuit = measure_and_reuse(circuit)
        notes.append(f"runs on {circuit.n_qubits} of {tree.n_leaves} qubits with measure and reset")
    if max_qubits is not None and circuit.n_qubits > max_qubits:
        raise ValueError(
            f"max_qubits={max_qubits}: the exact tree circuit of this target needs "
            f"{circuit.n_qubits} qubits{' (reused)' if reuse else ''}; use reuse=True, or "
            "method='layers'/'aqc'"
        )
    mps, _ = ttn_to_mps(tree)
    fidelity = circuit_fidelity(unrolled, params, mps)
    return circuit, _exact_report(circuit, unrolled, params, fidelity, t0, notes)


def _exact_report(circuit, unrolled, params, fidelity, t0, notes) -> CompileReport:
    """The report of an exact circuit: sizes of the unrolled circuit, wires of the run one."""
    return CompileReport(
        method="exact", fidelity=fidelity, n_qubits=circuit.n_qubits, depth=unrolled.depth(),
        n_2q=cx_count(unrolled), two_qubit_depth=two_qubit_depth(unrolled),
        n_params=circuit.n_params, wall_s=time.perf_counter() - t0, params=params,
        notes=notes,
    )  # fmt: skip


def _renorm(mps):
    from qtn.models import normalize

    return normalize(mps)
