"""Task-aware compilation: trained models into circuits, with the task metric they achieve.

**Classifiers** (an MPS with a label leg, f_l(x) = <W_l|Phi(x)>) compile to one
*overlap-test* circuit per class. Class l's normalised state w_l = W_l / ||W_l||
is compiled to a preparation circuit V_l (any method); the class circuit
encodes x with RY(pi x_j) on qubit j (exactly the trigonometric feature map:
RY(pi x)|0> = phi(x)), applies V_l^dagger and measures every qubit:

    P_l(x) = P(all zeros) = |<w_l|Phi(x)>|^2 = |f_l(x)|^2 / ||W_l||^2,

so the class scores ||W_l||^2 P_l(x) are the classifier's Born-rule
probabilities up to normalisation. Cost: L circuits of N qubits, each with
V_l's CX count; with ``reuse=True`` every encoding moves to just before its
qubit's first gate and finished qubits are measured and reused (k + 2 qubits
for an exact compilation of bond dimension 2^k). Classifiers trained with the
softmax rule keep their argmax only where it agrees with the Born rule; the
report states both accuracies.

**States with a model** (a Born machine, :func:`compile_distribution`) compile as
states; the report adds the NLL of given data under the circuit's distribution
and, for up to 20 qubits, the exact KL divergence from the model's distribution.
"""

from __future__ import annotations

import numpy as np

from qtn.circuit import Circuit, Feature, Gate
from qtn.compilation.report import CompileReport
from qtn.models import MPS, log_norm

__all__ = [
    "CompiledClassifier",
    "compile_classifier",
    "compile_distribution",
    "to_qiskit",
    "encoded_overlap_circuit",
]


def encoded_overlap_circuit(prep: Circuit, *, reuse: bool = False) -> Circuit:
    """RY(pi x_q) encodings, then ``prep``'s inverse; measured when ``reuse`` (then on few wires).

    Each encoding is placed just before the first gate on its qubit (exact: it commutes
    with everything before), which is what lets finished qubits be reused.
    """
    inv = prep.inverse()
    out = Circuit(prep.n_qubits, global_phase=inv.global_phase)
    seen: set[int] = set()
    for op in inv.ops:
        if isinstance(op, Gate):
            for q in op.qubits:
                if q not in seen:
                    out.ry(Feature(q), q)
                    seen.add(q)
        out.append(op)
    for q in range(prep.n_qubits):
        if q not in seen:
            out.ry(Feature(q), q)
    if reuse:
        from qtn.compilation.reuse import measure_and_reuse

        return measure_and_reuse(out)
    return out


class CompiledClassifier:
    """A classifier compiled to one overlap-test circuit per class (see the module docstring).

    Attributes
    ----------
    circuits
        One circuit per class: data angles are :class:`~qtn.circuit.Feature` slots,
        trainable angles take ``params[l]``.
    params
        The compiled angle values per class.
    weights
        ||W_l||^2 / max_l ||W_l||^2.
    classes
        The class labels.
    report
        A :class:`CompileReport` of the whole model (fidelities per class in ``metrics``,
        accuracy of the compiled circuits next to the classical model's when test data
        was given).
    """

    def __init__(self, circuits, params, weights, classes, reports, transform=None, preps=None):
        self.circuits = circuits
        self.preps = preps
        self._states: dict = {}
        self.params = params
        self.weights = np.asarray(weights, dtype=float)
        self.classes = np.asarray(classes)
        self.reports = reports
        self._transform = transform
        self.report: CompileReport | None = None

    def _x(self, X):
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.circuits[0].n_features:
            raise ValueError(
                f"X must have shape (n, {self.circuits[0].n_features}), got {np.shape(X)}"
            )
        return X if self._transform is None else np.asarray(self._transform(X), dtype=float)

    def zero_probabilities(self, X, *, runner_shots: int | None = None, backend=None, seed=None):
        """P_l(x) for every row and class, shape (n, L).

        Exact by default: P_l(x) = |<V_l 0|Phi(x)>|^2, the compiled state V_l|0> (exact
        gate application) contracted with the encoded product states, which is the
        circuit's all-zero probability in a cheaper contraction order. With
        ``runner_shots``: sampled, that many shots per circuit on ``backend`` (default Aer).
        """
        X = self._x(X)
        out = np.zeros((len(X), len(self.circuits)))
        for j, (c, p) in enumerate(zip(self.circuits, self.params)):
            if runner_shots is None:
                out[:, j] = self._exact_zero_probability(j, X)
            else:
                from qtn.execution import Runner

                runner = Runner(c, backend=backend, seed=seed)
                res = runner.run(shots=int(runner_shots), params=p, data=X)
                out[:, j] = np.atleast_2d(res.probs)[:, 0]
        return out

    def _exact_zero_probability(self, j: int, X) -> np.ndarray:
        from qtn.compilation.report import circuit_state
        from qtn.features import trigonometric
        from qtn.models import to_dense
        from qtn.training import apply

        if self._states.get(j) is None:
            self._states[j] = circuit_state(self.preps[j], self.params[j])
        state = self._states[j]
        phi = trigonometric()(np.clip(X, 0.0, 1.0))
        if state.n_sites <= 12:
            prod = phi[:, 0]
            for q in range(1, phi.shape[1]):
                prod = np.einsum("na,nb->nab", prod, phi[:, q]).reshape(len(X), -1)
            return np.abs(prod @ to_dense(state).conj()) ** 2
        conj = MPS(*(np.conj(a) for a in (state.left, state.center, state.right)))
        import jax

        with jax.enable_x64(True):
            fhat, ln = apply(_amplitude, conj, phi)
        return np.exp(2 * ln)

    def predict_proba(self, X, **kwargs) -> np.ndarray:
        """Born-rule class probabilities ||W_l||^2 P_l(x), normalised (uniform where all are 0)."""
        scores = self.zero_probabilities(X, **kwargs) * self.weights
        total = scores.sum(1, keepdims=True)
        uniform = np.full_like(scores, 1.0 / scores.shape[1])
        return np.where(total > 0, scores / np.where(total > 0, total, 1), uniform)

    def predict(self, X, **kwargs) -> np.ndarray:
        return self.classes[np.argmax(self.predict_proba(X, **kwargs), axis=1)]

    def to_qiskit(self, **kwargs) -> list:
        """One Qiskit circuit per class, trainable angles bound, data left as ``x`` parameters,
        every qubit measured (unless the circuit already measures)."""
        from qtn.export import to_qiskit

        out = []
        for c, p in zip(self.circuits, self.params):
            if c.n_clbits == 0:
                c = c.copy().measure_all()
            out.append(to_qiskit(c, params=p, **kwargs))
        return out


def compile_classifier(mps: MPS, classes, *, method: str = "exact", reuse: bool = False,
                       transform=None, X=None, y=None, classical_predict=None,
                       **options) -> CompiledClassifier:  # fmt: skip
    """Compile an MPS with a label leg (one overlap-test circuit per class).

    ``X, y`` (optional test data, raw features) add the compiled accuracy to the report,
    next to ``classical_predict(X)`` when given.
    """
    import time

    from qtn.compilation import compile as compile_state

    if mps.n_labels is None:
        raise ValueError("mps: a classifier needs a label leg")
    if mps.phys_dim != 2:
        raise ValueError(f"mps: qubit encodings need physical dimension 2, got {mps.phys_dim}")
    t0 = time.perf_counter()
    mps64 = MPS(*(np.asarray(a, dtype=np.float64) for a in (mps.left, mps.center, mps.right)))
    logw = np.array([float(log_norm(mps64.select_label(lab))) for lab in range(mps.n_labels)])
    weights = np.exp(2 * (logw - logw.max()))
    circuits, params, reports, preps = [], [], [], []
    for lab in range(mps.n_labels):
        state = mps64.select_label(lab)
        state = MPS(state.left, state.center * np.exp(-logw[lab]), state.right)  # unit norm
        prep, rep = compile_state(state, method=method, **options)
        preps.append(prep)
        circuits.append(encoded_overlap_circuit(prep, reuse=reuse))
        params.append(rep.params)
        reports.append(rep)
    model = CompiledClassifier(circuits, params, weights, classes, reports, transform, preps)
    report = CompileReport(
        method=method, fidelity=min(r.fidelity for r in reports),
        n_qubits=max(c.n_qubits for c in circuits), depth=max(r.depth for r in reports),
        n_2q=sum(r.n_2q for r in reports), two_qubit_depth=max(r.two_qubit_depth for r in reports),
        n_params=sum(r.n_params for r in reports), wall_s=0.0, params=np.concatenate(params),
    )  # fmt: skip
    report.metrics["class_fidelities"] = [round(r.fidelity, 12) for r in reports]
    report.metrics["circuits"] = len(circuits)
    report.notes.append(
        f"{len(circuits)} overlap-test circuits of {report.n_qubits} qubits; n_2q sums them; "
        "fidelity is the worst class state's"
    )
    if X is not None and y is not None:
        y = np.asarray(y)
        report.metrics["accuracy"] = float(np.mean(model.predict(X) == y))
        if classical_predict is not None:
            report.metrics["classical_accuracy"] = float(np.mean(classical_predict(X) == y))
    report.wall_s = time.perf_counter() - t0
    model.report = report
    return model


def compile_distribution(target, *, method: str = "exact", reuse: bool = False, X=None,
                         **options):  # fmt: skip
    """Compile a Born machine's state; the report adds what its distribution achieves.

    ``target`` is a unit-norm qubit :class:`~qtn.MPS` (sites = qubits) or
    :class:`~qtn.models.TTN` (leaf positions = qubits, as :func:`qtn.compile` lays
    out the tree circuit). ``X`` holds binary rows over the same qubits.

    ``metrics["kl"]``: KL(p_model || p_circuit) in nats, exact by enumeration for up to 20
    qubits; ``metrics["nll"]`` / ``metrics["model_nll"]``: the mean negative
    log-likelihood of the rows of ``X`` under the circuit and under the model.
    The circuit's distribution is that of its exact final state (with ``reuse=True``, the
    measured clbits follow it exactly).
    """
    from qtn.compilation import compile as compile_state
    from qtn.compilation.report import circuit_state
    from qtn.metrics import kl_divergence
    from qtn.models import TTN, to_dense, ttn_dense_amplitudes, ttn_to_dense

    is_tree = isinstance(target, TTN)
    n = target.n_leaves if is_tree else target.n_sites
    if X is not None:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != n or not np.isin(X, (0, 1)).all():
            raise ValueError(f"X must be binary rows of length {n} (one bit per qubit), got "
                             f"shape {X.shape}")  # fmt: skip
    unitary, report = compile_state(target, method=method, **options)
    circuit = unitary
    if reuse and method == "exact":  # the facade orders the blocks for the fewest wires
        circuit, reused = compile_state(target, method=method, reuse=True, **options)
        report.n_qubits, report.notes = reused.n_qubits, reused.notes
    elif reuse:
        from qtn.compilation.reuse import measure_and_reuse

        circuit = measure_and_reuse(unitary)
        report.n_qubits = circuit.n_qubits
        report.notes.append(f"runs on {circuit.n_qubits} qubits with measure and reset")
    state = circuit_state(unitary, report.params)
    n_state = state.n_sites
    if n_state != n:
        raise RuntimeError(f"the compiled circuit has {n_state} qubits for {n} sites")
    if n <= 20:
        p = np.abs(ttn_to_dense(target) if is_tree else to_dense(target)) ** 2
        q = np.abs(to_dense(state)) ** 2
        report.metrics["kl"] = float(kl_divergence(p / p.sum(), q / q.sum()))
    if X is not None:
        report.metrics["nll"] = _mean_nll(state, X)
        if is_tree:
            amps = [ttn_dense_amplitudes(target, np.eye(2)[row]) for row in X.astype(int)]
            report.metrics["model_nll"] = float(-np.mean(np.log(np.abs(amps) ** 2 + 1e-300)))
        else:
            report.metrics["model_nll"] = _mean_nll(target, X)
    return circuit, report


def _mean_nll(mps: MPS, X) -> float:
    """-mean log |<x|psi>|^2 of binary rows (psi normalised), in nats."""
    import jax

    from qtn.training import apply

    phi = np.eye(2)[np.asarray(X, dtype=int)]
    conj = MPS(*(np.conj(np.asarray(a, dtype=complex)) for a in (mps.left, mps.center,
                                                                 mps.right)))  # fmt: skip
    with jax.enable_x64(True):
        _, ln = apply(_amplitude, conj, phi)
    return float(-np.mean(2 * ln))


def _amplitude(mps, phi):
    from qtn.models import amplitudes

    return amplitudes(mps, phi)


def to_qiskit(obj, **kwargs):
    """Export to Qiskit: a circuit as it is; a model or a state compiled with defaults first.

    - a qtn :class:`~qtn.circuit.Circuit`: :func:`qtn.export.to_qiskit`;
    - an object with ``to_circuit()`` (a fitted estimator): its compiled circuit(s),
      trainable angles bound, data angles as the ``x`` parameter vector;
    - an MPS, a quimb MPS, a dense vector or an object with ``to_mps()``: compiled by
      ``method="exact"``, bound, measured.
    """
    from qtn.export import to_qiskit as export

    if isinstance(obj, Circuit):
        return export(obj, **kwargs)
    to_circuit = getattr(obj, "to_circuit", None)
    if callable(to_circuit):
        compiled = to_circuit()
        if isinstance(compiled, CompiledClassifier):
            return compiled.to_qiskit(**kwargs)
        circuit, report = compiled
        return export(_measured(circuit), params=report.params, **kwargs)
    from qtn.compilation import compile as compile_state

    try:
        circuit, report = compile_state(obj, method="exact")
    except ValueError as exc:
        raise TypeError(
            f"to_qiskit takes a qtn Circuit, a fitted model or a state; got "
            f"{type(obj).__name__} ({exc})"
        ) from None
    return export(_measured(circuit), params=report.params, **kwargs)


def _measured(c: Circuit) -> Circuit:
    return c if c.n_clbits else c.copy().measure_all()
