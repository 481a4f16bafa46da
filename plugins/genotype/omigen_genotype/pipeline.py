"""The ``genotype`` pipeline: read (or simulate) genotypes, train the chosen model, sample, write VCF, evaluate.

A run folder holds ``model.ckpt`` (the shared trainer's checkpoint; its ``run_config`` carries the resolved
config and the data description the model is rebuilt from), ``sites.tsv`` (the input's sites), the
synthetic ``synthetic.vcf[.gz]`` with its ``synthetic.phenotypes.tsv``, ``metrics.json`` and ``report.html``.

Conditioning: the population label (``population`` column) as a class, the trait (``phenotype`` column)
standardised on the training set. Synthetic individuals of a population get phenotype values drawn from
that population's training distribution (inverse CDF of 101 stored quantiles, so no training value is
copied verbatim), and those values are the model's condition and the output's phenotype.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from omigen.errors import OmigenInputError

from omigen_genotype.config import GenotypeConfig

CHECKPOINT = "model.ckpt"
SITES = "sites.tsv"
_QUANTILES = 101
#: The mosaic-seeding options of diffusion sampling (:mod:`omigen_genotype.mosaic`).
MOSAIC_OPTIONS = ("mosaic", "mosaic_noise", "mosaic_switches", "mosaic_donors")
_OPTIONS = ("steps", "guidance", "temperature", "correctors", "sampler") + MOSAIC_OPTIONS


def builder(kind: str):
    """The ``build(config, info)`` function of model family ``kind``."""
    if kind == "diffusion":
        from omigen_genotype.d3pm import build
    elif kind == "vae":
        from omigen_genotype.vae import build
    elif kind == "gan":
        from omigen_genotype.gan import build
    else:
        raise OmigenInputError(f"unknown genotype model {kind!r}")
    return build


def load_data(cfg: GenotypeConfig):
    """The configured input (a VCF, or the simulated default), first ``max_snps`` SNPs when asked."""
    from omigen_genotype.vcf import read_vcf

    label = cfg.population or None
    if cfg.data:
        data = read_vcf(cfg.data, phenotypes=cfg.phenotypes, label=label, maf=cfg.maf)
    else:
        from omigen_genotype.simulate import load_default

        data = load_default(label=label, n_per_population=cfg.sim_individuals, maf=max(cfg.maf, 0.01))
    return first_snps(data, cfg.max_snps)


def first_snps(data, k: int):
    """``data`` restricted to its first ``k`` SNPs (0: unchanged)."""
    if not k or k >= data.G.shape[1]:
        return data
    H = None if data.haplotypes is None else np.ascontiguousarray(data.haplotypes[:, :k])
    return replace(data, G=np.ascontiguousarray(data.G[:, :k]), variants=data.variants.iloc[:k].reset_index(drop=True),
                   haplotypes=H)


def split(data, fraction: float, seed: int):
    """Seeded split of individuals, stratified by population when every population can be."""
    from omigen.data import split as _split

    try:
        return _split(data, fraction, seed, stratify=True)
    except ValueError:
        return _split(data, fraction, seed, stratify=False)


def _phenotype_values(data, column: str) -> np.ndarray | None:
    ph = data.phenotypes
    if not column or ph is None or column not in ph.columns:
        return None
    values = np.asarray(ph[column], dtype=np.float64)
    return values if np.isfinite(values).sum() >= 2 else None


def data_info(train, cfg: GenotypeConfig) -> dict[str, Any]:
    """What a model is built from and a sampler needs (JSON-able): SNPs, positions, classes, phenotype stats,
    and whether the model learns haplotypes (which needs phased input)."""
    haplotypes = cfg.model == "diffusion" and cfg.diffusion.haplotypes
    if haplotypes and train.haplotypes is None:
        source = cfg.data or "the input"
        raise OmigenInputError(f"diffusion.haplotypes needs phased genotypes, and {source} has unphased "
                               "heterozygous calls (or imputed missing calls); phase it first (e.g. with "
                               "SHAPEIT or Beagle) or leave diffusion.haplotypes off")
    classes = train.classes if (cfg.condition and train.labels is not None) else []
    values = _phenotype_values(train, cfg.phenotype) if cfg.condition else None
    info: dict[str, Any] = {
        "n_snps": int(train.G.shape[1]), "positions": train.variants["pos"].astype(np.int64).tolist(),
        "n_classes": len(classes), "classes": list(classes), "phenotype": values is not None,
        "phenotype_column": cfg.phenotype if values is not None else "",
        "label_column": cfg.population if train.labels is not None else "",
        "class_counts": {str(k): int(v) for k, v in train.label_counts().items() if k is not None},
        "contigs": {str(k): int(v) for k, v in (train.meta.get("contigs") or {}).items()},
        "haplotypes": bool(haplotypes),
    }
    if values is not None:
        ok = np.isfinite(values)
        info["phenotype_mean"] = float(values[ok].mean())
        info["phenotype_sd"] = float(values[ok].std()) or 1.0
        groups = {c: ok & (train.labels == c) for c in classes} if classes else {"": ok}
        grid = np.linspace(0, 1, _QUANTILES)
        info["phenotype_quantiles"] = {c: np.quantile(values[m] if m.sum() >= 2 else values[ok], grid).tolist()
                                       for c, m in groups.items()}
    return info


def training_rows(data, info: dict[str, Any]) -> np.ndarray:
    """What the model learns, one row per training example: dosages (individuals x SNPs), or for a
    haplotype model every individual's first haplotypes, then their second ones (2 individuals x SNPs)."""
    if info.get("haplotypes"):
        return np.concatenate([data.haplotypes[:, :, 0], data.haplotypes[:, :, 1]])
    return data.G


def tensors(data, info: dict[str, Any]):
    """``(rows, population index, standardised phenotype)`` tensors for the trainer (see :func:`training_rows`;
    a haplotype carries its individual's conditions)."""
    import torch

    rows = training_rows(data, info)
    x = torch.from_numpy(rows.astype(np.int64))
    if info["n_classes"]:
        y = torch.from_numpy(_class_index(info["classes"], data.labels))
    else:
        y = torch.full((len(data),), -1, dtype=torch.long)
    if info["phenotype"]:
        v = np.asarray(data.phenotypes[info["phenotype_column"]], dtype=np.float64)
        z = torch.from_numpy(((v - info["phenotype_mean"]) / info["phenotype_sd"]).astype(np.float32))
    else:
        z = torch.full((len(data),), float("nan"))
    if info.get("haplotypes"):
        y, z = torch.cat([y, y]), torch.cat([z, z])
    return x, y, z


def _class_index(classes: list[str], labels) -> np.ndarray:
    names = np.asarray(classes, dtype=str)
    order = np.argsort(names)
    return order[np.searchsorted(names[order], np.asarray(labels, dtype=str))].astype(np.int64)


def conditions(info: dict[str, Any], counts: dict[str | None, int], seed: int):
    """Labels, population indices, raw and standardised phenotype draws for ``counts`` synthetic individuals."""
    import torch

    rng = np.random.default_rng([seed, 0xC0DE])
    labels = np.repeat(np.asarray(list(counts), dtype=object), [int(v) for v in counts.values()])
    n = len(labels)
    y = None
    if info["n_classes"]:
        y = torch.from_numpy(_class_index(info["classes"], labels))
    raw = z = None
    if info["phenotype"]:
        grid = np.linspace(0, 1, _QUANTILES)
        u = rng.random(n)
        raw = np.empty(n)
        for label in counts:  # one vectorised inverse-CDF draw per population
            rows = labels == label
            q = info["phenotype_quantiles"][label if label is not None and info["n_classes"] else ""]
            raw[rows] = np.interp(u[rows], grid, q)
        z = torch.from_numpy(((raw - info["phenotype_mean"]) / info["phenotype_sd"]).astype(np.float32))
    return labels, y, raw, z


def draw(model, kind: str, info: dict[str, Any], counts: dict[str | None, int], seed: int,
         steps: int | None = None, guidance: float | None = None, sites=None, temperature: float | None = None,
         correctors: int | None = None, mosaic: dict[str, Any] | None = None, reference=None):
    """Synthetic :class:`GenotypeData` with ``counts[label]`` individuals per label, deterministic in ``seed``.

    ``steps``, ``guidance``, ``temperature`` and ``correctors`` are the diffusion model's sampling options
    (None: 50, 0, 1, 0). ``mosaic`` (``{"mosaic": True, "mosaic_noise", "mosaic_switches", "mosaic_donors"}``)
    seeds the diffusion sampler with mosaics of ``reference``'s (the training set's) phased haplotypes.
    A haplotype model's individuals keep their two haplotypes (``haplotypes``; written as phased VCF).
    """
    import pandas as pd
    import torch

    from omigen.data import GenotypeData

    labels, y, raw, z = conditions(info, counts, seed)
    gen = torch.Generator().manual_seed(int(seed))
    model.eval()
    n = len(labels)
    H = None
    if kind == "diffusion":
        options = dict(steps=steps or 50, guidance=guidance or 0.0, temperature=temperature or 1.0,
                       correctors=int(correctors or 0), generator=gen)
        if mosaic and mosaic.get("mosaic"):
            options.update(_mosaic_start(model, info, mosaic, reference, labels, raw, seed))
        if info.get("haplotypes"):
            H = model.sample_haplotypes(n, info["n_snps"], y, z, **options)
            G = H.sum(-1)
            H = H.cpu().numpy().astype(np.int8)
        else:
            G = model.sample(n, info["n_snps"], y, z, **options)
    else:
        G = model.sample(n, y, z, generator=gen)
    ids = np.asarray([f"syn_{i + 1:06d}" for i in range(n)], dtype=object)
    columns: dict[str, Any] = {}
    if info["label_column"] and info["n_classes"]:
        columns[info["label_column"]] = np.asarray(labels, dtype=object)
    if raw is not None:
        columns[info["phenotype_column"]] = raw
    phenotypes = pd.DataFrame(columns, index=pd.Index(ids.astype(str), name="sample")) if columns else None
    meta = {"label_column": info["label_column"] or None, "contigs": dict(info.get("contigs") or {})}
    return GenotypeData(G=G.cpu().numpy().astype(np.int8), samples=ids, variants=sites,
                        labels=np.asarray(labels, dtype=object) if info["n_classes"] else None,
                        phenotypes=phenotypes, meta=meta, haplotypes=H).validate()


def _mosaic_start(model, info: dict[str, Any], mosaic: dict[str, Any], reference, labels, raw, seed: int) -> dict:
    """``start`` and ``start_t`` of the diffusion sampler: mosaics of ``reference``'s haplotypes, noised to
    ``mosaic_noise`` x T (:mod:`omigen_genotype.mosaic`)."""
    import torch

    from omigen_genotype.config import DiffusionModelConfig as Defaults
    from omigen_genotype.config import check_mosaic
    from omigen_genotype.mosaic import donor_pools, mosaic_haplotypes

    noise = float(mosaic.get("mosaic_noise", Defaults.mosaic_noise))
    switches = float(mosaic.get("mosaic_switches", Defaults.mosaic_switches))
    donors = mosaic.get("mosaic_donors", Defaults.mosaic_donors)
    check_mosaic(noise, switches, donors)
    if reference is None or reference.haplotypes is None:
        raise OmigenInputError("mosaic sampling needs the phased training genotypes (the run's input, phased)")
    if reference.G.shape[1] != info["n_snps"]:
        raise OmigenInputError(f"mosaic sampling: the training data has {reference.G.shape[1]} SNPs, the model "
                               f"{info['n_snps']}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    labelled = bool(info["n_classes"])
    train_phenotype = _phenotype_values(reference, info["phenotype_column"]) if info["phenotype"] else None
    n = len(labels)
    pools = donor_pools(reference.labels if labelled else np.zeros(len(reference.G), dtype=object), train_phenotype,
                        labels if labelled else np.zeros(n, dtype=object), raw, int(donors), rng)
    v = reference.variants
    H = torch.from_numpy(mosaic_haplotypes(reference.haplotypes, pools, v["chrom"].to_numpy(), v["pos"].to_numpy(),
                                           switches, rng).astype(np.int64))
    start = H if info.get("haplotypes") else H[:n] + H[n:]
    return {"start": start, "start_t": int(round(noise * model.process.T))}


def _sections(train, test, synthetic, seed: int) -> list:
    from omigen.report import Section

    from omigen_genotype import plots

    sections = [Section("LD decay", figure=plots.ld_decay_figure(test, synthetic)),
                Section("LD heatmap (real lower, synthetic upper triangle)",
                        figure=plots.ld_heatmap_figure(test, synthetic)),
                Section("PCA: synthetic projected on real PCs", figure=plots.pca_figure(test, synthetic, seed=seed))]
    if _phenotype_values(test, "phenotype") is not None and _phenotype_values(synthetic, "phenotype") is not None:
        sections.append(Section("Mirrored Manhattan (real up, synthetic down)",
                                figure=plots.manhattan_figure(test, synthetic)))
    return sections


def run(ctx):
    """Train on the train split, sample the test split's population counts, write VCF + TSV, evaluate."""
    from html import escape

    from omigen.config import to_dict
    from omigen.evaluate import evaluate_run
    from omigen.report import Section
    from omigen.run import RunResult
    from omigen.train import Trainer, for_run

    from omigen_genotype.vcf import save

    cfg: GenotypeConfig = ctx.config
    with ctx.timer("load"):
        data = load_data(cfg)
        if cfg.data:
            ctx.record_input(cfg.data)
        train, test = split(data, cfg.test_fraction, ctx.seed)
        info = data_info(train, cfg)
    build = builder(cfg.model)
    model = build(cfg.model_config(), {**info, "G": training_rows(train, info), "steps": cfg.steps})
    if ctx.is_main:
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
    train_cfg = for_run(cfg.train, progress=ctx.progress, steps=cfg.steps, default_steps=GenotypeConfig().train.steps)
    trainer = Trainer(model, tensors(train, info), train_cfg, out_dir=ctx.out_dir,
                      stage="model", seed=ctx.seed, device=ctx.device,
                      run_config={"config": to_dict(cfg), "info": info})
    with ctx.timer("train"):
        fit = trainer.fit(resume=ctx.resume)
    if not ctx.is_main:
        return RunResult()
    _write_sites(train.variants, ctx.path(SITES))
    counts = ({c: cfg.n_samples for c in info["classes"]} or {None: cfg.n_samples}) if cfg.n_samples \
        else (test.label_counts() if info["n_classes"] else {None: len(test)})
    mc = cfg.model_config()
    with ctx.timer("sample"):
        synthetic = draw(trainer.ema, cfg.model, info, counts, seed=ctx.seed,
                         steps=getattr(mc, "sample_steps", None), guidance=getattr(mc, "guidance", None),
                         temperature=getattr(mc, "temperature", None), correctors=getattr(mc, "correctors", None),
                         sites=train.variants, mosaic={k: getattr(mc, k) for k in MOSAIC_OPTIONS if hasattr(mc, k)},
                         reference=train)
    out = ctx.path("synthetic.vcf.gz" if cfg.bgzip else "synthetic.vcf")
    save(synthetic, out)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    sections = [Section("Model", html=f"<p>{escape(cfg.model)} ({n_params:,} parameters) on {info['n_snps']} SNPs, "
                                      f"{len(train)} training individuals, {fit.steps} steps "
                                      f"({fit.steps_per_sec:.2f} steps/s); conditioned on "
                                      f"{escape(', '.join(k for k, v in (('population', info['n_classes']), ('phenotype', info['phenotype'])) if v) or 'nothing')}.</p>")]
    sections += _sections(train, test, synthetic, ctx.seed)
    evaluation = evaluate_run(ctx, train=train, test=test, synthetic=synthetic, sections=sections,
                              title=f"Genotype {cfg.model} (omigen-genotype)")
    return RunResult(synthetic=synthetic, metrics=evaluation.rows,
                     files={"synthetic": str(out), "checkpoint": str(ctx.path(CHECKPOINT)),
                            "report": str(ctx.path("report.html"))},
                     summary=[("model", cfg.model), ("SNPs", str(info["n_snps"])),
                              ("samples", ", ".join(f"{k}: {v}" for k, v in counts.items())),
                              ("training", f"{fit.steps} steps, {fit.seconds:.1f} s")])


def _write_sites(variants, path: Path) -> None:
    from omigen.io import write_text

    write_text(path, variants[["id", "chrom", "pos", "ref", "alt"]].to_csv(sep="\t", index=False))


def load_run(run_dir: str | Path):
    """``(model with EMA weights, kind, info, config dict, sites)`` of a finished run folder."""
    import pandas as pd

    from omigen.config import from_dict
    from omigen.train import load_checkpoint

    folder = Path(run_dir)
    ckpt_path, sites_path = folder / CHECKPOINT, folder / SITES
    if not ckpt_path.is_file() or not sites_path.is_file():
        raise OmigenInputError(f"{run_dir} is not a genotype run folder (no {CHECKPOINT} or {SITES})")
    ckpt = load_checkpoint(ckpt_path)
    rc = ckpt.get("run_config") or {}
    if "info" not in rc or "config" not in rc:
        raise OmigenInputError(f"{ckpt_path} was not written by the genotype pipeline")
    config = from_dict(GenotypeConfig, rc["config"])
    info = rc["info"]
    model = builder(config.model)(config.model_config(), {**info, "steps": config.steps})
    try:
        model.load_state_dict(ckpt["ema"])
    except RuntimeError as exc:
        raise OmigenInputError(f"checkpoint {ckpt_path} does not fit its model: {str(exc).splitlines()[0]}") from None
    sites = pd.read_csv(sites_path, sep="\t", dtype={"id": str, "chrom": str, "ref": str, "alt": str},
                        keep_default_na=False)
    return model.eval(), config.model, info, config, sites


def sample(run_dir, n: int, label: str | None = None, seed: int = 0, **options):
    """Draw ``n`` individuals from a finished run (``label=None``: populations in training proportions).

    Options: ``steps``, ``guidance``, ``temperature``, ``correctors`` and the ``mosaic*`` options (diffusion
    sampling; None: the run's settings), ``sampler`` (only ``ancestral``). Mosaic sampling reloads the run's
    training split from its input (the same data, split and seed), so that input must still be readable.
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise OmigenInputError(f"the genotype sampler takes no option {unknown[0]!r} (known: {', '.join(_OPTIONS)})")
    if options.get("sampler") not in (None, "ancestral"):
        raise OmigenInputError(f"genotype models sample with 'ancestral', not {options['sampler']!r}")
    if n <= 0:
        raise OmigenInputError(f"n must be positive, got {n}")
    model, kind, info, config, sites = load_run(run_dir)
    if label is not None and label not in info["classes"]:
        known = ", ".join(info["classes"]) or "none (the run is unlabelled)"
        raise OmigenInputError(f"unknown label {label!r} (known: {known})")
    if label is not None:
        counts: dict[str | None, int] = {label: n}
    elif info["n_classes"]:
        counts = proportional(info["class_counts"], n)
    else:
        counts = {None: n}
    mc = config.model_config()
    steps = options.get("steps") or getattr(mc, "sample_steps", None)
    guidance = options.get("guidance") if options.get("guidance") is not None else getattr(mc, "guidance", None)
    if kind == "diffusion" and not 1 <= int(steps) <= mc.timesteps:
        raise OmigenInputError(f"steps must be from 1 to {mc.timesteps} (the diffusion timesteps), got {steps}")
    temperature = options.get("temperature")
    if temperature is None:
        temperature = getattr(mc, "temperature", None)
    if temperature is not None and not float(temperature) > 0:
        raise OmigenInputError(f"temperature must be > 0, got {temperature}")
    correctors = options.get("correctors")
    if correctors is None:
        correctors = getattr(mc, "correctors", None)
    if correctors is not None and int(correctors) < 0:
        raise OmigenInputError(f"correctors must be >= 0, got {correctors}")
    if kind != "diffusion" and any(options.get(k) for k in MOSAIC_OPTIONS):
        raise OmigenInputError(f"mosaic sampling is a diffusion option; this run's model is {kind!r}")
    mosaic = {k: options[k] if options.get(k) is not None else getattr(mc, k) for k in MOSAIC_OPTIONS if hasattr(mc, k)}
    reference = _training_split(config, sites) if mosaic.get("mosaic") else None
    return draw(model, kind, info, counts, seed, steps=int(steps) if steps else None, guidance=guidance, sites=sites,
                temperature=temperature, correctors=correctors, mosaic=mosaic, reference=reference)


def _training_split(config: GenotypeConfig, sites):
    """The training split of a finished run, re-read from its input; its SNPs must be the run's ``sites``."""
    try:
        train, _ = split(load_data(config), config.test_fraction, config.seed)
    except (OSError, OmigenInputError) as exc:
        raise OmigenInputError(f"mosaic sampling needs the run's training data, which could not be read: {exc}") \
            from None
    if list(train.variants["id"].astype(str)) != list(sites["id"].astype(str)):
        raise OmigenInputError("mosaic sampling: the run's input no longer has the SNPs it was trained on")
    return train


def proportional(class_counts: dict[str, int], n: int) -> dict[str | None, int]:
    """``n`` split over classes in proportion to ``class_counts`` (largest remainders, every total exact)."""
    names = sorted(class_counts)
    w = np.array([class_counts[c] for c in names], dtype=np.float64)
    exact = n * w / w.sum()
    base = np.floor(exact).astype(int)
    order = np.argsort(-(exact - base), kind="stable")
    base[order[: n - base.sum()]] += 1
    return {c: int(k) for c, k in zip(names, base) if k > 0}
