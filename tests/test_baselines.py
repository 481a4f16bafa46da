"""Baseline generators: shapes, label counts, domains, preserved statistics, determinism, edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omigen.baselines import BASELINES, generate_gaussian, generate_marginals
from omigen.data import ExpressionData, GenotypeData, SequenceData
from omigen.errors import OmigenInputError
from omigen.registry import Registry


def expression(n_a=60, n_b=40, seed=0, n_c=0):
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, -0.3], [0.0, -0.3, 0.5]])
    Xa = rng.multivariate_normal([5.0, 6.0, 7.0], cov, size=n_a)
    Xb = rng.multivariate_normal([9.0, 4.0, 6.0], 2 * cov, size=n_b)
    Xc = rng.normal(20.0, 1.0, size=(n_c, 3))
    labels = ["a"] * n_a + ["b"] * n_b + ["c"] * n_c
    n = n_a + n_b + n_c
    return ExpressionData(np.concatenate([Xa, Xb, Xc]), ["g1", "g2", "g3"], [f"s{i}" for i in range(n)],
                          labels, units="log2(x+1)").validate()


def genotypes(n=50, m=12, seed=1):
    rng = np.random.default_rng(seed)
    freqs = np.linspace(0.05, 0.9, m)
    G = rng.binomial(2, freqs, size=(n, m))
    variants = pd.DataFrame({"id": [f"rs{i}" for i in range(m)], "chrom": "2", "pos": 100 + np.arange(m),
                             "ref": "C", "alt": "T"})
    return GenotypeData(G, [f"i{k}" for k in range(n)], variants, labels=np.repeat(["p", "q"], n // 2)).validate()


def sequences(n=80, length=6, seed=2):
    rng = np.random.default_rng(seed)
    # Position j favours base j % 4 with probability 0.7.
    probs = np.full((length, 4), 0.1)
    probs[np.arange(length), np.arange(length) % 4] = 0.7
    codes = np.stack([rng.choice(4, size=n, p=p) for p in probs], axis=1)
    seqs = ["".join("ACGT"[c] for c in row) for row in codes]
    return SequenceData(seqs, [f"q{i}" for i in range(n)], np.repeat(["u", "v"], n // 2)).validate()


def test_specs_validate_and_cover_the_modalities():
    reg = Registry()
    for spec in BASELINES:
        reg.add(spec, "core")
    assert {b.name for b in reg.baselines("expression")} == {"marginals", "gaussian"}
    assert [b.name for b in reg.baselines("genotype")] == ["marginals"]
    assert [b.name for b in reg.baselines("sequence")] == ["marginals"]


@pytest.mark.parametrize("make", [expression, genotypes, sequences])
def test_marginals_shape_labels_ids_and_domain(make):
    train = make()
    counts = {c: 7 + i for i, c in enumerate(train.classes)}
    out = generate_marginals(train, counts, seed=3).validate()
    assert type(out) is type(train)
    assert len(out) == sum(counts.values()) and out.label_counts() == counts
    assert out.samples[0] == "marginals_0001" and len(set(out.samples)) == len(out)
    assert out.features().shape[1] == train.features().shape[1]
    if isinstance(out, GenotypeData):
        assert set(np.unique(out.G)) <= {0, 1, 2} and out.variants is train.variants
    if isinstance(out, SequenceData):
        assert out.length == train.length and (out.codes() >= 0).all()


def test_marginals_draw_each_column_from_its_own_class_column():
    train = expression()
    out = generate_marginals(train, {"a": 3000, "b": 2000}, seed=4)
    for label in ("a", "b"):
        real, fake = train.X[train.labels == label], out.X[out.labels == label]
        for j in range(3):
            assert np.isin(fake[:, j], real[:, j]).all()
        np.testing.assert_allclose(fake.mean(0), real.mean(0), atol=0.1)
        np.testing.assert_allclose(fake.std(0), real.std(0), rtol=0.1)
        # Columns are drawn independently: the strong g1-g2 correlation of the class is gone.
        assert np.corrcoef(real[:, 0], real[:, 1])[0, 1] > 0.6
        assert abs(np.corrcoef(fake[:, 0], fake[:, 1])[0, 1]) < 0.1


def test_marginals_keep_genotype_frequencies_and_per_position_base_frequencies():
    g = genotypes(n=200)
    out = generate_marginals(g, {"p": 4000}, seed=5)
    np.testing.assert_allclose(out.G.mean(0), g.G[g.labels == "p"].mean(0), atol=0.06)
    s = sequences(n=200)
    fake = generate_marginals(s, {"u": 4000}, seed=6).codes()
    real = s.codes()[s.labels == "u"]
    freq = lambda c: np.stack([(c == b).mean(0) for b in range(4)])  # noqa: E731  (4 x positions)
    np.testing.assert_allclose(freq(fake), freq(real), atol=0.03)


def test_baselines_are_deterministic_by_seed():
    train = expression()
    for gen in (generate_marginals, generate_gaussian):
        a, b = gen(train, {"a": 20, "b": 5}, seed=7), gen(train, {"a": 20, "b": 5}, seed=7)
        c = gen(train, {"a": 20, "b": 5}, seed=8)
        np.testing.assert_array_equal(a.X, b.X)
        assert not np.array_equal(a.X, c.X)
    s = sequences()
    assert list(generate_marginals(s, {"u": 9}, seed=1).sequences) == list(generate_marginals(s, {"u": 9}, 1).sequences)


def test_gaussian_preserves_class_means_and_covariances():
    train = expression()
    out = generate_gaussian(train, {"a": 20000, "b": 20000}, seed=9).validate()
    assert out.label_counts() == {"a": 20000, "b": 20000} and out.samples[-1] == "gaussian_40000"
    assert out.units == train.units and list(out.genes) == list(train.genes)
    for label in ("a", "b"):
        real, fake = train.X[train.labels == label].astype(float), out.X[out.labels == label].astype(float)
        np.testing.assert_allclose(fake.mean(0), real.mean(0), atol=0.05)
        cov_real = np.cov(real, rowvar=False)
        np.testing.assert_allclose(np.cov(fake, rowvar=False), cov_real, atol=0.08 * np.abs(cov_real).max())


def test_gaussian_keeps_non_negative_data_non_negative():
    rng = np.random.default_rng(10)
    X = rng.exponential(0.3, size=(30, 4))
    train = ExpressionData(X, list("wxyz"), [f"s{i}" for i in range(30)])
    out = generate_gaussian(train, {None: 500}, seed=0)
    assert out.labels is None and out.X.min() == 0.0 and len(out) == 500


def test_single_sample_class_fallbacks():
    train = expression(n_a=50, n_b=50, n_c=1)
    pooled = train.X
    out = generate_marginals(train, {"c": 400}, seed=11)
    # Drawn from the whole training set, not copies of the lone record.
    assert all(np.isin(out.X[:, j], pooled[:, j]).all() for j in range(3))
    assert not (out.X == train.X[-1]).all(axis=1).any()
    g = generate_gaussian(train, {"c": 20000}, seed=12)
    np.testing.assert_allclose(g.X.mean(0), train.X[-1], atol=0.06)
    # Covariance: the pooled within-class covariance of classes a and b.
    resid = np.concatenate([train.X[train.labels == k] - train.X[train.labels == k].mean(0) for k in "ab"])
    pooled_cov = resid.T @ resid / (resid.shape[0] - 2)
    np.testing.assert_allclose(np.cov(g.X.astype(float), rowvar=False), pooled_cov, atol=0.1 * pooled_cov.max())


def test_unlabelled_request_pools_the_classes_and_zero_counts_are_allowed():
    train = genotypes()
    out = generate_marginals(train, {None: 11}, seed=0)
    assert out.labels is None and len(out) == 11
    out = generate_marginals(train, {"p": 0, "q": 3}, seed=0)
    assert out.label_counts() == {"q": 3}


def test_bad_requests_are_user_errors():
    train = expression()
    with pytest.raises(OmigenInputError, match="'z' does not occur"):
        generate_marginals(train, {"z": 3}, seed=0)
    with pytest.raises(OmigenInputError, match="non-negative integer"):
        generate_marginals(train, {"a": -1}, seed=0)
    with pytest.raises(OmigenInputError, match="mixes"):
        generate_marginals(train, {None: 1, "a": 1}, seed=0)
    with pytest.raises(OmigenInputError, match="expression data"):
        generate_gaussian(genotypes(), {"p": 3}, seed=0)
    unlabelled = ExpressionData(train.X, train.genes, train.samples)
    with pytest.raises(OmigenInputError, match="unlabelled"):
        generate_marginals(unlabelled, {"a": 2}, seed=0)
