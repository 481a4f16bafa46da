"""The ``expression`` pipeline: read, preprocess, train a class-conditional diffusion model, sample, evaluate.

``run(ctx)`` does the whole job into the run folder (``model.ckpt``, ``synthetic.tsv``,
``synthetic.h5ad``, ``metrics.json``, ``report.html``); ``sample(run_dir, n, ...)`` draws more from
a finished run. The checkpoint's ``run_config`` holds everything ``sample`` needs: the resolved
config (model and diffusion options), the fitted preprocessor and the training class counts.

Importing this module is cheap: torch, pandas and the models load inside the functions.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from omigen.data import ExpressionData
from omigen.errors import OmigenInputError
from omigen_expression.config import ExpressionConfig

if TYPE_CHECKING:
    from omigen.run import RunContext, RunResult
    from omigen_expression.preprocess import Preprocessor

CHECKPOINT = "model.ckpt"
SAMPLERS = ("ddim", "ddpm")

#: ``--quick``: a smoke run of about 20 s on a 2-core CPU.
QUICK: dict[str, Any] = {"steps": 200, "train": {"lr": 3e-3, "warmup_steps": 30, "log_every": 50},
                         "sample_steps": 50, "umap": False}
#: The contract kit's run: seconds on a CPU, a small subset of the bundled data and a tiny model.
TINY: dict[str, Any] = {"steps": 30, "max_samples": 60, "umap": False, "sample_steps": 10,
                        "model": {"dim": 16, "layers": 1, "heads": 2, "hidden": 32, "blocks": 1},
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


# -- model -----------------------------------------------------------------------------------------
def build_model(cfg: ExpressionConfig, n_genes: int, n_classes: int):
    """The DiffusionModel (denoiser per ``cfg.model``, diffusion per ``cfg.diffusion``) for this data."""
    from omigen.diffusion import DiffusionModel

    from omigen_expression.models import build_denoiser

    denoiser = build_denoiser(cfg.model, {"n_genes": n_genes, "n_classes": n_classes})
    return DiffusionModel(denoiser, cfg.diffusion, sample_shape=(n_genes,), n_classes=n_classes)


def _check_sampling(sampler: str, steps: int, guidance: float, timesteps: int) -> None:
    if sampler not in SAMPLERS:
        raise OmigenInputError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if sampler == "ddim" and not 1 <= steps <= timesteps:
        raise OmigenInputError(f"sample_steps must be from 1 to {timesteps} (the diffusion timesteps), got {steps}")
    if not np.isfinite(guidance) or guidance < 0:
        raise OmigenInputError(f"guidance must be >= 0, got {guidance}")


def draw(model, pre: "Preprocessor", counts: dict[str | None, int], *, seed: int, sampler: str, steps: int,
         eta: float, guidance: float, clip_x0: float, device: str = "cpu") -> ExpressionData:
    """``counts[label]`` samples of each label (``None``: unconditional) in the input's units."""
    import torch

    labels = [lab for lab, k in counts.items() for _ in range(int(k))]
    n = len(labels)
    y = None
    if model.n_classes:
        y = np.asarray([-1 if lab is None else int(pre.labels_to_index([lab])[0]) for lab in labels], np.int64)
    generator = torch.Generator().manual_seed(int(seed))
    options: dict[str, Any] = {"guidance": guidance, "clip_x0": clip_x0 if clip_x0 > 0 else None}
    if sampler == "ddim":
        options.update(steps=steps, eta=eta)
    model = model.to(device)
    Z = model.sample(n, y=y, sampler=sampler, generator=generator, **options).numpy()
    X = pre.inverse(Z)
    named = model.n_classes and all(lab is not None for lab in labels)
    width = max(5, len(str(n)))
    return ExpressionData(X=X, genes=np.asarray(pre.genes, dtype=object),
                          samples=np.asarray([f"synthetic_{i + 1:0{width}d}" for i in range(n)], dtype=object),
                          labels=np.asarray(labels, dtype=object) if named else None, units=pre.units)


@contextlib.contextmanager
def torch_threads(n: int, device: str) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (0 or a non-CPU device: unchanged), then restore."""
    import torch

    if n < 0:
        raise OmigenInputError(f"cpu_threads must be >= 0, got {n}")
    if n == 0 or not str(device).startswith("cpu"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- run -------------------------------------------------------------------------------------------
def run(ctx: "RunContext") -> "RunResult":
    """Train on the training set, sample the test set's class counts, write and evaluate (see module notes)."""
    import torch

    from omigen.config import to_dict
    from omigen.evaluate import evaluate_run
    from omigen.run import RunResult
    from omigen.train import Trainer, for_run

    from omigen_expression import io
    from omigen_expression.models import resolve_arch
    from omigen_expression.preprocess import Preprocessor, select_genes

    cfg: ExpressionConfig = ctx.config
    train_cfg = for_run(cfg.train, progress=ctx.progress, steps=cfg.steps,
                        default_steps=ExpressionConfig().train.steps)
    _check_sampling(cfg.sampler, cfg.sample_steps, cfg.guidance, cfg.diffusion.timesteps)
    if cfg.n_samples < 0:
        raise OmigenInputError(f"n_samples must be 0 (the test split's class counts) or positive, got {cfg.n_samples}")
    with ctx.timer("load"):
        train, test = load_data(ctx)
        genes = select_genes(train.genes, cfg.genes, cfg.random_genes, ctx.seed)
        pre = Preprocessor.fit(train, genes=genes, log=cfg.log, snap_zeros=cfg.snap_zeros)
        train, test = restrict(train, genes), restrict(test, genes)
        X = torch.from_numpy(pre.transform(train))
        n_classes = len(pre.classes)
        data = (X, torch.from_numpy(pre.labels_to_index(train.labels))) if n_classes else (X,)
    arch = resolve_arch(cfg.model.arch, len(genes))
    resolved = replace(cfg, train=train_cfg, model=replace(cfg.model, arch=arch))
    run_config = {"pipeline": "expression", "config": to_dict(resolved), "preprocessor": pre.state_dict(),
                  "class_counts": train.label_counts() if n_classes else {}}

    with ctx.timer("train"), torch_threads(cfg.cpu_threads, ctx.device):
        torch.manual_seed(ctx.seed)  # the denoiser's initial weights
        model = build_model(resolved, len(genes), n_classes)
        trainer = Trainer(model, data, train_cfg, out_dir=ctx.out_dir, seed=ctx.seed, device=ctx.device,
                          run_config=run_config)
        fit = trainer.fit(resume=ctx.resume)
    if not ctx.is_main:  # under torchrun only rank 0 samples, evaluates and writes
        from omigen.run import RunResult

        return RunResult()

    counts: dict[str | None, int]
    if cfg.n_samples:
        counts = {c: cfg.n_samples for c in pre.classes} if n_classes else {None: cfg.n_samples}
    else:
        counts = test.label_counts() if n_classes else {None: len(test)}
    with ctx.timer("sample"), torch_threads(cfg.cpu_threads, ctx.device):
        synthetic = draw(trainer.ema, pre, counts, seed=ctx.seed, sampler=cfg.sampler, steps=cfg.sample_steps,
                         eta=cfg.eta, guidance=cfg.guidance, clip_x0=cfg.clip_x0, device=str(trainer.device))
    files = {"checkpoint": str(fit.checkpoint), "synthetic": str(ctx.path("synthetic.tsv")),
             "synthetic_h5ad": str(ctx.path("synthetic.h5ad")), "report": str(ctx.path("report.html"))}
    io.write_table(synthetic, files["synthetic"])
    io.write_h5ad(synthetic, files["synthetic_h5ad"])

    n_params = sum(p.numel() for p in trainer.model.parameters())
    with ctx.timer("report"):
        sections = _sections(ctx, train, test, synthetic, pre, arch, n_params, fit)
    ev = evaluate_run(ctx, train=train, test=test, synthetic=synthetic, sections=sections,
                      title="Expression diffusion (omigen-expression)")
    summary = [("samples", ", ".join(f"{k}: {v}" for k, v in counts.items())),
               ("genes", str(len(genes))), ("units", synthetic.units),
               ("model", f"{arch} denoiser, {n_params:,} parameters"),
               ("training", f"{fit.steps} steps, {fit.seconds:.1f} s ({fit.steps_per_sec:.1f} steps/s)")]
    auc = {row: vals.get("c2st.auc") for row, vals in ev.rows.items()}
    if any(v is not None and np.isfinite(v) for v in auc.values()):
        summary.append(("C2ST AUC (0.5 best)", ", ".join(f"{r} {v:.3f}" for r, v in auc.items()
                                                         if v is not None and np.isfinite(v))))
    return RunResult(synthetic=synthetic, metrics=ev.rows, files=files, summary=summary)


def _sections(ctx, train, test, synthetic, pre, arch, n_params, fit) -> list:
    from html import escape

    from omigen.report import Section, embedding_figure

    cfg: ExpressionConfig = ctx.config
    log = "log2(x+1), then " if pre.log else ""
    about = (f"<p>{len(train)} training and {len(test)} test samples, {len(pre.genes)} genes, "
             f"class(es): {escape(', '.join(pre.classes) or 'none')}. Values in {escape(pre.units)}; the model "
             f"works on {log}per-gene min-max scaling to [-1, 1] fitted on the training set. Denoiser: "
             f"{escape(arch)} ({n_params:,} parameters), {fit.steps} training steps; sampler {escape(cfg.sampler)}"
             f"{f' ({cfg.sample_steps} steps)' if cfg.sampler == 'ddim' else ''}, guidance {cfg.guidance}.</p>")
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
    model = build_model(cfg, len(pre.genes), len(pre.classes))
    try:
        model.load_state_dict(ckpt["ema"])
    except RuntimeError as exc:
        raise OmigenInputError(f"{path} does not fit the model its config describes: "
                               f"{str(exc).splitlines()[0]}") from None
    return cfg, pre, model.eval(), dict(info.get("class_counts") or {})


def sample(run_dir: str | Path, n: int, label: str | None = None, seed: int = 0, sampler: str = "ddim",
           steps: int | None = None, guidance: float | None = None, eta: float | None = None,
           device: str = "cpu") -> ExpressionData:
    """Draw ``n`` samples from a finished run: ``label=None`` gives classes in training proportions,
    a label name only that class. ``steps``/``guidance``/``eta`` default to the run's settings."""
    from omigen.run import resolve_device

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise OmigenInputError(f"n must be a positive integer, got {n!r}")
    cfg, pre, model, class_counts = load_run(run_dir)
    steps = cfg.sample_steps if steps is None else int(steps)
    guidance = cfg.guidance if guidance is None else float(guidance)
    _check_sampling(sampler, steps, guidance, cfg.diffusion.timesteps)
    if label is None:
        counts: dict[str | None, int] = dict(proportional_counts(class_counts, n)) if pre.classes else {None: n}
    elif not pre.classes:
        raise OmigenInputError(f"this run's model is unconditional; it has no label {label!r}")
    else:
        pre.labels_to_index([label])
        counts = {str(label): n}
    device = resolve_device(device)
    with torch_threads(cfg.cpu_threads, device):
        return draw(model, pre, counts, seed=seed, sampler=sampler, steps=steps,
                    eta=cfg.eta if eta is None else float(eta), guidance=guidance, clip_x0=cfg.clip_x0,
                    device=device)
