"""Discrete denoising diffusion (D3PM, Austin et al. 2021) on the genotype states 0/1/2.

Forward process: with the kept fraction ``abar_t`` (cosine schedule, ``abar_0 = 1``, ``abar_T = 0``),

- ``uniform`` (K = 3): ``q(x_t | x_0) = abar_t * onehot(x_0) + (1 - abar_t) / K``;
- ``absorbing`` (K = 4, state 3 = masked): ``q(x_t | x_0) = abar_t * onehot(x_0) + (1 - abar_t) * e_mask``.

Both families are closed under composition: going from step ``s`` to ``t > s`` is the same kind of
transition with kept fraction ``abar_t / abar_s``, so the posterior ``q(x_s | x_t, x_0)`` of any pair of
steps is available and sampling may skip steps. The denoiser predicts ``x_0`` (x0-parameterisation);
``p(x_s | x_t) ∝ q(x_t | x_s) * sum_x0 q(x_s | x0) p(x0 | x_t)`` as in the authors' implementation. The
training loss is the hybrid ``L_vb + lambda * CE(x_0)`` in nats per SNP; ``L_vb`` at ``t = 1`` is the
reconstruction term ``-log p(x_0 | x_1)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from omigen_genotype.denoiser import STATES, drop_conditions

_TINY = 1e-30


def cosine_abar(timesteps: int, s: float = 0.008) -> np.ndarray:
    """Kept fraction ``abar_t`` for ``t = 0..T`` (cosine schedule of Nichol & Dhariwal), exactly 1 and 0 at the ends."""
    t = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    f = np.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    abar[-1] = 0.0
    return np.clip(abar, 0.0, 1.0)


class DiscreteDiffusion(nn.Module):
    """The forward process, posteriors and loss of D3PM over ``K`` states (``states``: 3 dosages or 2
    alleles, plus a mask if absorbing)."""

    def __init__(self, timesteps: int, transition: str = "uniform", states: int = STATES) -> None:
        super().__init__()
        if transition not in ("uniform", "absorbing"):
            raise ValueError(f"unknown transition {transition!r}")
        self.T, self.transition, self.states = int(timesteps), transition, int(states)
        self.K = self.states + (transition == "absorbing")
        self.register_buffer("abar", torch.tensor(cosine_abar(timesteps), dtype=torch.float32))

    @property
    def mask(self) -> int:
        """Index of the masked state (absorbing only)."""
        return self.states

    def _pad(self, p0: Tensor) -> Tensor:
        return F.pad(p0, (0, self.K - p0.shape[-1]))

    def marginal(self, a: Tensor, p0: Tensor) -> Tensor:
        """``q(x_t | x_0)`` over the K states for a distribution ``p0`` ``(B, n, states)`` of x0 and kept fraction ``a`` ``(B,)``."""
        a = a.view(-1, 1, 1)
        p = a * self._pad(p0)
        if self.transition == "uniform":
            return p + (1 - a) / self.K
        return p + (1 - a) * F.one_hot(torch.tensor(self.mask, device=p0.device), self.K).float()

    def likelihood(self, a: Tensor, xt: Tensor) -> Tensor:
        """``q(x_t | x_s = j)`` for every j ``(B, n, K)``, where ``a = abar_t / abar_s`` is the kept fraction from s to t."""
        a = a.view(-1, 1, 1)
        same = F.one_hot(xt.long(), self.K).float()
        if self.transition == "uniform":
            return a * same + (1 - a) / self.K
        return a * same + (1 - a) * (xt == self.mask).float()[..., None]

    def posterior_logits(self, xt: Tensor, t: Tensor, s: Tensor, p0: Tensor) -> Tensor:
        """Log of ``p(x_s | x_t)`` (unnormalised) given a distribution ``p0`` of x0; exact ``q(x_s | x_t, x0)``
        when ``p0`` is one-hot."""
        at, as_ = self.abar[t], self.abar[s]
        ratio = at / as_.clamp_min(_TINY)
        return self.likelihood(ratio, xt).clamp_min(_TINY).log() + self.marginal(as_, p0).clamp_min(_TINY).log()

    def q_sample(self, x0: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``x_t ~ q(x_t | x_0)``."""
        probs = self.marginal(self.abar[t], F.one_hot(x0.long(), self.states).float())
        return categorical(probs.clamp_min(_TINY).log(), generator)

    def jump(self, xs: Tensor, s: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``x_t ~ q(x_t | x_s)`` for ``t > s`` (``s``, ``t`` ``(B,)``): noise a partly clean state further."""
        ratio = self.abar[t] / self.abar[s].clamp_min(_TINY)
        probs = self.marginal(ratio, F.one_hot(xs.long(), self.K).float())
        return categorical(probs.clamp_min(_TINY).log(), generator)

    def prior(self, shape: tuple[int, int], device: torch.device, generator: torch.Generator | None) -> Tensor:
        """``x_T``: uniform states, or every SNP masked."""
        if self.transition == "absorbing":
            return torch.full(shape, self.mask, dtype=torch.long, device=device)
        logits = torch.zeros(*shape, self.K, device=device)
        return categorical(logits, generator)

    def loss(self, denoiser: nn.Module, x0: Tensor, y: Tensor | None, z: Tensor | None,
             hybrid_lambda: float) -> dict[str, Tensor]:
        """Hybrid loss on a batch: ``vb + hybrid_lambda * ce`` (both in nats per SNP)."""
        b = x0.shape[0]
        x0 = x0.long()
        t = torch.randint(1, self.T + 1, (b,), device=x0.device)
        xt = self.q_sample(x0, t)
        logits = denoiser(xt, t, y, z)
        logp0 = F.log_softmax(logits.float(), -1)
        ce = F.nll_loss(logp0.transpose(1, 2), x0, reduction="none").mean(1)  # (B,)
        onehot = F.one_hot(x0, self.states).float()
        q = F.log_softmax(self.posterior_logits(xt, t, t - 1, onehot), -1)
        p = F.log_softmax(self.posterior_logits(xt, t, t - 1, logp0.exp()), -1)
        kl = (q.exp() * (q - p)).sum(-1).mean(1)
        vb = torch.where(t == 1, ce, kl).mean()
        ce = ce.mean()
        return {"loss": vb + hybrid_lambda * ce, "vb": vb.detach(), "ce": ce.detach()}


def categorical(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw per row of ``logits`` (last axis) by the Gumbel-max trick, seeded by ``generator``."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-20, 1.0)
    return (logits - torch.log(-torch.log(u))).argmax(-1)


def step_schedule(timesteps: int, steps: int) -> list[int]:
    """The ``steps + 1`` timesteps an ancestral sampler visits, from T down to 0, evenly skipped."""
    ts = np.unique(np.round(np.linspace(0, timesteps, min(steps, timesteps) + 1)).astype(int))[::-1]
    return [int(v) for v in ts]


class GenotypeD3PM(nn.Module):
    """D3PM model of genotypes: a :class:`DiscreteDiffusion` process and an x0-predicting denoiser.

    ``loss(x, y, z)`` takes rows ``x`` ``(B, n)``, population indices ``y`` and standardised phenotypes
    ``z`` (``-1`` / NaN: no condition) and drops conditions with probability ``cond_drop`` for classifier-free
    guidance; ``sample`` runs the ancestral sampler.

    With ``haplotypes`` the rows are haplotypes (0/1 alleles, each labelled with its carrier's conditions)
    and ``sample`` draws two haplotypes per individual under the same conditions and adds them: the
    dosage of a heterozygote then comes from pairing two whole haplotypes, as in a real genome, rather
    than from a per-SNP choice of the middle state.
    """

    def __init__(self, denoiser: nn.Module, timesteps: int, transition: str = "uniform", hybrid_lambda: float = 0.01,
                 cond_drop: float = 0.1, haplotypes: bool = False) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.haplotypes = bool(haplotypes)
        self.process = DiscreteDiffusion(timesteps, transition, 2 if self.haplotypes else STATES)
        self.hybrid_lambda, self.cond_drop = hybrid_lambda, cond_drop

    def loss(self, x: Tensor, y: Tensor | None = None, z: Tensor | None = None) -> dict[str, Tensor]:
        """The hybrid loss of one batch, with conditions dropped for guidance."""
        y, z = drop_conditions(y, z, self.cond_drop)
        denoiser = self._self_conditioned if getattr(self.denoiser, "self_cond", False) else self.denoiser
        return self.process.loss(denoiser, x, y, z, self.hybrid_lambda)

    def _self_conditioned(self, xt: Tensor, t: Tensor, y: Tensor | None, z: Tensor | None) -> Tensor:
        """Training call of a self-conditioning denoiser: half of the rows see the denoiser's own estimate of
        x0 from a first pass without gradients, the others none, as at the first step of sampling."""
        with torch.no_grad():
            prev = F.softmax(self.denoiser(xt, t, y, z).float(), -1)
        keep = torch.rand(xt.shape[0], device=xt.device) < 0.5
        return self.denoiser(xt, t, y, z, prev * keep[:, None, None])

    def _x0_logp(self, xt: Tensor, t: int, y: Tensor | None, z: Tensor | None, guidance: float,
                 temperature: float = 1.0, prev: Tensor | None = None) -> Tensor:
        tt = torch.full((xt.shape[0],), t, dtype=torch.long, device=xt.device)
        extra = (prev,) if getattr(self.denoiser, "self_cond", False) else ()
        cond = F.log_softmax(self.denoiser(xt, tt, y, z, *extra).float(), -1)
        if guidance > 0 and (y is not None or z is not None):
            free = F.log_softmax(self.denoiser(xt, tt, None, None, *extra).float(), -1)
            cond = F.log_softmax(cond + guidance * (cond - free), -1)
        return cond if temperature == 1.0 else F.log_softmax(cond / temperature, -1)

    @torch.no_grad()
    def sample(self, n: int, n_snps: int, y: Tensor | None = None, z: Tensor | None = None, steps: int = 50,
               guidance: float = 0.0, generator: torch.Generator | None = None, batch_size: int = 256,
               temperature: float = 1.0, correctors: int = 0, start: Tensor | None = None,
               start_t: int | None = None) -> Tensor:
        """``n`` genotype vectors ``(n, n_snps)`` (long, 0/1/2) by ancestral sampling over ``steps`` steps.

        ``temperature`` divides the (guided) x0 log-probabilities at every step; above 1 spreads the samples
        apart. ``correctors``: after each step from t to s > 0, that many times noise the state back to t
        (:meth:`DiscreteDiffusion.jump`) and take the step again. Every SNP of a step is drawn on its own
        given the state, so SNPs drawn together can disagree about which lineage they belong to; a repeat
        redraws them given a state that has begun to agree. A haplotype model draws ``2 n`` haplotypes
        (individual ``i`` gets rows ``i`` and ``n + i``, both under its conditions) and returns their sums.

        ``start`` (states ``(n, n_snps)``, or ``(2 n, n_snps)`` haplotypes for a haplotype model) with
        ``start_t`` in ``0..T`` begins the chain from ``start`` noised to step ``start_t`` instead of from
        pure noise, and visits only the schedule's steps below it (SDEdit; mosaic seeding uses it, see
        :mod:`omigen_genotype.mosaic`). ``start_t = 0`` returns ``start`` unchanged.
        """
        if self.haplotypes:
            return self.sample_haplotypes(n, n_snps, y, z, steps, guidance, generator, batch_size, temperature,
                                          correctors, start, start_t).sum(-1)
        return self._ancestral(n, n_snps, y, z, steps, guidance, generator, batch_size, temperature, correctors,
                               start, start_t)

    @torch.no_grad()
    def sample_haplotypes(self, n: int, n_snps: int, y: Tensor | None = None, z: Tensor | None = None,
                          steps: int = 50, guidance: float = 0.0, generator: torch.Generator | None = None,
                          batch_size: int = 256, temperature: float = 1.0, correctors: int = 0,
                          start: Tensor | None = None, start_t: int | None = None) -> Tensor:
        """The two haplotypes ``(n, n_snps, 2)`` (long, 0/1) of ``n`` individuals, from a haplotype model
        (``start``: ``(2 n, n_snps)`` haplotypes, rows ``i`` and ``n + i`` individual ``i``'s)."""
        if not self.haplotypes:
            raise ValueError("this model generates dosages, not haplotypes")
        y2 = None if y is None else torch.cat([y, y])
        z2 = None if z is None else torch.cat([z, z])
        h = self._ancestral(2 * n, n_snps, y2, z2, steps, guidance, generator, batch_size, temperature, correctors,
                            start, start_t)
        return torch.stack([h[:n], h[n:]], dim=-1)

    def _ancestral(self, n: int, n_snps: int, y: Tensor | None, z: Tensor | None, steps: int, guidance: float,
                   generator: torch.Generator | None, batch_size: int, temperature: float,
                   correctors: int = 0, start: Tensor | None = None, start_t: int | None = None) -> Tensor:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if correctors < 0:
            raise ValueError(f"correctors must be >= 0, got {correctors}")
        device = self.process.abar.device
        schedule = step_schedule(self.process.T, steps)
        if start is not None:
            if tuple(start.shape) != (n, n_snps):
                raise ValueError(f"start must have shape {(n, n_snps)}, got {tuple(start.shape)}")
            if start_t is None or not 0 <= int(start_t) <= self.process.T:
                raise ValueError(f"start_t must be from 0 to {self.process.T}, got {start_t}")
            start_t = int(start_t)
            schedule = [start_t] + [t for t in schedule if t < start_t]
        parts = []
        for lo in range(0, n, batch_size):  # batches bound memory; each uses the shared generator in order
            hi = min(n, lo + batch_size)
            yb = None if y is None else y[lo:hi].to(device)
            zb = None if z is None else z[lo:hi].to(device)
            if start is None:
                x = self.process.prior((hi - lo, n_snps), device, generator)
            else:
                x0 = start[lo:hi].to(device).long()
                x = self.process.q_sample(x0, torch.full((hi - lo,), start_t, dtype=torch.long, device=device),
                                          generator) if start_t else x0
            prev = None  # the last x0 estimate: the posterior uses it, a self-conditioning denoiser reads it
            for t, s in zip(schedule[:-1], schedule[1:]):
                logp0 = self._x0_logp(x, t, yb, zb, guidance, temperature, prev)
                prev = logp0.exp()
                if s == 0:
                    new = categorical(logp0, generator)
                    if self.process.transition == "absorbing":
                        new = torch.where(x == self.process.mask, new, x)
                    x = new
                else:
                    tt = torch.full((hi - lo,), t, dtype=torch.long, device=device)
                    ss = torch.full_like(tt, s)
                    x = categorical(self.process.posterior_logits(x, tt, ss, prev), generator)
                    for _ in range(correctors):
                        xt = self.process.jump(x, ss, tt, generator)
                        prev = self._x0_logp(xt, t, yb, zb, guidance, temperature, prev).exp()
                        x = categorical(self.process.posterior_logits(xt, tt, ss, prev), generator)
            parts.append(x)
        return torch.cat(parts) if parts else torch.zeros(0, n_snps, dtype=torch.long)


def build(cfg: Any, info: dict) -> GenotypeD3PM:
    """A :class:`GenotypeD3PM` for the data described by ``info`` (see :func:`omigen_genotype.pipeline.data_info`)."""
    from omigen_genotype.denoiser import PatchTransformer

    states = 2 if cfg.haplotypes else STATES
    in_states = states + (cfg.transition == "absorbing")
    den = PatchTransformer(info["n_snps"], np.asarray(info["positions"]), in_states, info["n_classes"],
                           info["phenotype"], dim=cfg.dim, layers=cfg.layers, heads=cfg.heads, dropout=cfg.dropout,
                           patch=cfg.patch_size, max_tokens=cfg.max_tokens, skip=cfg.skip, out_states=states,
                           self_cond=cfg.self_cond)
    if info.get("G") is not None:  # the training rows: dosages, or alleles for a haplotype model
        den.out.init_frequencies(np.asarray(info["G"]))
    return GenotypeD3PM(den, cfg.timesteps, cfg.transition, cfg.hybrid_lambda, cfg.cond_drop, cfg.haplotypes)
