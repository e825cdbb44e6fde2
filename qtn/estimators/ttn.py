"""The tree tensor network classifier as a scikit-learn estimator.

A thin subclass of :class:`qtn.estimators.base.TNClassifier`: the model is a
:class:`qtn.models.TTN` with the label leg at the root, its forward pass is
:func:`qtn.models.ttn_classifier_forward` on leaf-ordered feature vectors
(:class:`qtn.models.TreeLayout`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from sklearn.utils.validation import check_is_fitted

from qtn.estimators.base import TNClassifier
from qtn.models import (
    TTN,
    ClassifierParams,
    TreeLayout,
    init_ttn_classifier,
    tree_layout,
    ttn_classifier_forward,
)

__all__ = ["TTNClassifier"]


class TTNClassifier(TNClassifier):
    """Binary tree tensor network classifier.

    Each feature is mapped to a local vector phi(x_j) (``feature_map``); the
    vectors sit on the leaves of a binary tree (a quadtree grouping of 2x2
    pixel blocks with ``image_shape``, else a balanced tree; sizes that are not
    powers of two are padded, see :func:`qtn.models.tree_layout`). Each tree
    tensor contracts its two children into a bond of dimension at most
    ``bond_dim``; the root carries the label index, and f_l(x) is its output.
    The forward pass runs level by level, all tensors of a level at once.

    Parameters
    ----------
    bond_dim
        Maximum bond dimension chi (>= 1).
    image_shape
        (height, width) of the images whose flattened (row-major) pixels are
        the features, for the quadtree grouping; None: a balanced 1D tree over
        the features in their given order.
    method
        ``"gradient"`` (jitted optax epochs, as :class:`qtn.MPSClassifier`) or
        ``"sweep"`` (one tree tensor at a time, depth-first from the root, with
        cached environments; see :mod:`qtn.training.tree_sweep`).
    init_std
        Noise added to the near-constant initial tensors (default 0.1: trees
        need more than an MPS, whose near-identity cores pass information on).
    learning_rate
        Adam step size. Default: ``min(1e-3, 0.032 / bond_dim)`` for gradient
        training, 1e-2 for the local steps of sweeps.

    Every other parameter (``loss``, ``output``, ``feature_map``, ``feature_dim``,
    ``optimizer``, ``clip_norm``, ``lr_schedule``, ``batch_size``, ``max_epochs``,
    ``l2``, ``local_steps``, ``early_stopping``, ``validation_fraction``,
    ``n_iter_no_change``, ``tol``, ``dtype``, ``scaling``, ``random_state``,
    ``verbose``, ``max_seconds``, ``devices``) means what it means for
    :class:`qtn.MPSClassifier`.

    Attributes
    ----------
    params_
        :class:`qtn.models.ClassifierParams`: ``params_.network`` is the trained
        :class:`qtn.models.TTN` (label leg at the root), ``params_.log_temp`` the
        softmax log-temperature.
    layout_
        The :class:`qtn.models.TreeLayout`: which feature sits on which leaf.
    classes_, n_features_in_, history_, n_iter_, fit_info_
        As for :class:`qtn.MPSClassifier`.

    Examples
    --------
    >>> from qtn import TTNClassifier, load_digits
    >>> X, y = load_digits(flatten=True)
    >>> clf = TTNClassifier(bond_dim=8, image_shape=(8, 8), max_epochs=5, random_state=0)
    >>> clf.fit(X, y).predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        bond_dim: int = 16,
        *,
        image_shape: tuple | None = None,
        method: str = "gradient",
        loss: str = "cross_entropy",
        output: str = "auto",
        feature_map: str = "trigonometric",
        feature_dim: int | None = None,
        learning_rate: float | None = None,
        optimizer=None,
        clip_norm: float | None = 1.0,
        lr_schedule: str = "cosine",
        batch_size: int = 64,
        max_epochs: int | None = None,
        l2: float = 0.0,
        local_steps: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        tol: float = 1e-4,
        init_std: float = 0.1,
        dtype: str = "float32",
        scaling: str | None = None,
        random_state=None,
        verbose: int = 0,
        max_seconds: float | None = None,
        devices=None,
    ):
        self.bond_dim = bond_dim
        self.image_shape = image_shape
        self.method = method
        self.loss = loss
        self.output = output
        self.feature_map = feature_map
        self.feature_dim = feature_dim
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.clip_norm = clip_norm
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.l2 = l2
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
        self.devices = devices

    _file_kind = "qtn.TTNClassifier"
    _forward = staticmethod(ttn_classifier_forward)

    def _config_overrides(self) -> dict:
        methods = {"gradient": "gradient", "sweep": "tree_sweep"}
        return {"method": self._choose_method(self.method, methods)}

    def _validate_params(self):
        config = super()._validate_params()
        v = self.bond_dim
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"bond_dim must be an integer >= 1, got {v!r}")
        if self.image_shape is not None:
            shp = self.image_shape
            if (
                not isinstance(shp, tuple | list)
                or len(shp) != 2
                or not all(isinstance(s, int | np.integer) and s >= 1 for s in shp)
            ):
                raise ValueError(f"image_shape must be None or (height, width), got {shp!r}")
        return config

    def _layout(self) -> TreeLayout:
        return tree_layout(int(self.n_features_in_), self.image_shape)

    def _features(self, X, dtype) -> np.ndarray:
        return self._layout().to_leaves(super()._features(X, dtype))

    def _init_params(self, key, n_features, n_outputs, phys_dim, dtype):
        self.layout_ = tree_layout(n_features, self.image_shape)
        return init_ttn_classifier(
            key, self.layout_.n_leaves, n_outputs, self.bond_dim, phys_dim,
            padded=self.layout_.padded, init_std=float(self.init_std), dtype=jnp.dtype(dtype),
        )  # fmt: skip

    def _params_template(self):
        z = np.zeros(())
        return ClassifierParams(TTN(tuple(z for _ in range(self._layout().n_levels))), z)

    def _check_loaded(self, header: dict) -> None:
        self.layout_ = self._layout()
        ttn = self.params_.network
        if ttn.n_leaves != self.layout_.n_leaves:
            raise ValueError(
                f"the TTN has {ttn.n_leaves} leaves but n_features_in={self.n_features_in_} "
                f"needs {self.layout_.n_leaves}"
            )
        if ttn.n_labels != len(self.classes_):
            raise ValueError(f"the TTN has {ttn.n_labels} labels but {len(self.classes_)} classes")
        if ttn.phys_dim != self._fmap().dim:
            raise ValueError(
                f"the TTN has physical dimension {ttn.phys_dim}, the feature map {self._fmap().dim}"
            )
        if ttn.bond_dim > self.bond_dim:
            raise ValueError(
                f"the TTN has bond dimension {ttn.bond_dim} > bond_dim {self.bond_dim}"
            )

    # ------------------------------------------------------------------ interop

    def to_quimb(self):
        """The trained TTN as a quimb ``TensorNetwork`` (see :func:`qtn.models.ttn_to_quimb`):
        physical indices ``k{feature}``, padding contracted away, the root's ``label`` index."""
        from qtn.models import ttn_to_quimb

        check_is_fitted(self)
        return ttn_to_quimb(self.params_.network, self.layout_)

    def entanglement_entropy(self) -> list[np.ndarray]:
        """Entropy across every tree bond, level by level (label counted with the rest)."""
        from qtn.models import ttn_entanglement_entropy

        check_is_fitted(self)
        return ttn_entanglement_entropy(self.params_.network)
