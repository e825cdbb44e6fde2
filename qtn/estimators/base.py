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

The base provides validation of X and y, the range policy and scaling, the
feature-map step, chunked inference (the training package's evaluation loop),
the classifier output rule, progress bars through ``verbose``, and
``save``/``load`` of any params pytree with a versioned schema that is checked
field by field on load.
"""

from __future__ import annotations

import json
import numbers

import jax
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from qtn._jax import check_dtype, x64_if
from qtn.errors import FormatError
from qtn.estimators._io import FORMAT_VERSION, load_npz, save_npz
from qtn.features import get_feature_map
from qtn.training import FitConfig, apply, fit, get_loss

__all__ = ["TNEstimator", "TNClassifier", "output_probabilities", "OUTPUTS", "SCALINGS"]

OUTPUTS = ("auto", "born", "softmax")
SCALINGS = (None, "minmax")
_SCALER_FIELDS = ("min_", "scale_", "data_min_", "data_max_", "data_range_")


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


def _key_name(k) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)  # pragma: no cover


def params_schema(params) -> list[dict]:
    """[{"path", "shape", "dtype"}, ...] of every leaf of a params pytree, in tree order."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    return [
        {"path": ".".join(_key_name(k) for k in path), "shape": list(np.shape(leaf)),
         "dtype": str(np.asarray(leaf).dtype)}
        for path, leaf in leaves
    ]  # fmt: skip


class TNEstimator(BaseEstimator):
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

    # -- the feature step
    def _fit_scaling(self, X) -> None:
        if getattr(self, "scaling", None) == "minmax":
            self.scaler_ = MinMaxScaler(clip=True).fit(X)

    def _transform(self, X, argname: str = "X"):
        """X scaled (if ``scaling``) and checked against the feature map's range."""
        if getattr(self, "scaling", None) == "minmax":
            X = self.scaler_.transform(X)
        try:
            return self._fmap().validate(X, argname)
        except ValueError as exc:
            raise ValueError(
                f"{exc}; or fit with {type(self).__name__}(scaling='minmax')"
            ) from None

    def _features(self, X, dtype) -> np.ndarray:
        return np.asarray(self._fmap()(np.asarray(X, dtype), validate=False), dtype)

    def _check_X(self, X, *, reset: bool = False):
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
    def _train(self, params, phi, y, config, *, validation=None, seed=0):
        dtype = check_dtype(self.dtype)
        with x64_if(dtype):
            params, history, info = fit(
                self._forward, params, phi, y, config, validation=validation, seed=seed,
                desc=type(self).__name__,
            )  # fmt: skip
            return jax.tree_util.tree_map(np.asarray, params), history, info

    # -- persistence
    def _extra_arrays(self) -> dict:
        return {}

    def _load_extra(self, arrays: dict, header: dict) -> None:
        pass

    def save(self, path) -> None:
        """Save the fitted model to ``path`` (an ``.npz``, no pickle); the round trip is bit-exact.

        A custom ``optimizer`` is not saved (it is only needed to continue training).
        """
        check_is_fitted(self)
        est_params = {k: v for k, v in self.get_params().items() if k != "optimizer"}
        if not isinstance(est_params.get("random_state"), int | type(None)):
            est_params["random_state"] = None
        leaves = jax.tree_util.tree_leaves(self.params_)
        schema = params_schema(self.params_)
        arrays = {f"params/{s['path']}": np.asarray(v) for s, v in zip(schema, leaves)}
        if getattr(self, "scaling", None) == "minmax":
            for a in _SCALER_FIELDS:
                arrays["scaler/" + a] = getattr(self.scaler_, a)
        arrays.update(self._extra_arrays())
        meta = {
            "estimator_params": est_params,
            "params_schema": schema,
            "n_features_in": int(self.n_features_in_),
            "history": self.history_,
            "fit_info": {k: v for k, v in self.fit_info_.items() if _jsonable(v)},
        }
        meta.update(self._extra_meta())
        save_npz(path, self._file_kind, meta, arrays)

    def _extra_meta(self) -> dict:
        return {}

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`.

        Every header field is checked, for type and for consistency with the
        arrays, before anything is returned; any mismatch raises
        :class:`qtn.FormatError` naming the field.
        """
        header, arrays = load_npz(path, cls._file_kind)
        if header.get("format_version") == 1:
            header, arrays = _upgrade_v1(header, arrays)
        est_params = _field(header, "estimator_params", dict, path)
        try:
            est = cls(**est_params)
            est._validate_params()
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{path}: field 'estimator_params' is invalid ({exc})") from None
        n_feat = _field(header, "n_features_in", int, path)
        if n_feat < 1:
            raise FormatError(f"{path}: field 'n_features_in' must be >= 1, got {n_feat}")
        history = _field(header, "history", list, path)
        if not all(isinstance(h, dict) for h in history):
            raise FormatError(f"{path}: field 'history' must be a list of objects")
        fit_info = _field(header, "fit_info", dict, path)
        schema = _field(header, "params_schema", list, path)
        est.n_features_in_ = n_feat
        try:
            template = est._params_template()
        except ValueError as exc:
            raise FormatError(f"{path}: field 'estimator_params' is invalid ({exc})") from None
        expect = [s["path"] for s in params_schema(template)]
        got = [s.get("path") if isinstance(s, dict) else None for s in schema]
        if got != expect:
            raise FormatError(f"{path}: field 'params_schema' lists {got}, expected {expect}")
        leaves = []
        for s in schema:
            key = f"params/{s['path']}"
            if key not in arrays:
                raise FormatError(f"{path}: array {key!r} is missing")
            arr = arrays[key]
            if list(arr.shape) != s.get("shape") or str(arr.dtype) != s.get("dtype"):
                raise FormatError(
                    f"{path}: array {key!r} has shape {list(arr.shape)} and dtype {arr.dtype}; "
                    f"the schema says {s.get('shape')} and {s.get('dtype')}"
                )
            leaves.append(arr)
        treedef = jax.tree_util.tree_structure(template)
        try:
            est.params_ = jax.tree_util.tree_unflatten(treedef, leaves)
        except ValueError as exc:
            raise FormatError(f"{path}: the arrays do not form a valid model ({exc})") from None
        est.n_features_in_ = n_feat
        est.history_ = history
        est.n_iter_ = len(history)
        est.fit_info_ = fit_info
        if getattr(est, "scaling", None) == "minmax":
            sc = MinMaxScaler(clip=True)
            for a in _SCALER_FIELDS:
                arr = arrays.get("scaler/" + a)
                if arr is None or arr.shape != (n_feat,):
                    raise FormatError(f"{path}: scaler array {a!r} is missing or not ({n_feat},)")
                setattr(sc, a, arr)
            sc.n_features_in_ = n_feat
            sc.n_samples_seen_ = 0
            est.scaler_ = sc
        try:
            est._load_extra(arrays, header)
            est._check_loaded(header)
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{path}: inconsistent model file ({exc})") from None
        return est


def _field(header: dict, name: str, kind, path):
    if name not in header:
        raise FormatError(f"{path}: header field {name!r} is missing")
    v = header[name]
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise FormatError(
            f"{path}: header field {name!r} must be a {kind.__name__}, got {type(v).__name__}"
        )
    return v


def _upgrade_v1(header, arrays):
    """Files of format 1 (qtn <= 0.x MPSParams: left/label/right/log_temp) in format 2 terms."""
    arrays = dict(arrays)
    try:
        mapping = {"left": "network.left", "label": "network.center", "right": "network.right",
                   "log_temp": "log_temp"}  # fmt: skip
        schema = []
        for old, new in mapping.items():
            arr = arrays.pop(old)
            arrays[f"params/{new}"] = arr
            schema.append({"path": new, "shape": list(arr.shape), "dtype": str(arr.dtype)})
        for a in _SCALER_FIELDS:
            if "scaler_" + a in arrays:
                arrays["scaler/" + a] = arrays.pop("scaler_" + a)
    except KeyError as exc:
        raise FormatError(f"format-1 model file without array {exc}") from None
    header = {**header, "params_schema": schema, "format_version": FORMAT_VERSION}
    return header, arrays


def _jsonable(v) -> bool:
    try:
        json.dumps(v)
        return True
    except TypeError:
        return False


class TNClassifier(ClassifierMixin, TNEstimator):
    """Base of qtn's classifiers: ``fit``, ``predict_proba``, ``predict``, ``amplitudes``."""

    def fit(self, X, y, *, eval_set=None):
        """Fit to (X, y); ``eval_set=(X_val, y_val)`` adds per-epoch validation metrics.

        Returns
        -------
        self
        """
        config = self._validate_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y has 1 class ({classes[0]!r}); {type(self).__name__} needs at least two classes"
            )
        if not get_loss(config.loss).supervised:
            raise ValueError(f"loss {config.loss!r} is generative; use a classifier loss")
        dtype = check_dtype(self.dtype)
        self._fit_scaling(X)
        Xs = self._transform(X)
        seed = self._seed()
        Xtr, ytr, validation = Xs, y_enc, None
        if self.early_stopping:
            from sklearn.model_selection import train_test_split

            strat = y_enc if np.min(np.bincount(y_enc)) >= 2 else None
            Xtr, Xv, ytr, yv = train_test_split(
                Xs, y_enc, test_size=self.validation_fraction, random_state=seed, stratify=strat
            )
            validation = (self._features(Xv, dtype), yv)
        elif eval_set is not None:
            Xv, yv = eval_set
            Xv = self._transform(self._check_X(Xv), "eval_set X")
            lookup = {c: i for i, c in enumerate(classes.tolist())}
            try:
                yv = np.array([lookup[v] for v in np.asarray(yv).tolist()])
            except KeyError as exc:
                raise ValueError(f"eval_set y has a label not seen in y: {exc}") from None
            validation = (self._features(Xv, dtype), yv)
        with x64_if(dtype):
            params = self._init_params(
                jax.random.key(seed), X.shape[1], len(classes), self._fmap().dim, dtype
            )
        self.params_, self.history_, self.fit_info_ = self._train(
            params, self._features(Xtr, dtype), ytr, config, validation=validation, seed=seed
        )
        self.classes_ = classes
        self.n_iter_ = len(self.history_)
        return self

    def _validate_params(self) -> FitConfig:
        config = super()._validate_params()
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown output {self.output!r}; valid outputs: {list(OUTPUTS)}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        return config

    def amplitudes(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Exact amplitudes as ``(fhat, log_norm)``: f(x) = exp(log_norm) * fhat, ||fhat|| = 1."""
        return self._outputs(X)

    def _output(self) -> str:
        return get_loss(self.loss).output if self.output == "auto" else self.output

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n_samples, n_classes) by the ``output`` rule."""
        fhat, _ = self.amplitudes(X)
        return output_probabilities(fhat, self._output(), getattr(self.params_, "log_temp", 0.0))

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X) -> np.ndarray:
        """Log-probabilities (n, n_classes); for two classes, log p_1 - log p_0 (n,)."""
        logp = np.log(np.maximum(self.predict_proba(X), 1e-300))
        if len(self.classes_) == 2:
            return logp[:, 1] - logp[:, 0]
        return logp

    def predict(self, X) -> np.ndarray:
        """Most probable class for each sample."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # -- persistence of the classes
    def _extra_arrays(self) -> dict:
        classes = self.classes_
        return {"classes": classes.astype(str) if classes.dtype == object else classes}

    def _extra_meta(self) -> dict:
        return {"classes_kind": "object" if self.classes_.dtype == object else "array"}

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
