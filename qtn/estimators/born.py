"""The Born machine (Han et al., arXiv:1709.01662) on an MPS or a TTN, as an estimator.

p(x) = |psi(x)|^2 / Z over discrete data. ``structure="mps"`` trains by the
two-site NLL sweeps of Han et al. (``method="sweep"``, the default there) or by
gradients; ``structure="ttn"`` (Cheng et al., arXiv:1901.02217) by gradients.
Sampling is exact and batched (:mod:`qtn.models.sampling`).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.utils.validation import check_is_fitted

from qtn._jax import check_dtype, x64_if
from qtn.estimators.generative import TNGenerative, check_n_samples
from qtn.models import (
    MPS,
    TTN,
    TreeLayout,
    assignment_weights,
    born_forward,
    init_mps,
    init_ttn,
    mps_log_marginal,
    mps_sample,
    right_canonicalize,
    tree_layout,
    ttn_born_forward,
    ttn_canonicalize,
    ttn_log_marginal,
    ttn_sample,
)

__all__ = ["BornMachine"]

STRUCTURES = ("mps", "ttn")
_MAX_MARGINAL = 2**16
_MARGINAL_MEMORY = 256 * 2**20  # bytes of per-row environments per call (trees)


class BornMachine(TNGenerative):
    """Born machine: a tensor network state as a probability distribution, p(x) = |psi(x)|^2 / Z.

    Parameters
    ----------
    structure
        ``"mps"`` (a chain over the features in their given order; Han et al.,
        arXiv:1709.01662) or ``"ttn"`` (a binary tree; with ``image_shape`` a
        quadtree grouping of 2x2 pixel blocks, see :func:`qtn.models.tree_layout`).
    bond_dim
        Maximum bond dimension (the ``max_bond`` of the sweeps' truncated SVDs).
    method
        ``"sweep"`` (MPS only: two-site NLL updates with truncated SVD, the MPS
        kept canonical so Z is exact at every step; bond dimensions adapt up to
        ``bond_dim`` with ``cutoff``), ``"gradient"`` (jitted optax epochs of the
        exact NLL, Z included), or ``"auto"``: sweeps for an MPS, gradients for a tree.
    n_categories
        Number of values d of each variable; data are integers in range(d).
    image_shape
        (height, width) for the quadtree grouping of a tree (``structure="ttn"``).
    learning_rate
        Sweeps: step of the local gradient descent (default 0.05). Gradients:
        the Adam step (default ``min(1e-3, 0.032 / bond_dim)``).
    local_steps
        Sweeps: gradient steps per bond.
    cutoff
        Sweeps: singular values below ``cutoff`` times the largest are dropped.
    optimizer, clip_norm, lr_schedule, batch_size, l2
        Gradient training, as for :class:`qtn.MPSClassifier`.
    max_epochs
        Epochs (one sweep = the centre from the first site to the last and back);
        default 10 sweeps or 30 gradient epochs.
    early_stopping, validation_fraction, n_iter_no_change, tol
        Hold out ``validation_fraction`` of X and stop when its NLL has not
        improved by ``tol`` for ``n_iter_no_change`` epochs (best parameters kept).
    init_std
        Noise added to the initial state, which is (almost) the uniform
        distribution. None: 0.01 for an MPS (its near-identity cores pass
        information on), 0.1 for a tree (near-constant tensors need more noise to
        break the symmetry: on 3x3 bars and stripes, 0.01 left gradient training
        0.2-0.5 nats above the optimum after 300 epochs, 0.1 reached it).
    dtype, random_state, verbose, max_seconds
        As for :class:`qtn.MPSClassifier` (``verbose=2`` also shows a bar per sweep).
    devices
        Data-parallel gradient training, as for :class:`qtn.MPSClassifier`; it needs
        ``method="gradient"`` (or a tree, whose ``"auto"`` is gradients): sweeps run on
        one device and refuse it.

    Attributes
    ----------
    params_
        The trained state, normalised: an :class:`qtn.MPS` in canonical form with
        its centre at site 0 (every other core right-isometric), or a
        :class:`qtn.models.TTN` in canonical form toward the root.
    mps_, tree_
        The same, by structure (``mps_`` for ``"mps"``, ``tree_`` for ``"ttn"``).
    layout_
        For a tree: the :class:`qtn.models.TreeLayout` (feature on each leaf).
    n_features_in_, history_, n_iter_, fit_info_
        As for :class:`qtn.MPSClassifier`; ``history_`` losses are NLLs in nats,
        ``fit_info_`` holds ``bond_ranks`` and ``max_discarded_weight`` after sweeps.

    Examples
    --------
    >>> from qtn.data import bars_and_stripes
    >>> X = bars_and_stripes(3, 3, flatten=True)                # 14 patterns
    >>> born = BornMachine(bond_dim=16, random_state=0).fit(X)
    >>> round(born.nll(X), 2)                                   # ln 14 = 2.64
    2.64
    >>> born.sample(5, seed=0).shape
    (5, 9)
    """

    def __init__(
        self,
        structure: str = "mps",
        bond_dim: int = 16,
        *,
        method: str = "auto",
        n_categories: int = 2,
        image_shape: tuple | None = None,
        learning_rate: float | None = None,
        local_steps: int = 10,
        cutoff: float = 1e-10,
        optimizer=None,
        clip_norm: float | None = 1.0,
        lr_schedule: str = "cosine",
        batch_size: int = 64,
        max_epochs: int | None = None,
        l2: float = 0.0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        tol: float = 1e-4,
        init_std: float | None = None,
        dtype: str = "float32",
        random_state=None,
        verbose: int = 0,
        max_seconds: float | None = None,
        devices=None,
    ):
        self.structure = structure
        self.bond_dim = bond_dim
        self.method = method
        self.n_categories = n_categories
        self.image_shape = image_shape
        self.learning_rate = learning_rate
        self.local_steps = local_steps
        self.cutoff = cutoff
        self.optimizer = optimizer
        self.clip_norm = clip_norm
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.l2 = l2
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.init_std = init_std
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.max_seconds = max_seconds
        self.devices = devices

    _file_kind = "qtn.BornMachine"
    _init_std_default = {"mps": 1e-2, "ttn": 0.1}

    @property
    def _forward(self):
        return ttn_born_forward if self.structure == "ttn" else born_forward

    # ------------------------------------------------------------------ parameters

    def _config_overrides(self) -> dict:
        if self.structure not in STRUCTURES:
            raise ValueError(f"unknown structure {self.structure!r}; valid: {list(STRUCTURES)}")
        if self.structure == "mps":
            # one feature forms no bond: "auto" then trains by gradients
            one = getattr(self, "n_features_in_", 2) < 2
            auto = "gradient" if one else "born_sweep"
            methods = {"auto": auto, "sweep": "born_sweep", "gradient": "gradient"}
        else:
            methods = {"auto": "gradient", "gradient": "gradient"}
            if self.method == "sweep":
                raise ValueError(
                    "method='sweep' trains structure='mps' (two-site sweeps keep the chain "
                    "canonical); use method='gradient' for structure='ttn'"
                )
        return {"method": self._choose_method(self.method, methods), "loss": "unsupervised_nll"}

    def _validate_params(self):
        config = super()._validate_params()
        v = self.bond_dim
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"bond_dim must be an integer >= 1, got {v!r}")
        if self.image_shape is not None:
            if self.structure != "ttn":
                raise ValueError("image_shape applies to structure='ttn' (the quadtree grouping)")
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
        phi = super()._features(X, dtype)
        return self._layout().to_leaves(phi) if self.structure == "ttn" else phi

    def _init_params(self, key, n_features, n_outputs, phys_dim, dtype):
        std = self._init_std_default.get(self.structure) if self.init_std is None else self.init_std
        std, dt = float(std), jnp.dtype(dtype)
        if self.structure == "mps":
            if n_features < 2 and self.method == "sweep":
                raise ValueError(
                    f"method='sweep' needs at least 2 features (sites) to form a bond; X has "
                    f"n_features={n_features} (use method='gradient')"
                )
            return init_mps(key, n_features, self.bond_dim, phys_dim, init_std=std, dtype=dt)
        self.layout_ = tree_layout(n_features, self.image_shape)
        return init_ttn(key, self.layout_.n_leaves, self.bond_dim, phys_dim, init_std=std,
                        padded=self.layout_.padded, dtype=dt)  # fmt: skip

    def _finalize(self, params):
        if self.structure == "mps":
            return right_canonicalize(params)
        return ttn_canonicalize(params, normalize=True)

    def _params_template(self):
        z = np.zeros(())
        if self.structure == "mps":
            return MPS(z, z, z)
        return TTN(tuple(z for _ in range(self._layout().n_levels)))

    def _check_loaded(self, header: dict) -> None:
        p = self.params_
        d = self._n_categories()
        if self.structure == "mps":
            if p.n_sites != self.n_features_in_:
                raise ValueError(
                    f"the MPS has {p.n_sites} sites but n_features_in is {self.n_features_in_}"
                )
        else:
            self.layout_ = self._layout()
            if p.n_leaves != self.layout_.n_leaves:
                raise ValueError(f"the TTN has {p.n_leaves} leaves, the layout needs "
                                 f"{self.layout_.n_leaves}")  # fmt: skip
        if p.n_labels is not None:
            raise ValueError("a Born machine's network has no label leg")
        if p.phys_dim != d:
            raise ValueError(f"the network has physical dimension {p.phys_dim}, n_categories {d}")
        if p.bond_dim > self.bond_dim:
            raise ValueError(f"the network has bond dimension {p.bond_dim} > bond_dim "
                             f"{self.bond_dim}")  # fmt: skip

    # ------------------------------------------------------------------ the trained state

    @property
    def mps_(self) -> MPS:
        """The trained :class:`qtn.MPS` (``structure="mps"``): unit norm, centre at site 0."""
        check_is_fitted(self)
        if self.structure != "mps":
            raise AttributeError("mps_ exists for structure='mps'; this model has tree_")
        return self.params_

    @property
    def tree_(self) -> TTN:
        """The trained :class:`qtn.models.TTN` (``structure="ttn"``): unit norm, canonical toward
        the root (``tree_.levels()`` lists the tensors level by level; see ``layout_``)."""
        check_is_fitted(self)
        if self.structure != "ttn":
            raise AttributeError("tree_ exists for structure='ttn'; this model has mps_")
        return self.params_

    # ------------------------------------------------------------------ sampling

    def _key(self, seed):
        if isinstance(seed, jax.Array):
            return seed
        rng = np.random.default_rng(seed)
        return jax.random.key(int(rng.integers(np.iinfo(np.int32).max)))

    def _draw(self, n, key, given=None) -> np.ndarray:
        dtype = check_dtype(self.dtype)
        with x64_if(dtype):
            if self.structure == "mps":
                return mps_sample(self.params_, n, key, given=given, canonical=True)
            lay = self.layout_
            leaf_given = None if given is None else lay.to_leaf_values(given, fill=0)
            x = ttn_sample(self.params_, n, key, given=leaf_given, padded=lay.padded)
            return lay.from_leaf_values(x)

    def sample(self, n_samples: int | None = None, seed=None, *, given=None) -> np.ndarray:
        """Exact i.i.d. samples x ~ p(x), shape (n_samples, n_features) int64.

        Parameters
        ----------
        n_samples
            How many (>= 1). Default: 1, or the number of rows of a 2D ``given``.
        seed
            An int, a numpy ``Generator``, a JAX key, or None (fresh randomness).
        given
            Optional values to condition on: shape (n_features,) or (n_samples,
            n_features), a category where the value is fixed, -1 where it is
            sampled. Fixed sites keep their values; the others follow the exact
            conditional distribution p(x_free | x_fixed).

        Raises
        ------
        ValueError
            Bad arguments, or fixed values of probability zero under the model.
        """
        check_is_fitted(self)
        if n_samples is None:
            rows = np.shape(given)
            n_samples = rows[0] if given is not None and len(rows) == 2 else 1
        n = check_n_samples(n_samples)
        g = None if given is None else self._given(given, n)
        x = self._draw(n, self._key(seed), g)
        return np.asarray(x, dtype=np.int64)

    def inpaint(self, X, missing=None, *, seed=None) -> np.ndarray:
        """Fill the missing entries of each row of X by sampling from p(missing | the rest).

        Parameters
        ----------
        X
            (n, n_features) known values (integer categories) where not missing;
            entries at missing positions are ignored (may be -1).
        missing
            A boolean mask ((n_features,) or like X), or site indices; None: the
            entries of X equal to -1.
        seed
            As for :meth:`sample`.

        Returns
        -------
        (n, n_features) int64: X with its missing entries sampled (exact conditionals).
        """
        check_is_fitted(self)
        X = np.asarray(X)
        nf = self.n_features_in_
        if X.ndim != 2 or X.shape[1] != nf or len(X) == 0:
            raise ValueError(f"X must have shape (n, {nf}) with n >= 1, got {X.shape}")
        if missing is None:
            if not np.issubdtype(X.dtype, np.number):
                raise ValueError(f"X must be numeric, got dtype {X.dtype}")
            mask = X == -1
        else:
            mask = self._missing_mask(missing, X.shape)
        known = self._discrete(np.where(mask, 0, X), "X")
        given = np.where(mask, np.int64(-1), known)
        return self.sample(len(X), seed=seed, given=given)

    # ------------------------------------------------------------------ marginals

    def _log_marginal(self, values) -> np.ndarray:
        """log p(fixed values) for rows of values (B, n_features) with -1 for summed sites."""
        d = self._n_categories()
        dtype = check_dtype(self.dtype)
        step = 1024
        if self.structure == "ttn":  # every row keeps its tree of (chi, chi) environments
            per_row = sum(a.shape[0] * a.shape[3] ** 2 for a in self.params_.layers)
            step = int(
                max(1, min(step, _MARGINAL_MEMORY // (4 * per_row * np.dtype(dtype).itemsize)))
            )
        out = []
        with x64_if(dtype):
            for s in range(0, len(values), step):
                part = values[s : s + step]
                if self.structure == "mps":
                    w = assignment_weights(part, d, np.dtype(dtype))
                    out.append(np.asarray(mps_log_marginal(self.params_, w)))
                else:
                    leaf = self.layout_.to_leaf_values(part, fill=0)
                    w = assignment_weights(leaf, d, np.dtype(dtype))
                    out.append(np.asarray(ttn_log_marginal(self.params_, w)))
        return np.concatenate(out).astype(np.float64)

    def marginal(self, sites) -> np.ndarray:
        """The exact joint distribution of the chosen sites, all others summed out.

        Parameters
        ----------
        sites
            Distinct site (feature) indices, at most as many as give 2**16 entries.

        Returns
        -------
        Array of shape (d,) * len(sites): entry (v_1, ..., v_k) is
        p(x_{sites[0]} = v_1, ..., x_{sites[k-1]} = v_k); it sums to 1.
        """
        check_is_fitted(self)
        s = self._check_sites(sites)
        d = self._n_categories()
        if d ** len(s) > _MAX_MARGINAL:
            raise ValueError(
                f"the marginal of {len(s)} sites has {d}**{len(s)} entries; at most "
                f"{_MAX_MARGINAL} are computed (choose fewer sites)"
            )
        combos = np.array(list(itertools.product(range(d), repeat=len(s))), dtype=np.int64)
        values = -np.ones((len(combos), self.n_features_in_), np.int64)
        values[:, s] = combos
        return np.exp(self._log_marginal(values)).reshape((d,) * len(s))

    # ------------------------------------------------------------------ interop

    def entanglement_entropy(self):
        """Entanglement profile: for an MPS the entropy across each of the N-1 bonds (array);
        for a tree a list, level by level, of the entropy across the bond above each node."""
        from qtn.models import entanglement_entropy, ttn_entanglement_entropy

        check_is_fitted(self)
        if self.structure == "mps":
            return entanglement_entropy(self.params_)
        return ttn_entanglement_entropy(self.params_)

    def to_mps(self) -> MPS:
        """The trained state as a :class:`qtn.MPS` (``structure="mps"``), for :func:`qtn.compile`.

        A tree model raises ``ValueError``: compile ``tree_`` or use :meth:`to_circuit`.
        """
        check_is_fitted(self)
        if self.structure != "mps":
            raise ValueError(
                "to_mps needs structure='mps'; this Born machine is a tree: compile born.tree_ "
                "or call born.to_circuit()"
            )
        return self.params_

    def to_circuit(self, method: str = "exact", *, reuse: bool = False, X=None, **options):
        """Compile the trained state to a circuit whose measured qubits sample p(x).

        The state goes through :func:`qtn.compile` (``method`` and ``options`` as
        there); qubit q carries feature q (``structure="mps"``) or leaf position q
        (``"ttn"``: padding leaves are prepared in |0>, ``layout_`` maps leaves to
        features). The report's ``metrics`` add ``kl`` (KL(p_model || p_circuit), nats,
        exact by enumeration up to 20 qubits) and, with test rows ``X``, ``nll`` and
        ``model_nll`` (mean negative log-likelihood under the circuit and the model).

        Parameters
        ----------
        method
            ``"exact"``, ``"layers"`` or ``"aqc"``.
        reuse
            Measure and reset qubits mid-circuit so that the circuit runs on the fewest
            wires (k + 1 for an MPS of bond dimension 2^k).
        X
            Binary test rows (n_samples, n_features) for the NLL metrics.

        Returns
        -------
        (qtn.Circuit, qtn.compilation.CompileReport)
            ``circuit.bind(report.params)`` prepares the compiled state.

        Examples
        --------
        >>> born = BornMachine(bond_dim=4).fit(X_bin)  # doctest: +SKIP
        >>> circuit, report = born.to_circuit("exact", X=X_bin)  # doctest: +SKIP
        >>> report.metrics["kl"] < 1e-9  # doctest: +SKIP
        True
        """
        from qtn.compilation.models import compile_distribution

        check_is_fitted(self)
        if self._n_categories() != 2:
            raise ValueError(
                f"to_circuit needs binary data (one qubit per feature); this model has "
                f"n_categories={self._n_categories()}"
            )
        target = self.params_
        if X is not None:
            X = self._discrete(self._check_X(X))
            if self.structure == "ttn":
                X = self.layout_.to_leaf_values(X, fill=0)
        return compile_distribution(target, method=method, reuse=reuse, X=X, **options)

    def to_quimb(self):
        """The trained state in quimb: a ``MatrixProductState`` (mps) or a ``TensorNetwork``
        (ttn, indices ``k{feature}``, padding contracted away)."""
        from qtn.models import to_quimb, ttn_to_quimb

        check_is_fitted(self)
        if self.structure == "mps":
            return to_quimb(self.params_)
        return ttn_to_quimb(self.params_, self.layout_)
