"""Index order across the Qiskit bridge: the one place where it is converted.

Qubit *labels* are kept: qtn qubit q is Qiskit qubit q, and clbit c is clbit c.
What differs is how a basis index is read:

- qtn (like quimb) puts qubit 0 in the **most** significant bit:
  index = q0 q1 ... q_{n-1} in binary; a k-qubit matrix on qubits (a, b, ...)
  has its first listed qubit as the most significant bit.
- Qiskit puts qubit 0 in the **least** significant bit: ``Statevector.data``,
  ``probabilities()``, ``Operator.data`` and the matrices of ``unitary`` and
  ``Kraus`` instructions (first qarg least significant); counts keys are
  written with clbit 0 rightmost.

Converting between the two reverses the bit order of every index of length
2**k; the map is its own inverse, so :func:`to_qiskit_order` and
:func:`from_qiskit_order` are the same operation under two readable names.

Examples
--------
>>> import numpy as np
>>> p_qtn = np.array([0.1, 0.2, 0.3, 0.4])       # index = q0 q1: P(q0=0, q1=1) = 0.2
>>> to_qiskit_order(p_qtn)                       # index = q1 q0: P(q0=0, q1=1) at 0b10
array([0.1, 0.3, 0.2, 0.4])
>>> counts_from_bits(np.array([[1, 0], [1, 0], [0, 1]]))   # column j = clbit j
{'01': 2, '10': 1}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "to_qiskit_order",
    "from_qiskit_order",
    "qiskit_matrix",
    "clbit_probabilities",
    "counts_from_bits",
    "pauli_to_qiskit",
]


def _n_bits(size: int, axis: int) -> int:
    k = int(size).bit_length() - 1
    if size < 1 or 2**k != size:
        raise ValueError(f"axis {axis} has length {size}, not a power of 2")
    return k


def to_qiskit_order(array, axes: int | Sequence[int] = -1) -> np.ndarray:
    """``array`` with the bit order of the given axes reversed (qtn order -> Qiskit order).

    Parameters
    ----------
    array
        Statevectors, probability vectors (any leading batch axes), or matrices.
    axes
        The axes of length 2**k to convert: ``-1`` for vectors (default),
        ``(-2, -1)`` for operators and density matrices.

    Returns
    -------
    numpy.ndarray
        A new array; entry ``i`` of a converted axis moves to the index whose
        k-bit binary expansion is that of ``i`` reversed.

    Examples
    --------
    >>> to_qiskit_order(np.arange(8))     # 3 qubits: 0b001 <-> 0b100, 0b011 <-> 0b110
    array([0, 4, 2, 6, 1, 5, 3, 7])
    """
    a = np.asarray(array)
    axes = [axes] if isinstance(axes, int | np.integer) else list(axes)
    for ax in axes:
        ax = ax % a.ndim
        k = _n_bits(a.shape[ax], ax)
        shape = a.shape
        t = a.reshape(*shape[:ax], *(2,) * k, *shape[ax + 1 :])
        perm = list(range(ax)) + [ax + k - 1 - i for i in range(k)]
        perm += list(range(ax + k, t.ndim))
        a = t.transpose(perm).reshape(shape)
    return np.array(a)


def from_qiskit_order(array, axes: int | Sequence[int] = -1) -> np.ndarray:
    """``array`` with the bit order of the given axes reversed (Qiskit order -> qtn order).

    The same operation as :func:`to_qiskit_order` (bit reversal is its own inverse).

    Examples
    --------
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.quantum_info import Statevector
    >>> qc = QuantumCircuit(2)
    >>> _ = qc.x(0)
    >>> from_qiskit_order(Statevector(qc).data).real   # qtn: |q0 q1> = |10> is index 2
    array([0., 0., 1., 0.])
    """
    return to_qiskit_order(array, axes)


def qiskit_matrix(m) -> np.ndarray:
    """A matrix big-endian on qubits (a, b, ...) in Qiskit's order for qargs ``[a, b, ...]``.

    Equivalently, the same matrix may be appended with the qargs reversed.

    Examples
    --------
    >>> cx = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])  # control first
    >>> qiskit_matrix(cx)                     # Qiskit's CX matrix (control = qarg 0, the LSB)
    array([[1, 0, 0, 0],
           [0, 0, 0, 1],
           [0, 0, 1, 0],
           [0, 1, 0, 0]])
    """
    return to_qiskit_order(m, axes=(-2, -1))


def _check_bits(bits) -> np.ndarray:
    b = np.asarray(bits)
    if b.ndim < 2:
        raise ValueError(f"bits must have shape (..., shots, n_clbits), got {b.shape}")
    if b.size and not np.isin(b, (0, 1)).all():
        raise ValueError("bits must hold only 0 and 1")
    return b.astype(np.int64)


def clbit_probabilities(bits) -> np.ndarray:
    """Outcome frequencies of sampled classical bits, in qtn's order (clbit 0 most significant).

    Parameters
    ----------
    bits
        Shape (..., shots, n_clbits), column j holding clbit j
        (``BitArray.to_bool_array(order="little")``).

    Returns
    -------
    numpy.ndarray
        Shape (..., 2**n_clbits); index = c0 c1 ... c_{k-1} in binary, the order of
        qtn's simulated probabilities (:func:`to_qiskit_order` gives Qiskit's).

    Examples
    --------
    >>> clbit_probabilities(np.array([[1, 0], [1, 0], [0, 1], [1, 1]]))
    array([0.  , 0.25, 0.5 , 0.25])
    """
    bits = _check_bits(bits)
    k = bits.shape[-1]
    idx = bits @ (1 << np.arange(k - 1, -1, -1))
    flat = idx.reshape(-1, idx.shape[-1])
    counts = np.stack([np.bincount(row, minlength=2**k) for row in flat])
    return (counts / idx.shape[-1]).reshape(*idx.shape[:-1], 2**k)


def counts_from_bits(bits) -> dict[str, int]:
    """Qiskit-style counts of one binding: keys with clbit 0 **rightmost**, as Qiskit writes them.

    ``bits`` has shape (shots, n_clbits), column j = clbit j; the result equals
    ``BitArray.get_counts()`` of the same samples.

    Examples
    --------
    >>> counts_from_bits(np.array([[1, 0, 0]]))      # clbit 0 set
    {'001': 1}
    """
    bits = _check_bits(bits)
    if bits.ndim != 2:
        raise ValueError(f"bits must have shape (shots, n_clbits), got {bits.shape}")
    keys, n = np.unique(bits[:, ::-1], axis=0, return_counts=True)
    return {"".join(map(str, k)): int(c) for k, c in zip(keys, n)}


def pauli_to_qiskit(paulis: str | Mapping[int, str], n_qubits: int | None = None) -> str:
    """A qtn Pauli string (letter i acts on qubit i) or ``{qubit: letter}`` as a Qiskit label.

    Qiskit labels (``Pauli``, ``SparsePauliOp``) put qubit 0 **rightmost**.

    Examples
    --------
    >>> pauli_to_qiskit("ZIX")       # Z on qubit 0, X on qubit 2
    'XIZ'
    >>> pauli_to_qiskit({0: "Z"}, 3)
    'IIZ'
    """
    if isinstance(paulis, str):
        label = paulis.upper()
        if n_qubits is not None and len(label) != n_qubits:
            raise ValueError(f"paulis: {paulis!r} must have one letter per qubit ({n_qubits})")
    elif isinstance(paulis, Mapping):
        if n_qubits is None:
            raise ValueError("paulis: a {qubit: letter} mapping needs n_qubits")
        letters = ["I"] * n_qubits
        for q, p in paulis.items():
            if not 0 <= int(q) < n_qubits:
                raise ValueError(f"paulis: qubit {q} outside [0, {n_qubits - 1}]")
            letters[int(q)] = str(p).upper()
        label = "".join(letters)
    else:
        raise TypeError(f"paulis must be a string or a mapping, got {type(paulis).__name__}")
    if set(label) - set("IXYZ"):
        raise ValueError(f"paulis: {paulis!r} has letters other than I, X, Y, Z")
    return label[::-1]
