"""Inference on Dask arrays: an estimator's method mapped over the row chunks of X.

``predict``, ``predict_proba``, ``predict_log_proba``, ``decision_function`` and
``log_prob`` accept a ``dask.array.Array``: X is rechunked to one chunk along the
feature axis, and each row chunk is computed by the fitted estimator itself (its
ordinary numpy method) wherever Dask runs the task: in threads with the default
scheduler, or on the workers of a ``distributed.Client``. The result is a lazy Dask
array with X's row chunks. The estimator enters the graph once, as one Dask key
(``dask.delayed``), so a worker receives it once rather than with every chunk.

Dask is imported only when X is a Dask array (qtn itself does not need it): if
``dask.array`` has not been imported, X cannot be one.
"""

from __future__ import annotations

import math

import numpy as np

from qtn._checks import is_dask_array

__all__ = ["is_dask_array", "map_row_chunks"]


def _call(block, estimator, method: str, kwargs: dict):
    return getattr(estimator, method)(np.asarray(block), **kwargs)


def map_row_chunks(estimator, method: str, X, *, n_columns: int | None, dtype, **kwargs):
    """``estimator.method`` on every row chunk of the Dask array X, as a Dask array.

    Parameters
    ----------
    estimator
        A fitted qtn estimator (it must pickle, for a distributed cluster).
    method
        The name of the numpy method to run on each chunk (``"predict_proba"``, ...).
    X
        A 2-D ``dask.array.Array`` with ``n_features_in_`` columns.
    n_columns
        Columns of the output (``predict_proba``: the number of classes), or None for
        one value per row.
    dtype
        The output's dtype.
    **kwargs
        Passed on to the method (e.g. ``noise=`` of a circuit classifier).

    Returns
    -------
    dask.array.Array
        (n_rows,) or (n_rows, n_columns), chunked as X's rows; nothing is computed yet.
    """
    import dask

    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array (n_samples, n_features), got a dask array of shape {X.shape}"
        )
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is not None and not (isinstance(X.shape[1], float) and math.isnan(X.shape[1])):
        if X.shape[1] != n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
                f"{n_features} features as input."
            )
    X = X.rechunk({1: -1})
    est = dask.delayed(estimator, pure=False, traverse=False)
    dtype = np.dtype(dtype)
    if n_columns is None:
        return X.map_blocks(_call, est, method, kwargs, drop_axis=1, chunks=(X.chunks[0],),
                            dtype=dtype, meta=np.empty((0,), dtype))  # fmt: skip
    return X.map_blocks(_call, est, method, kwargs, chunks=(X.chunks[0], (int(n_columns),)),
                        dtype=dtype, meta=np.empty((0, 0), dtype))  # fmt: skip
