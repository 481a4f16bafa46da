"""Population-genetic summaries of dosage matrices (samples x SNPs, values 0/1/2), vectorised over SNPs.

Allele and genotype frequencies, observed and expected heterozygosity, Hudson's Fst and Yelmen et al.'s
3-point correlations. Every function takes plain arrays; :mod:`omigen_genotype.metrics` turns them into
metric values.
"""

from __future__ import annotations

import numpy as np


def allele_freq(G: np.ndarray) -> np.ndarray:
    """Alternate-allele frequency of each SNP (column mean of the dosage over 2)."""
    return np.asarray(G).mean(axis=0, dtype=np.float64) / 2.0  # no float copy of the whole matrix


def maf(G: np.ndarray) -> np.ndarray:
    """Minor-allele frequency of each SNP."""
    p = allele_freq(G)
    return np.minimum(p, 1.0 - p)


def genotype_freqs(G: np.ndarray) -> np.ndarray:
    """Frequencies of dosages 0, 1 and 2 per SNP, shape ``(3, n_snps)``."""
    G = np.asarray(G)
    return np.stack([(G == k).mean(axis=0) for k in range(3)])


def heterozygosity(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observed (fraction of 1s) and HWE-expected (``2p(1-p)``) heterozygosity per SNP."""
    p = allele_freq(G)
    return (np.asarray(G) == 1).mean(axis=0), 2.0 * p * (1.0 - p)


def inbreeding_f(G: np.ndarray, labels=None) -> float:
    """Wright's F, ``1 - sum(observed het) / sum(expected het)`` over SNPs, within each label group and averaged
    over groups (groups with no polymorphic SNP skipped); NaN when no group has one.

    0 under Hardy-Weinberg, -1 when every genotype is heterozygous, 1 when none is. Within groups, so that
    pooling populations (the Wahlund effect) does not pass for a deficit of heterozygotes.
    """
    G = np.asarray(G)
    groups = [np.ones(len(G), dtype=bool)] if labels is None else [np.asarray(labels) == v for v in np.unique(labels)]
    values = []
    for rows in groups:
        ho, he = heterozygosity(G[rows])
        if he.sum() > 0:
            values.append(1.0 - ho.sum() / he.sum())
    return float(np.mean(values)) if values else float("nan")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation that is always finite.

    With fewer than two values, or a constant vector, it is 1.0 when the vectors are equal and 0.0
    otherwise (no linear relation can be measured, only agreement).
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if a.size and np.allclose(a, b) else 0.0
    return float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))


def hudson_fst(G1: np.ndarray, G2: np.ndarray) -> float:
    """Hudson's Fst between two samples, ratio of averages over SNPs (Bhatia et al. 2013, eq. 10).

    ``N = (p1 - p2)^2 - p1(1-p1)/(n1-1) - p2(1-p2)/(n2-1)`` and ``D = p1(1-p2) + p2(1-p1)`` with ``n``
    the number of haplotypes; Fst = sum(N) / sum(D). Two draws from one population give ~0 (slightly
    negative values are sampling noise); 0.0 when every SNP is fixed for the same allele in both.
    """
    p1, p2 = allele_freq(G1), allele_freq(G2)
    n1, n2 = 2 * np.asarray(G1).shape[0], 2 * np.asarray(G2).shape[0]
    num = (p1 - p2) ** 2 - p1 * (1 - p1) / max(n1 - 1, 1) - p2 * (1 - p2) / max(n2 - 1, 1)
    den = p1 * (1 - p2) + p2 * (1 - p1)
    total = den.sum()
    return float(num.sum() / total) if total > 0 else 0.0


def sample_triplets(n_snps: int, n_triplets: int, span: int, rng: np.random.Generator,
                    candidates: np.ndarray | None = None) -> np.ndarray:
    """``(n_triplets, 3)`` increasing SNP indices, each gap 1..``span`` positions along ``candidates``.

    ``candidates`` (default: all SNPs, in chromosome order) restricts the SNPs used; fewer than 3
    candidates give an empty array.
    """
    cand = np.arange(n_snps) if candidates is None else np.asarray(candidates)
    if cand.size < 3:
        return np.zeros((0, 3), dtype=np.int64)
    span = max(1, min(span, (cand.size - 1) // 2))
    gaps = rng.integers(1, span + 1, size=(n_triplets, 2))
    first = rng.integers(0, cand.size - gaps.sum(axis=1))
    idx = np.stack([first, first + gaps[:, 0], first + gaps.sum(axis=1)], axis=1)
    return cand[idx]


def three_point(G: np.ndarray, triplets: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Connected 3-point correlation of allele dosages (scaled to [0, 1]) for each SNP triplet.

    ``E[xyz] - E[x]E[yz] - E[y]E[xz] - E[z]E[xy] + 2E[x]E[y]E[z]`` (the third joint cumulant, as in
    Yelmen et al. 2021), chunked over triplets.
    """
    G = np.asarray(G)
    out = np.empty(triplets.shape[0])
    for s in range(0, triplets.shape[0], chunk):
        t = triplets[s:s + chunk]
        x, y, z = (G[:, t[:, k]].astype(np.float64) / 2.0 for k in range(3))
        mx, my, mz = x.mean(0), y.mean(0), z.mean(0)
        out[s:s + chunk] = ((x * y * z).mean(0) - mx * (y * z).mean(0) - my * (x * z).mean(0)
                            - mz * (x * y).mean(0) + 2 * mx * my * mz)
    return out
