"""The host's own plugin, ``core``: generic metrics, baselines and samplers (diffusion, VAE/GAN prior).

It is announced through the ``omigen`` entry-point group like any other plugin, so it can be
switched off with ``OMIGEN_PLUGINS`` and fails in isolation like any other. Nothing here
imports torch: the components import their heavy libraries when they run.
"""

from omigen.hookspecs import hookimpl


@hookimpl
def omigen_register_metrics(register):
    from omigen.metrics import METRICS

    for spec in METRICS:
        register(spec)


@hookimpl
def omigen_register_baselines(register):
    from omigen.baselines import BASELINES

    for spec in BASELINES:
        register(spec)


@hookimpl
def omigen_register_samplers(register):
    from omigen.generator_configs import SAMPLERS as GENERATOR_SAMPLERS
    from omigen.samplers import SAMPLERS

    for spec in [*SAMPLERS, *GENERATOR_SAMPLERS]:
        register(spec)
