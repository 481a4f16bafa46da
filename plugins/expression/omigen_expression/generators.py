"""The three generator families of the expression pipeline behind one interface.

``model=diffusion`` is the class-conditional Gaussian diffusion model (denoiser per
``cfg.denoiser``); ``model=vae`` and ``model=wgan`` are the host's continuous VAE and WGAN-GP
(:mod:`omigen.vae`, :mod:`omigen.wgan`), the comparators of the GEMDiff and L1000 papers. All
three are trained by :class:`omigen.train.Trainer` on the same preprocessed [-1, 1] matrix and
drawn from by :func:`draw`, which maps samples back to the input's units.

Importing this module imports torch: only the pipeline, once a run has started, imports it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch
from torch import nn

from omigen.data import ExpressionData
from omigen.errors import OmigenInputError
from omigen_expression.config import MODELS, ExpressionConfig

if TYPE_CHECKING:
    from omigen_expression.preprocess import Preprocessor

SAMPLERS = ("ddim", "ddpm")


def check_model(name: str) -> str:
    """``name`` if it is a known generator family, else a clear error."""
    if name not in MODELS:
        raise OmigenInputError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
    return name


def build_generator(cfg: ExpressionConfig, n_genes: int, n_classes: int) -> nn.Module:
    """The untrained generator ``cfg.model`` names, sized for ``n_genes`` and ``n_classes``."""
    check_model(cfg.model)
    if cfg.model == "vae":
        from omigen.vae import VAE

        return VAE(n_genes, n_classes, cfg.vae, train_steps=cfg.train.steps)
    if cfg.model == "wgan":
        from omigen.wgan import WGANGP

        return WGANGP(n_genes, n_classes, cfg.wgan)
    from omigen.diffusion import DiffusionModel

    from omigen_expression.models import build_denoiser

    denoiser = build_denoiser(cfg.denoiser, {"n_genes": n_genes, "n_classes": n_classes})
    return DiffusionModel(denoiser, cfg.diffusion, sample_shape=(n_genes,), n_classes=n_classes)


def describe(cfg: ExpressionConfig, model: nn.Module) -> str:
    """One line naming the generator and its size, for summaries and the report."""
    n_params = sum(p.numel() for p in model.parameters())
    if cfg.model == "diffusion":
        return f"diffusion, {cfg.denoiser.arch} denoiser, {n_params:,} parameters"
    return f"{cfg.model}, {n_params:,} parameters"


def check_sampling(sampler: str, steps: int, guidance: float, timesteps: int) -> None:
    """Reject a bad diffusion sampler, step count or guidance weight before any work."""
    if sampler not in SAMPLERS:
        raise OmigenInputError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if sampler == "ddim" and not 1 <= steps <= timesteps:
        raise OmigenInputError(f"sample_steps must be from 1 to {timesteps} (the diffusion timesteps), got {steps}")
    if not np.isfinite(guidance) or guidance < 0:
        raise OmigenInputError(f"guidance must be >= 0, got {guidance}")


def sample_ids(n: int, prefix: str = "synthetic") -> np.ndarray:
    """``prefix_00001`` ... ids, zero-padded to a common width."""
    width = max(5, len(str(n)))
    return np.asarray([f"{prefix}_{i + 1:0{width}d}" for i in range(n)], dtype=object)


def draw(model: nn.Module, pre: "Preprocessor", counts: dict[str | None, int], *, seed: int,
         cfg: ExpressionConfig, sampler: str | None = None, steps: int | None = None, eta: float | None = None,
         guidance: float | None = None, device: str = "cpu") -> ExpressionData:
    """``counts[label]`` samples of each label (``None``: unconditional) in the input's units.

    The diffusion options default to the run's (``cfg``); the VAE and the WGAN ignore them.
    """
    labels = [lab for lab, k in counts.items() for _ in range(int(k))]
    n = len(labels)
    n_classes = len(pre.classes)
    y = None
    if n_classes:
        y = np.asarray([-1 if lab is None else int(pre.labels_to_index([lab])[0]) for lab in labels], np.int64)
    generator = torch.Generator().manual_seed(int(seed))
    model = model.to(device)
    options: dict[str, Any] = {}
    if cfg.model == "diffusion":
        options = {"sampler": sampler or cfg.sampler,
                   "guidance": cfg.guidance if guidance is None else guidance,
                   "clip_x0": cfg.clip_x0 if cfg.clip_x0 > 0 else None}
        if options["sampler"] == "ddim":
            options.update(steps=cfg.sample_steps if steps is None else steps, eta=cfg.eta if eta is None else eta)
    Z = model.sample(n, y=y, generator=generator, **options).numpy()
    named = n_classes and all(lab is not None for lab in labels)
    return ExpressionData(X=pre.inverse(Z), genes=np.asarray(pre.genes, dtype=object), samples=sample_ids(n),
                          labels=np.asarray(labels, dtype=object) if named else None, units=pre.units)


@contextlib.contextmanager
def torch_threads(n: int, device: str) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (0 or a non-CPU device: unchanged), then restore."""
    if n < 0:
        raise OmigenInputError(f"cpu_threads must be >= 0, got {n}")
    if n == 0 or not str(device).startswith("cpu"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
