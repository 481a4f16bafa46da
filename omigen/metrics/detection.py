"""Classifier two-sample test: can a classifier tell synthetic samples from real ones?"""

from __future__ import annotations

import warnings

import numpy as np

from omigen.errors import OmigenInputError
from omigen.metrics.distances import as_matrix, same_width

#: Below this many samples (both classes together) the classifier runs on a single thread.
SMALL_SET = 5000
#: From this many samples on, boosting stops once a 10% validation split stops improving.
EARLY_STOP = 1000
#: Wider data (e.g. thousands of SNPs) is first projected onto this many top PCs of both sets pooled:
#: boosting over every raw column costs minutes and a few hundred samples cannot use them all.
#: (PCs of the real set alone would overfit it, and its own samples would stand out.)
MAX_FEATURES = 512
PROJECTED_DIM = 128


def balanced_pair(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Subsample the larger of ``real`` and ``fake`` (seeded) so both have the smaller set's size."""
    rng = np.random.default_rng(seed)
    n = min(real.shape[0], fake.shape[0])
    if real.shape[0] > n:
        real = real[np.sort(rng.choice(real.shape[0], n, replace=False))]
    if fake.shape[0] > n:
        fake = fake[np.sort(rng.choice(fake.shape[0], n, replace=False))]
    return real, fake


def c2st_auc(real, fake, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated ROC AUC of a classifier separating ``real`` (0) from ``fake`` (1).

    The larger set is subsampled (seeded) so the classes are balanced; a
    ``HistGradientBoostingClassifier`` is fitted in stratified ``folds``-fold cross-validation and
    its out-of-fold probabilities give one AUC over all samples (boosting stops early on sets of
    :data:`EARLY_STOP` samples or more). 0.5 means indistinguishable, 1.0 perfectly separable.
    ``folds`` is lowered to the per-class count for tiny sets. Data wider than
    :data:`MAX_FEATURES` is compared on its projection onto the top :data:`PROJECTED_DIM`
    principal components of both sets pooled.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    X = as_matrix(real, "real data", min_rows=2)
    Y = as_matrix(fake, "synthetic data", min_rows=2)
    same_width(X, Y)
    if folds < 2:
        raise OmigenInputError(f"C2ST needs at least 2 cross-validation folds, got {folds}")
    X, Y = balanced_pair(X, Y, seed)
    data = np.concatenate([X, Y])
    if data.shape[1] > MAX_FEATURES:
        from sklearn.decomposition import PCA

        k = min(PROJECTED_DIM, data.shape[0])
        data = PCA(n_components=k, random_state=seed).fit_transform(data)
    target = np.repeat([0, 1], [X.shape[0], Y.shape[0]])
    cv = StratifiedKFold(n_splits=min(folds, X.shape[0]), shuffle=True, random_state=seed)
    # Early stopping cuts the cost several-fold on larger sets (an indistinguishable pair stops
    # after a few rounds); below EARLY_STOP a 10% validation split is too small to judge by.
    clf = HistGradientBoostingClassifier(random_state=seed, early_stopping=data.shape[0] >= EARLY_STOP)
    # On small sets OpenMP start-up and synchronisation cost far more than the histograms they
    # parallelise (tens of times slower on a busy machine), so those run on one thread.
    threads = 1 if data.shape[0] < SMALL_SET else None
    with warnings.catch_warnings(), threadpool_limits(limits=threads, user_api="openmp"):
        # Constant columns (e.g. a one-hot base never seen) are harmless to the trees.
        warnings.simplefilter("ignore", UserWarning)
        proba = cross_val_predict(clf, data, target, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(target, proba))
