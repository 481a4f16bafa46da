"""The L1000 route of ``task=generate`` (``--set landmarks=true``), after Lacan et al. 2026.

The generator models only the L1000 landmark genes present in the data. The other genes are then
reconstructed from the landmarks by two regressions fitted on the real training data (ridge and
an MLP, :class:`omigen_expression.l1000.Reconstructor`), each scored per gene on the held-out test
set (R² and Pearson r of the reconstruction from the real test landmarks). The better of the two
by median held-out R² turns the synthetic landmark profiles into full-transcriptome profiles.

Regressions work in log space: on ``log2(x+1)`` when the preprocessor log-transforms the input
(linear input units), on the input values otherwise. Files: ``reconstruction.tsv`` (per gene),
``reconstruction.json`` (summaries), ``synthetic_full.tsv`` / ``synthetic_full.h5ad``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np

from omigen.data import ExpressionData

if TYPE_CHECKING:
    from omigen.run import RunContext

KINDS = ("ridge", "mlp")


@dataclass
class Reconstruction:
    """What the reconstruction adds to a run: files, summary lines and report sections."""

    files: dict[str, str] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Any] = field(default_factory=list)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    best: str = ""


def _columns(data: ExpressionData, genes: list[str], log: bool) -> np.ndarray:
    index = {g: i for i, g in enumerate(data.genes.tolist())}
    X = data.X[:, [index[g] for g in genes]].astype(np.float64)
    return np.log2(np.clip(X, 0.0, None) + 1.0) if log else X


def reconstruct_transcriptome(ctx: "RunContext", train: ExpressionData, test: ExpressionData,
                              synthetic: ExpressionData, landmarks: list[str], others: list[str],
                              log: bool) -> Reconstruction:
    """Fit, score and apply the two reconstructions (see the module notes); writes the files."""
    import pandas as pd

    from omigen.io import write_json
    from omigen.report import Section

    from omigen_expression import io
    from omigen_expression.l1000 import Reconstructor, reconstruction_scores, summarise
    from omigen_expression.pipeline import torch_threads

    cfg = ctx.config
    out = Reconstruction()
    XL_train, XR_train = _columns(train, landmarks, log), _columns(train, others, log)
    XL_test, XR_test = _columns(test, landmarks, log), _columns(test, others, log)
    fitted, tables = {}, []
    from threadpoolctl import threadpool_limits

    # BLAS threads follow cpu_threads as torch's do: oversubscribed cores slowed ridge fits tenfold
    with ctx.timer("reconstruct"), torch_threads(cfg.cpu_threads, "cpu"), \
            threadpool_limits(limits=cfg.cpu_threads or None, user_api="blas"):
        for kind in KINDS:
            rec = Reconstructor(kind=kind).fit(XL_train, XR_train, seed=ctx.seed)
            scores = reconstruction_scores(XR_test, rec.predict(XL_test), others)
            fitted[kind] = rec
            out.scores[kind] = summarise(scores)
            tables.append(scores.set_index("gene").add_suffix(f"_{kind}"))
        out.best = max(KINDS, key=lambda k: np.nan_to_num(out.scores[k]["median_r2"], nan=-np.inf))
        predicted = fitted[out.best].predict(_columns(synthetic, landmarks, log))
    if log:
        predicted = np.exp2(predicted) - 1.0
    full = ExpressionData(X=np.concatenate([synthetic.X, predicted.astype(np.float32)], axis=1),
                          genes=np.asarray(list(landmarks) + list(others), dtype=object), samples=synthetic.samples,
                          labels=synthetic.labels, units=synthetic.units)
    table = pd.concat(tables, axis=1).reset_index()
    out.files = {"reconstruction": str(ctx.path("reconstruction.tsv")),
                 "synthetic_full": str(ctx.path("synthetic_full.tsv")),
                 "synthetic_full_h5ad": str(ctx.path("synthetic_full.h5ad"))}
    io.write_results_tsv(table, out.files["reconstruction"])
    write_json(ctx.path("reconstruction.json"), {"landmarks": len(landmarks), "reconstructed": len(others),
                                                 "space": "log2(x+1)" if log else synthetic.units,
                                                 "held_out": len(test), "best": out.best, "scores": out.scores})
    io.write_table(full, out.files["synthetic_full"])
    io.write_h5ad(full, out.files["synthetic_full_h5ad"])
    line = "; ".join(f"{k} median R² {s['median_r2']:.3f}, median r {s['median_pearson']:.3f}"
                     for k, s in out.scores.items())
    out.summary = [("L1000", f"{len(landmarks)} landmarks modelled, {len(others)} genes reconstructed by "
                             f"{out.best}"), ("reconstruction (held out)", line)]
    rows = pd.DataFrame(out.scores).T
    html = (f"<p>The generator models {len(landmarks)} L1000 landmark genes; {len(others)} other genes are "
            f"reconstructed from them by regressions fitted on the {len(train)} real training samples and "
            f"scored on the {len(test)} held-out ones (reconstruction from the real test landmarks). "
            f"<code>synthetic_full.tsv</code> uses the {escape(out.best)} reconstruction.</p>")
    out.sections = [Section("L1000 reconstruction of the other genes", html=html, table=rows)]
    return out
