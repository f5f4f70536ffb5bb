"""Sparse examples: a SciPy sparse X kept sparse, densified one batch at a time.

n = examples, n_x = features, nnz = stored values, m = batch rows. ``CsrRows`` holds
the rows in canonical CSR form (duplicates summed, column indices sorted, values in the
model's dtype): the compiled gather (fastdnn.engine.steps.gather) zeroes a batch row
and scatters the row's values into it, the stepwise engines take ``rows(idx)`` (SciPy's
row slicing and toarray), and inference densifies blocks of ``INFER_ROWS`` rows. The
dense batches equal those of X.toarray() bit for bit, so a sparse fit is the dense one.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

INFER_ROWS = 4096   # rows densified at a time by predict / evaluate


def is_sparse(X: object) -> bool:
    """Whether X is a SciPy sparse matrix or array.

    Parameters
    ----------
    X : object

    Returns
    -------
    bool
    """
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


class CsrRows:
    """The rows of a sparse matrix, for training and inference.

    ``len``, ``shape``, ``dtype`` and row selections (``X[a:b]``, ``X[idx]``) as an
    array's; ``rows(idx, out)`` densifies rows; ``csr`` holds the arrays the compiled
    gather takes: (indptr (n + 1,) int64, indices (nnz,) int64, values (nnz,)).

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        Canonical (see ``from_sparse``); kept, not copied.
    """

    def __init__(self, matrix: object) -> None:
        self.matrix = matrix
        self.shape, self.dtype = matrix.shape, matrix.dtype
        self._csr = None

    @classmethod
    def from_sparse(cls, X: object, dtype: np.dtype | type) -> CsrRows:
        """A canonical CSR copy of X with values of ``dtype`` (X is not changed).

        Parameters
        ----------
        X : SciPy sparse matrix or array, any format
        dtype : float32 or float64

        Returns
        -------
        CsrRows
        """
        import scipy.sparse as sp
        csr = sp.csr_matrix(X, dtype=dtype, copy=True)
        csr.sum_duplicates()      # also sorts the column indices
        return cls(csr)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        return CsrRows(self.matrix[rows])

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays."""
        m = self.matrix
        return m.data.nbytes + m.indices.nbytes + m.indptr.nbytes

    @property
    def values(self) -> NDArray[np.floating]:
        """The stored values (finite checks look at these)."""
        return self.matrix.data

    @property
    def csr(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.floating]]:
        """(indptr, indices, values) for the compiled gather (int64 indices)."""
        if self._csr is None:
            m = self.matrix
            self._csr = (m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data)
        return self._csr

    def rows(self, idx: NDArray[np.integer] | slice,
             out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
        """Some rows, densified.

        Parameters
        ----------
        idx : int array or slice
        out : (m, n_x) C-contiguous array of the dtype, optional

        Returns
        -------
        (m, n_x) array
            ``out`` when given.
        """
        return self.matrix[idx].toarray(out=out)

    def blocks(self) -> Iterator[tuple[int, NDArray[np.floating]]]:
        """The rows in dense blocks of INFER_ROWS rows, in order (for inference).

        Yields
        ------
        (first row, (rows, n_x) array)
        """
        for start in range(0, self.shape[0], INFER_ROWS):
            yield start, self.rows(slice(start, start + INFER_ROWS))

    def toarray(self) -> NDArray[np.floating]:
        """All rows, densified (n, n_x).

        Returns
        -------
        (n, n_x) array
        """
        return self.matrix.toarray()
