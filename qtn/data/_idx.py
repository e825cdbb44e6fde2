"""Reading, verifying and downloading gzipped IDX files (the MNIST family format).

Every file is checked against its published MD5 before it is parsed, and the
parsed header must match the expected shape exactly, so a truncated or
corrupted file raises :class:`~qtn.errors.DataIntegrityError` and never yields
partial arrays. Downloads go to a temporary file in the target directory and
are renamed into place only after their checksum matches, so an interrupted
download leaves nothing half-written under the final name.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qtn.errors import DataIntegrityError

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def md5sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Return the hexadecimal MD5 digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: Path, expected: str) -> None:
    """Raise :class:`DataIntegrityError` unless ``path`` has MD5 ``expected``."""
    got = md5sum(path)
    if got != expected:
        raise DataIntegrityError(
            f"checksum mismatch for {path}: MD5 is {got}, expected {expected}. "
            "The file is corrupted or truncated; delete it and download it again "
            "(download=True) or copy a good copy into place."
        )


def read_idx_gz(path: Path, expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Parse one gzipped IDX file into a numpy array.

    Parameters
    ----------
    path
        The ``*.gz`` file.
    expected_shape
        If given, the header's dimensions must equal it.

    Raises
    ------
    DataIntegrityError
        On a bad magic number, a truncated body or a shape other than expected.
    """
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataIntegrityError(f"{path} is not a valid gzip file: {exc}") from exc
    if len(raw) < 4:
        raise DataIntegrityError(f"{path}: IDX header truncated ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES or ndim == 0:
        raise DataIntegrityError(f"{path}: bad IDX magic number {raw[:4].hex()}")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataIntegrityError(f"{path}: IDX header truncated")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header_len])
    if expected_shape is not None and tuple(shape) != tuple(expected_shape):
        raise DataIntegrityError(f"{path}: IDX shape {shape}, expected {tuple(expected_shape)}")
    dtype = np.dtype(_IDX_DTYPES[dtype_code])
    n_bytes = int(np.prod(shape)) * dtype.itemsize
    body = raw[header_len:]
    if len(body) != n_bytes:
        raise DataIntegrityError(
            f"{path}: IDX body has {len(body)} bytes, header {shape} needs {n_bytes}"
        )
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def download_verified(
    filename: str,
    md5: str,
    target_dir: Path,
    mirrors: Sequence[str],
    *,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``filename`` from the first mirror that serves it with the right MD5.

    The bytes go to a temporary file in ``target_dir``; only after the checksum
    matches is it renamed (atomically, :func:`os.replace`) to its final name.

    Returns
    -------
    Path
        The verified file.
    """
    from tqdm.auto import tqdm

    target_dir.mkdir(parents=True, exist_ok=True)
    final = target_dir / filename
    errors: list[str] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=target_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(
                    total=total, unit="B", unit_scale=True, desc=filename, disable=not progress
                ) as bar:
                    for chunk in iter(lambda: resp.read(1 << 16), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
            got = md5sum(tmp)
            if got != md5:
                errors.append(f"{url}: MD5 {got} != {md5}")
                continue
            os.replace(tmp, final)
            return final
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if tmp.exists():
                tmp.unlink()
    raise DataIntegrityError(
        f"could not download a verified {filename} from any mirror:\n  " + "\n  ".join(errors)
    )
