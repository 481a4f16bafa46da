"""Privacy: do synthetic samples sit closer to the training records than unseen real data does?

- Distance to closest record (DCR): each synthetic sample's distance to its nearest training
  record, against the same for each held-out test sample. ``dcr_ratio`` is the ratio of their
  medians: ~1 is ideal, below 1 means synthetic data hugs the training records.
- Identical-match rate: the fraction of synthetic rows exactly equal to some training row, found
  by hashing whole rows (no pairwise work).
- Nearest-neighbour adversarial accuracy (Yale et al., 2020) of a real set ``T`` against the
  synthetic set ``S``, both subsampled (seeded) to one size: ``aa_truth`` is the fraction of ``T``
  whose nearest other ``T`` sample is closer than their nearest ``S`` sample, ``aa_synth`` the same
  with the roles swapped, and AATS their mean. 0.5 means the sets are interleaved; near 0 means
  synthetic samples are copies of ``T``; near 1 means they are far from it. Exact ties (common in
  discrete data) count one half. Against the training set it gives ``aats_train``, against the
  test set ``aats_test``; ``privacy_loss = aats_test - aats_train`` is large when the generator
  reproduces its training records more closely than it reproduces unseen data.
- Membership inference by distance (the attack of Chen et al. 2020, "GAN-Leaks", with full access
  to the synthetic set): each training and each test record is scored by its distance to the
  closest synthetic sample, and ``membership_auc`` is the AUC of telling training members from
  test records by that score (closer = member). 0.5 means the synthetic set reveals nothing of
  who was in training; 1 means every member has a synthetic sample nearer than any outsider's.

Distances are Euclidean on features standardised by the training set's mean and standard
deviation (the records being protected), chunked as in :mod:`omigen.metrics.distances`.
"""

from __future__ import annotations

import numpy as np

from omigen.errors import OmigenInputError
from omigen.metrics.distances import as_matrix, knn_sq, same_width, standardise


def row_keys(X: np.ndarray) -> np.ndarray:
    """One hashable, sortable opaque key per row (its float32 bytes), for exact row matching."""
    # Adding 0.0 turns -0.0 into +0.0 so that equal values have equal bytes.
    a = np.ascontiguousarray(np.asarray(X, dtype=np.float32) + np.float32(0.0))
    return a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()


def identical_rate(synthetic, train) -> float:
    """Fraction of ``synthetic`` rows that equal some ``train`` row exactly (compared as float32)."""
    S = as_matrix(synthetic, "synthetic data")
    T = as_matrix(train, "real training data")
    same_width(T, S, "real training data", "synthetic data")
    return float(np.isin(row_keys(S), row_keys(T)).mean())


def dcr(A: np.ndarray, ref: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Euclidean distance from each row of ``A`` to its closest row of ``ref``."""
    return np.sqrt(knn_sq(A, ref, 1, chunk)[:, 0])


def _closer(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of entries with ``a < b``, ties (to rounding) counted one half."""
    tie = np.isclose(a, b, rtol=1e-9, atol=0.0)
    return float(np.where(tie, 0.5, a < b).mean())


def adversarial_accuracy(target: np.ndarray, synthetic: np.ndarray, seed: int = 0,
                         chunk: int = 2048) -> tuple[float, float]:
    """``(aa_truth, aa_synth)`` of real ``target`` against ``synthetic``, subsampled to equal size."""
    rng = np.random.default_rng(seed)
    n = min(target.shape[0], synthetic.shape[0])
    T = target[np.sort(rng.choice(target.shape[0], n, replace=False))] if target.shape[0] > n else target
    S = synthetic[np.sort(rng.choice(synthetic.shape[0], n, replace=False))] if synthetic.shape[0] > n else synthetic
    d_tt = knn_sq(T, T, 1, chunk, exclude_self=True)[:, 0]
    d_ts = knn_sq(T, S, 1, chunk)[:, 0]
    d_ss = knn_sq(S, S, 1, chunk, exclude_self=True)[:, 0]
    d_st = knn_sq(S, T, 1, chunk)[:, 0]
    return _closer(d_tt, d_ts), _closer(d_ss, d_st)


def membership_auc(member_distance: np.ndarray, outsider_distance: np.ndarray) -> float:
    """AUC of calling a record a training member when its distance to the synthetic set is smaller
    (ties count one half): 0.5 means the distances do not tell members from outsiders."""
    from sklearn.metrics import roc_auc_score

    a, b = np.asarray(member_distance, dtype=float), np.asarray(outsider_distance, dtype=float)
    if a.size == 0 or b.size == 0:
        raise OmigenInputError("membership inference needs training and test records")
    return float(roc_auc_score(np.r_[np.ones(a.size), np.zeros(b.size)], -np.concatenate([a, b])))


def privacy(synthetic, train, test, seed: int = 0, chunk: int = 2048) -> dict[str, float]:
    """All privacy numbers of ``synthetic`` against the ``train`` records and held-out ``test`` data.

    Every set needs at least 2 samples. Returns ``dcr_synthetic_median``, ``dcr_test_median``,
    ``dcr_ratio`` (inf when only the test median is 0, 1 when both are), ``identical_rate``,
    ``aa_truth`` and ``aa_synth`` (against the test set), ``aats_test``, ``aa_truth_train``,
    ``aa_synth_train``, ``aats_train``, ``privacy_loss`` and ``membership_auc``.
    """
    S = as_matrix(synthetic, "synthetic data", min_rows=2)
    T = as_matrix(train, "real training data", min_rows=2)
    E = as_matrix(test, "real test data", min_rows=2)
    same_width(T, S, "real training data", "synthetic data")
    same_width(T, E, "real training data", "real test data")
    ident = identical_rate(S, T)
    T, S, E = standardise(T, S, E)
    syn_med = float(np.median(dcr(S, T, chunk)))
    test_med = float(np.median(dcr(E, T, chunk)))
    if test_med > 0:
        ratio = syn_med / test_med
    else:
        ratio = 1.0 if syn_med == 0 else float("inf")
    aa_truth, aa_synth = adversarial_accuracy(E, S, seed, chunk)
    aa_truth_tr, aa_synth_tr = adversarial_accuracy(T, S, seed + 1, chunk)
    member = knn_sq(T, S, 1, chunk)[:, 0]
    outsider = knn_sq(E, S, 1, chunk)[:, 0]
    aats_test = 0.5 * (aa_truth + aa_synth)
    aats_train = 0.5 * (aa_truth_tr + aa_synth_tr)
    return {
        "dcr_synthetic_median": syn_med, "dcr_test_median": test_med, "dcr_ratio": ratio,
        "identical_rate": ident, "aa_truth": aa_truth, "aa_synth": aa_synth, "aats_test": aats_test,
        "aa_truth_train": aa_truth_tr, "aa_synth_train": aa_synth_tr, "aats_train": aats_train,
        "privacy_loss": aats_test - aats_train, "membership_auc": membership_auc(member, outsider),
    }
