"""Linkage disequilibrium: r² between SNP pairs within a distance window, real against synthetic.

r² of a pair is the squared Pearson correlation of the two dosage columns (a SNP constant in one data
set has r² = 0 with everything there). In a sample pooled from several populations, allele-frequency
differences between populations add LD between every pair of differentiated SNPs, even unlinked ones;
given population labels, dosages are centred within each population first, so r² measures the LD
inside populations (what haplotypes carry) and not the structure (which the PCA and Fst metrics score).

Pairs are the SNPs on one chromosome at most ``window`` bp apart among the SNPs with minor-allele
frequency >= ``min_maf`` in the real data; the synthetic data is scored on the same pairs. The chromosome is walked in blocks of ``chunk`` SNPs against the SNPs up to
``window`` bp downstream (also in blocks), so memory is ``samples x chunk`` and ``chunk x chunk``
whatever the number of SNPs or pairs; the statistics are accumulated as running sums, never as a list
of pairs.

:func:`ld_compare` gives the correlation of real and synthetic r² over all pairs and the LD decay curves
(mean r² in distance bins) with their mean absolute difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omigen.errors import OmigenInputError


@dataclass
class LDComparison:
    """Real vs synthetic LD over the same SNP pairs."""

    n_pairs: int
    r2_corr: float
    mean_real: float
    mean_synthetic: float
    bin_edges: np.ndarray
    decay_real: np.ndarray  #: mean r² per distance bin (NaN where a bin has no pair)
    decay_synthetic: np.ndarray
    pairs_per_bin: np.ndarray

    @property
    def decay_mad(self) -> float:
        """Mean absolute difference of the decay curves over bins with pairs (1.0 when there are none)."""
        ok = self.pairs_per_bin > 0
        return float(np.abs(self.decay_real[ok] - self.decay_synthetic[ok]).mean()) if ok.any() else 1.0


def standardise(G: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Columns centred and scaled to unit variance (float64); constant columns become 0.

    With ``groups`` (one label per row), each row is centred on its group's column means first, so
    the correlations are within-group ones pooled over groups.
    """
    X = np.asarray(G, dtype=np.float64)
    if groups is not None:
        _, inv = np.unique(np.asarray(groups).astype(str), return_inverse=True)
        sums = np.zeros((inv.max() + 1, X.shape[1]))
        np.add.at(sums, inv, X)
        X = X - (sums / np.bincount(inv)[:, None])[inv]
    sd = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(sd > 1e-12, sd, np.inf)


def r2_matrix(G: np.ndarray) -> np.ndarray:
    """All-pairs r² of the columns of ``G`` (for small SNP sets, e.g. a heatmap)."""
    Z = standardise(G)
    return np.clip((Z.T @ Z / Z.shape[0]) ** 2, 0.0, 1.0)


def _chrom_runs(chrom: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(chrom == c) for c in dict.fromkeys(chrom.tolist())]


def ld_compare(real: np.ndarray, synthetic: np.ndarray, pos: np.ndarray, chrom: np.ndarray | None = None,
               window: int = 100_000, min_maf: float = 0.05, n_bins: int = 20, chunk: int = 512,
               real_groups: np.ndarray | None = None, synthetic_groups: np.ndarray | None = None) -> LDComparison:
    """Compare r² of real and synthetic dosages over SNP pairs within ``window`` bp (see module docstring).

    ``real_groups`` / ``synthetic_groups`` (e.g. populations) make the r² within-group (see :func:`standardise`).
    """
    from omigen_genotype.popgen import maf

    if real.shape[1] != synthetic.shape[1] or real.shape[1] != len(pos):
        raise OmigenInputError(f"LD needs one position per SNP: real {real.shape[1]}, synthetic "
                               f"{synthetic.shape[1]}, positions {len(pos)}")
    if window <= 0 or chunk < 1 or n_bins < 1:
        raise OmigenInputError("LD window, chunk and n_bins must be positive")
    pos = np.asarray(pos, dtype=np.int64)
    chrom = np.zeros(len(pos), dtype=object) if chrom is None else np.asarray(chrom).astype(str)
    keep = maf(real) >= min_maf
    edges = np.linspace(0.0, float(window), n_bins + 1)
    sums = np.zeros(6)  # n, sx, sy, sxx, syy, sxy
    bin_n, bin_r, bin_s = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    # float32 halves the matmul time; r² needs no more than ~6 significant digits.
    Zr = standardise(real, real_groups).astype(np.float32)
    Zs = standardise(synthetic, synthetic_groups).astype(np.float32)
    nr, ns = real.shape[0], synthetic.shape[0]
    for run in _chrom_runs(chrom):
        idx = run[keep[run]]
        idx = idx[np.argsort(pos[idx], kind="stable")]
        p = pos[idx]
        for a in range(0, idx.size, chunk):
            rows = slice(a, min(a + chunk, idx.size))
            end = int(np.searchsorted(p, p[rows.stop - 1] + window, side="right"))
            A_r, A_s = Zr[:, idx[rows]], Zs[:, idx[rows]]
            for c in range(a, end, chunk):
                cols = slice(c, min(c + chunk, end))
                gi = np.arange(rows.start, rows.stop)[:, None]
                gj = np.arange(cols.start, cols.stop)[None, :]
                dist = p[cols][None, :] - p[rows][:, None]
                mask = (gj > gi) & (dist <= window)
                if not mask.any():
                    continue
                x = np.clip((A_r.T @ Zr[:, idx[cols]] / nr)[mask].astype(np.float64) ** 2, 0.0, 1.0)
                y = np.clip((A_s.T @ Zs[:, idx[cols]] / ns)[mask].astype(np.float64) ** 2, 0.0, 1.0)
                sums += [x.size, x.sum(), y.sum(), x @ x, y @ y, x @ y]
                b = np.minimum((dist[mask] / window * n_bins).astype(np.int64), n_bins - 1)
                bin_n += np.bincount(b, minlength=n_bins)
                bin_r += np.bincount(b, weights=x, minlength=n_bins)
                bin_s += np.bincount(b, weights=y, minlength=n_bins)
    n = sums[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        decay_r = np.where(bin_n > 0, bin_r / bin_n, np.nan)
        decay_s = np.where(bin_n > 0, bin_s / bin_n, np.nan)
    if n < 2:
        corr = 0.0
    else:
        cov = sums[5] / n - sums[1] * sums[2] / n ** 2
        vx, vy = sums[3] / n - (sums[1] / n) ** 2, sums[4] / n - (sums[2] / n) ** 2
        corr = float(np.clip(cov / np.sqrt(vx * vy), -1, 1)) if vx > 0 and vy > 0 else 0.0
    return LDComparison(n_pairs=int(n), r2_corr=corr, mean_real=float(sums[1] / n) if n else 0.0,
                        mean_synthetic=float(sums[2] / n) if n else 0.0, bin_edges=edges,
                        decay_real=decay_r, decay_synthetic=decay_s, pairs_per_bin=bin_n.astype(np.int64))
