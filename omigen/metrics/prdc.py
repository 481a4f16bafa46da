"""Precision, recall, density and coverage (Naeem et al., 2020) from k-nearest-neighbour balls.

Each real sample ``x_i`` gets a ball whose radius ``r_i`` is the distance to its ``k``-th nearest
other real sample; each synthetic sample ``y_j`` likewise among the synthetic set (``s_j``).

- precision: fraction of synthetic samples inside at least one real ball;
- recall: fraction of real samples inside at least one synthetic ball;
- density: mean number of real balls holding a synthetic sample, divided by ``k`` (1 when the
  synthetic samples are spread like the real ones; above 1 when they crowd dense regions);
- coverage: fraction of real balls that hold at least one synthetic sample.

Balls are open (``distance < radius``), as in the authors' reference code: the ``k``-th neighbour
on a ball's boundary lies outside it, so a synthetic copy of the real set scores exactly 1 on
all four. A ball of radius 0 (``k`` exact duplicates) holds nothing. Distances are chunked
(:mod:`omigen.metrics.distances`).
"""

from __future__ import annotations

from omigen.metrics.distances import as_matrix, count_within, knn_sq, same_width


def prdc(real, fake, k: int = 5, chunk: int = 2048) -> dict[str, float]:
    """PRDC of ``fake`` against ``real`` (both samples x features) with ``k``-NN radii.

    Both sets need more than ``k`` samples. Returns ``{"precision", "recall", "density", "coverage"}``.
    """
    X = as_matrix(real, "real data", min_rows=k + 1)
    Y = as_matrix(fake, "synthetic data", min_rows=k + 1)
    same_width(X, Y)
    r2_real = knn_sq(X, X, k, chunk, exclude_self=True)[:, -1]
    r2_fake = knn_sq(Y, Y, k, chunk, exclude_self=True)[:, -1]
    real_balls_per_fake = count_within(Y, X, r2_real, chunk)
    fake_balls_per_real = count_within(X, Y, r2_fake, chunk)
    nearest_fake = knn_sq(X, Y, 1, chunk)[:, 0]
    return {
        "precision": float((real_balls_per_fake > 0).mean()),
        "recall": float((fake_balls_per_real > 0).mean()),
        "density": float(real_balls_per_fake.sum() / (k * Y.shape[0])),
        "coverage": float((nearest_fake < r2_real).mean()),
    }
