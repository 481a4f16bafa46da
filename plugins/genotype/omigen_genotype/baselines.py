"""The independent-SNP baseline: per-population allele frequencies, Hardy-Weinberg genotypes, no LD.

For each requested label, every SNP's ALT-allele frequency ``p`` is estimated from the training rows of
that label, and each synthetic dosage is drawn as ``Binomial(2, p)`` (the HWE genotype probabilities
``(1-p)^2, 2p(1-p), p^2``) independently of every other SNP, all at once as one array. It keeps allele
frequencies and population differentiation and has no linkage disequilibrium, so a model has to beat it
on LD, 3-point correlations and GWAS concordance. Phenotypes, when the training data has them, are
resampled from the training rows of the same label, independently of the genotypes: the baseline
carries no genotype-phenotype association. A label with a single training sample uses the whole
training set's frequencies, so that no training record is reproduced outright.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from omigen.errors import OmigenInputError
from omigen.registry import BaselineSpec

if TYPE_CHECKING:
    from omigen.data import GenotypeData


def generate_independent(train: "GenotypeData", n_per_label: dict, seed: int = 0) -> "GenotypeData":
    """Draw ``n_per_label[label]`` genomes per label from per-label allele frequencies under HWE."""
    from omigen.baselines import plan_counts, plan_labels, sample_ids
    from omigen.data import GenotypeData

    if train.modality != "genotype":
        raise OmigenInputError(f"the independent-snp baseline is for genotype data, not {train.modality}")
    plan = plan_counts(train, n_per_label)
    rng = np.random.default_rng(seed)
    blocks, pheno_rows = [], []
    G = np.asarray(train.G)
    for _, rows, n in plan:
        pool = rows if rows.size > 1 else np.arange(len(train))
        p = G[pool].mean(axis=0, dtype=np.float64) / 2.0
        blocks.append(rng.binomial(2, np.broadcast_to(p, (n, p.size))).astype(np.int8))
        pheno_rows.append(pool[rng.integers(0, pool.size, size=n)])
    values = np.concatenate(blocks) if blocks else G[:0]
    ids = sample_ids("independent", values.shape[0])
    phenotypes = None
    if train.phenotypes is not None:
        phenotypes = train.phenotypes.iloc[np.concatenate(pheno_rows)].copy()
        phenotypes.index = ids.astype(str)
    return GenotypeData(G=values, samples=ids, variants=train.variants, labels=plan_labels(plan),
                        phenotypes=phenotypes, meta=dict(train.meta)).validate()


BASELINES: list[BaselineSpec] = [
    BaselineSpec("independent-snp", ("genotype",), generate_independent,
                 description="per-population allele frequencies, Hardy-Weinberg genotypes, no LD"),
]
