"""Expression-specific metrics: gene-gene correlation structure, per-class fidelity, UMAP class separation
and a linear-SVM label check.

Every compute function follows :class:`omigen.registry.MetricSpec`: ``compute(real, synthetic,
train=None, seed=0)`` with ``real`` the held-out real :class:`~omigen.data.ExpressionData`, and
returns exactly the keys its spec declares. Real, synthetic (and training) data must list the same
genes in the same order; anything unusable raises :class:`~omigen.errors.OmigenInputError` (a
``ValueError``) with one line naming the problem.

- ``correlation``: the correlation score of Viñas et al. 2022 (Bioinformatics, "Adversarial
  generation of gene expression data"): the Pearson correlation between the upper-triangle entries
  of the real and of the synthetic gene-gene Pearson correlation matrices, plus their mean absolute
  difference. Genes constant in either set have no correlation, so they are dropped (with every
  pair they belong to). Of the rest, at most :data:`MAX_CORRELATION_GENES` take part: the most
  variable in the real data (ties go to the earlier gene), so the two matrices stay a few MiB.
- ``per-class``: MMD² and C2ST AUC computed within each class present in both sets with at least
  :data:`MIN_CLASS_SAMPLES` samples on each side (smaller classes would give noise, so they are
  skipped; ``classes`` says how many were scored). MMD² runs on features standardised by the whole
  real set, as the generic ``mmd`` does, with the median bandwidth of the real class; C2ST's trees
  see the raw features, as the generic ``c2st`` does.
- ``umap-silhouette``: silhouette of the class labels on a 2-D UMAP embedding (the GEMDiff
  settings: ``n_neighbors = min(90, n - 1)``, ``min_dist = 0.3``) of the synthetic data and, for
  comparison, of the real held-out data. Both are standardised by the real data first and, when
  wider than :data:`UMAP_MAX_DIM` genes, projected on the real data's top principal components.
  The first UMAP call in a process compiles numba code (seconds); later calls are fast.
- ``svm-accuracy``: GEMDiff's check: a linear SVM on standardised genes, fitted once on the real
  training data, predicts the intended labels of the synthetic samples; its accuracy on the real
  held-out set is reported beside them as the ceiling.

Only numpy is imported at module level; scikit-learn and umap load when a metric runs.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from omigen.errors import OmigenInputError
from omigen.registry import MetricSpec

if TYPE_CHECKING:
    from omigen.data import ExpressionData

#: At most this many genes (the most variable in the real data) enter the correlation score.
MAX_CORRELATION_GENES = 1000
#: Classes with fewer samples than this in either set are left out of ``per-class``.
MIN_CLASS_SAMPLES = 10
#: UMAP settings of GEMDiff.
UMAP_NEIGHBOURS = 90
UMAP_MIN_DIST = 0.3
#: Fewer samples than this cannot give a meaningful UMAP embedding.
MIN_UMAP_SAMPLES = 10
#: Wider data is projected onto this many principal components of the real data before UMAP.
UMAP_MAX_DIM = 50
#: Silhouettes of larger embeddings are computed on a seeded subsample of this many points.
SILHOUETTE_ROWS = 10_000
#: Row chunks of the column statistics hold about this many bytes of float64.
CHUNK_BYTES = 64 * 2**20


# ---------------------------------------------------------------- input checks


def _matrix(data: Any, what: str, min_rows: int) -> np.ndarray:
    """The expression matrix of ``data`` after checking it is expression data with finite values."""
    X, genes = getattr(data, "X", None), getattr(data, "genes", None)
    if getattr(data, "modality", None) != "expression" or X is None or genes is None:
        raise OmigenInputError(f"{what} is {getattr(data, 'modality', type(data).__name__)} data, "
                               f"not expression data")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != len(genes):
        raise OmigenInputError(f"{what} matrix of shape {X.shape} does not match its {len(genes)} genes")
    if X.shape[0] < min_rows:
        raise OmigenInputError(f"{what} has {X.shape[0]} samples; at least {min_rows} are needed")
    # A non-finite value makes its column's float64 sum non-finite; summing avoids a full-size mask.
    if not np.isfinite(X.sum(axis=0, dtype=np.float64)).all():
        raise OmigenInputError(f"{what} contains non-finite values")
    return X


def _same_genes(real: Any, other: Any, what: str) -> None:
    """Raise unless ``other`` lists exactly the genes of ``real``, in the same order."""
    a = np.asarray(real.genes).astype(str)
    b = np.asarray(other.genes).astype(str)
    if a.shape != b.shape:
        raise OmigenInputError(f"real data has {a.size} genes but {what} has {b.size}")
    diff = np.flatnonzero(a != b)
    if diff.size:
        j = int(diff[0])
        raise OmigenInputError(f"{what} has gene {str(b[j])!r} at position {j + 1} where the real data has "
                               f"{str(a[j])!r}; both must list the same genes in the same order")


def _pair(real: Any, synthetic: Any, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    Xr = _matrix(real, "real data", min_rows)
    Xs = _matrix(synthetic, "synthetic data", min_rows)
    _same_genes(real, synthetic, "synthetic data")
    return Xr, Xs


def _labels(data: Any, what: str, metric: str) -> np.ndarray:
    if getattr(data, "labels", None) is None:
        raise OmigenInputError(f"{what} has no labels; metric {metric!r} needs labelled data")
    return np.asarray(data.labels).astype(str)


# ---------------------------------------------------------------- correlation


def _row_chunks(n_rows: int, n_cols: int) -> list[slice]:
    step = max(1, CHUNK_BYTES // (8 * max(n_cols, 1)))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def column_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column variance and a mask of constant columns, in float64, over row chunks.

    Sums are taken around the first row, which keeps the one-pass variance accurate for columns
    with a large mean. A column is constant when its maximum equals its minimum (exact, unlike a
    variance that rounding leaves slightly above zero).
    """
    X = np.asarray(X)
    shift = X[0].astype(np.float64)
    s1 = np.zeros(X.shape[1])
    s2 = np.zeros(X.shape[1])
    lo = np.full(X.shape[1], np.inf)
    hi = np.full(X.shape[1], -np.inf)
    for rows in _row_chunks(*X.shape):
        D = X[rows].astype(np.float64) - shift
        s1 += D.sum(axis=0)
        s2 += np.einsum("ij,ij->j", D, D)
        lo = np.minimum(lo, D.min(axis=0))
        hi = np.maximum(hi, D.max(axis=0))
    n = X.shape[0]
    var = np.maximum(s2 / n - (s1 / n) ** 2, 0.0)
    return var, hi == lo


def correlation_matrix(X: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix (float64) of columns ``cols`` of ``X``, none of them constant.

    The centred cross-product is accumulated over row chunks, so memory is one chunk plus the
    ``len(cols) x len(cols)`` result whatever the number of samples.
    """
    X = np.asarray(X)
    cols = np.asarray(cols)
    chunks = _row_chunks(X.shape[0], cols.size)
    mean = sum(X[rows][:, cols].sum(axis=0, dtype=np.float64) for rows in chunks) / X.shape[0]
    cross = np.zeros((cols.size, cols.size))
    for rows in chunks:
        Z = X[rows][:, cols].astype(np.float64) - mean
        cross += Z.T @ Z
    sd = np.sqrt(np.diag(cross))
    R = np.clip(cross / np.outer(sd, sd), -1.0, 1.0)
    np.fill_diagonal(R, 1.0)
    return R


def correlation_genes(Xr: np.ndarray, Xs: np.ndarray, max_genes: int = MAX_CORRELATION_GENES) -> np.ndarray:
    """Indices (ascending) of the genes the correlation score uses.

    Genes constant in either set are dropped; of the rest, the ``max_genes`` with the largest
    variance in the real data ``Xr`` are kept (stable sort: ties go to the earlier gene).
    """
    var_r, const_r = column_stats(Xr)
    _, const_s = column_stats(Xs)
    usable = np.flatnonzero(~const_r & ~const_s)
    if usable.size > max_genes:
        top = np.argsort(-var_r[usable], kind="stable")[:max_genes]
        usable = np.sort(usable[top])
    return usable


def compute_correlation(real: "ExpressionData", synthetic: "ExpressionData",
                        train: "ExpressionData | None" = None, seed: int = 0) -> dict[str, float]:
    """Agreement of gene-gene correlation structure (Viñas et al. 2022).

    ``score`` is the Pearson correlation between the upper-triangle entries of the real and the
    synthetic gene-gene correlation matrices (1 = same structure); ``mae`` is the mean absolute
    difference of those entries. Genes constant in either set are left out, and at most
    :data:`MAX_CORRELATION_GENES` of the most variable real genes are used. Deterministic; ``seed``
    and ``train`` are unused.
    """
    Xr, Xs = _pair(real, synthetic, min_rows=3)
    cols = correlation_genes(Xr, Xs)
    if cols.size < 3:
        raise OmigenInputError(f"metric 'correlation' needs at least 3 genes that vary in both real and "
                               f"synthetic data, found {cols.size}")
    upper = np.triu_indices(cols.size, k=1)
    a = correlation_matrix(Xr, cols)[upper]
    b = correlation_matrix(Xs, cols)[upper]
    for what, v in (("real", a), ("synthetic", b)):
        if np.ptp(v) == 0:
            raise OmigenInputError(f"every gene-gene correlation of the {what} data is {v[0]:.3g}; "
                                   f"the correlation score is undefined")
    return {"score": float(np.corrcoef(a, b)[0, 1]), "mae": float(np.abs(a - b).mean())}


# ---------------------------------------------------------------- per class


def compute_per_class(real: "ExpressionData", synthetic: "ExpressionData",
                      train: "ExpressionData | None" = None, seed: int = 0) -> dict[str, float]:
    """MMD² and C2ST AUC within each class present in both sets, summarised by mean and maximum.

    Classes with fewer than :data:`MIN_CLASS_SAMPLES` samples in either set are skipped; an
    error is raised when none is left. MMD² (unbiased, RBF, median bandwidth of the real class)
    runs on genes standardised by the whole real set; C2ST uses the raw values. ``classes`` is
    the number of classes scored.
    """
    from omigen.metrics.detection import c2st_auc
    from omigen.metrics.distances import standardise
    from omigen.metrics.mmd import mmd2_rbf

    Xr, Xs = _pair(real, synthetic, min_rows=1)
    yr = _labels(real, "real data", "per-class")
    ys = _labels(synthetic, "synthetic data", "per-class")
    names_r, counts_r = np.unique(yr, return_counts=True)
    names_s, counts_s = np.unique(ys, return_counts=True)
    n_r, n_s = dict(zip(names_r, counts_r)), dict(zip(names_s, counts_s))
    classes = [c for c in sorted(set(n_r) & set(n_s))
               if n_r[c] >= MIN_CLASS_SAMPLES and n_s[c] >= MIN_CLASS_SAMPLES]
    if not classes:
        shown = ", ".join(f"{c}: {n_r.get(c, 0)} real / {n_s.get(c, 0)} synthetic"
                          for c in sorted(set(n_r) | set(n_s)))
        raise OmigenInputError(f"metric 'per-class' needs a class with at least {MIN_CLASS_SAMPLES} real and "
                               f"{MIN_CLASS_SAMPLES} synthetic samples ({shown})")
    Zr, Zs = standardise(Xr, Xs)
    mmd = np.empty(len(classes))
    auc = np.empty(len(classes))
    for i, c in enumerate(classes):
        in_r, in_s = yr == c, ys == c
        mmd[i] = mmd2_rbf(Zr[in_r], Zs[in_s], seed=seed)[0]
        auc[i] = c2st_auc(Xr[in_r], Xs[in_s], seed=seed)
    return {"mmd2_mean": float(mmd.mean()), "mmd2_max": float(mmd.max()),
            "auc_mean": float(auc.mean()), "auc_max": float(auc.max()), "classes": float(len(classes))}


# ---------------------------------------------------------------- UMAP silhouette


def umap_embedding(Z: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D UMAP embedding of the rows of ``Z`` with GEMDiff's settings, reproducible for ``seed``."""
    import umap

    reducer = umap.UMAP(n_components=2, n_neighbors=min(UMAP_NEIGHBOURS, Z.shape[0] - 1),
                        min_dist=UMAP_MIN_DIST, random_state=seed)
    with warnings.catch_warnings():
        # A fixed random_state makes umap run on one thread and say so; that is the intent.
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        return reducer.fit_transform(Z)


def _silhouette(E: np.ndarray, y: np.ndarray, seed: int) -> float:
    from sklearn.metrics import silhouette_score

    sample = SILHOUETTE_ROWS if E.shape[0] > SILHOUETTE_ROWS else None
    return float(silhouette_score(E, y, sample_size=sample, random_state=seed))


def _check_silhouette_labels(y: np.ndarray, what: str) -> None:
    k = np.unique(y).size
    if k < 2:
        raise OmigenInputError(f"metric 'umap-silhouette' needs at least 2 classes, {what} has {k}")
    if k > y.size - 1:
        raise OmigenInputError(f"metric 'umap-silhouette' needs fewer classes than samples, {what} has "
                               f"{k} classes in {y.size} samples")


def compute_umap_silhouette(real: "ExpressionData", synthetic: "ExpressionData",
                            train: "ExpressionData | None" = None, seed: int = 0) -> dict[str, float]:
    """Silhouette of the class labels on 2-D UMAP embeddings of the synthetic and of the real data.

    Each set is embedded on its own after standardising by the real data (and, beyond
    :data:`UMAP_MAX_DIM` genes, projecting on the real data's top principal components).
    ``gap`` is ``|synthetic - real|``: a generator should separate classes as well as real data
    does, no better and no worse.
    """
    from omigen.metrics.distances import standardise

    Xr, Xs = _pair(real, synthetic, min_rows=MIN_UMAP_SAMPLES)
    yr = _labels(real, "real data", "umap-silhouette")
    ys = _labels(synthetic, "synthetic data", "umap-silhouette")
    _check_silhouette_labels(yr, "real data")
    _check_silhouette_labels(ys, "synthetic data")
    Zr, Zs = standardise(Xr, Xs)
    if Zr.shape[1] > UMAP_MAX_DIM:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(UMAP_MAX_DIM, Zr.shape[0]), random_state=seed).fit(Zr)
        Zr, Zs = pca.transform(Zr), pca.transform(Zs)
    syn = _silhouette(umap_embedding(Zs, seed), ys, seed)
    ref = _real_silhouette(Zr, yr, seed)
    return {"synthetic": syn, "real": ref, "gap": abs(syn - ref)}


_REAL_SILHOUETTES: dict[str, float] = {}


def _real_silhouette(Zr: np.ndarray, yr: np.ndarray, seed: int) -> float:
    """The real data's silhouette, fitted once per data and seed: an evaluation scores the same
    real set against every row (model, baselines, reference), and each UMAP fit takes seconds."""
    import hashlib

    digest = hashlib.sha1(np.ascontiguousarray(Zr, dtype=np.float64).tobytes())
    digest.update("\0".join(map(str, yr.tolist())).encode("utf-8"))
    key = f"{digest.hexdigest()}:{seed}"
    if key not in _REAL_SILHOUETTES:
        if len(_REAL_SILHOUETTES) >= 8:
            _REAL_SILHOUETTES.pop(next(iter(_REAL_SILHOUETTES)))
        _REAL_SILHOUETTES[key] = _silhouette(umap_embedding(Zr, seed), yr, seed)
    return _REAL_SILHOUETTES[key]


# ---------------------------------------------------------------- SVM label check


def compute_svm_accuracy(real: "ExpressionData", synthetic: "ExpressionData",
                         train: "ExpressionData | None" = None, seed: int = 0) -> dict[str, float]:
    """How well a linear SVM trained on real data recognises the intended labels of synthetic samples.

    A ``LinearSVC`` on standardised genes is fitted once on ``train``; ``accuracy`` and
    ``balanced_accuracy`` score its predictions against the synthetic labels and
    ``real_accuracy`` against the real held-out labels (the ceiling a generator can reach).
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if train is None:
        raise OmigenInputError("metric 'svm-accuracy' needs the model's training data")
    Xr, Xs = _pair(real, synthetic, min_rows=1)
    Xt = _matrix(train, "training data", min_rows=2)
    _same_genes(real, train, "training data")
    yr = _labels(real, "real data", "svm-accuracy")
    ys = _labels(synthetic, "synthetic data", "svm-accuracy")
    yt = _labels(train, "training data", "svm-accuracy")
    if np.unique(yt).size < 2:
        raise OmigenInputError("metric 'svm-accuracy' needs at least 2 classes in the training data")
    svm = make_pipeline(StandardScaler(), LinearSVC(max_iter=10_000, random_state=seed)).fit(Xt, yt)
    pred_s, pred_r = svm.predict(Xs), svm.predict(Xr)
    with warnings.catch_warnings():
        # A predicted class absent from the synthetic labels is a legitimate error, not a problem.
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(ys, pred_s)
    return {"accuracy": float(accuracy_score(ys, pred_s)), "balanced_accuracy": float(balanced),
            "real_accuracy": float(accuracy_score(yr, pred_r))}


METRICS: list[MetricSpec] = [
    MetricSpec("correlation", ("expression",), {"score": "higher", "mae": "lower"}, compute_correlation,
               description="agreement of gene-gene Pearson correlations, real vs synthetic (Viñas et al. 2022); "
                           f"at most {MAX_CORRELATION_GENES} most variable genes"),
    MetricSpec("per-class", ("expression",),
               {"mmd2_mean": "lower", "mmd2_max": "lower", "auc_mean": 0.5, "auc_max": 0.5, "classes": "info"},
               compute_per_class, needs_labels=True,
               description=f"MMD² and C2ST AUC within each class (>= {MIN_CLASS_SAMPLES} samples per side)"),
    MetricSpec("umap-silhouette", ("expression",), {"synthetic": "info", "real": "info", "gap": "lower"},
               compute_umap_silhouette, needs_labels=True,
               description="silhouette of class labels on 2-D UMAP of synthetic vs real data (GEMDiff settings)"),
    MetricSpec("svm-accuracy", ("expression",),
               {"accuracy": "higher", "balanced_accuracy": "higher", "real_accuracy": "info"},
               compute_svm_accuracy, needs_train=True, needs_labels=True,
               description="linear SVM fitted on real training data predicts the synthetic samples' labels"),
]

__all__ = ["METRICS", "MAX_CORRELATION_GENES", "MIN_CLASS_SAMPLES", "column_stats", "correlation_matrix",
           "correlation_genes", "compute_correlation", "compute_per_class", "umap_embedding",
           "compute_umap_silhouette", "compute_svm_accuracy"]
