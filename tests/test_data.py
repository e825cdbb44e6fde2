"""Datasets and transforms, including MNIST read from real files and a loopback download."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import qtn
from qtn.data import (
    bars_and_stripes,
    binarize,
    downsample,
    find_dataset,
    flatten_images,
    load_digits,
    load_mnist,
    pixel_order,
    select_classes,
    shift_augment,
    train_val_split,
)
from qtn.data._idx import md5sum

MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    # never read or write the real user cache from tests
    monkeypatch.delenv("QTN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# ---------------------------------------------------------------- digits, BAS


def test_load_digits():
    X, y = load_digits()
    assert X.shape == (1797, 8, 8) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    Xf, _ = load_digits(flatten=True)
    np.testing.assert_array_equal(Xf, X.reshape(1797, 64))


@pytest.mark.parametrize("rows,cols", [(1, 1), (2, 2), (3, 3), (2, 4), (4, 4)])
def test_bars_and_stripes_exact(rows, cols):
    imgs = bars_and_stripes(rows, cols)
    assert imgs.shape == (2**rows + 2**cols - 2 if rows * cols > 1 else 2, rows, cols)
    assert len({im.tobytes() for im in imgs}) == len(imgs)
    for im in imgs:
        rows_const = np.all(im == im[:, :1])
        cols_const = np.all(im == im[:1, :])
        assert rows_const or cols_const
    # every constant-row pattern is present
    assert sum(np.all(im == im[:, :1]) for im in imgs) == 2**rows


def test_bars_and_stripes_bad_input():
    with pytest.raises(ValueError, match="rows"):
        bars_and_stripes(0, 2)
    with pytest.raises(ValueError, match="rows\\*cols"):
        bars_and_stripes(6, 6)


# ---------------------------------------------------------------- transforms


def test_downsample_area_average():
    img = np.arange(16, dtype=np.float64).reshape(4, 4)
    out = downsample(img, 2)
    np.testing.assert_allclose(out, [[2.5, 4.5], [10.5, 12.5]])
    X, _ = load_digits()
    X4 = downsample(X, (4, 4))
    assert X4.shape == (1797, 4, 4)
    np.testing.assert_allclose(X4.mean(), X.mean(), rtol=1e-6)
    with pytest.raises(ValueError, match="size must divide"):
        downsample(X, 3)
    with pytest.raises(ValueError, match="images must have shape"):
        downsample(np.zeros(5), 1)


def test_binarize_and_select():
    X, y = load_digits()
    B = binarize(X, 0.5)
    assert set(np.unique(B).tolist()) <= {0, 1} and B.dtype == np.uint8
    X35, y35 = select_classes(X, y, [3, 5])
    assert set(y35.tolist()) == {3, 5} and len(X35) == 183 + 182
    _, y01 = select_classes(X, y, [5, 3], relabel=True)
    assert np.array_equal(y01 == 0, y35 == 5)
    with pytest.raises(ValueError, match="do not occur"):
        select_classes(X, y, [11])


def test_train_val_split_seeded_stratified():
    X, y = load_digits()
    a = train_val_split(X, y, 0.25, seed=3)
    b = train_val_split(X, y, 0.25, seed=3)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    _, _, ytr, yva = a
    assert len(yva) == 450
    np.testing.assert_allclose(np.bincount(yva) / len(yva), np.bincount(y) / len(y), atol=0.01)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(X, y, 1.5)


def test_shift_augment_moves_pixels_with_zero_fill():
    img = np.zeros((1, 3, 3), np.float32)
    img[0, 1, 1], img[0, 0, 0] = 1.0, 0.5
    Xa, ya = shift_augment(img, np.array([7]))
    assert Xa.shape == (5, 3, 3) and list(ya) == [7] * 5
    np.testing.assert_array_equal(Xa[0], img[0])  # originals first
    # every copy is a translation by one pixel: the centre pixel lands on a neighbour
    centres = sorted(tuple(int(v) for v in np.argwhere(x == 1.0)[0]) for x in Xa[1:])
    assert centres == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert all(np.isclose(x.sum(), 1.0) or np.isclose(x.sum(), 1.5) for x in Xa)
    Xd, _ = shift_augment(np.repeat(img, 2, 0), np.array([0, 1]), shifts=2, diagonal=True)
    assert Xd.shape == (2 * 25, 3, 3)
    with pytest.raises(ValueError, match="labels must have shape"):
        shift_augment(img, np.array([1, 2]))
    with pytest.raises(ValueError, match="shifts must be an integer >= 1"):
        shift_augment(img, np.array([1]), shifts=0)
    with pytest.raises(ValueError, match=r"images must have shape \(n, height, width\)"):
        shift_augment(img[0], np.array([1]))


def test_pixel_orders_are_permutations():
    for kind in ("row", "column", "snake"):
        p = pixel_order(5, 7, kind)
        assert sorted(p.tolist()) == list(range(35))
    snake = pixel_order(3, 3, "snake")
    # consecutive snake sites are grid neighbours
    r, c = np.divmod(snake, 3)
    assert np.all(np.abs(np.diff(r)) + np.abs(np.diff(c)) == 1)
    img = np.arange(6).reshape(1, 2, 3)
    assert flatten_images(img, "snake").tolist() == [[0, 1, 2, 5, 4, 3]]
    with pytest.raises(ValueError, match="valid kinds"):
        pixel_order(2, 2, "hilbert")


# ---------------------------------------------------------------- MNIST


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return load_mnist(mnist_dir)


def test_mnist_shapes_and_counts(mnist):
    (X, y), (Xt, yt) = mnist
    assert X.shape == (60000, 28, 28) and Xt.shape == (10000, 28, 28)
    assert X.dtype == np.float32 and 0.0 == X.min() and X.max() == 1.0
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_checksums(mnist_dir):
    for fn, md5 in MNIST_MD5.items():
        assert md5sum(mnist_dir / fn) == md5


def test_mnist_found_via_env(mnist_dir, monkeypatch):
    monkeypatch.setenv("QTN_DATA_DIR", str(mnist_dir.parent))
    assert find_dataset("mnist") == mnist_dir.parent / "mnist"
    (_, y), _ = load_mnist()
    assert len(y) == 60000


def _copy_small_files(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for fn in MNIST_MD5:
        shutil.copy(src / fn, dst / fn)


def test_mnist_corrupted_copy_rejected(mnist_dir, tmp_path):
    bad = tmp_path / "bad"
    _copy_small_files(mnist_dir, bad)
    path = bad / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(qtn.DataIntegrityError, match="checksum mismatch.*t10k-labels"):
        load_mnist(bad)


def test_mnist_truncated_copy_rejected(mnist_dir, tmp_path):
    bad = tmp_path / "trunc"
    _copy_small_files(mnist_dir, bad)
    path = bad / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(qtn.DataIntegrityError, match="checksum mismatch"):
        load_mnist(bad)


def test_idx_parser_rejects_truncated_body(tmp_path):
    from qtn.data._idx import read_idx_gz

    good = np.arange(12, dtype=np.uint8)
    header = bytes([0, 0, 0x08, 1]) + (12).to_bytes(4, "big")
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(header + good.tobytes()))
    np.testing.assert_array_equal(read_idx_gz(p, (12,)), good)
    p.write_bytes(gzip.compress(header + good.tobytes()[:7]))
    with pytest.raises(qtn.DataIntegrityError, match="body has 7 bytes"):
        read_idx_gz(p)
    with pytest.raises(qtn.DataIntegrityError, match="shape"):
        p.write_bytes(gzip.compress(header + good.tobytes()))
        read_idx_gz(p, (13,))
    p.write_bytes(b"not gzip at all")
    with pytest.raises(qtn.DataIntegrityError, match="gzip"):
        read_idx_gz(p)


def test_mnist_missing_says_where_it_looked(tmp_path):
    with pytest.raises(qtn.DataNotFoundError) as info:
        load_mnist(tmp_path / "nowhere")
    msg = str(info.value)
    assert str(tmp_path / "nowhere") in msg and "QTN_DATA_DIR" in msg and "download=True" in msg


# ---------------------------------------------------------------- download over loopback


@pytest.fixture
def http_server():
    """Serve a directory on 127.0.0.1; yields a function dir -> base URL."""
    servers = []

    def serve(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/"

    yield serve
    for srv in servers:
        srv.shutdown()
        srv.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_from_loopback_mirror(mnist_dir, tmp_path, http_server):
    good = http_server(mnist_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    dead = http_server(empty)  # 404 for every file: the loader must fall through to `good`
    target = tmp_path / "dl"
    (X, y), (Xt, yt) = load_mnist(target, download=True, mirrors=[dead, good], progress=False)
    assert X.shape == (60000, 28, 28) and len(yt) == 10000
    assert sorted(p.name for p in target.iterdir()) == sorted(MNIST_MD5)
    # the cache is used the second time (no server needed)
    (_, y2), _ = load_mnist(target)
    np.testing.assert_array_equal(y, y2)


def test_download_into_cache(mnist_dir, tmp_path, http_server):
    url = http_server(mnist_dir)
    load_mnist(download=True, mirrors=[url], progress=False)
    assert find_dataset("mnist") == tmp_path / "cache" / "qtn" / "mnist"


def test_download_corrupt_leaves_nothing(mnist_dir, tmp_path, http_server):
    served = tmp_path / "served"
    _copy_small_files(mnist_dir, served)
    f = served / "train-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:1000])  # a mirror with a truncated file
    target = tmp_path / "dl"
    with pytest.raises(qtn.DataIntegrityError, match="could not download a verified"):
        load_mnist(target, download=True, mirrors=[http_server(served)], progress=False)
    assert not (target / "train-labels-idx1-ubyte.gz").exists()
    assert not list(target.glob("*.part"))


def test_fashion_mnist_missing(tmp_path):
    with pytest.raises(qtn.DataNotFoundError, match="fashion-mnist"):
        qtn.load_fashion_mnist(tmp_path)


# ---------------------------------------------------------------- datasets identified by MD5


def _fake_idx_gz(path: Path, arr: np.ndarray) -> None:
    import struct

    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_links(mnist_dir, tmp_path):
    """A folder of MNIST's four files (symlinks, so nothing is copied)."""
    d = tmp_path / "mnist_files"
    d.mkdir()
    for fn in MNIST_MD5:
        (d / fn).symlink_to(mnist_dir / fn)
    return d


def test_mnist_files_are_not_fashion_mnist(mnist_links, monkeypatch, capsys):
    """QTN_DATA_DIR at MNIST's files: Fashion-MNIST is not found there, and the message
    says whose files they are instead of calling valid MNIST files corrupted."""
    from qtn.cli import main
    from qtn.data import identify_file, locate_dataset

    monkeypatch.setenv("QTN_DATA_DIR", str(mnist_links))
    assert identify_file(mnist_links / "train-images-idx3-ubyte.gz") == ("mnist", "train_images")
    assert find_dataset("mnist") == mnist_links
    assert find_dataset("fashion-mnist") is None
    loc = locate_dataset("fashion-mnist")
    assert loc.others == ((mnist_links, "mnist"),) and loc.corrupted == ()
    with pytest.raises(qtn.DataNotFoundError) as err:
        qtn.load_fashion_mnist()
    msg = str(err.value)
    assert f"{mnist_links} holds mnist files (identified by MD5), not fashion-mnist" in msg
    assert "corrupt" not in msg and "delete" not in msg
    main(["datasets"])
    out = capsys.readouterr().out
    assert "fashion-mnist   not found" in out and "holds mnist files, not fashion-mnist" in out
    assert f"mnist           found in {mnist_links}" in out


def test_download_beside_another_datasets_files(mnist_links, tmp_path, monkeypatch, http_server):
    """download=True into a folder of MNIST files puts Fashion-MNIST in fashion-mnist/ below
    it; the MNIST files are left alone."""
    from qtn.data import datasets

    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.default_rng(0)
    files = {}
    for key, (fn, _, shape) in datasets.IDX_DATASETS["fashion-mnist"].files.items():
        small = (20, 28, 28) if len(shape) == 3 else (20,)
        _fake_idx_gz(served / fn, rng.integers(0, 10 if len(shape) == 1 else 256, small))
        files[key] = (fn, md5sum(served / fn), small)
    fake = datasets.IdxDataset("fashion-mnist", ("fashion-mnist",), files, ())
    monkeypatch.setitem(datasets.IDX_DATASETS, "fashion-mnist", fake)
    monkeypatch.setattr(datasets, "_FASHION", fake)
    before = {fn: md5sum(mnist_links / fn) for fn in MNIST_MD5}
    (X, y), _ = qtn.load_fashion_mnist(mnist_links, download=True, mirrors=[http_server(served)],
                                       progress=False)  # fmt: skip
    assert X.shape == (20, 28, 28) and len(y) == 20
    assert find_dataset("fashion-mnist", mnist_links) == mnist_links / "fashion-mnist"
    assert {fn: md5sum(mnist_links / fn) for fn in MNIST_MD5} == before


def test_corrupted_file_still_reported_as_corrupted(mnist_dir, tmp_path):
    """A file matching no known checksum is corrupted: the loader says so (and only then
    advises deleting it)."""
    from qtn.data import locate_dataset

    bad = tmp_path / "bad"
    _copy_small_files(mnist_dir, bad)
    path = bad / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    loc = locate_dataset("mnist", bad)
    assert loc.found is None and [p for p, _ in loc.corrupted] == [path]
    with pytest.raises(qtn.DataIntegrityError, match="which is no file of mnist, fashion-mnist"):
        load_mnist(bad)
