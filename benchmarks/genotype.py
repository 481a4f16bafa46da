"""Benchmark of the genotype plugin's models against the independent-SNP baseline (not a test).

On the default simulated data (stdpopsim OutOfAfrica_3G09, chr22 stretch, 3 x 300 diploids; made offline and
cached), with a held-out 20% of individuals, for each model (diffusion, vae, gan) and the independent-SNP
baseline: allele-frequency r, LD r² correlation (pairs within 100 kb, MAF >= 5%) and LD decay MAD, population
assignment of population-conditioned samples by a classifier trained on real data, GWAS effect-size r over SNPs
with real p < 1e-3, AATS parts (AA_truth, AA_synth on test), privacy loss, identical genomes, training time
and speed. A scaling part times training steps/s, sampling throughput and peak memory (tracemalloc covers
numpy; torch CPU tensors are counted through the process's peak RSS growth) at 2k, 10k and 50k SNPs (synthetic
random genotypes: speed does not depend on the values). Writes ``benchmarks/results/genotype.json`` and prints
a table.

    python benchmarks/genotype.py                    # everything (long on a small CPU)
    python benchmarks/genotype.py --models vae --steps 300 --scales 2000
    python benchmarks/genotype.py --models diffusion --steps 6000 --section quality_6000

``--keep DIR`` writes each trained model's checkpoint and sites to ``DIR/<model>`` and
``--from DIR`` scores those models instead of training, e.g. with other ``--sample`` options.

``--section NAME`` runs only the quality part and writes it, with its steps and machine, under ``NAME`` in
the existing JSON, keeping everything else there (e.g. a longer run of one model next to the default table).

Timings depend on the machine and on whatever else runs on it; the JSON records the device and threads.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "genotype.json"


def _scores(train, test, synthetic, seed: int = 0) -> dict[str, float]:
    from omigen.metrics.privacy import privacy
    from omigen_genotype.metrics import (compute_allele_frequency, compute_gwas, compute_heterozygosity, compute_ld,
                                         compute_population)

    out: dict[str, float] = {}
    out["af_r"] = compute_allele_frequency(test, synthetic)["af_r"]
    # Wright's F within populations (real data ~0): negative is an excess of heterozygotes, which pulls
    # synthetic genomes towards each other and so raises AA_synth.
    out["f_within"] = compute_heterozygosity(test, synthetic)["f_within_synthetic"]
    ld = compute_ld(test, synthetic)
    out.update(ld_r2_corr=ld["ld_r2_corr"], ld_decay_mad=ld["ld_decay_mad"])
    out["population_accuracy"] = compute_population(test, synthetic, seed=seed)["population_accuracy"]
    try:
        out["gwas_effect_r"] = compute_gwas(test, synthetic)["effect_r"]
    except Exception as exc:  # noqa: BLE001 - a set without phenotypes has no GWAS; recorded, not fatal
        out["gwas_effect_r"] = float("nan")
        out["gwas_error"] = str(exc)[:200]
    p = privacy(synthetic.features(), train.features(), test.features(), seed=seed)
    out.update(aa_truth=p["aa_truth"], aa_synth=p["aa_synth"], aats_test=p["aats_test"],
               privacy_loss=p["privacy_loss"], membership_auc=p["membership_auc"],
               identical_rate=p["identical_rate"],
               identical_genomes=float(round(p["identical_rate"] * len(synthetic))))
    return {k: (float(v) if not isinstance(v, str) else v) for k, v in out.items()}


#: ``--set`` options (``omigen run``'s syntax, e.g. ``diffusion.dim=128``) applied to every model's config.
OVERRIDES: dict = {}


def _config(kind: str, steps: int):
    from omigen.config import resolve
    from omigen_genotype.config import GenotypeConfig

    return resolve(GenotypeConfig, {"model": kind, "steps": steps, "device": "cpu"}, OVERRIDES)


def _fit(kind: str, train, steps: int, seed: int = 0, progress: bool = False, keep: Path | None = None):
    """Train one model; with ``keep`` its checkpoint and sites are written there, as in a genotype run folder
    (:func:`omigen_genotype.pipeline.load_run` and ``--from`` read them)."""
    from omigen.config import to_dict
    from omigen.train import Trainer, for_run

    from omigen_genotype.pipeline import SITES, _write_sites, builder, data_info, tensors, training_rows

    cfg = _config(kind, steps)
    info = data_info(train, cfg)
    model = builder(kind)(cfg.model_config(), {**info, "G": training_rows(train, info), "steps": steps})
    kept = {} if keep is None else {"out_dir": keep, "stage": "model",
                                    "run_config": {"config": to_dict(cfg), "info": info}}
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        _write_sites(train.variants, keep / SITES)
    train_cfg = for_run(cfg.train, progress=progress, steps=cfg.steps, default_steps=cfg.__class__().train.steps)
    trainer = Trainer(model, tensors(train, info), train_cfg, seed=seed, device="cpu", **kept)
    fit = trainer.fit()
    return trainer.ema, info, cfg, fit


def _load(folder: Path, kind: str, train):
    """A model kept by ``--keep``: ``(model, info, config)``; it must have been trained on this split."""
    from omigen.errors import OmigenInputError
    from omigen_genotype.pipeline import load_run

    try:
        model, kept_kind, info, cfg, _ = load_run(folder)
    except OmigenInputError as exc:
        raise SystemExit(f"--from: {exc}") from None
    if kept_kind != kind or info["n_snps"] != train.G.shape[1]:
        raise SystemExit(f"{folder} holds a {kept_kind} model on {info['n_snps']} SNPs, not {kind} on "
                         f"{train.G.shape[1]}")
    return model, info, cfg


#: Diffusion sampling options of ``--sample`` besides the mosaic ones (the pipeline's ``MOSAIC_OPTIONS``).
_DIFFUSION_KEYS = ("temperature", "guidance", "sample_steps", "correctors")


def _sampling(spec: str) -> dict[str, float]:
    """``"temperature=1.1,guidance=1"`` -> ``{"temperature": 1.1, "guidance": 1.0}``: diffusion sampling options,
    mosaic options, and ``seed`` (the draw's and the scoring's seed)."""
    from omigen_genotype.pipeline import MOSAIC_OPTIONS

    keys = _DIFFUSION_KEYS + MOSAIC_OPTIONS + ("seed",)
    out = {}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition("=")
        if key not in keys:
            raise SystemExit(f"--sample takes {', '.join(keys)}, not {key!r}")
        out[key] = float(value)
    return out


def quality(data, kinds: list[str], steps: dict[str, int], seed: int = 0, samplings: list[str] = (),
            keep: Path | None = None, reuse: Path | None = None) -> dict:
    """Train each model on 80% of ``data`` and score it (and the baseline, and real train) on the other 20%.

    Each of ``samplings`` (e.g. ``"temperature=1.1"``) scores the same trained diffusion model once more, sampled
    with those options, as the row ``"diffusion [temperature=1.1]"``. ``keep``: write each trained model to
    ``keep/<model>``; ``reuse``: score the models kept in ``reuse/<model>`` instead of training (their own
    settings; ``--set`` and ``--steps`` do not apply), so sampling options can be compared without retraining.
    """
    from omigen_genotype.baselines import generate_independent
    from omigen_genotype.pipeline import MOSAIC_OPTIONS, draw, split

    train, test = split(data, 0.2, seed)
    counts = test.label_counts()
    rows: dict[str, dict] = {}
    t0 = time.perf_counter()
    rows["reference:real-train"] = _scores(train, test, train.subset(np.arange(len(train))), seed)
    rows["baseline:independent-snp"] = _scores(train, test, generate_independent(train, counts, seed), seed)
    print(f"  reference and baseline scored in {time.perf_counter() - t0:.1f} s", flush=True)
    for kind in kinds:
        t0 = time.perf_counter()
        if reuse is not None:
            model, info, cfg = _load(reuse / kind, kind, train)
            trained = {"reused_from": str(reuse / kind), "train_steps": cfg.steps}
            print(f"  {kind}: loaded from {reuse / kind} ({cfg.steps} steps)", flush=True)
        else:
            model, info, cfg, fit = _fit(kind, train, steps[kind], seed, keep=None if keep is None else keep / kind)
            train_s = time.perf_counter() - t0
            trained = {"train_seconds": train_s, "train_steps": fit.steps, "steps_per_sec": fit.steps_per_sec}
            print(f"  {kind}: trained {fit.steps} steps in {train_s:.1f} s", flush=True)
        mc = cfg.model_config()
        for spec in [""] + (list(samplings) if kind == "diffusion" else []):
            opts = ({k: getattr(mc, k, None) for k in _DIFFUSION_KEYS + MOSAIC_OPTIONS} | {"seed": seed}
                    | _sampling(spec))
            mosaic = {k: opts[k] for k in MOSAIC_OPTIONS if opts[k] is not None}
            t1 = time.perf_counter()
            syn = draw(model, kind, info, counts, int(opts["seed"]), steps=int(opts["sample_steps"] or 0) or None,
                       guidance=opts["guidance"], temperature=opts["temperature"],
                       correctors=int(opts["correctors"] or 0), sites=train.variants, mosaic=mosaic, reference=train)
            sample_s = time.perf_counter() - t1
            row = f"{kind} [{spec}]" if spec else kind
            rows[row] = {**_scores(train, test, syn, int(opts["seed"])), **trained, "sample_seconds": sample_s,
                         "n_params": int(sum(p.numel() for p in model.parameters()))}
            print(f"  {row}: {json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[row].items()})}",
                  flush=True)
    return {"n_train": len(train), "n_test": len(test), "n_snps": int(data.G.shape[1]), "rows": rows}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def scaling(kinds: list[str], sizes: list[int], n: int = 512, steps: int = 5, seed: int = 0) -> dict:
    """Steps/s, sampling throughput and memory per model at each number of SNPs (random genotypes)."""
    import tracemalloc

    import pandas as pd
    import torch

    from omigen.data import GenotypeData
    from omigen_genotype.pipeline import draw

    rng = np.random.default_rng(seed)
    out: dict[str, dict] = {}
    for m in sizes:
        G = rng.binomial(2, 0.3, size=(n, m)).astype(np.int8)
        labels = np.repeat(np.array(["A", "B"], dtype=object), n // 2)
        variants = pd.DataFrame({"id": [f"s{i}" for i in range(m)], "chrom": "1", "pos": np.arange(m) * 100 + 1,
                                 "ref": "A", "alt": "G"})
        data = GenotypeData(G=G, samples=np.array([f"i{i}" for i in range(n)], dtype=object), variants=variants,
                            labels=labels, phenotypes=pd.DataFrame({"phenotype": rng.standard_normal(n)},
                                                                   index=[f"i{i}" for i in range(n)]))
        for kind in kinds:
            rss0 = _rss_mb()
            tracemalloc.start()
            t0 = time.perf_counter()
            model, info, cfg, fit = _fit(kind, data, steps, seed)
            train_s = time.perf_counter() - t0
            mc = cfg.model_config()
            t1 = time.perf_counter()
            with torch.no_grad():
                draw(model, kind, info, {"A": 32, "B": 32}, seed, steps=getattr(mc, "sample_steps", None),
                     guidance=getattr(mc, "guidance", None), sites=variants)
            sample_s = time.perf_counter() - t1
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            out.setdefault(str(m), {})[kind] = {
                "train_steps_per_sec": steps / train_s, "samples_per_sec": 64 / sample_s,
                "tracemalloc_peak_mb": peak / 2**20, "peak_rss_growth_mb": max(0.0, _rss_mb() - rss0),
                "peak_rss_mb": _rss_mb(), "n_params": int(sum(p.numel() for p in model.parameters()))}
            print(f"  {m} SNPs {kind}: {out[str(m)][kind]}", flush=True)
    return out


def main() -> None:
    import torch

    from omigen_genotype.simulate import load_default

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="diffusion,vae,gan")
    ap.add_argument("--steps", type=int, default=0, help="training steps of every model (0: the defaults)")
    ap.add_argument("--scales", default="2000,10000,50000", help="SNP counts of the scaling part ('' to skip)")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--section", default="", help="write only the quality part, under this key of the existing JSON")
    ap.add_argument("--sample", dest="samplings", action="append", default=[], metavar="KEY=VALUE[,...]",
                    help="score the trained diffusion model once more with these sampling options (repeatable), "
                         "e.g. temperature=1.1")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="model option as in `omigen run genotype --set` (repeatable), e.g. diffusion.dim=128")
    ap.add_argument("--keep", type=Path, default=None, help="write each trained model's checkpoint to KEEP/<model>")
    ap.add_argument("--from", dest="reuse", type=Path, default=None,
                    help="score the models kept in FROM/<model> by --keep instead of training them")
    args = ap.parse_args()
    from omigen.config import parse_sets

    OVERRIDES.update(parse_sets(args.sets))
    if args.keep and args.reuse:
        ap.error("--keep and --from exclude each other")
    if args.section and args.skip_quality:
        ap.error("--section writes the quality part; it cannot be combined with --skip-quality")
    kinds = [k for k in args.models.split(",") if k]
    steps = {k: args.steps or _config(k, 1).__class__().steps for k in kinds}
    result: dict = {"device": "cpu", "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "steps": steps, "sets": args.sets, "samplings": args.samplings,
                    "note": "timings taken on a shared 2-core CPU with other jobs running: pessimistic"}
    if not args.skip_quality:
        t0 = time.perf_counter()
        data = load_default()
        result["data_seconds"] = time.perf_counter() - t0
        print(f"data: {data.G.shape} in {result['data_seconds']:.1f} s", flush=True)
        result["quality"] = quality(data, kinds, steps, samplings=args.samplings, keep=args.keep, reuse=args.reuse)
    out = Path(args.out)
    if args.section:
        kept = json.loads(out.read_text()) if out.is_file() else {}
        kept[args.section] = {k: v for k, v in result.items() if k != "quality"} | result["quality"]
        _write(out, kept)
        _table(result["quality"]["rows"])
        print(f"wrote {args.section} in {out}")
        return
    sizes = [int(s) for s in args.scales.split(",") if s]
    if sizes:
        result["scaling"] = scaling(kinds, sizes)
    _write(out, result)
    if "quality" in result:
        _table(result["quality"]["rows"])
    print(f"wrote {out}")


def _write(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=lambda v: None if v != v else v))
    tmp.replace(out)


def _table(rows: dict) -> None:
    cols = ["af_r", "ld_r2_corr", "ld_decay_mad", "population_accuracy", "gwas_effect_r", "aa_truth", "aa_synth",
            "privacy_loss", "identical_genomes", "f_within"]
    print(f"{'row':28s}" + "".join(f"{c[:12]:>13s}" for c in cols))
    for row, vals in rows.items():
        print(f"{row:28s}" + "".join(f"{vals.get(c, float('nan')):13.3f}" for c in cols))


if __name__ == "__main__":
    main()
