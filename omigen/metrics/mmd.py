"""Maximum mean discrepancy with a Gaussian (RBF) kernel, unbiased estimator, chunked kernel sums."""

from __future__ import annotations

import numpy as np

from omigen.errors import OmigenInputError
from omigen.metrics.distances import as_matrix, same_width, sq_dist_blocks

#: At most this many real rows enter the median-distance bandwidth heuristic.
MEDIAN_ROWS = 2000


def median_bandwidth(X, max_rows: int = MEDIAN_ROWS, seed: int = 0) -> float:
    """Median pairwise Euclidean distance between rows of ``X`` (a seeded subsample of ``max_rows``).

    Zero distances (duplicate rows) are skipped; if every distance is zero the bandwidth is 1.0,
    which keeps the kernel well defined for degenerate data.
    """
    from scipy.spatial.distance import pdist

    X = as_matrix(X, "real data", min_rows=2)
    if X.shape[0] > max_rows:
        X = X[np.random.default_rng(seed).choice(X.shape[0], max_rows, replace=False)]
    d = pdist(X)
    d = d[d > 0]
    return float(np.median(d)) if d.size else 1.0


def _kernel_sum(A: np.ndarray, B: np.ndarray, gamma: float, chunk: int, symmetric: bool) -> float:
    total = 0.0
    for rows, cols, d2 in sq_dist_blocks(A, B, chunk, upper=symmetric):
        s = float(np.exp(-gamma * d2).sum())
        # Only upper blocks are visited for a symmetric sum; each one off the diagonal stands for two.
        total += 2.0 * s if symmetric and rows.start != cols.start else s
    return total


def mmd2_rbf(X, Y, bandwidth: float | None = None, chunk: int = 2048, seed: int = 0) -> tuple[float, float]:
    """Unbiased squared MMD between samples ``X`` (real) and ``Y`` (synthetic) with an RBF kernel.

    ``k(x, y) = exp(-|x - y|^2 / (2 bandwidth^2))``. With ``bandwidth=None`` it is the median
    pairwise distance of the real data (:func:`median_bandwidth`, seeded by ``seed``). The
    unbiased estimator leaves the diagonal out of the within-set sums, so it is ~0 (and may be
    slightly negative) when both sets come from one distribution. Kernel sums run over
    ``chunk x chunk`` blocks. Returns ``(mmd2, bandwidth)``.
    """
    X = as_matrix(X, "real data", min_rows=2)
    Y = as_matrix(Y, "synthetic data", min_rows=2)
    same_width(X, Y)
    if bandwidth is None:
        bandwidth = median_bandwidth(X, seed=seed)
    if not (np.isfinite(bandwidth) and bandwidth > 0):
        raise OmigenInputError(f"MMD bandwidth must be a positive number, got {bandwidth}")
    gamma = 1.0 / (2.0 * bandwidth ** 2)
    m, n = X.shape[0], Y.shape[0]
    # k(x, x) = 1, so removing the diagonal from a within-set sum subtracts the set size.
    kxx = (_kernel_sum(X, X, gamma, chunk, symmetric=True) - m) / (m * (m - 1))
    kyy = (_kernel_sum(Y, Y, gamma, chunk, symmetric=True) - n) / (n * (n - 1))
    kxy = _kernel_sum(X, Y, gamma, chunk, symmetric=False) / (m * n)
    return float(kxx + kyy - 2.0 * kxy), float(bandwidth)
