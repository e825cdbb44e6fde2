"""The memory bound of a simulation: limits, their parsing, and the checks against them.

``max_memory`` bounds the arrays of one call: the folded constants of the
contraction, its live intermediates at every step (with one transient copy
of each step's operands, for the transposes XLA may insert), the batch (the
intermediates that depend on per-sample inputs, times the batch or chunk
size), and the result handed back. Estimates come from the contraction
program itself (:meth:`qtn.simulation.program.Program.peak_bytes`), before
anything is allocated.

Not counted: a fixed overhead of :data:`FIXED_OVERHEAD` bytes at most, measured
by the test suite: the buffers XLA's compiled executable and its allocator
keep, the inputs (params, data) and the per-sample gate tensors. The Python
interpreter, numpy, JAX and XLA themselves, and the compilation of a new
expression, come on top, as for any program.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np

from qtn.errors import ContractionTooLargeError

__all__ = [
    "parse_bytes",
    "default_memory_limit",
    "format_bytes",
    "too_large",
    "FIXED_OVERHEAD",
]

#: bytes of a call's memory that max_memory does not count (see the module docstring)
FIXED_OVERHEAD = 256 * 2**20

_UNITS = {"": 1, "B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip
_DEFAULT: dict = {}


def parse_bytes(value, name: str = "max_memory") -> int:
    """Bytes from a positive number or a string such as ``"2GB"``, ``"512 MiB"``, ``"1e9"``.

    KB, MB, GB and TB are powers of 1024, like KiB, MiB, GiB and TiB. Zero, a
    negative or non-finite value, an unknown unit or anything else raises
    ``ValueError`` naming ``name``.
    """
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        unit = m.group(2).upper() if m else None
        if m is None or unit not in _UNITS:
            raise ValueError(
                f"{name} must be a number of bytes or a string like '2GB' (units B, KB, MB, "
                f"GB, TB, KiB, MiB, GiB, TiB), got {value!r}"
            )
        try:
            number = float(m.group(1))
        except ValueError:
            raise ValueError(f"{name}: cannot read a number from {value!r}") from None
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
        out = int(number * _UNITS[unit])
    elif (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive number of bytes or a string like '2GB', "
                         f"got {value!r}")  # fmt: skip
    else:
        out = int(value)
    if out < 1:
        raise ValueError(f"{name} must be at least 1 byte, got {value!r}")
    return out


def default_memory_limit(interface: str) -> int:
    """Half the accelerator's memory under JAX on a GPU, else half the physical RAM.

    Computed once per process and interface, so plans keyed by it stay reusable.
    """
    if interface in _DEFAULT:
        return _DEFAULT[interface]
    limit = None
    if interface == "jax":
        import jax

        dev = jax.devices()[0]
        if dev.platform != "cpu":
            stats = dev.memory_stats() or {}
            if "bytes_limit" in stats:
                limit = int(stats["bytes_limit"]) // 2
    if limit is None:
        try:
            limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
        except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
            limit = 8 * 2**30
    _DEFAULT[interface] = int(limit)
    return _DEFAULT[interface]


def format_bytes(n: float) -> str:
    """``n`` bytes in a readable binary unit (``'1.5 GiB'``)."""
    n = float(n)
    for unit, f in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= f:
            return f"{n / f:.4g} {unit}"
    return f"{n:.0f} B"


def too_large(what: str, estimate: float, limit: int, hint: str = "") -> ContractionTooLargeError:
    """The error for ``what`` needing ``estimate`` bytes under ``max_memory = limit``."""
    msg = (
        f"{what} needs an estimated {format_bytes(estimate)} ({int(estimate):,} bytes), more "
        f"than max_memory = {format_bytes(limit)} ({int(limit):,} bytes)"
    )
    return ContractionTooLargeError(msg + (f"; {hint}" if hint else ""))
