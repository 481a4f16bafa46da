"""Trivial generators every report compares a model against.

- ``marginals`` (all modalities): each feature drawn independently from its empirical
  distribution within the class, i.e. every column of a class's rows is resampled on its own.
  Expression resamples columns of ``X``, genotypes columns of ``G`` (the variant table is kept),
  sequences each position's base (a position-specific frequency sampler). It keeps every
  per-feature distribution and destroys all dependence between features.
- ``gaussian`` (expression): one multivariate normal per class with the class mean and sample
  covariance plus a small ridge; it keeps means and covariances and nothing of higher order.

Both return the training container's type with labels, fresh sample ids (``<name>_0001`` ...)
and values in the modality's domain. A class with a single training sample has no spread of
its own: ``marginals`` then resamples from the whole training set (so it never emits verbatim
copies of that one record), and ``gaussian`` centres the pooled within-class covariance of the
other classes on that sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from omigen.errors import OmigenInputError
from omigen.registry import MODALITIES, BaselineSpec

if TYPE_CHECKING:
    from omigen.data import Dataset

#: Ridge added to each Gaussian covariance, as a fraction of the mean per-gene variance.
RIDGE_FRACTION = 1e-3


def plan_counts(train: "Dataset", n_per_label: dict) -> list[tuple[str | None, np.ndarray, int]]:
    """``(label, training row indices, count)`` per requested label, validated (for any baseline)."""
    if len(train) == 0:
        raise OmigenInputError("cannot fit a baseline on an empty training set")
    if not isinstance(n_per_label, dict) or not n_per_label:
        raise OmigenInputError("n_per_label must map labels to sample counts")
    keys = list(n_per_label)
    if None in keys and len(keys) > 1:
        raise OmigenInputError("n_per_label mixes the unlabelled key None with labels")
    labels = None if train.labels is None else train.labels.astype(str)
    plan = []
    for label, n in n_per_label.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise OmigenInputError(f"sample count for label {label!r} must be a non-negative integer, got {n!r}")
        if label is None:
            rows = np.arange(len(train))
        elif labels is None:
            raise OmigenInputError(f"label {label!r} requested but the training data is unlabelled")
        else:
            rows = np.flatnonzero(labels == str(label))
            if rows.size == 0:
                known = ", ".join(train.classes)
                raise OmigenInputError(f"label {label!r} does not occur in the training data (known: {known})")
        plan.append((None if label is None else str(label), rows, int(n)))
    return plan


def sample_ids(name: str, n: int) -> np.ndarray:
    """``name_0001`` ... ``name_n``: ids for ``n`` generated samples."""
    width = max(4, len(str(n)))
    return np.char.add(f"{name}_", np.char.zfill(np.arange(1, n + 1).astype(str), width)).astype(object)


def plan_labels(plan) -> np.ndarray | None:
    """The label of every generated sample, in the order of :func:`plan_counts` (None if unlabelled)."""
    if plan[0][0] is None:
        return None
    return np.repeat(np.asarray([p[0] for p in plan], dtype=object), [p[2] for p in plan])


def _matrix(train: "Dataset") -> np.ndarray:
    """The modality's value matrix that columns are resampled from."""
    if train.modality == "expression":
        return train.X
    if train.modality == "genotype":
        return train.G
    if train.modality == "sequence":
        codes = train.codes()
        if (codes < 0).any():
            raise OmigenInputError("training sequences contain characters other than A, C, G, T")
        return codes
    raise OmigenInputError(f"no baseline knows the modality {train.modality!r}")


def _rebuild(train: "Dataset", values: np.ndarray, ids: np.ndarray, labels: np.ndarray | None) -> "Dataset":
    """A container of ``train``'s type holding ``values`` (same features, fresh ids and labels)."""
    from omigen.data import ALPHABET, ExpressionData, GenotypeData, SequenceData

    if train.modality == "expression":
        return ExpressionData(X=values, genes=train.genes, samples=ids, labels=labels, units=train.units)
    if train.modality == "genotype":
        return GenotypeData(G=values, samples=ids, variants=train.variants, labels=labels, meta=dict(train.meta))
    letters = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)[values.astype(np.intp)]
    seqs = np.frombuffer(np.ascontiguousarray(letters).tobytes(), dtype=f"S{values.shape[1]}")
    return SequenceData(sequences=seqs.astype(str).astype(object), samples=ids, labels=labels)


def generate_marginals(train: "Dataset", n_per_label: dict, seed: int = 0) -> "Dataset":
    """Independent per-feature empirical marginals per class, for any modality.

    For each requested label, an index matrix (samples x features) of training rows of that
    class is drawn at once and each column taken from its own row. A class with one training
    sample is drawn from the whole training set instead.
    """
    plan = plan_counts(train, n_per_label)
    M = _matrix(train)
    rng = np.random.default_rng(seed)
    blocks = []
    for _, rows, n in plan:
        pool = rows if rows.size > 1 else np.arange(len(train))
        pick = pool[rng.integers(0, pool.size, size=(n, M.shape[1]))]
        blocks.append(np.take_along_axis(M, pick, axis=0))
    values = np.concatenate(blocks) if blocks else M[:0]
    return _rebuild(train, values, sample_ids("marginals", values.shape[0]), plan_labels(plan))


def _pooled_residuals(X: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Rows centred on their class mean, scaled so that ``R.T @ R`` is the pooled within-class covariance.

    Only classes with two or more samples contribute; with none (or no labels) the whole set
    is centred on its grand mean, and a single sample leaves a zero residual.
    """
    if labels is not None:
        _, inv, counts = np.unique(labels.astype(str), return_inverse=True, return_counts=True)
        keep = counts[inv] > 1
        if keep.any():
            sums = np.zeros((counts.size, X.shape[1]))
            np.add.at(sums, inv, X)
            R = (X - (sums / counts[:, None])[inv])[keep]
            return R / np.sqrt(R.shape[0] - int((counts > 1).sum()))
    if X.shape[0] > 1:
        return (X - X.mean(axis=0)) / np.sqrt(X.shape[0] - 1)
    return np.zeros((1, X.shape[1]))


def generate_gaussian(train: "Dataset", n_per_label: dict, seed: int = 0) -> "Dataset":
    """One multivariate Gaussian per class (class mean, sample covariance + ridge), expression only.

    Draws ``mu + z @ R + sqrt(ridge) * e`` with ``R`` the class's centred rows over
    ``sqrt(n - 1)``, so the covariance ``R.T R + ridge I`` is never formed (cheap for many genes).
    The ridge is :data:`RIDGE_FRACTION` of the mean gene variance. A single-sample class uses the
    pooled within-class residuals of the classes with two or more samples. Non-negative training
    data (counts, log counts) yields non-negative samples: values below 0 are clipped to 0.
    """
    if train.modality != "expression":
        raise OmigenInputError(f"the gaussian baseline is for expression data, not {train.modality}")
    plan = plan_counts(train, n_per_label)
    X = np.asarray(train.X, dtype=np.float64)
    rng = np.random.default_rng(seed)
    blocks = []
    for _, rows, n in plan:
        mu = X[rows].mean(axis=0)
        if rows.size > 1:
            R = (X[rows] - mu) / np.sqrt(rows.size - 1)
        else:
            R = _pooled_residuals(X, train.labels)
        ridge = RIDGE_FRACTION * float((R ** 2).sum(axis=0).mean())
        z = rng.standard_normal((n, R.shape[0]))
        e = rng.standard_normal((n, X.shape[1]))
        blocks.append(mu + z @ R + np.sqrt(ridge) * e)
    values = np.concatenate(blocks) if blocks else X[:0]
    if X.size and X.min() >= 0:
        values = np.clip(values, 0.0, None)
    return _rebuild(train, values.astype(np.float32), sample_ids("gaussian", values.shape[0]), plan_labels(plan))


BASELINES: list[BaselineSpec] = [
    BaselineSpec("marginals", MODALITIES, generate_marginals,
                 description="independent per-feature empirical marginals within each class"),
    BaselineSpec("gaussian", ("expression",), generate_gaussian,
                 description="per-class multivariate Gaussian (mean, covariance + small ridge)"),
]
