"""Hook implementations of the ``expression`` plugin: its readers, denoisers, metrics and pipeline.

Only light modules are imported here (``omigen list`` loads every plugin); the readers, models
and the pipeline import pandas, anndata and torch when they run.
"""

from __future__ import annotations

from typing import Any

from omigen import hookimpl
from omigen.registry import DatasetSpec, ModelSpec, PipelineSpec


def _load_table(path: Any = None, **options: Any):
    from omigen_expression.io import load_table

    return load_table(path, **options)


def _load_h5ad(path: Any = None, **options: Any):
    from omigen_expression.io import load_h5ad

    return load_h5ad(path, **options)


def _save_table(data, path) -> None:
    from omigen_expression.io import write_table

    write_table(data, path)


def _save_h5ad(data, path) -> None:
    from omigen_expression.io import write_h5ad

    write_h5ad(data, path)


def _build(config, info: dict):
    from omigen_expression.models import build_denoiser

    return build_denoiser(config, info)


def _transformer(config, info: dict):
    from dataclasses import replace

    return _build(replace(config, arch="transformer"), info)


def _mlp(config, info: dict):
    from dataclasses import replace

    return _build(replace(config, arch="mlp"), info)


def _run(ctx):
    from omigen_expression.pipeline import run

    return run(ctx)


def _sample(run_dir, n, label=None, seed=0, **options):
    from omigen_expression.pipeline import sample

    return sample(run_dir, n, label=label, seed=seed, **options)


@hookimpl
def omigen_register_datasets(register):
    register(DatasetSpec(
        name="expression-table", modality="expression", load=_load_table, save=_save_table,
        suffixes=(".tsv", ".txt", ".csv"),
        description="samples x genes (or genes x samples) table; labels joined by sample id from a label "
                    "file (option labels=) or a 'label' column; no path: the bundled breast RNA-seq"))
    register(DatasetSpec(
        name="expression-h5ad", modality="expression", load=_load_h5ad, save=_save_h5ad, suffixes=(".h5ad",),
        description="AnnData file; labels from an obs column (option label_key=, default 'label' if present)"))


@hookimpl
def omigen_register_models(register):
    from omigen_expression.config import DenoiserConfig

    register(ModelSpec(name="gene-transformer", modality="expression", config_cls=DenoiserConfig, build=_transformer,
                       description="gene-token transformer denoiser (adaLN time/class conditioning), "
                                   "for panels up to ~64 genes"))
    register(ModelSpec(name="residual-mlp", modality="expression", config_cls=DenoiserConfig, build=_mlp,
                       description="residual-MLP denoiser for hundreds to thousands of genes"))


@hookimpl
def omigen_register_pipelines(register):
    from omigen_expression.pipeline import QUICK, TINY, ExpressionConfig

    register(PipelineSpec(
        name="expression", modality="expression", config_cls=ExpressionConfig, run=_run, sample=_sample,
        quick=QUICK, tiny=TINY,
        description="class-conditional diffusion (or VAE / WGAN-GP) on bulk RNA-seq; tasks generate, perturb "
                    "(tumour -> normal by DDIM inversion), screen (gene-set silhouettes); L1000 landmarks "
                    "(default: bundled breast tumour/normal, 16 genes)"))


@hookimpl
def omigen_register_metrics(register):
    from omigen_expression.metrics import METRICS

    for spec in METRICS:
        register(spec)
