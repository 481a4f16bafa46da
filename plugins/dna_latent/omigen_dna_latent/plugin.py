"""The hook implementations omigen calls for the DNA latent-diffusion plugin.

``omigen list`` imports this module, so it only builds spec objects: the model builders import
torch inside the functions they point to.
"""

from omigen import hookimpl
from omigen.registry import ModelSpec, PipelineSpec

from omigen_dna_latent.baselines import BASELINES
from omigen_dna_latent.config import AutoencoderConfig, DenoiserConfig, DnaLatentConfig
from omigen_dna_latent.io import DATASETS
from omigen_dna_latent.metrics import METRICS
from omigen_dna_latent.pipeline import run, sample


def _build_autoencoder(config, info):
    from omigen_dna_latent.autoencoder import build_autoencoder

    return build_autoencoder(config, info)


def _build_denoiser(config, info):
    from omigen_dna_latent.denoiser import build_latent_diffusion

    return build_latent_diffusion(config, info)


#: ``omigen --quick``: a smoke run on a slice of the bundled data, well under a minute on a CPU.
QUICK = {"max_train": 800, "max_test": 200, "steps": 150, "autoencoder_train.steps": 150,
         "sample_steps": 20, "calibration.n_per_class": 200}

#: The contract kit's run: tiny data and model, seconds on a CPU.
TINY = {"max_train": 64, "max_test": 32, "steps": 20, "autoencoder_train.steps": 20,
        "autoencoder_train.batch_size": 16, "diffusion_train.batch_size": 16,
        "autoencoder.channels": 8, "autoencoder.latent_channels": 4,
        "denoiser.channels": 16, "denoiser.heads": 2, "diffusion.timesteps": 50, "sample_steps": 4,
        "calibration.n_per_class": 16}


@hookimpl
def omigen_register_datasets(register):
    for spec in DATASETS:
        register(spec)


@hookimpl
def omigen_register_models(register):
    register(ModelSpec(name="dna-autoencoder", modality="sequence", config_cls=AutoencoderConfig,
                       build=_build_autoencoder,
                       description="multi-kernel convolutional autoencoder: one-hot DNA (L x 4) <-> latent "
                                   "(C x L/4); info: length"))
    register(ModelSpec(name="dna-latent-denoiser", modality="sequence", config_cls=DenoiserConfig,
                       build=_build_denoiser,
                       description="class-conditioned 1-D U-Net Gaussian diffusion over the autoencoder's "
                                   "normalised latent, CFG; info: latent_channels, latent_length, n_classes"))


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
        name="dna_latent", modality="sequence", config_cls=DnaLatentConfig, run=run, sample=sample,
        quick=QUICK, tiny=TINY,
        description="DNA latent diffusion: autoencoder + class-conditioned latent DDPM/DDIM with "
                    "classifier-free guidance (default data: human DHS subset, 200 bp, 4 cell types)"))
