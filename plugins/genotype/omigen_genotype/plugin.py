"""The hook implementations omigen calls for the genotype plugin.

``omigen list`` imports this module, so it only builds spec objects: torch, scikit-learn and msprime load
inside the functions the specs point to.
"""

from __future__ import annotations

from omigen import hookimpl
from omigen.registry import ModelSpec, PipelineSpec

from omigen_genotype.baselines import BASELINES
from omigen_genotype.config import DiffusionModelConfig, GANConfig, GenotypeConfig, VAEConfig
from omigen_genotype.metrics import METRICS
from omigen_genotype.vcf import DATASETS

#: ``omigen run genotype --quick``: a smoke run on the default data in well under a minute.
QUICK = {"steps": 200, "max_snps": 1000, "train": {"warmup_steps": 20, "log_every": 50},
         "diffusion": {"sample_steps": 20}}
#: The contract kit's run: a few SNPs, a tiny model, seconds on a CPU.
TINY = {"steps": 12,
        "train": {"batch_size": 16, "warmup_steps": 0, "log_every": 6, "progress": False},
        "diffusion": {"dim": 16, "layers": 1, "heads": 2, "timesteps": 10, "sample_steps": 5, "max_tokens": 8}}


def _build_diffusion(cfg, info):
    from omigen_genotype.d3pm import build

    return build(cfg, info)


def _build_vae(cfg, info):
    from omigen_genotype.vae import build

    return build(cfg, info)


def _build_gan(cfg, info):
    from omigen_genotype.gan import build

    return build(cfg, info)


def _run(ctx):
    from omigen_genotype.pipeline import run

    return run(ctx)


def _sample(run_dir, n, label=None, seed=0, **options):
    from omigen_genotype.pipeline import sample

    return sample(run_dir, n, label=label, seed=seed, **options)


@hookimpl
def omigen_register_models(register):
    info = "info: n_snps, positions, n_classes, phenotype, optional G (training dosages) and steps"
    register(ModelSpec(name="genotype-d3pm", modality="genotype", config_cls=DiffusionModelConfig,
                       build=_build_diffusion,
                       description="D3PM (uniform/absorbing) with a SNP-patch transformer denoiser, CFG; " + info))
    register(ModelSpec(name="genotype-vae", modality="genotype", config_cls=VAEConfig, build=_build_vae,
                       description="conditional VAE with a categorical 3-state likelihood; " + info))
    register(ModelSpec(name="genotype-wgan", modality="genotype", config_cls=GANConfig, build=_build_gan,
                       description="conditional WGAN-GP with Gumbel-softmax outputs; " + info))


@hookimpl
def omigen_register_datasets(register):
    for spec in DATASETS:
        register(spec)


@hookimpl
def omigen_register_metrics(register):
    for spec in METRICS:
        register(spec)


@hookimpl
def omigen_register_baselines(register):
    for spec in BASELINES:
        register(spec)


@hookimpl
def omigen_register_pipelines(register):
    register(PipelineSpec(
        name="genotype", modality="genotype", config_cls=GenotypeConfig, run=_run, sample=_sample,
        quick=QUICK, tiny=TINY,
        description="0/1/2 genotypes from discrete diffusion (default), VAE or WGAN-GP (--set model=...), "
                    "conditioned on population and phenotype; VCF + phenotype TSV out"))
