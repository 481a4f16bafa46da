"""A (conditional) VAE with a categorical 3-state likelihood per SNP.

The encoder maps each SNP patch to ``embed`` features with its own weights (:class:`PatchIn`), then an MLP to
the Gaussian posterior over ``latent`` dimensions; the decoder mirrors it and ends in per-SNP logits over
the three dosages (:class:`PatchOut`). Population and phenotype, when present, are embedded and given to
both encoder and decoder (a conditional VAE). The loss is the negative ELBO divided by the number of SNPs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from omigen_genotype.denoiser import STATES, Condition, PatchIn, PatchOut, patch_size

_COND = 32


class GenotypeVAE(nn.Module):
    """Categorical VAE over ``n_snps`` dosages; ``loss(x, y, z)`` and ``sample(n, y, z, generator)``."""

    def __init__(self, n_snps: int, n_classes: int, phenotype: bool, latent: int = 32, hidden: int = 512,
                 embed: int = 16, beta: float = 1.0, decode: str = "sample", patch: int = 0,
                 max_tokens: int = 256) -> None:
        super().__init__()
        size = patch_size(n_snps, patch, max_tokens)
        self.n_snps, self.latent, self.beta, self.decode = n_snps, latent, beta, decode
        self.inp = PatchIn(n_snps, size, STATES, embed)
        tokens = self.inp.tokens
        self.cond = Condition(n_classes, phenotype, _COND)
        self.encoder = nn.Sequential(nn.GELU(), nn.Flatten(), nn.Linear(tokens * embed, hidden))
        self.enc_head = nn.Sequential(nn.GELU(), nn.Linear(hidden + _COND, hidden), nn.GELU(),
                                      nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent + _COND, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                     nn.GELU(), nn.Linear(hidden, tokens * embed), nn.GELU())
        self.out = PatchOut(n_snps, size, embed)
        self.tokens, self.embed = tokens, embed

    def decode_logits(self, latent: Tensor, c: Tensor) -> Tensor:
        """Per-SNP logits ``(B, n, 3)`` of latent codes under condition embeddings ``c``."""
        h = self.decoder(torch.cat([latent, c], 1)).view(-1, self.tokens, self.embed)
        return self.out(h)

    def loss(self, x: Tensor, y: Tensor | None = None, z: Tensor | None = None) -> dict[str, Tensor]:
        """Negative ELBO per SNP, with its reconstruction (``ce``) and ``kl`` parts per SNP."""
        x = x.long()
        c = self.cond(y, z, x.shape[0], x.device)
        h = self.encoder(self.inp(F.one_hot(x, STATES).float()))
        mu, logvar = self.enc_head(torch.cat([h, c], 1)).chunk(2, dim=1)
        logvar = logvar.clamp(-10, 10)
        code = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        logits = self.decode_logits(code, c)
        ce = F.cross_entropy(logits.float().transpose(1, 2), x, reduction="none").sum(1).mean() / self.n_snps
        kl = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).sum(1).mean() / self.n_snps
        return {"loss": ce + self.beta * kl, "ce": ce.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None, z: Tensor | None = None,
               generator: torch.Generator | None = None, batch_size: int = 512) -> Tensor:
        """``n`` dosage vectors (long) decoded from prior draws of the latent code."""
        from omigen_genotype.d3pm import categorical

        device = self.out.bias.device
        parts = []
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            yb = None if y is None else y[lo:hi].to(device)
            zb = None if z is None else z[lo:hi].to(device)
            code = torch.randn(hi - lo, self.latent, generator=generator, device=device)
            logits = self.decode_logits(code, self.cond(yb, zb, hi - lo, device)).float()
            parts.append(logits.argmax(-1) if self.decode == "argmax" else categorical(logits, generator))
        return torch.cat(parts) if parts else torch.zeros(0, self.n_snps, dtype=torch.long)


def build(cfg: Any, info: dict) -> GenotypeVAE:
    """A :class:`GenotypeVAE` for the data described by ``info``."""
    model = GenotypeVAE(info["n_snps"], info["n_classes"], info["phenotype"], latent=cfg.latent, hidden=cfg.hidden,
                        embed=cfg.embed, beta=cfg.beta, decode=cfg.decode, patch=cfg.patch_size,
                        max_tokens=cfg.max_tokens)
    if info.get("G") is not None:
        model.out.init_frequencies(np.asarray(info["G"]))
    return model
