"""``omigen run expression --set task=screen --set gmt=sets.gmt``: GEMDiff's gene-set screening.

No model is trained. The training and test samples together (labels required) are preprocessed
as a generator would see them (optional log2(x+1), per-gene scaling to [-1, 1]), each gene set
of the GMT file is cut into subsets of ``screen.size`` genes, and every subset is scored by the
silhouette of the class labels on a UMAP and a PCA embedding
(:func:`omigen_expression.screen.screen`). Files: ``screen.tsv`` (one row per subset, best
first), ``screen.json`` (summary, skipped sets, genes missing from the data) and ``report.html``.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from omigen.errors import OmigenInputError
from omigen_expression.config import ExpressionConfig

if TYPE_CHECKING:
    from omigen.run import RunContext, RunResult


def _check(cfg: ExpressionConfig) -> None:
    if cfg.gmt is None:
        raise OmigenInputError("task=screen needs gmt, a GMT file of gene sets (--set gmt=sets.gmt)")
    from omigen_expression.pipeline import gene_choices

    chosen = gene_choices(cfg)
    if chosen:
        raise OmigenInputError(f"task=screen screens every gene set of the GMT file; {chosen[0]} does not apply")
    if cfg.screen.n_jobs == 0:
        raise OmigenInputError("screen.n_jobs must be a number of processes (-1: all cores), not 0")


def run_screen(ctx: "RunContext") -> "RunResult":
    """Do ``task=screen`` into the run folder (see the module notes)."""
    from omigen.config import to_dict
    from omigen.evaluate import Evaluation
    from omigen.io import write_json
    from omigen.report import Section, write_report
    from omigen.run import RunResult

    from omigen_expression.pipeline import concat, load_data
    from omigen_expression.preprocess import Preprocessor
    from omigen_expression.screen import read_gmt, screen, split_gene_sets, write_screen

    cfg: ExpressionConfig = ctx.config
    _check(cfg)
    sc = cfg.screen
    with ctx.timer("load"):
        gene_sets = read_gmt(cfg.gmt)
        ctx.record_input(cfg.gmt, "gmt")
        train, test = load_data(ctx)
        if train.labels is None:
            raise OmigenInputError("task=screen needs labelled data: it scores how well gene subsets separate "
                                   "the classes")
        data = concat(train, test)
        pre = Preprocessor.fit(data, log=cfg.log, snap_zeros=cfg.snap_zeros)
        scaled = replace(data, X=pre.transform(data), units=f"{pre.model_units} scaled to [-1, 1]")
        subsets = split_gene_sets(gene_sets, data.genes.tolist(), size=sc.size, seed=ctx.seed)
    with ctx.timer("screen"):
        table = screen(scaled, subsets, n_neighbors=sc.n_neighbors, min_dist=sc.min_dist, seed=ctx.seed,
                       umap=sc.umap, n_jobs=sc.n_jobs, progress=ctx.progress)
    files = {"screen": str(ctx.path("screen.tsv")), "summary": str(ctx.path("screen.json")),
             "report": str(ctx.path("report.html"))}
    write_screen(table, files["screen"])
    score = "silhouette_umap" if sc.umap else "silhouette_pca"
    flag = "flag_umap" if sc.umap else "flag_pca"
    values = table[score].to_numpy(dtype=float)
    summary_json = {
        "gmt": str(cfg.gmt), "gene_sets": len(gene_sets), "subsets": len(table), "size": sc.size,
        "samples": len(data), "classes": data.label_counts(), "score": score,
        "mean": float(np.mean(values)), "sd": float(np.std(values)),
        "high": table.loc[table[flag] == "high", ["set", "subset"]].astype(str).agg(":".join, axis=1).tolist(),
        "low": table.loc[table[flag] == "low", ["set", "subset"]].astype(str).agg(":".join, axis=1).tolist(),
        "skipped_sets": list(subsets.skipped), "genes_missing": {k: v for k, v in subsets.missing.items() if v},
    }
    write_json(ctx.path("screen.json"), summary_json)
    with ctx.timer("report"):
        per_set = (table.groupby("set")[[c for c in ("silhouette_pca", "silhouette_umap") if c in table]]
                   .agg(["mean", "max"]).round(4))
        per_set.columns = [f"{a} {b}" for a, b in per_set.columns]
        html = (f"<p>{len(data)} samples ({escape(', '.join(f'{k}: {v}' for k, v in data.label_counts().items()))}), "
                f"{len(gene_sets)} gene sets from {escape(Path(cfg.gmt).name)} cut into {len(table)} subsets of "
                f"about {sc.size} genes. Silhouette of the class labels on a 2-D UMAP (n_neighbors "
                f"{sc.n_neighbors}, min_dist {sc.min_dist}) and on the first 2 principal components of each "
                f"subset; flagged beyond mean ± 1 SD of {score} (mean {summary_json['mean']:.3f}, SD "
                f"{summary_json['sd']:.3f}): {len(summary_json['high'])} high, {len(summary_json['low'])} low. "
                f"Skipped sets (too few genes in the data): {escape(', '.join(subsets.skipped) or 'none')}.</p>")
        sections = [Section("Gene-set screening", html=html),
                    Section("Subsets, best first (top 50)", table=table.head(50)),
                    Section("Per gene set", table=per_set.reset_index())]
        ev = Evaluation(rows={}, directions={}, modality="expression",
                        notes=["task=screen trains no generator; the subset scores are below."])
        write_report(files["report"], title="Expression gene-set screening (omigen-expression)", evaluation=ev,
                     manifest=ctx.manifest(), config=to_dict(cfg), sections=sections)
    best = table.iloc[0]
    summary = [("screened", f"{len(table)} subsets of {len(gene_sets)} gene sets, {len(data)} samples"),
               ("best subset", f"{best['set']}:{best['subset']} ({score} {best[score]:.3f})"),
               ("flagged", f"{len(summary_json['high'])} high, {len(summary_json['low'])} low")]
    return RunResult(metrics={}, files=files, summary=summary)
