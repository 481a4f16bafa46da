"""Modality containers: validation names the problem; subsets, features and splits behave."""

import numpy as np
import pandas as pd
import pytest

from omigen.data import ExpressionData, GenotypeData, SequenceData, split
from omigen.errors import OmigenInputError


def expr(n=6, g=3, labels=True):
    X = np.arange(n * g, dtype=float).reshape(n, g)
    return ExpressionData(X=X, genes=[f"g{j}" for j in range(g)], samples=[f"s{i}" for i in range(n)],
                          labels=np.array(["a", "b"] * (n // 2)) if labels else None)


def test_expression_validation_errors():
    d = expr()
    d.X[2, 1] = np.nan
    with pytest.raises(OmigenInputError, match="non-finite.*'s2'.*'g1'"):
        d.validate()
    with pytest.raises(OmigenInputError, match="duplicate sample ids: s0"):
        ExpressionData(X=np.zeros((2, 1)), genes=["g"], samples=["s0", "s0"]).validate()
    with pytest.raises(OmigenInputError, match="duplicate gene names: g"):
        ExpressionData(X=np.zeros((1, 2)), genes=["g", "g"], samples=["s"]).validate()
    with pytest.raises(OmigenInputError, match="3 labels for 2 samples"):
        ExpressionData(X=np.zeros((2, 1)), genes=["g"], samples=["a", "b"], labels=["x", "y", "z"])


def test_subset_and_counts():
    d = expr().validate()
    sub = d.subset(np.array([0, 2, 4]))
    assert sub.samples.tolist() == ["s0", "s2", "s4"] and sub.labels.tolist() == ["a", "a", "a"]
    np.testing.assert_array_equal(sub.features(), d.X[[0, 2, 4]])
    assert d.label_counts() == {"a": 3, "b": 3} and d.classes == ["a", "b"]
    assert expr(labels=False).label_counts() == {None: 6}


def test_sequence_validation_and_one_hot():
    s = SequenceData(sequences=["ACGT", "TTGA"], samples=["r1", "r2"], labels=["x", "y"]).validate()
    f = s.features().reshape(2, 4, 4)
    assert f.sum() == 8 and f[0, 0].tolist() == [1, 0, 0, 0] and f[1, 3].tolist() == [1, 0, 0, 0]
    assert s.codes()[1].tolist() == [3, 3, 2, 0]
    with pytest.raises(OmigenInputError, match="'r2' has length 3, expected 4"):
        SequenceData(sequences=["ACGT", "ACG"], samples=["r1", "r2"]).validate()
    with pytest.raises(OmigenInputError, match="'r2' has 'N' at position 2"):
        SequenceData(sequences=["ACGT", "ANGT"], samples=["r1", "r2"]).validate()


def test_genotype_domain_and_variant_table():
    variants = pd.DataFrame({"id": ["v1", "v2"], "chrom": "22", "pos": [10, 20], "ref": "A", "alt": "G"})
    g = GenotypeData(G=[[0, 1], [2, 2]], samples=["i1", "i2"], variants=variants,
                     phenotypes=pd.DataFrame({"y": [0.1, 0.2]}, index=["i1", "i2"])).validate()
    assert g.features().dtype == np.float32
    assert g.subset(np.array([1])).phenotypes.index.tolist() == ["i2"]
    with pytest.raises(OmigenInputError, match="genotype 3 at sample 'i2', variant 0"):
        GenotypeData(G=[[0, 1], [3, 2]], samples=["i1", "i2"], variants=variants).validate()
    with pytest.raises(OmigenInputError, match="lacks column"):
        GenotypeData(G=[[0, 1]], samples=["i1"], variants=variants[["id", "pos"]]).validate()


def test_genotype_haplotypes_must_sum_to_the_dosages_and_follow_subsets():
    variants = pd.DataFrame({"id": ["v1", "v2"], "chrom": "22", "pos": [10, 20], "ref": "A", "alt": "G"})
    H = [[[0, 0], [1, 0]], [[1, 1], [0, 1]]]
    g = GenotypeData(G=[[0, 1], [2, 1]], samples=["i1", "i2"], variants=variants, haplotypes=H).validate()
    assert g.subset(np.array([False, True])).haplotypes.tolist() == [[[1, 1], [0, 1]]]
    with pytest.raises(OmigenInputError, match="sum to the dosages"):
        GenotypeData(G=[[0, 2], [2, 1]], samples=["i1", "i2"], variants=variants, haplotypes=H).validate()
    with pytest.raises(OmigenInputError, match="does not match"):
        GenotypeData(G=[[0, 1], [2, 1]], samples=["i1", "i2"], variants=variants, haplotypes=H[:1]).validate()


def test_split_is_seeded_and_stratified():
    d = ExpressionData(X=np.random.default_rng(0).normal(size=(40, 2)), genes=["a", "b"],
                       samples=[f"s{i}" for i in range(40)], labels=["x"] * 30 + ["y"] * 10)
    tr, te = split(d, 0.25, seed=3)
    tr2, te2 = split(d, 0.25, seed=3)
    assert te.samples.tolist() == te2.samples.tolist()
    assert te.label_counts() == {"x": 8, "y": 2} and len(tr) == 30
    assert not set(tr.samples) & set(te.samples)
