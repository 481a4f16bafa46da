"""A (conditional) WGAN-GP whose generator emits Gumbel-softmax relaxed one-hot genotypes.

The generator maps noise (and the condition embedding) through an MLP to per-patch features and per-SNP
logits (:class:`PatchOut`); in training its output is ``gumbel_softmax(logits, tau)``, so the critic sees
near-one-hot vectors like the real one-hot genotypes while gradients flow. ``tau`` anneals exponentially
from ``tau_start`` to ``tau_end`` over the training steps (a step counter is a buffer, so it is saved and
resumed with the weights). The critic (per-patch linear maps, then an MLP) is trained with the Wasserstein
loss and the gradient penalty of Gulrajani et al. (2017) on interpolates; the shared trainer alternates
``n_critic`` critic updates and one generator update. Sampling draws states from the generator's logits
(the Gumbel-max trick, the ``tau -> 0`` limit of its training output).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from omigen_genotype.denoiser import STATES, Condition, PatchIn, PatchOut, patch_size

_COND = 32


class Generator(nn.Module):
    """Noise + condition -> per-SNP logits ``(B, n, 3)``."""

    def __init__(self, n_snps: int, size: int, n_classes: int, phenotype: bool, latent: int, hidden: int,
                 embed: int) -> None:
        super().__init__()
        self.out = PatchOut(n_snps, size, embed)
        self.tokens, self.embed, self.latent = self.out.tokens, embed, latent
        self.cond = Condition(n_classes, phenotype, _COND)
        self.mlp = nn.Sequential(nn.Linear(latent + _COND, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(hidden, self.tokens * embed), nn.LeakyReLU(0.2))

    def forward(self, noise: Tensor, y: Tensor | None, z: Tensor | None) -> Tensor:
        c = self.cond(y, z, noise.shape[0], noise.device)
        return self.out(self.mlp(torch.cat([noise, c], 1)).view(-1, self.tokens, self.embed))


class Critic(nn.Module):
    """(Relaxed) one-hot genotypes ``(B, n, 3)`` + condition -> a real-valued score per sample."""

    def __init__(self, n_snps: int, size: int, n_classes: int, phenotype: bool, hidden: int, embed: int) -> None:
        super().__init__()
        self.inp = PatchIn(n_snps, size, STATES, embed)
        self.cond = Condition(n_classes, phenotype, _COND)
        self.body = nn.Sequential(nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(self.inp.tokens * embed, hidden))
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(hidden + _COND, hidden), nn.LeakyReLU(0.2),
                                  nn.Linear(hidden, 1))

    def forward(self, onehot: Tensor, y: Tensor | None, z: Tensor | None) -> Tensor:
        c = self.cond(y, z, onehot.shape[0], onehot.device)
        return self.head(torch.cat([self.body(self.inp(onehot)), c], 1)).squeeze(1)


class GenotypeGAN(nn.Module):
    """Generator and critic, with the two training objectives and the sampler."""

    def __init__(self, n_snps: int, n_classes: int, phenotype: bool, latent: int = 64, hidden: int = 512,
                 embed: int = 16, n_critic: int = 5, gp_weight: float = 10.0, tau_start: float = 1.0,
                 tau_end: float = 0.3, lr: float = 2e-4, anneal_steps: int = 1000, patch: int = 0,
                 max_tokens: int = 256) -> None:
        super().__init__()
        size = patch_size(n_snps, patch, max_tokens)
        self.n_snps, self.latent = n_snps, latent
        self.generator = Generator(n_snps, size, n_classes, phenotype, latent, hidden, embed)
        self.critic = Critic(n_snps, size, n_classes, phenotype, hidden, embed)
        self.n_critic, self.gp_weight, self.lr = n_critic, gp_weight, lr
        self.tau_start, self.tau_end, self.anneal_steps = tau_start, tau_end, max(1, anneal_steps)
        self.register_buffer("gen_steps", torch.zeros((), dtype=torch.long))

    @property
    def tau(self) -> float:
        """The Gumbel-softmax temperature at the current generator step."""
        frac = min(1.0, float(self.gen_steps) / self.anneal_steps)
        return self.tau_start * (self.tau_end / self.tau_start) ** frac

    def _fake(self, batch: int, y: Tensor | None, z: Tensor | None, device: torch.device) -> Tensor:
        logits = self.generator(torch.randn(batch, self.latent, device=device), y, z).float()
        return F.gumbel_softmax(logits, tau=self.tau, hard=False, dim=-1)

    def critic_loss(self, x: Tensor, y: Tensor | None = None, z: Tensor | None = None) -> dict[str, Tensor]:
        """Wasserstein critic loss ``D(fake) - D(real)`` plus the gradient penalty."""
        real = F.one_hot(x.long(), STATES).float()
        with torch.no_grad():
            fake = self._fake(x.shape[0], y, z, x.device)
        eps = torch.rand(x.shape[0], 1, 1, device=x.device)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        grad, = torch.autograd.grad(self.critic(mixed, y, z).sum(), mixed, create_graph=True)
        gp = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
        d_real, d_fake = self.critic(real, y, z).mean(), self.critic(fake, y, z).mean()
        return {"loss": d_fake - d_real + self.gp_weight * gp, "wdist": (d_real - d_fake).detach(),
                "gp": gp.detach()}

    def generator_loss(self, x: Tensor, y: Tensor | None = None, z: Tensor | None = None) -> dict[str, Tensor]:
        """``-D(G(noise))`` under the real batch's conditions; advances the temperature schedule."""
        loss = -self.critic(self._fake(x.shape[0], y, z, x.device), y, z).mean()
        tau = torch.tensor(self.tau)
        self.gen_steps += 1
        return {"loss": loss, "tau": tau}

    def objectives(self) -> list:
        """Critic (``n_critic`` repeats) then generator, each with Adam betas (0.5, 0.9)."""
        from omigen.train import Objective

        return [Objective("critic", lambda m, b: m.critic_loss(*b), params=lambda m: m.critic.parameters(),
                          repeats=self.n_critic, lr=self.lr, betas=(0.5, 0.9)),
                Objective("generator", lambda m, b: m.generator_loss(*b), params=lambda m: m.generator.parameters(),
                          lr=self.lr, betas=(0.5, 0.9))]

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None, z: Tensor | None = None,
               generator: torch.Generator | None = None, batch_size: int = 512) -> Tensor:
        """``n`` dosage vectors (long) drawn from the generator's per-SNP categorical logits."""
        from omigen_genotype.d3pm import categorical

        device = self.gen_steps.device
        parts = []
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            yb = None if y is None else y[lo:hi].to(device)
            zb = None if z is None else z[lo:hi].to(device)
            noise = torch.randn(hi - lo, self.latent, generator=generator, device=device)
            parts.append(categorical(self.generator(noise, yb, zb).float(), generator))
        return torch.cat(parts) if parts else torch.zeros(0, self.n_snps, dtype=torch.long)


def build(cfg: Any, info: dict) -> GenotypeGAN:
    """A :class:`GenotypeGAN` for the data described by ``info`` (``info["steps"]``: the annealing length)."""
    import numpy as np

    model = GenotypeGAN(info["n_snps"], info["n_classes"], info["phenotype"], latent=cfg.latent, hidden=cfg.hidden,
                        embed=cfg.embed, n_critic=cfg.n_critic, gp_weight=cfg.gp_weight, tau_start=cfg.tau_start,
                        tau_end=cfg.tau_end, lr=cfg.lr, anneal_steps=int(info.get("steps", 1000)),
                        patch=cfg.patch_size, max_tokens=cfg.max_tokens)
    if info.get("G") is not None:
        model.generator.out.init_frequencies(np.asarray(info["G"]))
    return model
