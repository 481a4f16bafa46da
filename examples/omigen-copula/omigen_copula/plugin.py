"""The hook implementations omigen calls: a table reader and the ``copula`` pipeline.

This module is what the entry point names, and ``omigen list`` imports it, so it only builds
spec objects; the work happens in the functions they point to.
"""

from omigen import hookimpl
from omigen.registry import DatasetSpec, PipelineSpec

from omigen_copula.pipeline import CopulaConfig, run, sample
from omigen_copula.table import read_table, write_table


@hookimpl
def omigen_register_datasets(register):
    register(DatasetSpec(
        name="copula-table", modality="expression", load=read_table, save=write_table,
        suffixes=(".tsv", ".csv", ".txt"),
        description="samples x genes table, sample ids first, optional 'label' column (no path: generated data)"))


@hookimpl
def omigen_register_pipelines(register):
    register(PipelineSpec(
        name="copula", modality="expression", config_cls=CopulaConfig, run=run, sample=sample,
        quick={"generated_samples": 200},
        tiny={"generated_samples": 120, "n_quantiles": 50},
        description="Gaussian copula over per-class empirical marginals (example out-of-tree plugin)"))
