"""Exceptions raised by qtn.

Every qtn error derives from :class:`QtnError`, and also from the builtin
exception a user would expect (``ValueError``, ``FileNotFoundError``, ...), so
both ``except QtnError`` and ``except ValueError`` work.
"""

from __future__ import annotations

__all__ = [
    "QtnError",
    "DataNotFoundError",
    "DataIntegrityError",
    "NonFiniteError",
    "FormatError",
    "ContractionTooLargeError",
    "ExportError",
]


class QtnError(Exception):
    """Base class of every exception raised by qtn."""


class DataNotFoundError(QtnError, FileNotFoundError):
    """A dataset's files were not found where qtn looked."""


class DataIntegrityError(QtnError, ValueError):
    """A dataset file failed its checksum or does not parse as the expected format."""


class NonFiniteError(QtnError, FloatingPointError):
    """A computation produced NaN or inf (for example a diverging training step)."""


class FormatError(QtnError, ValueError):
    """A saved qtn file is of the wrong kind, truncated, or from a newer format."""


class ContractionTooLargeError(QtnError, MemoryError):
    """A tensor-network contraction cannot fit the memory limit, even after slicing."""


class ExportError(QtnError, ValueError):
    """A circuit holds something the target format cannot express (noise in OpenQASM 3)."""
