"""Fréchet distance between Gaussians fitted to real and synthetic samples.

Reported as the squared distance, as FID does:
``d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``. The trace of the matrix square
root is taken in its symmetric eigenvalue form, ``tr((S1 S2)^(1/2)) = sum sqrt(eig(R S2 R))``
with ``R = S1^(1/2)``, so it stays real and exact for singular covariances (``n < d``), where
the general ``sqrtm`` of the non-symmetric product ``S1 S2`` is ill-conditioned.

Wide data (more than :data:`MAX_DIM` features) is first projected onto the top principal
components of the real data, both sets with the same projection; :func:`frechet_details`
reports the dimension actually used.
"""

from __future__ import annotations

import numpy as np

from omigen.errors import OmigenInputError
from omigen.metrics.distances import as_matrix, same_width

#: Above this many features both sets are projected onto the real data's top principal components.
MAX_DIM = 256


def _psd_sqrt(S: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((S + S.T) / 2.0)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def frechet_from_stats(mu1, s1, mu2, s2) -> float:
    """Fréchet distance between N(``mu1``, ``s1``) and N(``mu2``, ``s2``) (covariances PSD).

    Rounding can push the exact zero of identical inputs a hair below 0; the result is clipped at 0.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise OmigenInputError(f"Fréchet statistics disagree in shape: means {mu1.shape} and {mu2.shape}, "
                               f"covariances {s1.shape} and {s2.shape}")
    r = _psd_sqrt(s1)
    inner = r @ s2 @ r
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2.0), 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    return max(value, 0.0)


def project_top_pcs(X: np.ndarray, Y: np.ndarray, max_dim: int = MAX_DIM,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Project ``X`` and ``Y`` onto the top principal components of ``X`` when wider than ``max_dim``.

    Uses at most ``min(max_dim, len(X))`` components (fitted on ``X`` only, seeded); narrower
    data is returned unchanged.
    """
    if X.shape[1] <= max_dim:
        return X, Y
    from sklearn.decomposition import PCA

    k = min(max_dim, X.shape[0])
    pca = PCA(n_components=k, random_state=seed).fit(X)
    return pca.transform(X), pca.transform(Y)


def frechet_details(X, Y, max_dim: int = MAX_DIM, seed: int = 0) -> tuple[float, int]:
    """Fréchet distance between real ``X`` and synthetic ``Y`` and the feature dimension it used."""
    X = as_matrix(X, "real data", min_rows=2)
    Y = as_matrix(Y, "synthetic data", min_rows=2)
    same_width(X, Y)
    X, Y = project_top_pcs(X, Y, max_dim=max_dim, seed=seed)
    value = frechet_from_stats(X.mean(0), np.cov(X, rowvar=False), Y.mean(0), np.cov(Y, rowvar=False))
    return value, int(X.shape[1])


def frechet_distance(X, Y, max_dim: int = MAX_DIM, seed: int = 0) -> float:
    """Fréchet distance between real ``X`` and synthetic ``Y`` (see :func:`frechet_details`)."""
    return frechet_details(X, Y, max_dim=max_dim, seed=seed)[0]
