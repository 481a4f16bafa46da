"""Starting points for mosaic-seeded diffusion sampling: haplotypes copied in tracts from training donors.

A genome drawn from pure noise keeps the common LD but not the long, rare-allele-marked tracts that real
relatives share, so it sits closer to other synthetic genomes than to real ones (AA_synth high; see the
plugin README). Mosaic seeding starts the sampler instead from a Li-Stephens-style copy: each synthetic
haplotype copies tracts of training haplotypes of its population, switching donor about ``switches`` times
per contig, from the ``donors`` training individuals whose phenotype is nearest the one it is drawn for
(so the tracts carry the phenotype's alleles and GWAS on the output still sees them). The sampler noises
that copy to a chosen step and denoises it with the model, which rewrites the noised alleles.

The output therefore holds short tracts of named training individuals, rewritten in part: its privacy is
measured (AATS, privacy loss, distance membership inference), not guaranteed by design.
"""

from __future__ import annotations

import numpy as np

from omigen.errors import OmigenInputError

#: Rows of the synthetic-by-training distance matrix held at once when choosing donor pools.
_CHUNK = 4096


def donor_pools(train_labels: np.ndarray, train_phenotype: np.ndarray | None, labels: np.ndarray,
                phenotype: np.ndarray | None, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices ``(n, size)`` of each synthetic individual's donors among the training individuals.

    Donors share the individual's population (``labels`` against ``train_labels``; give every individual
    the same label when there are no populations). With phenotypes they are the ``size`` nearest the
    individual's phenotype, else ``size`` drawn at random. A population smaller than ``size`` repeats its
    members rather than borrow another population's.
    """
    if size < 1:
        raise OmigenInputError(f"mosaic donors must be >= 1, got {size}")
    tl = np.asarray(train_labels, dtype=object).astype(str)
    sl = np.asarray(labels, dtype=object).astype(str)
    if len(tl) == 0:
        raise OmigenInputError("mosaic sampling needs the training individuals (none were given)")
    missing = sorted(map(str, set(sl) - set(tl)))
    if missing:
        raise OmigenInputError(f"no training individuals of population {missing[0]!r} to copy tracts from")
    use_phenotype = train_phenotype is not None and phenotype is not None
    pools = np.empty((len(sl), size), dtype=np.int64)
    for lo in range(0, len(sl), _CHUNK):
        hi = min(len(sl), lo + _CHUNK)
        other = sl[lo:hi, None] != tl[None, :]
        if use_phenotype:
            key = np.abs(np.asarray(phenotype[lo:hi], float)[:, None] - np.asarray(train_phenotype, float)[None, :])
            key = np.where(np.isfinite(key), key, np.inf)
        else:
            key = rng.random((hi - lo, len(tl)))
        key[other] = np.inf
        order = np.argsort(key, axis=1, kind="stable")
        cols = np.arange(size)[None, :] % np.maximum((~other).sum(1), 1)[:, None]
        pools[lo:hi] = np.take_along_axis(order, cols, axis=1)
    return pools


def _switch_probability(chrom: np.ndarray, pos: np.ndarray, switches: float) -> np.ndarray:
    """Per SNP, the chance that a haplotype takes a new donor there (1 at every contig's first SNP).

    Switches fall as a Poisson process along each contig's span in base pairs, ``switches`` per contig
    on average, i.e. a constant recombination rate over the region.
    """
    chrom = np.asarray(chrom).astype(str)
    pos = np.asarray(pos, dtype=np.float64)
    first = np.r_[True, chrom[1:] != chrom[:-1]]
    _, contig = np.unique(chrom, return_inverse=True)
    lo = np.full(contig.max() + 1, np.inf)
    hi = np.full(contig.max() + 1, -np.inf)
    np.minimum.at(lo, contig, pos)
    np.maximum.at(hi, contig, pos)
    span = np.maximum(hi - lo, 1.0)[contig]
    p = 1.0 - np.exp(-switches * np.clip(np.r_[0.0, np.diff(pos)], 0.0, None) / span)
    p[first] = 1.0
    return p


def mosaic_haplotypes(train_haplotypes: np.ndarray, pools: np.ndarray, chrom: np.ndarray, pos: np.ndarray,
                      switches: float, rng: np.random.Generator) -> np.ndarray:
    """Mosaic haplotypes ``(2 n, snps)`` int8: row ``i`` and ``n + i`` belong to individual ``i``.

    ``train_haplotypes`` ``(n_train, snps, 2)`` are the phased training genotypes (0/1), ``pools`` the
    ``(n, size)`` donors of each individual (:func:`donor_pools`). Each tract copies one haplotype of one
    donor drawn at random from the pool.
    """
    H = np.asarray(train_haplotypes)
    if H.ndim != 3 or H.shape[2] != 2:
        raise OmigenInputError("mosaic sampling needs phased training haplotypes (n, snps, 2)")
    if switches < 0:
        raise OmigenInputError(f"mosaic switches must be >= 0, got {switches}")
    n, size = pools.shape
    snps = H.shape[1]
    if len(pos) != snps or len(chrom) != snps:
        raise OmigenInputError(f"{len(pos)} positions for {snps} SNPs")
    rows = np.concatenate([np.arange(n), np.arange(n)])  # haplotype -> individual
    out = np.empty((2 * n, snps), dtype=np.int8)
    flat = H.reshape(H.shape[0], snps * 2)
    col = np.arange(snps) * 2
    p = _switch_probability(chrom, pos, switches)
    step = max(1, (1 << 22) // max(snps, 1))  # bounds the (haplotypes x snps) index arrays to ~4M entries
    for lo in range(0, 2 * n, step):
        hi = min(2 * n, lo + step)
        tract = np.cumsum(rng.random((hi - lo, snps)) < p[None, :], axis=1) - 1
        n_tracts = int(tract.max()) + 1
        donor = pools[rows[lo:hi, None], rng.integers(0, size, (hi - lo, n_tracts))]
        copy = rng.integers(0, 2, (hi - lo, n_tracts))
        d = np.take_along_axis(donor, tract, axis=1)
        c = np.take_along_axis(copy, tract, axis=1)
        out[lo:hi] = flat[d, col[None, :] + c]
    return out
