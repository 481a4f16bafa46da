"""The ``expression`` pipeline: read, preprocess, train a generator, sample, evaluate.

``run(ctx)`` does ``task=generate`` (default) into the run folder (``model.ckpt``,
``synthetic.tsv``, ``synthetic.h5ad``, ``metrics.json``, ``report.html``; with ``landmarks`` also the
reconstructed full transcriptome), or hands over to ``task=perturb``
(:mod:`omigen_expression.perturb_task`) or ``task=screen`` (:mod:`omigen_expression.screen_task`).
``sample(run_dir, n, ...)`` draws more from a finished run. The checkpoint's ``run_config`` holds everything ``sample`` needs: the resolved
config (model and diffusion options), the fitted preprocessor and the training class counts.

Importing this module is cheap: torch, pandas and the models load inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omigen.data import ExpressionData
from omigen.errors import OmigenInputError
from omigen_expression.config import ExpressionConfig

if TYPE_CHECKING:
    from omigen.run import RunContext, RunResult
    from omigen_expression.preprocess import Preprocessor

CHECKPOINT = "model.ckpt"

#: ``--quick``: a smoke run of about 20 s on a 2-core CPU.
QUICK: dict[str, Any] = {"steps": 200, "train": {"lr": 3e-3, "warmup_steps": 30, "log_every": 50},
                         "sampler": "ddim", "sample_steps": 50, "umap": False}
#: The contract kit's run: seconds on a CPU, a small subset of the bundled data and a tiny model.
TINY: dict[str, Any] = {"steps": 30, "max_samples": 60, "umap": False, "sample_steps": 10,
                        "denoiser": {"dim": 16, "layers": 1, "heads": 2, "hidden": 32, "blocks": 1},
                        "vae": {"hidden": [32], "latent_dim": 4},
                        "wgan": {"hidden": [32], "latent_dim": 8, "n_critic": 2},
                        "perturb": {"steps": 10, "permutations": 199}, "screen": {"size": 8, "n_neighbors": 15},
                        "diffusion": {"timesteps": 100},
                        "train": {"batch_size": 32, "warmup_steps": 0, "log_every": 10, "progress": False}}


# -- data ------------------------------------------------------------------------------------------
def _read(path: str, labels: str | None, cfg: ExpressionConfig, missing: str) -> ExpressionData:
    from omigen_expression import io

    if str(path).lower().endswith(".h5ad"):
        if labels is not None:
            raise OmigenInputError(f"a label file cannot be joined to {Path(path).name}; name the obs column "
                                   "with label_key for .h5ad input")
        return io.read_h5ad(path, label_key=cfg.label_key, layer=cfg.layer, missing=missing)
    return io.read_table(path, labels, orientation=cfg.orientation, missing=missing, unmatched=cfg.unmatched)


def _split(data: ExpressionData, fraction: float, seed: int) -> tuple[ExpressionData, ExpressionData]:
    from omigen.data import split

    try:
        return split(data, fraction, seed, stratify=data.labels is not None)  # type: ignore[return-value]
    except ValueError:  # a class too small to stratify
        return split(data, fraction, seed, stratify=False)  # type: ignore[return-value]


def _cap(data: ExpressionData, n: int, seed: int) -> ExpressionData:
    if n <= 0 or len(data) <= n:
        return data
    _, kept = _split(data, n / len(data), seed)
    return kept


def load_data(ctx: "RunContext") -> tuple[ExpressionData, ExpressionData]:
    """The training and test sets the config names (recording every input file), validated."""
    from omigen_expression import io

    cfg: ExpressionConfig = ctx.config
    if cfg.missing != "auto" and cfg.missing not in io.MISSING:
        raise OmigenInputError(f"missing must be auto or one of {', '.join(io.MISSING)}, got {cfg.missing!r}")
    if cfg.data is None:
        for option in ("labels", "test_data", "test_labels"):
            if getattr(cfg, option) is not None:
                raise OmigenInputError(f"option {option!r} needs data (the bundled data has its own labels "
                                       "and test split)")
        missing = "not-expressed" if cfg.missing == "auto" else cfg.missing
        files = [(io.BUNDLED[k], k) for k in ("train", "train_labels", "test", "test_labels")]
        train = io.read_table(io.BUNDLED["train"], io.BUNDLED["train_labels"], missing=missing)
        test = io.read_table(io.BUNDLED["test"], io.BUNDLED["test_labels"], missing=missing)
    else:
        missing = "error" if cfg.missing == "auto" else cfg.missing
        if cfg.test_labels is not None and cfg.test_data is None:
            raise OmigenInputError("option 'test_labels' needs test_data")
        train = _read(cfg.data, cfg.labels, cfg, missing)
        files = [(cfg.data, "data")] + ([(cfg.labels, "labels")] if cfg.labels else [])
        if cfg.test_data is not None:
            test = _read(cfg.test_data, cfg.test_labels, cfg, missing)
            files += [(cfg.test_data, "test_data")] + ([(cfg.test_labels, "test_labels")] if cfg.test_labels else [])
        else:
            if not 0.0 < cfg.test_fraction < 1.0:
                raise OmigenInputError(f"test_fraction must be in (0, 1), got {cfg.test_fraction}")
            train, test = _split(train, cfg.test_fraction, ctx.seed)
    for path, role in files:
        ctx.record_input(path, role)
    train, test = _cap(train, cfg.max_samples, ctx.seed), _cap(test, cfg.max_samples, ctx.seed)
    if (train.labels is None) != (test.labels is None):
        raise OmigenInputError("the training and the test data must both have labels, or neither")
    unseen = sorted(set(test.classes) - set(train.classes))
    if unseen:
        raise OmigenInputError(f"test data has class(es) absent from the training data: {', '.join(unseen[:5])}")
    return train, test


def restrict(data: ExpressionData, genes: list[str]) -> ExpressionData:
    """``data`` with only ``genes``, in that order."""
    index = {g: i for i, g in enumerate(data.genes.tolist())}
    missing = [g for g in genes if g not in index]
    if missing:
        raise OmigenInputError(f"data lack gene(s) {', '.join(missing[:5])}")
    cols = np.asarray([index[g] for g in genes], dtype=np.int64)
    return replace(data, X=data.X[:, cols], genes=data.genes[cols])


def concat(*parts: ExpressionData) -> ExpressionData:
    """The samples of ``parts`` (same genes, in the same order) one after another."""
    labelled = all(d.labels is not None for d in parts)
    return ExpressionData(X=np.concatenate([d.X for d in parts]), genes=parts[0].genes,
                          samples=np.concatenate([d.samples for d in parts]),
                          labels=np.concatenate([d.labels for d in parts]) if labelled else None,
                          units=parts[0].units)


# -- genes and training ----------------------------------------------------------------------------
def gene_choices(cfg: ExpressionConfig) -> list[str]:
    """The gene-selection options ``cfg`` sets (at most one may be)."""
    return [name for name, on in (("genes", bool(cfg.genes)), ("random_genes", cfg.random_genes > 0),
                                  ("gene_set", cfg.gene_set is not None), ("landmarks", cfg.landmarks)) if on]


def choose_genes(cfg: ExpressionConfig, genes: np.ndarray, seed: int) -> tuple[list[str], list[str]]:
    """``(genes to model, genes to reconstruct from them)``; the second list is empty unless
    ``landmarks`` is on and the data hold genes besides the L1000 landmarks."""
    from omigen_expression.preprocess import select_genes

    chosen = gene_choices(cfg)
    if len(chosen) > 1:
        raise OmigenInputError(f"choose genes one way, not by {' and '.join(chosen)}")
    if cfg.gene_set is not None:
        from omigen_expression.screen import read_gmt

        if cfg.gmt is None:
            raise OmigenInputError("gene_set needs gmt (the GMT file that defines it)")
        sets = read_gmt(cfg.gmt)
        if cfg.gene_set not in sets:
            raise OmigenInputError(f"{Path(cfg.gmt).name} has no gene set {cfg.gene_set!r} "
                                   f"(it has {len(sets)}: {', '.join(list(sets)[:5])}{' ...' if len(sets) > 5 else ''})")
        present = set(genes.tolist())
        members = [g for g in sets[cfg.gene_set] if g in present]
        if len(members) < 2:
            raise OmigenInputError(f"gene set {cfg.gene_set!r}: {len(members)} of its {len(sets[cfg.gene_set])} "
                                   "genes are in the data; need at least 2")
        return members, []
    if cfg.landmarks:
        from omigen_expression.l1000 import match_landmarks

        # data of landmarks only (e.g. an L1000 matrix) are modelled as they are, with nothing to reconstruct
        return match_landmarks(genes.tolist(), need_others=False)
    return select_genes(genes, cfg.genes, cfg.random_genes, seed), []


@dataclass
class Trained:
    """A trained generator with what sampling and perturbing need."""

    model: Any  # the EMA copy for the diffusion model, the trained networks otherwise
    pre: "Preprocessor"
    cfg: ExpressionConfig  # resolved: denoiser arch and training steps filled in
    fit: Any  # omigen.train.FitResult
    about: str  # one line naming the generator and its size
    device: str


def train_generator(ctx: "RunContext", train: ExpressionData, genes: list[str]) -> Trained:
    """Fit the preprocessor on ``train`` (``genes`` only) and train ``ctx.config.model`` on it."""
    import torch

    from omigen.config import to_dict
    from omigen.train import Trainer, for_run

    from omigen_expression.generators import build_generator, describe
    from omigen_expression.models import resolve_arch
    from omigen_expression.preprocess import Preprocessor

    cfg: ExpressionConfig = ctx.config
    train_cfg = for_run(cfg.train, progress=ctx.progress, steps=cfg.steps, default_steps=ExpressionConfig().train.steps)
    pre = Preprocessor.fit(train, genes=genes, log=cfg.log, snap_zeros=cfg.snap_zeros)
    X = torch.from_numpy(pre.transform(train))
    n_classes = len(pre.classes)
    data = (X, torch.from_numpy(pre.labels_to_index(train.labels))) if n_classes else (X,)
    resolved = replace(cfg, train=train_cfg, denoiser=replace(cfg.denoiser, arch=resolve_arch(cfg.denoiser.arch,
                                                                                                len(genes))))
    run_config = {"pipeline": "expression", "config": to_dict(resolved), "preprocessor": pre.state_dict(),
                  "class_counts": train.label_counts() if n_classes else {}}
    with ctx.timer("train"), torch_threads(cfg.cpu_threads, ctx.device):
        torch.manual_seed(ctx.seed)  # the generator's initial weights
        model = build_generator(resolved, len(genes), n_classes)
        trainer = Trainer(model, data, train_cfg, out_dir=ctx.out_dir, seed=ctx.seed, device=ctx.device,
                          run_config=run_config)
        fit = trainer.fit(resume=ctx.resume)
    # The EMA weights sample better for every family; the WGAN's critic rides along unused.
    return Trained(model=trainer.ema, pre=pre, cfg=resolved, fit=fit, about=describe(resolved, trainer.model),
                   device=str(trainer.device))


def check_config(cfg: ExpressionConfig) -> None:
    """Reject bad task, model and sampling options before any work."""
    from omigen_expression.config import TASKS
    from omigen_expression.generators import check_model, check_sampling

    if cfg.task not in TASKS:
        raise OmigenInputError(f"task must be one of {', '.join(TASKS)}, got {cfg.task!r}")
    check_model(cfg.model)
    check_sampling(cfg.sampler, cfg.sample_steps, cfg.guidance, cfg.diffusion.timesteps)
    if cfg.n_samples < 0:
        raise OmigenInputError(f"n_samples must be 0 (the test split's class counts) or positive, got {cfg.n_samples}")
    if cfg.task == "perturb" and cfg.model != "diffusion":
        raise OmigenInputError(f"task=perturb inverts a diffusion model; model={cfg.model} cannot be inverted")
    if cfg.from_run is not None and cfg.task != "perturb":
        raise OmigenInputError("from_run reuses a trained model for task=perturb only")


# -- run -------------------------------------------------------------------------------------------
def torch_threads(n: int, device: str):
    """:func:`omigen_expression.generators.torch_threads` (imported late: it needs torch)."""
    from omigen_expression.generators import torch_threads as threads

    return threads(n, device)


def run(ctx: "RunContext") -> "RunResult":
    """Do ``ctx.config.task`` into the run folder (see the module notes)."""
    cfg: ExpressionConfig = ctx.config
    check_config(cfg)
    if cfg.task == "perturb":
        from omigen_expression.perturb_task import run_perturb

        return run_perturb(ctx)
    if cfg.task == "screen":
        from omigen_expression.screen_task import run_screen

        return run_screen(ctx)
    return generate(ctx)


def generate(ctx: "RunContext") -> "RunResult":
    """Train on the training set, sample the test set's class counts, write and evaluate."""
    from omigen.evaluate import evaluate_run
    from omigen.run import RunResult

    from omigen_expression import io
    from omigen_expression.generators import draw

    cfg: ExpressionConfig = ctx.config
    with ctx.timer("load"):
        train_all, test_all = load_data(ctx)
        genes, others = choose_genes(cfg, train_all.genes, ctx.seed)
        train, test = restrict(train_all, genes), restrict(test_all, genes)
    trained = train_generator(ctx, train, genes)
    if not ctx.is_main:  # under torchrun only rank 0 samples, evaluates and writes
        return RunResult()

    pre = trained.pre
    counts: dict[str | None, int]
    if cfg.n_samples:
        counts = {c: cfg.n_samples for c in pre.classes} if pre.classes else {None: cfg.n_samples}
    else:
        counts = test.label_counts() if pre.classes else {None: len(test)}
    with ctx.timer("sample"), torch_threads(cfg.cpu_threads, ctx.device):
        synthetic = draw(trained.model, pre, counts, seed=ctx.seed, cfg=trained.cfg, device=trained.device)
    files = {"checkpoint": str(trained.fit.checkpoint), "synthetic": str(ctx.path("synthetic.tsv")),
             "synthetic_h5ad": str(ctx.path("synthetic.h5ad")), "report": str(ctx.path("report.html"))}
    io.write_table(synthetic, files["synthetic"])
    io.write_h5ad(synthetic, files["synthetic_h5ad"])

    summary = [("samples", ", ".join(f"{k}: {v}" for k, v in counts.items())),
               ("genes", str(len(genes))), ("units", synthetic.units), ("model", trained.about),
               ("training", f"{trained.fit.steps} steps, {trained.fit.seconds:.1f} s "
                            f"({trained.fit.steps_per_sec:.1f} steps/s)")]
    with ctx.timer("report"):
        sections = _sections(ctx, train, test, synthetic, trained)
    if others:
        from omigen_expression.landmarks_task import reconstruct_transcriptome

        extra = reconstruct_transcriptome(ctx, train_all, test_all, synthetic, genes, others, log=pre.log)
        files.update(extra.files)
        summary.extend(extra.summary)
        sections.extend(extra.sections)
    ev = evaluate_run(ctx, train=train, test=test, synthetic=synthetic, sections=sections,
                      title="Expression generation (omigen-expression)")
    auc = {row: vals.get("c2st.auc") for row, vals in ev.rows.items()}
    if any(v is not None and np.isfinite(v) for v in auc.values()):
        summary.append(("C2ST AUC (0.5 best)", ", ".join(f"{r} {v:.3f}" for r, v in auc.items()
                                                         if v is not None and np.isfinite(v))))
    return RunResult(synthetic=synthetic, metrics=ev.rows, files=files, summary=summary)


def _sections(ctx, train, test, synthetic, trained: Trained) -> list:
    from html import escape

    from omigen.report import Section, embedding_figure

    cfg: ExpressionConfig = trained.cfg
    pre = trained.pre
    log = "log2(x+1), then " if pre.log else ""
    sampling = ""
    if cfg.model == "diffusion":
        sampling = (f"; sampler {escape(cfg.sampler)}{f' ({cfg.sample_steps} steps)' if cfg.sampler == 'ddim' else ''}"
                    f", guidance {cfg.guidance}")
    about = (f"<p>{len(train)} training and {len(test)} test samples, {len(pre.genes)} genes, "
             f"class(es): {escape(', '.join(pre.classes) or 'none')}. Values in {escape(pre.units)}; the model "
             f"works on {log}per-gene min-max scaling to [-1, 1] fitted on the training set. Generator: "
             f"{escape(trained.about)}, {trained.fit.steps} training steps{sampling}.</p>")
    sections = [Section("Data and model", html=about),
                Section("Embedding: held-out real vs synthetic (PCA fitted on real)",
                        figure=embedding_figure(test, synthetic, method="pca", seed=ctx.seed))]
    if cfg.umap:
        sections.append(Section("Embedding: held-out real vs synthetic (UMAP fitted on real)",
                                figure=embedding_figure(test, synthetic, method="umap", seed=ctx.seed)))
    return sections


# -- sampling a finished run -----------------------------------------------------------------------
def proportional_counts(class_counts: dict[str, int], n: int) -> dict[str, int]:
    """Split ``n`` over classes in proportion to ``class_counts`` (largest remainders, ties by name)."""
    names = sorted(class_counts)
    weights = np.asarray([class_counts[c] for c in names], dtype=np.float64)
    exact = n * weights / weights.sum()
    base = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(names)), -(exact - base)))
    base[order[:n - int(base.sum())]] += 1
    return {c: int(k) for c, k in zip(names, base) if k > 0}


def load_run(run_dir: str | Path):
    """``(config, preprocessor, EMA model on CPU, class counts)`` of a finished run folder."""
    from omigen.config import from_dict
    from omigen.train import load_checkpoint

    from omigen_expression.generators import build_generator
    from omigen_expression.preprocess import Preprocessor

    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise OmigenInputError(f"{run_dir} is not an expression run folder (no {CHECKPOINT})")
    ckpt = load_checkpoint(path)
    info = ckpt.get("run_config") or {}
    if info.get("pipeline") != "expression" or "preprocessor" not in info:
        raise OmigenInputError(f"{path} was not written by the expression pipeline")
    cfg = from_dict(ExpressionConfig, info["config"])
    pre = Preprocessor.from_state(info["preprocessor"])
    model = build_generator(cfg, len(pre.genes), len(pre.classes))
    try:
        model.load_state_dict(ckpt["ema"])
    except RuntimeError as exc:
        raise OmigenInputError(f"{path} does not fit the model its config describes: "
                               f"{str(exc).splitlines()[0]}") from None
    return cfg, pre, model.eval(), dict(info.get("class_counts") or {})


def sample(run_dir: str | Path, n: int, label: str | None = None, seed: int = 0, sampler: str | None = None,
           steps: int | None = None, guidance: float | None = None, eta: float | None = None,
           device: str = "cpu", cpu_threads: int | None = None) -> ExpressionData:
    """Draw ``n`` samples from a finished run: ``label=None`` gives classes in training proportions,
    a label name only that class. ``sampler``/``steps``/``guidance``/``eta``/``cpu_threads`` default
    to the run's settings; ``cpu_threads=0`` (all cores) pays off for thousands of samples on an
    otherwise idle machine."""
    from omigen.run import resolve_device

    from omigen_expression.generators import check_sampling, draw

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise OmigenInputError(f"n must be a positive integer, got {n!r}")
    cfg, pre, model, class_counts = load_run(run_dir)
    sampler = cfg.sampler if sampler is None else str(sampler)
    steps = cfg.sample_steps if steps is None else int(steps)
    guidance = cfg.guidance if guidance is None else float(guidance)
    check_sampling(sampler, steps, guidance, cfg.diffusion.timesteps)
    if label is None:
        counts: dict[str | None, int] = dict(proportional_counts(class_counts, n)) if pre.classes else {None: n}
    elif not pre.classes:
        raise OmigenInputError(f"this run's model is unconditional; it has no label {label!r}")
    else:
        pre.labels_to_index([label])
        counts = {str(label): n}
    device = resolve_device(device)
    with torch_threads(cfg.cpu_threads if cpu_threads is None else int(cpu_threads), device):
        return draw(model, pre, counts, seed=seed, cfg=cfg, sampler=sampler, steps=steps,
                    eta=None if eta is None else float(eta), guidance=guidance, device=device)
