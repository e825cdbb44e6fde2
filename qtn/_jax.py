"""Small JAX helpers shared across qtn (dtype policy, local x64)."""

from __future__ import annotations

import contextlib

import numpy as np

_FLOAT_DTYPES = ("float32", "float64")


def check_dtype(dtype) -> str:
    """Validate a real dtype name; returns 'float32' or 'float64'."""
    name = np.dtype(dtype).name if dtype is not None else "float32"
    if name not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be one of {_FLOAT_DTYPES}, got {dtype!r}")
    return name


@contextlib.contextmanager
def x64_if(dtype: str):
    """JAX float64 on inside the block when ``dtype == 'float64'``, off otherwise; never global.

    Switching it off explicitly for float32 keeps complex64/float32 code paths
    exact even when a caller has enabled x64 globally.
    """
    import jax

    ctx = getattr(jax, "enable_x64", None)
    if ctx is None:  # older JAX
        from jax.experimental import enable_x64 as ctx
    with ctx(dtype == "float64"):
        yield
