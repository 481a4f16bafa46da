"""The independent-SNP baseline: per-population frequencies under HWE, no LD, exact counts, seeded."""

import numpy as np
import pandas as pd
import pytest

from omigen.data import GenotypeData
from omigen.errors import OmigenInputError
from omigen_genotype.baselines import BASELINES, generate_independent
from omigen_genotype.ld import r2_matrix


def cohort(seed=0, n=400, m=30):
    rng = np.random.default_rng(seed)
    lab = np.repeat(["A", "B"], n // 2)
    p = np.where(lab[:, None] == "A", 0.1, 0.8) * np.ones(m)
    base = rng.binomial(2, p)
    G = np.repeat(base[:, : m // 3], 3, axis=1)  # blocks of 3 SNPs in perfect LD
    variants = pd.DataFrame({"id": [f"v{j}" for j in range(m)], "chrom": "1", "pos": np.arange(m) * 100 + 1,
                             "ref": "C", "alt": "T"})
    ph = pd.DataFrame({"population": lab, "phenotype": np.where(lab == "A", 0.0, 10.0) + rng.normal(size=n)})
    return GenotypeData(G=G, samples=[f"s{i}" for i in range(n)], variants=variants, labels=lab, phenotypes=ph,
                        meta={"label_column": "population"}).validate()


def test_counts_domain_frequencies_and_no_ld():
    train = cohort()
    out = generate_independent(train, {"A": 3000, "B": 1000}, seed=1)
    out.validate()
    assert out.label_counts() == {"A": 3000, "B": 1000}
    assert out.samples[0] == "independent_0001" and out.variants is train.variants
    for lab in ("A", "B"):
        p_train = train.G[train.labels == lab].mean(0) / 2
        G = out.G[out.labels == lab]
        np.testing.assert_allclose(G.mean(0) / 2, p_train, atol=0.03)
        het = (G == 1).mean(0)
        np.testing.assert_allclose(het, 2 * p_train * (1 - p_train), atol=0.03)  # Hardy-Weinberg
        r2 = r2_matrix(G)
        assert r2[np.triu_indices_from(r2, 1)].max() < 0.03  # the training data's perfect LD is gone
    # Phenotypes come from the same population's training rows, unrelated to the genotypes.
    ph = out.phenotypes["phenotype"].to_numpy()
    assert (ph[out.labels == "A"] < 5).all() and (ph[out.labels == "B"] > 5).all()
    assert set(ph) <= set(train.phenotypes["phenotype"])
    assert list(out.phenotypes.index[:2]) == ["independent_0001", "independent_0002"]


def test_seeded_unlabelled_and_errors():
    train = cohort()
    a = generate_independent(train, {"A": 5, "B": 5}, seed=3)
    b = generate_independent(train, {"A": 5, "B": 5}, seed=3)
    c = generate_independent(train, {"A": 5, "B": 5}, seed=4)
    np.testing.assert_array_equal(a.G, b.G)
    assert not np.array_equal(a.G, c.G)
    plain = GenotypeData(G=train.G, samples=train.samples, variants=train.variants)
    out = generate_independent(plain, {None: 7}, seed=0)
    assert len(out) == 7 and out.labels is None and out.phenotypes is None
    with pytest.raises(OmigenInputError, match="label 'C' does not occur"):
        generate_independent(train, {"C": 2})


def test_single_sample_label_uses_everyone():
    train = cohort(n=10)
    lab = train.labels.copy()
    lab[0] = "solo"
    train = GenotypeData(G=train.G, samples=train.samples, variants=train.variants, labels=lab)
    out = generate_independent(train, {"solo": 4000}, seed=0)
    np.testing.assert_allclose(out.G.mean(0) / 2, train.G.mean(0) / 2, atol=0.03)


def test_spec():
    (spec,) = BASELINES
    spec.validate()
    assert spec.name == "independent-snp" and spec.modalities == ("genotype",)
