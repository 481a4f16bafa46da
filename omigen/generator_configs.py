"""Options of the host's continuous VAE and WGAN-GP, and the sampler spec that draws from both.

Light on purpose: plugin configs nest :class:`VAEConfig` and :class:`WGANConfig`, and ``omigen
list`` reads those configs, so this module imports neither torch nor the models
(:mod:`omigen.vae`, :mod:`omigen.wgan`). Both configs are plain JSON-able dataclasses that
:func:`omigen.config.resolve` fills from TOML and ``--set`` (``hidden`` and ``betas`` as lists).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

from omigen.errors import OmigenInputError
from omigen.registry import SamplerSpec

#: ``VAE.kind`` and ``WGANGP.kind``: the model kinds :data:`SAMPLERS` draws from.
VAE_KIND = "vae"
WGAN_KIND = "wgan-gp"


def _positive_int(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OmigenInputError(f"{owner} {name} must be a positive integer, got {value!r}")


def _check_common(owner: str, latent_dim: Any, hidden: Any, cond_drop: Any) -> tuple[int, ...]:
    _positive_int(owner, "latent_dim", latent_dim)
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise OmigenInputError(f"{owner} hidden must be a list of layer widths, got {hidden!r}")
    hidden = tuple(hidden)
    for width in hidden:
        _positive_int(owner, "hidden layer width", width)
    if not (isinstance(cond_drop, (int, float)) and 0.0 <= cond_drop < 1.0):
        raise OmigenInputError(f"{owner} cond_drop must be in [0, 1), got {cond_drop!r}")
    return hidden


@dataclass
class VAEConfig:
    """A Gaussian VAE with MLP encoder and decoder (see :class:`omigen.vae.VAE`).

    ``hidden`` are the encoder's layer widths (the decoder mirrors them). The KL term is weighted
    by ``beta``, ramped linearly from ``beta / W`` to ``beta`` over the first ``W = round(kl_warmup
    * train_steps)`` training steps (``kl_warmup`` is a fraction of the run; 0: no warm-up).
    ``obs_std`` is the likelihood's standard deviation: ``None`` calibrates one per feature to
    the reconstruction error (floored at ``min_std``; see :mod:`omigen.vae`), a number fixes it
    for every feature. ``cond_drop`` is the probability a
    training label is replaced by "no class", so a conditional model also learns to sample
    unconditionally. ``dropout`` applies to every hidden layer.
    """

    latent_dim: int = 16
    hidden: tuple[int, ...] = (256, 256)
    beta: float = 1.0
    kl_warmup: float = 0.0
    dropout: float = 0.0
    obs_std: float | None = None
    min_std: float = 0.01
    cond_drop: float = 0.1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`OmigenInputError` naming the first invalid setting."""
        self.hidden = _check_common("vae", self.latent_dim, self.hidden, self.cond_drop)
        if not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and self.beta >= 0):
            raise OmigenInputError(f"vae beta must be a finite number >= 0, got {self.beta!r}")
        if not (isinstance(self.kl_warmup, (int, float)) and 0.0 <= self.kl_warmup <= 1.0):
            raise OmigenInputError(f"vae kl_warmup must be a fraction of the training steps in [0, 1], "
                                   f"got {self.kl_warmup!r}")
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise OmigenInputError(f"vae dropout must be in [0, 1), got {self.dropout!r}")
        if self.obs_std is not None and not (isinstance(self.obs_std, (int, float)) and self.obs_std > 0
                                             and math.isfinite(self.obs_std)):
            raise OmigenInputError(f"vae obs_std must be a positive number (or none to learn it), got {self.obs_std!r}")
        if not (isinstance(self.min_std, (int, float)) and self.min_std > 0 and math.isfinite(self.min_std)):
            raise OmigenInputError(f"vae min_std must be a positive number, got {self.min_std!r}")


@dataclass
class WGANConfig:
    """A conditional WGAN-GP with MLP generator and critic (see :class:`omigen.wgan.WGANGP`).

    The generator maps ``latent_dim`` Gaussian noise (plus the class) through ``hidden`` layers to
    ``tanh`` outputs in [-1, 1]; the critic mirrors ``hidden``. Each training step makes
    ``n_critic`` critic updates, with gradient penalty weight ``gp_weight``, then one generator
    update. ``lr_g`` / ``lr_c`` are the generator's and critic's learning rates (``None``: the
    training config's ``lr``); ``betas`` are both Adam optimisers' (Gulrajani et al. use
    ``lr = 1e-4`` and ``(0.5, 0.9)``). ``cond_drop`` is as in :class:`VAEConfig`.
    """

    latent_dim: int = 32
    hidden: tuple[int, ...] = (256, 256)
    n_critic: int = 5
    gp_weight: float = 10.0
    lr_g: float | None = None
    lr_c: float | None = None
    betas: tuple[float, ...] = (0.5, 0.9)
    cond_drop: float = 0.1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`OmigenInputError` naming the first invalid setting."""
        self.hidden = _check_common("wgan", self.latent_dim, self.hidden, self.cond_drop)
        _positive_int("wgan", "n_critic", self.n_critic)
        if not (isinstance(self.gp_weight, (int, float)) and math.isfinite(self.gp_weight) and self.gp_weight >= 0):
            raise OmigenInputError(f"wgan gp_weight must be a finite number >= 0, got {self.gp_weight!r}")
        for name in ("lr_g", "lr_c"):
            lr = getattr(self, name)
            if lr is not None and not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
                raise OmigenInputError(f"wgan {name} must be a positive number (or none for train.lr), got {lr!r}")
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in betas):
            raise OmigenInputError(f"wgan betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))


def sample_latent_prior(model: Any, n: int, **options: Any) -> Any:
    """``n`` samples decoded from the model's Gaussian latent prior (options: y, generator, batch_size, ...)."""
    kind = getattr(model, "kind", None)
    if kind not in (VAE_KIND, WGAN_KIND):
        raise OmigenInputError(f"sampler 'latent-prior' draws from {VAE_KIND} and {WGAN_KIND} models, "
                               f"not from {kind or type(model).__name__!r}")
    known = [p for p in inspect.signature(model.sample).parameters if p != "n"]
    for key in options:
        if key not in known:
            raise OmigenInputError(f"unknown option {key!r} for sampler 'latent-prior' (known: {', '.join(known)})")
    return model.sample(n, **options)


#: Sampler specs for the two model kinds, for a plugin's ``omigen_register_samplers`` hook to register.
SAMPLERS: list[SamplerSpec] = [
    SamplerSpec(
        name="latent-prior",
        model_kinds=(VAE_KIND, WGAN_KIND),
        sample=sample_latent_prior,
        description="decode draws from the N(0, I) latent prior of a VAE or a WGAN-GP generator",
    ),
]
