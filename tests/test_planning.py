"""Contraction planning: the effort rule of the default planner and the on-disk path cache.

Oracles: cotengra's own exact (dynamic-programming) search for the cost of
small networks, and the dense statevector for the results of cached plans.
"""

from __future__ import annotations

import cotengra as ctg
import numpy as np
import pytest
from cotengra.pathfinders.path_basic import optimize_optimal
from cotengra.presets import estimate_optimal_hardness

from qtn.circuit import Circuit, Trainable
from qtn.simulation import PLAN_STATS, clear_plan_cache, probabilities, simulate, statevector
from qtn.simulation.network import build_network
from qtn.simulation.search import AutoPlanner, PathCache, search_path, simplify

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't import `kahypar`")


def _deep_circuit(n: int, n_gates: int, seed: int = 0) -> tuple[Circuit, np.ndarray]:
    """A random circuit of RY layers and CX ladders with ``n_gates`` gates, and its angles."""
    rng = np.random.default_rng(seed)
    c, k = Circuit(n), 0
    while len(c.ops) < n_gates:
        for q in range(n):
            c.ry(Trainable(k), q)
            k += 1
        for q in range(n - 1):
            c.cx(q, q + 1)
    return c, rng.uniform(0, 2 * np.pi, k)


def _cost(inputs, output, sizes, ssa_path) -> float:
    tree = ctg.ContractionTree.from_path(inputs, output, sizes, ssa_path=ssa_path)
    return float(tree.contraction_cost())


def _reduced(net):
    _, terms = simplify(net.inputs, net.output, net.sizes)
    return [tuple(sorted(terms[i])) for i in sorted(terms)], tuple(net.output), net.sizes


def test_small_networks_get_the_exact_search():
    """Below the hardness cutoff the default planner is cotengra's exact search: it must
    reproduce the optimal cost exactly."""
    c, _ = _deep_circuit(4, 20)
    net = build_network(c, ("amp", (0,) * 4))
    inputs, output, sizes = _reduced(net)
    assert 2 < len(inputs) and estimate_optimal_hardness(inputs) < AutoPlanner().optimal_cutoff
    ours = AutoPlanner().search(inputs, output, sizes)
    exact = list(optimize_optimal(inputs, output, sizes, minimize="flops", use_ssa=True))
    assert _cost(inputs, output, sizes, ours) == pytest.approx(
        _cost(inputs, output, sizes, exact), rel=1e-12
    )


def test_cheap_contractions_get_a_tiny_search_budget():
    """The 7-qubit circuit of 204 gates whose probs() took 29 s to plan under the old
    default: its greedy tree is so cheap that the hyper search's budget (the greedy
    cost over ``rate``, the rule that bounds the search) is under 50 ms."""
    from cotengra.pathfinders.path_basic import optimize_greedy

    c, _ = _deep_circuit(7, 204)
    net = build_network(c, ("probs", tuple(range(7))))
    inputs, output, sizes = _reduced(net)
    greedy = _cost(inputs, output, sizes, optimize_greedy(inputs, output, sizes, use_ssa=True))
    assert greedy / AutoPlanner().rate < 0.05


def test_large_networks_are_never_worse_than_greedy():
    """Above the cutoff the planner starts from greedy and only keeps better trees."""
    from cotengra.pathfinders.path_basic import optimize_greedy

    c, _ = _deep_circuit(12, 240, seed=1)
    net = build_network(c, ("amp", (0,) * 12))
    inputs, output, sizes = _reduced(net)
    assert estimate_optimal_hardness(inputs) >= AutoPlanner().optimal_cutoff
    planner = AutoPlanner(max_time=2.0, max_repeats=4, seed=0)
    ours = _cost(inputs, output, sizes, planner.search(inputs, output, sizes))
    greedy = _cost(inputs, output, sizes, optimize_greedy(inputs, output, sizes, use_ssa=True))
    assert ours <= greedy * (1 + 1e-12)


def test_planner_settings_are_validated():
    for bad in ({"max_time": 0}, {"rate": -1.0}, {"optimal_cutoff": float("inf")},
                {"max_repeats": 0}, {"max_repeats": 2.5}):  # fmt: skip
        name = next(iter(bad))
        with pytest.raises(ValueError, match=f"AutoPlanner {name}"):
            AutoPlanner(**bad)


def test_disk_cache_is_written_and_read_back(tmp_path):
    """With ``cache_dir`` a path found once is written to disk; after the in-memory plans
    are dropped (as in a new process) the plan comes from the file, with no search, and
    gives the same probabilities as the dense oracle."""
    c, theta = _deep_circuit(6, 60, seed=2)
    ref = probabilities(c, [0, 3, 5], params=theta)
    clear_plan_cache()
    first = simulate(c, dtype="complex128", cache_dir=tmp_path).probs([0, 3, 5], params=theta)
    files = sorted(tmp_path.glob("qtn-path-*.json"))
    assert len(files) == 1
    clear_plan_cache()
    searches, hits = PLAN_STATS["searches"], PLAN_STATS["disk_hits"]
    again = simulate(c, dtype="complex128", cache_dir=tmp_path).probs([0, 3, 5], params=theta)
    assert PLAN_STATS["searches"] == searches
    assert PLAN_STATS["disk_hits"] == hits + 1
    np.testing.assert_allclose(first, ref, atol=1e-10)
    np.testing.assert_allclose(again, ref, atol=1e-10)


def test_disk_cache_from_environment_and_a_corrupt_file_is_searched_again(tmp_path, monkeypatch):
    monkeypatch.setenv("QTN_PLAN_CACHE", str(tmp_path))
    assert PathCache.from_setting(None).directory == tmp_path
    c, theta = _deep_circuit(5, 30, seed=3)
    clear_plan_cache()
    simulate(c, dtype="complex128").probs([1], params=theta)
    (f,) = tmp_path.glob("qtn-path-*.json")
    f.write_text("{not json")
    clear_plan_cache()
    searches = PLAN_STATS["searches"]
    out = simulate(c, dtype="complex128").probs([1], params=theta)
    assert PLAN_STATS["searches"] == searches + 1  # the unreadable file was not trusted
    ref = probabilities(c, [1], params=theta)
    np.testing.assert_allclose(out, ref, atol=1e-10)


def test_search_path_is_a_valid_full_path():
    """The simplified search maps back onto the full network: cotengra accepts it as one
    complete contraction tree, and the amplitude the engine contracts along it equals
    the dense statevector's entry."""
    c, theta = _deep_circuit(4, 24, seed=4)
    net = build_network(c, ("amp", (1, 0, 1, 1)))
    path = search_path(net.inputs, net.output, net.sizes, None)
    assert len(path) == len(net.inputs) - 1
    tree = ctg.ContractionTree.from_path(net.inputs, net.output, net.sizes, ssa_path=path)
    assert tree.is_complete()
    clear_plan_cache()
    amp = simulate(c, dtype="complex128").amplitude((1, 0, 1, 1), params=theta)
    np.testing.assert_allclose(amp, statevector(c, params=theta)[0b1011], atol=1e-12)
