"""Run qtn circuits on Qiskit Aer or any BackendV2 through the V2 primitives.

One structure is transpiled once per (backend, optimization level); every
(params, data) binding then goes into a single ``SamplerV2`` pub as a
parameter array, so inputs are never re-transpiled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qtn.circuit import Barrier, Circuit, Discard, Measure, Noise, Reset
from qtn.export import clbit_probabilities, parameter_values, to_qiskit
from qtn.metrics import accuracy, class_probabilities
from qtn.noise import NoiseModel

__all__ = [
    "run",
    "RunResult",
    "to_aer_noise_model",
    "predict",
    "score",
    "Runner",
]

_TRANSPILED: dict = {}


@dataclass
class RunResult:
    """Sampled outcomes of one structure over a batch of bindings.

    Attributes
    ----------
    probs
        (B, 2**n_clbits) outcome frequencies (clbit 0 most significant), or
        (2**n_clbits,) for a single binding.
    bits
        (B, shots, n_clbits) sampled bits, column j = clbit j.
    shots
        Shots per binding.
    """

    probs: np.ndarray
    bits: np.ndarray
    shots: int

    def counts(self, index: int = 0) -> dict[str, int]:
        """Qiskit-style counts of binding ``index``, keys written clbit 0 first."""
        b = self.bits[index]
        keys, n = np.unique(b, axis=0, return_counts=True)
        return {"".join(map(str, k)): int(c) for k, c in zip(keys, n)}


def to_aer_noise_model(noise: NoiseModel, n_qubits: int | None = None):
    """An Aer ``NoiseModel`` with the same channels and readout errors.

    Gate rules attach to the Qiskit instruction names of the exported gates
    (``u3`` -> ``u``, others unchanged); a rule naming ``su4`` or ``unitary``
    (which export as several instructions) raises, since no Aer rule matches it:
    use ``run(..., noise=...)``, which inserts the channels into the circuit
    exactly, instead. Rules and readout errors restricted to qtn qubits need
    ``n_qubits`` to find their Qiskit qubits (``n_qubits - 1 - q``).
    """
    if not isinstance(noise, NoiseModel):
        raise TypeError(f"noise must be a qtn.noise.NoiseModel, got {type(noise).__name__}")
    from qiskit.quantum_info import Kraus
    from qiskit_aer.noise import NoiseModel as AerNoiseModel
    from qiskit_aer.noise import QuantumError
    from qiskit_aer.noise import ReadoutError as AerReadoutError

    from qtn.export import qiskit_matrix, qiskit_qubit
    from qtn.export.qiskit import _DIRECT

    n = n_qubits
    aer = AerNoiseModel()
    for rule in noise.gate_rules:
        if rule.gates is None:
            raise ValueError("a gate rule for all gates has no Aer equivalent; name the gates")
        names = []
        for g in sorted(rule.gates):
            if g not in _DIRECT:
                raise ValueError(
                    f"gate {g!r} exports as several Qiskit instructions, so an Aer noise rule "
                    "cannot match it; use qtn.execution.run(..., noise=...) instead"
                )
            names.append(_DIRECT[g])
        err = QuantumError(Kraus([qiskit_matrix(k) for k in rule.channel.kraus]))
        if rule.qubits is None:
            aer.add_all_qubit_quantum_error(err, names)
        else:
            if n is None:
                raise ValueError("per-qubit noise rules need n_qubits")
            if rule.channel.n_qubits != 1:
                raise ValueError("per-qubit rules support 1-qubit channels only")
            for q in sorted(rule.qubits):
                aer.add_quantum_error(err, names, [qiskit_qubit(q, n)])
    for qset, ro in noise.readout:
        m = ro.matrix.T  # Aer: rows = true outcome, columns = read outcome
        if qset is None:
            aer.add_all_qubit_readout_error(AerReadoutError(m))
        else:
            if n is None:
                raise ValueError("per-qubit readout errors need n_qubits")
            for q in sorted(qset):
                aer.add_readout_error(AerReadoutError(m), [qiskit_qubit(q, n)])
    return aer


class Runner:
    """A circuit structure bound to a backend: transpiled once, run for many bindings.

    Parameters
    ----------
    circuit
        A qtn circuit. Without measurements every qubit is measured at the end
        (qubit q into clbit q).
    backend
        Any Qiskit ``BackendV2``; default ``AerSimulator()``.
    noise
        A :class:`qtn.noise.NoiseModel` (Aer backends only): its channels are
        inserted as Kraus instructions, its readout errors form an Aer noise model.
        Aer's gate fusion of Kraus instructions occasionally fails a binding
        ("heevx ... eigensystem_hermitian", qiskit-aer issue #2455); on the Aer
        backend qtn builds, such a job is rerun once with fusion off (exact,
        slower). An ``AerSimulator`` you pass is used as given.
    optimization_level
        Passed to ``qiskit.transpile`` (default 1).
    seed
        Seeds the transpiler and the simulator's sampling.
    """

    def __init__(self, circuit: Circuit, *, backend=None, noise=None, optimization_level=1,
                 seed=None):  # fmt: skip
        from qiskit import transpile
        from qiskit_aer import AerSimulator

        if not isinstance(circuit, Circuit):
            raise TypeError(f"circuit must be a qtn Circuit, got {type(circuit).__name__}")
        if noise is not None and not isinstance(noise, NoiseModel):
            raise TypeError(f"noise must be a qtn.noise.NoiseModel, got {type(noise).__name__}")
        circuit = circuit.copy()
        if not circuit.n_clbits:
            circuit.measure(list(range(circuit.n_qubits)), list(range(circuit.n_qubits)))
        self.circuit = circuit.snapshot()
        self.noise = noise
        self.seed = seed
        is_aer = backend is None or isinstance(backend, AerSimulator)
        # a backend built here is ours: its options may change (see _sample)
        self._own_aer = backend is None
        if noise is not None and not is_aer:
            raise ValueError(
                "noise= applies to Aer simulators only; a hardware or fake backend brings its "
                "own noise"
            )
        n = circuit.n_qubits
        if backend is None:
            aer_noise = None
            if noise is not None and noise.readout:
                ro_only = NoiseModel(readout=noise.readout)
                aer_noise = to_aer_noise_model(ro_only, n)
            # with noise, Aer's density-matrix method is exact per shot and fast at small n
            method = "density_matrix" if noise is not None and n <= 12 else "automatic"
            backend = AerSimulator(noise_model=aer_noise, method=method)
        elif noise is not None and noise.readout:
            raise ValueError("readout errors: pass backend=None so qtn builds the Aer backend")
        self.backend = backend
        self._is_aer = is_aer
        self._isolated = None  # parameter-shift twin, built on first use (finetune.py)
        self._check_support(circuit, noise)
        gate_noise = noise if noise is not None and noise.gate_rules else None
        # the key covers the inserted channels; the backend object itself is checked
        # on lookup (an id alone could be reused after garbage collection)
        noisy = circuit if gate_noise is None else gate_noise.apply(circuit)
        key = (noisy.structure_key(), id(backend), optimization_level)
        cached = _TRANSPILED.get(key)
        if cached is None or cached[0] is not backend:
            tqc = transpile(
                to_qiskit(noisy), backend, optimization_level=optimization_level,
                seed_transpiler=seed,
            )  # fmt: skip
            cached = _TRANSPILED[key] = (backend, tqc)
        self.transpiled = cached[1]
        self._sampler = self._make_sampler()

    def _make_sampler(self):
        if self._is_aer:
            from qiskit_aer.primitives import SamplerV2

            return SamplerV2.from_backend(self.backend, seed=self.seed)
        from qiskit.primitives import BackendSamplerV2

        return BackendSamplerV2(backend=self.backend, options={"seed_simulator": self.seed})

    def _check_support(self, circuit, noise):
        target = getattr(self.backend, "target", None)
        if target is None:
            return
        names = set(target.operation_names)
        need = {"measure"}
        if any(isinstance(op, Reset | Discard) for op in circuit.ops):
            need.add("reset")
        if any(isinstance(op, Noise) for op in circuit.ops) or (noise and noise.gate_rules):
            need.add("kraus")
        missing = sorted(need - names)
        # a mid-circuit measurement: a measured qubit that a later non-measure op uses
        mid = any(
            isinstance(op, Measure)
            and any(op.qubit in later.qubits and not isinstance(later, Measure | Barrier)
                    for later in circuit.ops[i + 1 :])
            for i, op in enumerate(circuit.ops)
        )  # fmt: skip
        if missing:
            raise ValueError(
                f"backend {getattr(self.backend, 'name', self.backend)!r} does not support "
                f"{missing}, which this circuit needs"
            )
        if mid and "if_else" not in names and not self._is_aer:
            raise ValueError(
                f"backend {getattr(self.backend, 'name', self.backend)!r} does not advertise "
                "dynamic circuits (no 'if_else'), so mid-circuit measurement is unsupported"
            )

    def run(self, *, shots: int, params=None, data=None) -> RunResult:
        """Sample every binding: ``params`` (P,) or (B, P), ``data`` (F,) or (B, F)."""
        if not isinstance(shots, int | np.integer) or shots < 1:
            raise ValueError(f"shots must be a positive integer, got {shots!r}")
        c = self.circuit
        p = _as_batch("params", params, c.n_params)
        x = _as_batch("data", data, c.n_features)
        single = (params is None or np.ndim(params) == 1) and (data is None or np.ndim(data) == 1)
        b = max(p.shape[0], x.shape[0])
        if p.shape[0] not in (1, b) or x.shape[0] not in (1, b):
            raise ValueError(f"params and data batch sizes differ: {p.shape[0]} vs {x.shape[0]}")
        p = np.broadcast_to(p, (b, p.shape[1]))
        x = np.broadcast_to(x, (b, x.shape[1]))
        params_ = self.transpiled.parameters
        pv = parameter_values(params_, p, x) if len(params_) else None
        pub = (self.transpiled, pv, int(shots))
        res = self._sample(pub)
        bits = res.data.c.to_bool_array(order="little")
        bits = bits.reshape(-1, shots, c.n_clbits) if pv is not None else bits[None]
        probs = clbit_probabilities(bits)
        if single:
            probs = probs[0]
        return RunResult(probs=probs, bits=bits.astype(np.uint8), shots=int(shots))

    def _sample(self, pub):
        from qiskit_aer import AerError

        try:
            return self._sampler.run([pub]).result()[0]
        except AerError as exc:
            if not (self._own_aer and "eigensystem_hermitian" in str(exc)):
                raise
        # qiskit-aer #2455: Kraus gate fusion failed on a binding; rerun without fusion
        self.backend.set_options(fusion_enable=False)
        self._sampler = self._make_sampler()
        return self._sampler.run([pub]).result()[0]


def _as_batch(name, arr, need):
    if arr is None:
        if need:
            raise ValueError(f"{name}: the circuit needs {need} values, got none")
        return np.zeros((1, 0))
    a = np.asarray(arr, dtype=float)
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (batch, n), got {a.shape}")
    if a.shape[-1] != need:
        raise ValueError(f"{name} has {a.shape[-1]} values per binding; the circuit needs {need}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a.reshape(-1, need)


def run(circuit: Circuit, *, backend=None, shots: int, seed=None, noise=None, data=None,
        params=None, optimization_level: int = 1) -> RunResult:  # fmt: skip
    """Sample ``circuit`` on a Qiskit backend (default ``AerSimulator``).

    A convenience over :class:`Runner` (which to keep when running one
    structure repeatedly; transpiled circuits are cached either way).

    Examples
    --------
    >>> from qtn.circuit import Circuit
    >>> r = run(Circuit(2).h(0).cx(0, 1), shots=1000, seed=1)
    >>> r.probs.round(1)
    array([0.5, 0. , 0. , 0.5])
    """
    return Runner(
        circuit, backend=backend, noise=noise, optimization_level=optimization_level, seed=seed
    ).run(shots=shots, params=params, data=data)


def predict(runner: Runner, X, params, *, shots: int, n_classes: int = 2) -> np.ndarray:
    """Predicted classes (argmax of :func:`qtn.metrics.class_probabilities`) for inputs ``X``."""
    probs = runner.run(shots=shots, params=params, data=X).probs
    return class_probabilities(np.atleast_2d(probs), n_classes).argmax(-1)


def score(runner: Runner, X, y, params, *, shots: int, n_classes: int = 2) -> float:
    """Sampled accuracy: the fraction of rows of ``X`` that :func:`predict` gets right."""
    y = np.asarray(y)
    if y.shape != (np.atleast_2d(X).shape[0],):
        raise ValueError(f"y must have one label per row of X, got shape {y.shape}")
    pred = predict(runner, X, params, shots=shots, n_classes=n_classes)
    return float(accuracy(y, pred))
