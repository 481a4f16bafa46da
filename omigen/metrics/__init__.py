"""Generic metrics that apply to every modality through ``Dataset.features()``.

Each compute function takes omigen containers (``real`` held-out data, ``synthetic`` data and,
where declared, the model's ``train`` data) and returns exactly the keys of its spec's
``outputs``. Distance-based metrics (MMD, Fréchet, PRDC) work on features standardised by the
real data's mean and standard deviation, so no gene, position or variant dominates by its scale
alone; the privacy metric standardises by the training set (the records it protects). C2ST's
trees and the utility classifier's own scaler do not need it.

This module stays light: the numeric modules (and scikit-learn) load only when a metric runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from omigen.errors import OmigenInputError
from omigen.registry import MODALITIES, MetricSpec

if TYPE_CHECKING:
    import numpy as np

    from omigen.data import Dataset


def _features(real: "Dataset", synthetic: "Dataset") -> tuple["np.ndarray", "np.ndarray"]:
    from omigen.metrics.distances import as_matrix, same_width

    X = as_matrix(real.features(), "real data")
    Y = as_matrix(synthetic.features(), "synthetic data")
    same_width(X, Y)
    return X, Y


def _standardised(real: "Dataset", synthetic: "Dataset") -> tuple["np.ndarray", "np.ndarray"]:
    from omigen.metrics.distances import standardise

    X, Y = _features(real, synthetic)
    Xs, Ys = standardise(X, Y)
    return Xs, Ys


def _need_train(name: str, train: "Dataset | None") -> "Dataset":
    if train is None:
        raise OmigenInputError(f"metric {name!r} needs the model's training data")
    return train


def compute_mmd(real: "Dataset", synthetic: "Dataset", train: "Dataset | None" = None,
                seed: int = 0) -> dict[str, float]:
    """Unbiased RBF-kernel MMD² on standardised features, median-heuristic bandwidth from the real data."""
    from omigen.metrics.mmd import mmd2_rbf

    mmd2, bandwidth = mmd2_rbf(*_standardised(real, synthetic), seed=seed)
    return {"mmd2": mmd2, "bandwidth": bandwidth}


def compute_frechet(real: "Dataset", synthetic: "Dataset", train: "Dataset | None" = None,
                    seed: int = 0) -> dict[str, float]:
    """Fréchet distance on standardised features (top 256 real PCs when wider)."""
    from omigen.metrics.frechet import frechet_distance

    return {"frechet": frechet_distance(*_standardised(real, synthetic), seed=seed)}


def compute_prdc(real: "Dataset", synthetic: "Dataset", train: "Dataset | None" = None,
                 seed: int = 0) -> dict[str, float]:
    """Precision, recall, density, coverage with 5-NN balls on standardised features."""
    from omigen.metrics.prdc import prdc

    X, Y = _standardised(real, synthetic)
    k = min(5, X.shape[0] - 1, Y.shape[0] - 1)
    if k < 1:
        raise OmigenInputError("metric 'prdc' needs at least 2 real and 2 synthetic samples")
    return prdc(X, Y, k=k)


def compute_c2st(real: "Dataset", synthetic: "Dataset", train: "Dataset | None" = None,
                 seed: int = 0) -> dict[str, float]:
    """Classifier two-sample test AUC (gradient-boosted trees, 5-fold, balanced classes)."""
    from omigen.metrics.detection import c2st_auc

    return {"auc": c2st_auc(*_features(real, synthetic), seed=seed)}


def compute_utility(real: "Dataset", synthetic: "Dataset", train: "Dataset | None" = None,
                    seed: int = 0) -> dict[str, float]:
    """TSTR vs. TRTR accuracy of a standardised logistic regression, scored on the real test set."""
    from omigen.metrics.utility import tstr

    train = _need_train("utility", train)
    return tstr(synthetic.features(), synthetic.labels, real.features(), real.labels,
                train.features(), train.labels, seed=seed)


def compute_privacy(real: "Dataset", synthetic: "Dataset", train: "Dataset | None" = None,
                    seed: int = 0) -> dict[str, float]:
    """DCR, identical matches, nearest-neighbour adversarial accuracy against train and test, and a
    distance membership-inference AUC."""
    from omigen.metrics.privacy import privacy

    train = _need_train("privacy", train)
    out = privacy(synthetic.features(), train.features(), real.features(), seed=seed)
    return {key: out[key] for key in _PRIVACY_OUTPUTS}


_PRIVACY_OUTPUTS = {
    "dcr_synthetic_median": "info", "dcr_test_median": "info", "dcr_ratio": 1.0, "identical_rate": "lower",
    "aa_truth": 0.5, "aa_synth": 0.5, "aats_test": 0.5, "aats_train": "info", "privacy_loss": "lower",
    "membership_auc": 0.5,
}

METRICS: list[MetricSpec] = [
    MetricSpec("mmd", MODALITIES, {"mmd2": "lower", "bandwidth": "info"}, compute_mmd,
               description="unbiased RBF-kernel MMD² (median-heuristic bandwidth) on standardised features"),
    MetricSpec("frechet", MODALITIES, {"frechet": "lower"}, compute_frechet,
               description="Fréchet distance of fitted Gaussians (top 256 real PCs when wider)"),
    MetricSpec("prdc", MODALITIES,
               {"precision": "higher", "recall": "higher", "density": 1.0, "coverage": "higher"}, compute_prdc,
               description="precision/recall/density/coverage from 5-nearest-neighbour balls"),
    MetricSpec("c2st", MODALITIES, {"auc": 0.5}, compute_c2st,
               description="classifier two-sample test: cross-validated AUC of real vs synthetic"),
    MetricSpec("utility", MODALITIES,
               {"tstr_accuracy": "higher", "tstr_balanced_accuracy": "higher", "trtr_accuracy": "info",
                "trtr_balanced_accuracy": "info"}, compute_utility, needs_train=True, needs_labels=True,
               description="train on synthetic, test on real, against train on real (logistic regression)"),
    MetricSpec("privacy", MODALITIES, dict(_PRIVACY_OUTPUTS), compute_privacy, needs_train=True,
               description="distance to closest record, identical matches, nearest-neighbour adversarial accuracy"),
]

__all__ = ["METRICS", "compute_mmd", "compute_frechet", "compute_prdc", "compute_c2st", "compute_utility",
           "compute_privacy"]
