"""The one kernel every mix runs: out[i, :] += Σ_j A[i, j] · x[j, :] for a sparse A.

Why not ``scipy.sparse.csr_matrix @ x``: that allocates a fresh output each call (page faults
on ~8 MB per frame cost as much as the arithmetic) and it insists on a C-contiguous 2-D `x`.
scipy's own C++ kernel, ``csr_matvecs``, accumulates into an existing output and reads `x`
through a flat pointer with a row stride of `n_vecs`. That stride lets the HRTF path read a
source *delayed by k samples* as an ordinary row (see `delayed_rows`) without copying.

``csr_matvecs`` lives in scipy's private ``_sparsetools`` (stable since scipy 0.7); if it ever
moves, a pure-numpy fallback with the same contract takes over.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

try:  # pragma: no branch - which path runs depends on the installed scipy
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover
    _csr_matvecs = None


def accumulate(
    indptr: NDArray[np.int32],
    indices: NDArray[np.int32],
    data: NDArray[np.float32],
    x_flat: NDArray[np.float32],
    n_vecs: int,
    out: NDArray[np.float32],
    *,
    use_numpy: bool = False,
) -> None:
    """out (n_rows × n_vecs, C-contiguous) += A @ X where X's row j starts at x_flat[j·n_vecs].

    `A` is given as CSR arrays (indptr has n_rows + 1 entries). Bounds are checked here because
    the C kernel trusts them.
    """
    n_rows = len(indptr) - 1
    if out.shape[0] != n_rows or out.shape[-1] != n_vecs or not out.flags.c_contiguous:
        raise ValueError("accumulate: out must be a C-contiguous (n_rows, n_vecs) array")
    if out.dtype != np.float32 or x_flat.dtype != np.float32 or data.dtype != np.float32:
        raise TypeError("accumulate works on float32")
    if len(indices) == 0:
        return
    n_x_rows = len(x_flat) // n_vecs
    if int(indices.min()) < 0 or int(indices.max()) >= n_x_rows:
        raise IndexError("accumulate: column index outside x")
    if _csr_matvecs is not None and not use_numpy:
        if not x_flat.flags.c_contiguous:
            raise ValueError("accumulate: x_flat must be contiguous")
        _csr_matvecs(n_rows, n_x_rows, n_vecs, indptr, indices, data, x_flat, out.reshape(-1))
        return
    _accumulate_numpy(indptr, indices, data, x_flat, n_vecs, out)


def _accumulate_numpy(
    indptr: NDArray[np.int32],
    indices: NDArray[np.int32],
    data: NDArray[np.float32],
    x_flat: NDArray[np.float32],
    n_vecs: int,
    out: NDArray[np.float32],
    chunk: int = 4096,
) -> None:
    rows_view = np.lib.stride_tricks.as_strided(
        x_flat, shape=(len(x_flat) // n_vecs, n_vecs), strides=(n_vecs * x_flat.itemsize, x_flat.itemsize)
    )
    row_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    for start in range(0, len(indices), chunk):
        stop = min(start + chunk, len(indices))
        contrib = rows_view[indices[start:stop]] * data[start:stop, None]
        rows = row_of[start:stop]
        # rows are non-decreasing within CSR order: sum runs of equal rows with reduceat.
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        out[rows[starts]] += np.add.reduceat(contrib, starts, axis=0)


def delayed_rows(
    history: NDArray[np.float32], current: NDArray[np.float32], max_delay: int
) -> NDArray[np.float32]:
    """Lay out sources so that "source u delayed by k samples" is a strided row.

    Returns a flat buffer in which, for `n = current.shape[1]`, the n samples starting at
    ``(2u + 1)·n − k`` are source u's current frame delayed by k (history fills the start).
    Pass ``flat[n − k:]`` as `x_flat` and column ``2u`` to `accumulate`.
    """
    n_src, n = current.shape
    if max_delay > n or history.shape != (n_src, max_delay):
        raise ValueError("history must be (sources, max_delay) with max_delay <= frame length")
    buf = np.empty((n_src, 2, n), dtype=np.float32)
    buf[:, 0, n - max_delay :] = history
    buf[:, 1, :] = current
    return buf.reshape(-1)
