"""The ``copula`` pipeline: read or generate data, fit the copula, sample, write and evaluate.

Importing this module is cheap (the config dataclass only): ``omigen list`` imports every plugin,
so numpy, pandas, scipy and torch load inside the functions that run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omigen.config import RunConfig
from omigen.errors import OmigenInputError

CHECKPOINT = "copula.ckpt"


@dataclass
class CopulaConfig(RunConfig):
    """Options of ``omigen run copula``; ``data=None`` uses a generated two-class dataset.

    ``steps`` is unused: the copula is fitted in closed form. ``n_samples`` is per class
    (0: as many as each class has in the test split).
    """

    steps: int = 0
    label_column: str = "label"
    test_fraction: float = 0.25
    n_quantiles: int = 200
    shrinkage: float = 0.05
    n_samples: int = 0
    generated_samples: int = 400
    generated_genes: int = 12


def _split(data, fraction: float, seed: int):
    from omigen.data import split

    if not 0.0 < fraction < 1.0:
        raise OmigenInputError(f"test_fraction must be in (0, 1), got {fraction}")
    try:
        return split(data, fraction, seed, stratify=True)
    except ValueError:  # a class with one sample cannot be stratified; split it at random instead
        return split(data, fraction, seed, stratify=False)


def run(ctx):
    """Fit on the train split, sample the test split's class counts, write and evaluate."""
    from omigen.evaluate import evaluate_run
    from omigen.report import Section, embedding_figure
    from omigen.run import RunResult

    from omigen_copula import copula
    from omigen_copula.table import generate_default, read_table, write_table

    cfg: CopulaConfig = ctx.config
    if cfg.n_samples < 0:
        raise OmigenInputError(f"n_samples must be 0 (test split counts) or positive, got {cfg.n_samples}")
    with ctx.timer("load"):
        if cfg.data:
            data = read_table(cfg.data, label_column=cfg.label_column)
            ctx.record_input(cfg.data)
        else:
            data = generate_default(cfg.generated_samples, cfg.generated_genes)
        train, test = _split(data, cfg.test_fraction, ctx.seed)
    with ctx.timer("train"):
        params = copula.fit(train, n_quantiles=cfg.n_quantiles, shrinkage=cfg.shrinkage)
    if not ctx.is_main:  # under torchrun only rank 0 writes; the other ranks have nothing to add
        return RunResult()
    # The run folder appears only here, after the input has been read and the model fitted.
    checkpoint = copula.save(params, ctx.path(CHECKPOINT))
    with ctx.timer("sample"):
        if cfg.n_samples:
            counts = {c: cfg.n_samples for c in (params.classes if params.labelled else [None])}
        else:
            counts = test.label_counts()
        synthetic = copula.sample(params, counts, seed=ctx.seed).validate()
    table = write_table(synthetic, ctx.path("synthetic.tsv"), label_column=cfg.label_column or "label")
    sections = [Section(title="Real test vs synthetic (PCA)", figure=embedding_figure(test, synthetic, seed=ctx.seed),
                        html=f"<p>{len(train)} training samples, {len(params.genes)} genes, "
                             f"{len(params.classes)} class(es); copula shrinkage {cfg.shrinkage}.</p>")]
    evaluation = evaluate_run(ctx, train=train, test=test, synthetic=synthetic, sections=sections,
                              title="Gaussian copula (omigen-copula)")
    return RunResult(
        synthetic=synthetic, metrics=evaluation.rows,
        files={"synthetic": str(table), "checkpoint": str(checkpoint), "report": str(ctx.path("report.html"))},
        summary=[("samples", ", ".join(f"{k}: {v}" for k, v in counts.items())),
                 ("genes", str(len(params.genes))), ("units", synthetic.units)])


def sample(run_dir, n: int, label: str | None = None, seed: int = 0, **options):
    """Draw ``n`` samples from a finished run's checkpoint (``label=None``: classes in training proportions)."""
    from omigen_copula import copula

    if options:
        raise OmigenInputError(f"the copula sampler takes no option {sorted(options)[0]!r}")
    if n <= 0:
        raise OmigenInputError(f"n must be positive, got {n}")
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise OmigenInputError(f"{run_dir} is not a copula run folder (no {CHECKPOINT})")
    params = copula.load(path)
    counts = copula.proportional_counts(params, n) if label is None else {label: n}
    return copula.sample(params, counts, seed=seed)
