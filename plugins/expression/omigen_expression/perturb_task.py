"""``omigen run expression --set task=perturb --set source=tumor --set target=normal``.

Trains the class-conditional diffusion model as ``task=generate`` does (or reuses the one in
``from_run``), perturbs the real source-class samples of ``perturb.split`` (default: the held-out
test set) to the target class (:mod:`omigen_expression.perturb`) and writes:

- ``perturbed.tsv`` / ``perturbed.h5ad``: the perturbed profiles in the input's units, under the
  source samples' ids, labelled with the target class;
- ``perturbation_genes.tsv``: the per-gene table (mean and absolute change, core genes, p- and
  q-values, round-trip error);
- ``perturbation.json`` (summary), ``metrics.json`` and ``report.html``.

Judging the perturbation: a logistic regression fitted on all real training samples (all
classes) says which class each perturbed profile looks like, and the perturbed profiles are
compared with held-out real target samples by C2ST and MMD². The rows of the table are the
perturbed profiles (``model``), two baselines (``baseline:unperturbed``, the source samples as they
are, and ``baseline:mean-shift``, each source sample plus the target-minus-source mean difference
of the training set in the model's scaled space) and ``reference:real``, the real training
samples of the target class.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omigen.data import ExpressionData
from omigen.errors import OmigenInputError
from omigen_expression.config import ExpressionConfig

if TYPE_CHECKING:
    from omigen.run import RunContext, RunResult

SPLITS = ("test", "train", "all")
#: Metric columns of the perturbation table and their directions.
DIRECTIONS: dict[str, Any] = {"classified_target": "higher", "c2st_auc": 0.5, "mmd2": "lower"}


def _check(cfg: ExpressionConfig) -> None:
    p = cfg.perturb
    if cfg.source is None or cfg.target is None:
        raise OmigenInputError("task=perturb needs source and target classes, e.g. --set source=tumor "
                               "--set target=normal")
    if cfg.source == cfg.target:
        raise OmigenInputError(f"source and target are both {cfg.source!r}; perturbation needs two classes")
    if p.split not in SPLITS:
        raise OmigenInputError(f"perturb.split must be one of {', '.join(SPLITS)}, got {p.split!r}")
    if p.steps < 1 or p.steps > cfg.diffusion.timesteps:
        raise OmigenInputError(f"perturb.steps must be from 1 to {cfg.diffusion.timesteps}, got {p.steps}")
    if p.permutations < 1:
        raise OmigenInputError(f"perturb.permutations must be >= 1, got {p.permutations}")
    if not (np.isfinite(p.k) and p.k > 0):
        raise OmigenInputError(f"perturb.k must be a positive number of standard deviations, got {p.k}")


def _of_class(data: ExpressionData, label: str) -> ExpressionData:
    return data.subset(np.flatnonzero(data.labels == label))


def _model(ctx: "RunContext", train: ExpressionData):
    """``(EMA diffusion model, preprocessor, resolved config, one-line description, device)``."""
    from omigen_expression.generators import describe
    from omigen_expression.pipeline import CHECKPOINT, choose_genes, load_run, restrict, train_generator

    cfg: ExpressionConfig = ctx.config
    if cfg.from_run is None:
        genes, _ = choose_genes(cfg, train.genes, ctx.seed)  # landmark reconstruction plays no part here
        trained = train_generator(ctx, restrict(train, genes), genes)
        return trained.model, trained.pre, trained.cfg, trained.about, trained.device
    run_cfg, pre, model, _ = load_run(cfg.from_run)
    if run_cfg.model != "diffusion":
        raise OmigenInputError(f"{cfg.from_run} holds a {run_cfg.model} model; perturbation inverts a diffusion model")
    ctx.record_input(Path(cfg.from_run) / CHECKPOINT, "from_run")
    from omigen.run import resolve_device

    device = resolve_device(ctx.device)
    return model.to(device), pre, run_cfg, describe(run_cfg, model) + f", from {cfg.from_run}", device


def _classifier(train: ExpressionData):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
    return clf.fit(train.features(), train.labels.astype(str))


def _score_rows(rows: dict[str, ExpressionData], reference: ExpressionData, clf, target: str,
                seed: int) -> dict[str, dict[str, float]]:
    from omigen.metrics.detection import c2st_auc
    from omigen.metrics.distances import standardise
    from omigen.metrics.mmd import mmd2_rbf

    out = {}
    for name, data in rows.items():
        ref, X = standardise(reference.features(), data.features())
        out[name] = {"classified_target": float(np.mean(clf.predict(data.features()) == target)),
                     "c2st_auc": c2st_auc(ref, X, seed=seed), "mmd2": mmd2_rbf(ref, X, seed=seed)[0]}
    return out


def run_perturb(ctx: "RunContext") -> "RunResult":
    """Do ``task=perturb`` into the run folder (see the module notes)."""
    from omigen.config import to_dict
    from omigen.evaluate import MODEL, REFERENCE, Evaluation
    from omigen.io import write_json
    from omigen.report import Section, embedding_figure, print_table, write_report
    from omigen.run import RunResult

    from omigen_expression import io
    from omigen_expression.perturb import gene_scores, perturb_latent
    from omigen_expression.pipeline import concat, load_data, restrict, torch_threads

    cfg: ExpressionConfig = ctx.config
    _check(cfg)
    pc = cfg.perturb
    with ctx.timer("load"):
        train, test = load_data(ctx)
        if train.labels is None:
            raise OmigenInputError("task=perturb needs labelled data (source and target are classes)")
    model, pre, run_cfg, about, device = _model(ctx, train)
    if not ctx.is_main:
        return RunResult()
    for what, name in (("source", cfg.source), ("target", cfg.target)):
        if name not in pre.classes:
            raise OmigenInputError(f"{what} class {name!r} is not one the model knows ({', '.join(pre.classes)})")
    genes = list(pre.genes)
    train, test = restrict(train, genes), restrict(test, genes)
    pool = {"test": test, "train": train, "all": concat(train, test)}[pc.split]
    source = _of_class(pool, cfg.source)
    target_test, target_train = _of_class(test, cfg.target), _of_class(train, cfg.target)
    if len(source) < 2:
        raise OmigenInputError(f"the {pc.split} split holds {len(source)} sample(s) of {cfg.source!r}; need >= 2")
    if len(target_test) < 2:
        raise OmigenInputError(f"the test split holds {len(target_test)} sample(s) of {cfg.target!r} to compare "
                               "the perturbed profiles with; need >= 2")
    s_idx, t_idx = (int(i) for i in pre.labels_to_index([cfg.source, cfg.target]))

    Z = pre.transform(source)
    with ctx.timer("perturb"), torch_threads(cfg.cpu_threads, device):
        Zp, Zr = perturb_latent(model, Z, s_idx, t_idx, steps=pc.steps, guidance=cfg.guidance)
    as_target = dict(genes=source.genes, samples=source.samples, labels=np.full(len(source), cfg.target, object),
                     units=source.units)
    perturbed = ExpressionData(X=pre.inverse(Zp), **as_target)
    shift = pre.transform(target_train).mean(axis=0) - pre.transform(_of_class(train, cfg.source)).mean(axis=0)
    mean_shift = ExpressionData(X=pre.inverse(Z + shift), **as_target)
    round_trip = pre.inverse(Zr)

    with ctx.timer("score"):
        table = gene_scores(source.X, perturbed.X, genes, k=pc.k, permutations=pc.permutations, seed=ctx.seed)
        rt_error = dict(zip(genes, np.abs(round_trip - source.X).mean(axis=0)))
        table["round_trip_error"] = table["gene"].map(rt_error)
        clf = _classifier(train)
        rows = _score_rows({MODEL: perturbed, "baseline:mean-shift": mean_shift, "baseline:unperturbed": source,
                            REFERENCE: target_train}, target_test, clf, cfg.target, ctx.seed)
    ev = Evaluation(rows=rows, directions=dict(DIRECTIONS), modality="expression",
                    sizes={MODEL: len(perturbed), "baseline:mean-shift": len(mean_shift),
                           "baseline:unperturbed": len(source), REFERENCE: len(target_train)},
                    notes=[f"Scored against {len(target_test)} held-out real {cfg.target!r} samples; "
                           f"classified_target: share a logistic regression fitted on the real training "
                           f"data assigns to {cfg.target!r}."])
    core_up = table.loc[table.core == "up", "gene"].tolist()
    core_down = table.loc[table.core == "down", "gene"].tolist()
    summary_json = {
        "source": cfg.source, "target": cfg.target, "split": pc.split, "n": len(source), "steps": pc.steps,
        "guidance": cfg.guidance, "k": pc.k, "permutations": pc.permutations, "units": source.units,
        "generator": about, "core_up": core_up, "core_down": core_down,
        "round_trip_error_mean": float(np.abs(round_trip - source.X).mean()), "rows": rows,
    }
    files = {"perturbed": str(ctx.path("perturbed.tsv")), "perturbed_h5ad": str(ctx.path("perturbed.h5ad")),
             "genes": str(ctx.path("perturbation_genes.tsv")), "summary": str(ctx.path("perturbation.json")),
             "report": str(ctx.path("report.html"))}
    io.write_table(perturbed, files["perturbed"])
    io.write_h5ad(perturbed, files["perturbed_h5ad"])
    io.write_results_tsv(table, files["genes"])
    write_json(ctx.path("perturbation.json"), summary_json)
    write_json(ctx.path("metrics.json"), ev.as_dict())

    with ctx.timer("report"):
        real = concat(_of_class(test, cfg.source), target_test)
        intro = (f"<p>{len(source)} real {escape(cfg.source)} samples ({escape(pc.split)} split) inverted by "
                 f"{pc.steps}-step DDIM under {escape(cfg.source)} and decoded under {escape(cfg.target)} "
                 f"(guidance {cfg.guidance}). Generator: {escape(about)}. Values in {escape(source.units)}. "
                 f"Core genes (mean change beyond mean ± {pc.k:g} SD over genes): up "
                 f"{escape(', '.join(core_up) or 'none')}; down {escape(', '.join(core_down) or 'none')}. "
                 f"Mean absolute round-trip error (invert and decode under the source label): "
                 f"{summary_json['round_trip_error_mean']:.4f}.</p>")
        sections = [Section("Perturbation", html=intro),
                    Section("Per-gene perturbation scores", table=table.head(50)),
                    Section(f"Held-out real samples vs perturbed {cfg.source}→{cfg.target} (PCA fitted on real)",
                            figure=embedding_figure(real, replace(perturbed, labels=np.full(
                                len(perturbed), f"{cfg.source}→{cfg.target}", object)), seed=ctx.seed))]
        write_report(files["report"], title="Expression perturbation (omigen-expression)", evaluation=ev,
                     manifest=ctx.manifest(), config=to_dict(cfg), sections=sections)
    print_table(ev)
    share = rows[MODEL]["classified_target"]
    summary = [("perturbed", f"{len(source)} {cfg.source} → {cfg.target} ({pc.split} split)"),
               ("model", about),
               ("classified as target", f"{share:.1%} (unperturbed {rows['baseline:unperturbed']['classified_target']:.1%})"),
               ("C2ST AUC vs real target", f"{rows[MODEL]['c2st_auc']:.3f} (mean shift "
                                           f"{rows['baseline:mean-shift']['c2st_auc']:.3f}, real "
                                           f"{rows[REFERENCE]['c2st_auc']:.3f})"),
               ("core genes", f"up {len(core_up)}, down {len(core_down)}")]
    return RunResult(synthetic=perturbed, metrics=rows, files=files, summary=summary)
