"""Machine-learning utility: train on synthetic, test on real (TSTR), against train real, test real (TRTR)."""

from __future__ import annotations

import warnings

import numpy as np

from omigen.errors import OmigenInputError
from omigen.metrics.distances import as_matrix, same_width


def _labels(y, n: int, what: str) -> np.ndarray:
    if y is None:
        raise OmigenInputError(f"{what} has no labels; the utility metric needs labelled data")
    arr = np.asarray(y).astype(str)
    if arr.shape != (n,):
        raise OmigenInputError(f"{what} has {arr.shape[0] if arr.ndim else 0} labels for {n} samples")
    return arr


def _fit_score(X_fit: np.ndarray, y_fit: np.ndarray, X_eval: np.ndarray, y_eval: np.ndarray,
               seed: int) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes = np.unique(y_fit)
    if classes.size == 1:
        # A one-class training set cannot fit a classifier; the only sensible model predicts that class.
        pred = np.full(y_eval.shape, classes[0], dtype=y_eval.dtype)
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
        pred = model.fit(X_fit, y_fit).predict(X_eval)
    with warnings.catch_warnings():
        # Predicted classes absent from the evaluation labels are legitimate errors, not a problem.
        warnings.simplefilter("ignore", UserWarning)
        return float(accuracy_score(y_eval, pred)), float(balanced_accuracy_score(y_eval, pred))


def tstr(X_syn, y_syn, X_test, y_test, X_train, y_train, seed: int = 0) -> dict[str, float]:
    """Accuracy on the real test set of a classifier trained on synthetic data vs. on real training data.

    The classifier is a logistic regression on standardised features (scaler fitted on its own
    training set): fast, deterministic and stable on wide omics matrices, so differences reflect
    the data rather than the model's tuning. Returns ``tstr_accuracy``,
    ``tstr_balanced_accuracy`` (trained on synthetic) and ``trtr_accuracy``,
    ``trtr_balanced_accuracy`` (trained on real training data), all scored on the real test set.
    """
    Xs = as_matrix(X_syn, "synthetic data", min_rows=1)
    Xt = as_matrix(X_test, "real test data", min_rows=1)
    Xr = as_matrix(X_train, "real training data", min_rows=1)
    same_width(Xt, Xs, "real test data", "synthetic data")
    same_width(Xt, Xr, "real test data", "real training data")
    ys = _labels(y_syn, Xs.shape[0], "synthetic data")
    yt = _labels(y_test, Xt.shape[0], "real test data")
    yr = _labels(y_train, Xr.shape[0], "real training data")
    tstr_acc, tstr_bal = _fit_score(Xs, ys, Xt, yt, seed)
    trtr_acc, trtr_bal = _fit_score(Xr, yr, Xt, yt, seed)
    return {"tstr_accuracy": tstr_acc, "tstr_balanced_accuracy": tstr_bal,
            "trtr_accuracy": trtr_acc, "trtr_balanced_accuracy": trtr_bal}
