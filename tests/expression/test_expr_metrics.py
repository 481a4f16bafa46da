"""Expression metrics: hand-computed correlation scores, per-class distances, UMAP silhouettes, the SVM check."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from omigen.data import ExpressionData, SequenceData
from omigen.errors import OmigenInputError
from omigen.metrics.distances import standardise
from omigen.metrics.mmd import mmd2_rbf
from omigen.registry import Registry
from omigen_expression import metrics as em
from omigen_expression.metrics import (METRICS, column_stats, compute_correlation, compute_per_class,
                                       compute_svm_accuracy, compute_umap_silhouette, correlation_genes,
                                       correlation_matrix)


def expr(X, labels=None, genes=None, tag="s"):
    X = np.asarray(X, dtype=np.float32)
    genes = [f"g{j}" for j in range(X.shape[1])] if genes is None else genes
    return ExpressionData(X=X, genes=genes, samples=[f"{tag}{i}" for i in range(X.shape[0])], labels=labels)


def blocks(n, seed, genes_per_block=10, n_blocks=3):
    """Genes in blocks driven by one shared factor each: strong within-block, ~0 between-block correlation."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, n_blocks))
    X = np.repeat(factors, genes_per_block, axis=1) + 0.5 * rng.normal(size=(n, n_blocks * genes_per_block))
    return X + 5.0


def two_class(n, seed, shift_b=0.0, d=4, sep=2.0, tag="s"):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(size=(n, d)), rng.normal(size=(n, d)) + sep + shift_b])
    return expr(X, labels=np.repeat(["A", "B"], n), tag=tag)


# ---------------------------------------------------------------- correlation

G0 = np.array([1.0, -1.0, 1.0, -1.0])
G2_ORTHOGONAL = np.array([1.0, 1.0, -1.0, -1.0])


def test_correlation_hand_computed_cases():
    # Real pairs (01, 02, 12) have correlations (1, -1, -1).
    real = expr(np.stack([G0, G0, -G0], axis=1))
    # Synthetic (-1, -1, 1): deviations (4, -2, -2)/3 and (-2, -2, 4)/3 give r = -12/24 = -0.5; mae (2+0+2)/3.
    flipped = expr(np.stack([G0, -G0, -G0], axis=1))
    out = compute_correlation(real, flipped)
    assert out["score"] == pytest.approx(-0.5, abs=1e-9)
    assert out["mae"] == pytest.approx(4 / 3, abs=1e-9)
    # Synthetic (1, 0, 0) is an affine image of (1, -1, -1): score 1 although every |difference| is 0 or 1.
    affine = expr(np.stack([G0, G0, G2_ORTHOGONAL], axis=1))
    out = compute_correlation(real, affine)
    assert out["score"] == pytest.approx(1.0, abs=1e-9)
    assert out["mae"] == pytest.approx(2 / 3, abs=1e-9)


def test_correlation_identical_is_one_and_shuffled_structure_is_near_zero():
    X = blocks(200, seed=0)
    real = expr(X)
    same = compute_correlation(real, expr(X.copy()))
    assert same["score"] == pytest.approx(1.0, abs=1e-12) and same["mae"] == pytest.approx(0.0, abs=1e-12)
    fresh = compute_correlation(real, expr(blocks(200, seed=1)))
    assert fresh["score"] > 0.95 and fresh["mae"] < 0.1
    # Shuffling each gene on its own keeps every marginal but destroys the gene-gene structure.
    rng = np.random.default_rng(2)
    shuffled = np.take_along_axis(X, rng.permuted(np.tile(np.arange(200)[:, None], (1, X.shape[1])), axis=0),
                                  axis=0)
    out = compute_correlation(real, expr(shuffled))
    assert abs(out["score"]) < 0.2 and out["mae"] > 0.2 > 2 * fresh["mae"]


def test_constant_genes_are_dropped_with_their_pairs():
    X = blocks(50, seed=3, genes_per_block=3, n_blocks=2)
    Y = blocks(50, seed=4, genes_per_block=3, n_blocks=2)
    base = compute_correlation(expr(X), expr(Y))
    Xc = np.concatenate([X, np.random.default_rng(5).normal(size=(50, 1))], axis=1)
    Yc = np.concatenate([Y, np.full((50, 1), 7.25)], axis=1)
    assert compute_correlation(expr(Xc), expr(Yc)) == pytest.approx(base, abs=1e-12)
    assert compute_correlation(expr(Yc), expr(Xc)) == pytest.approx(compute_correlation(expr(Y), expr(X)),
                                                                     abs=1e-12)
    with pytest.raises(OmigenInputError, match="at least 3 genes that vary"):
        compute_correlation(expr(np.concatenate([X[:, :2], np.ones((50, 3))], axis=1)), expr(Yc[:, 1:6]))


def test_gene_cap_keeps_the_most_variable_real_genes_that_vary_in_both():
    rng = np.random.default_rng(6)
    scales = np.array([1.0, 5.0, 3.0, 4.0, 2.0, 5.0])
    Xr = rng.normal(size=(400, 6)) * scales
    Xs = rng.normal(size=(400, 6))
    Xs[:, 3] = 1.0  # the third most variable real gene is constant in the synthetic data
    np.testing.assert_array_equal(correlation_genes(Xr, Xs, max_genes=3), [1, 2, 5])
    np.testing.assert_array_equal(correlation_genes(Xr, Xs, max_genes=10), [0, 1, 2, 4, 5])
    # Exact ties go to the earlier gene.
    tied = np.tile(np.array([[0.0], [1.0]]), (3, 4))
    np.testing.assert_array_equal(correlation_genes(tied, tied, max_genes=2), [0, 1])


def test_chunked_statistics_match_numpy(monkeypatch):
    rng = np.random.default_rng(7)
    X = (rng.normal(size=(37, 5)) + np.array([0.0, 1e6, -3.0, 0.0, 2.0])).astype(np.float64)
    X[:, 3] = 4.5
    monkeypatch.setattr(em, "CHUNK_BYTES", 8 * 5 * 4)  # four rows a chunk: ten chunks
    var, constant = column_stats(X)
    np.testing.assert_allclose(var, X.var(axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(constant, [False, False, False, True, False])
    cols = np.array([0, 1, 4])
    np.testing.assert_allclose(correlation_matrix(X, cols), np.corrcoef(X[:, cols], rowvar=False), atol=1e-9)


# ---------------------------------------------------------------- per class


def test_per_class_same_distribution_is_near_null():
    out = compute_per_class(two_class(60, seed=10), two_class(60, seed=20, tag="y"), seed=0)
    assert out["classes"] == 2
    assert abs(out["mmd2_mean"]) < 0.03 and out["mmd2_max"] < 0.05
    assert abs(out["auc_mean"] - 0.5) < 0.1 and out["auc_max"] < 0.65


def test_per_class_max_picks_the_shifted_class_and_small_classes_are_skipped():
    real, syn = two_class(60, seed=10), two_class(60, seed=30, shift_b=3.0, tag="y")
    out = compute_per_class(real, syn, seed=0)
    Zr, Zs = standardise(real.X, syn.X)
    by_class = {c: mmd2_rbf(Zr[real.labels == c], Zs[syn.labels == c], seed=0)[0] for c in ("A", "B")}
    assert by_class["B"] > 0.5 and by_class["A"] < 0.05
    assert out["mmd2_max"] == pytest.approx(by_class["B"], rel=1e-12)
    assert out["mmd2_mean"] == pytest.approx((by_class["A"] + by_class["B"]) / 2, rel=1e-12)
    assert out["auc_max"] > 0.95
    # A third class with 9 synthetic samples and one only the real data has are not scored.
    rng = np.random.default_rng(1)
    real3 = expr(np.concatenate([real.X, rng.normal(size=(20, 4)) - 5]),
                 np.concatenate([real.labels, ["C"] * 12, ["D"] * 8]))
    syn3 = expr(np.concatenate([syn.X, rng.normal(size=(9, 4)) - 5]),
                np.concatenate([syn.labels, ["C"] * 9]), tag="y")
    out3 = compute_per_class(real3, syn3, seed=0)
    assert out3["classes"] == 2
    assert out3["auc_max"] > 0.95 and out3["mmd2_max"] > 0.5


def test_per_class_errors():
    real = two_class(8, seed=1)
    with pytest.raises(OmigenInputError, match="at least 10 real and 10 synthetic"):
        compute_per_class(real, two_class(8, seed=2, tag="y"))
    unlabelled = expr(real.X)
    with pytest.raises(OmigenInputError, match="synthetic data has no labels"):
        compute_per_class(real, unlabelled)


# ---------------------------------------------------------------- UMAP silhouette


def test_umap_silhouette_separated_shuffled_and_identical():
    real = two_class(30, seed=40, d=6, sep=8.0)
    syn = two_class(30, seed=41, d=6, sep=8.0, tag="y")
    out = compute_umap_silhouette(real, syn, seed=0)
    assert out["synthetic"] > 0.7 and out["real"] > 0.7 and out["gap"] < 0.2
    assert out["gap"] == pytest.approx(abs(out["synthetic"] - out["real"]), abs=1e-12)
    shuffled = expr(syn.X, np.random.default_rng(0).permutation(syn.labels), tag="y")
    out_shuffled = compute_umap_silhouette(real, shuffled, seed=0)
    assert abs(out_shuffled["synthetic"]) < 0.15 and out_shuffled["gap"] > 0.55
    assert out_shuffled["real"] == pytest.approx(out["real"], abs=1e-12)
    # The same data and seed give the same embedding: no gap at all.
    assert compute_umap_silhouette(real, expr(real.X, real.labels, tag="y"), seed=0)["gap"] == 0.0
    # Wider than UMAP_MAX_DIM genes: embedded from the real data's top principal components.
    wide_real, wide_syn = two_class(30, seed=42, d=60, sep=3.0), two_class(30, seed=43, d=60, sep=3.0, tag="y")
    assert wide_real.X.shape[1] > em.UMAP_MAX_DIM
    out_wide = compute_umap_silhouette(wide_real, wide_syn, seed=0)
    assert out_wide["synthetic"] > 0.7 and out_wide["real"] > 0.7


def test_umap_silhouette_needs_two_classes_and_enough_samples():
    real = two_class(30, seed=40)
    one = expr(real.X, ["A"] * 60, tag="y")
    with pytest.raises(OmigenInputError, match="at least 2 classes, synthetic data has 1"):
        compute_umap_silhouette(real, one)
    with pytest.raises(OmigenInputError, match="at least 10 are needed"):
        compute_umap_silhouette(real, two_class(4, seed=1, tag="y"))


# ---------------------------------------------------------------- SVM accuracy


def test_svm_accuracy_correct_swapped_and_partly_wrong_labels():
    train, test = two_class(40, seed=50, sep=6.0), two_class(20, seed=51, sep=6.0, tag="t")
    syn = two_class(20, seed=52, sep=6.0, tag="y")
    out = compute_svm_accuracy(test, syn, train=train)
    assert out == {"accuracy": 1.0, "balanced_accuracy": 1.0, "real_accuracy": 1.0}
    swapped = expr(syn.X, np.where(syn.labels == "A", "B", "A"), tag="y")
    out = compute_svm_accuracy(test, swapped, train=train)
    assert out["accuracy"] == 0.0 and out["balanced_accuracy"] == 0.0 and out["real_accuracy"] == 1.0
    # Five A-like samples meant as B: 35/40 right; recall A = 15/15, recall B = 20/25, balanced 0.9.
    wrong = syn.labels.copy()
    wrong[:5] = "B"
    out = compute_svm_accuracy(test, expr(syn.X, wrong, tag="y"), train=train)
    assert out["accuracy"] == pytest.approx(35 / 40) and out["balanced_accuracy"] == pytest.approx(0.9)


def test_svm_accuracy_errors():
    train, test = two_class(20, seed=50), two_class(20, seed=51, tag="t")
    with pytest.raises(OmigenInputError, match="needs the model's training data"):
        compute_svm_accuracy(test, test)
    with pytest.raises(OmigenInputError, match="at least 2 classes in the training data"):
        compute_svm_accuracy(test, test, train=expr(train.X, ["A"] * 40))
    renamed = expr(train.X, train.labels, genes=["g0", "g1", "x", "g3"])
    with pytest.raises(OmigenInputError, match="training data has gene 'x' at position 3"):
        compute_svm_accuracy(test, test, train=renamed)


# ---------------------------------------------------------------- all metrics


@pytest.mark.parametrize("spec", METRICS, ids=lambda s: s.name)
def test_gene_mismatch_and_wrong_modality_raise(spec):
    real = two_class(15, seed=60)
    reordered = expr(real.X[:, ::-1], real.labels, genes=["g3", "g2", "g1", "g0"], tag="y")
    with pytest.raises(OmigenInputError, match="gene 'g3' at position 1 where the real data has 'g0'"):
        spec.compute(real, reordered, train=real, seed=0)
    narrow = expr(real.X[:, :3], real.labels, tag="y")
    with pytest.raises(ValueError, match="real data has 4 genes but synthetic data has 3"):
        spec.compute(real, narrow, train=real, seed=0)
    dna = SequenceData(["ACGT"] * 30, [f"q{i}" for i in range(30)], real.labels)
    with pytest.raises(OmigenInputError, match="synthetic data is sequence data, not expression data"):
        spec.compute(real, dna, train=real, seed=0)


def test_every_spec_validates_registers_and_returns_exactly_its_outputs():
    real, syn = two_class(20, seed=70, sep=4.0), two_class(20, seed=71, sep=4.0, tag="y")
    train = two_class(20, seed=72, sep=4.0, tag="t")
    registry = Registry()
    for spec in METRICS:
        spec.validate()
        registry.add(spec, "expression")
        assert spec.modalities == ("expression",) and spec.description
        out = spec.compute(real, syn, train=train, seed=0)
        assert set(out) == set(spec.outputs)
        assert all(isinstance(v, float) and np.isfinite(v) for v in out.values())
        assert spec.compute(real, syn, train=train, seed=0) == out  # deterministic for a seed
    assert [s.name for s in registry.metrics("expression")] == [
        "correlation", "per-class", "umap-silhouette", "svm-accuracy"]


def test_importing_the_metrics_module_stays_light():
    code = ("import sys, omigen_expression.metrics; "
            "print([m for m in ('torch', 'sklearn', 'scipy', 'umap', 'pandas') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
