"""Population structure: synthetic genomes projected on the real data's principal components.

The PCA is fitted on the real dosages, standardised per SNP by the real mean and standard deviation
(SNPs constant in the real data are only centred); synthetic dosages are projected with the same
centring, scaling and axes. Per PC the 1-D Wasserstein distance between real and synthetic scores is
divided by the real scores' standard deviation, so every PC counts alike. Population assignment uses a
logistic regression fitted on the real PC scores and labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Number of principal components used (fewer when the real data cannot support them).
N_PCS = 10


@dataclass
class Projection:
    """Real and synthetic scores on the real data's top PCs."""

    real: np.ndarray
    synthetic: np.ndarray
    explained: np.ndarray  #: fraction of the real (standardised) variance per PC


def project(real: np.ndarray, synthetic: np.ndarray, n_pcs: int = N_PCS, seed: int = 0) -> Projection:
    """Fit the PCA on ``real`` and project both sets (see the module docstring).

    The PCA is an eigendecomposition of the smaller of the Gram (samples x samples) and covariance
    (SNPs x SNPs) matrices, which is exact and much cheaper than a full SVD of a wide matrix.
    ``seed`` is accepted for the metric interface; the decomposition is deterministic.
    """
    from omigen.metrics.distances import standardise

    R, S = standardise(np.asarray(real, dtype=np.float64), np.asarray(synthetic, dtype=np.float64))
    n, m = R.shape
    k = max(1, min(n_pcs, n - 1, m))
    if n <= m:
        w, U = np.linalg.eigh(R @ R.T)
        w, U = w[::-1][:k], U[:, ::-1][:, :k]
        axes = R.T @ U / np.sqrt(np.maximum(w, 1e-12))
    else:
        w, axes = np.linalg.eigh(R.T @ R)
        w, axes = w[::-1][:k], axes[:, ::-1][:, :k]
    total = float((R ** 2).sum())
    explained = np.maximum(w, 0.0) / total if total > 0 else np.zeros(k)
    return Projection(real=R @ axes, synthetic=S @ axes, explained=explained)


def pc_wasserstein(proj: Projection) -> np.ndarray:
    """Per-PC Wasserstein distance between real and synthetic scores, in units of the real PC's sd."""
    from scipy.stats import wasserstein_distance

    sd = proj.real.std(axis=0)
    dist = np.array([wasserstein_distance(proj.real[:, i], proj.synthetic[:, i]) for i in range(proj.real.shape[1])])
    return dist / np.where(sd > 0, sd, 1.0)


def assign_populations(proj: Projection, real_labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Population predicted for each synthetic sample by a classifier trained on the real scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(real_labels).astype(str)
    classes = np.unique(labels)
    if classes.size == 1:
        return np.full(proj.synthetic.shape[0], classes[0], dtype=object)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    clf.fit(proj.real, labels)
    return clf.predict(proj.synthetic).astype(object)


def mix_distance(assigned: np.ndarray, expected: np.ndarray) -> float:
    """Total-variation distance between the population mix of ``assigned`` and of ``expected`` labels."""
    a, e = np.asarray(assigned).astype(str), np.asarray(expected).astype(str)
    classes = np.union1d(a, e)
    pa = (a[:, None] == classes[None, :]).mean(axis=0)
    pe = (e[:, None] == classes[None, :]).mean(axis=0)
    return float(0.5 * np.abs(pa - pe).sum())
