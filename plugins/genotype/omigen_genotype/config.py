"""Options of ``omigen run genotype`` and of its three model families (plain dataclasses, cheap to import)."""

from __future__ import annotations

from dataclasses import dataclass, field

from omigen.config import RunConfig
from omigen.errors import OmigenInputError
from omigen.train import TrainConfig

#: Model families ``--set model=...`` selects.
MODELS = ("diffusion", "vae", "gan")
#: Forward processes of the discrete diffusion model.
TRANSITIONS = ("uniform", "absorbing")


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or value <= 0:
            raise OmigenInputError(f"{owner} option {name!r} must be positive, got {value!r}")


@dataclass
class PatchConfig:
    """How SNPs become tokens: ``patch_size`` consecutive SNPs per token (0: the smallest size that keeps
    the number of tokens at or below ``max_tokens``). Attention and the latent layers see tokens, so
    their cost is bounded by ``max_tokens`` whatever the chromosome's length."""

    patch_size: int = 0
    max_tokens: int = 128

    def __post_init__(self) -> None:
        if self.patch_size < 0:
            raise OmigenInputError(f"patch_size must be >= 0 (0: automatic), got {self.patch_size}")
        _positive("patch", max_tokens=self.max_tokens)


@dataclass
class DiffusionModelConfig(PatchConfig):
    """D3PM on the genotype states (x0-parameterisation, hybrid loss) with a patch transformer denoiser.

    ``transition``: ``uniform`` (3 states) or ``absorbing`` (a 4th, masked state). ``timesteps``: T of the
    forward process (cosine schedule of the kept fraction). ``hybrid_lambda``: weight of the auxiliary
    cross-entropy on x0 next to the variational bound. ``cond_drop``: probability that each condition
    (population, phenotype) is dropped in training, for classifier-free guidance. Sampling:
    ``sample_steps`` ancestral steps (<= timesteps, evenly skipped), ``guidance`` the CFG weight
    (0: plain conditional; the default 1 strengthens the phenotype association that GWAS on synthetic
    genomes recovers, at twice the sampling cost), ``temperature`` divides the x0 log-probabilities at
    every sampling step (above 1 spreads the synthetic genomes apart; 1: the model as trained),
    ``correctors`` re-noises the state and repeats each step that many times (0: plain ancestral sampling;
    see :meth:`omigen_genotype.d3pm.GenotypeD3PM.sample`; each costs one more denoiser call per step). ``skip``
    adds a per-SNP path from each SNP's noisy state to its own x0 logits, which the patch tokens are too
    narrow to carry (see :class:`omigen_genotype.denoiser.SnpSkip`). ``haplotypes`` (phased input only)
    learns and draws haplotypes, two per synthetic individual, and adds them into dosages (see
    :class:`omigen_genotype.d3pm.GenotypeD3PM`). ``self_cond`` feeds the denoiser its previous estimate of
    x0 (self-conditioning; training steps cost about a third more).

    ``mosaic`` (phased training data only) starts each synthetic haplotype not from noise but from a mosaic
    of training haplotypes of its population, ``mosaic_switches`` donor switches per contig on average,
    donors among the ``mosaic_donors`` training individuals with the phenotype nearest the one drawn,
    noised to ``mosaic_noise`` x ``timesteps`` and denoised from there (see :mod:`omigen_genotype.mosaic`;
    sampling then reads the training genotypes).
    """

    transition: str = "uniform"
    timesteps: int = 100
    hybrid_lambda: float = 0.01
    dim: int = 64
    layers: int = 2
    heads: int = 4
    dropout: float = 0.0
    cond_drop: float = 0.1
    sample_steps: int = 50
    guidance: float = 1.0
    max_tokens: int = 64
    temperature: float = 1.0
    correctors: int = 0
    skip: bool = False
    haplotypes: bool = False
    self_cond: bool = False
    mosaic: bool = False
    mosaic_noise: float = 0.5
    mosaic_switches: float = 10.0
    mosaic_donors: int = 72

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.transition not in TRANSITIONS:
            raise OmigenInputError(f"diffusion transition must be one of {', '.join(TRANSITIONS)}, "
                                   f"got {self.transition!r}")
        _positive("diffusion", timesteps=self.timesteps, dim=self.dim, layers=self.layers, heads=self.heads,
                  sample_steps=self.sample_steps)
        if self.dim % self.heads:
            raise OmigenInputError(f"diffusion dim ({self.dim}) must be divisible by heads ({self.heads})")
        if not 1 <= self.sample_steps <= self.timesteps:
            raise OmigenInputError(f"diffusion sample_steps must be from 1 to timesteps ({self.timesteps}), "
                                   f"got {self.sample_steps}")
        if self.hybrid_lambda < 0 or not 0 <= self.cond_drop <= 1 or not 0 <= self.dropout < 1:
            raise OmigenInputError("diffusion needs hybrid_lambda >= 0, cond_drop in [0, 1], dropout in [0, 1)")
        if self.guidance < 0:
            raise OmigenInputError(f"diffusion guidance must be >= 0, got {self.guidance}")
        if not self.temperature > 0:
            raise OmigenInputError(f"diffusion temperature must be > 0, got {self.temperature}")
        if self.correctors < 0:
            raise OmigenInputError(f"diffusion correctors must be >= 0, got {self.correctors}")
        check_mosaic(self.mosaic_noise, self.mosaic_switches, self.mosaic_donors)


@dataclass
class VAEConfig(PatchConfig):
    """VAE with a categorical (3-state) likelihood per SNP; conditional on population and phenotype.

    ``embed`` features per token (a per-SNP linear map inside each patch), ``hidden`` the width of the MLP
    between tokens and the ``latent`` space, ``beta`` the weight of the KL term, ``decode`` how a state is
    read from the decoder's probabilities: ``sample`` (keeps diversity) or ``argmax``.
    """

    latent: int = 32
    hidden: int = 512
    embed: int = 16
    beta: float = 1.0
    decode: str = "sample"
    max_tokens: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("vae", latent=self.latent, hidden=self.hidden, embed=self.embed)
        if self.beta < 0:
            raise OmigenInputError(f"vae beta must be >= 0, got {self.beta}")
        if self.decode not in ("sample", "argmax"):
            raise OmigenInputError(f"vae decode must be 'sample' or 'argmax', got {self.decode!r}")


@dataclass
class GANConfig(PatchConfig):
    """WGAN-GP whose generator emits Gumbel-softmax one-hot states; conditional on population and phenotype.

    ``n_critic`` critic updates per generator update, ``gp_weight`` the gradient-penalty weight, the
    Gumbel-softmax temperature anneals exponentially from ``tau_start`` to ``tau_end`` over the training
    steps. ``lr`` of both networks (Adam betas 0.5, 0.9 as in Gulrajani et al. 2017).
    """

    latent: int = 64
    hidden: int = 512
    embed: int = 16
    n_critic: int = 5
    gp_weight: float = 10.0
    tau_start: float = 1.0
    tau_end: float = 0.3
    lr: float = 2e-4
    max_tokens: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("gan", latent=self.latent, hidden=self.hidden, embed=self.embed, n_critic=self.n_critic,
                  tau_start=self.tau_start, tau_end=self.tau_end, lr=self.lr)
        if self.gp_weight < 0 or self.tau_end > self.tau_start:
            raise OmigenInputError("gan needs gp_weight >= 0 and tau_end <= tau_start")


#: Training steps of a default run (``--steps``; ``train.steps`` follows it).
DEFAULT_STEPS = 1000


def check_mosaic(noise: float, switches: float, donors: int) -> None:
    """Raise :class:`OmigenInputError` unless the mosaic-seeding options are usable."""
    if not 0 <= noise <= 1:
        raise OmigenInputError(f"diffusion mosaic_noise must be in [0, 1], got {noise}")
    if switches < 0:
        raise OmigenInputError(f"diffusion mosaic_switches must be >= 0, got {switches}")
    if isinstance(donors, bool) or int(donors) != donors or donors < 1:
        raise OmigenInputError(f"diffusion mosaic_donors must be a whole number >= 1, got {donors}")


def _train_defaults() -> TrainConfig:
    return TrainConfig(steps=DEFAULT_STEPS, batch_size=64, lr=1e-3, ema_decay=0.995, lr_schedule="cosine",
                       warmup_steps=50, log_every=100)


@dataclass
class GenotypeConfig(RunConfig):
    """Options of ``omigen run genotype``.

    Data: ``data`` a VCF/BCF (None: the bundled simulated three-population chr22 stretch), ``phenotypes`` a
    TSV joined by sample id, ``population`` the covariate column used as the class label ('' : none),
    ``phenotype`` the trait column ('' : none), ``maf`` the minimum minor-allele frequency kept,
    ``max_snps`` keeps the first k SNPs (0: all), ``test_fraction`` the held-out share of individuals.

    Model: ``model`` (diffusion | vae | gan) and its options group; ``condition`` on population and
    phenotype when the data have them. ``steps`` training steps. ``n_samples`` synthetic individuals per
    population (0: the test split's counts). ``bgzip`` writes ``synthetic.vcf.gz``.
    """

    steps: int = DEFAULT_STEPS
    model: str = "diffusion"
    phenotypes: str | None = None
    population: str = "population"
    phenotype: str = "phenotype"
    maf: float = 0.01
    max_snps: int = 0
    test_fraction: float = 0.2
    condition: bool = True
    n_samples: int = 0
    bgzip: bool = False
    sim_individuals: int = 300
    diffusion: DiffusionModelConfig = field(default_factory=DiffusionModelConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    train: TrainConfig = field(default_factory=_train_defaults)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise OmigenInputError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if not 0 < self.test_fraction < 1:
            raise OmigenInputError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.max_snps < 0 or self.n_samples < 0 or self.steps < 0:
            raise OmigenInputError("max_snps, n_samples and steps must be >= 0")
        if not 0 <= self.maf < 0.5:
            raise OmigenInputError(f"maf must be in [0, 0.5), got {self.maf}")

    def model_config(self) -> PatchConfig:
        """The options group of the selected model family."""
        return getattr(self, self.model)
