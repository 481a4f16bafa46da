"""omigen-dna-latent: latent diffusion for regulatory DNA (DiscDiff-style autoencoder + diffusion in its latent).

``omigen run dna_latent`` trains a convolutional autoencoder from one-hot DNA to a continuous
latent, then a class-conditioned 1-D U-Net diffusion model over that latent, and scores the
sequences it draws with FReD, JASPAR motif statistics, k-mer spectra, a cell-type classifier,
detection and memorisation metrics against Markov and position-frequency baselines.
"""

__version__ = "0.1.0"
