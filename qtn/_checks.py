"""Input checks shared by every layer: real arrays, and model sizes against memory.

Numpy only (no JAX import), so the circuit IR and the Qiskit bridge can use it.
Checks run once per call on host arrays, never inside jitted code.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from qtn.errors import ContractionTooLargeError

__all__ = ["real_array", "format_bytes", "memory_limit", "check_model_bytes", "is_dask_array"]


def is_dask_array(value) -> bool:
    """Whether ``value`` is a ``dask.array.Array``, without importing Dask (if
    ``dask.array`` was never imported, nothing can be one)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(value, da.Array)


def real_array(name: str, values, dtype=float, *, finite: bool = True) -> np.ndarray:
    """``values`` as a real numpy array of ``dtype``; a ValueError naming ``name`` otherwise.

    Strings, object arrays (None, mixed types) and complex values are refused, not
    converted (numpy would drop an imaginary part with only a warning, and its
    "could not convert string to float" does not say which argument); with
    ``finite`` (default), NaN and inf are refused too.
    """
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ValueError(f"{name} must be an array of real numbers ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        what = "strings" if arr.dtype.kind in "US" else f"dtype {arr.dtype}"
        raise ValueError(f"{name} must be real numbers, got {what}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real numbers, got complex values")
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr.astype(dtype, copy=False)


def format_bytes(n: float) -> str:
    """``n`` bytes in a readable binary unit (``'1.5 GiB'``)."""
    n = float(n)
    for unit, f in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= f:
            return f"{n / f:.4g} {unit}"
    return f"{n:.0f} B"


def memory_limit() -> tuple[int, str]:
    """(bytes, where) of the memory a model's arrays may take: the accelerator's memory
    when JAX (already imported) runs on one, else the physical RAM."""
    jax = sys.modules.get("jax")
    if jax is not None:
        try:
            dev = jax.devices()[0]
            if dev.platform != "cpu":
                stats = dev.memory_stats() or {}
                if "bytes_limit" in stats:
                    return int(stats["bytes_limit"]), f"{dev.platform.upper()} memory"
        except Exception:  # noqa: BLE001 - no backend: fall back to the RAM
            pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "physical memory"
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 2**63 - 1, "memory"


def check_model_bytes(what: str, n_bytes: float, hint: str = "") -> None:
    """Raise :class:`ContractionTooLargeError` when ``what`` (``n_bytes`` estimated) cannot fit
    the memory, before anything is allocated (instead of a MemoryError or XLA's
    RESOURCE_EXHAUSTED from deep inside)."""
    limit, where = memory_limit()
    if n_bytes > limit:
        raise ContractionTooLargeError(
            f"{what} needs an estimated {format_bytes(n_bytes)} ({int(n_bytes):,} bytes), "
            f"more than the {format_bytes(limit)} of {where}" + (f"; {hint}" if hint else "")
        )
