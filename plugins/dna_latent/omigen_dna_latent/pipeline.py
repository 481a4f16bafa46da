"""``omigen run dna_latent``: read DNA, train the autoencoder, then latent diffusion, sample, write, evaluate.

Two checkpoints, one per stage of the shared trainer: ``autoencoder.ckpt`` and ``diffusion.ckpt``;
``--resume`` continues whichever stage was interrupted (a finished stage is loaded, not retrained).
Both store the resolved config, the class names and the length, so :func:`sample` needs nothing
else from the run folder. Heavy imports stay inside the functions: ``omigen list`` imports this
module through the plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omigen.errors import OmigenInputError
from omigen_dna_latent.config import SAMPLERS, DnaLatentConfig

if TYPE_CHECKING:
    import numpy as np

    from omigen.data import SequenceData

AE_STAGE = "autoencoder"
DIFFUSION_STAGE = "diffusion"
SYNTHETIC = "synthetic.fasta"
#: The calibration table beside the checkpoints (:mod:`omigen_dna_latent.calibration`).
CALIBRATION = "calibration.pt"
#: Sampler settings a calibration table is fitted to: its record's key -> the config option.
SAMPLING_OPTIONS = {"sampler": "sampler", "steps": "sample_steps", "guidance": "guidance", "eta": "eta",
                    "kmer_guidance": "kmer_guidance"}


# --------------------------------------------------------------------------- data

def _columns(path: Path) -> list[str]:
    import pandas as pd

    sep = "," if path.name.lower().endswith((".csv", ".csv.gz")) else "\t"
    try:
        return [str(c) for c in pd.read_csv(path, sep=sep, nrows=0).columns]
    except Exception as exc:  # noqa: BLE001 - any parse failure is the file's fault
        raise OmigenInputError(f"{path.name} cannot be read as a table: {exc}") from None


def _random_split(data: "SequenceData", fraction: float, seed: int):
    from omigen.data import split

    try:
        return split(data, fraction, seed, stratify=data.labels is not None)
    except ValueError:  # a class too small to stratify: split at random instead
        return split(data, fraction, seed, stratify=False)


def _cap(data: "SequenceData", n: int, seed: int) -> "SequenceData":
    """A seeded subset of ``n`` sequences, stratified by label where possible (``n = 0``: all)."""
    import numpy as np

    if not n or n >= len(data):
        return data
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(data))
    try:
        keep, _ = train_test_split(idx, train_size=n, random_state=seed, stratify=data.labels)
    except ValueError:
        keep, _ = train_test_split(idx, train_size=n, random_state=seed)
    return data.subset(np.sort(keep))


def load_splits(cfg: DnaLatentConfig, seed: int) -> tuple["SequenceData", "SequenceData", Path]:
    """Training and test sets of ``cfg.data`` (None: the bundled DHS subset) and the file read.

    A table with ``cfg.split_column`` is split by its values; anything else at random (stratified).
    """
    from omigen_dna_latent import io

    path = Path(cfg.data) if cfg.data else io.BUNDLED
    name = path.name.lower()
    if not path.is_file():
        raise OmigenInputError(f"sequence file not found: {path}")
    if name.endswith(io.TABLE_SUFFIXES):
        if cfg.split_column in _columns(path):
            opts = {"split_col": cfg.split_column}
            train = io.read_table(path, split=cfg.train_split, **opts)
            test = io.read_table(path, split=cfg.test_split, **opts)
        else:
            train, test = _random_split(io.read_table(path), cfg.test_fraction, seed)
    elif name.endswith(io.FASTA_SUFFIXES):
        train, test = _random_split(io.read_fasta(path), cfg.test_fraction, seed)
    else:
        known = ", ".join(io.TABLE_SUFFIXES + io.FASTA_SUFFIXES)
        raise OmigenInputError(f"{path.name}: unknown sequence file type (use one of {known})")
    if len(train) < 2 or len(test) < 1:
        raise OmigenInputError(f"{path.name}: {len(train)} training and {len(test)} test sequences are too few")
    if train.length != test.length:
        raise OmigenInputError(f"{path.name}: training sequences have length {train.length}, test ones {test.length}")
    return train, test, path


def class_names(cfg: DnaLatentConfig, train: "SequenceData", test: "SequenceData") -> list[str]:
    """The conditioning classes (empty: unconditional); test labels must be among them."""
    if not cfg.conditional or train.labels is None:
        return []
    classes = train.classes
    extra = sorted(set(test.classes) - set(classes))
    if extra:
        raise OmigenInputError(f"test labels {extra[:5]} do not occur in the training data")
    return classes


# --------------------------------------------------------------------------- models

def _ae_info(length: int) -> dict[str, Any]:
    return {"length": int(length)}


def _diffusion_info(cfg: DnaLatentConfig, length: int, n_classes: int) -> dict[str, Any]:
    factor = 2 ** cfg.autoencoder.downsample
    return {"latent_channels": cfg.autoencoder.latent_channels, "latent_length": length // factor,
            "n_classes": n_classes, "diffusion": cfg.diffusion, "autoencoder": cfg.autoencoder}


def generate(autoencoder, latent_diffusion, classes: list[str], counts: dict, seed: int = 0, sampler: str = "ddim",
             steps: int = 50, guidance: float = 1.0, batch_size: int = 1000, eta: float = 1.0,
             kmer_guidance: float = 0.0, calibration: float | None = None) -> "SequenceData":
    """Draw ``counts[label]`` sequences of each label (key ``None``: unconditional), seeded.

    Latents come from the diffusion model (``sampler``/``steps``/``eta``/``guidance``; a
    base-predicting model with k-mer tables also ``kmer_guidance``, and with a calibration table
    its weight ``calibration``, ``None`` keeping the model's), are decoded by the autoencoder and
    turned into bases by argmax.
    """
    import numpy as np
    import torch

    from omigen.data import SequenceData
    from omigen_dna_latent import io
    from omigen_dna_latent.autoencoder import decode_latents

    if sampler not in SAMPLERS:
        raise OmigenInputError(f"unknown sampler {sampler!r} (known: {', '.join(SAMPLERS)})")
    keys = list(counts)
    sizes = np.asarray([int(counts[k]) for k in keys], dtype=np.int64)
    n = int(sizes.sum())
    labelled = keys != [None]
    if labelled and classes:
        unknown = [k for k in keys if k not in classes]
        if unknown:
            raise OmigenInputError(f"unknown label {unknown[0]!r} (known: {', '.join(classes)})")
        y = np.repeat(np.asarray([classes.index(k) for k in keys], dtype=np.int64), sizes)
    elif labelled:
        raise OmigenInputError("this model is unconditional: it takes no labels")
    else:
        y = None
    generator = torch.Generator().manual_seed(int(seed))
    if latent_diffusion.predicts_bases:
        latent_diffusion.model.denoiser.kmer_guidance = float(kmer_guidance)
        if calibration is not None:
            latent_diffusion.model.denoiser.calibration_weight = float(calibration)
    z = latent_diffusion.sample(n, y, sampler=sampler, steps=steps, eta=eta, guidance=guidance, generator=generator,
                                batch_size=batch_size)
    codes = decode_latents(autoencoder, z, device=latent_diffusion.latent_mean.device)
    ids = np.char.add("syn", np.arange(1, n + 1).astype(str)).astype(object)
    labels = np.repeat(np.asarray(keys, dtype=object), sizes) if labelled else None
    return SequenceData(io.strings(codes), ids, labels).validate()


def calibrate(ae, latent_diffusion, classes: list[str], train: "SequenceData", cfg: DnaLatentConfig, seed: int,
              path: "str | Path", resume: bool = False, log=None) -> bool:
    """Fit (or, with ``resume``, reload) the calibration table of a base-predicting model against the
    training sequences ``train`` (:mod:`omigen_dna_latent.calibration`), save it to ``path`` and set
    it on the model with ``cfg.calibration.weight``. False (nothing done) for a noise-predicting
    model or ``cfg.calibration.rounds = 0``."""
    import numpy as np
    import torch

    from omigen_dna_latent import calibration, io

    cc = cfg.calibration
    if not latent_diffusion.predicts_bases or cc.rounds == 0:
        return False
    den = latent_diffusion.model.denoiser
    if resume and Path(path).is_file():
        saved = calibration.load(path)
        den.set_calibration(saved["table"], saved["config"]["bin_width"], cc.weight)
        return True
    sampling = {key: getattr(cfg, option) for key, option in SAMPLING_OPTIONS.items()}

    def index(labels) -> "torch.Tensor | None":
        if not classes:
            return None
        return torch.as_tensor(np.searchsorted(np.asarray(classes), np.asarray(labels, dtype=str)))

    def draw(table, draw_seed):
        den.set_calibration(table, cc.bin_width, 1.0)
        counts = {c: cc.n_per_class for c in classes} if classes else {None: cc.n_per_class}
        drawn = generate(ae, latent_diffusion, classes, counts, seed=draw_seed, **sampling)
        return torch.as_tensor(io.codes_of(drawn), dtype=torch.long), index(drawn.labels)

    codes = torch.as_tensor(io.codes_of(train), dtype=torch.long)
    table = calibration.fit_table(codes, index(train.labels), len(classes), draw, cc, seed=seed, log=log)
    calibration.save(path, table, cc, sampling)
    den.set_calibration(table, cc.bin_width, cc.weight)
    return True


# --------------------------------------------------------------------------- report

def _profiles_figure(test_codes: "np.ndarray", syn_codes: "np.ndarray"):
    """Per-position base frequencies and default-motif positional profiles, real test vs synthetic."""
    import numpy as np
    from matplotlib.figure import Figure

    from omigen_dna_latent.motifs import load_motifs, positional_profile, scan

    motifs = load_motifs()
    fig = Figure(figsize=(11, 3.2 + 2.2 * ((len(motifs) + 3) // 4)))
    axes = fig.subplots(1 + (len(motifs) + 3) // 4, 4, squeeze=False)
    for b, base in enumerate("ACGT"):
        ax = axes[0, b]
        ax.plot((test_codes == b).mean(0), label="real test", lw=1)
        ax.plot((syn_codes == b).mean(0), label="synthetic", lw=1)
        ax.set_title(f"{base} frequency by position", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    for i, motif in enumerate(motifs):
        ax = axes[1 + i // 4, i % 4]
        for codes, name in ((test_codes, "real test"), (syn_codes, "synthetic")):
            prof = positional_profile(scan(codes, motif))
            ax.plot(np.arange(prof.size) * 10, prof, label=name, lw=1)
        ax.set_title(f"{motif.name} hits by position", fontsize=9)
    for j in range(len(motifs), 4 * (axes.shape[0] - 1)):
        axes[1 + j // 4, j % 4].set_visible(False)
    fig.tight_layout()
    return fig


def report_sections(train, test, synthetic, accuracy: dict, ae_fit, diff_fit) -> list:
    """The report's model-specific parts: training summary, positional profiles and a k-mer table."""
    import pandas as pd

    from omigen.report import Section
    from omigen_dna_latent import io
    from omigen_dna_latent.seqmetrics import kmer_divergence

    test_codes, syn_codes, train_codes = io.codes_of(test), io.codes_of(synthetic), io.codes_of(train)
    html = (f"<p>{len(train)} training and {len(test)} test sequences of {train.length} bp. Autoencoder: "
            f"{ae_fit.steps} steps, per-base reconstruction accuracy {accuracy['train']:.4f} (training) and "
            f"<b>{accuracy['test']:.4f}</b> (held-out test). Latent diffusion: {diff_fit.steps} steps, "
            f"last loss {diff_fit.losses.get('loss', float('nan')):.4f}.</p>")
    model = kmer_divergence(test_codes, syn_codes)
    reference = kmer_divergence(test_codes, train_codes)
    table = pd.DataFrame({"k": list(model), "JS synthetic vs test": list(model.values()),
                          "JS training vs test": [reference[k] for k in model]})
    return [Section("Training", html=html),
            Section("Positional base and motif frequencies (JASPAR hits, 10-bp bins)",
                    figure=_profiles_figure(test_codes, syn_codes)),
            Section("k-mer spectrum divergence (Jensen-Shannon, bits)", table=table)]


# --------------------------------------------------------------------------- run

def run(ctx):
    """Train both stages on the training split, sample the test split's class counts, write and evaluate."""
    import sys

    import numpy as np
    import torch

    from omigen.config import to_dict
    from omigen.run import RunResult
    from omigen.train import Trainer, for_run
    from omigen_dna_latent import io
    from omigen_dna_latent.autoencoder import build_autoencoder, encode_codes, reconstruction_accuracy
    from omigen_dna_latent.denoiser import build_latent_diffusion

    cfg: DnaLatentConfig = ctx.config
    cfg.validate()
    if cfg.evaluate and cfg.metrics:  # an unknown metric name fails now, not after training
        known = {spec.name for spec in ctx.registry.metrics("sequence")}
        unknown = [name for name in cfg.metrics if name not in known]
        if unknown:
            raise OmigenInputError(f"no metric {unknown[0]!r} for sequence data (known: {', '.join(sorted(known))})")
    with ctx.timer("load"):
        train, test, source = load_splits(cfg, ctx.seed)
        train = _cap(train, cfg.max_train, ctx.seed)
        test = _cap(test, cfg.max_test, ctx.seed)
        classes = class_names(cfg, train, test)
        length = train.length
        build_autoencoder(cfg.autoencoder, _ae_info(length))  # a length the model cannot take fails here
    if cfg.data:
        ctx.record_input(source)
    meta = {"config": to_dict(cfg), "classes": classes, "length": length,
            "train_counts": {str(k): v for k, v in train.label_counts().items()}}
    codes = io.codes_of(train)
    out_dir = ctx.path(f"{AE_STAGE}.ckpt").parent  # the run folder appears only now, after the input passed
    with ctx.timer("train_autoencoder"):
        torch.manual_seed(ctx.seed)
        ae = build_autoencoder(cfg.autoencoder, _ae_info(length))
        trainer = Trainer(ae, torch.as_tensor(codes, dtype=torch.long),
                          for_run(cfg.autoencoder_train, progress=ctx.progress), out_dir=out_dir, stage=AE_STAGE,
                          seed=ctx.seed, device=ctx.device, run_config=meta)
        ae_fit = trainer.fit(resume=ctx.resume)
        ae = trainer.ema
    with ctx.timer("train_diffusion"):
        torch.manual_seed(ctx.seed + 1)
        latent = encode_codes(ae, codes, device=ctx.device)
        model = build_latent_diffusion(cfg.denoiser, _diffusion_info(cfg, length, len(classes)))
        model.set_normalisation(latent)
        model.set_encoder(ae)
        # A base-predicting denoiser learns from the sequences themselves (its loss encodes them).
        data: tuple = (torch.as_tensor(codes, dtype=torch.long) if model.predicts_bases else model.normalise(latent),)
        if classes:
            index = {c: i for i, c in enumerate(classes)}
            labels = torch.as_tensor(np.vectorize(index.__getitem__, otypes=[np.int64])(train.labels))
            model.set_kmer_guidance(torch.as_tensor(codes, dtype=torch.long), labels)
            data += (labels,)
        diffusion_train = for_run(cfg.diffusion_train, progress=ctx.progress, steps=cfg.steps)
        trainer = Trainer(model, data, diffusion_train, out_dir=out_dir, stage=DIFFUSION_STAGE, seed=ctx.seed,
                          device=ctx.device, run_config=meta)
        diff_fit = trainer.fit(resume=ctx.resume)
        model = trainer.ema
    if not ctx.is_main:  # under torchrun only rank 0 samples, evaluates and writes
        return RunResult()
    with ctx.timer("calibrate"):
        log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if ctx.progress else None
        calibrated = calibrate(ae, model, classes, train, cfg, ctx.seed + 1, ctx.path(CALIBRATION),
                               resume=ctx.resume, log=log)
    with ctx.timer("sample"):
        if cfg.n_per_class:
            counts = {c: cfg.n_per_class for c in (classes or [None])}
        else:
            counts = test.label_counts() if classes else {None: len(test)}
        synthetic = generate(ae, model, classes, counts, seed=ctx.seed, sampler=cfg.sampler,
                             steps=cfg.sample_steps, guidance=cfg.guidance, eta=cfg.eta,
                             kmer_guidance=cfg.kmer_guidance)
    fasta = io.write_fasta(synthetic, ctx.path(SYNTHETIC))
    accuracy = {"train": reconstruction_accuracy(ae, codes[:2000], device=ctx.device),
                "test": reconstruction_accuracy(ae, io.codes_of(test), device=ctx.device)}
    files = {"synthetic": str(fasta), "autoencoder": str(ctx.path(f"{AE_STAGE}.ckpt")),
             "diffusion": str(ctx.path(f"{DIFFUSION_STAGE}.ckpt"))}
    if calibrated:
        files["calibration"] = str(ctx.path(CALIBRATION))
    rows: dict = {}
    if cfg.evaluate:
        from omigen.evaluate import evaluate_run

        evaluation = evaluate_run(ctx, train=train, test=test, synthetic=synthetic,
                                  metrics=list(cfg.metrics) or None,
                                  sections=report_sections(train, test, synthetic, accuracy, ae_fit, diff_fit),
                                  title="DNA latent diffusion (omigen-dna-latent)")
        rows = evaluation.rows
        files["report"] = str(ctx.path("report.html"))
    return RunResult(
        synthetic=synthetic, metrics=rows, files=files,
        summary=[("sequences", ", ".join(f"{k}: {v}" for k, v in counts.items())), ("length", str(length)),
                 ("reconstruction accuracy (test)", f"{accuracy['test']:.4f}")])


# --------------------------------------------------------------------------- sample

def load_models(run_dir: "str | Path", device: str = "cpu"):
    """The EMA autoencoder and latent diffusion of a finished run folder, the class names and the run metadata."""
    from omigen.config import from_dict
    from omigen.train import load_checkpoint
    from omigen_dna_latent.autoencoder import build_autoencoder
    from omigen_dna_latent.denoiser import build_latent_diffusion

    run_dir = Path(run_dir)
    paths = {stage: run_dir / f"{stage}.ckpt" for stage in (AE_STAGE, DIFFUSION_STAGE)}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise OmigenInputError(f"{run_dir} is not a dna_latent run folder (no {', '.join(missing)})")
    ckpts = {stage: load_checkpoint(p) for stage, p in paths.items()}
    meta = ckpts[DIFFUSION_STAGE].get("run_config") or {}
    if "config" not in meta or "length" not in meta:
        raise OmigenInputError(f"{paths[DIFFUSION_STAGE]} lacks the run's config; it was not written by dna_latent")
    # Runs recorded before these options existed used a noise-predicting denoiser and deterministic DDIM.
    meta["config"].setdefault("denoiser", {}).setdefault("predict", "eps")
    # ... and those recorded before ``denoiser.context`` drew every base independently.
    meta["config"]["denoiser"].setdefault("context", 0)
    # ... and those recorded before ``denoiser.kmer_order`` hold no k-mer tables.
    meta["config"]["denoiser"].setdefault("kmer_order", 0)
    meta["config"].setdefault("kmer_guidance", 0.0)
    meta["config"].setdefault("eta", 0.0)
    saved = None
    if (run_dir / CALIBRATION).is_file() and meta["config"]["denoiser"]["predict"] == "bases":
        from omigen_dna_latent import calibration

        saved = calibration.load(run_dir / CALIBRATION)
        # The table fits the sampler it was drawn with, which a resumed run may have set after training
        # (the checkpoint keeps the training run's config): that sampler is the run's from then on.
        meta["config"]["calibration"] = dict(saved["config"])
        for key, option in SAMPLING_OPTIONS.items():
            if key in saved["sampling"]:
                meta["config"][option] = saved["sampling"][key]
    cfg = from_dict(DnaLatentConfig, meta["config"])
    classes = list(meta.get("classes") or [])
    length = int(meta["length"])
    ae = build_autoencoder(cfg.autoencoder, _ae_info(length))
    model = build_latent_diffusion(cfg.denoiser, _diffusion_info(cfg, length, len(classes)))
    for stage, module in ((AE_STAGE, ae), (DIFFUSION_STAGE, model)):
        try:
            module.load_state_dict(ckpts[stage]["ema"])
        except RuntimeError as exc:
            raise OmigenInputError(f"{paths[stage]} does not fit its recorded config: "
                                   f"{str(exc).splitlines()[0]}") from None
    if saved is not None:
        model.model.denoiser.set_calibration(saved["table"], cfg.calibration.bin_width, cfg.calibration.weight)
    return ae.to(device).eval(), model.to(device).eval(), classes, meta


def proportional_counts(train_counts: dict[str, int], n: int) -> dict:
    """Split ``n`` across labels in proportion to the training counts (largest remainders)."""
    import numpy as np

    keys = sorted(train_counts)
    weights = np.asarray([train_counts[k] for k in keys], dtype=np.float64)
    exact = n * weights / weights.sum()
    base = np.floor(exact).astype(np.int64)
    base[np.argsort(-(exact - base), kind="stable")[: n - int(base.sum())]] += 1
    return {k: int(b) for k, b in zip(keys, base) if b > 0}


def sample(run_dir, n: int, label: str | None = None, seed: int = 0, *, sampler: str | None = None,
           steps: int | None = None, guidance: float | None = None, device: str = "cpu") -> "SequenceData":
    """Draw ``n`` sequences from a finished run (``label=None``: labels in training proportions).

    ``sampler``/``steps``/``guidance`` default to the run's ``sampler``/``sample_steps``/``guidance``;
    DDIM's ``eta``, ``kmer_guidance`` and the calibration (if the run has one) are the run's.
    """
    from omigen.run import resolve_device

    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise OmigenInputError(f"n must be a positive integer, got {n!r}")
    ae, model, classes, meta = load_models(run_dir, resolve_device(device))
    run_cfg = meta["config"]
    if label is not None and label not in classes:
        known = ", ".join(classes) if classes else "none: the model is unconditional"
        raise OmigenInputError(f"unknown label {label!r} (known: {known})")
    if label is not None:
        counts: dict = {label: n}
    elif classes:
        counts = proportional_counts({k: v for k, v in meta["train_counts"].items() if k in classes}, n)
    else:
        counts = {None: n}
    return generate(ae, model, classes, counts, seed=seed, sampler=sampler or run_cfg["sampler"],
                    steps=int(steps or run_cfg["sample_steps"]),
                    guidance=float(run_cfg["guidance"] if guidance is None else guidance),
                    eta=float(run_cfg["eta"]), kmer_guidance=float(run_cfg["kmer_guidance"]))
