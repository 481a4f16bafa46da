"""k-mer spectra, GC, diversity, memorisation and detection features, checked on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from omigen.errors import OmigenInputError
from omigen_dna_latent import seqmetrics as sm
from omigen_dna_latent.io import encode


def test_kmer_index_and_spectrum_by_hand():
    codes = encode(["ACGT", "AAAA"])
    # AC=1, CG=6, GT=11, AA=0
    assert sm.kmer_index(codes, 2).tolist() == [[1, 6, 11], [0, 0, 0]]
    spec = sm.kmer_spectrum(codes, 2)
    assert spec.sum() == 6 and spec[0] == 3 and spec[1] == spec[6] == spec[11] == 1
    prof = sm.kmer_profiles(codes, 1)
    assert np.allclose(prof, [[0.25] * 4, [1, 0, 0, 0]])
    with pytest.raises(OmigenInputError, match="k-mer size 5"):
        sm.kmer_index(codes, 5)


def test_kmer_divergence_hand_checked():
    same = sm.kmer_divergence(encode(["ACGT"]), encode(["TGCA"]), ks=[1])
    assert same == {1: 0.0}
    # all-A vs all-C share no 1-mer: disjoint support, JS = 1 bit.
    assert sm.kmer_divergence(encode(["AAAA"]), encode(["CCCC"]), ks=[1])[1] == pytest.approx(1.0)
    # p = (1/2, 1/2, 0, 0), q = (1, 0, 0, 0): m = (3/4, 1/4); JS = 1 - (3/4) log2(4/3) * ... computed directly:
    p, q, m = np.array([0.5, 0.5]), np.array([1.0, 0.0]), np.array([0.75, 0.25])
    expected = 0.5 * (p * np.log2(p / m)).sum() + 0.5 * (q[:1] * np.log2(q[:1] / m[:1])).sum()
    got = sm.kmer_divergence(encode(["ACAC"]), encode(["AAAA"]), ks=[1])[1]
    assert got == pytest.approx(expected)
    two = sm.kmer_divergence(encode(["ACAC"]), encode(["CACA"]), ks=[1, 2])
    assert two[1] == 0.0 and two[2] > 0.0  # same bases, different 2-mer counts (AC x2 + CA vs CA x2 + AC)


def test_gc_distance_and_diversity():
    assert sm.gc_content(encode(["GGCC", "ATAT", "GCAT"])).tolist() == [1.0, 0.0, 0.5]
    # shifting every GC value by 0.25 moves the distribution by exactly 0.25
    assert sm.gc_distance(encode(["AAAA", "GCAT"]), encode(["GAAA", "GCGT"])) == pytest.approx(0.25)
    assert sm.fraction_unique(encode(["ACGT", "ACGT", "TTTT", "ACGA"])) == 0.75


def test_nearest_identity_and_exact_copies():
    train = encode(["AAAAAAAA", "ACGTACGT", "CCCCGGGG"])
    query = encode(["ACGTACGT", "ACGTACGA", "TTTTTTTT", "CCCCGGGA"])
    ident = sm.nearest_identity(query, train, chunk=2)  # tiny blocks exercise the chunking
    assert ident.tolist() == [1.0, 7 / 8, 2 / 8, 7 / 8]  # TTTTTTTT shares positions 4 and 8 with ACGTACGT
    assert sm.exact_copies(query, train) == 1
    mem = sm.memorisation(query, train, encode(["AAAAAAAA", "TTTTTTTA"]))
    assert mem["exact_copies"] == 1 and mem["exact_copy_fraction"] == 0.25
    assert mem["test_exact_copies"] == 1 and mem["test_identity_median"] == pytest.approx((1 + 1 / 8) / 2)
    assert mem["identity_median"] == pytest.approx(7 / 8)


def test_detection_features_bins():
    seq = "G" * 20 + "A" * 18 + "CG"  # two 20-bp bins: all GC, then 2/20 GC and one CpG at 38
    feats = sm.detection_features(encode([seq]), k=4, bin_width=20)
    assert feats.shape == (1, 256 + 2 + 2)
    assert np.allclose(feats[0, 256:258], [1.0, 0.1])
    assert np.allclose(feats[0, 258:], [0.0, 1 / 20])
    assert feats[0, :256].sum() == pytest.approx(1.0)


def test_detection_auc_separates_and_confuses():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, (100, 40))
    b = rng.integers(0, 4, (100, 40))
    gc_rich = rng.choice(4, size=(100, 40), p=[0.1, 0.4, 0.4, 0.1])
    assert sm.detection_auc(a, gc_rich) > 0.9
    assert sm.detection_auc(a, b) < 0.7  # same distribution: not detectable (small-sample AUC is noisy)


def test_word_counts_by_hand():
    assert sm.word_counts(encode(["ACGTA"]), k=5).shape == (1, 4 ** 5)
    counts = sm.word_counts(encode(["ACGTACGTA", "AAAAAAAAA"]), k=8).toarray()
    assert counts.shape == (2, 4 ** 8) and counts.sum(axis=1).tolist() == [2, 2]
    acgtacgt = int("".join("0123"["ACGT".index(c)] for c in "ACGTACGT"), 4)
    assert counts[0, acgtacgt] == 1 and counts[1, 0] == 2  # AAAAAAAA twice in a 9-mer of A


def test_word_detection_sees_planted_words_and_not_noise():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, (150, 60)), rng.integers(0, 4, (150, 60))
    planted = b.copy()
    starts = rng.integers(0, 52, 150)  # one GATA word per sequence, anywhere: 8 of 60 bases
    word = encode(["AGATAAGG"])[0]
    planted[np.arange(150)[:, None], starts[:, None] + np.arange(8)] = word
    assert sm.word_detection_auc(a, planted) > 0.9
    assert sm.word_detection_auc(a, b) < 0.65
    assert sm.word_detection_auc(a[:, :5], b[:, :5]) < 0.7  # shorter than a word: k drops to the length
    assert sm.word_detection_auc(a, planted, seed=3) == sm.word_detection_auc(a, planted, seed=3)  # seeded
    # unequal sets are subsampled to equal size: 300 real against 150 planted still separates, 300 vs 150 random not
    big = rng.integers(0, 4, (300, 60))
    assert sm.word_detection_auc(big, planted) > 0.9 and sm.word_detection_auc(big, b) < 0.65
    with pytest.raises(OmigenInputError, match="lengths differ"):
        sm.word_detection_auc(a, b[:, :50])
    with pytest.raises(OmigenInputError, match="at least 2"):
        sm.word_detection_auc(a[:1], b)
    with pytest.raises(OmigenInputError, match="folds >= 2"):
        sm.word_detection_auc(a, b, folds=1)
