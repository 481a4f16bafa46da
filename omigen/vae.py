"""A continuous (optionally class-conditional) VAE for feature vectors, trained by :mod:`omigen.train`.

Encoder ``q(z | x, y) = N(mu, diag(sigma^2))`` and decoder ``p(x | z, y) = N(m(z, y), diag(s^2))``
are MLPs (:class:`omigen.conditional_mlp.ConditionalMLP`); the prior is ``N(0, I)``. The loss is
the negative ELBO per sample: the Gaussian negative log-likelihood summed over features
(constant included) plus ``w * KL``, where ``w`` ramps up to ``beta`` during the KL warm-up;
both terms are averaged over the batch. A step counter buffer (part of the state dict, so a
resumed run continues the ramp) counts training losses.

The likelihood's variance ``s^2`` is fixed (``VAEConfig.obs_std``) or, by default, calibrated
as in the sigma-VAE (Rybkin et al. 2021): each feature's variance is set to its maximum-
likelihood value, the batch's mean squared reconstruction error (not differentiated, floored at
``min_std^2``). That is the optimum a learned log-variance parameter would creep towards, reached
at once, so a short run neither over- nor under-weights reconstruction against the KL term. A
running average of those estimates (a buffer, averaged over all steps so far and then over about
the last 100) is the variance used when sampling.

Sampling decodes prior draws and, by default, adds the likelihood's noise ``s * eps``, so the
samples follow the model's marginal ``p(x | y)``; ``noise=False`` returns the decoder means.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from omigen.conditional_mlp import ConditionalMLP, check_count, check_labels, draw_in_chunks, randn, training_labels
from omigen.generator_configs import VAE_KIND, VAEConfig

__all__ = ["VAE", "VAEConfig"]

_LOG_2PI = math.log(2 * math.pi)
# Keeps exp(log-variance) of the encoder finite in float32 (and bf16) whatever the network outputs.
_ENC_LOGVAR_RANGE = (-30.0, 20.0)
#: The running variance estimate averages all steps until it has seen this many, then decays with 1 / this.
VAR_WINDOW = 100


class VAE(nn.Module):
    """A Gaussian VAE over ``n_features`` continuous features; see the module docstring.

    ``n_classes = 0`` makes it unconditional; otherwise labels are ``0 .. n_classes - 1`` and
    negative labels (or ``y=None`` when sampling) mean "no class". ``train_steps`` is the length
    of the training run, which ``config.kl_warmup`` is a fraction of.
    """

    kind = VAE_KIND

    def __init__(self, n_features: int, n_classes: int = 0, config: VAEConfig | None = None,
                 train_steps: int = 0) -> None:
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        if train_steps < 0:
            raise ValueError(f"train_steps must be >= 0, got {train_steps}")
        config = config if config is not None else VAEConfig()
        config.validate()
        self.config = config
        self.n_features = int(n_features)
        self.n_classes = int(n_classes)
        self.latent_dim = config.latent_dim
        self.encoder = ConditionalMLP(n_features, 2 * config.latent_dim, config.hidden, n_classes,
                                      dropout=config.dropout)
        self.decoder = ConditionalMLP(config.latent_dim, n_features, tuple(reversed(config.hidden)), n_classes,
                                      dropout=config.dropout)
        init_var = 1.0 if config.obs_std is None else config.obs_std ** 2
        #: Per-feature likelihood variance used for sampling: fixed, or the running calibrated estimate.
        self.register_buffer("obs_var", torch.full((n_features,), init_var))
        #: Number of training losses computed so far (drives the KL warm-up).
        self.register_buffer("step_count", torch.zeros((), dtype=torch.long))
        #: KL warm-up length in training steps.
        self.warmup_steps = round(config.kl_warmup * train_steps)

    def _likelihood_var(self, residual: Tensor) -> Tensor:
        """The per-feature variance of this batch's likelihood; updates the running estimate in training."""
        if self.config.obs_std is not None:
            return self.obs_var.to(residual.dtype)
        var = residual.detach().float().pow(2).mean(0).clamp(min=self.config.min_std ** 2)
        if self.training and torch.is_grad_enabled():
            rate = 1.0 / torch.clamp(self.step_count + 1, max=VAR_WINDOW).float()
            self.obs_var.lerp_(var, rate)
        return var.to(residual.dtype)

    def kl_weight(self) -> Tensor:
        """The KL weight of the next training step: ``beta * min(1, (step + 1) / warmup_steps)``."""
        ramp = ((self.step_count + 1).float() / self.warmup_steps).clamp(max=1.0) if self.warmup_steps \
            else torch.ones((), device=self.step_count.device)
        return self.config.beta * ramp

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Posterior mean and log-variance ``(B, latent_dim)`` each."""
        mean, logvar = self.encoder(x, y).chunk(2, dim=1)
        return mean, logvar.clamp(*_ENC_LOGVAR_RANGE)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Decoder mean ``(B, n_features)`` of latents ``z``."""
        return self.decoder(z, y)

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Negative ELBO of a batch: ``{"loss", "recon", "kl", "kl_weight"}`` (scalars).

        An unconditional model ignores ``y``; a conditional one needs it. In training mode a share
        ``cond_drop`` of labels becomes "no class" and the step counter advances.
        """
        y = training_labels(y, self.n_classes, self.config.cond_drop if self.training else 0.0, x.shape[0])
        mean, logvar = self.encode(x, y)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        residual = x - self.decode(z, y)
        var = self._likelihood_var(residual)
        recon = 0.5 * (residual ** 2 / var + var.log() + _LOG_2PI).sum(1).mean()
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1.0 - logvar).sum(1).mean()
        weight = self.kl_weight()
        if self.training and torch.is_grad_enabled():
            self.step_count += 1
        return {"loss": recon + weight * kl, "recon": recon, "kl": kl, "kl_weight": weight}

    @torch.no_grad()
    def sample(self, n: int, y: Any = None, generator: torch.Generator | None = None, batch_size: int = 4096,
               noise: bool = True) -> Tensor:
        """Draw ``n`` samples, ``batch_size`` at a time, as a float32 CPU tensor ``(n, n_features)``.

        ``y`` is None (unconditional), one label or ``n`` labels (``-1``: no class). ``noise`` adds
        the likelihood's noise to the decoder means. Networks run in eval mode (no dropout).
        """
        n = check_count(n, batch_size)
        labels = check_labels(y, n, self.n_classes)
        device = self.step_count.device

        def draw(m: int, yb: Tensor | None) -> Tensor:
            x = self.decode(randn((m, self.latent_dim), generator, device), yb)
            if noise:
                x = x + self.obs_var.sqrt() * randn((m, self.n_features), generator, device)
            return x

        return draw_in_chunks(self, n, labels, batch_size, self.n_features, draw)
