"""Generic metrics: hand-checked small cases, brute-force references and the MetricSpec wrappers."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import sqrtm
from scipy.spatial.distance import cdist

from omigen.data import ExpressionData, GenotypeData, SequenceData
from omigen.errors import OmigenInputError
from omigen.metrics import METRICS
from omigen.metrics.detection import c2st_auc
from omigen.metrics.distances import count_within, knn_sq, standardise
from omigen.metrics.frechet import frechet_details, frechet_distance, frechet_from_stats
from omigen.metrics.mmd import median_bandwidth, mmd2_rbf
from omigen.metrics.prdc import prdc
from omigen.metrics.privacy import adversarial_accuracy, identical_rate, membership_auc, privacy
from omigen.metrics.utility import tstr
from omigen.registry import Registry


def gauss(n, d, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def col(*values):
    return np.asarray(values, dtype=float)[:, None]


# ---------------------------------------------------------------- distances


def test_knn_and_counts_match_brute_force_across_chunk_sizes():
    A, B = gauss(23, 4, seed=1), gauss(17, 4, seed=2)
    d2 = cdist(A, B, "sqeuclidean")
    self_d2 = cdist(A, A, "sqeuclidean") + np.diag(np.full(23, np.inf))
    radius2 = np.random.default_rng(3).uniform(1, 8, size=17)
    for chunk in (1, 5, 2048):
        np.testing.assert_allclose(knn_sq(A, B, 3, chunk), np.sort(d2, axis=1)[:, :3], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(knn_sq(A, A, 2, chunk, exclude_self=True), np.sort(self_d2, axis=1)[:, :2],
                                   rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(count_within(A, B, radius2, chunk), (d2 < radius2[None, :]).sum(axis=1))


def test_duplicate_rows_are_at_distance_exactly_zero():
    A = gauss(5, 30, shift=100.0)
    assert (knn_sq(A, A.copy(), 1)[:, 0] == 0).all()


def test_standardise_uses_the_reference_statistics_and_leaves_constant_columns_unscaled():
    ref = np.array([[0.0, 5.0], [2.0, 5.0]])
    other = np.array([[4.0, 7.0]])
    r, o = standardise(ref, other)
    np.testing.assert_allclose(r, [[-1, 0], [1, 0]])
    np.testing.assert_allclose(o, [[3, 2]])


# ---------------------------------------------------------------- MMD


def brute_mmd2(X, Y, bw):
    k = lambda a, b: math.exp(-float(((a - b) ** 2).sum()) / (2 * bw * bw))  # noqa: E731
    m, n = len(X), len(Y)
    kxx = sum(k(X[i], X[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(Y[i], Y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(X[i], Y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_mmd_matches_a_brute_force_double_loop():
    X, Y = gauss(20, 3, seed=4), gauss(20, 3, shift=0.7, seed=5)
    bw = float(np.median([np.linalg.norm(a - b) for a, b in itertools.combinations(X, 2)]))
    value, used = mmd2_rbf(X, Y)
    assert used == pytest.approx(bw)
    assert value == pytest.approx(brute_mmd2(X, Y, bw), rel=1e-10)
    assert mmd2_rbf(X, Y[:13], bandwidth=0.8)[0] == pytest.approx(brute_mmd2(X, Y[:13], 0.8), rel=1e-10)


def test_mmd_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    X = gauss(300, 5, seed=6)
    same, _ = mmd2_rbf(X, gauss(300, 5, seed=7))
    shifted, _ = mmd2_rbf(X, gauss(300, 5, shift=1.0, seed=8))
    assert abs(same) < 0.01
    assert shifted > 0.1
    assert abs(mmd2_rbf(X, X)[0]) < 0.01


def test_mmd_chunked_equals_unchunked():
    X, Y = gauss(50, 4, seed=9), gauss(41, 4, shift=0.3, seed=10)
    a, bw = mmd2_rbf(X, Y, chunk=2048)
    for chunk in (1, 7, 16):
        b, bw2 = mmd2_rbf(X, Y, chunk=chunk)
        assert b == pytest.approx(a, rel=1e-12) and bw2 == bw


def test_median_bandwidth_hand_checked_and_subsampled_deterministically():
    assert median_bandwidth(col(0, 1, 3)) == pytest.approx(2.0)  # distances 1, 3, 2
    assert median_bandwidth(col(4, 4, 4)) == 1.0
    X = gauss(3000, 2, seed=11)
    assert median_bandwidth(X, seed=1) == median_bandwidth(X, seed=1)


def test_mmd_rejects_mismatched_widths_and_bad_bandwidth():
    with pytest.raises(OmigenInputError, match="features"):
        mmd2_rbf(gauss(5, 3), gauss(5, 4))
    with pytest.raises(OmigenInputError, match="bandwidth"):
        mmd2_rbf(gauss(5, 3), gauss(5, 3), bandwidth=0.0)


# ---------------------------------------------------------------- Fréchet


def test_frechet_from_stats_closed_forms():
    # Diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2 = (1 + 4) + (1 + 1).
    assert frechet_from_stats([0, 0], np.diag([1.0, 4.0]), [1, 2], np.diag([4.0, 9.0])) == pytest.approx(7.0)
    assert frechet_from_stats([0.0], [[1.0]], [0.0], [[4.0]]) == pytest.approx(1.0)
    # Non-commuting covariances against the textbook sqrtm formula.
    rng = np.random.default_rng(12)
    A, B = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = A @ A.T + 0.1 * np.eye(4), B @ B.T + 0.1 * np.eye(4)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrtm(s1 @ s2)).real
    assert frechet_from_stats(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)


def test_frechet_of_samples():
    X = gauss(200, 3, seed=13)
    assert frechet_distance(X, X) == pytest.approx(0.0, abs=1e-9)
    shift = np.array([1.0, -2.0, 0.5])
    assert frechet_distance(X, X + shift) == pytest.approx(float(shift @ shift), rel=1e-9)
    # Large samples of N(0, I) and N(mu, 4I): closed form |mu|^2 + 3 * (1 - 2)^2.
    big_x, big_y = gauss(20000, 3, seed=14), 2 * gauss(20000, 3, seed=15) + shift
    assert frechet_distance(big_x, big_y) == pytest.approx(float(shift @ shift) + 3.0, abs=0.15)


def test_frechet_singular_covariance_stays_real_and_zero_on_identical_sets():
    X = gauss(10, 40, seed=16)  # n < d: rank-deficient covariance
    value, dim = frechet_details(X, X)
    assert dim == 40 and value == pytest.approx(0.0, abs=1e-8)


def test_frechet_projects_wide_data_onto_top_real_pcs():
    X, Y = gauss(60, 300, seed=17), gauss(50, 300, shift=0.5, seed=18)
    value, dim = frechet_details(X, Y)
    assert dim == 60
    assert frechet_details(X, Y, max_dim=8)[1] == 8
    assert value > 0 and frechet_details(X, X)[0] == pytest.approx(0.0, abs=1e-8)


# ---------------------------------------------------------------- PRDC


def test_prdc_hand_checked_one_dimensional_case():
    real, fake = col(0, 1, 3, 6), col(0.5, 2.5, 10, 11)
    # Real 1-NN radii 1, 1, 2, 3; fake radii 2, 2, 1, 1 (worked out by hand).
    assert prdc(real, fake, k=1) == pytest.approx(
        {"precision": 0.5, "recall": 0.75, "density": 0.75, "coverage": 0.75})


def test_prdc_perfect_on_identical_sets_and_precision_drops_for_a_shift():
    X = gauss(200, 4, seed=19)
    assert prdc(X, X.copy()) == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}
    fresh = prdc(X, gauss(200, 4, seed=20))
    shifted = prdc(X, gauss(200, 4, shift=3.0, seed=21))
    assert fresh["precision"] > 0.7 and fresh["coverage"] > 0.8
    assert shifted["precision"] < 0.3 and shifted["coverage"] < 0.3


def test_prdc_chunked_equals_unchunked():
    X, Y = gauss(40, 3, seed=22), gauss(35, 3, shift=0.4, seed=23)
    assert prdc(X, Y, k=3, chunk=4) == prdc(X, Y, k=3)


def test_prdc_needs_more_samples_than_k():
    with pytest.raises(OmigenInputError, match="at least 6"):
        prdc(gauss(5, 2), gauss(10, 2), k=5)


# ---------------------------------------------------------------- C2ST


def test_c2st_near_half_for_one_distribution_and_near_one_when_separated():
    X = gauss(200, 5, seed=24)
    assert abs(c2st_auc(X, gauss(300, 5, seed=25)) - 0.5) < 0.15
    assert c2st_auc(X, gauss(150, 5, shift=3.0, seed=26)) > 0.97
    assert c2st_auc(X, gauss(300, 5, seed=25), seed=3) == c2st_auc(X, gauss(300, 5, seed=25), seed=3)


def test_c2st_with_early_stopping_on_larger_sets():
    X = gauss(600, 5, seed=37)  # 1200 samples in all: boosting stops early
    assert abs(c2st_auc(X, gauss(600, 5, seed=38)) - 0.5) < 0.1
    assert c2st_auc(X, gauss(600, 5, shift=2.0, seed=39)) > 0.97


# ---------------------------------------------------------------- utility


def labelled(n, seed, flip=False):
    rng = np.random.default_rng(seed)
    y = np.repeat(["a", "b"], n // 2)
    X = rng.normal(size=(n, 4)) + np.where(y == "a", -3.0, 3.0)[:, None]
    return X, (y[::-1] if flip else y)


def test_utility_on_separable_data():
    (Xs, ys), (Xt, yt), (Xr, yr) = labelled(100, 27), labelled(60, 28), labelled(100, 29)
    good = tstr(Xs, ys, Xt, yt, Xr, yr)
    assert set(good) == {"tstr_accuracy", "tstr_balanced_accuracy", "trtr_accuracy", "trtr_balanced_accuracy"}
    assert good["tstr_accuracy"] > 0.95 and good["trtr_balanced_accuracy"] > 0.95
    Xb, yb = labelled(100, 27, flip=True)  # labels swapped: the classifier learns the opposite rule
    assert tstr(Xb, yb, Xt, yt, Xr, yr)["tstr_accuracy"] < 0.05


def test_utility_with_one_synthetic_class_predicts_that_class():
    (Xt, yt), (Xr, yr) = labelled(60, 30), labelled(40, 31)
    out = tstr(gauss(10, 4), np.full(10, "a"), Xt, yt, Xr, yr)
    assert out["tstr_accuracy"] == pytest.approx(0.5) and out["tstr_balanced_accuracy"] == pytest.approx(0.5)


# ---------------------------------------------------------------- privacy


def test_adversarial_accuracy_hand_checked():
    # d_TT = 1, 1, 1, 1; d_TS = 0, 1 (tie: one half), 0.5, 0.5 -> aa_truth = 0.5 / 4.
    # d_SS = 2, 2, 8.5, 39.5; d_ST = 0, 1, 0.5, 39 -> aa_synth = 0.
    aa_truth, aa_synth = adversarial_accuracy(col(0, 1, 10, 11), col(0, 2, 10.5, 50))
    assert aa_truth == pytest.approx(0.125) and aa_synth == 0.0


def test_identical_rate_hashes_rows_exactly():
    train = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    syn = np.array([[2.0, 3.0], [-0.0, 1.0], [4.0, 5.000001], [9.0, 9.0]])
    assert identical_rate(syn, train) == pytest.approx(0.5)


def test_privacy_of_a_copy_of_the_training_set():
    train, test = gauss(120, 6, seed=32), gauss(120, 6, seed=33)
    out = privacy(train.copy(), train, test)
    assert out["identical_rate"] == 1.0
    assert out["dcr_synthetic_median"] == 0.0 and out["dcr_ratio"] == 0.0
    assert out["aa_truth_train"] == 0.0 and out["aa_synth_train"] == 0.0 and out["aats_train"] == 0.0
    assert abs(out["aats_test"] - 0.5) < 0.1 and out["privacy_loss"] > 0.4
    assert out["membership_auc"] == 1.0  # every member is its own synthetic copy


def test_privacy_of_a_fresh_sample_from_the_same_distribution():
    train, test, syn = gauss(300, 6, seed=34), gauss(300, 6, seed=35), gauss(600, 6, seed=36)
    out = privacy(syn, train, test, seed=1)
    assert out["identical_rate"] == 0.0
    assert abs(out["dcr_ratio"] - 1.0) < 0.2
    assert abs(out["aats_test"] - 0.5) < 0.1 and abs(out["aats_train"] - 0.5) < 0.1
    assert abs(out["privacy_loss"]) < 0.1
    assert abs(out["membership_auc"] - 0.5) < 0.08
    assert privacy(syn, train, test, seed=1, chunk=7) == pytest.approx(out)


def test_membership_auc_ranks_nearer_records_as_members():
    assert membership_auc(np.array([0.1, 0.2]), np.array([0.3, 0.4, 0.5])) == 1.0
    assert membership_auc(np.array([0.5, 0.6]), np.array([0.1, 0.2])) == 0.0
    assert membership_auc(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.5  # ties count one half
    # Half the members sit on a synthetic sample, half as far as outsiders: AUC 0.75.
    assert membership_auc(np.array([0.0, 0.0, 1.0, 1.0]), np.array([1.0, 1.0])) == pytest.approx(0.75)
    with pytest.raises(OmigenInputError, match="membership inference"):
        membership_auc(np.array([]), np.array([1.0]))


def test_membership_auc_sees_synthetic_samples_near_half_the_members():
    train, test = gauss(200, 6, seed=37), gauss(200, 6, seed=38)
    near = train[:100] + 0.01 * gauss(100, 6, seed=39)
    syn = np.vstack([near, gauss(100, 6, seed=40)])
    out = privacy(syn, train, test, seed=2)
    assert 0.7 < out["membership_auc"] < 0.85


# ---------------------------------------------------------------- MetricSpec wrappers

SPEC_OUTPUTS = {
    "mmd": {"mmd2": "lower", "bandwidth": "info"},
    "frechet": {"frechet": "lower"},
    "prdc": {"precision": "higher", "recall": "higher", "density": 1.0, "coverage": "higher"},
    "c2st": {"auc": 0.5},
    "utility": {"tstr_accuracy": "higher", "tstr_balanced_accuracy": "higher", "trtr_accuracy": "info",
                "trtr_balanced_accuracy": "info"},
    "privacy": {"dcr_synthetic_median": "info", "dcr_test_median": "info", "dcr_ratio": 1.0,
                "identical_rate": "lower", "aa_truth": 0.5, "aa_synth": 0.5, "aats_test": 0.5,
                "aats_train": "info", "privacy_loss": "lower", "membership_auc": 0.5},
}


def toy(modality, n, seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(["x", "y"], n // 2)
    ids = [f"s{seed}_{i}" for i in range(n)]
    if modality == "expression":
        return ExpressionData(rng.gamma(2.0, size=(n, 8)) + (labels == "y")[:, None], [f"g{i}" for i in range(8)],
                              ids, labels).validate()
    if modality == "sequence":
        # Length 70 gives 280 one-hot features, so Fréchet takes its principal-component path.
        codes = rng.integers(0, 4, size=(n, 70))
        seqs = ["".join("ACGT"[c] for c in row) for row in codes]
        return SequenceData(seqs, ids, labels).validate()
    variants = pd.DataFrame({"id": [f"v{i}" for i in range(20)], "chrom": "1", "pos": np.arange(20) + 1,
                             "ref": "A", "alt": "G"})
    return GenotypeData(rng.integers(0, 3, size=(n, 20)), ids, variants, labels).validate()


def test_metric_specs_declare_the_documented_outputs_and_validate():
    assert {m.name: m.outputs for m in METRICS} == SPEC_OUTPUTS
    reg = Registry()
    for spec in METRICS:
        reg.add(spec, "core")
        assert set(spec.modalities) == {"expression", "sequence", "genotype"}
    flags = {m.name: (m.needs_train, m.needs_labels) for m in METRICS}
    assert flags["utility"] == (True, True) and flags["privacy"] == (True, False) and flags["mmd"] == (False, False)


@pytest.mark.parametrize("modality", ["expression", "sequence", "genotype"])
def test_every_metric_returns_exactly_its_keys_finite(modality):
    real, syn, train = toy(modality, 30, 1), toy(modality, 40, 2), toy(modality, 30, 3)
    for spec in METRICS:
        out = spec.compute(real, syn, train=train, seed=0)
        assert set(out) == set(spec.outputs), spec.name
        assert all(isinstance(v, float) and math.isfinite(v) for v in out.values()), (spec.name, out)


def test_wrappers_report_clear_errors():
    real, syn = toy("expression", 20, 1), toy("expression", 20, 2)
    by_name = {m.name: m for m in METRICS}
    with pytest.raises(OmigenInputError, match="training data"):
        by_name["privacy"].compute(real, syn)
    unlabelled = ExpressionData(syn.X, syn.genes, syn.samples)
    with pytest.raises(OmigenInputError, match="no labels"):
        by_name["utility"].compute(real, unlabelled, train=real)
    narrow = ExpressionData(syn.X[:, :5], syn.genes[:5], syn.samples)
    with pytest.raises(OmigenInputError, match="8 features"):
        by_name["mmd"].compute(real, narrow)


def test_importing_metrics_and_baselines_stays_light():
    code = ("import sys, omigen.metrics, omigen.baselines; "
            "print([m for m in ('torch', 'sklearn', 'scipy', 'matplotlib', 'umap') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_c2st_on_wide_data_uses_projection_and_still_detects():
    from omigen.metrics.detection import MAX_FEATURES, c2st_auc

    rng = np.random.default_rng(0)
    d = MAX_FEATURES + 300
    real = rng.normal(size=(300, d))
    same = rng.normal(size=(300, d))
    shifted = rng.normal(size=(300, d)) + 0.3
    assert abs(c2st_auc(real, same, seed=0) - 0.5) < 0.1
    assert c2st_auc(real, shifted, seed=0) > 0.9
