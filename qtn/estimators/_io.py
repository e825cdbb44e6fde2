"""Model files: one ``.npz`` (no pickle) with a JSON header, written atomically.

:func:`save_npz` / :func:`load_npz` read and write the container;
:class:`PersistenceMixin` gives every estimator ``save`` and ``load`` of any
params pytree with a versioned schema (each leaf's path, shape and dtype),
checked field by field on load.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import jax
import numpy as np
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.validation import check_is_fitted

from qtn._version import __version__
from qtn.errors import FormatError

FORMAT_VERSION = 2
_SCALER_FIELDS = ("min_", "scale_", "data_min_", "data_max_", "data_range_")


def save_npz(path, kind: str, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and a JSON header ``meta`` to ``path`` atomically."""
    path = Path(path)
    header = {"format": kind, "format_version": FORMAT_VERSION, "qtn_version": __version__, **meta}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, __meta__=np.array(json.dumps(header)), **arrays)
    os.replace(tmp, path)
    return path


def load_npz(path, kind: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a file written by :func:`save_npz`; raises FormatError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            if "__meta__" not in z.files:
                raise FormatError(f"{path} is not a qtn model file (no header)")
            header = json.loads(str(z["__meta__"]))
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
            if not isinstance(header, dict):
                raise FormatError(f"{path}: the header is not a JSON object")
    except FormatError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"{path} is not a readable qtn model file ({exc})") from exc
    if header.get("format") != kind:
        raise FormatError(f"{path} holds a {header.get('format')!r}, expected {kind!r}")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FormatError(f"{path}: header field 'format_version' must be an integer >= 1, "
                          f"got {version!r}")  # fmt: skip
    if version > FORMAT_VERSION:
        raise FormatError(
            f"{path} uses file format {version} (written by qtn {header.get('qtn_version')}); "
            f"this qtn {__version__} reads format <= {FORMAT_VERSION}: upgrade qtn"
        )
    return header, arrays


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


class PersistenceMixin:
    """``save`` and ``load`` of every qtn estimator (a base of ``TNEstimator``).

    The estimator provides ``_file_kind``, ``params_``, ``_params_template()``,
    ``_validate_params()`` and ``_check_loaded(header)``; ``_extra_arrays``,
    ``_extra_meta`` and ``_load_extra`` add model-specific fields.
    """

    def _extra_arrays(self) -> dict:
        return {}

    def _load_extra(self, arrays: dict, header: dict) -> None:
        pass

    def save(self, path) -> None:
        """Save the fitted model to ``path`` (an ``.npz``, no pickle); the round trip is bit-exact.

        A custom ``optimizer`` is not saved (it is only needed to continue training), nor
        ``devices`` (the devices of this run; a loaded model has ``devices=None``).
        """
        check_is_fitted(self)
        est_params = {k: v for k, v in self.get_params().items()
                      if k not in ("optimizer", "devices")}  # fmt: skip
        if not isinstance(est_params.get("random_state"), int | type(None)):
            est_params["random_state"] = None
        leaves = jax.tree_util.tree_leaves(self.params_)
        schema = params_schema(self.params_)
        arrays = {f"params/{s['path']}": np.asarray(v) for s, v in zip(schema, leaves)}
        scaler = getattr(self, "scaler_", None)
        if scaler is not None:
            for a in _SCALER_FIELDS:
                arrays["scaler/" + a] = getattr(scaler, a)
        arrays.update(self._extra_arrays())
        meta = {
            "estimator_params": est_params,
            "params_schema": schema,
            "n_features_in": int(self.n_features_in_),
            "history": self.history_,
            "fit_info": {k: v for k, v in self.fit_info_.items() if _jsonable(v)},
            "scaler": scaler is not None,
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
        # files written before scaling="auto" carry no "scaler" field
        has_scaler = header.get("scaler", getattr(est, "scaling", None) == "minmax")
        if not isinstance(has_scaler, bool):
            raise FormatError(f"{path}: header field 'scaler' must be a bool, got {has_scaler!r}")
        est.scaler_ = None
        if has_scaler:
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
