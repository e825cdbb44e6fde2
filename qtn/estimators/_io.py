"""Low-level model files: one ``.npz`` (no pickle) with a JSON header, written atomically.

The schema of the header (what each field holds, and its checks on load) lives
in :mod:`qtn.estimators.base`.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from qtn._version import __version__
from qtn.errors import FormatError

FORMAT_VERSION = 2


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
