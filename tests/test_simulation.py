"""The contraction engine against the dense oracle; batching, gradients, plan cache, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_circuit import random_circuits

from qtn.circuit import Circuit, Feature, Trainable, staircase
from qtn.simulation import PLAN_STATS, probabilities, simulate, statevector
from qtn.simulation.dense import initial_vector

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't import `kahypar`")


@settings(max_examples=12, deadline=None)
@given(random_circuits(max_qubits=6, max_ops=15), st.data())
def test_quantities_match_dense_oracle_complex128(c, data):
    n = c.n_qubits
    sim = simulate(c, dtype="complex128")
    qubits = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    np.testing.assert_allclose(sim.probs(qubits), probabilities(c, qubits), atol=1e-10)
    paulis = "".join(data.draw(st.sampled_from("IXYZ")) for _ in range(n))
    psi = statevector(c)
    ref = _pauli_expectation(psi, paulis)
    np.testing.assert_allclose(sim.expectation(paulis), ref, atol=1e-10)
    bits = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    np.testing.assert_allclose(
        sim.amplitude(bits), psi[int("".join(map(str, bits)), 2)], atol=1e-10
    )
    np.testing.assert_allclose(sim.statevector(), psi, atol=1e-10)


def _pauli_expectation(psi, paulis):
    mats = {"I": np.eye(2), "X": [[0, 1], [1, 0]], "Y": [[0, -1j], [1j, 0]], "Z": [[1, 0], [0, -1]]}
    op = np.array([[1.0]])
    for p in paulis:
        op = np.kron(op, np.asarray(mats[p], dtype=complex))
    return np.real(np.vdot(psi, op @ psi))


def test_batched_data_and_params_complex64():
    c = staircase(5, sweeps=2)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=c.n_params)
    X = rng.random((7, 5))
    sim = simulate(c)
    p = sim.probs([0], params=theta, data=X)
    assert p.shape == (7, 2) and p.dtype == np.float32
    ref = np.array([probabilities(c, [0], theta, x) for x in X])
    np.testing.assert_allclose(p, ref, atol=2e-6)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    thetas = rng.normal(size=(7, c.n_params))
    e = sim.expectation({0: "Z"}, params=thetas, data=X)
    ref = np.array([probabilities(c, [0], t, x) @ [1, -1] for t, x in zip(thetas, X)])
    np.testing.assert_allclose(e, ref, atol=5e-6)


def test_plan_cache_is_hit_with_new_data_no_new_search():
    c = staircase(4)
    sim = simulate(c)
    theta = np.zeros(c.n_params)
    rng = np.random.default_rng(0)
    sim.probs([0], params=theta, data=rng.random((3, 4)))
    before = dict(PLAN_STATS)
    sim.probs([0], params=theta + 0.1, data=rng.random((3, 4)))  # new data and parameters
    simulate(c).probs([0], params=theta, data=rng.random((3, 4)))  # new Simulator, same structure
    assert PLAN_STATS["searches"] == before["searches"]
    assert PLAN_STATS["hits"] == before["hits"] + 2


def test_gradient_matches_finite_differences():
    c = staircase(4)
    rng = np.random.default_rng(3)
    x = rng.random(4)
    theta = rng.normal(size=c.n_params)
    sim = simulate(c, dtype="complex128")
    with jax.enable_x64(True):
        f = sim.expectation_fn("ZZII")
        g = np.asarray(jax.grad(lambda t: f(t, jnp.asarray(x)))(jnp.asarray(theta)))
    eps = 1e-6
    for i in (0, 7, 14, 30, 44):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += eps
        tm[i] -= eps
        fd = (
            _pauli_expectation(statevector(c, tp, x), "ZZII")
            - _pauli_expectation(statevector(c, tm, x), "ZZII")
        ) / (2 * eps)
        np.testing.assert_allclose(g[i], fd, atol=1e-8)


def test_feature_encoding_matches_classical_product_state():
    from qtn.features import trigonometric

    c = Circuit(3).ry(Feature(0), 0).ry(Feature(1), 1).ry(Feature(2), 2)
    x = np.array([0.1, 0.5, 0.95])
    phi = trigonometric()(x)
    sv = simulate(c, dtype="complex128").statevector(data=x)
    np.testing.assert_allclose(sv, np.einsum("a,b,c->abc", *phi).reshape(-1), atol=1e-14)


def test_bad_input_errors():
    c = staircase(3)
    sim = simulate(c)
    theta = np.zeros(c.n_params)
    with pytest.raises(ValueError, match="params has 5 values per sample; the circuit needs 30"):
        sim.probs([0], params=np.zeros(5), data=np.zeros(3))
    with pytest.raises(ValueError, match="data has 2 values"):
        sim.probs([0], params=theta, data=np.zeros(2))
    with pytest.raises(ValueError, match="NaN or inf"):
        sim.probs([0], params=theta, data=np.array([0.1, np.nan, 0.2]))
    with pytest.raises(ValueError, match="qubits must be distinct"):
        sim.probs([0, 0], params=theta, data=np.zeros(3))
    with pytest.raises(ValueError, match="one letter per qubit"):
        sim.expectation("ZZ", params=theta, data=np.zeros(3))
    with pytest.raises(ValueError, match="batch sizes differ"):
        sim.probs([0], params=np.zeros((2, 30)), data=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="statevector needs a pure state"):
        simulate(Circuit(1).h(0).measure(0, 0)).statevector()
    with pytest.raises(ValueError, match="amplitude needs a pure state"):
        simulate(Circuit(1).h(0).reset(0)).amplitude([0])
    with pytest.raises(ValueError, match="dtype must be one of"):
        simulate(c, dtype="float32")
    with pytest.raises(ValueError, match="interface must be 'jax' or 'numpy'"):
        simulate(c, interface="torch")
    with pytest.raises(ValueError, match="max_memory must be"):
        simulate(c, max_memory="lots")
    with pytest.raises(TypeError, match="noise must be a qtn.noise.NoiseModel"):
        simulate(c, noise="depolarizing")


def test_trainable_scale_offset():
    c = Circuit(1).ry(Trainable(0, scale=2.0, offset=0.5), 0)
    sim = simulate(c, dtype="complex128")
    p = sim.probs([0], params=np.array([0.3]))
    np.testing.assert_allclose(
        p, [np.cos((2 * 0.3 + 0.5) / 2) ** 2, np.sin((2 * 0.3 + 0.5) / 2) ** 2], atol=1e-12
    )


def test_sampling_is_exact_and_seeded():
    c = Circuit(3).h(0).cx(0, 1).ry(Trainable(0), 2)
    sim = simulate(c, dtype="complex128")
    theta = np.array([1.1])
    a = sim.sample(20_000, params=theta, seed=7)
    b = sim.sample(20_000, params=theta, seed=7)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20_000, 3) and set(np.unique(a)) <= {0, 1}
    assert np.all(a[:, 0] == a[:, 1])  # Bell pair on qubits 0, 1
    p1 = np.sin(1.1 / 2) ** 2
    # 5 sigma binomial bound on the frequency of qubit 2 = 1
    assert abs(a[:, 2].mean() - p1) < 5 * np.sqrt(p1 * (1 - p1) / 20_000)
    sub = sim.sample(10, qubits=[2, 0], params=theta, seed=1)
    assert sub.shape == (10, 2)
    with pytest.raises(ValueError, match="shots must be a positive integer"):
        sim.sample(0, params=theta)


def test_staircase_builder():
    c = staircase(5, sweeps=2)
    assert (c.n_qubits, c.n_features, c.n_params, c.count_2q()) == (5, 5, 120, 8)
    assert staircase(3, encode=False).n_features == 0
    with pytest.raises(ValueError, match="n_qubits must be an integer >= 2"):
        staircase(1)


def test_optimizer_choices_give_the_same_numbers():
    import cotengra as ctg

    c = staircase(4, sweeps=1)
    rng = np.random.default_rng(0)
    theta, x = rng.normal(size=c.n_params), rng.random((3, 4))
    ref = probabilities(c, [3], params=theta, data=x[0])
    p03 = [probabilities(c, [0, 3], params=theta, data=xi) for xi in x]
    zz = [p[0] - p[1] - p[2] + p[3] for p in p03]
    for opt in (
        "greedy",
        ctg.ReusableHyperOptimizer(max_repeats=2, progbar=False, parallel=False),
        lambda: ctg.HyperOptimizer(max_repeats=2, minimize="write", progbar=False),
    ):
        sim = simulate(c, dtype="complex128", optimizer=opt)
        np.testing.assert_allclose(sim.probs([3], params=theta, data=x)[0], ref, atol=1e-12)
        # a second quantity: the factory gives a fresh optimizer per search
        np.testing.assert_allclose(sim.expectation("ZIIZ", params=theta, data=x), zz, atol=1e-12)
    with pytest.raises(TypeError, match="HyperOptimizer is single-use"):
        simulate(c, optimizer=ctg.HyperOptimizer())
    with pytest.raises(TypeError, match="optimizer must be .auto., a cotengra preset name"):
        simulate(c, optimizer=3)


def _random_cores(n, chi, seed):
    rng = np.random.default_rng(seed)
    dims = [1] + [min(chi, 2 ** min(i, n - i)) for i in range(1, n)] + [1]
    cores = [
        rng.normal(size=(dims[i], 2, dims[i + 1])) + 1j * rng.normal(size=(dims[i], 2, dims[i + 1]))
        for i in range(n)
    ]
    cores[0] = cores[0] / np.linalg.norm(initial_vector(cores, n))
    return cores


def test_overlap_with_an_mps_bra_is_planned_and_exact():
    """<bra|C|0> with an MPS bra: the quantity compilation (AQC) optimises."""
    from qtn.models import random_mps, to_dense

    n = 5
    c = staircase(n, encode=False)
    rng = np.random.default_rng(0)
    thetas = rng.normal(size=(3, c.n_params))
    sim = simulate(c, dtype="complex128")
    for bra in (_random_cores(n, 3, 1), random_mps(2, n, 4, complex=True)):
        b = to_dense(bra) if hasattr(bra, "center") else initial_vector(bra, n)
        ref = [np.vdot(b, statevector(c, t)) for t in thetas]
        np.testing.assert_allclose(sim.overlap(bra, params=thetas), ref, atol=1e-12)
        np.testing.assert_allclose(sim.fidelity(bra, params=thetas), np.abs(ref) ** 2, atol=1e-12)
    before = dict(PLAN_STATS)
    sim.overlap(_random_cores(n, 3, 7), params=thetas[0])  # same bond dims: same plan
    assert PLAN_STATS["searches"] == before["searches"]
    with jax.enable_x64(True):
        bra = _random_cores(n, 3, 1)
        f = sim.overlap_fn(bra)
        g = np.asarray(jax.grad(lambda t: jnp.abs(f(t)) ** 2)(jnp.asarray(thetas[0])))
    b = initial_vector(bra, n)
    for i in (0, 11, 29):
        tp, tm = thetas[0].copy(), thetas[0].copy()
        tp[i] += 1e-6
        tm[i] -= 1e-6
        fd = abs(np.vdot(b, statevector(c, tp))) ** 2 - abs(np.vdot(b, statevector(c, tm))) ** 2
        np.testing.assert_allclose(g[i], fd / 2e-6, atol=1e-8)
    with pytest.raises(ValueError, match="bra has 4 cores, the circuit has 5 qubits"):
        sim.overlap(_random_cores(4, 2, 0), params=thetas[0])


def test_input_states_product_and_mps():
    from qtn.noise import NoiseModel, depolarizing
    from qtn.simulation import density_matrix

    n = 4
    c = staircase(n, encode=False)
    rng = np.random.default_rng(5)
    theta = rng.normal(size=c.n_params)
    mps = _random_cores(n, 2, 3)
    sim = simulate(c, dtype="complex128", initial_state=mps)
    np.testing.assert_allclose(
        sim.statevector(params=theta), statevector(c, theta, initial_state=mps), atol=1e-12
    )
    np.testing.assert_allclose(
        sim.probs([1, 3], params=theta),
        probabilities(c, [1, 3], theta, initial_state=mps),
        atol=1e-12,
    )
    nm = NoiseModel().add_gate_noise(depolarizing(0.1, 2), ["su4"])
    noisy = simulate(c, dtype="complex128", initial_state=mps, noise=nm)
    np.testing.assert_allclose(
        noisy.density_matrix(params=theta),
        density_matrix(c, theta, noise=nm, initial_state=mps),
        atol=1e-12,
    )
    fixed = rng.normal(size=(n, 2))
    fixed /= np.linalg.norm(fixed, axis=1, keepdims=True)
    np.testing.assert_allclose(
        simulate(c, dtype="complex128", initial_state=fixed).probs(params=theta),
        probabilities(c, None, theta, initial_state=fixed),
        atol=1e-12,
    )
    # a product state given per call, batched like data: the feature map as an input state
    from qtn.features import trigonometric

    X = rng.random((6, n))
    per_call = simulate(c, dtype="complex128", initial_state="product")
    encoded = simulate(staircase(n), dtype="complex128")
    np.testing.assert_allclose(
        per_call.probs([0], params=theta, state=trigonometric()(X)),
        encoded.probs([0], params=theta, data=X),
        atol=1e-12,
    )
    with pytest.raises(ValueError, match="state: this simulator's initial_state='product' needs"):
        per_call.probs([0], params=theta)
    with pytest.raises(ValueError, match="initial_state must be None, 'product'"):
        simulate(c, initial_state="plus")
    with pytest.raises(ValueError, match="every single-qubit vector must have norm 1"):
        simulate(c, initial_state=np.ones((n, 2)))
