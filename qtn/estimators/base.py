"""What every qtn estimator shares: validation, scaling, features, inference, output, files.

Subclasses (:class:`qtn.MPSClassifier`, and the TTN, Born-machine and
circuit models to come) declare their parameters in ``__init__`` (stored
as given, as scikit-learn requires) and implement three hooks:

- ``_init_params(key, n_features, n_outputs, phys_dim, dtype)``: initial params pytree;
- ``_forward``: the model's ``forward(params, phi) -> (fhat, log_norm)``;
- ``_params_template()``: a pytree of the params' structure with placeholder
  leaves, which :meth:`TNEstimator.load` fills from a file (``n_features_in_``
  is set before it is called, for structures that depend on it).

and may override ``_config_overrides()`` to map their own ``method``
vocabulary onto the training methods (and fix the loss), and ``_features``
to arrange feature vectors for their network (a TTN's leaf order).

The base provides validation of X and y, the range policy and scaling (at
fit: X outside the feature map's domain is min-max scaled with
``scaling="auto"``, refused with ``scaling=None``; at predict: values outside
the domain are clipped into it), the feature-map step, chunked inference
(the training package's evaluation loop), the classifier output rule with
temperature calibration, progress bars through ``verbose``, and
``save``/``load`` of any params pytree with a versioned schema that is checked
field by field on load.

Two scale-out options live here too. ``devices=`` (each estimator's constructor
parameter, validated through :class:`qtn.training.FitConfig`) splits gradient training
over a mesh of devices (:func:`qtn._devices.device_mesh`); it is neither saved nor
pickled when it holds device objects. The inference methods accept a Dask array and
return one, mapped over its row chunks (:mod:`qtn.estimators._dask`).
"""

from __future__ import annotations

import dataclasses
import numbers
import time

import jax
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from qtn._jax import check_dtype, x64_if
from qtn.estimators._dask import is_dask_array, map_row_chunks
from qtn.estimators._fitting import (
    check_two_classes,
    check_warm_start,
    check_weights,
    encode_labels,
    holdout_split,
)
from qtn.estimators._io import PersistenceMixin
from qtn.estimators.calibration import apply_temperature, fit_temperature
from qtn.features import get_feature_map
from qtn.training import FitConfig, apply, fit, get_loss

__all__ = [
    "TNEstimator",
    "TNClassifier",
    "output_probabilities",
    "OUTPUTS",
    "SCALINGS",
    "CALIBRATIONS",
]

OUTPUTS = ("auto", "born", "softmax")
SCALINGS = ("auto", "minmax", None)
CALIBRATIONS = ("temperature", None)
#: the calibration hold-out never exceeds this many samples (one scalar is fitted on it)
CALIBRATION_MAX_SAMPLES = 5000


def output_probabilities(fhat, rule: str, log_temp=0.0) -> np.ndarray:
    """Class probabilities from unit-norm amplitudes: ``"born"`` |f|^2, or ``"softmax"``
    of exp(log_temp) * f; rows sum to one."""
    fhat = np.asarray(fhat, dtype=np.float64)
    if rule == "born":
        p = fhat**2
    else:
        z = np.exp(float(log_temp)) * fhat
        p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


class TNEstimator(PersistenceMixin, BaseEstimator):
    """Base class of qtn's scikit-learn estimators (see the module docstring)."""

    # -- hooks
    _file_kind = "qtn.TNEstimator"
    #: subclasses whose ``init_std=None`` means a structure-dependent default set this
    _init_std_default = None

    def _init_params(self, key, n_features, n_outputs, phys_dim, dtype):  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _forward(params, phi):  # pragma: no cover
        raise NotImplementedError

    def _params_template(self):  # pragma: no cover
        raise NotImplementedError

    def _check_loaded(self, header: dict) -> None:
        """Subclass hook: consistency of a loaded model with its header (raise ValueError)."""

    # -- validation of the estimator's own parameters
    def _config_overrides(self) -> dict:
        """FitConfig fields the estimator sets itself (its method vocabulary, a fixed loss)."""
        return {}

    @staticmethod
    def _choose_method(method, methods: dict) -> str:
        """The training method an estimator's ``method`` names, with a clear error if unknown."""
        if not isinstance(method, str) or method not in methods:
            raise ValueError(f"unknown method {method!r}; valid methods: {list(methods)}")
        return methods[method]

    def _validate_params(self) -> FitConfig:
        """Validate the parameters; returns the :class:`FitConfig` they define."""
        names = set(FitConfig.field_names()) & set(self.get_params())
        try:
            kw = {k: getattr(self, k) for k in names}
            kw.update(self._config_overrides())
            config = FitConfig(**kw)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        scaling = getattr(self, "scaling", None)
        if scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {scaling!r}; valid values: {list(SCALINGS)}")
        v = self.init_std
        if v is None and self._init_std_default is not None:
            pass
        elif isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v < 0:
            raise ValueError(f"init_std must be a finite number >= 0, got {v!r}")
        check_dtype(self.dtype)
        self._fmap()
        return config

    def _fmap(self):
        kw = {} if self.feature_dim is None else {"dim": self.feature_dim}
        return get_feature_map(self.feature_map, **kw)

    def _seed(self) -> int:
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    # -- pickling: jax device objects belong to this process and do not pickle
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ gives __dict__
        if not _portable_devices(state.get("devices")):
            state["devices"] = None  # a Mesh or jax devices: the copy trains as devices=None
        return state

    # -- Dask arrays
    def _dask(self, method: str, X, n_columns, dtype, **kwargs):
        """``method`` mapped over the row chunks of the Dask array X (lazy Dask array)."""
        check_is_fitted(self)
        return map_row_chunks(self, method, X, n_columns=n_columns, dtype=dtype, **kwargs)

    # -- the feature step
    def _fit_scaling(self, X, sample_weight=None) -> None:
        """Decide the scaling at fit: ``scaler_`` is a fitted MinMaxScaler or None.

        Rows of zero weight take no part (as if removed), so weighting a row by 0 and
        dropping it give the same scaler."""
        self.scaler_ = None
        if sample_weight is not None:
            keep = np.asarray(sample_weight) > 0
            if keep.any() and not keep.all():
                X = X[keep]
        scaling = getattr(self, "scaling", None)
        if scaling == "minmax" or (scaling == "auto" and not self._in_domain(X)):
            self.scaler_ = MinMaxScaler(clip=True).fit(X)

    def _in_domain(self, X) -> bool:
        fm = self._fmap()
        return bool(X.size == 0 or (X.min() >= fm.low - 1e-6 and X.max() <= fm.high + 1e-6))

    def _transform(self, X, argname: str = "X", *, fitting: bool = False):
        """X scaled (``scaler_``) and brought into the feature map's domain.

        At fit (``fitting``) with ``scaling=None``, values outside the domain raise
        ``ValueError``; everywhere else they are clipped into it (after the scaler),
        so validation folds of a pipeline never break prediction.
        """
        if getattr(self, "scaler_", None) is not None:
            X = self.scaler_.transform(X)
        fm = self._fmap()
        if not self._in_domain(X):
            if fitting:
                raise ValueError(
                    f"{argname} has values in [{X.min():.4g}, {X.max():.4g}], outside the "
                    f"domain [{fm.low:g}, {fm.high:g}] of feature map {fm.name!r}; use "
                    f"{type(self).__name__}(scaling='auto') or scaling='minmax' to min-max "
                    "scale the training data, or scale X first (for example with "
                    "sklearn.preprocessing.MinMaxScaler(clip=True))"
                )
            X = np.clip(X, fm.low, fm.high)
        return fm.validate(X, argname)

    def _features(self, X, dtype) -> np.ndarray:
        return np.asarray(self._fmap()(np.asarray(X, dtype), validate=False), dtype)

    def _check_X(self, X, *, reset: bool = False):
        _refuse_text_or_complex(X)
        return validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])

    # -- inference
    def _outputs(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(fhat, log_norm) for every row of X, in padded chunks (one compile per size)."""
        check_is_fitted(self)
        X = self._transform(self._check_X(X))
        dtype = check_dtype(self.dtype)
        with x64_if(dtype):
            return apply(self._forward, self.params_, self._features(X, dtype))

    # -- training
    def _train(self, params, phi, y, config, *, validation=None, seed=0, sample_weight=None):
        dtype = check_dtype(self.dtype)
        with x64_if(dtype):
            params, history, info = fit(
                self._forward, params, phi, y, config, validation=validation, seed=seed,
                desc=type(self).__name__, sample_weight=sample_weight,
            )  # fmt: skip
            return jax.tree_util.tree_map(np.asarray, params), history, info


def _portable_devices(devices) -> bool:
    """Whether a ``devices`` value survives pickling: None, ``"all"`` or a count."""
    return devices is None or isinstance(devices, str | numbers.Integral)


def _refuse_text_or_complex(X) -> None:
    """Name X in the two errors scikit-learn's validation words without it (its own texts
    kept, which its estimator checks match): text and complex values."""
    if isinstance(X, str):
        raise ValueError(f"X must be a 2-D array of real numbers, got the string {X!r}")
    kind = getattr(getattr(X, "dtype", None), "kind", None)
    if kind is None and isinstance(X, list | tuple):
        try:
            kind = np.asarray(X).dtype.kind
        except ValueError:  # ragged: scikit-learn's validation says so
            kind = None
    if kind in ("U", "S"):
        raise ValueError("X must be real numbers, got strings (could not convert string to "
                         "float)")  # fmt: skip
    if kind == "c":
        raise ValueError("X must be real numbers: Complex data not supported")


class TNClassifier(ClassifierMixin, TNEstimator):
    """Base of qtn's classifiers: ``fit``, ``predict_proba``, ``predict``, ``amplitudes``."""

    def fit(self, X, y, *, sample_weight=None, eval_set=None):
        """Fit to (X, y).

        Parameters
        ----------
        X, y
            Training data and labels.
        sample_weight
            Optional non-negative weights (n_samples,): each sample's loss is weighted.
        eval_set
            ``(X_val, y_val)``: per-epoch validation metrics in ``history_``.

        With ``calibration="temperature"`` a stratified ``calibration_fraction`` of
        the data is held out of training and the output temperature is fitted on it
        (with ``early_stopping`` its validation split is used instead). With
        ``warm_start=True`` a fitted estimator continues from its parameters, scaler
        and classes.

        Returns
        -------
        self
        """
        config = self._validate_params()
        warm = bool(getattr(self, "warm_start", False)) and hasattr(self, "params_")
        old = (self.n_features_in_, self.classes_) if warm else None
        _refuse_text_or_complex(X)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], reset=not warm)
        check_classification_targets(y)
        sw = check_weights(sample_weight, X)
        classes, y_enc = np.unique(y, return_inverse=True)
        check_two_classes(classes, y_enc, sw, type(self).__name__)
        if not get_loss(config.loss).supervised:
            raise ValueError(f"loss {config.loss!r} is generative; use a classifier loss")
        if warm:
            check_warm_start(old, X.shape[1], classes)
        dtype = check_dtype(self.dtype)
        if not warm:
            self._fit_scaling(X, sw)
        Xs = self._transform(X, fitting=not warm)
        seed = self._seed()
        calib = getattr(self, "calibration", None) == "temperature"
        frac = self.validation_fraction if self.early_stopping else self._calibration_fraction()
        tr, held, why = holdout_split(
            y_enc, sw, frac if (self.early_stopping or calib) else 0.0, seed,
            cap=None if self.early_stopping else CALIBRATION_MAX_SAMPLES,
        )  # fmt: skip
        validation = None
        if self.early_stopping and held is not None:
            validation = (self._features(Xs[held], dtype), y_enc[held])
        elif eval_set is not None:
            validation = self._eval_set(eval_set, classes, dtype)
        if warm:
            params = self._resize_params(self.params_)
        else:
            with x64_if(dtype):
                params = self._init_params(
                    jax.random.key(seed), X.shape[1], len(classes), self._fmap().dim, dtype
                )
        t0 = time.perf_counter()
        self.params_, history, info = self._train(
            params, self._features(Xs[tr], dtype), y_enc[tr], config, validation=validation,
            seed=seed, sample_weight=sw[tr],
        )  # fmt: skip
        self.classes_ = classes
        self.history_ = (self.history_ + history) if warm else history
        self.n_iter_ = len(self.history_)
        self.temperature_ = 1.0
        if calib and held is not None:
            self.temperature_ = fit_temperature(
                self._raw_proba(Xs[held], transformed=True), y_enc[held], sw[held]
            )
        self.fit_info_ = {
            **info, "method": config.method, "loss": config.loss, "warm_start": warm,
            "n_train": int(len(tr)), "n_held_out": 0 if held is None else int(len(held)),
            "learning_rate": info.get("learning_rate", config.resolved_learning_rate(params)),
            "epochs": len(history), "seconds": time.perf_counter() - t0,
            "calibration": (f"temperature {self.temperature_:.4g}" if calib and held is not None
                            else ("off" if not calib else f"skipped: {why}")),
            **self._fit_info_extra(),
        }  # fmt: skip
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of training on the batch (X, y), continuing from the current parameters.

        As scikit-learn's SGD estimators: ``classes`` (every label the stream can
        hold) is required on the first call, when the parameters are initialised and
        the scaling is decided on that batch; later batches may hold any subset of
        the classes. Each call runs one epoch of ``method`` at the constant rate
        ``learning_rate`` (the optimizer's state starts afresh per batch). With
        ``calibration="temperature"`` the temperature is refitted on each new batch
        *before* training on it (the batch is then unseen data for the model).

        Returns
        -------
        self
        """
        config = self._validate_params()
        first = not hasattr(self, "params_")
        if first and classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit (all labels the "
                "stream can hold, e.g. classes=np.unique(y_all))"
            )
        _refuse_text_or_complex(X)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], reset=first)
        check_classification_targets(y)
        sw = check_weights(sample_weight, X)
        if first:
            all_classes = np.unique(np.asarray(classes))
            check_two_classes(all_classes, np.arange(len(all_classes)), None,
                              type(self).__name__)  # fmt: skip
        else:
            all_classes = self.classes_
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(
                    f"classes={list(np.unique(classes))} differs from the classes of the first "
                    f"call {list(self.classes_)}"
                )
        y_enc = encode_labels(y, all_classes, "y")
        dtype = check_dtype(self.dtype)
        seed = self._seed()
        if first:
            self._fit_scaling(X, sw)
            with x64_if(dtype):
                params = self._init_params(
                    jax.random.key(seed), X.shape[1], len(all_classes), self._fmap().dim, dtype
                )
            self.classes_, self.history_, self.temperature_ = all_classes, [], 1.0
        else:
            params = self.params_
        Xs = self._transform(X, fitting=first)
        calib = getattr(self, "calibration", None) == "temperature"
        if calib and not first:
            self.temperature_ = fit_temperature(self._raw_proba(Xs, transformed=True), y_enc, sw)
        config = dataclasses.replace(config, max_epochs=1, lr_schedule="constant",
                                     early_stopping=False, max_seconds=None)  # fmt: skip
        self.params_, history, info = self._train(
            params, self._features(Xs, dtype), y_enc, config, seed=seed, sample_weight=sw
        )
        self.history_ = self.history_ + history
        self.n_iter_ = len(self.history_)
        self.fit_info_ = {**info, "method": config.method, "loss": config.loss,
                          "partial_fit_calls": self.n_iter_, "n_train": int(len(y_enc)),
                          "temperature": self.temperature_, **self._fit_info_extra()}  # fmt: skip
        return self

    def _calibration_fraction(self) -> float:
        return float(getattr(self, "calibration_fraction", 0.2))

    def _eval_set(self, eval_set, classes, dtype):
        Xv, yv = eval_set
        Xv = self._transform(self._check_X(Xv), "eval_set X")
        return self._features(Xv, dtype), encode_labels(yv, classes, "eval_set y")

    def _resize_params(self, params):
        """Subclass hook: the fitted parameters adapted to changed estimator parameters."""
        return params

    def _fit_info_extra(self) -> dict:
        """Subclass hook: model-specific entries of ``fit_info_`` (e.g. bond ranks)."""
        return {}

    def _validate_params(self) -> FitConfig:
        config = super()._validate_params()
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown output {self.output!r}; valid outputs: {list(OUTPUTS)}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        cal = getattr(self, "calibration", None)
        if cal not in CALIBRATIONS:
            raise ValueError(f"unknown calibration {cal!r}; valid values: {list(CALIBRATIONS)}")
        frac = self._calibration_fraction()
        if isinstance(frac, bool) or not 0.0 < frac < 1.0:
            raise ValueError(f"calibration_fraction must be in (0, 1), got {frac!r}")
        if not isinstance(getattr(self, "warm_start", False), bool | np.bool_):
            raise ValueError(f"warm_start must be a bool, got {self.warm_start!r}")
        return config

    def amplitudes(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Exact amplitudes as ``(fhat, log_norm)``: f(x) = exp(log_norm) * fhat, ||fhat|| = 1."""
        return self._outputs(X)

    def _output(self) -> str:
        return get_loss(self.loss).output if self.output == "auto" else self.output

    def _raw_proba(self, X, *, transformed: bool = False) -> np.ndarray:
        """Probabilities by the ``output`` rule, before temperature scaling."""
        if transformed:
            dtype = check_dtype(self.dtype)
            with x64_if(dtype):
                fhat, _ = apply(self._forward, self.params_, self._features(X, dtype))
        else:
            fhat, _ = self.amplitudes(X)
        return output_probabilities(fhat, self._output(), getattr(self.params_, "log_temp", 0.0))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n_samples, n_classes): the ``output`` rule, then the fitted
        temperature ``temperature_`` (``softmax(log p / T)``; 1 without calibration).

        X may be a ``dask.array.Array``: the result is then a Dask array computed chunk by
        chunk of rows (on a ``distributed`` cluster if a Client is active), as for
        :meth:`predict`, :meth:`predict_log_proba` and :meth:`decision_function`.

        Examples
        --------
        >>> import dask.array as da  # doctest: +SKIP
        >>> clf.predict_proba(da.from_array(X, chunks=(1000, -1))).compute()  # doctest: +SKIP
        """
        if is_dask_array(X):
            check_is_fitted(self)
            return self._dask("predict_proba", X, len(self.classes_), np.float64)
        p = self._raw_proba(X)
        t = float(getattr(self, "temperature_", 1.0))
        return p if t == 1.0 else apply_temperature(p, t)

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba` (a Dask array for a Dask X)."""
        if is_dask_array(X):
            check_is_fitted(self)
            return self._dask("predict_log_proba", X, len(self.classes_), np.float64)
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X) -> np.ndarray:
        """Log-probabilities (n, n_classes); for two classes, log p_1 - log p_0 (n,). A Dask
        array for a Dask X."""
        if is_dask_array(X):
            check_is_fitted(self)
            binary = len(self.classes_) == 2
            return self._dask("decision_function", X, None if binary else len(self.classes_),
                              np.float64)  # fmt: skip
        logp = np.log(np.maximum(self.predict_proba(X), 1e-300))
        if len(self.classes_) == 2:
            return logp[:, 1] - logp[:, 0]
        return logp

    def predict(self, X) -> np.ndarray:
        """Most probable class for each sample (a Dask array of labels for a Dask X)."""
        if is_dask_array(X):
            check_is_fitted(self)
            return self._dask("predict", X, None, self.classes_.dtype)
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # -- persistence of the classes
    def _extra_arrays(self) -> dict:
        classes = self.classes_
        return {"classes": classes.astype(str) if classes.dtype == object else classes}

    def _extra_meta(self) -> dict:
        return {
            "classes_kind": "object" if self.classes_.dtype == object else "array",
            "temperature": float(getattr(self, "temperature_", 1.0)),
        }

    def _load_extra(self, arrays: dict, header: dict) -> None:
        kind = header.get("classes_kind")
        if kind not in ("object", "array"):
            raise ValueError(
                f"header field 'classes_kind' must be 'object' or 'array', got {kind!r}"
            )
        classes = arrays["classes"]
        if classes.ndim != 1 or len(classes) < 2 or len(np.unique(classes)) != len(classes):
            raise ValueError(f"'classes' must hold at least two distinct labels, got {classes!r}")
        self.classes_ = classes.astype(object) if kind == "object" else classes
        t = header.get("temperature", 1.0)  # files before calibration: 1
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < np.inf:
            raise ValueError(f"header field 'temperature' must be a number > 0, got {t!r}")
        self.temperature_ = float(t)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
