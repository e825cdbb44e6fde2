"""Run qtn circuits through Qiskit's V2 primitives: Aer, fake and real IBM backends.

One structure is transpiled once per (backend, optimization level, layout) into
an ISA circuit for the backend's target; every (params, data) binding then goes
into a single sampler pub as a parameter array, so inputs are never
re-transpiled. Any ``BaseSamplerV2`` runs it: Aer's, ``BackendSamplerV2`` for a
``BackendV2`` that still has ``run``, or ``qiskit_ibm_runtime.SamplerV2`` in
job, ``Session`` or ``Batch`` mode (real IBM devices have no ``backend.run``),
and any ``BaseEstimatorV2`` gives Pauli expectation values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qtn._checks import real_array
from qtn.circuit import Barrier, Circuit, Discard, Measure, Noise, Reset
from qtn.execution.aer_noise import to_aer_noise_model
from qtn.export import (
    clbit_probabilities,
    counts_from_bits,
    parameter_values,
    pauli_to_qiskit,
    to_qiskit,
)
from qtn.metrics import accuracy, class_probabilities
from qtn.noise import NoiseModel

__all__ = ["run", "RunResult", "predict", "score", "Runner"]

_TRANSPILED: dict = {}

# qiskit-aer 0.18.2 binds parameter arrays wrongly into these gates when they carry
# Parameters (measured against Statevector: errors of 0.01-0.04 in probabilities);
# on Aer backends the Runner decomposes them before binding (exact, a few more gates)
_AER_MISBINDS = frozenset({"cp", "crx", "cry", "crz", "cu", "cu1", "cu3"})


@dataclass
class RunResult:
    """Sampled outcomes of one structure over a batch of bindings.

    Attributes
    ----------
    probs
        (B, 2**n_clbits) outcome frequencies, or (2**n_clbits,) for a single binding,
        in **qtn's order**: clbit 0 is the most significant bit of the index, as in
        qtn's simulated probabilities (``qtn.export.to_qiskit_order`` gives Qiskit's).
    bits
        (B, shots, n_clbits) sampled bits, column j = clbit j.
    shots
        Shots per binding.
    """

    probs: np.ndarray
    bits: np.ndarray
    shots: int

    def counts(self, index: int = 0) -> dict[str, int]:
        """Counts of binding ``index`` keyed as Qiskit writes them (clbit 0 rightmost).

        Equal to ``result[0].data.c.get_counts()`` of the same samples.
        """
        return counts_from_bits(self.bits[index])


def _backend_of(primitive):
    """The backend a V2 primitive runs on, or None (runtime: ``backend()``; others: attributes)."""
    b = getattr(primitive, "backend", None)
    if callable(b) and not hasattr(b, "target"):
        try:
            b = b()
        except Exception:  # a primitive whose backend() needs a service
            b = None
    if b is None:
        b = getattr(primitive, "_backend", None)
    return b if hasattr(b, "target") else None


def _set_options(target, options: dict, where: str):
    """Set (nested) options on a primitive's options object, naming unknown ones."""
    for key, value in options.items():
        if not hasattr(target, key):
            raise ValueError(f"options: {where} has no option {key!r}")
        current = getattr(target, key)
        if isinstance(value, dict) and not isinstance(current, dict | type(None)):
            _set_options(current, value, f"{where}.{key}")
        else:
            setattr(target, key, value)


class Runner:
    """A circuit structure bound to a backend: transpiled once, run for many bindings.

    Parameters
    ----------
    circuit
        A qtn circuit. Without measurements every qubit is measured at the end
        (qubit q into clbit q).
    backend
        Any Qiskit ``BackendV2``: ``AerSimulator``, a fake or real IBM backend.
        Default: an ``AerSimulator`` qtn builds (with ``noise``'s readout errors).
        A string such as ``"aer"`` is refused with a ``TypeError``.
    sampler
        Any ``BaseSamplerV2`` (for example ``qiskit_ibm_runtime.SamplerV2(mode=backend)``,
        with a backend, ``Session`` or ``Batch`` as mode). Circuits are transpiled
        for its backend's target (or ``backend``'s, when given). Default: Aer's
        sampler for Aer backends, ``BackendSamplerV2`` otherwise.
    estimator
        Any ``BaseEstimatorV2`` for :meth:`expectation` (default: Aer's, or
        ``BackendEstimatorV2``).
    options
        Options set on the sampler and estimator objects, nested as dicts
        (``{"default_shots": 1000, "twirling": {"enable_gates": True}}``); an
        option the primitive does not have raises.
    noise
        A :class:`qtn.noise.NoiseModel` (Aer backends only): its channels are
        inserted as Kraus instructions, its readout errors form an Aer noise
        model (composed per qubit in the order added, as in qtn). Aer's gate
        fusion of Kraus instructions occasionally fails a binding ("heevx ...
        eigensystem_hermitian", qiskit-aer issue #2455); on the Aer backend qtn
        builds, such a job is rerun once with fusion off (exact, slower).
    optimization_level
        Passed to ``qiskit.transpile`` (default 1).
    initial_layout
        Passed to ``qiskit.transpile``: physical qubit of each qtn qubit.
    seed
        Seeds the transpiler and the simulator's sampling.

    Examples
    --------
    >>> from qtn.circuit import Circuit
    >>> r = Runner(Circuit(2).x(0), seed=1).run(shots=100)
    >>> r.probs, r.counts()          # qtn order: index = c0 c1; Qiskit keys: c1 c0
    (array([0., 0., 1., 0.]), {'01': 100})
    """

    def __init__(self, circuit: Circuit, *, backend=None, sampler=None, estimator=None,
                 options: dict | None = None, noise=None, optimization_level=1,
                 initial_layout=None, seed=None):  # fmt: skip
        from qiskit.primitives import BaseEstimatorV2, BaseSamplerV2
        from qiskit_aer import AerSimulator

        if not isinstance(circuit, Circuit):
            raise TypeError(f"circuit must be a qtn Circuit, got {type(circuit).__name__}")
        if isinstance(backend, str):
            raise TypeError(
                f"backend must be a Qiskit BackendV2 object, got the string {backend!r}; use "
                "backend=None (qtn builds an AerSimulator), qiskit_aer.AerSimulator(), a fake "
                "or real IBM backend, or sampler=... for a runtime primitive"
            )
        if backend is not None and not hasattr(backend, "target"):
            raise TypeError(f"backend must be a Qiskit BackendV2, got {type(backend).__name__}")
        if sampler is not None and not isinstance(sampler, BaseSamplerV2):
            raise TypeError(f"sampler must be a BaseSamplerV2, got {type(sampler).__name__}")
        if estimator is not None and not isinstance(estimator, BaseEstimatorV2):
            raise TypeError(f"estimator must be a BaseEstimatorV2, got {type(estimator).__name__}")
        if noise is not None and not isinstance(noise, NoiseModel):
            raise TypeError(f"noise must be a qtn.noise.NoiseModel, got {type(noise).__name__}")
        if noise is not None:
            noise.check_qubits(circuit.n_qubits)
        self.base = circuit.snapshot()  # as given: the estimator's circuit
        circuit = circuit.copy()
        if not circuit.n_clbits:
            circuit.measure(list(range(circuit.n_qubits)), list(range(circuit.n_qubits)))
        self.circuit = circuit.snapshot()
        self.noise = noise
        self.seed = seed
        self.options = dict(options or {})
        self.optimization_level = optimization_level
        self.initial_layout = None if initial_layout is None else list(initial_layout)
        if backend is None and sampler is not None:
            backend = _backend_of(sampler)
        is_aer = (backend is None and sampler is None) or isinstance(backend, AerSimulator)
        # a backend built here is ours: its options may change (see _sample)
        self._own_aer = backend is None and sampler is None
        if noise is not None and not is_aer:
            raise ValueError(
                "noise= applies to Aer simulators only; a hardware or fake backend brings its "
                "own noise"
            )
        n = circuit.n_qubits
        if self._own_aer:
            aer_noise = None
            if noise is not None and noise.readout:
                aer_noise = to_aer_noise_model(NoiseModel(readout=noise.readout))
            # with noise, Aer's density-matrix method is exact per shot and fast at small n
            method = "density_matrix" if noise is not None and n <= 12 else "automatic"
            backend = AerSimulator(noise_model=aer_noise, method=method)
        elif noise is not None and noise.readout:
            raise ValueError("readout errors: pass backend=None so qtn builds the Aer backend")
        self.backend = backend
        self._is_aer = is_aer
        self._user_sampler, self._user_estimator = sampler, estimator
        self._isolated = None  # parameter-shift twin, built on first use (finetune.py)
        self._check_support(circuit, noise)
        gate_noise = noise if noise is not None and noise.gate_rules else None
        self._gate_noise = gate_noise
        self.transpiled = self._transpile(circuit)
        self._estimator_isa = None
        self._sampler = self._make_sampler()
        self._estimator = None

    def _transpile(self, circuit: Circuit):
        """The ISA circuit of ``circuit`` (with the inserted channels), cached per structure."""
        from qiskit import transpile

        noisy = circuit if self._gate_noise is None else self._gate_noise.apply(circuit)
        layout = None if self.initial_layout is None else tuple(self.initial_layout)
        # the key covers the inserted channels; the backend object itself is checked on
        # lookup (an id alone could be reused after garbage collection)
        key = (noisy.structure_key(), id(self.backend), self.optimization_level, layout)
        cached = _TRANSPILED.get(key)
        if cached is None or cached[0] is not self.backend:
            qc = to_qiskit(noisy)
            symbolic = {op.name for op in noisy.ops if getattr(op, "is_symbolic", False)}
            if self.backend is None:  # a primitive without a backend: no target to meet
                tqc = qc
            else:
                if self._is_aer and symbolic & _AER_MISBINDS:
                    qc = qc.decompose(gates_to_decompose=sorted(symbolic & _AER_MISBINDS))
                tqc = transpile(
                    qc, self.backend, optimization_level=self.optimization_level,
                    initial_layout=self.initial_layout, seed_transpiler=self.seed,
                )  # fmt: skip
            cached = _TRANSPILED[key] = (self.backend, tqc)
        return cached[1]

    def twin(self, circuit: Circuit, *, initial_layout="same") -> Runner:
        """A runner of another structure on this one's backend, primitives and options.

        The gate rules of this runner's noise model are inserted into ``circuit``
        too, and its readout errors stay in the shared backend.
        """
        noise = self.noise
        gate_noise = NoiseModel(gate_rules=noise.gate_rules) if noise is not None else None
        layout = self.initial_layout if initial_layout == "same" else initial_layout
        twin = Runner(
            circuit, backend=self.backend, sampler=self._user_sampler,
            estimator=self._user_estimator, options=self.options, noise=gate_noise,
            optimization_level=self.optimization_level, initial_layout=layout, seed=self.seed,
        )  # fmt: skip
        twin.noise = noise
        twin._own_aer = self._own_aer  # the shared backend is the original runner's
        return twin

    @property
    def measured_qubits(self) -> tuple[int, ...]:
        """The physical qubit each clbit finally reads, in clbit order (the transpiled
        circuit's final layout); readout mitigation calibrates exactly these."""
        tqc = self.transpiled
        found: dict[int, int] = {}
        for inst in tqc.data:
            if inst.operation.name == "measure":
                found[tqc.find_bit(inst.clbits[0]).index] = tqc.find_bit(inst.qubits[0]).index
        return tuple(found[j] for j in range(self.circuit.n_clbits))

    def _make_sampler(self):
        if self._user_sampler is not None:
            sampler = self._user_sampler
        elif self._is_aer:
            from qiskit_aer.primitives import SamplerV2

            sampler = SamplerV2.from_backend(self.backend, seed=self.seed)
        else:
            from qiskit.primitives import BackendSamplerV2

            sampler = BackendSamplerV2(backend=self.backend, options={"seed_simulator": self.seed})
        if self.options:
            _set_options(sampler.options, self.options, type(sampler).__name__ + ".options")
        return sampler

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

    def _bindings(self, params, data):
        c = self.circuit
        p = _as_batch("params", params, c.n_params)
        x = _as_batch("data", data, c.n_features)
        single = (params is None or np.ndim(params) == 1) and (data is None or np.ndim(data) == 1)
        b = max(p.shape[0], x.shape[0])
        if p.shape[0] not in (1, b) or x.shape[0] not in (1, b):
            raise ValueError(f"params and data batch sizes differ: {p.shape[0]} vs {x.shape[0]}")
        return np.broadcast_to(p, (b, p.shape[1])), np.broadcast_to(x, (b, x.shape[1])), single

    def run(self, *, shots: int, params=None, data=None) -> RunResult:
        """Sample every binding: ``params`` (P,) or (B, P), ``data`` (F,) or (B, F)."""
        if not isinstance(shots, int | np.integer) or shots < 1:
            raise ValueError(f"shots must be a positive integer, got {shots!r}")
        p, x, single = self._bindings(params, data)
        params_ = self.transpiled.parameters
        pv = parameter_values(params_, p, x) if len(params_) else None
        res = self._sample([(self.transpiled, pv, int(shots))])[0]
        bits = res.data.c.to_bool_array(order="little")
        bits = bits.reshape(-1, shots, self.circuit.n_clbits) if pv is not None else bits[None]
        probs = clbit_probabilities(bits)
        if single:
            probs = probs[0]
        return RunResult(probs=probs, bits=bits.astype(np.uint8), shots=int(shots))

    def _sample(self, pubs):
        from qiskit_aer import AerError

        try:
            return self._sampler.run(pubs).result()
        except AerError as exc:
            if not (self._own_aer and "eigensystem_hermitian" in str(exc)):
                raise
        # qiskit-aer #2455: Kraus gate fusion failed on a binding; rerun without fusion
        self.backend.set_options(fusion_enable=False)
        self._sampler = self._make_sampler()
        return self._sampler.run(pubs).result()

    def expectation(self, observables, *, params=None, data=None,
                    precision: float | None = None) -> np.ndarray:  # fmt: skip
        """Expectation values of Pauli observables through the estimator, one job.

        Parameters
        ----------
        observables
            One observable or a list: a qtn Pauli string (letter i on qubit i, as in
            ``Simulator.expectation``), a ``{qubit: letter}`` dict, or a Qiskit
            ``SparsePauliOp``/``Pauli`` (Qiskit's labels, qubit 0 rightmost).
            Qubit labels are the circuit's; the transpiled layout is applied here.
        params, data
            Bindings, as in :meth:`run`.
        precision
            Passed to the estimator (its default when None).

        Returns
        -------
        numpy.ndarray
            (B, n_observables), dropping axes of single bindings and single observables.
        """
        from qiskit.quantum_info import SparsePauliOp

        if any(isinstance(op, Measure | Reset | Discard) for op in self.base.ops):
            raise ValueError("expectation needs a circuit without measure, reset or discard")
        single_obs = not isinstance(observables, list | tuple)
        obs_list = [observables] if single_obs else list(observables)
        n = self.base.n_qubits
        ops = []
        for o in obs_list:
            if isinstance(o, str | dict):
                ops.append(SparsePauliOp(pauli_to_qiskit(o, n)))
            else:
                ops.append(SparsePauliOp(o))
            if ops[-1].num_qubits != n:
                raise ValueError(f"observables: {o!r} acts on {ops[-1].num_qubits} qubits, the "
                                 f"circuit has {n}")  # fmt: skip
        if self._estimator_isa is None:
            self._estimator_isa = self._transpile(self.base)
        isa = self._estimator_isa
        if isa.layout is not None:
            ops = [op.apply_layout(isa.layout) for op in ops]
        p, x, single = self._bindings(params, data)
        prm = isa.parameters
        pv = parameter_values(prm, p, x)[:, None, :] if len(prm) else None
        obs = np.empty((1, len(ops)) if pv is not None else (len(ops),), dtype=object)
        for i, o in enumerate(ops):  # (np.array would iterate into each SparsePauliOp)
            obs.flat[i] = o
        est = self._get_estimator()
        res = est.run([(isa, obs, pv, precision)]).result()[0]
        evs = np.asarray(res.data.evs, dtype=float).reshape(-1, len(ops))
        if single:
            evs = evs[0]
        return evs[..., 0] if single_obs else evs

    def _get_estimator(self):
        if self._estimator is not None:
            return self._estimator
        if self._user_estimator is not None:
            est = self._user_estimator
        elif self._is_aer:
            from qiskit_aer.primitives import EstimatorV2

            est = EstimatorV2.from_backend(self.backend)
            if self.seed is not None:
                est.options.run_options = {**est.options.run_options, "seed_simulator": self.seed}
        else:
            from qiskit.primitives import BackendEstimatorV2

            est = BackendEstimatorV2(backend=self.backend, options={"seed_simulator": self.seed})
        self._estimator = est
        return est


def _as_batch(name, arr, need):
    if arr is None:
        if need:
            raise ValueError(f"{name}: the circuit needs {need} values, got none")
        return np.zeros((1, 0))
    a = real_array(name, arr)
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (batch, n), got {a.shape}")
    if a.shape[-1] != need:
        raise ValueError(f"{name} has {a.shape[-1]} values per binding; the circuit needs {need}")
    return a.reshape(-1, need)


def run(circuit: Circuit, *, backend=None, shots: int, seed=None, noise=None, data=None,
        params=None, optimization_level: int = 1, sampler=None) -> RunResult:  # fmt: skip
    """Sample ``circuit`` on a Qiskit backend or sampler (default ``AerSimulator``).

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
        circuit, backend=backend, sampler=sampler, noise=noise,
        optimization_level=optimization_level, seed=seed,
    ).run(shots=shots, params=params, data=data)  # fmt: skip


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
