"""scikit-learn estimators over qtn models.

``__init__`` only stores arguments; ``fit`` validates them and returns self;
learned state ends in ``_``.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from qtn._jax import check_dtype, x64_if
from qtn.features import get_feature_map
from qtn.models.mps import MPSParams, batch_amplitudes, init_mps
from qtn.training.fit import METHODS, FitConfig, fit_mps
from qtn.training.losses import LOSS_OUTPUT, list_losses

__all__ = ["MPSClassifier"]

_OUTPUTS = ("auto", "born", "softmax")
_SCALINGS = (None, "minmax")


def _chunks(n: int, chunk: int = 1024):
    """Padded chunk sizes: a few fixed shapes, so predict compiles once per structure."""
    size = chunk if n >= chunk else max(8, 1 << (max(n, 1) - 1).bit_length())
    for s in range(0, n, size):
        yield s, min(s + size, n), size


class MPSClassifier(ClassifierMixin, BaseEstimator):
    """Matrix product state classifier (Stoudenmire & Schwab, arXiv:1605.05775).

    Each feature is mapped to a local vector phi(x_j) (``feature_map``) and the
    class amplitudes are f_l(x) = <W_l | phi(x_1) ... phi(x_N)>, with W an MPS
    whose label index sits at ``label_site``. Trained by gradient descent
    (``method="gradient"``: jitted optax epochs over shuffled minibatches) or by
    DMRG-style two-site sweeps (``method="sweep"``: local updates split by a
    truncated SVD, so bond dimensions adapt up to ``bond_dim``).

    Parameters
    ----------
    bond_dim
        Maximum bond dimension chi (>= 1).
    method
        ``"gradient"`` or ``"sweep"``.
    loss
        ``"cross_entropy"`` (softmax of the normalised amplitudes times a learned
        temperature), ``"nll"`` (Born rule negative log-likelihood) or ``"mse"``.
    output
        Rule for ``predict_proba``: ``"born"`` p_l = |f_l|^2 / sum |f|^2,
        ``"softmax"``, or ``"auto"`` (the rule the loss trains: softmax for
        cross-entropy, Born otherwise). ``predict`` is the argmax of predict_proba.
    feature_map, feature_dim
        Registered feature map name (see :func:`qtn.list_feature_maps`) and its
        ``dim`` where it takes one.
    label_site
        Site of the label index; default the centre.
    learning_rate
        Adam step size. Default for gradient training: ``min(1e-3, 0.032 / bond_dim)``
        (a coherent Adam step changes each core by about ``lr * bond_dim``, so the
        stable rate falls with chi: on 14x14 MNIST, 1e-3 collapsed at chi=128 while
        2.5e-4 reached 98.8%); for the local updates of sweeps, 1e-4.
    optimizer
        Any optax ``GradientTransformation`` (gradient method); overrides
        ``learning_rate`` and ``clip_norm``.
    clip_norm
        Clip each gradient's global norm to this value before Adam (None: off).
        Long chains need it: without it, 14x14 MNIST training can collapse.
    lr_schedule
        ``"cosine"`` (linear warm-up over 10% of the steps, then cosine decay to
        zero at ``max_epochs``) or ``"constant"``. Gradient method only.
    batch_size, max_epochs
        Minibatch size and number of epochs (default 30 for gradient, 5 sweeps).
    l2
        L2 penalty on the cores (gradient method).
    cutoff, local_steps
        Sweep method: relative singular value cutoff, Adam steps per bond.
    early_stopping, validation_fraction, n_iter_no_change, tol
        Hold out a stratified ``validation_fraction`` and stop when the validation
        loss has not improved by ``tol`` for ``n_iter_no_change`` epochs, keeping
        the best parameters.
    init_std
        Noise added to the near-identity initial cores.
    dtype
        ``"float32"`` or ``"float64"`` (JAX x64 is enabled only inside fit/predict).
    scaling
        ``None``: X must already lie in the feature map's range (for pixels,
        [0, 1]). ``"minmax"``: fit a :class:`~sklearn.preprocessing.MinMaxScaler`
        to [0, 1] on the training data and clip unseen values into range.
    random_state
        Seed (int), ``numpy.random.RandomState`` or None.
    verbose
        0 silences the tqdm progress bar; >= 1 shows loss and accuracy per epoch.
    max_seconds
        Stop after the epoch that crosses this training time budget.

    Attributes
    ----------
    classes_, n_features_in_
        As in scikit-learn.
    params_
        The trained :class:`qtn.models.MPSParams`.
    history_
        One dict per epoch: loss, accuracy, val_loss/val_accuracy, seconds.
    n_iter_
        Epochs run.
    fit_info_
        Extra information (sweeps: ``bond_ranks``, ``max_discarded_weight``).

    Examples
    --------
    >>> from qtn import MPSClassifier, load_digits
    >>> X, y = load_digits(flatten=True)
    >>> clf = MPSClassifier(bond_dim=8, max_epochs=5, verbose=0, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        bond_dim: int = 16,
        *,
        method: str = "gradient",
        loss: str = "cross_entropy",
        output: str = "auto",
        feature_map: str = "trigonometric",
        feature_dim: int | None = None,
        label_site: int | None = None,
        learning_rate: float | None = None,
        optimizer=None,
        clip_norm: float | None = 1.0,
        lr_schedule: str = "cosine",
        batch_size: int = 64,
        max_epochs: int | None = None,
        l2: float = 0.0,
        cutoff: float = 1e-10,
        local_steps: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        tol: float = 1e-4,
        init_std: float = 1e-2,
        dtype: str = "float32",
        scaling: str | None = None,
        random_state=None,
        verbose: int = 1,
        max_seconds: float | None = None,
    ):
        self.bond_dim = bond_dim
        self.method = method
        self.loss = loss
        self.output = output
        self.feature_map = feature_map
        self.feature_dim = feature_dim
        self.label_site = label_site
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.clip_norm = clip_norm
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.l2 = l2
        self.cutoff = cutoff
        self.local_steps = local_steps
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.init_std = init_std
        self.dtype = dtype
        self.scaling = scaling
        self.random_state = random_state
        self.verbose = verbose
        self.max_seconds = max_seconds

    # ------------------------------------------------------------------ validation

    def _validate_params(self):
        def integer(name, lo):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")

        integer("bond_dim", 1)
        integer("batch_size", 1)
        integer("local_steps", 1)
        integer("n_iter_no_change", 1)
        if self.max_epochs is not None:
            integer("max_epochs", 1)
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid methods: {list(METHODS)}")
        if self.loss not in list_losses():
            raise ValueError(f"unknown loss {self.loss!r}; valid losses: {list_losses()}")
        if self.output not in _OUTPUTS:
            raise ValueError(f"unknown output {self.output!r}; valid outputs: {list(_OUTPUTS)}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(
                f"unknown lr_schedule {self.lr_schedule!r}; valid values: ['cosine', 'constant']"
            )
        if self.scaling not in _SCALINGS:
            raise ValueError(f"unknown scaling {self.scaling!r}; valid values: {list(_SCALINGS)}")
        for name in ("l2", "init_std", "cutoff", "tol"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Real) or not np.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.clip_norm is not None and not (
            isinstance(self.clip_norm, numbers.Real) and 0 < self.clip_norm < np.inf
        ):
            raise ValueError(f"clip_norm must be a positive number or None, got {self.clip_norm!r}")
        if self.learning_rate is not None and not (
            isinstance(self.learning_rate, numbers.Real) and 0 < self.learning_rate < np.inf
        ):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        check_dtype(self.dtype)

    def _check_range(self, X, argname="X"):
        """X validated against the feature map's range (rounding-level excursions clipped)."""
        try:
            return self._fmap().validate(X, argname)
        except ValueError as exc:
            raise ValueError(f"{exc}; or fit with MPSClassifier(scaling='minmax')") from None

    def _fmap(self):
        kw = {} if self.feature_dim is None else {"dim": self.feature_dim}
        return get_feature_map(self.feature_map, **kw)

    # ------------------------------------------------------------------ fit / predict

    def fit(self, X, y, *, eval_set=None):
        """Fit the MPS to (X, y); ``eval_set=(X_val, y_val)`` adds per-epoch validation metrics.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y has 1 class ({classes[0]!r}); MPSClassifier needs at least two classes"
            )
        dtype = check_dtype(self.dtype)
        if self.scaling == "minmax":
            self.scaler_ = MinMaxScaler(clip=True).fit(X)
        fm = self._fmap()
        Xs = self.scaler_.transform(X) if self.scaling == "minmax" else X
        Xs = self._check_range(Xs)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        method = self.method
        lr = self.learning_rate or (
            min(1e-3, 0.032 / self.bond_dim) if method == "gradient" else 1e-4
        )
        epochs = self.max_epochs or (30 if method == "gradient" else 5)

        phi_val = y_val = None
        Xtr, ytr = Xs, y_enc
        if self.early_stopping:
            from sklearn.model_selection import train_test_split

            strat = y_enc if np.min(np.bincount(y_enc)) >= 2 else None
            Xtr, Xv, ytr, y_val = train_test_split(
                Xs, y_enc, test_size=self.validation_fraction, random_state=seed, stratify=strat
            )
            phi_val = fm(np.asarray(Xv, dtype), validate=False)
        elif eval_set is not None:
            Xv, yv = eval_set
            Xv = validate_data(self, Xv, reset=False, dtype=[np.float64, np.float32])
            if self.scaling == "minmax":
                Xv = self.scaler_.transform(Xv)
            Xv = self._check_range(Xv, "eval_set X")
            lookup = {c: i for i, c in enumerate(classes.tolist())}
            y_val = np.array([lookup[v] for v in np.asarray(yv).tolist()])
            phi_val = fm(np.asarray(Xv, dtype), validate=False)

        config = FitConfig(
            method=method, loss=self.loss, optimizer=self.optimizer, learning_rate=lr,
            clip_norm=None if self.clip_norm is None else float(self.clip_norm),
            lr_schedule=self.lr_schedule,
            batch_size=self.batch_size, max_epochs=epochs, l2=float(self.l2),
            cutoff=float(self.cutoff), local_steps=self.local_steps,
            early_stopping=self.early_stopping, n_iter_no_change=self.n_iter_no_change,
            tol=float(self.tol), verbose=self.verbose, max_seconds=self.max_seconds,
        )  # fmt: skip
        with x64_if(dtype):
            jdt = jnp.dtype(dtype)
            params = init_mps(
                jax.random.key(seed), X.shape[1], len(classes), self.bond_dim, fm.dim,
                label_site=self.label_site, init_std=float(self.init_std), dtype=jdt,
            )  # fmt: skip
            params, history, info = fit_mps(
                params, np.asarray(fm(np.asarray(Xtr, dtype), validate=False), dtype), ytr, config,
                phi_val=None if phi_val is None else np.asarray(phi_val, dtype),
                y_val=y_val, seed=seed,
            )  # fmt: skip
            self.params_ = jax.tree_util.tree_map(np.asarray, params)
        self.classes_ = classes
        self.history_ = history
        self.n_iter_ = len(history)
        self.fit_info_ = info
        return self

    def amplitudes(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Exact amplitudes as ``(fhat, log_norm)``: f(x) = exp(log_norm) * fhat, ||fhat|| = 1."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        dtype = check_dtype(self.dtype)
        if self.scaling == "minmax":
            X = self.scaler_.transform(X)
        fm = self._fmap()
        X = self._check_range(X)
        n = X.shape[0]
        fh = np.empty((n, len(self.classes_)), dtype)
        ln = np.empty(n, dtype)
        with x64_if(dtype):
            for s, e, size in _chunks(n):
                phi = np.zeros((size, X.shape[1], fm.dim), dtype)
                phi[: e - s] = fm(np.asarray(X[s:e], dtype), validate=False)
                phi[e - s :, :, 0] = 1.0  # padding rows: any valid input
                f, lg = batch_amplitudes(self.params_, phi)
                fh[s:e], ln[s:e] = np.asarray(f)[: e - s], np.asarray(lg)[: e - s]
        return fh, ln

    def _output(self):
        return LOSS_OUTPUT[self.loss] if self.output == "auto" else self.output

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n_samples, n_classes) by the ``output`` rule."""
        fhat, _ = self.amplitudes(X)
        fhat = fhat.astype(np.float64)
        if self._output() == "born":
            p = fhat**2
        else:
            z = np.exp(float(self.params_.log_temp)) * fhat
            p = np.exp(z - z.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

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

    # ------------------------------------------------------------------ persistence, interop

    def save(self, path) -> None:
        """Save the fitted model to ``path`` (an ``.npz``; no pickle). Round trip is bit-exact.

        A custom ``optimizer`` is not saved (it is only needed to continue training).
        """
        from qtn._io import save_npz

        check_is_fitted(self)
        params = {k: v for k, v in self.get_params().items() if k != "optimizer"}
        if not isinstance(params["random_state"], int | type(None)):
            params["random_state"] = None
        classes = self.classes_
        classes_kind = "object" if classes.dtype == object else "array"
        arrays = {
            "left": self.params_.left, "label": self.params_.label,
            "right": self.params_.right, "log_temp": self.params_.log_temp,
            "classes": classes.astype(str) if classes_kind == "object" else classes,
        }  # fmt: skip
        if self.scaling == "minmax":
            for a in ("min_", "scale_", "data_min_", "data_max_", "data_range_"):
                arrays["scaler_" + a] = getattr(self.scaler_, a)
        meta = {
            "estimator_params": params,
            "classes_kind": classes_kind,
            "n_features_in": int(self.n_features_in_),
            "history": self.history_,
            "fit_info": {k: v for k, v in self.fit_info_.items() if _jsonable(v)},
        }
        save_npz(path, "qtn.MPSClassifier", meta, arrays)

    @classmethod
    def load(cls, path) -> MPSClassifier:
        """Load a model written by :meth:`save`; raises ``qtn.FormatError`` for a bad file."""
        from qtn._io import load_npz
        from qtn.errors import FormatError

        meta, arrays = load_npz(path, "qtn.MPSClassifier")
        try:
            est = cls(**meta["estimator_params"])
            est.params_ = MPSParams(
                arrays["left"], arrays["label"], arrays["right"], arrays["log_temp"]
            )
            classes = arrays["classes"]
            est.classes_ = classes.astype(object) if meta["classes_kind"] == "object" else classes
            est.n_features_in_ = meta["n_features_in"]
            est.history_ = meta["history"]
            est.n_iter_ = len(est.history_)
            est.fit_info_ = meta["fit_info"]
            if est.scaling == "minmax":
                sc = MinMaxScaler(clip=True)
                for a in ("min_", "scale_", "data_min_", "data_max_", "data_range_"):
                    setattr(sc, a, arrays["scaler_" + a])
                sc.n_features_in_ = est.n_features_in_
                sc.n_samples_seen_ = 0
                est.scaler_ = sc
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{path}: incomplete or inconsistent model file ({exc})") from exc
        return est

    def to_quimb(self, *, per_class: bool = False):
        """The trained MPS as quimb ``MatrixProductState`` (see :func:`qtn.models.to_quimb`)."""
        from qtn.models.interop import to_quimb

        check_is_fitted(self)
        return to_quimb(self.params_, per_class=per_class)

    def entanglement_entropy(self) -> np.ndarray:
        """Von Neumann entropy across each bond of the trained MPS (label leg included)."""
        from qtn.models.interop import entanglement_entropy

        check_is_fitted(self)
        return entanglement_entropy(self.params_)

    def plot_entanglement(self, ax=None):
        """Plot :meth:`entanglement_entropy` against bond index; returns the Axes."""
        from qtn.models.interop import plot_entanglement

        return plot_entanglement(self.entanglement_entropy(), ax=ax, bond_dim=self.bond_dim)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _jsonable(v) -> bool:
    import json

    try:
        json.dumps(v)
        return True
    except TypeError:
        return False
