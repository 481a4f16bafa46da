"""Report figures for genotype runs: LD decay curves, an LD heatmap, a PCA scatter, a mirrored Manhattan plot.

Each function takes :class:`omigen.data.GenotypeData` sets with the same SNPs and returns a matplotlib
``Figure`` (Agg backend, imported here only), ready for ``omigen.report.Section(title, figure=...)``.
``others`` maps extra names (e.g. a baseline) to data drawn next to the synthetic set where it helps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from omigen.data import GenotypeData


def _figure(width: float = 6.4, height: float = 4.2):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def ld_decay_figure(real: "GenotypeData", synthetic: "GenotypeData",
                    others: dict[str, "GenotypeData"] | None = None) -> "Figure":
    """Mean r² against distance (kb) for real, synthetic and ``others``, on the ``ld`` metric's pairs."""
    from omigen_genotype.metrics import ld_of

    fig, ax = _figure()
    first = ld_of(real, synthetic)
    mids = (first.bin_edges[:-1] + first.bin_edges[1:]) / 2 / 1000
    ax.plot(mids, first.decay_real, "k-o", ms=3, label="real (held out)")
    ax.plot(mids, first.decay_synthetic, "-o", ms=3, label=f"synthetic (MAD {first.decay_mad:.3f})")
    for name, data in (others or {}).items():
        ld = ld_of(real, data)
        ax.plot(mids, ld.decay_synthetic, "--", label=f"{name} (MAD {ld.decay_mad:.3f})")
    ax.set_xlabel("distance between SNPs (kb)")
    ax.set_ylabel("mean r²")
    where = "within populations, " if real.labels is not None and synthetic.labels is not None else ""
    ax.set_title(f"LD decay ({where}{first.n_pairs:,} pairs, MAF >= 5%)")
    ax.legend(fontsize=8)
    return fig


def ld_heatmap_figure(real: "GenotypeData", synthetic: "GenotypeData", n_snps: int = 200,
                      min_maf: float = 0.05) -> "Figure":
    """r² of ``n_snps`` consecutive common SNPs from the middle of the first chromosome: real in the lower
    triangle, synthetic in the upper."""
    from omigen_genotype.ld import r2_matrix
    from omigen_genotype.popgen import maf

    v = real.variants
    chrom = v["chrom"].astype(str).to_numpy()
    idx = np.flatnonzero((chrom == chrom[0]) & (maf(real.G) >= min_maf))
    idx = idx[np.argsort(v["pos"].to_numpy()[idx], kind="stable")]
    start = max(0, idx.size // 2 - n_snps // 2)
    idx = idx[start:start + n_snps]
    r_real, r_syn = r2_matrix(real.G[:, idx]), r2_matrix(synthetic.G[:, idx])
    both = np.where(np.tril(np.ones_like(r_real, dtype=bool)), r_real, r_syn)
    fig, ax = _figure(5.6, 5.0)
    im = ax.imshow(both, cmap="Reds", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label="r²")
    pos = v["pos"].to_numpy()[idx]
    span = f"{chrom[0]}:{pos[0]:,}-{pos[-1]:,}" if idx.size else "no SNP"
    ax.set_title(f"LD, {idx.size} SNPs ({span})\nlower: real, upper: synthetic", fontsize=9)
    ax.set_xlabel("SNP")
    ax.set_ylabel("SNP")
    return fig


def pca_figure(real: "GenotypeData", synthetic: "GenotypeData", seed: int = 0) -> "Figure":
    """PC1 against PC2 of the real data, with the synthetic genomes projected on the same axes."""
    from omigen_genotype.structure import project

    proj = project(real.G, synthetic.G, n_pcs=2, seed=seed)
    fig, ax = _figure()
    sets = [("real", proj.real, real.labels, "o"), ("synthetic", proj.synthetic, synthetic.labels, "x")]
    classes = sorted(set(real.labels.tolist()) | set((synthetic.labels if synthetic.labels is not None
                                                      else []).tolist())) if real.labels is not None else [None]
    colours = {c: f"C{i % 10}" for i, c in enumerate(classes)}
    y = 1 if proj.real.shape[1] > 1 else 0
    for name, scores, labels, marker in sets:
        if labels is None:
            ax.scatter(scores[:, 0], scores[:, y], s=10, marker=marker, alpha=0.6, label=name)
            continue
        for c in classes:
            mask = np.asarray(labels).astype(str) == str(c)
            if mask.any():
                ax.scatter(scores[mask, 0], scores[mask, y], s=10, marker=marker, alpha=0.6,
                           color=colours[c], label=f"{name} {c}")
    ax.set_xlabel(f"PC1 ({100 * proj.explained[0]:.1f}% of real variance)")
    ax.set_ylabel(f"PC{y + 1}" + (f" ({100 * proj.explained[1]:.1f}%)" if y else ""))
    ax.set_title("synthetic genomes on the real PCs")
    ax.legend(fontsize=7, ncol=2, markerscale=1.5)
    return fig


def manhattan_figure(real: "GenotypeData", synthetic: "GenotypeData") -> "Figure":
    """-log10 p of the per-SNP phenotype regression: real upwards, synthetic mirrored downwards.

    The p < 1e-3 hit threshold is drawn on both sides and known causal SNPs are marked.
    """
    from omigen_genotype.gwas import HIT_P
    from omigen_genotype.metrics import association_of, causal_indices

    use_labels = real.labels is not None and synthetic.labels is not None
    a_real = association_of(real, "real", use_labels)
    a_syn = association_of(synthetic, "synthetic", use_labels)
    pos = real.variants["pos"].to_numpy() / 1e6
    fig, ax = _figure(8.0, 4.2)
    up, down = -np.log10(np.maximum(a_real.p, 1e-300)), np.log10(np.maximum(a_syn.p, 1e-300))
    ax.scatter(pos, up, s=4, color="C0", label="real (held out)")
    ax.scatter(pos, down, s=4, color="C1", label="synthetic")
    causal = causal_indices(real)
    if causal is not None and causal.size:
        ax.scatter(pos[causal], up[causal], s=18, facecolors="none", edgecolors="k", label="causal SNP")
        ax.scatter(pos[causal], down[causal], s=18, facecolors="none", edgecolors="k")
    for sign in (1, -1):
        ax.axhline(sign * -np.log10(HIT_P), color="grey", lw=0.8, ls="--")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(f"position on {real.variants['chrom'].iloc[0]} (Mb)")
    ax.set_ylabel("-log10 p (synthetic mirrored)")
    ax.set_title("GWAS: real against synthetic")
    ax.legend(fontsize=8, loc="upper right")
    return fig
