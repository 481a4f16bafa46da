"""Per-SNP association of a phenotype with genotype dosage, in closed form for all SNPs at once.

For each SNP the model is ``y = a + b * g + covariates + e`` fitted by least squares. Covariates (e.g.
population indicators) are projected out of ``y`` and of every SNP first (Frisch-Waugh-Lovell), after
which each SNP's slope, standard error and two-sided t-test p-value follow from dot products:
``b = g'y / g'g``, ``se = sqrt((y'y - b g'y) / df / g'g)``, ``df = n - 1 - n_covariates - 1`` (the
intercept counted). SNPs are processed in column chunks so memory stays ``samples x chunk``. A SNP
with no variation left after the covariates has ``b = 0`` and ``p = 1``.

:func:`concordance` compares the association results on real and on synthetic data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omigen.errors import OmigenInputError

#: Real p-value below which a SNP counts as a hit.
HIT_P = 1e-3
#: When fewer than this many real hits exist, effect sizes are compared over the strongest SNPs instead.
MIN_HITS = 3
#: How many of the strongest SNPs the fallback compares.
TOP_K = 10


@dataclass
class Association:
    """Per-SNP slope, standard error and p-value."""

    beta: np.ndarray
    se: np.ndarray
    p: np.ndarray


def covariate_matrix(labels: np.ndarray | None, n: int) -> np.ndarray:
    """Intercept plus one indicator per label except the first (sorted), shape ``(n, 1 + k)``."""
    C = [np.ones(n)]
    if labels is not None:
        classes = sorted(set(np.asarray(labels).astype(str).tolist()))
        lab = np.asarray(labels).astype(str)
        C += [(lab == c).astype(np.float64) for c in classes[1:]]
    return np.stack(C, axis=1)


def associate(G: np.ndarray, y: np.ndarray, covariates: np.ndarray | None = None,
              chunk: int = 4096) -> Association:
    """Least-squares association of ``y`` with each column of ``G`` (see module docstring).

    ``covariates`` (samples x k) should include an intercept column; the default is the intercept alone.
    """
    from scipy import stats

    G = np.asarray(G)
    y = np.asarray(y, dtype=np.float64)
    n = G.shape[0]
    if y.shape != (n,):
        raise OmigenInputError(f"{y.shape[0] if y.ndim else 0} phenotype values for {n} genotyped samples")
    C = np.ones((n, 1)) if covariates is None else np.asarray(covariates, dtype=np.float64)
    Q, _ = np.linalg.qr(C)
    rank = int(np.linalg.matrix_rank(C))
    Q = Q[:, :rank]
    df = n - rank - 1
    if df < 1:
        raise OmigenInputError(f"GWAS needs more samples ({n}) than covariates plus 2 ({rank + 1})")
    yr = y - Q @ (Q.T @ y)
    yy = float(yr @ yr)
    m = G.shape[1]
    beta, se, p = np.zeros(m), np.full(m, np.inf), np.ones(m)
    for s in range(0, m, chunk):
        X = G[:, s:s + chunk].astype(np.float64)
        X -= Q @ (Q.T @ X)
        gg = np.einsum("ij,ij->j", X, X)
        gy = X.T @ yr
        ok = gg > 1e-9 * n
        b = np.where(ok, gy / np.where(ok, gg, 1.0), 0.0)
        rss = np.maximum(yy - b * gy, 0.0)
        s_err = np.where(ok, np.sqrt(rss / df / np.where(ok, gg, 1.0)), np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(s_err > 0, b / s_err, np.where(b != 0, np.inf, 0.0))
        beta[s:s + chunk], se[s:s + chunk] = b, s_err
        p[s:s + chunk] = np.where(ok, 2.0 * stats.t.sf(np.abs(t), df), 1.0)
    return Association(beta=beta, se=se, p=p)


@dataclass
class Concordance:
    """How well synthetic associations reproduce the real ones."""

    effect_r: float
    n_real_hits: int
    n_compared: int
    top_hit_overlap: float
    causal_recall_real: float | None = None
    causal_recall_synthetic: float | None = None


def compared_snps(p_real: np.ndarray) -> np.ndarray:
    """SNPs whose effects are compared: real p < :data:`HIT_P`, or the :data:`TOP_K` strongest when
    fewer than :data:`MIN_HITS` pass."""
    hits = np.flatnonzero(p_real < HIT_P)
    if hits.size >= MIN_HITS:
        return hits
    return np.argsort(p_real, kind="stable")[: min(TOP_K, p_real.size)]


def concordance(real: Association, synthetic: Association, causal: np.ndarray | None = None) -> Concordance:
    """Effect-size correlation over the :func:`compared_snps`; top-hit overlap: the fraction of the ``k``
    strongest real SNPs (``k`` = number compared) that are among the ``k`` strongest synthetic ones; with
    ``causal`` SNP indices, the fraction of causal SNPs at p < :data:`HIT_P` in each set."""
    from omigen_genotype.popgen import pearson

    sel = compared_snps(real.p)
    k = sel.size
    top_r = np.argsort(real.p, kind="stable")[:k]
    top_s = np.argsort(synthetic.p, kind="stable")[:k]
    out = Concordance(effect_r=pearson(real.beta[sel], synthetic.beta[sel]),
                      n_real_hits=int((real.p < HIT_P).sum()), n_compared=int(sel.size),
                      top_hit_overlap=float(np.intersect1d(top_r, top_s).size / k) if k else 0.0)
    if causal is not None and len(causal):
        causal = np.asarray(causal, dtype=np.int64)
        out.causal_recall_real = float((real.p[causal] < HIT_P).mean())
        out.causal_recall_synthetic = float((synthetic.p[causal] < HIT_P).mean())
    return out
