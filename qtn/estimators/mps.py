"""The MPS classifier of Stoudenmire & Schwab (arXiv:1605.05775) as a scikit-learn estimator.

A thin subclass of :class:`qtn.estimators.base.TNClassifier`: the model is an
:class:`qtn.MPS` with a label leg, its forward pass is
:func:`qtn.models.classifier_forward`.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
from sklearn.utils.validation import check_is_fitted

from qtn.estimators.base import TNClassifier
from qtn.models import MPS, ClassifierParams, classifier_forward, init_mps_classifier

__all__ = ["MPSClassifier"]


class MPSClassifier(TNClassifier):
    """Matrix product state classifier (Stoudenmire & Schwab, arXiv:1605.05775).

    Each feature is mapped to a local vector phi(x_j) (``feature_map``) and the
    class amplitudes are f_l(x) = <W_l | phi(x_1) ... phi(x_N)>, with W an MPS
    whose label index sits at ``label_site``. Trained by gradient descent
    (``method="gradient"``: jitted optax epochs over shuffled minibatches) or by
    DMRG-style two-site sweeps (``method="sweep"``: with ``loss="mse"`` the paper's
    quadratic cost, minimised at each bond by conjugate gradient on the whole
    training set, then split by a truncated SVD, so bond dimensions adapt up to
    ``bond_dim``). Probabilities are calibrated by default: a temperature fitted
    on a held-out ``calibration_fraction`` of the training data.

    Parameters
    ----------
    bond_dim
        Maximum bond dimension chi (>= 1).
    method
        ``"gradient"`` or ``"sweep"``.
    loss
        ``"cross_entropy"`` (softmax of the normalised amplitudes times a learned
        temperature), ``"nll"`` (Born rule negative log-likelihood) or ``"mse"``
        (the quadratic cost; with ``method="sweep"``, the paper's algorithm).
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
        2.5e-4 reached 98.8%); for the Adam local updates of sweeps (losses other than
        ``"mse"``), 1e-4. Sweeps with ``loss="mse"``: the step size eta of the proximal
        update at each bond (the bond minimises cost + ||B - B_old||^2 / (2 eta) by
        conjugate gradient), default 100.
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
        L2 penalty on the whole params pytree (gradient method); for sweeps with
        ``loss="mse"``, the ridge on each bond tensor (the projected inputs have unit
        norm, so 1e-4 suppresses directions holding less than 1e-4 of the data's
        variance); the sweeps' default ``None`` means 1e-4 there, 0 elsewhere.
    cutoff, local_steps
        Sweep method: relative singular value cutoff of the SVD split (singular values
        below ``cutoff`` times the largest are dropped, so bonds adapt), and the
        number of conjugate-gradient iterations (``"mse"``) or Adam steps (other
        losses) per bond.
    early_stopping, validation_fraction, n_iter_no_change, tol
        Hold out a stratified ``validation_fraction`` and stop when the validation
        loss has not improved by ``tol`` for ``n_iter_no_change`` epochs, keeping
        the best parameters.
    init_std
        Noise added to the near-identity initial cores.
    dtype
        ``"float32"`` or ``"float64"`` (JAX x64 is enabled only inside fit/predict).
    scaling
        What happens at fit when X leaves the feature map's domain (for the
        trigonometric map, [0, 1]). ``"auto"`` (default): training data inside the
        domain are used as they are; otherwise a
        :class:`~sklearn.preprocessing.MinMaxScaler` is fitted to them (``scaler_``).
        ``"minmax"``: always min-max scale. ``None``: X outside the domain raises
        ``ValueError``. At predict, every mode clips values outside the domain
        (after the scaler) into it, silently: a validation fold scaled by the
        training fold's scaler never breaks a pipeline.
    calibration, calibration_fraction
        ``"temperature"`` (default): hold out a stratified ``calibration_fraction``
        (default 0.2, at most 5,000 samples) of the training data, train on the rest,
        and fit the output temperature ``temperature_`` on the held-out part (``predict_proba`` is
        ``softmax(log p / T)`` of the output rule; predictions do not change). With
        ``early_stopping``, its validation split serves instead. ``None``: train on
        everything, T = 1. Too few samples to hold out one per class: T = 1 (the
        reason is in ``fit_info_["calibration"]``).
    warm_start
        ``fit`` continues from the fitted parameters (same features and classes;
        a larger ``bond_dim`` zero-pads the bonds) instead of starting afresh.
    random_state
        Seed (int), ``numpy.random.RandomState`` or None.
    verbose
        0 (default) is silent; >= 1 shows a tqdm bar with loss and accuracy per epoch.
    max_seconds
        Stop after the epoch that crosses this training time budget.
    devices
        Data-parallel gradient training (``method="gradient"``): every minibatch is
        split over a ``jax.sharding.Mesh`` (rows sharded along its ``"batch"`` axis,
        parameters replicated, gradients summed by XLA). ``None`` (default): automatic,
        every local device when the split pays (see :mod:`qtn._devices`; on CPU only
        with ``QTN_CPU_DEVICES``). ``"all"``: every device of ``jax.devices()``, across
        processes after ``jax.distributed.initialize`` (each process then calls ``fit``
        with the whole dataset and gets the same model). An int ``n``: the first ``n``
        devices. A sequence of jax devices, or a ``Mesh`` with a ``"batch"`` axis (or a
        single axis). Minibatches are padded with zero-weight rows to a multiple of the
        device count. Not saved by :meth:`save`; device objects are not pickled (an
        unpickled copy has ``devices=None``).

    Attributes
    ----------
    classes_, n_features_in_
        As in scikit-learn.
    params_
        The trained :class:`qtn.models.ClassifierParams`: ``params_.network`` is the
        :class:`qtn.MPS` (label leg at ``label_site``), ``params_.log_temp`` the
        softmax log-temperature.
    history_
        One dict per epoch: loss, accuracy, val_loss/val_accuracy, seconds.
    n_iter_
        Epochs run.
    temperature_
        The calibration temperature (1.0 without calibration).
    scaler_
        The fitted MinMaxScaler, or None when the training data were used as they are.
    fit_info_
        method, loss, n_train, n_held_out, learning_rate, epochs, seconds,
        calibration, ``bond_ranks`` (numerical rank of every bond of the trained
        MPS); sweeps add ``max_discarded_weight``, ``local_loss``, ``local_solver``;
        gradient training adds ``batch_shards`` (the number of devices each minibatch
        was split over: 1 when it was not split).

    Examples
    --------
    >>> from qtn import MPSClassifier, load_digits
    >>> X, y = load_digits(flatten=True)
    >>> clf = MPSClassifier(bond_dim=8, max_epochs=5, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)

    Split every minibatch over all devices (several GPUs, or CPU devices asked for
    with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``):

    >>> clf = MPSClassifier(bond_dim=8, max_epochs=5, devices="all").fit(X, y)  # doctest: +SKIP

    Predict on a Dask array, chunk by chunk (a Dask array back):

    >>> import dask.array as da  # doctest: +SKIP
    >>> clf.predict(da.from_array(X, chunks=500)).compute().shape  # doctest: +SKIP
    (1797,)
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
        scaling: str | None = "auto",
        calibration: str | None = "temperature",
        calibration_fraction: float = 0.2,
        warm_start: bool = False,
        random_state=None,
        verbose: int = 0,
        max_seconds: float | None = None,
        devices=None,
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
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.max_seconds = max_seconds
        self.devices = devices

    _file_kind = "qtn.MPSClassifier"
    _forward = staticmethod(classifier_forward)

    def _config_overrides(self) -> dict:
        return {
            "method": self._choose_method(self.method, {"gradient": "gradient", "sweep": "sweep"})
        }

    def _validate_params(self):
        config = super()._validate_params()
        for name in ("bond_dim",):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        return config

    def _init_params(self, key, n_features, n_outputs, phys_dim, dtype):
        if self.label_site is not None and not 0 <= self.label_site < n_features:
            raise ValueError(f"label_site must be in [0, {n_features - 1}], got {self.label_site}")
        return init_mps_classifier(
            key, n_features, n_outputs, self.bond_dim, phys_dim, label_site=self.label_site,
            init_std=float(self.init_std), dtype=jnp.dtype(dtype),
        )  # fmt: skip

    def _resize_params(self, params):
        chi = params.network.bond_dim
        if self.bond_dim < chi:
            raise ValueError(
                f"warm_start=True: bond_dim={self.bond_dim} is below the fitted model's {chi}; "
                "set warm_start=False to start afresh"
            )
        if self.bond_dim == chi:
            return params
        from qtn.models import pad_bond_dim

        return ClassifierParams(pad_bond_dim(params.network, self.bond_dim), params.log_temp)

    def _fit_info_extra(self) -> dict:
        from qtn.models import bond_dims

        return {"bond_ranks": bond_dims(self.params_.network, tol=1e-7)}

    def _params_template(self):
        z = np.zeros(())
        return ClassifierParams(MPS(z, z, z), z)

    def _check_loaded(self, header: dict) -> None:
        mps = self.params_.network
        if mps.n_sites != self.n_features_in_:
            raise ValueError(
                f"the MPS has {mps.n_sites} sites but n_features_in is {self.n_features_in_}"
            )
        if mps.n_labels != len(self.classes_):
            raise ValueError(f"the MPS has {mps.n_labels} labels but {len(self.classes_)} classes")
        if mps.phys_dim != self._fmap().dim:
            raise ValueError(
                f"the MPS has physical dimension {mps.phys_dim}, the feature map {self._fmap().dim}"
            )
        if mps.bond_dim > self.bond_dim:
            raise ValueError(
                f"the MPS has bond dimension {mps.bond_dim} > bond_dim {self.bond_dim}"
            )

    # ------------------------------------------------------------------ interop

    def to_circuit(self, method: str = "exact", *, reuse: bool = False, X=None, y=None,
                   **options):  # fmt: skip
        """Compile the trained classifier to circuits (one overlap test per class).

        The compiled model realises the Born rule of the amplitudes; see
        :mod:`qtn.compilation.models` for the construction and its cost. ``X, y``
        (test data) put the compiled and the classical accuracy in the report;
        ``options`` go to :func:`qtn.compile` for each class state.

        Returns
        -------
        qtn.compilation.models.CompiledClassifier
            ``.predict(X)``, ``.predict_proba(X)``, ``.circuits``, ``.report``,
            ``.to_qiskit()``.
        """
        from qtn.compilation.models import compile_classifier

        check_is_fitted(self)
        if self._fmap().name != "trigonometric":
            raise ValueError(
                f"to_circuit encodes pixels with RY(pi x), the trigonometric feature map; "
                f"this model uses feature_map={self.feature_map!r}"
            )
        if self._output() != "born":
            warnings.warn(
                f"to_circuit: the compiled circuits predict by the Born rule |f_l(x)|^2, but "
                f"this model (loss={self.loss!r}) predicts by the softmax of signed amplitudes; "
                "the two can disagree (compare report.metrics['accuracy'] with "
                "'classical_accuracy'). Train with loss='nll' or 'mse' for a faithful circuit",
                UserWarning,
                stacklevel=2,
            )
        return compile_classifier(
            self.params_.network, self.classes_, method=method, reuse=reuse,
            transform=lambda Z: self._transform(self._check_X(Z)), X=X, y=y,
            classical_predict=self.predict, **options,
        )  # fmt: skip

    @classmethod
    def from_quimb(cls, mps, *, classes, log_temp: float = 0.0, **params):
        """A fitted classifier from a quimb MPS with a label index (inverse of :meth:`to_quimb`).

        Parameters
        ----------
        mps
            A quimb ``MatrixProductState`` whose one tensor carries the index
            ``"label"`` (as :meth:`to_quimb` writes it), or a list of per-class
            ``MatrixProductState`` (as ``to_quimb(per_class=True)`` writes them).
        classes
            The class labels, one per value of the label index, in order.
        log_temp
            Log of the softmax temperature (``output="softmax"``; quimb does not carry it).
        **params
            Other estimator parameters (``feature_map``, ``output``, ...). ``bond_dim``
            defaults to the largest bond, ``label_site`` to where the label index sits;
            a physical dimension other than 2 selects ``feature_map="spin_coherent"``
            with that ``feature_dim`` unless given.

        Returns
        -------
        MPSClassifier
            Fitted: ``predict``, ``predict_proba`` (temperature 1), ``save`` and
            ``to_quimb`` work; ``n_features_in_`` is the number of sites.

        Examples
        --------
        >>> q = clf.to_quimb()  # doctest: +SKIP
        >>> clone = MPSClassifier.from_quimb(q, classes=clf.classes_)  # doctest: +SKIP
        """
        from qtn.models import from_quimb

        net = from_quimb(mps)
        if net.n_labels is None:
            raise ValueError(
                "mps has no index named 'label': pass an MPS from MPSClassifier.to_quimb() or "
                "a list of per-class MPS"
            )
        classes = np.asarray(classes)
        if classes.ndim != 1 or len(classes) != net.n_labels:
            raise ValueError(
                f"classes must list {net.n_labels} labels (the size of the 'label' index), "
                f"got {classes.shape[0] if classes.ndim == 1 else classes.shape}"
            )
        if len(np.unique(classes)) != len(classes):
            raise ValueError(f"classes must be distinct, got {classes.tolist()}")
        d = net.phys_dim
        kw = {"bond_dim": net.bond_dim, "label_site": net.center_site}
        if d != 2 and "feature_map" not in params:
            kw.update(feature_map="spin_coherent", feature_dim=d)
        est = cls(**{**kw, **params})
        est._validate_params()
        dtype = np.dtype(est.dtype)
        est.params_ = ClassifierParams(
            MPS(*(np.asarray(a, dtype) for a in (net.left, net.center, net.right))),
            np.asarray(log_temp, dtype),
        )
        est.n_features_in_ = net.n_sites
        est.classes_ = classes
        est.history_, est.n_iter_, est.temperature_, est.scaler_ = [], 0, 1.0, None
        est.fit_info_ = {"source": "quimb"}
        est._check_loaded({})
        return est

    def to_quimb(self, *, per_class: bool = False):
        """The trained MPS as quimb ``MatrixProductState`` (see :func:`qtn.models.to_quimb`)."""
        from qtn.models import to_quimb

        check_is_fitted(self)
        return to_quimb(self.params_.network, per_class=per_class)

    def entanglement_entropy(self) -> np.ndarray:
        """Von Neumann entropy across each bond of the trained MPS (label leg included)."""
        from qtn.models import entanglement_entropy

        check_is_fitted(self)
        return entanglement_entropy(self.params_.network)

    def plot_entanglement(self, ax=None):
        """Plot :meth:`entanglement_entropy` against bond index; returns the Axes."""
        from qtn.models import plot_entanglement

        return plot_entanglement(self.entanglement_entropy(), ax=ax, bond_dim=self.bond_dim)
