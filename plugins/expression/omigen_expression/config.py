"""Options of ``omigen run expression`` and of its denoisers (plain dataclasses, cheap to import)."""

from __future__ import annotations

from dataclasses import dataclass, field

from omigen.config import DiffusionConfig, RunConfig
from omigen.train import TrainConfig

#: Training steps of a default run (the top-level ``steps``, i.e. ``--steps``).
DEFAULT_STEPS = 1000


@dataclass
class ModelConfig:
    """Denoiser options. ``arch``: auto (transformer for <= 64 genes, else mlp), transformer or mlp."""

    arch: str = "auto"
    # gene-token transformer
    dim: int = 64
    layers: int = 3
    heads: int = 4
    mlp_ratio: float = 2.0
    # residual MLP
    hidden: int = 512
    blocks: int = 3
    dropout: float = 0.0


def _train_defaults() -> TrainConfig:
    # Tuned on the bundled data (train split; C2ST against the test split) to train in well under
    # a minute on 2 CPU cores: 1000 steps of 128 at a cosine-decayed 2e-3.
    return TrainConfig(steps=DEFAULT_STEPS, batch_size=128, lr=2e-3, ema_decay=0.999, lr_schedule="cosine",
                       warmup_steps=100, log_every=100)


@dataclass
class ExpressionConfig(RunConfig):
    """Options of ``omigen run expression``.

    Data: ``data``/``labels`` (None: the bundled GEMDiff breast train split), ``test_data``/
    ``test_labels`` (None with ``data`` given: a seeded stratified split of ``test_fraction``;
    None without ``data``: the bundled test split). ``orientation``, ``unmatched``, ``label_key``
    and ``layer`` go to the readers (:mod:`omigen_expression.io`); ``missing="auto"`` means
    ``not-expressed`` for the bundled data and ``error`` for your files. ``max_samples`` caps the
    training and the test set each (a seeded stratified subset; 0: no cap).

    Preprocessing: ``genes`` (names to model; empty: all) or ``random_genes`` (k seeded random
    genes), ``log`` (auto|yes|no), ``snap_zeros`` (see :mod:`omigen_expression.preprocess`).

    Training: ``steps`` (the training steps; ``train.steps`` follows it), ``train``, ``diffusion``,
    ``model``. Sampling: ``sampler`` (ddim|ddpm), ``sample_steps`` (DDIM), ``eta`` (DDIM noise: 0
    deterministic, 1 (default) as much fresh noise per step as DDPM, which scored better here),
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
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    sampler: str = "ddim"
    sample_steps: int = 100
    eta: float = 1.0
    guidance: float = 1.0
    clip_x0: float = 1.0
    n_samples: int = 0
    umap: bool = True
    cpu_threads: int = 1
