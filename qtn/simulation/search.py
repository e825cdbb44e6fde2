"""Contraction-path search: effort scaled to the network, and an opt-in on-disk cache.

Every search first *simplifies* the network (:func:`simplify`): a tensor is
contracted into a neighbour whenever the result is no larger than the larger
of the two. Input and closing vectors, single-qubit gates, and gates repeated
on the same wires disappear this way, exactly and in linear time, so the
search proper sees a network several times smaller. Its path is then mapped
back onto the full network.

The default optimizer, :class:`AutoPlanner` (``optimizer="auto"`` or None),
scales its effort to the simplified network:

- a small network (cotengra's "hardness" n^2 sqrt(k) below ``optimal_cutoff``)
  gets cotengra's exact dynamic-programming search, which takes milliseconds;
- a larger one gets a greedy path whose subtrees of 8 tensors are then
  re-optimised exactly (cotengra's subtree reconfiguration: cheap, and it
  removes most of greedy's excess cost), then a cotengra hyper search (greedy
  trials, plus KaHyPar partitions when ``kahypar`` is installed, each
  reconfigured the same way) that stops when the time spent exceeds the time the best
  contraction found would take at ``rate`` flop/s, after ``max_repeats``
  trials, or after ``max_time`` seconds, whichever comes first. This is the
  rule of quimb's default ('auto-hq'), with a hard time cap added. The rate,
  1e7 flop/s, is about 100x below what a CPU core contracts: a plan is cached
  and then evaluated many times, batched over data, so searching up to ~100
  single contractions' time pays. (At 1e8 the 20-qubit depth-10 random circuit
  stopped at 3x the cost a 30 s hyper search finds; at 1e6 planning took up to
  5x quimb's time on idle cores.) The cap, 30 s, is reached only by
  contractions of more than 3e8 flops; at 10 s the 20-qubit depth-100 circuit
  stopped at 8.7x the cost a 30 s hyper search finds, while quimb took over a
  minute to plan it.

Any cotengra preset name (``"greedy"``, ``"auto-hq"``, ...), path optimizer,
``ReusableHyperOptimizer`` or factory of optimizers is searched on the
simplified network too. Paths found are kept in memory by the plan cache; with
``cache_dir`` (or the ``QTN_PLAN_CACHE`` environment variable) they are also
written to disk, one small JSON file per (network, optimizer, memory limit),
and read back by later processes.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AutoPlanner", "simplify", "search_path", "optimizer_key", "PathCache"]


@dataclass(frozen=True)
class AutoPlanner:
    """The default contraction-path search (see the module docstring).

    Parameters
    ----------
    max_time
        Hard cap, in seconds, on the hyper search of one network.
    rate
        Stop the hyper search once the seconds spent exceed the best contraction's
        flops divided by ``rate``: cheap contractions get a short search.
    max_repeats
        At most this many hyper-search trials.
    optimal_cutoff
        Networks whose hardness (cotengra's estimate, n^2 sqrt(k) for n tensors of
        average degree k) is below this are searched exactly.
    subtree_size
        Subtrees of this many tensors are re-optimised exactly in every tree found
        (cotengra's subtree reconfiguration), the greedy one first.
    minimize
        cotengra's objective: ``"flops"`` (the contraction cost), ``"combo"`` (flops
        plus 64 x memory writes), ``"size"`` or ``"write"``.
    seed
        Seed of the hyper search's random choices.
    """

    max_time: float = 30.0
    rate: float = 1e7
    max_repeats: int = 128
    optimal_cutoff: float = 650.0
    subtree_size: int = 8
    minimize: str = "flops"
    seed: int = 0

    def __post_init__(self):
        for name in ("max_time", "rate", "optimal_cutoff"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0 or v == math.inf:
                raise ValueError(f"AutoPlanner {name} must be a positive finite number, got {v!r}")
        if (
            isinstance(self.max_repeats, bool)
            or not isinstance(self.max_repeats, int)
            or (self.max_repeats < 1)
        ):
            raise ValueError(
                f"AutoPlanner max_repeats must be an integer >= 1, got {self.max_repeats!r}"
            )

    def search(self, inputs, output, sizes) -> list:
        """An SSA path for the (already simplified) network."""
        import cotengra as ctg
        from cotengra.pathfinders.path_basic import optimize_greedy, optimize_optimal
        from cotengra.presets import estimate_optimal_hardness

        if len(inputs) <= 1:
            return []
        if estimate_optimal_hardness(inputs) < self.optimal_cutoff:
            return list(optimize_optimal(inputs, output, sizes, minimize=self.minimize,
                                         use_ssa=True))  # fmt: skip
        t0 = time.perf_counter()
        greedy = optimize_greedy(inputs, output, sizes, use_ssa=True)
        best = ctg.ContractionTree.from_path(inputs, output, sizes, ssa_path=greedy)
        best.subtree_reconfigure_(subtree_size=self.subtree_size, minimize=self.minimize)
        best_cost = _cost(best, self.minimize)
        methods = ["greedy"] + (["kahypar"] if _has("kahypar") else [])
        opt = ctg.HyperOptimizer(
            methods=methods, max_repeats=self.max_repeats, minimize=self.minimize,
            parallel=False, reconf_opts={"subtree_size": self.subtree_size}, optlib="random",
            progbar=False, on_trial_error="ignore", seed=self.seed,
        )  # fmt: skip
        done = 0
        while done < self.max_repeats:
            spent = time.perf_counter() - t0
            if spent > min(self.max_time, float(best.contraction_cost()) / self.rate):
                break
            opt.max_repeats = min(2, self.max_repeats - done)
            tree = opt.search(inputs, output, sizes)
            done += opt.max_repeats
            cost = _cost(tree, self.minimize)
            if cost < best_cost:
                best, best_cost = tree, cost
        return list(best.get_ssa_path())


def _cost(tree, minimize: str) -> float:
    if minimize.startswith("combo"):
        return float(tree.combo_cost())
    if minimize == "size":
        return float(tree.max_size())
    if minimize == "write":
        return float(tree.total_write())
    return float(tree.contraction_cost())


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def optimizer_key(optimizer):
    """A hashable, repeatable description of ``optimizer`` (None if it has none)."""
    if optimizer is None:
        return ("auto", AutoPlanner())
    if isinstance(optimizer, str):
        return ("auto", AutoPlanner()) if optimizer == "auto" else ("preset", optimizer)
    if isinstance(optimizer, AutoPlanner):
        return ("auto", optimizer)
    return None


# ----------------------------------------------------------------------------- simplification


def simplify(inputs, output, sizes):
    """Contract tensors into neighbours while the result is no larger than either input.

    Returns ``(ssa_path, remaining)``: the SSA contractions done (in the numbering
    of the full network) and the ids of the tensors left, with ``terms`` their
    index sets. Exact: it only chooses an order for part of the contraction.
    """
    n = len(inputs)
    terms = {i: frozenset(t) for i, t in enumerate(inputs)}
    where = defaultdict(set)
    for i, t in terms.items():
        for ix in t:
            where[ix].add(i)
    out = set(output)

    def size(t):
        return math.prod(sizes[ix] for ix in t)

    def merged(a, b):
        ta, tb = terms[a], terms[b]
        keep = []
        for ix in ta | tb:
            others = len(where[ix]) - (ix in ta) - (ix in tb)
            if others > 0 or ix in out:
                keep.append(ix)
        return frozenset(keep)

    heap = [(size(t), i) for i, t in terms.items()]
    heapq.heapify(heap)
    path = []
    nxt = n
    while heap:
        _, i = heapq.heappop(heap)
        if i not in terms:
            continue
        si = size(terms[i])
        best = None
        for j in {j for ix in terms[i] for j in where[ix]} - {i}:
            m = merged(i, j)
            sm, sj = size(m), size(terms[j])
            if sm <= max(si, sj) and (best is None or (sm, sj) < best[:2]):
                best = (sm, sj, j, m)
        if best is None:
            continue
        j, m = best[2], best[3]
        for r in (i, j):
            for ix in terms.pop(r):
                where[ix].discard(r)
        terms[nxt] = m
        for ix in m:
            where[ix].add(nxt)
        path.append((i, j))
        heapq.heappush(heap, (best[0], nxt))
        nxt += 1
    return path, terms


def search_path(inputs, output, sizes, optimizer) -> list:
    """An SSA contraction path for the full network: simplification, then ``optimizer``
    on what is left (see the module docstring)."""
    n = len(inputs)
    path, terms = simplify(inputs, output, sizes)
    ids = sorted(terms)
    if len(ids) <= 1:
        return path
    reduced = [tuple(sorted(terms[i])) for i in ids]
    sub = _search_reduced(reduced, tuple(output), sizes, optimizer)
    mapping = list(ids)
    nxt = n + len(path)
    for i, j in sub:
        path.append((mapping[i], mapping[j]))
        mapping.append(nxt)
        nxt += 1
    return path


def _search_reduced(inputs, output, sizes, optimizer) -> list:
    import cotengra as ctg

    if optimizer is None or optimizer == "auto":
        optimizer = AutoPlanner()
    if isinstance(optimizer, AutoPlanner):
        return optimizer.search(inputs, output, sizes)
    opt = optimizer
    if callable(opt) and not isinstance(opt, ctg.PathOptimizer | ctg.ReusableHyperOptimizer):
        opt = opt()  # a factory: one fresh (single-use) optimizer per search
    if isinstance(opt, ctg.HyperOptimizer | ctg.ReusableHyperOptimizer):
        tree = opt.search(inputs, output, sizes)
    else:
        tree = ctg.array_contract_tree(inputs, output, sizes, optimize=opt)
    return list(tree.get_ssa_path())


# ----------------------------------------------------------------------------- disk cache


class PathCache:
    """Paths (and sliced indices) on disk under ``directory``, keyed by a digest of the
    network, the optimizer and the memory limit; written atomically."""

    def __init__(self, directory):
        self.directory = Path(directory).expanduser()

    @classmethod
    def from_setting(cls, cache_dir):
        d = cache_dir if cache_dir is not None else os.environ.get("QTN_PLAN_CACHE") or None
        return None if d is None else cls(d)

    @staticmethod
    def key(inputs, output, sizes, opt_key, extra) -> str:
        blob = json.dumps(
            [[list(t) for t in inputs], list(output), sorted(sizes.items()), repr(opt_key),
             repr(extra)], ensure_ascii=True,
        )  # fmt: skip
        return hashlib.sha1(blob.encode()).hexdigest()

    def get(self, key: str):
        f = self.directory / f"qtn-path-{key}.json"
        try:
            rec = json.loads(f.read_text())
            return [tuple(p) for p in rec["path"]], tuple(rec["sliced"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, path, sliced) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        f = self.directory / f"qtn-path-{key}.json"
        tmp = f.with_name(f.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"path": [list(p) for p in path], "sliced": list(sliced)}))
        os.replace(tmp, f)
