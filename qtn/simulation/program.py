"""Contraction programs: a contraction path turned into straight-line pairwise contractions.

A :class:`Program` is what the engine runs for one planned quantity. It is
built from the network (index names per tensor, output indices, sizes), an
SSA contraction path and the sliced indices, and holds

- the *constants*: every contraction whose operands are all constant is done
  once, at build time, in numpy (constant folding), and the folded arrays are
  passed to the compiled function as arguments. They are never baked into the
  compiled code, so XLA neither copies them into the executable nor spends
  compile time folding them (JAX otherwise warns of gigabytes of "captured
  constants");
- the *steps*: one ``dot_general`` (contracting and batch axes, no transposes)
  per remaining pairwise contraction, in path order;
- a *memory model*: the bytes live at every step, split into what is shared by
  a batch (constants, tensors that depend on nothing batched) and what grows
  with it, so the engine can bound a call's peak memory before running it
  (:meth:`Program.peak_bytes`, :meth:`Program.max_batch`).

Sliced indices (cotengra's slicing, chosen when the unsliced contraction does
not fit the memory limit) are fixed to one value per slice; the slices are
summed, by a ``lax.scan`` under JAX (compile time and memory do not grow with
the number of slices) or a Python loop under numpy.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Program", "build_program", "TRANSIENT"]

#: transient copies assumed per step (operand transposes XLA may insert): each step
#: counts its output plus this many times the size of its two operands
TRANSIENT = 1.0


@dataclass
class Step:
    a: int
    b: int
    out: int
    contract: tuple  # ((axes of a), (axes of b))
    batch: tuple  # ((axes of a), (axes of b))


@dataclass
class Leaf:
    """How a network input becomes a register: its sliced axes, then a single-term einsum."""

    register: int
    source: tuple  # ("var", k) or ("const", k)
    sliced_axes: tuple  # ((axis, index name), ...) in decreasing axis order
    prep: str | None  # einsum equation (letters) after slicing, or None


@dataclass
class Program:
    """Straight-line contraction of one network (see the module docstring).

    Attributes
    ----------
    consts
        The folded constant arrays, passed as arguments (``const_bytes`` in all).
    n_vars
        The number of variable inputs (the network's slots, in position order).
    output_shape
        Shape of the result.
    sliced
        ``((index, dimension), ...)``: the sliced indices; ``n_slices`` their product.
    """

    consts: list
    n_vars: int
    leaves: list
    steps: list
    result: int
    perm: tuple
    output_shape: tuple
    sliced: tuple
    itemsize: int
    fold_bytes: int = 0
    _mem: dict = field(default_factory=dict, repr=False)
    _sizes: dict = field(default_factory=dict, repr=False)
    _arg_bytes: int = 0
    _fold: tuple = field(default=(), repr=False)

    @property
    def n_slices(self) -> int:
        return int(np.prod([d for _, d in self.sliced])) if self.sliced else 1

    @property
    def const_bytes(self) -> int:
        """Bytes of the constant arguments (known before they are computed)."""
        return int(self._arg_bytes)

    def fold(self, consts: dict) -> None:
        """Compute the constant arguments from the network's constants (``consts`` by
        input position), contracting every all-constant subtree in numpy."""
        fold_steps, input_prep, const_spec, cdt = self._fold
        values = {}
        for p, prep in input_prep.items():
            arr = np.asarray(consts[p], dtype=cdt)
            values[p] = np.einsum(prep, arr) if prep else arr
        for st in fold_steps:
            values[st.out] = _dot_general(values.pop(st.a), values.pop(st.b), st.contract,
                                          st.batch, np)  # fmt: skip
        self.consts = [
            values[r] if kind == "value" else np.asarray(consts[r], dtype=cdt)
            for kind, r in const_spec
        ]

    @property
    def output_bytes(self) -> int:
        return int(np.prod(self.output_shape)) * self.itemsize

    # ------------------------------------------------------------------ execution

    def __call__(self, consts, variables, xp=np):
        """The contraction's value from the constants and the variable arrays."""
        if not self.sliced:
            return self._run(consts, variables, xp, None)
        if xp is np:
            total = None
            for s in range(self.n_slices):
                part = self._run(consts, variables, np, self._slice_values(s, np))
                total = part if total is None else total + part
            return total
        import jax
        import jax.numpy as jnp

        def body(acc, s):
            return acc + self._run(consts, variables, jnp, self._slice_values(s, jnp)), None

        dtype = jnp.result_type(*consts, *variables) if (consts or variables) else jnp.complex64
        zero = jnp.zeros(self.output_shape, dtype)
        return jax.lax.scan(body, zero, jnp.arange(self.n_slices))[0]

    def slice_sum(self, consts, variables, xp=np, start=0, count=None):
        """The sum of slices ``start, ..., start + count - 1`` (default: to the last one).

        A slice range is one worker's share of a sliced contraction: the partial sums
        of disjoint ranges add up to :meth:`__call__`. Slice numbers at or past
        :attr:`n_slices` contribute exactly zero, so equal ranges may overrun the end
        (the padding of the last device or task). Under numpy ``start`` and ``count``
        are integers; under JAX ``start`` may be traced (a device's or a task's
        offset: one compiled program for every range) while ``count`` stays a static
        integer. Differentiable under JAX.

        Examples
        --------
        With ``prog.n_slices == 8``, two workers' halves give the whole contraction::

            first = prog.slice_sum(consts, variables, np, 0, 4)
            first + prog.slice_sum(consts, variables, np, 4, 4)  # == prog(consts, variables)
        """
        n = self.n_slices
        if count is None:
            count = n - int(start)
        count = int(count)
        if count < 1:
            raise ValueError(f"count must be a positive number of slices, got {count}")
        sliced = bool(self.sliced)
        if xp is np:
            total = None
            for s in range(int(start), min(int(start) + count, n)):
                part = self._run(consts, variables, np, self._slice_values(s, np) if sliced
                                 else None)  # fmt: skip
                total = part if total is None else total + part
            if total is None:  # the whole range lies past the last slice
                dtype = np.result_type(*consts, *variables) if (consts or variables) else None
                total = np.zeros(self.output_shape, dtype or np.complex64)
            return total
        import jax
        import jax.numpy as jnp

        exact = isinstance(start, int | np.integer) and int(start) + count <= n

        def part(s):
            if exact:
                values = self._slice_values(s, jnp) if sliced else None
                return self._run(consts, variables, jnp, values)
            valid = s < n
            s = jnp.where(valid, s, 0)
            values = self._slice_values(s, jnp) if sliced else None
            return jnp.where(valid, self._run(consts, variables, jnp, values), 0)

        # the first slice starts the sum (no zero carry): inside jax.shard_map the carry
        # must vary over the mesh axis like the per-device slices it accumulates
        acc = part(start)
        if count == 1:
            return acc

        def body(acc, i):
            return acc + part(start + i), None

        return jax.lax.scan(body, acc, jnp.arange(1, count))[0]

    def _slice_values(self, s, xp):
        values, rest = {}, s
        for ix, d in reversed(self.sliced):
            values[ix], rest = rest % d, rest // d
        return values

    def _run(self, consts, variables, xp, slice_values):
        regs = {}
        for leaf in self.leaves:
            kind, k = leaf.source
            arr = variables[k] if kind == "var" else consts[k]
            if slice_values is not None:
                for axis, ix in leaf.sliced_axes:
                    arr = _take(arr, slice_values[ix], axis, xp)
            if leaf.prep is not None:
                arr = xp.einsum(leaf.prep, arr)
            regs[leaf.register] = arr
        for st in self.steps:
            regs[st.out] = _dot_general(regs.pop(st.a), regs.pop(st.b), st.contract, st.batch, xp)
        out = regs[self.result]
        return xp.transpose(out, self.perm) if self.perm else out

    # ------------------------------------------------------------------ memory model

    def _profile(self, batched: tuple):
        """Per step: (bytes shared by a batch, bytes per batch member), constants excluded.

        A step holds every live tensor, its output, and ``TRANSIENT`` times its two
        operands (copies XLA may make to bring contracted axes together). Variables
        live from the start until consumed; a constant costs nothing here (it is in
        :attr:`const_bytes`) unless slicing or a single-term reduction copies it.
        """
        key = tuple(batched)
        if key in self._mem:
            return self._mem[key]
        live, flag = {}, {}
        for leaf in self.leaves:
            r = leaf.register
            kind, k = leaf.source
            flag[r] = bool(batched[k]) if kind == "var" else False
            copied = kind == "var" or leaf.sliced_axes or leaf.prep
            live[r] = self._sizes[r] if copied else 0
        tot = {True: 0.0, False: 0.0}
        for r, s in live.items():
            tot[flag[r]] += s
        us, bs = [tot[False]], [tot[True]]
        for st in self.steps:
            f_out = flag[st.a] or flag[st.b]
            extra = {True: 0.0, False: 0.0}
            extra[flag[st.a]] += TRANSIENT * self._sizes[st.a]
            extra[flag[st.b]] += TRANSIENT * self._sizes[st.b]
            extra[f_out] += self._sizes[st.out]
            us.append(tot[False] + extra[False])
            bs.append(tot[True] + extra[True])
            for r in (st.a, st.b):
                tot[flag[r]] -= live.pop(r)
            live[st.out], flag[st.out] = self._sizes[st.out], f_out
            tot[f_out] += live[st.out]
        n_out = int(np.prod(self.output_shape))
        f_res = flag[self.result]
        # the final transpose, and under slicing the running sum and its update
        copies = (1 if self.perm else 0) + (2 if self.sliced else 0)
        if copies:
            us.append(tot[False] + (0 if f_res else copies * n_out))
            bs.append(tot[True] + (copies * n_out if f_res else 0))
        prof = (np.asarray(us) * self.itemsize, np.asarray(bs) * self.itemsize)
        self._mem[key] = prof
        return prof

    def peak_bytes(self, batch: int = 1, batched: tuple | None = None) -> int:
        """Estimated peak bytes of one call over ``batch`` inputs: constants, live
        intermediates (with transient copies) and the result, ``batched`` flagging which
        variables carry the batch (default: every variable)."""
        flags = tuple(batched) if batched is not None else (True,) * self.n_vars
        us, bs = self._profile(flags)
        inter = float(np.max(us + batch * bs)) if len(us) else 0.0
        return int(self.const_bytes + inter)

    def max_batch(self, budget: int, batched: tuple) -> int:
        """The largest batch whose :meth:`peak_bytes` fits ``budget`` (0 if none)."""
        us, bs = self._profile(tuple(batched))
        room = budget - self.const_bytes
        if np.any(us > room):
            return 0
        grows = bs > 0
        if not np.any(grows):
            return 2**62
        return int(max(0, np.min(np.floor((room - us[grows]) / bs[grows]))))


def _take(arr, value, axis, xp):
    if xp is np:
        return np.take(arr, value, axis=axis)
    import jax

    return jax.lax.dynamic_index_in_dim(arr, value, axis, keepdims=False)


def _dot_general(a, b, contract, batch, xp):
    """Pairwise contraction; result axes: batch axes, then a's free axes, then b's."""
    if xp is not np:
        import jax

        return jax.lax.dot_general(a, b, (contract, batch), precision=jax.lax.Precision.HIGHEST)
    (ca, cb), (ba, bb) = contract, batch
    fa = [i for i in range(a.ndim) if i not in ca and i not in ba]
    fb = [i for i in range(b.ndim) if i not in cb and i not in bb]
    sa, sb = a.shape, b.shape
    nb = int(np.prod([sa[i] for i in ba]))
    nc = int(np.prod([sa[i] for i in ca]))
    am = np.transpose(a, (*ba, *fa, *ca)).reshape(nb, -1, nc)
    bm = np.transpose(b, (*bb, *cb, *fb)).reshape(nb, nc, -1)
    out = np.matmul(am, bm)
    return out.reshape(tuple([sa[i] for i in ba] + [sa[i] for i in fa] + [sb[i] for i in fb]))


# ----------------------------------------------------------------------------- building


def build_program(inputs, output, sizes, ssa_path, *, consts: dict, sliced=(), dtype="complex64",
                  fold: bool = True):  # fmt: skip
    """A :class:`Program` for ``inputs -> output`` along ``ssa_path``.

    ``consts`` maps input positions to constant arrays; every other input is a
    variable, numbered in position order. ``sliced`` lists the sliced indices.
    With ``fold=False`` only the layout and the memory model are built (no array
    is computed): :meth:`Program.fold` computes the constants later.
    """
    n = len(inputs)
    sliced = tuple(sliced)
    sliced_set = set(sliced)
    cdt = np.dtype(dtype)
    out_set = set(output)
    # occurrences of every (unsliced) index across the tensors, plus one for the output
    count: dict = {}
    for term in inputs:
        for ix in set(term):
            if ix not in sliced_set:
                count[ix] = count.get(ix, 0) + 1
    for ix in out_set:
        count[ix] = count.get(ix, 0) + 1

    inds: dict = {}  # register -> index tuple (axes order)
    foldable: set = set()  # registers whose value is known at plan time
    input_prep: dict = {}  # foldable input position -> its single-term equation
    leaves, const_spec = [], []  # const_spec: what each constant argument is
    var_positions = [p for p in range(n) if p not in consts]
    var_number = {p: k for k, p in enumerate(var_positions)}

    def as_argument(r):
        foldable.discard(r)
        const_spec.append(("value", r))
        leaves.append(Leaf(r, ("const", len(const_spec) - 1), (), None))

    for p, term in enumerate(inputs):
        term = tuple(term)
        sl_axes = tuple((ax, ix) for ax, ix in reversed(list(enumerate(term))) if ix in sliced_set)
        rest = tuple(ix for ix in term if ix not in sliced_set)
        # keep each index once, and only if it is shared with another tensor or the output
        kept = []
        for ix in rest:
            if ix not in kept and (count[ix] - 1 > 0 or ix in out_set):
                kept.append(ix)
        kept = tuple(kept)
        prep = None if kept == rest else _einsum_eq([rest], kept)
        for ix in set(rest) - set(kept):  # summed inside this tensor: it leaves the network
            count[ix] -= 1
        inds[p] = kept
        if p in consts and not sl_axes:
            foldable.add(p)
            input_prep[p] = prep
        elif p in consts:
            const_spec.append(("input", p))
            leaves.append(Leaf(p, ("const", len(const_spec) - 1), sl_axes, prep))
        else:
            leaves.append(Leaf(p, ("var", var_number[p]), sl_axes, prep))

    steps, fold_steps = [], []
    nxt = n
    for i, j in ssa_path:
        a, b = inds[i], inds[j]
        sa, sb = set(a), set(b)
        for ix in sa | sb:
            count[ix] -= (ix in sa) + (ix in sb)
        shared = sa & sb
        batch_ix = [ix for ix in a if ix in shared and count[ix] > 0]
        contr_ix = [ix for ix in a if ix in shared and count[ix] == 0]
        new = (
            *batch_ix,
            *[ix for ix in a if ix not in shared],
            *[ix for ix in b if ix not in shared],
        )
        for ix in new:
            count[ix] += 1
        contract = (tuple(a.index(ix) for ix in contr_ix), tuple(b.index(ix) for ix in contr_ix))
        batch = (tuple(a.index(ix) for ix in batch_ix), tuple(b.index(ix) for ix in batch_ix))
        inds[nxt] = new
        step = Step(i, j, nxt, contract, batch)
        if i in foldable and j in foldable:  # constant folding (done by Program.fold)
            foldable -= {i, j}
            foldable.add(nxt)
            fold_steps.append(step)
        else:
            for r in (i, j):  # a constant feeding a runtime step becomes an argument
                if r in foldable:
                    as_argument(r)
            steps.append(step)
        nxt += 1
    if not ssa_path and n != 1:
        raise ValueError("the contraction path does not contract every tensor")
    result = nxt - 1 if ssa_path else 0
    if result in foldable:  # everything constant: one folded array
        as_argument(result)
    final = inds[result]
    if set(final) != set(output) or len(final) != len(output):
        raise AssertionError(f"contraction result has indices {final}, expected {output}")
    perm = tuple(final.index(ix) for ix in output)
    if perm == tuple(range(len(perm))):
        perm = ()
    reg_sizes = {r: math.prod(sizes[ix] for ix in t) for r, t in inds.items()}
    arg_sizes = [
        math.prod(sizes[ix] for ix in inputs[r]) if kind == "input" else reg_sizes[r]
        for kind, r in const_spec
    ]
    prog = Program(
        consts=None, n_vars=len(var_positions), leaves=leaves, steps=steps,
        result=result, perm=perm, output_shape=tuple(sizes[ix] for ix in output),
        sliced=tuple((ix, sizes[ix]) for ix in sliced), itemsize=cdt.itemsize,
    )  # fmt: skip
    prog._sizes = reg_sizes
    prog._arg_bytes = sum(arg_sizes) * cdt.itemsize
    prog._fold = (fold_steps, input_prep, const_spec, cdt)
    prog.fold_bytes = _fold_peak(fold_steps, input_prep, reg_sizes) * cdt.itemsize
    if fold:
        prog.fold(consts)
    return prog


def _fold_peak(fold_steps, input_prep, sizes) -> float:
    """Peak elements live while folding constants (the folded inputs, intermediates,
    transient copies)."""
    live = {p: sizes[p] for p in input_prep}
    total = float(sum(live.values()))
    peak = total
    for st in fold_steps:
        peak = max(peak, total + sizes[st.out] + TRANSIENT * (sizes[st.a] + sizes[st.b]))
        total -= live.pop(st.a) + live.pop(st.b)
        live[st.out] = sizes[st.out]
        total += sizes[st.out]
    return peak


def _einsum_eq(terms, out) -> str:
    letters = {}
    pool = iter(string.ascii_letters)
    for t in (*terms, out):
        for ix in t:
            if ix not in letters:
                letters[ix] = next(pool)
    lhs = ",".join("".join(letters[ix] for ix in t) for t in terms)
    return f"{lhs}->{''.join(letters[ix] for ix in out)}"
