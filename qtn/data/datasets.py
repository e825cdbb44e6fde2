"""Dataset loaders: scikit-learn digits, MNIST, Fashion-MNIST and bars-and-stripes.

Where the MNIST-family loaders look, in order:

1. the ``data_dir`` argument;
2. the ``QTN_DATA_DIR`` environment variable;
3. the per-user cache, ``$XDG_CACHE_HOME/qtn`` (default ``~/.cache/qtn``).

In each directory the four IDX files may sit directly in it or in a
subdirectory named after the dataset (``mnist/``, ``fashion-mnist/``), so
``QTN_DATA_DIR=/data`` finds ``/data/mnist/train-images-idx3-ubyte.gz``.

MNIST and Fashion-MNIST use the same four file names, so a directory counts
as holding a dataset only when its files' MD5 checksums are that dataset's
(:func:`locate_dataset`). Files that are another dataset's are skipped (and
never called corrupted); files that match no known checksum are reported as
corrupted. With ``download=True`` missing files are fetched into the cache (or into
``data_dir`` when given) and verified against their published MD5.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtn.data._idx import download_verified, md5sum, read_idx_gz, verify_md5
from qtn.errors import DataIntegrityError, DataNotFoundError

__all__ = [
    "load_digits",
    "load_mnist",
    "load_fashion_mnist",
    "bars_and_stripes",
    "default_cache_dir",
    "find_dataset",
    "locate_dataset",
    "identify_file",
    "DatasetLocation",
    "IDX_DATASETS",
]


def default_cache_dir() -> Path:
    """The per-user cache directory qtn downloads into: ``$XDG_CACHE_HOME/qtn``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "qtn"


@dataclass(frozen=True)
class IdxDataset:
    """Static description of an MNIST-style dataset: file names, checksums, mirrors."""

    name: str
    subdirs: tuple[str, ...]
    files: dict[str, tuple[str, str, tuple[int, ...]]]  # key -> (filename, md5, shape)
    mirrors: tuple[str, ...]


_MNIST = IdxDataset(
    name="mnist",
    subdirs=("mnist", "MNIST"),
    files={
        "train_images": (
            "train-images-idx3-ubyte.gz",
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            (60000, 28, 28),
        ),
        "train_labels": (
            "train-labels-idx1-ubyte.gz",
            "d53e105ee54ea40749a09fcbcd1e9432",
            (60000,),
        ),
        "test_images": (
            "t10k-images-idx3-ubyte.gz",
            "9fb629c4189551a2d022fa330f9573f3",
            (10000, 28, 28),
        ),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", (10000,)),
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)

_FASHION = IdxDataset(
    name="fashion-mnist",
    subdirs=("fashion-mnist", "fashion_mnist", "FashionMNIST"),
    files={
        "train_images": (
            "train-images-idx3-ubyte.gz",
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            (60000, 28, 28),
        ),
        "train_labels": (
            "train-labels-idx1-ubyte.gz",
            "25c81989df183df01b3e8a0aad5dffbe",
            (60000,),
        ),
        "test_images": (
            "t10k-images-idx3-ubyte.gz",
            "bef4ecab320f06d8554ea6380940ec79",
            (10000, 28, 28),
        ),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", (10000,)),
    },
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
)

IDX_DATASETS: dict[str, IdxDataset] = {"mnist": _MNIST, "fashion-mnist": _FASHION}


def _search_dirs(spec: IdxDataset, data_dir: str | os.PathLike | None) -> list[Path]:
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    env = os.environ.get("QTN_DATA_DIR")
    if env:
        roots.append(Path(env))
    roots.append(default_cache_dir())
    dirs: list[Path] = []
    for root in roots:
        dirs.append(root)
        dirs.extend(root / sub for sub in spec.subdirs)
    return dirs


_MD5_CACHE: dict[tuple, str] = {}


def _md5(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _MD5_CACHE:
        _MD5_CACHE[key] = md5sum(path)
    return _MD5_CACHE[key]


def identify_file(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(dataset, key)`` of a file whose MD5 is a known dataset file's, else None.

    Examples
    --------
    >>> identify_file("mnist/train-images-idx3-ubyte.gz")  # doctest: +SKIP
    ('mnist', 'train_images')
    """
    digest = _md5(Path(path))
    for name, spec in IDX_DATASETS.items():
        for key, (_, md5, _) in spec.files.items():
            if md5 == digest:
                return name, key
    return None


@dataclass(frozen=True)
class DatasetLocation:
    """Where a dataset's files were looked for, identified by checksum.

    ``found``: the first directory whose four files all have the dataset's MD5
    (None if none). ``others``: ``(directory, dataset)`` for directories holding
    files of the same names that are *another* dataset's. ``corrupted``:
    ``(file, md5)`` for files of the right name that match no known checksum.
    """

    name: str
    found: Path | None
    others: tuple[tuple[Path, str], ...]
    corrupted: tuple[tuple[Path, str], ...]
    searched: tuple[Path, ...]


def locate_dataset(name: str, data_dir: str | os.PathLike | None = None) -> DatasetLocation:
    """Look for dataset ``name`` in the search order, identifying files by their MD5."""
    spec = _spec(name)
    others, corrupted, searched = [], [], _search_dirs(spec, data_dir)
    for d in searched:
        files = [d / fn for fn, _, _ in spec.files.values()]
        if not all(f.is_file() for f in files):
            continue
        ids = [identify_file(f) for f in files]
        if all(i == (name, key) for i, key in zip(ids, spec.files)):
            return DatasetLocation(name, d, tuple(others), tuple(corrupted), tuple(searched))
        owners = {i[0] for i in ids if i is not None and i[0] != name}
        if owners:
            others.append((d, sorted(owners)[0]))
        corrupted += [(f, _md5(f)) for f, i in zip(files, ids) if i is None]
    return DatasetLocation(name, None, tuple(others), tuple(corrupted), tuple(searched))


def find_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first directory holding all four files of dataset ``name``, verified by MD5, or None.

    Files of the same names that belong to another dataset (MNIST's in a
    directory searched for Fashion-MNIST) do not count.
    """
    return locate_dataset(name, data_dir).found


def _owner(path: Path) -> str | None:
    if not path.is_file():
        return None
    ident = identify_file(path)
    return None if ident is None else ident[0]


def _spec(name: str) -> IdxDataset:
    try:
        return IDX_DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; valid names: {sorted(IDX_DATASETS)}") from None


def _load_idx_dataset(
    name: str,
    data_dir: str | os.PathLike | None,
    download: bool,
    mirrors: tuple[str, ...] | list[str] | None,
    progress: bool,
):
    spec = _spec(name)
    loc = locate_dataset(name, data_dir)
    found = loc.found
    if found is None:
        if loc.corrupted and not download:
            path, got = loc.corrupted[0]
            raise DataIntegrityError(
                f"checksum mismatch for {path}: MD5 is {got}, which is no file of "
                f"{', '.join(IDX_DATASETS)}. The file is corrupted or truncated; delete it and "
                f"download it again (download=True) or copy a good copy into place."
            )
        notes = "".join(
            f"\n{d} holds {other} files (identified by MD5), not {name}; put {name} in "
            f"{d / spec.subdirs[0]} or another directory"
            for d, other in loc.others
        )
        if not download:
            looked = "\n  ".join(str(d) for d in loc.searched)
            raise DataNotFoundError(
                f"{name} not found. qtn looked for "
                f"{', '.join(fn for fn, _, _ in spec.files.values())} in:\n  {looked}{notes}\n"
                f"Provide the data with load_{name.replace('-', '_')}(data_dir=...), "
                "the QTN_DATA_DIR environment variable, or download=True to fetch "
                "it (with MD5 verification) into the cache."
            )
        target = Path(data_dir) if data_dir is not None else default_cache_dir() / spec.subdirs[0]
        if any(_owner(target / fn) not in (None, name) for fn, _, _ in spec.files.values()):
            target = target / spec.subdirs[0]  # never overwrite another dataset's files
        for fn, md5, _ in spec.files.values():
            if (target / fn).is_file() and _owner(target / fn) == name:
                continue
            download_verified(fn, md5, target, mirrors or spec.mirrors, progress=progress)
        found = target
    arrays = {}
    for key, (fn, md5, shape) in spec.files.items():
        verify_md5(found / fn, md5)
        arrays[key] = read_idx_gz(found / fn, shape)
    scale = np.float32(1.0 / 255.0)
    return (
        (
            arrays["train_images"].astype(np.float32) * scale,
            arrays["train_labels"].astype(np.int64),
        ),
        (arrays["test_images"].astype(np.float32) * scale, arrays["test_labels"].astype(np.int64)),
    )


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = False,
    mirrors: list[str] | None = None,
    progress: bool = True,
):
    """Load MNIST from the four gzipped IDX files, verified by MD5.

    Parameters
    ----------
    data_dir
        Directory holding the files (directly or in ``mnist/``). If None, the
        ``QTN_DATA_DIR`` environment variable and then the per-user cache are tried.
    download
        Fetch missing files from the public mirrors (or ``mirrors``) into
        ``data_dir`` or the cache, verifying MD5 before an atomic rename.
    mirrors
        Base URLs to try instead of the built-in public mirrors.
    progress
        Show a tqdm bar while downloading.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        Images as float32 arrays of shape (n, 28, 28) in [0, 1]; labels int64.

    Raises
    ------
    DataNotFoundError
        The files are not present and ``download`` is False; the message lists
        where qtn looked.
    DataIntegrityError
        A file fails its checksum or does not parse.

    Examples
    --------
    >>> (X, y), (Xt, yt) = qtn.data.load_mnist("/data/mnist")  # doctest: +SKIP
    >>> X.shape
    (60000, 28, 28)
    """
    return _load_idx_dataset("mnist", data_dir, download, mirrors, progress)


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = False,
    mirrors: list[str] | None = None,
    progress: bool = True,
):
    """Load Fashion-MNIST (Xiao et al. 2017, arXiv:1708.07747); same contract as :func:`load_mnist`.

    The files may sit in ``data_dir`` directly or in ``fashion-mnist/``.
    """
    return _load_idx_dataset("fashion-mnist", data_dir, download, mirrors, progress)


def load_digits(*, flatten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits (1797 samples, 10 classes).

    Parameters
    ----------
    flatten
        Return X of shape (n, 64) in row-major pixel order instead of (n, 8, 8).

    Returns
    -------
    X, y
        float32 pixels scaled from 0..16 to [0, 1], and int64 labels.

    Examples
    --------
    >>> X, y = qtn.data.load_digits()
    >>> X.shape, float(X.max())
    ((1797, 8, 8), 1.0)
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    X = (bunch.images / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    if flatten:
        X = X.reshape(len(X), -1)
    return X, y


def bars_and_stripes(rows: int, cols: int, *, flatten: bool = False) -> np.ndarray:
    """The exact bars-and-stripes (BAS) dataset: all images with constant rows or constant columns.

    There are ``2**rows + 2**cols - 2`` distinct patterns (the all-0 and all-1
    images are both bars and stripes, and are listed once). Returned sorted by
    their row-major bit string, as uint8 images.

    Parameters
    ----------
    rows, cols
        Image size, each at least 1.
    flatten
        Return shape (n, rows*cols) in row-major order instead of (n, rows, cols).

    Examples
    --------
    >>> qtn.data.bars_and_stripes(2, 2).shape
    (6, 2, 2)
    """
    for arg, v in (("rows", rows), ("cols", cols)):
        if not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{arg} must be a positive integer, got {v!r}")
    if rows * cols > 30:
        raise ValueError(f"rows*cols must be at most 30, got {rows}*{cols}={rows * cols}")
    r_bits = (np.arange(2**rows)[:, None] >> np.arange(rows)[::-1]) & 1  # (2^rows, rows)
    c_bits = (np.arange(2**cols)[:, None] >> np.arange(cols)[::-1]) & 1
    stripes = np.repeat(r_bits[:, :, None], cols, axis=2)  # each row constant
    bars = np.repeat(c_bits[:, None, :], rows, axis=1)  # each column constant
    imgs = np.unique(np.concatenate([stripes, bars]).reshape(-1, rows * cols), axis=0)
    imgs = imgs.astype(np.uint8)
    return imgs if flatten else imgs.reshape(-1, rows, cols)
