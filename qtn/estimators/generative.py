"""What qtn's generative estimators share: discrete data, fitting, likelihoods, sample checks.

:class:`TNGenerative` sits on :class:`qtn.estimators.base.TNEstimator` (so it
shares its chunked inference, training loop, progress bars and versioned,
field-checked files) and adds what a density model over discrete data needs:

- validation of X: integer categories in ``range(n_categories)``, non-empty,
  with errors naming the argument, the offending value and where it is;
- the one-hot feature step (``one_hot`` feature map of dimension ``n_categories``);
- ``fit(X)`` on the generative loss (``unsupervised_nll``), with an optional
  ``eval_set`` or early-stopping split monitored by its NLL;
- ``log_prob`` (per sample), ``score`` (mean log-likelihood, as scikit-learn's
  density estimators) and ``nll`` (its negative);
- argument checks for sampling (``n_samples``, ``given``, ``missing``).

Subclasses implement the TNEstimator hooks (``_init_params``, ``_forward``,
``_params_template``) and ``_finalize(params)`` (a canonical gauge after training).
"""

from __future__ import annotations

import numbers

import jax
import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from qtn._jax import check_dtype, x64_if
from qtn.estimators._dask import is_dask_array
from qtn.estimators.base import TNEstimator
from qtn.features import get_feature_map
from qtn.training import FitConfig

__all__ = ["TNGenerative", "check_n_samples"]


def check_n_samples(n_samples) -> int:
    """``n_samples`` as an int >= 1, or a ValueError naming it."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    return int(n_samples)


class TNGenerative(TNEstimator):
    """Base of qtn's generative estimators over discrete data (see the module docstring)."""

    _file_kind = "qtn.TNGenerative"

    # -- hooks
    def _finalize(self, params):
        """Bring trained parameters into their canonical gauge (subclass hook)."""
        return params

    # -- parameters
    def _fmap(self):
        return get_feature_map("one_hot", dim=self._n_categories())

    def _n_categories(self) -> int:
        d = self.n_categories
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 2:
            raise ValueError(f"n_categories must be an integer >= 2, got {d!r}")
        return int(d)

    def _validate_params(self) -> FitConfig:
        config = super()._validate_params()
        self._n_categories()
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        return config

    # -- data
    def _check_X(self, X, *, reset: bool = False):
        try:
            return validate_data(self, X, reset=reset, dtype="numeric")
        except ValueError as exc:
            msg = str(exc)
            raise ValueError(msg if msg.startswith("X") else f"X: {msg}") from None

    def _discrete(self, X, argname: str = "X", *, allow_free: bool = False) -> np.ndarray:
        """Integer categories (int64) in range(d), or -1 where ``allow_free``; clear errors."""
        d = self._n_categories()
        arr = np.asarray(X)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{argname} must be numeric, got dtype {arr.dtype}")
        if arr.size and not np.all(np.isfinite(arr)):
            raise ValueError(f"{argname} contains NaN or inf; it must hold integer categories")
        lo = -1 if allow_free else 0
        bad = (arr != np.round(arr)) | (arr < lo) | (arr > d - 1)
        if np.any(bad):
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            what = "-1 (free) or integers" if allow_free else "integer categories"
            raise ValueError(
                f"{argname} must hold {what} in range({d}) (n_categories={d}); got "
                f"{arr[pos]!r} at index {pos}"
            )
        return arr.astype(np.int64)

    def _transform(self, X, argname: str = "X"):
        return self._discrete(X, argname)

    # -- training
    def fit(self, X, y=None, *, eval_set=None):
        """Fit the model to the discrete samples X (n_samples, n_features).

        Parameters
        ----------
        X
            Integer categories in ``range(n_categories)``.
        y
            Ignored (scikit-learn convention).
        eval_set
            Optional held-out samples; their NLL is recorded after every epoch
            (``history_[i]["val_loss"]``).

        Returns
        -------
        self
        """
        self._validate_params()
        X = self._transform(self._check_X(X, reset=True))
        config = self._validate_params()  # again: the method may depend on n_features_in_
        dtype = check_dtype(self.dtype)
        seed = self._seed()
        Xtr, validation = X, None
        if self.early_stopping:
            rng = np.random.default_rng(seed)
            perm = rng.permutation(len(X))
            n_val = max(1, int(round(self.validation_fraction * len(X))))
            if n_val >= len(X):
                raise ValueError(
                    f"early_stopping needs at least 2 samples in X to hold out a validation "
                    f"set, got {len(X)}"
                )
            Xtr = X[perm[n_val:]]
            validation = (self._features(X[perm[:n_val]], dtype), None)
        elif eval_set is not None:
            Xv = self._transform(self._check_X(eval_set), "eval_set")
            validation = (self._features(Xv, dtype), None)
        with x64_if(dtype):
            params = self._init_params(
                jax.random.key(seed), X.shape[1], None, self._n_categories(), dtype
            )
        params, self.history_, self.fit_info_ = self._train(
            params, self._features(Xtr, dtype), None, config, validation=validation, seed=seed
        )
        with x64_if(dtype):
            self.params_ = jax.tree_util.tree_map(np.asarray, self._finalize(params))
        self.n_iter_ = len(self.history_)
        return self

    # -- likelihoods
    def log_prob(self, X) -> np.ndarray:
        """log p(x) for every row of X, exact (float64 array, -inf where p(x) = 0).

        X may be a ``dask.array.Array``: the result is then a Dask array computed chunk by
        chunk of rows (on a ``distributed`` cluster if a Client is active).
        """
        if is_dask_array(X):
            return self._dask("log_prob", X, None, np.float64)
        _, logn = self._outputs(X)
        return 2.0 * np.asarray(logn, dtype=np.float64)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood of X (higher is better), as scikit-learn's density estimators."""
        return float(np.mean(self.log_prob(X)))

    def nll(self, X) -> float:
        """Mean negative log-likelihood of X (nats per sample): ``-score(X)``."""
        return -self.score(X)

    # -- sampling arguments
    def _given(self, given, n_samples: int | None) -> np.ndarray:
        """``given`` as (n, n_features) with -1 for free sites; n from n_samples or given."""
        check_is_fitted(self)
        g = self._discrete(given, "given", allow_free=True)
        nf = self.n_features_in_
        if g.ndim == 1:
            g = g[None]
            if n_samples is not None:
                g = np.repeat(g, n_samples, axis=0)
        if g.ndim != 2 or g.shape[1] != nf:
            raise ValueError(
                f"given must have shape ({nf},) or (n_samples, {nf}), got {np.shape(given)}"
            )
        if n_samples is not None and len(g) != n_samples:
            raise ValueError(f"given has {len(g)} rows but n_samples is {n_samples}")
        if len(g) == 0:
            raise ValueError("given has no rows")
        return g

    def _missing_mask(self, missing, shape) -> np.ndarray:
        """A boolean mask of ``shape`` from a mask (row or full) or a list of site indices."""
        nf = self.n_features_in_
        m = np.asarray(missing)
        if m.dtype == bool:
            if m.shape not in ((nf,), shape):
                raise ValueError(
                    f"missing must be a boolean mask of shape ({nf},) or {shape}, or site "
                    f"indices; got a mask of shape {m.shape}"
                )
            return np.broadcast_to(m, shape)
        if m.size and (not np.issubdtype(m.dtype, np.integer) or m.ndim != 1):
            raise ValueError(
                f"missing must be a boolean mask or a 1D list of site indices, got {missing!r}"
            )
        if m.size and (m.min() < 0 or m.max() >= nf):
            bad = int(m[(m < 0) | (m >= nf)][0])
            raise ValueError(
                f"missing holds site {bad}, outside the model's {nf} sites [0, {nf - 1}]"
            )
        mask = np.zeros(shape, bool)
        mask[:, m.astype(np.int64)] = True
        return mask

    def _check_sites(self, sites) -> np.ndarray:
        nf = self.n_features_in_
        s = np.asarray(sites)
        if s.ndim != 1 or s.size == 0 or not np.issubdtype(s.dtype, np.integer):
            raise ValueError(f"sites must be a non-empty 1D list of site indices, got {sites!r}")
        if s.min() < 0 or s.max() >= nf:
            bad = int(s[(s < 0) | (s >= nf)][0])
            raise ValueError(f"sites holds {bad}, outside the model's {nf} sites [0, {nf - 1}]")
        if len(np.unique(s)) != len(s):
            raise ValueError(f"sites must be distinct, got {s.tolist()}")
        return s.astype(np.int64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.requires_fit = True
        return tags
