"""Chunked Euclidean distance work shared by the distance-based metrics.

Squared distances are computed block by block with the BLAS-friendly expansion
``|a|^2 + |b|^2 - 2 a.b`` in float64, so memory stays at ``chunk x chunk`` per block whatever the
number of samples. The expansion leaves rounding noise where two rows are (nearly) identical;
values below a relative tolerance of the row norms are snapped to exactly 0 so that duplicate
rows really are at distance 0 (PRDC's balls and the privacy metrics rely on this).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from omigen.errors import OmigenInputError

#: Squared distances below this fraction of ``|a|^2 + |b|^2`` are rounding noise of duplicates.
SNAP = 1e-10


def as_matrix(X, what: str, min_rows: int = 1) -> np.ndarray:
    """``X`` as a finite float64 matrix (samples x features) with at least ``min_rows`` rows."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise OmigenInputError(f"{what} must be a 2-D samples x features matrix, got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise OmigenInputError(f"{what} has {arr.shape[0]} samples; at least {min_rows} are needed")
    if arr.shape[1] < 1:
        raise OmigenInputError(f"{what} has no features")
    if not np.isfinite(arr).all():
        raise OmigenInputError(f"{what} contains non-finite values")
    return arr


def same_width(X: np.ndarray, Y: np.ndarray, what_x: str = "real data", what_y: str = "synthetic data") -> None:
    """Raise a clear error unless ``X`` and ``Y`` have the same number of features."""
    if X.shape[1] != Y.shape[1]:
        raise OmigenInputError(f"{what_x} has {X.shape[1]} features but {what_y} has {Y.shape[1]}")


def standardise(ref: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Centre and scale ``ref`` and ``others`` by the mean and standard deviation of ``ref``.

    Features that are constant in ``ref`` are only centred (scale 1), so they neither blow up
    nor vanish. Returns ``[ref_std, *others_std]`` as float64 arrays.
    """
    ref = np.asarray(ref, dtype=np.float64)
    mu = ref.mean(axis=0)
    sd = ref.std(axis=0)
    sd[sd == 0] = 1.0
    return [(np.asarray(a, dtype=np.float64) - mu) / sd for a in (ref, *others)]


def _sq_block(A: np.ndarray, B: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    scale = a2[:, None] + b2[None, :]
    d2 = scale - 2.0 * (A @ B.T)
    d2[d2 <= SNAP * scale] = 0.0
    return d2


def sq_dist_blocks(A: np.ndarray, B: np.ndarray, chunk: int = 2048,
                   upper: bool = False) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """Yield ``(rows, cols, d2)``: squared distances between ``A[rows]`` and ``B[cols]``, block by block.

    With ``upper=True`` (``A`` and ``B`` the same matrix) only blocks on or above the block
    diagonal are produced; callers weight the off-diagonal blocks twice.
    """
    if chunk < 1:
        raise OmigenInputError(f"chunk must be a positive number of rows, got {chunk}")
    a2 = np.einsum("ij,ij->i", A, A)
    b2 = a2 if B is A else np.einsum("ij,ij->i", B, B)
    for r0 in range(0, A.shape[0], chunk):
        rows = slice(r0, min(r0 + chunk, A.shape[0]))
        for c0 in range(r0 if upper else 0, B.shape[0], chunk):
            cols = slice(c0, min(c0 + chunk, B.shape[0]))
            yield rows, cols, _sq_block(A[rows], B[cols], a2[rows], b2[cols])


def _mask_self(d2: np.ndarray, rows: slice, cols: slice) -> None:
    """Set the entries pairing a row with itself to +inf (leave-one-out neighbours)."""
    lo, hi = max(rows.start, cols.start), min(rows.stop, cols.stop)
    if lo < hi:
        idx = np.arange(lo, hi)
        d2[idx - rows.start, idx - cols.start] = np.inf


def knn_sq(A: np.ndarray, B: np.ndarray, k: int = 1, chunk: int = 2048, exclude_self: bool = False) -> np.ndarray:
    """The ``k`` smallest squared distances from each row of ``A`` to the rows of ``B``, ascending.

    ``exclude_self=True`` (``A`` is ``B``) leaves each row out of its own neighbours. Returns an
    ``(len(A), k)`` array; a running top-``k`` is merged block by block so memory stays bounded.
    """
    n_b = B.shape[0] - (1 if exclude_self else 0)
    if not 1 <= k <= n_b:
        raise OmigenInputError(f"cannot take {k} nearest neighbours among {n_b} samples")
    best = np.full((A.shape[0], k), np.inf)
    for rows, cols, d2 in sq_dist_blocks(A, B, chunk):
        if exclude_self:
            _mask_self(d2, rows, cols)
        both = np.concatenate([best[rows], d2], axis=1)
        best[rows] = np.partition(both, k - 1, axis=1)[:, :k]
    return np.sort(best, axis=1)


def count_within(A: np.ndarray, B: np.ndarray, radius2: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """For each row of ``A``, how many rows ``b`` of ``B`` have ``|a - b|^2 < radius2[b]`` (open balls)."""
    counts = np.zeros(A.shape[0], dtype=np.int64)
    for rows, cols, d2 in sq_dist_blocks(A, B, chunk):
        counts[rows] += (d2 < radius2[None, cols]).sum(axis=1)
    return counts
