"""A continuous (optionally class-conditional) WGAN-GP for feature vectors, trained by :mod:`omigen.train`.

Gulrajani et al. (2017): a critic ``D(x, y)`` and a generator ``G(z, y)`` with ``z ~ N(0, I)``,
both MLPs with leaky-ReLU (no batch norm, which the per-sample gradient penalty forbids). The
class enters both as a one-hot block appended to the input
(:class:`omigen.conditional_mlp.ConditionalMLP`). :meth:`WGANGP.objectives` gives the trainer
two objectives over disjoint parameters:

- ``critic`` (``n_critic`` updates a step, each on a fresh batch): ``E D(G(z)) - E D(x) +
  gp_weight * E (||grad_x D(x_hat)|| - 1)^2`` at random points ``x_hat`` between real and
  generated samples of the same class, with the gradient taken by ``torch.autograd.grad(...,
  create_graph=True)`` so the penalty itself is differentiated;
- ``generator``: ``-E D(G(z))``.

The generator's outputs pass through ``tanh``, so samples lie in [-1, 1]: data are expected to
be scaled to that range per feature (as expression plugins do, gene by gene).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from omigen.conditional_mlp import (
    ACTIVATIONS,
    ConditionalMLP,
    check_count,
    check_labels,
    class_index,
    draw_in_chunks,
    randn,
    training_labels,
)
from omigen.generator_configs import WGAN_KIND, WGANConfig
from omigen.train import Objective

__all__ = ["WGANGP", "WGANConfig"]


def _split(batch: tuple[Tensor, ...]) -> tuple[Tensor, Tensor | None]:
    return batch[0], (batch[1] if len(batch) > 1 else None)


def _critic_objective(model: WGANGP, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
    return model.critic_loss(*_split(batch))


def _generator_objective(model: WGANGP, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
    return model.generator_loss(*_split(batch))


class ProjectionCritic(nn.Module):
    """``D(x, y) = w . phi(x) + e_y . phi(x)`` (Miyato & Koyama 2018) with MLP features ``phi``.

    The class embedding ``e_y`` starts at zero (an unconditional critic) and has a slot for
    "no class"; ``n_classes = 0`` has no embedding. The label never enters ``phi``, so the
    gradient penalty's gradient with respect to ``x`` sees every term.
    """

    def __init__(self, n_features: int, hidden: tuple[int, ...], n_classes: int = 0) -> None:
        super().__init__()
        self.n_classes = int(n_classes)
        width = hidden[-1] if hidden else n_features
        self.features = nn.Sequential(ConditionalMLP(n_features, width, hidden[:-1], 0, "leaky_relu"),
                                      ACTIVATIONS["leaky_relu"]()) if hidden else nn.Identity()
        self.out = nn.Linear(width, 1)
        self.embed = nn.Embedding(self.n_classes + 1, width) if self.n_classes else None
        if self.embed is not None:
            nn.init.zeros_(self.embed.weight)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.features(x)
        out = self.out(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(class_index(y, x.shape[0], self.n_classes, x.device)) * h).sum(1)
        return out


class WGANGP(nn.Module):
    """A WGAN-GP over ``n_features`` features in [-1, 1]; see the module docstring.

    ``n_classes = 0`` makes it unconditional; otherwise labels are ``0 .. n_classes - 1`` and
    negative labels (or ``y=None`` when sampling) mean "no class".
    """

    kind = WGAN_KIND

    def __init__(self, n_features: int, n_classes: int = 0, config: WGANConfig | None = None) -> None:
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        config = config if config is not None else WGANConfig()
        config.validate()
        self.config = config
        self.n_features = int(n_features)
        self.n_classes = int(n_classes)
        self.latent_dim = config.latent_dim
        # Initial outputs spread like tanh(N(0, 0.5^2)), sd ~0.45: the scale of features in [-1, 1].
        self.generator = ConditionalMLP(config.latent_dim, n_features, config.hidden, n_classes, "leaky_relu",
                                        out_gain=0.5)
        self.critic = ProjectionCritic(n_features, tuple(reversed(config.hidden)), n_classes)

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return next(self.parameters()).device

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Generated samples ``(B, n_features)`` in [-1, 1] of latents ``z`` ``(B, latent_dim)``."""
        return torch.tanh(self.generator(z, y))

    def score(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Critic values ``(B,)``."""
        return self.critic(x, y)

    def gradient_penalty(self, real: Tensor, fake: Tensor, y: Tensor | None = None) -> Tensor:
        """``E (||grad_x D(x_hat, y)|| - 1)^2`` at ``x_hat = u real + (1 - u) fake``, ``u ~ U(0, 1)`` per sample."""
        u = torch.rand(real.shape[0], 1, device=real.device, dtype=real.dtype)
        mix = (u * real + (1 - u) * fake).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.score(mix, y).sum(), mix, create_graph=True)
        # The small constant keeps the norm differentiable where the gradient vanishes.
        norm = (grad.float().pow(2).sum(1) + 1e-12).sqrt()
        return ((norm - 1.0) ** 2).mean()

    def _fake(self, n: int, y: Tensor | None, device: torch.device) -> Tensor:
        return self.generate(torch.randn(n, self.latent_dim, device=device), y)

    def critic_loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """``{"loss", "wdist", "gp"}``: the critic's loss, its Wasserstein estimate and the penalty."""
        y = training_labels(y, self.n_classes, self.config.cond_drop if self.training else 0.0, x.shape[0])
        with torch.no_grad():
            fake = self._fake(x.shape[0], y, x.device).to(x.dtype)
        wdist = self.score(x, y).mean() - self.score(fake, y).mean()
        gp = self.gradient_penalty(x, fake, y)
        return {"loss": -wdist + self.config.gp_weight * gp, "wdist": wdist, "gp": gp}

    def generator_loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """``{"loss"}``: minus the critic's mean value of as many generated samples as ``x`` has rows."""
        y = training_labels(y, self.n_classes, self.config.cond_drop if self.training else 0.0, x.shape[0])
        return {"loss": -self.score(self._fake(x.shape[0], y, x.device), y).mean()}

    def objectives(self) -> list[Objective]:
        """The trainer's ``critic`` (``n_critic`` repeats) and ``generator`` objectives."""
        c = self.config
        return [Objective("critic", _critic_objective, params=lambda m: m.critic.parameters(),
                          repeats=c.n_critic, lr=c.lr_c, betas=c.betas),
                Objective("generator", _generator_objective, params=lambda m: m.generator.parameters(),
                          lr=c.lr_g, betas=c.betas)]

    @torch.no_grad()
    def sample(self, n: int, y: Any = None, generator: torch.Generator | None = None,
               batch_size: int = 4096) -> Tensor:
        """Draw ``n`` samples, ``batch_size`` at a time, as a float32 CPU tensor ``(n, n_features)`` in [-1, 1].

        ``y`` is None (unconditional), one label or ``n`` labels (``-1``: no class).
        """
        n = check_count(n, batch_size)
        labels = check_labels(y, n, self.n_classes)
        device = self.device

        def draw(m: int, yb: Tensor | None) -> Tensor:
            return self.generate(randn((m, self.latent_dim), generator, device), yb)

        return draw_in_chunks(self, n, labels, batch_size, self.n_features, draw)
