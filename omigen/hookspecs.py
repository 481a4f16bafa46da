"""The hooks a plugin implements: the public contract between the host and its plugins.

Each hook receives ``register``, a callable taking one spec from :mod:`omigen.registry`
of the hook's kind. A plugin module implements any subset::

    from omigen import hookimpl
    from omigen.registry import MetricSpec

    @hookimpl
    def omigen_register_metrics(register):
        register(MetricSpec(name="mean-gap", modalities=("expression",), ...))

and is announced in its ``pyproject.toml`` under the entry-point group ``omigen``.
"""

import pluggy

hookspec = pluggy.HookspecMarker("omigen")
hookimpl = pluggy.HookimplMarker("omigen")


@hookspec
def omigen_register_datasets(register):
    """Register :class:`~omigen.registry.DatasetSpec` loaders (file -> Dataset, bundled default)."""


@hookspec
def omigen_register_models(register):
    """Register :class:`~omigen.registry.ModelSpec` model families (config dataclass + builder)."""


@hookspec
def omigen_register_samplers(register):
    """Register :class:`~omigen.registry.SamplerSpec` ways of drawing from trained models."""


@hookspec
def omigen_register_metrics(register):
    """Register :class:`~omigen.registry.MetricSpec`; each applies to every run of its modalities."""


@hookspec
def omigen_register_baselines(register):
    """Register :class:`~omigen.registry.BaselineSpec` trivial generators that reports compare against."""


@hookspec
def omigen_register_pipelines(register):
    """Register :class:`~omigen.registry.PipelineSpec`: what ``omigen run <name>`` executes."""
