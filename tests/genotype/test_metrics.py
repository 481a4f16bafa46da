"""Genotype metrics on hand-checked toy cases, and every registered metric on a tiny simulated set."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from omigen.data import GenotypeData
from omigen.errors import OmigenInputError
from omigen_genotype import gwas, ld, popgen, structure
from omigen_genotype.metrics import METRICS


def geno(G, pos=None, chrom=None, labels=None, phenotype=None, meta=None):
    G = np.asarray(G, dtype=np.int8)
    m = G.shape[1]
    pos = np.arange(1, m + 1) * 1000 if pos is None else pos
    variants = pd.DataFrame({"id": [f"s{j}" for j in range(m)], "chrom": chrom if chrom is not None else ["1"] * m,
                             "pos": pos, "ref": "A", "alt": "G"})
    ph = None if phenotype is None else pd.DataFrame({"phenotype": phenotype})
    return GenotypeData(G=G, samples=[f"i{k}" for k in range(G.shape[0])], variants=variants, labels=labels,
                        phenotypes=ph, meta=meta or {}).validate()


def metric(name):
    return next(m for m in METRICS if m.name == name)


def test_frequencies_by_hand():
    real = geno([[0, 1, 2], [0, 1, 2], [2, 1, 0], [2, 1, 0]])           # p = 0.5, 0.5, 0.5
    syn = geno([[0, 0, 2], [0, 2, 2], [0, 0, 2], [2, 2, 0]])            # p = 0.25, 0.5, 0.75
    np.testing.assert_allclose(popgen.allele_freq(syn.G), [0.25, 0.5, 0.75])
    out = metric("allele-frequency").compute(real, syn)
    assert out["af_r"] == 0.0  # real frequencies are constant: no correlation can be measured
    assert out["af_mae"] == pytest.approx(1 / 6)
    assert out["maf_spectrum_distance"] == pytest.approx(1 / 6)  # MAFs (.5,.5,.5) vs (.25,.5,.25)
    same = metric("allele-frequency").compute(syn, syn)
    assert same == {"af_r": 1.0, "af_mae": 0.0, "maf_spectrum_distance": 0.0}
    np.testing.assert_allclose(popgen.genotype_freqs(real.G)[:, 1], [0, 1, 0])
    assert metric("genotype-frequency").compute(syn, syn)["genotype_freq_r"] == pytest.approx(1.0)


def test_heterozygosity_and_hwe():
    rng = np.random.default_rng(0)
    hwe = geno(rng.binomial(2, rng.uniform(0.05, 0.95, 300), size=(3000, 300)))
    all_het = geno(np.ones((10, 300)))
    out = metric("heterozygosity").compute(hwe, all_het)
    assert abs(out["hwe_dev_real"]) < 0.005  # Hardy-Weinberg draws: observed = expected heterozygosity
    assert out["het_synthetic"] == 1.0 and out["hwe_dev_synthetic"] == pytest.approx(0.5)  # 1 - 2(.5)(.5)
    assert out["hwe_dev_abs_diff"] == pytest.approx(abs(0.5 - out["hwe_dev_real"]))
    assert abs(out["f_within_real"]) < 0.01 and out["f_within_synthetic"] == pytest.approx(-1.0)


def test_inbreeding_f_is_taken_within_populations():
    # Two populations fixed for opposite alleles: each is monomorphic (no F), pooled they look fully inbred.
    G = np.array([[0, 0]] * 4 + [[2, 2]] * 4)
    labels = np.array(["a"] * 4 + ["b"] * 4)
    assert popgen.inbreeding_f(G) == pytest.approx(1.0)
    assert math.isnan(popgen.inbreeding_f(G, labels))
    # By hand: p = 3/8 in both populations, so 2p(1-p) = 15/32; a has 1 het in 4, b has 3 in 4.
    G = np.array([[1], [0], [2], [0], [1], [1], [1], [0]])
    labels = np.array(["a"] * 4 + ["b"] * 4)
    f_a, f_b = 1 - 0.25 / (15 / 32), 1 - 0.75 / (15 / 32)
    assert popgen.inbreeding_f(G, labels) == pytest.approx((f_a + f_b) / 2)
    syn = geno(G, labels=labels)
    out = metric("heterozygosity").compute(syn, syn)
    assert out["f_within_real"] == pytest.approx((f_a + f_b) / 2) and out["f_within_abs_diff"] == 0.0


def test_r2_perfect_ld_and_hand_values():
    x = np.array([0, 1, 2, 1, 0, 2])
    G = np.stack([x, x, 2 - x, [0, 0, 1, 1, 2, 2], np.ones(6)], axis=1)
    r2 = ld.r2_matrix(G)
    assert r2[0, 1] == pytest.approx(1.0) and r2[0, 2] == pytest.approx(1.0)  # copies and mirrors
    assert r2[0, 3] == pytest.approx(np.corrcoef(x, G[:, 3])[0, 1] ** 2)
    assert (r2[4] == 0).all()  # a constant SNP is in LD with nothing


def brute_force(R, S, pos, chrom, window, min_maf):
    keep = np.flatnonzero(popgen.maf(R) >= min_maf)
    rr, rs = ld.r2_matrix(R[:, keep]), ld.r2_matrix(S[:, keep])
    i, j = np.triu_indices(keep.size, 1)
    d = np.abs(pos[keep][j] - pos[keep][i])
    ok = (d <= window) & (chrom[keep][i] == chrom[keep][j])
    return rr[i, j][ok], rs[i, j][ok], d[ok]


def test_ld_compare_matches_brute_force_and_is_chunk_invariant():
    rng = np.random.default_rng(1)
    base = rng.binomial(2, 0.3, size=(80, 60))
    R = np.where(rng.random((80, 60)) < 0.8, np.repeat(base[:, ::3], 3, axis=1), base)  # blocks of LD
    S = rng.binomial(2, 0.3, size=(50, 60))
    pos = np.sort(rng.choice(300_000, 60, replace=False))
    chrom = np.array(["1"] * 40 + ["2"] * 20)
    x, y, _ = brute_force(R, S, pos, chrom, 50_000, 0.05)
    for chunk in (3, 7, 512):
        out = ld.ld_compare(R, S, pos, chrom, window=50_000, chunk=chunk)
        assert out.n_pairs == x.size
        assert out.r2_corr == pytest.approx(np.corrcoef(x, y)[0, 1])
        assert out.mean_real == pytest.approx(x.mean()) and out.mean_synthetic == pytest.approx(y.mean())
    same = ld.ld_compare(R, R, pos, chrom, window=50_000)
    assert same.r2_corr == pytest.approx(1.0) and same.decay_mad == 0.0


def test_ld_decay_bins_and_maf_filter():
    x = np.array([0, 1, 2, 1, 0, 2, 1, 1])
    rare = np.array([0, 0, 0, 0, 0, 0, 0, 0])
    G = np.stack([x, x, rare, 2 - x], axis=1)
    pos = np.array([1000, 3000, 4000, 60_000])
    out = ld.ld_compare(G, G, pos, window=100_000, n_bins=10)
    # Pairs among SNPs 0, 1, 3 (SNP 2 is monomorphic): distances 2 kb, 59 kb and 57 kb, all r² = 1.
    assert out.n_pairs == 3
    np.testing.assert_array_equal(out.pairs_per_bin, [1, 0, 0, 0, 0, 2, 0, 0, 0, 0])
    assert out.decay_real[0] == pytest.approx(1.0) and out.decay_real[5] == pytest.approx(1.0)
    none = ld.ld_compare(G[:, :1], G[:, :1], pos[:1])
    assert none.n_pairs == 0 and none.r2_corr == 0.0 and none.decay_mad == 1.0


def test_ld_within_populations_removes_structure():
    rng = np.random.default_rng(8)
    lab = np.repeat(["A", "B"], 300)
    p = np.where(lab[:, None] == "A", 0.1, 0.9) * np.ones(6)  # every SNP differentiated, none linked
    G = rng.binomial(2, p)
    pooled, within = ld.r2_matrix(G), ld.r2_matrix(ld.standardise(G, lab))
    iu = np.triu_indices(6, 1)
    assert pooled[iu].min() > 0.4 and within[iu].max() < 0.03
    Z = ld.standardise(np.array([[0, 1], [2, 1], [1, 0], [1, 2]]), np.array(["x", "x", "y", "y"]))
    # Centred per group: [-1, 1, 0, 0] and [0, 0, -1, 1], then scaled to unit sd (sqrt(1/2)).
    np.testing.assert_allclose(Z, np.sqrt(2) * np.array([[-1, 0], [1, 0], [0, -1], [0, 1]]))
    real, syn = geno(G, labels=lab), geno(rng.binomial(2, p), labels=lab)
    out = metric("ld").compute(real, syn)
    assert out["ld_r2_corr_pooled"] > out["ld_r2_corr"]
    assert out["ld_r2_mean_real"] < 0.03


def test_ld_metric_perfect_and_independent():
    rng = np.random.default_rng(2)
    hap = rng.binomial(2, 0.4, size=(200, 10))
    real = geno(np.repeat(hap, 4, axis=1))                       # blocks of 4 SNPs in perfect LD
    indep = geno(rng.binomial(2, 0.4, size=(200, 40)))
    assert metric("ld").compute(real, real)["ld_r2_corr"] == pytest.approx(1.0)
    out = metric("ld").compute(real, indep)
    assert abs(out["ld_r2_corr"]) < 0.3 and out["ld_r2_mean_synthetic"] < 0.05


def test_fst_by_hand():
    zeros, twos = np.zeros((5, 3)), np.full((5, 3), 2)
    assert popgen.hudson_fst(zeros, twos) == pytest.approx(1.0)  # fixed differences
    assert popgen.hudson_fst(zeros, zeros) == 0.0
    # One SNP, p1 = 0.5 over 4 haplotypes, p2 = 0: N = 0.25 - 0.25/3, D = 0.5.
    assert popgen.hudson_fst(np.array([[0], [2]]), np.array([[0], [0]])) == pytest.approx((0.25 - 0.25 / 3) / 0.5)
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 500)
    a, b = rng.binomial(2, p, size=(400, 500)), rng.binomial(2, p, size=(400, 500))
    assert abs(metric("fst").compute(geno(a), geno(b))["fst"]) < 0.005


def test_three_point_by_hand():
    col = np.array([0, 0, 0, 2] * 5)  # allele indicator x in {0, 1}, p = 1/4
    G = np.stack([col, col, col], axis=1)
    # Third cumulant of a Bernoulli(p): p(1-p)(1-2p).
    assert popgen.three_point(G, np.array([[0, 1, 2]]))[0] == pytest.approx(0.25 * 0.75 * 0.5)
    rng = np.random.default_rng(4)
    trip = popgen.sample_triplets(50, 300, 4, rng, candidates=np.arange(0, 50, 2))
    assert trip.shape == (300, 3) and (trip % 2 == 0).all()
    gaps = np.diff(trip, axis=1)
    assert (gaps >= 2).all() and (gaps <= 8).all()
    assert popgen.sample_triplets(10, 5, 3, rng, candidates=np.array([1, 2])).shape == (0, 3)


def test_pca_projection_and_population():
    rng = np.random.default_rng(5)
    p = np.stack([rng.uniform(0.05, 0.3, 200), rng.uniform(0.7, 0.95, 200)])
    lab = np.repeat(["A", "B"], 40)
    real = rng.binomial(2, p[(lab == "B").astype(int)])
    proj = structure.project(real, real)
    np.testing.assert_allclose(proj.real, proj.synthetic)
    from sklearn.decomposition import PCA
    Z = (real - real.mean(0)) / np.where(real.std(0) > 0, real.std(0), 1)
    ref = PCA(3).fit(Z)
    np.testing.assert_allclose(np.abs(proj.real[:, :3]), np.abs(ref.transform(Z)), atol=1e-6)
    np.testing.assert_allclose(proj.explained[:3], ref.explained_variance_ratio_, rtol=1e-6)
    assert structure.pc_wasserstein(proj).max() == pytest.approx(0.0, abs=1e-9)
    syn = rng.binomial(2, p[(lab == "B").astype(int)])
    R, S = geno(real, labels=lab), geno(syn, labels=lab)
    assert metric("population").compute(R, S) == {"population_accuracy": 1.0, "population_mix_tv": 0.0}
    swapped = geno(syn, labels=lab[::-1])
    assert metric("population").compute(R, swapped)["population_accuracy"] == 0.0
    all_a = geno(syn[:40], labels=["B"] * 40)  # genomes of A labelled B: mix fully off
    assert metric("population").compute(R, all_a) == {"population_accuracy": 0.0, "population_mix_tv": 1.0}
    # Only population A: PC1 (the A/B axis) loses one of its two modes, W1 ~ half the gap ~ one real sd.
    only_a = metric("pca").compute(R, geno(np.concatenate([syn[:40], syn[:40]])))
    assert only_a["pc1_wasserstein"] > 0.8 and metric("pca").compute(R, S)["pc1_wasserstein"] < 0.2


def test_association_matches_linregress_and_lstsq():
    rng = np.random.default_rng(6)
    G = rng.binomial(2, 0.4, size=(300, 20))
    G[:, 5] = 1  # monomorphic
    y = 0.5 * G[:, 3] + rng.normal(size=300)
    a = gwas.associate(G, y)
    ref = stats.linregress(G[:, 3], y)
    assert a.beta[3] == pytest.approx(ref.slope) and a.se[3] == pytest.approx(ref.stderr)
    assert a.p[3] == pytest.approx(ref.pvalue) and a.p[3] < 1e-6
    assert a.beta[5] == 0.0 and a.p[5] == 1.0
    lab = np.where(rng.random(300) < 0.5, "P", "Q")
    y2 = y + 3.0 * (lab == "Q")
    b = gwas.associate(G, y2, gwas.covariate_matrix(lab, 300), chunk=7)
    X = np.c_[np.ones(300), lab == "Q", G[:, 3]]
    coef, *_ = np.linalg.lstsq(X, y2, rcond=None)
    assert b.beta[3] == pytest.approx(coef[2])
    resid = y2 - X @ coef
    assert b.se[3] == pytest.approx(np.sqrt(resid @ resid / (300 - 3) * np.linalg.inv(X.T @ X)[2, 2]))


def test_gwas_concordance_on_a_planted_effect():
    rng = np.random.default_rng(7)
    m = 200
    p = rng.uniform(0.1, 0.9, m)
    causal = np.array([10, 50, 120])
    beta = np.array([0.8, -0.6, 0.7])

    def cohort(n):
        G = rng.binomial(2, p, size=(n, m))
        return G, G[:, causal] @ beta + rng.normal(size=n)

    meta = {"causal_variants": [f"s{j}" for j in causal]}
    Gr, yr = cohort(800)
    Gs, ys = cohort(800)
    real, syn = geno(Gr, phenotype=yr, meta=meta), geno(Gs, phenotype=ys)
    out = metric("gwas").compute(real, syn)
    assert out["effect_r"] > 0.95 and out["n_real_hits"] >= 3 and out["top_hit_overlap"] >= 0.5
    assert metric("gwas-causal").compute(real, syn) == {"causal_recall_synthetic": 1.0, "causal_recall_real": 1.0,
                                                        "n_causal": 3.0}
    shuffled = geno(Gs, phenotype=rng.permutation(ys))  # genotype-phenotype link broken
    assert metric("gwas-causal").compute(real, shuffled)["causal_recall_synthetic"] < 1.0
    assert metric("gwas").compute(real, shuffled)["effect_r"] < 0.8
    with pytest.raises(OmigenInputError, match="synthetic data carry no phenotype"):
        metric("gwas").compute(real, geno(Gs))
    with pytest.raises(OmigenInputError, match="known causal SNPs"):
        metric("gwas-causal").compute(geno(Gr, phenotype=yr), syn)
    elsewhere = geno(Gr, phenotype=yr, meta={"causal_variants": ["elsewhere"]})
    assert metric("gwas-causal").compute(elsewhere, syn) == {"causal_recall_synthetic": 0.0,
                                                             "causal_recall_real": 0.0, "n_causal": 0.0}


def test_compared_snps_fallback():
    p = np.array([0.5, 1e-4, 0.2, 1e-5, 0.9])
    np.testing.assert_array_equal(gwas.compared_snps(p), [3, 1, 2, 0, 4])  # fewer than 3 hits: strongest
    np.testing.assert_array_equal(gwas.compared_snps(np.array([1e-4, 1e-5, 1e-6, 0.5])), [0, 1, 2])


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory):
    from omigen.data import split
    from omigen_genotype.baselines import generate_independent
    from omigen_genotype.simulate import SimulationParams, load_default

    d = load_default(SimulationParams(n_per_population=12, length=150_000, seed=2),
                     cache_dir=tmp_path_factory.mktemp("cache"))
    train, test = split(d, 0.5, 0)
    return train, test, generate_independent(train, test.label_counts(), 0)


@pytest.mark.parametrize("spec", METRICS, ids=[m.name for m in METRICS])
def test_every_metric_returns_its_outputs(spec, tiny_sets):
    train, test, baseline = tiny_sets
    spec.validate()
    for synthetic in (train, baseline):
        out = spec.compute(test, synthetic, train=train, seed=0)
        assert set(out) == set(spec.outputs)
        assert all(math.isfinite(v) for v in out.values()), out
    assert spec.compute(test, baseline, train=train, seed=0) == spec.compute(test, baseline, train=train, seed=0)


def test_report_figures(tiny_sets):
    from omigen_genotype import plots
    from omigen_genotype.ld import r2_matrix

    train, test, baseline = tiny_sets
    heat = plots.ld_heatmap_figure(test, baseline, n_snps=30)
    image = heat.axes[0].images[0].get_array()
    assert image.shape[0] == image.shape[1] <= 30
    below, above = np.tril_indices(image.shape[0], -1), np.triu_indices(image.shape[0], 1)
    keep = np.flatnonzero(popgen.maf(test.G) >= 0.05)
    start = max(0, keep.size // 2 - 15)
    idx = keep[start:start + 30]
    np.testing.assert_allclose(image[below], r2_matrix(test.G[:, idx])[below])
    np.testing.assert_allclose(image[above], r2_matrix(baseline.G[:, idx])[above])
    decay = plots.ld_decay_figure(test, train, others={"independent-snp": baseline})
    assert len(decay.axes[0].lines) == 3
    manhattan = plots.manhattan_figure(test, train)
    up, down = manhattan.axes[0].collections[:2]
    assert (up.get_offsets()[:, 1] >= 0).all() and (down.get_offsets()[:, 1] <= 0).all()
    assert len(up.get_offsets()) == test.G.shape[1]
    pca = plots.pca_figure(test, baseline)
    assert len(pca.axes[0].collections) == 2 * len(test.classes)
