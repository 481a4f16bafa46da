"""Genotype metrics: frequencies, heterozygosity, LD, structure, Fst, 3-point correlations, GWAS.

Every ``compute_*`` takes :class:`omigen.data.GenotypeData` (``real`` held-out, ``synthetic`` under test,
optionally ``train``) with the same SNP columns and returns exactly its spec's outputs, all finite.
The numeric work lives in :mod:`.popgen`, :mod:`.ld`, :mod:`.structure` and :mod:`.gwas`. Privacy (AATS
on train and test, privacy loss, DCR, identical records) and k-NN precision/recall are the host's
generic ``privacy`` and ``prdc`` metrics, which apply to genotypes unchanged.

Definitions (per SNP unless said otherwise; "real" is the held-out set):

- ``allele-frequency``: Pearson r and mean absolute difference of ALT-allele frequencies; the 1-D
  Wasserstein distance between the real and synthetic MAF distributions (the MAF spectra).
- ``genotype-frequency``: Pearson r over the frequencies of dosages 0, 1, 2 of all SNPs.
- ``heterozygosity``: mean observed heterozygosity; HWE deviation = mean over SNPs of observed minus
  expected (``2p(1-p)``) heterozygosity (~0 under HWE, negative with population structure); Wright's F
  within populations when both sets are labelled (``f_within``: 0 under HWE, negative for an excess of
  heterozygotes); the differences are synthetic minus real, in absolute value.
- ``ld``: see :mod:`.ld` (pairs within 100 kb, SNPs with real MAF >= 5%): r² correlation and decay-curve
  difference within populations when both sets are labelled (on the default data the independent-SNP
  baseline then scores ~0.04 and real against real ~0.96), and the pooled-sample r² correlation
  (``ld_r2_corr_pooled``, where population structure alone gives the baseline ~0.2).
- ``pca``: see :mod:`.structure` (10 real PCs). ``population`` (needs labels): the fraction of synthetic
  samples a classifier trained on real PC scores assigns to their own label, and the total-variation
  distance between the assigned population mix and the synthetic labels' mix.
- ``fst``: Hudson's Fst between the real and the synthetic set (target 0).
- ``three-point``: Pearson r of connected 3-point correlations on 2,000 seeded triplets of nearby SNPs
  (gaps of 1 to 5 SNPs among SNPs with real MAF >= 1%).
- ``gwas``: per-SNP regression of the phenotype on dosage with population covariates when both sets
  are labelled; effect-size r over SNPs with real p < 1e-3 (the 10 strongest real SNPs when fewer than 3
  pass); top-hit overlap: the share of the k strongest real SNPs among the k strongest synthetic ones,
  k the number of SNPs compared. ``gwas-causal``: fraction of the known causal SNPs
  (``meta["causal_variants"]`` of the real or training data) at p < 1e-3, and how many of them the data
  hold (recalls are 0 when none). Both need a numeric
  phenotype column (``phenotype``, else the first numeric one) in both sets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from omigen.errors import OmigenInputError
from omigen.registry import MetricSpec

if TYPE_CHECKING:
    from omigen.data import GenotypeData

LD_WINDOW = 100_000
LD_MIN_MAF = 0.05
TRIPLETS = 2000
TRIPLET_SPAN = 5
TRIPLET_MIN_MAF = 0.01


def _pair(real: "GenotypeData", synthetic: "GenotypeData") -> tuple[np.ndarray, np.ndarray]:
    for what, d in (("real", real), ("synthetic", synthetic)):
        if getattr(d, "modality", None) != "genotype":
            raise OmigenInputError(f"genotype metrics need genotype data, {what} data is {getattr(d, 'modality', d)}")
        if len(d) < 2:
            raise OmigenInputError(f"{what} data has {len(d)} samples; genotype metrics need at least 2")
    if real.G.shape[1] != synthetic.G.shape[1]:
        raise OmigenInputError(f"real data has {real.G.shape[1]} SNPs but synthetic data has {synthetic.G.shape[1]}")
    return real.G, synthetic.G


def compute_allele_frequency(real: "GenotypeData", synthetic: "GenotypeData", train=None,
                             seed: int = 0) -> dict[str, float]:
    """ALT-allele frequency r and mean absolute difference; MAF-spectrum Wasserstein distance."""
    from scipy.stats import wasserstein_distance

    from omigen_genotype.popgen import allele_freq, pearson

    R, S = _pair(real, synthetic)
    pr, ps = allele_freq(R), allele_freq(S)
    return {"af_r": pearson(pr, ps), "af_mae": float(np.abs(pr - ps).mean()),
            "maf_spectrum_distance": float(wasserstein_distance(np.minimum(pr, 1 - pr), np.minimum(ps, 1 - ps)))}


def compute_genotype_frequency(real: "GenotypeData", synthetic: "GenotypeData", train=None,
                               seed: int = 0) -> dict[str, float]:
    """Pearson r over the 0/1/2 genotype frequencies of every SNP."""
    from omigen_genotype.popgen import genotype_freqs, pearson

    R, S = _pair(real, synthetic)
    return {"genotype_freq_r": pearson(genotype_freqs(R), genotype_freqs(S))}


def compute_heterozygosity(real: "GenotypeData", synthetic: "GenotypeData", train=None,
                           seed: int = 0) -> dict[str, float]:
    """Mean observed heterozygosity, mean HWE deviation and within-population F of each set, and their
    absolute differences (F pooled over all individuals when either set is unlabelled)."""
    from omigen_genotype.popgen import heterozygosity, inbreeding_f

    R, S = _pair(real, synthetic)
    (ho_r, he_r), (ho_s, he_s) = heterozygosity(R), heterozygosity(S)
    dev_r, dev_s = float((ho_r - he_r).mean()), float((ho_s - he_s).mean())
    labelled = real.labels is not None and synthetic.labels is not None
    f_r = inbreeding_f(R, real.labels if labelled else None)
    f_s = inbreeding_f(S, synthetic.labels if labelled else None)
    return {"het_real": float(ho_r.mean()), "het_synthetic": float(ho_s.mean()),
            "het_abs_diff": float(abs(ho_s.mean() - ho_r.mean())), "hwe_dev_real": dev_r,
            "hwe_dev_synthetic": dev_s, "hwe_dev_abs_diff": abs(dev_s - dev_r),
            "f_within_real": f_r, "f_within_synthetic": f_s, "f_within_abs_diff": abs(f_s - f_r)}


def ld_of(real: "GenotypeData", synthetic: "GenotypeData", window: int = LD_WINDOW, min_maf: float = LD_MIN_MAF,
          within: bool = True):
    """The :class:`omigen_genotype.ld.LDComparison` of two data sets on the real variant positions.

    ``within``: r² within populations when both sets are labelled (pooled otherwise).
    """
    from omigen_genotype.ld import ld_compare

    R, S = _pair(real, synthetic)
    v = real.variants
    labelled = within and real.labels is not None and synthetic.labels is not None
    return ld_compare(R, S, v["pos"].to_numpy(), v["chrom"].to_numpy(), window=window, min_maf=min_maf,
                      real_groups=real.labels if labelled else None,
                      synthetic_groups=synthetic.labels if labelled else None)


def compute_ld(real: "GenotypeData", synthetic: "GenotypeData", train=None, seed: int = 0) -> dict[str, float]:
    """Correlation of real and synthetic r² over pairs within 100 kb, and the LD decay curve difference
    (within populations when both sets are labelled), plus the r² correlation of the pooled samples."""
    ld = ld_of(real, synthetic)
    labelled = real.labels is not None and synthetic.labels is not None
    pooled = ld_of(real, synthetic, within=False).r2_corr if labelled else ld.r2_corr
    return {"ld_r2_corr": ld.r2_corr, "ld_decay_mad": ld.decay_mad, "ld_r2_corr_pooled": pooled,
            "ld_pairs": float(ld.n_pairs), "ld_r2_mean_real": ld.mean_real,
            "ld_r2_mean_synthetic": ld.mean_synthetic}


def compute_pca(real: "GenotypeData", synthetic: "GenotypeData", train=None, seed: int = 0) -> dict[str, float]:
    """Per-PC Wasserstein distance (in real sd units) of synthetic scores on the real PCs."""
    from omigen_genotype.structure import pc_wasserstein, project

    R, S = _pair(real, synthetic)
    w = pc_wasserstein(project(R, S, seed=seed))
    return {"pc_wasserstein_mean": float(w.mean()), "pc1_wasserstein": float(w[0]), "n_pcs": float(w.size)}


def compute_population(real: "GenotypeData", synthetic: "GenotypeData", train=None,
                       seed: int = 0) -> dict[str, float]:
    """Share of synthetic samples a real-trained classifier assigns to their label; population-mix distance."""
    from omigen_genotype.structure import assign_populations, mix_distance, project

    R, S = _pair(real, synthetic)
    if real.labels is None or synthetic.labels is None:
        raise OmigenInputError("metric 'population' needs labelled real and synthetic data")
    assigned = assign_populations(project(R, S, seed=seed), real.labels, seed=seed)
    own = np.asarray(synthetic.labels).astype(str)
    return {"population_accuracy": float((assigned.astype(str) == own).mean()),
            "population_mix_tv": mix_distance(assigned, own)}


def compute_fst(real: "GenotypeData", synthetic: "GenotypeData", train=None, seed: int = 0) -> dict[str, float]:
    """Hudson's Fst between the real and the synthetic set."""
    from omigen_genotype.popgen import hudson_fst

    return {"fst": hudson_fst(*_pair(real, synthetic))}


def compute_three_point(real: "GenotypeData", synthetic: "GenotypeData", train=None,
                        seed: int = 0) -> dict[str, float]:
    """Pearson r and RMSE of connected 3-point correlations on seeded triplets of nearby common SNPs."""
    from omigen_genotype.popgen import maf, pearson, sample_triplets, three_point

    R, S = _pair(real, synthetic)
    order = np.lexsort((real.variants["pos"].to_numpy(), real.variants["chrom"].astype(str).to_numpy()))
    cand = order[maf(R)[order] >= TRIPLET_MIN_MAF]
    trip = sample_triplets(R.shape[1], TRIPLETS, TRIPLET_SPAN, np.random.default_rng(seed), candidates=cand)
    if trip.shape[0] == 0:
        return {"three_point_r": 0.0, "three_point_rmse": 0.0, "n_triplets": 0.0}
    tr, ts = three_point(R, trip), three_point(S, trip)
    return {"three_point_r": pearson(tr, ts), "three_point_rmse": float(np.sqrt(np.mean((tr - ts) ** 2))),
            "n_triplets": float(trip.shape[0])}


def phenotype_column(data: "GenotypeData", what: str) -> str:
    """The phenotype column used for GWAS: ``phenotype``, else the first numeric non-label column."""
    ph = data.phenotypes
    if ph is None or len(ph.columns) == 0:
        raise OmigenInputError(f"{what} data carry no phenotype column; GWAS metrics need one")
    if "phenotype" in ph.columns:
        return "phenotype"
    label = data.meta.get("label_column")
    numeric = [c for c in ph.columns if c != label and np.issubdtype(ph[c].dtype, np.number)]
    if not numeric:
        columns = ", ".join(map(str, ph.columns))
        raise OmigenInputError(f"{what} data have no numeric phenotype column (columns: {columns})")
    return numeric[0]


def association_of(data: "GenotypeData", what: str, use_labels: bool):
    """GWAS of ``data``'s phenotype on its dosages (population covariates when ``use_labels``)."""
    from omigen_genotype.gwas import associate, covariate_matrix

    y = np.asarray(data.phenotypes[phenotype_column(data, what)], dtype=np.float64)
    ok = np.isfinite(y)
    if ok.sum() < 4:
        raise OmigenInputError(f"{what} data have {int(ok.sum())} finite phenotype values; GWAS needs at least 4")
    labels = data.labels[ok] if use_labels else None
    return associate(data.G[ok], y[ok], covariate_matrix(labels, int(ok.sum())))


def _gwas(real: "GenotypeData", synthetic: "GenotypeData", train=None):
    from omigen_genotype.gwas import concordance

    _pair(real, synthetic)
    use_labels = real.labels is not None and synthetic.labels is not None
    a_real = association_of(real, "real", use_labels)
    a_syn = association_of(synthetic, "synthetic", use_labels)
    return concordance(a_real, a_syn, causal_indices(real, train))


def causal_indices(real: "GenotypeData", train=None) -> np.ndarray | None:
    """Column indices of the known causal SNPs (``meta['causal_variants']`` of real or train), or None."""
    ids = real.meta.get("causal_variants") or (train.meta.get("causal_variants") if train is not None else None)
    if not ids:
        return None
    return np.flatnonzero(np.isin(real.variants["id"].astype(str).to_numpy(), np.asarray(ids, dtype=str)))


def compute_gwas(real: "GenotypeData", synthetic: "GenotypeData", train=None, seed: int = 0) -> dict[str, float]:
    """Effect-size correlation over real hits, top-hit overlap, number of real hits."""
    c = _gwas(real, synthetic, train)
    return {"effect_r": c.effect_r, "top_hit_overlap": c.top_hit_overlap, "n_real_hits": float(c.n_real_hits),
            "n_compared": float(c.n_compared)}


def compute_gwas_causal(real: "GenotypeData", synthetic: "GenotypeData", train=None,
                        seed: int = 0) -> dict[str, float]:
    """Fraction of the known causal SNPs found at p < 1e-3 in the synthetic and in the real data."""
    causal = causal_indices(real, train)
    if causal is None:
        raise OmigenInputError("metric 'gwas-causal' needs known causal SNPs (meta['causal_variants']), "
                               "which only simulated data carry")
    if causal.size == 0:  # e.g. a run on the first k SNPs: nothing to recover, reported as such
        return {"causal_recall_synthetic": 0.0, "causal_recall_real": 0.0, "n_causal": 0.0}
    c = _gwas(real, synthetic, train)
    return {"causal_recall_synthetic": c.causal_recall_synthetic, "causal_recall_real": c.causal_recall_real,
            "n_causal": float(causal.size)}


_G = ("genotype",)
METRICS: list[MetricSpec] = [
    MetricSpec("allele-frequency", _G, {"af_r": "higher", "af_mae": "lower", "maf_spectrum_distance": "lower"},
               compute_allele_frequency, description="ALT-allele frequency correlation and error; MAF-spectrum "
                                                     "Wasserstein distance"),
    MetricSpec("genotype-frequency", _G, {"genotype_freq_r": "higher"}, compute_genotype_frequency,
               description="correlation of 0/1/2 genotype frequencies over SNPs"),
    MetricSpec("heterozygosity", _G, {"het_real": "info", "het_synthetic": "info", "het_abs_diff": "lower",
                                      "hwe_dev_real": "info", "hwe_dev_synthetic": "info",
                                      "hwe_dev_abs_diff": "lower", "f_within_real": "info",
                                      "f_within_synthetic": "info", "f_within_abs_diff": "lower"},
               compute_heterozygosity,
               description="observed heterozygosity, Hardy-Weinberg deviation (observed - expected) and "
                           "Wright's F within populations"),
    MetricSpec("ld", _G, {"ld_r2_corr": "higher", "ld_decay_mad": "lower", "ld_r2_corr_pooled": "info",
                          "ld_pairs": "info", "ld_r2_mean_real": "info", "ld_r2_mean_synthetic": "info"},
               compute_ld, description="within-population r² correlation over SNP pairs within 100 kb "
                                       "(MAF >= 5%) and LD decay difference"),
    MetricSpec("pca", _G, {"pc_wasserstein_mean": "lower", "pc1_wasserstein": "info", "n_pcs": "info"},
               compute_pca, description="per-PC Wasserstein distance of synthetic projected on 10 real PCs"),
    MetricSpec("population", _G, {"population_accuracy": "higher", "population_mix_tv": "lower"},
               compute_population, needs_labels=True,
               description="synthetic samples assigned to their population by a classifier trained on real PCs"),
    MetricSpec("fst", _G, {"fst": 0.0}, compute_fst, description="Hudson's Fst between real and synthetic sets"),
    MetricSpec("three-point", _G, {"three_point_r": "higher", "three_point_rmse": "lower", "n_triplets": "info"},
               compute_three_point, description="3-point correlations of nearby SNP triplets (Yelmen et al.)"),
    MetricSpec("gwas", _G, {"effect_r": "higher", "top_hit_overlap": "higher", "n_real_hits": "info",
                            "n_compared": "info"}, compute_gwas,
               description="per-SNP phenotype regression: effect-size correlation over real hits (p < 1e-3)"),
    MetricSpec("gwas-causal", _G, {"causal_recall_synthetic": "higher", "causal_recall_real": "info",
                                   "n_causal": "info"},
               compute_gwas_causal, description="known causal SNPs recovered at p < 1e-3 (simulated data)"),
]

__all__ = ["METRICS", "LD_WINDOW", "LD_MIN_MAF", "ld_of", "association_of", "causal_indices", "phenotype_column"]
