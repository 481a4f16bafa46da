"""Configuration of the DNA latent-diffusion models and of ``omigen run dna_latent``.

Only dataclasses live here, so ``omigen list`` can import them without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omigen.config import DiffusionConfig, RunConfig
from omigen.errors import OmigenInputError
from omigen.train import TrainConfig

#: Training steps of the diffusion stage in a default run (the top-level ``steps``, i.e. ``--steps``).
DEFAULT_STEPS = 2000
SAMPLERS = ("ddim", "ddpm")
PREDICTIONS = ("eps", "bases")
#: Metrics a run computes by default: the plugin's own. The host's generic ones (c2st, frechet,
#: privacy, prdc, mmd, utility) work on the 4 x L one-hot features, repeat detection, fred and
#: memorisation on worse features, and took 330-520 s of a 4,565-sequence evaluation on 2 cores.
SEQUENCE_METRICS = ("fred", "motifs", "motif-enrichment", "kmer", "gc", "diversity", "memorisation", "detection",
                    "word-detection", "cell-type-fidelity")


@dataclass
class AutoencoderConfig:
    """Stage 1: one-hot DNA ``(L, 4)`` <-> latent ``(latent_channels, L / 2**downsample)``.

    ``kernels`` are the widths of the parallel convolutions of the multi-kernel stem (as in
    DiscDiff); ``blocks`` residual blocks follow each resolution. ``latent_noise`` is the standard
    deviation of the Gaussian noise added to the latent while training, so the decoder tolerates
    the small errors of latents drawn by diffusion; ``latent_l2`` keeps the latent's scale from
    growing to drown that noise.
    """

    channels: int = 32
    latent_channels: int = 8
    kernels: list[int] = field(default_factory=lambda: [3, 7, 11])
    blocks: int = 1
    downsample: int = 2
    latent_noise: float = 0.1
    latent_l2: float = 1e-3

    def validate(self) -> None:
        """Raise :class:`OmigenInputError` naming the first invalid setting."""
        if self.channels < 1 or self.latent_channels < 1:
            raise OmigenInputError("autoencoder channels and latent_channels must be >= 1")
        if not self.kernels or any(k < 1 or k % 2 == 0 for k in self.kernels):
            raise OmigenInputError(f"autoencoder kernels must be odd widths >= 1, got {self.kernels}")
        if self.blocks < 0 or self.downsample < 0:
            raise OmigenInputError("autoencoder blocks and downsample must be >= 0")
        if self.latent_noise < 0 or self.latent_l2 < 0:
            raise OmigenInputError("autoencoder latent_noise and latent_l2 must be >= 0")


@dataclass
class DenoiserConfig:
    """Stage 2: a 1-D U-Net over the latent; ``mults`` multiply ``channels`` at each level (each
    level after the first halves the length), ``attention`` adds self-attention at the bottom.

    ``predict`` is what the U-Net is trained to output: ``eps``, the noise (MSE), or ``bases``,
    per-base logits over ACGT (cross-entropy against the training sequence), from which the x0
    estimate is the frozen encoder's latent of the predicted base probabilities (as in CDCD,
    Dieleman et al. 2022). ``bases`` makes the denoiser learn which sequences are valid, which
    noise prediction on the latent alone learns poorly.

    ``context`` (``bases`` only; ignored for ``eps``) is how many preceding bases each base's
    predicted probability depends on: 0, every base independent given the noisy latent; k > 0, a
    k-th order chain along the sequence (``4**k`` rows of logits per base, drawn left to right at
    each sampling step), so that dependencies between neighbours such as CpG depletion survive the
    draw. 2 is the default: on the DHS benchmark it took detection AUC below the Markov baseline's
    (plugin README).

    ``kmer_order`` (``bases`` with labels only): the order of the per-class Markov chains whose
    log-ratio to the pooled chain the draw can add, weighted by the run's ``kmer_guidance``
    (:class:`~omigen_dna_latent.denoiser.BasePredictor`); 0 keeps no tables.
    """

    channels: int = 32
    mults: list[int] = field(default_factory=lambda: [1, 2])
    blocks: int = 1
    attention: bool = True
    heads: int = 4
    dropout: float = 0.0
    predict: str = "bases"
    context: int = 2
    kmer_order: int = 5

    def validate(self) -> None:
        """Raise :class:`OmigenInputError` naming the first invalid setting."""
        if self.predict not in PREDICTIONS:
            raise OmigenInputError(f"denoiser predict must be one of {', '.join(PREDICTIONS)}, got {self.predict!r}")
        if self.channels < 1 or not self.mults or any(m < 1 for m in self.mults):
            raise OmigenInputError(f"denoiser channels and mults must be >= 1, got {self.channels}, {self.mults}")
        if self.blocks < 1:
            raise OmigenInputError(f"denoiser blocks must be >= 1, got {self.blocks}")
        if self.attention and (self.channels * self.mults[-1]) % self.heads:
            raise OmigenInputError(f"denoiser heads ({self.heads}) must divide the bottom width "
                                   f"{self.channels * self.mults[-1]}")
        if not 0.0 <= self.dropout < 1.0:
            raise OmigenInputError(f"denoiser dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.context <= 3:
            raise OmigenInputError(f"denoiser context must be 0-3 preceding bases, got {self.context}")
        if not 0 <= self.kmer_order <= 6:
            raise OmigenInputError(f"denoiser kmer_order must be 0-6 preceding bases, got {self.kmer_order}")


@dataclass
class CalibrationConfig:
    """Calibration of a base-predicting model against its own draws (:mod:`omigen_dna_latent.calibration`).

    After training, ``rounds`` rounds each draw ``n_per_class`` sequences per label with the run's
    sampler and add, per label and per bin of ``bin_width`` positions, the log-ratio of
    ``order``-th order Markov chains fitted to the training sequences and to the draw
    (``pseudocount`` per cell), times ``step``. The draw adds ``weight`` times that table to each
    base's log-probability; ``rounds = 0`` or ``weight = 0`` turns calibration off.

    ``step < 1`` damps each round: the sampler rewrites bases at every step, so a full log-ratio
    acts more than once and overshoots what it corrects (CpG on the DHS data, plugin README).
    """

    rounds: int = 3
    n_per_class: int = 700
    order: int = 4
    bin_width: int = 20
    pseudocount: float = 1.0
    weight: float = 1.0
    step: float = 0.5

    def validate(self) -> None:
        """Raise :class:`OmigenInputError` naming the first invalid setting."""
        if not 0 < self.step <= 1:
            raise OmigenInputError(f"calibration step must be in (0, 1], got {self.step}")
        if self.rounds < 0 or self.n_per_class < 1:
            raise OmigenInputError("calibration rounds must be >= 0 and n_per_class >= 1")
        if not 0 <= self.order <= 6:
            raise OmigenInputError(f"calibration order must be 0-6 preceding bases, got {self.order}")
        if self.bin_width < 1 or self.pseudocount <= 0:
            raise OmigenInputError("calibration bin_width must be >= 1 and pseudocount > 0")


def _ae_train() -> TrainConfig:
    return TrainConfig(steps=600, batch_size=64, lr=2e-3, ema_decay=0.99, lr_schedule="cosine",
                       warmup_steps=50, log_every=100, ckpt_every=500)


def _diff_train() -> TrainConfig:
    return TrainConfig(steps=DEFAULT_STEPS, batch_size=128, lr=1e-3, ema_decay=0.999, lr_schedule="cosine",
                       warmup_steps=100, log_every=100, ckpt_every=500)


def _diffusion() -> DiffusionConfig:
    return DiffusionConfig(timesteps=1000, schedule="cosine", cond_drop=0.1)


@dataclass
class DnaLatentConfig(RunConfig):
    """Options of ``omigen run dna_latent``.

    Data: ``data`` (None: the bundled DHS subset, 200 bp, 4 cell types) read by the plugin's
    FASTA/TSV readers; ``split_column`` names the table column holding ``train_split`` and
    ``test_split`` (the bundled data's chromosome split); data without it is split at random,
    stratified, with ``test_fraction``. ``max_train``/``max_test`` cap the training/test set (a
    seeded stratified subset; 0: all).

    Training: ``steps`` (diffusion-stage steps; ``diffusion_train.steps`` follows it),
    ``autoencoder_train`` (stage "autoencoder"), ``diffusion_train`` (stage "diffusion"),
    ``autoencoder``, ``denoiser``, ``diffusion``. ``conditional=False`` ignores the labels.

    Sampling: ``sampler`` (ddim|ddpm), ``sample_steps`` (DDIM steps; with the default chained draw,
    ``denoiser.context = 2``, 25 scored better on the DHS data than 10, 15, 35 or 50 in the probes
    the plugin README lists), ``eta`` (DDIM's fresh noise per
    step: 0 deterministic, 1 ancestral as in DDPM; 1 scored best on the DHS subset), ``guidance`` (classifier-free
    guidance weight; 1 = plain conditional), ``kmer_guidance`` (weight of the per-class k-mer
    log-ratios in each draw, see ``denoiser.kmer_order``; 0 = off, the default: on the DHS subset
    0.5-2 lowered FReD from 0.20 to 0.16-0.11 but made the cell-type classifier over-confident on
    synthetic sequences from 1 up, plugin README), ``calibration`` (after training, draws from the
    model and fits per-label, per-position tables that correct its k-mer statistics towards the
    training data's, :class:`CalibrationConfig`; ``calibration.rounds=0`` turns it off),
    ``n_per_class`` (0: the test split's class counts).
    ``evaluate=False`` skips the metrics and the report (e.g. when a benchmark scores the run itself).
    ``metrics``: the metrics to compute (default: the plugin's own, :data:`SEQUENCE_METRICS`; an
    empty list: every metric registered for sequences, the host's generic ones included).
    """

    steps: int = DEFAULT_STEPS
    split_column: str = "split"
    train_split: str = "training"
    test_split: str = "test"
    test_fraction: float = 0.2
    max_train: int = 0
    max_test: int = 0
    conditional: bool = True
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    diffusion: DiffusionConfig = field(default_factory=_diffusion)
    autoencoder_train: TrainConfig = field(default_factory=_ae_train)
    diffusion_train: TrainConfig = field(default_factory=_diff_train)
    sampler: str = "ddim"
    sample_steps: int = 25
    eta: float = 1.0
    guidance: float = 1.0
    kmer_guidance: float = 0.0
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    n_per_class: int = 0
    evaluate: bool = True
    metrics: list[str] = field(default_factory=lambda: list(SEQUENCE_METRICS))

    def validate(self) -> None:
        """Raise :class:`OmigenInputError` naming the first invalid setting."""
        self.autoencoder.validate()
        self.denoiser.validate()
        self.diffusion.validate()
        self.calibration.validate()
        if self.steps < 0:
            raise OmigenInputError(f"steps must be >= 0, got {self.steps}")
        if self.sampler not in SAMPLERS:
            raise OmigenInputError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.eta < 0:
            raise OmigenInputError(f"eta must be >= 0, got {self.eta}")
        if self.sample_steps < 1:
            raise OmigenInputError(f"sample_steps must be >= 1, got {self.sample_steps}")
        if self.n_per_class < 0 or self.max_train < 0 or self.max_test < 0:
            raise OmigenInputError("n_per_class, max_train and max_test must be >= 0")
        if not 0.0 < self.test_fraction < 1.0:
            raise OmigenInputError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
