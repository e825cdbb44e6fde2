"""The :class:`Simulator`: one circuit structure, every quantity, planned once, run many times.

Each quantity (marginal probabilities, a Pauli expectation value, an
amplitude, the statevector, the density matrix, an overlap or fidelity with an
MPS) is a network (:mod:`qtn.simulation.network`) whose contraction is
planned once and cached (:mod:`qtn.simulation.plan`). A call only builds the
parameterised gate tensors from (params, data) and runs the jitted, vmapped
expression, so new data or parameters never trigger a new search.

Pure circuits (gates only) give ket networks for amplitudes, statevectors and
overlaps. Measure, reset, discard and noise channels (:mod:`qtn.noise`) make
the network doubled, so probabilities, expectations and density matrices are
exact for mixed states. Memory is bounded: a contraction whose estimated peak
exceeds ``max_memory`` is sliced by cotengra, batches are chunked to fit, and
what cannot fit raises :class:`qtn.errors.ContractionTooLargeError`. The
``numpy`` interface evaluates the same cached expressions without JAX.

A sliced contraction can run its slices in parallel, over the devices of a
JAX mesh (``devices=``) or the workers of a Dask cluster (``executor=``), and
``probs``, ``expectation`` and ``amplitude`` map over Dask arrays of inputs
(:mod:`qtn.simulation.scaleout`).
"""

from __future__ import annotations

import numpy as np

from qtn._checks import real_array
from qtn._jax import x64_if
from qtn.circuit import PAULI, Circuit
from qtn.noise import NoiseModel
from qtn.simulation import sampling
from qtn.simulation.memory import default_memory_limit, parse_bytes, too_large
from qtn.simulation.network import InitialState, build_network, mps_cores
from qtn.simulation.plan import DTYPES, Plan, check_optimizer, get_plan
from qtn.simulation.scaleout import (
    ExecutorRunner,
    check_executor,
    dask_map,
    is_dask_array,
    resolve_devices,
)
from qtn.simulation.search import AutoPlanner

__all__ = ["Simulator", "simulate", "defer_measurements"]

_INTERFACES = ("jax", "numpy")


class Simulator:
    """Cached, batched simulation of one circuit structure.

    Parameters
    ----------
    circuit
        A :class:`qtn.circuit.Circuit`; the simulator keeps a frozen snapshot, so
        later changes to ``circuit`` do not affect it. Gates only: pure-state
        networks. With measure, reset, discard or noise operations (or a
        ``noise`` model), probabilities and expectations come from the
        density-matrix (doubled) network and amplitudes, statevectors and
        overlaps are unavailable.
    noise
        A :class:`qtn.noise.NoiseModel`: its channels are inserted after the
        gates they match and its readout errors act on ``probs`` and ``sample``.
    dtype
        ``"complex64"`` (default) or ``"complex128"`` (JAX x64 is enabled only
        inside the calls).
    interface
        ``"jax"`` (default: jitted and vmapped, on the GPU when one is present)
        or ``"numpy"`` (the same cached contraction, evaluated by numpy one
        sample at a time; for machines without JAX or for debugging).
    initial_state
        The state the circuit acts on: None (|0...0>), an (n, 2) array (a fixed
        product state), a list of MPS cores (D_left, 2, D_right) or an object
        with ``to_cores()`` (a fixed MPS), or ``"product"``: a product state given
        per call through ``state=`` (shape (n, 2) or (batch, n, 2)).
    max_memory
        Bytes (or ``"4GB"``) one contraction may use. Contractions whose
        estimated peak exceeds it are sliced by cotengra (the slices are summed
        exactly) and batches are split into chunks that fit. Default: half the
        GPU memory under JAX on a GPU, else half the physical RAM. A contraction
        that cannot be sliced to fit raises :class:`qtn.errors.ContractionTooLargeError`
        stating the estimated size.
    optimizer
        How contraction trees are searched: a preset name such as ``"greedy"``,
        a ``cotengra.ReusableHyperOptimizer`` (shared by all searches), or a
        zero-argument factory returning a fresh optimizer per search, e.g.
        ``lambda: cotengra.HyperOptimizer(minimize="write")``. A bare
        ``HyperOptimizer`` instance is refused: cotengra makes it single-use.
        Default ``"auto"``: :class:`qtn.simulation.search.AutoPlanner`, whose
        effort scales with the network (cotengra's exact search for small ones,
        a time-budgeted hyper search for large ones).
    cache_dir
        Directory for the opt-in on-disk path cache (one small JSON file per
        network, optimizer and memory limit, read back by later processes);
        default the ``QTN_PLAN_CACHE`` environment variable, else no disk cache.
    devices
        Where a *sliced* contraction (one whose peak exceeded ``max_memory``) runs its
        slices: None (default: one device, as without this option), an int n (the
        first n of ``jax.devices()``), a sequence of ``jax.Device`` objects, or a
        ``jax.sharding.Mesh`` (its devices, flattened). With two or more devices the
        slices are sharded over a 1-D mesh: each device scans over its share (the
        count padded to a multiple of the devices with slices that add zero) with
        the whole batch replicated, and ``lax.psum`` adds the partial sums.
        ``jax.grad`` through :meth:`expectation_fn`, :meth:`probs_fn` and
        :meth:`overlap_fn` runs the same sharded program. Unsliced contractions run
        as without it. JAX interface only. In a multi-process JAX run
        (``jax.distributed.initialize``) pass the global devices: the contraction
        path is searched on process 0 and broadcast, so every process runs the
        same program. CPU devices: ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
        (or ``QTN_CPU_DEVICES=4``) before JAX is imported.
    executor
        Runs sliced contractions and batches as tasks: a Dask ``distributed.Client``
        or any object with ``submit(fn, *args)`` returning futures (a
        ``concurrent.futures.Executor``; results are read with the executor's
        ``gather`` if it has one, else each future's ``result()``). A sliced
        contraction is split into one contiguous slice range per worker thread, each
        task returns the partial sum and the partial sums are added here in task
        order (deterministic); an unsliced batched call sends chunks of the batch
        and concatenates the results; an unsliced single input runs here. Each plan
        is scattered to a client's workers once. The workers run the simulator's
        ``interface`` (JAX compiles once per worker and shape). Not together with
        ``devices``.

    Every quantity takes ``params`` (shape (P,) shared, or (B, P) one vector per
    sample) and ``data`` (shape (F,) or (B, F)); with a batch axis the result
    gets a leading B axis. :meth:`probs`, :meth:`expectation` and :meth:`amplitude`
    also take a ``dask.array.Array`` with the batch axis for ``params``, ``data`` or
    ``state`` and return a Dask array over its row chunks.

    A Simulator pickles (cloudpickle, pickle) without its ``devices`` and
    ``executor``: a copy sent to a Dask worker runs there on one device. Plans are
    not pickled with it: each process plans (or reads ``cache_dir``) once.

    Examples
    --------
    >>> from qtn.circuit import Circuit, Feature
    >>> c = Circuit(2).ry(Feature(0), 0).ry(Feature(1), 1).su4(0, 1, start=0)
    >>> sim = simulate(c)
    >>> sim.probs([0], params=np.zeros(15), data=np.random.rand(100, 2)).shape
    (100, 2)

    A sliced contraction over 4 devices, or over a Dask cluster::

        sim = simulate(c, dtype="complex128", max_memory="1MB", devices=4)
        from dask.distributed import Client, LocalCluster
        client = Client(LocalCluster(n_workers=2, threads_per_worker=1))
        sim = simulate(c, dtype="complex128", max_memory="1MB", executor=client)
        sim.probs(params=theta, data=x)           # slices summed over the workers
        sim.probs(params=theta, data=dask_array)  # a Dask array, one task per chunk
    """

    def __init__(
        self,
        circuit: Circuit,
        *,
        noise: NoiseModel | None = None,
        dtype: str = "complex64",
        interface: str = "jax",
        initial_state=None,
        max_memory=None,
        optimizer=None,
        cache_dir=None,
        devices=None,
        executor=None,
    ):
        if not isinstance(circuit, Circuit):
            raise TypeError(f"circuit must be a qtn Circuit, got {type(circuit).__name__}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
        if interface not in _INTERFACES:
            raise ValueError(f"interface must be 'jax' or 'numpy', got {interface!r}")
        if noise is not None and not isinstance(noise, NoiseModel):
            raise TypeError(f"noise must be a qtn.noise.NoiseModel, got {type(noise).__name__}")
        self.circuit = circuit.snapshot()
        self.noise = noise
        self.dtype = dtype
        self.interface = interface
        self.initial_state = InitialState.from_value(initial_state, self.circuit.n_qubits)
        net_circuit = self.circuit if noise is None else noise.apply(self.circuit)
        self._net_circuit = net_circuit.snapshot()
        self._max_memory = None if max_memory is None else parse_bytes(max_memory)
        self._optimizer = check_optimizer(optimizer)
        self._cache_dir = cache_dir
        self._mesh = resolve_devices(devices, interface)
        self._executor = None if executor is None else ExecutorRunner(check_executor(executor))
        if devices is not None and executor is not None:
            raise ValueError(
                "devices and executor: pass one of them (the slices of a contraction run over "
                "the devices of this process, or as tasks of the executor), got "
                f"devices={devices!r} and executor={type(executor).__name__}"
            )

    @property
    def mesh(self):
        """The 1-D ``jax.sharding.Mesh`` that sliced contractions are sharded over, or None."""
        return self._mesh

    @property
    def executor(self):
        """The executor that runs sliced contractions and batch chunks, or None."""
        return None if self._executor is None else self._executor.executor

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_mesh=None, _executor=None)  # devices and clients stay in this process
        return state

    @property
    def is_pure(self) -> bool:
        """True when the simulated circuit (with noise) is unitary: a pure final state."""
        return self._net_circuit.is_unitary

    @property
    def max_memory(self) -> int:
        if self._max_memory is None:
            self._max_memory = default_memory_limit(self.interface)
        return self._max_memory

    def plan(self, name: str, *args, _results: int = 0) -> Plan:
        """The (cached) :class:`~qtn.simulation.plan.Plan` of quantity ``(name, *args)``.

        Planning ahead separates the tree search from the first call, e.g.
        ``sim.plan("probs", (0,))``.
        """
        quantity = (name, *args)
        opt = self._optimizer
        opt_key = opt if opt is None or isinstance(opt, str | AutoPlanner) else ("object", id(opt))
        state = self.initial_state
        key = (self._net_circuit.structure_key(), (state.kind, state.digest), quantity,
               self.dtype, self.max_memory, opt_key)  # fmt: skip
        broadcast = self._mesh is not None
        if broadcast and _process_count() > 1:  # a path agreed on by every process
            key = (*key, "broadcast")
        return get_plan(
            key,
            lambda: build_network(self._net_circuit, quantity, state),
            dtype=self.dtype,
            max_memory=self.max_memory,
            optimizer=opt,
            cache_dir=self._cache_dir,
            what=f"{name!r} ({self.circuit.n_qubits} qubits)",
            results=_results,
            broadcast=broadcast,
        )

    # ------------------------------------------------------------------ inputs

    def _inputs(self, params, data, state=None):
        c = self.circuit
        rdt = DTYPES[self.dtype][1]
        p = _real_array("params", params, rdt)
        x = _real_array("data", data, rdt)
        for name, arr, need in (("params", p, c.n_params), ("data", x, c.n_features)):
            if arr.ndim not in (1, 2):
                raise ValueError(f"{name} must have shape (n,) or (batch, n), got {arr.shape}")
            if arr.shape[-1] < need:
                raise ValueError(
                    f"{name} has {arr.shape[-1]} values per sample; the circuit needs {need}"
                )
        batched = [p.ndim == 2, x.ndim == 2]
        s = None
        if self.initial_state.kind == "input":
            if state is None:
                raise ValueError("state: this simulator's initial_state='product' needs state=")
            s = np.asarray(state, dtype=DTYPES[self.dtype][0])
            n = c.n_qubits
            if s.shape[-2:] != (n, 2) or s.ndim not in (2, 3) or not np.all(np.isfinite(s)):
                raise ValueError(
                    f"state must be finite with shape ({n}, 2) or (batch, {n}, 2), got {s.shape}"
                )
            batched.append(s.ndim == 3)
        elif state is not None:
            raise ValueError("state: pass initial_state='product' to the simulator to use it")
        else:
            batched.append(False)
        sizes = {a.shape[0] for a, b in zip((p, x, s), batched) if b}
        if len(sizes) > 1:
            raise ValueError(f"params, data and state batch sizes differ: {sorted(sizes)}")
        return p, x, (s, tuple(batched))

    def _run(self, name, args, params, data, state=None, bra=None):
        p, x, (s, batched) = self._inputs(params, data, state)
        flags = (*batched, False, False)
        inputs = [p, x, s]
        size = next((a.shape[0] for a, b in zip(inputs, batched) if b), None)
        what = f"{name!r} of {self.circuit.n_qubits} qubits"
        with x64_if(DTYPES[self.dtype][1]):
            plan = self.plan(name, *args, _results=2 * (size or 1))
            chunk = self._chunk(plan, flags, size or 1, what)
            if self._executor is not None and (plan.program.n_slices > 1 or size is not None):
                return self._run_tasks(plan, flags, inputs, bra, size, chunk)
            if self.interface == "numpy":
                return np.asarray(plan.function(flags, "numpy")(p, x, s, bra, None))
            run, chunk = self._executable(plan, flags, inputs, bra, size, chunk, what)
            if size is None or size <= chunk:
                return np.asarray(run(p, x, s, bra, None))
            # a batch that does not fit at once: equal chunks (the last one padded), one compile
            out = None
            for lo in range(0, size, chunk):
                sl = [a[lo : lo + chunk] if b else a for a, b in zip(inputs, batched)]
                m = next(a.shape[0] for a, b in zip(sl, batched) if b)
                sl = [np.concatenate([a, np.repeat(a[-1:], chunk - m, 0)]) if b and m < chunk
                      else a for a, b in zip(sl, batched)]  # fmt: skip
                part = np.asarray(run(*sl, bra, None))[:m]
                if out is None:
                    out = np.empty((size, *part.shape[1:]), part.dtype)
                out[lo : lo + m] = part
            return out

    def _run_tasks(self, plan, flags, inputs, bra, size, chunk):
        """``_run`` on the executor: slice ranges of a sliced contraction (batches of at
        most ``chunk`` inputs at a time), or chunks of an unsliced batch."""
        runner = self._executor
        batched = flags[:3]
        if plan.program.n_slices == 1:
            return runner.rows(plan, self.interface, flags, inputs, bra, size, chunk)
        if size is None or size <= chunk:
            return np.asarray(runner.slices(plan, self.interface, flags, inputs, bra))
        parts = []
        for lo in range(0, size, chunk):
            sl = [a[lo : lo + chunk] if b else a for a, b in zip(inputs, batched)]
            parts.append(np.asarray(runner.slices(plan, self.interface, flags, sl, bra)))
        return np.concatenate(parts)

    def _results_bytes(self, plan: Plan, size: int) -> int:
        """The results of ``size`` inputs on the host, with one processed copy."""
        return 2 * size * plan.program.output_bytes

    def _chunk(self, plan: Plan, flags: tuple, size: int, what: str) -> int:
        """How many inputs one call may take, by the program's memory model: the results
        of the whole batch must fit ``max_memory`` with one chunk's contraction."""
        prog = plan.program
        limit = self.max_memory
        results = self._results_bytes(plan, size)
        if results > limit:
            raise too_large(f"the results of {what} for {size} inputs", results, limit,
                            "pass fewer inputs per call, or raise max_memory")  # fmt: skip
        if self.interface == "numpy":
            need = prog.peak_bytes(1) + results
            if need > limit:
                raise too_large(f"the {what} contraction with its results", need, limit)
            return size
        vflags = plan.variable_flags(flags)
        chunk = prog.max_batch(limit - results, vflags)
        if chunk < 1:
            need = prog.peak_bytes(1, vflags) + results
            raise too_large(f"the {what} contraction with its results", need, limit,
                            "pass fewer inputs per call, or raise max_memory")  # fmt: skip
        return chunk

    def _executable(self, plan: Plan, flags, inputs, bra, size, chunk, what):
        """The compiled contraction for chunks of ``chunk`` inputs, shrunk until XLA's own
        memory count (constants, inputs, output, temporaries) fits with the results."""
        budget = self.max_memory - self._results_bytes(plan, size or 1)
        batched = flags[:3]
        for _ in range(4):
            n = None if size is None else min(size, chunk)
            args = [a if not b else a[:n] for a, b in zip(inputs, batched)]
            exe = plan.executable(flags, (*args, bra, None), self._mesh)
            used = exe.device_bytes()
            if used is None or used <= budget:
                return exe, (chunk if n is None else n)
            if n is None or n == 1:
                break
            chunk = max(1, int(n * budget / used * 0.95))
        raise too_large(f"the {what} contraction with its results (XLA's count)",
                        used + self.max_memory - budget, self.max_memory,
                        "pass fewer inputs per call, or raise max_memory")  # fmt: skip

    def _need_pure(self, what: str):
        if not self.is_pure:
            raise ValueError(
                f"{what} needs a pure state, but this circuit has measure/reset/discard or "
                "noise operations; use probs, expectation, density_matrix or fidelity"
            )

    def _qubits(self, qubits) -> tuple:
        n = self.circuit.n_qubits
        if qubits is None:
            return tuple(range(n))
        try:
            qubits = tuple(int(q) for q in np.atleast_1d(np.asarray(qubits, dtype=object)))
        except (TypeError, ValueError):
            raise ValueError(f"qubits must be integers in [0, {n - 1}], got {qubits!r}") from None
        if not qubits or any(not 0 <= q < n for q in qubits) or len(set(qubits)) != len(qubits):
            raise ValueError(f"qubits must be distinct and in [0, {n - 1}], got {qubits}")
        return qubits

    def _phase(self) -> complex:
        """exp(i global_phase) as a Python complex (weakly typed: keeps complex64 results)."""
        return complex(np.exp(1j * self.circuit.global_phase))

    def _bra(self, bra, name="bra"):
        cores = mps_cores(bra, self.circuit.n_qubits, name)
        return [np.asarray(c) for c in cores], tuple(c.shape[2] for c in cores[:-1])

    # ------------------------------------------------------------------ quantities

    def _dask(self, method, args, tail, dtype, params, data, state):
        """The quantity over the row chunks of Dask inputs, or None without any."""
        if not any(is_dask_array(a) for a in (params, data, state)):
            return None
        return dask_map(self, method, args, tail, np.dtype(dtype), params=params, data=data,
                        state=state)  # fmt: skip

    def probs(self, qubits=None, *, params=None, data=None, state=None) -> np.ndarray:
        """Marginal Z-basis probabilities of ``qubits`` (default all), big-endian in that order.

        Readout errors of the noise model are applied. With a ``dask.array.Array`` of
        batched ``params``, ``data`` or ``state`` the result is a Dask array of shape
        (batch, 2**len(qubits)), one task per row chunk (the other axes are rechunked
        whole), computed by the scheduler that computes it (threads by default, or a
        ``distributed`` cluster); Dask is imported only then.

        Examples
        --------
        A lazy result over 4 chunks of 2,500 rows::

            import dask.array as da
            X = da.random.default_rng(0).random((10_000, 2), chunks=2_500)
            P = sim.probs([0], params=theta, data=X)   # dask array, shape (10000, 2)
            P.compute()                                # threads; or client.compute(P)
        """
        qubits = self._qubits(qubits)
        lazy = self._dask("probs", (qubits,), (2 ** len(qubits),), DTYPES[self.dtype][1],
                          params, data, state)  # fmt: skip
        if lazy is not None:
            return lazy
        n = self.circuit.n_qubits
        if self.is_pure and len(qubits) == n:  # |amplitudes|^2: half the network of the marginal
            amp = self._run("state", (), params, data, state)
            k = amp.ndim - n
            p = amp.real**2 + amp.imag**2
            p = np.transpose(p, (*range(k), *[k + q for q in qubits])).reshape(*amp.shape[:k], -1)
        else:
            out = self._run("probs", (qubits,), params, data, state)
            lead = out.shape[: out.ndim - len(qubits)]
            p = np.real(out).reshape(*lead, 2 ** len(qubits))
        return p if self.noise is None else self.noise.apply_readout(p, qubits)

    def expectation(self, paulis, *, params=None, data=None, state=None) -> np.ndarray:
        """Expectation value of a Pauli string: ``"ZIX"`` (one letter per qubit) or ``{q: "Z"}``.

        Dask arrays of batched inputs give a Dask array of shape (batch,), as in :meth:`probs`.
        """
        paulis = dict(self._paulis(paulis))
        lazy = self._dask("expectation", (paulis,), (), DTYPES[self.dtype][1], params, data,
                          state)  # fmt: skip
        if lazy is not None:
            return lazy
        return np.real(self._run("expect", (self._paulis(paulis),), params, data, state))

    def _paulis(self, paulis) -> tuple:
        """Normalise ``"ZIX"`` or ``{q: "Z"}`` to sorted ((qubit, letter), ...), validated."""
        n = self.circuit.n_qubits
        if isinstance(paulis, str):
            if len(paulis) != n:
                raise ValueError(f"paulis: string {paulis!r} must have one letter per qubit ({n})")
            paulis = {q: p for q, p in enumerate(paulis.upper()) if p != "I"}
        if not isinstance(paulis, dict):
            raise ValueError(f"paulis must be a string or a {{qubit: letter}} dict, got {paulis!r}")
        ops = tuple(sorted((int(q), str(p).upper()) for q, p in paulis.items()))
        for q, p in ops:
            if not 0 <= q < n or p not in PAULI:
                raise ValueError(
                    f"paulis: bad term ({q}, {p!r}): qubits in [0, {n - 1}], letters IXYZ"
                )
        return ops

    def amplitude(self, bits, *, params=None, data=None, state=None) -> np.ndarray:
        """The amplitude <bits|psi> (bits big-endian, qubit 0 first); pure states only.

        Dask arrays of batched inputs give a Dask array of shape (batch,), as in :meth:`probs`.
        """
        self._need_pure("amplitude")
        bits = tuple(int(b) for b in bits)
        if len(bits) != self.circuit.n_qubits or any(b not in (0, 1) for b in bits):
            raise ValueError(f"bits must be {self.circuit.n_qubits} values of 0/1, got {bits}")
        lazy = self._dask("amplitude", (bits,), (), DTYPES[self.dtype][0], params, data, state)
        if lazy is not None:
            return lazy
        return self._phase() * self._run("amp", (bits,), params, data, state)

    def statevector(self, *, params=None, data=None, state=None) -> np.ndarray:
        """The full statevector, shape (..., 2**n) (small n, pure states only)."""
        self._need_pure("statevector")
        n = self.circuit.n_qubits
        out = self._phase() * self._run("state", (), params, data, state)
        return out.reshape(*out.shape[: out.ndim - n], 2**n)

    def density_matrix(self, *, params=None, data=None, state=None) -> np.ndarray:
        """The full density matrix, shape (..., 2**n, 2**n) (at most 10 qubits)."""
        n = self.circuit.n_qubits
        out = self._run("dm", (), params, data, state)
        return out.reshape(*out.shape[: out.ndim - 2 * n], 2**n, 2**n)

    def overlap(self, bra, *, params=None, data=None, state=None) -> np.ndarray:
        """<bra|C|initial state> for an MPS ``bra`` (cores (D_left, 2, D_right)); pure only.

        The bra's bond dimensions enter the plan, its values do not: one plan serves
        every MPS of the same shape.
        """
        self._need_pure("overlap")
        cores, bonds = self._bra(bra)
        return self._phase() * self._run("overlap", (bonds,), params, data, state, bra=cores)

    def fidelity(self, bra, *, params=None, data=None, state=None) -> np.ndarray:
        """<bra| rho |bra> for an MPS ``bra``: |overlap|^2 for pure circuits; exact with noise."""
        cores, bonds = self._bra(bra)
        return np.real(self._run("fidelity", (bonds,), params, data, state, bra=cores))

    def clbit_probs(self, *, params=None, data=None) -> np.ndarray:
        """Exact distribution of the classical bits, shape (..., 2**n_clbits), clbit 0 most
        significant: mid-circuit measurements included (dynamic circuits).

        By the principle of deferred measurement, each ``Measure(q, c)`` becomes a CX from
        q onto a fresh record qubit, whose final Z statistics are those of clbit c (the
        last record written to a clbit wins); readout errors of the noise model act on
        each record as on its measured qubit.
        """
        deferred, records, sources = defer_measurements(self._net_circuit)
        if not records:
            raise ValueError("clbit_probs: the circuit measures no qubit")
        sim = Simulator(deferred, dtype=self.dtype, interface=self.interface,
                        max_memory=self._max_memory, optimizer=self._optimizer,
                        cache_dir=self._cache_dir)  # fmt: skip
        sim._mesh, sim._executor = self._mesh, self._executor
        p = sim.probs(records, params=params, data=data)
        if self.noise is not None and self.noise.readout:
            from qtn.noise import NoiseModel

            per_record = NoiseModel()
            for r, q in zip(records, sources):
                m = self.noise.readout_matrix(q)
                if m is not None:
                    per_record = per_record.add_readout_matrix(m, [r])
            p = per_record.apply_readout(p, records)
        return p

    def sample(
        self, shots: int, qubits=None, *, params=None, data=None, state=None, seed=None
    ) -> np.ndarray:
        """Exact samples of ``qubits`` (default all) for one input: (shots, len(qubits)) of 0/1.

        Drawn from the exact marginal distribution (with readout errors), with
        ``numpy.random.default_rng(seed)``; bits are in the order of ``qubits``.
        A pure circuit is sampled along its exact MPS (all shots at once per
        qubit); a mixed state by its whole marginal up to 20 qubits, beyond by the
        chain rule in blocks (see :mod:`qtn.simulation.sampling`).
        """
        if isinstance(shots, bool) or not isinstance(shots, int | np.integer) or shots < 1:
            raise ValueError(f"shots must be a positive integer, got {shots!r}")
        qubits = self._qubits(qubits)
        for name, arr, one in (("params", params, 1), ("data", data, 1), ("state", state, 2)):
            if arr is not None and np.ndim(arr) != one:
                raise ValueError(
                    f"sample takes one input: {name} must be {one}-D, got shape {np.shape(arr)}"
                )
        self._inputs(params, data, state)  # validated before anything runs
        return sampling.sample(self, int(shots), qubits, params, data, seed, state=state)

    # ------------------------------------------------------------------ differentiable functions

    def _jax_fn(self, name, *args):
        return self.plan(name, *args).function((False,) * 5, "jax", self._mesh)

    def expectation_fn(self, paulis):
        """A jitted JAX function ``f(params, data) -> <P>`` (one sample), for ``jax.grad``/``vmap``.

        Example: ``jax.grad(lambda th: sim.expectation_fn("ZI")(th, x))(theta)``. With
        ``devices``, a sliced contraction runs (and differentiates) sharded over them.
        """
        fn = self._jax_fn("expect", self._paulis(paulis))
        return lambda params, data=None: fn(params, _empty(data, params), None, None, None).real

    def probs_fn(self, qubits):
        """A jitted JAX function ``f(params, data) -> probabilities of qubits`` (one sample).

        Readout errors of the noise model are applied, differentiably.
        """
        import jax.numpy as jnp

        qubits = self._qubits(qubits)
        fn = self._jax_fn("probs", qubits)
        noise = self.noise

        def f(params, data=None):
            p = fn(params, _empty(data, params), None, None, None).real.reshape(-1)
            return p if noise is None else noise.apply_readout(p, qubits, xp=jnp)

        return f

    def overlap_fn(self, bra):
        """A jitted JAX function ``f(params, data) -> <bra|C|initial state>`` (one sample).

        ``bra`` (MPS cores) is fixed; use ``jax.grad`` of ``abs(f)**2`` for fidelity
        gradients (compilation).
        """
        self._need_pure("overlap_fn")
        cores, bonds = self._bra(bra)
        fn = self._jax_fn("overlap", bonds)
        phase = self._phase()
        return lambda params, data=None: phase * fn(params, _empty(data, params), None, cores, None)


def defer_measurements(circuit: Circuit):
    """``circuit`` with every measurement replaced by a CX onto a fresh record qubit.

    Returns ``(circuit, records, sources)``: the record qubit holding each clbit (in
    clbit order; the last measurement into a clbit wins) and the qubit it measured.
    """
    from qtn.circuit import Measure

    measures = [op for op in circuit.ops if isinstance(op, Measure)]
    n = circuit.n_qubits
    out = Circuit(n + len(measures), global_phase=circuit.global_phase)
    last: dict[int, tuple[int, int]] = {}
    j = 0
    for op in circuit.ops:
        if isinstance(op, Measure):
            out.cx(op.qubit, n + j)
            last[op.clbit] = (n + j, op.qubit)
            j += 1
        else:
            out.append(op)
    clbits = sorted(last)
    if clbits and clbits != list(range(len(clbits))):
        missing = sorted(set(range(max(clbits) + 1)) - set(clbits))
        raise ValueError(f"clbit_probs: clbits {missing} are never written")
    return out, [last[c][0] for c in clbits], [last[c][1] for c in clbits]


def _process_count() -> int:
    import jax

    return jax.process_count()


def _real_array(name, values, dtype):
    if values is None:
        return np.zeros((0,), dtype)
    return real_array(name, values, dtype)


def _empty(data, like):
    import jax.numpy as jnp

    return jnp.zeros((0,), jnp.asarray(like).real.dtype) if data is None else data


def simulate(circuit: Circuit, **kwargs) -> Simulator:
    """A :class:`Simulator` for ``circuit`` (see its parameters)."""
    return Simulator(circuit, **kwargs)
