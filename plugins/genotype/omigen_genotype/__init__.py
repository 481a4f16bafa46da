"""omigen-genotype: synthetic 0/1/2 genotypes from discrete diffusion, VAE and WGAN-GP models.

The hook implementations are in :mod:`omigen_genotype.plugin`; models in :mod:`.d3pm`,
:mod:`.vae` and :mod:`.gan` (sharing the SNP-patch layers of :mod:`.denoiser`); the
``genotype`` pipeline in :mod:`.pipeline`.
"""

__version__ = "0.1.0"
