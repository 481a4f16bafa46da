"""Layers shared by the genotype models: SNP patches as tokens, condition embeddings, the patch transformer.

A chromosome of ``n`` SNPs is cut into ``T = ceil(n / P)`` patches of ``P`` consecutive SNPs. Each patch is
one token: a per-patch linear map (its own weights for every SNP, so no SNP shares parameters with another)
takes the patch's one-hot states to a ``dim``-vector, and the reverse map gives per-SNP logits. Everything
between those maps works on ``T`` tokens, which :func:`patch_size` keeps at or below ``max_tokens``; memory
and time then grow linearly with the number of SNPs, and attention costs ``O(max_tokens^2)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: Genotype states (alt-allele dosage 0, 1, 2).
STATES = 3


def patch_size(n_snps: int, patch: int = 0, max_tokens: int = 128) -> int:
    """SNPs per token: ``patch`` when given, else the smallest size giving at most ``max_tokens`` tokens."""
    if patch > 0:
        return int(min(patch, max(n_snps, 1)))
    return max(1, -(-n_snps // max_tokens))


class PatchIn(nn.Module):
    """One-hot states ``(B, n, S)`` -> tokens ``(B, T, dim)`` through a separate linear map per patch."""

    def __init__(self, n_snps: int, size: int, states: int, dim: int) -> None:
        super().__init__()
        self.n, self.size, self.states = n_snps, size, states
        self.tokens = -(-n_snps // size)
        fan_in = size * states
        self.weight = nn.Parameter(torch.randn(self.tokens, fan_in, dim) / math.sqrt(fan_in))
        self.bias = nn.Parameter(torch.zeros(self.tokens, dim))

    def forward(self, onehot: Tensor) -> Tensor:
        b = onehot.shape[0]
        pad = self.tokens * self.size - self.n
        if pad:
            onehot = F.pad(onehot, (0, 0, 0, pad))
        flat = onehot.reshape(b, self.tokens, self.size * self.states)
        return torch.einsum("btk,tkd->btd", flat, self.weight) + self.bias


class PatchOut(nn.Module):
    """Tokens ``(B, T, dim)`` -> per-SNP logits ``(B, n, out)``; the bias is a learned per-SNP logit offset."""

    def __init__(self, n_snps: int, size: int, dim: int, out: int = STATES) -> None:
        super().__init__()
        self.n, self.size, self.out = n_snps, size, out
        self.tokens = -(-n_snps // size)
        self.weight = nn.Parameter(torch.randn(self.tokens, dim, size * out) / math.sqrt(dim) * 0.1)
        self.bias = nn.Parameter(torch.zeros(self.tokens, size * out))

    def forward(self, h: Tensor) -> Tensor:
        y = torch.einsum("btd,tdk->btk", h, self.weight) + self.bias
        return y.reshape(h.shape[0], self.tokens * self.size, self.out)[:, :self.n]

    def init_frequencies(self, G: np.ndarray) -> None:
        """Start the per-SNP offsets at the log genotype frequencies of ``G`` (n_samples x n_snps)."""
        freq = np.stack([(G == k).mean(0) for k in range(self.out)], axis=1) + 1.0 / (len(G) + 2)
        logp = np.log(freq / freq.sum(1, keepdims=True))
        full = np.zeros((self.tokens * self.size, self.out), dtype=np.float32)
        full[:self.n] = logp
        with torch.no_grad():
            self.bias.copy_(torch.from_numpy(full.reshape(self.tokens, self.size * self.out)))


def sinusoidal(values: Tensor, dim: int, scale: float = 10000.0) -> Tensor:
    """Sinusoidal features ``(len(values), dim)`` of real numbers (timesteps or scaled positions)."""
    half = dim // 2
    freqs = torch.exp(-math.log(scale) * torch.arange(half, device=values.device, dtype=torch.float32) / half)
    angles = values.float()[:, None] * freqs[None]
    emb = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(emb, (0, dim - 2 * half))


def patch_positions(positions: np.ndarray, size: int, tokens: int) -> np.ndarray:
    """Mean base-pair position of each patch scaled to [0, 1000] (the span of the input)."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.size == 0:
        return np.zeros(tokens, dtype=np.float32)
    padded = np.concatenate([pos, np.full(tokens * size - pos.size, pos[-1])])
    mid = padded.reshape(tokens, size).mean(1)
    span = max(float(pos.max() - pos.min()), 1.0)
    return ((mid - pos.min()) / span * 1000.0).astype(np.float32)


class Condition(nn.Module):
    """Embeds a population class (``y < 0``: none) and a standardised phenotype (NaN: none) into ``dim``.

    A missing condition maps to its own learned vector, which is what classifier-free guidance drops to.
    """

    def __init__(self, n_classes: int, phenotype: bool, dim: int) -> None:
        super().__init__()
        self.n_classes, self.phenotype = n_classes, phenotype
        self.classes = nn.Embedding(n_classes + 1, dim) if n_classes > 0 else None
        if phenotype:
            self.pheno = nn.Sequential(nn.Linear(1, dim), nn.SiLU(), nn.Linear(dim, dim))
            self.pheno_null = nn.Parameter(torch.zeros(dim))
        self.dim = dim

    def forward(self, y: Tensor | None, z: Tensor | None, batch: int, device: torch.device) -> Tensor:
        out = torch.zeros(batch, self.dim, device=device)
        if self.classes is not None:
            y = torch.full((batch,), -1, device=device, dtype=torch.long) if y is None else y.long()
            out = out + self.classes(torch.where(y < 0, torch.full_like(y, self.n_classes), y))
        if self.phenotype:
            z = torch.full((batch,), float("nan"), device=device) if z is None else z.float()
            missing = torch.isnan(z)
            emb = self.pheno(torch.nan_to_num(z, nan=0.0)[:, None])
            out = out + torch.where(missing[:, None], self.pheno_null.expand_as(emb), emb)
        return out


def drop_conditions(y: Tensor | None, z: Tensor | None, p: float) -> tuple[Tensor | None, Tensor | None]:
    """Drop each condition independently with probability ``p`` (classifier-free guidance training)."""
    if p <= 0:
        return y, z
    if y is not None:
        y = torch.where(torch.rand(y.shape, device=y.device) < p, torch.full_like(y, -1), y)
    if z is not None:
        z = torch.where(torch.rand(z.shape, device=z.device) < p, torch.full_like(z, float("nan")), z)
    return y, z


class SnpSkip(nn.Module):
    """Per-SNP path from the noisy state straight to that SNP's x0 logits, scaled by a learned function of time.

    A patch token squeezes its SNPs into ``dim`` numbers, so the token path alone cannot copy a nearly clean
    input: without this path a 128-wide, 115-SNP-patch denoiser changed about 1% of the SNPs of a clean
    genome at the last step and kept only ~79% of its rare minor alleles. Each SNP gets its own
    ``in_states x out_states`` table of logits (initialised to zero, so training starts from the token path alone).
    """

    def __init__(self, n_snps: int, in_states: int, dim: int, out_states: int = STATES) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(n_snps, in_states, out_states))
        self.gate = nn.Linear(dim, 1)

    def forward(self, x: Tensor, time: Tensor) -> Tensor:
        """Logits ``(B, n, out_states)`` for states ``x`` ``(B, n)`` and time features ``time`` ``(B, dim)``."""
        snp = torch.arange(x.shape[1], device=x.device)
        return self.table[snp[None], x.long()] * self.gate(time)[:, :, None]


class PatchTransformer(nn.Module):
    """x0-predicting denoiser: patch tokens + learned and genomic-position encodings, time and condition
    embeddings added to every token, a pre-norm transformer encoder along the chromosome, per-SNP logits,
    and optionally (``skip``) a per-SNP path from each SNP's noisy state to its own logits.

    ``out_states`` is 3 for dosages and 2 for haplotypes (alleles). With ``self_cond`` each SNP's input is its
    noisy state next to a previous estimate of its x0 probabilities (``prev``; zeros when there is none), the
    self-conditioning of Chen et al. (2023, "Analog Bits"): the sampler feeds back its last estimate, so a
    lineage chosen at one step need not be read again from the noise at the next."""

    def __init__(self, n_snps: int, positions: np.ndarray, in_states: int, n_classes: int, phenotype: bool,
                 dim: int = 128, layers: int = 3, heads: int = 4, dropout: float = 0.0, patch: int = 0,
                 max_tokens: int = 128, skip: bool = False, out_states: int = STATES, self_cond: bool = False) -> None:
        super().__init__()
        size = patch_size(n_snps, patch, max_tokens)
        self.self_cond, self.out_states = bool(self_cond), out_states
        self.inp = PatchIn(n_snps, size, in_states + (out_states if self.self_cond else 0), dim)
        self.out = PatchOut(n_snps, size, dim, out_states)
        tokens = self.inp.tokens
        self.register_buffer("genomic", sinusoidal(torch.from_numpy(patch_positions(positions, size, tokens)),
                                                   dim, scale=2000.0))
        self.pos = nn.Parameter(torch.zeros(tokens, dim))
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.cond = Condition(n_classes, phenotype, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.skip = SnpSkip(n_snps, in_states, dim, out_states) if skip else None
        self.in_states, self.dim = in_states, dim

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None, z: Tensor | None = None,
                prev: Tensor | None = None) -> Tensor:
        """Logits of x0 ``(B, n, out_states)`` from states ``x`` ``(B, n)`` at timesteps ``t`` ``(B,)``, and with
        ``self_cond`` a previous estimate ``prev`` ``(B, n, out_states)`` of the x0 probabilities."""
        b = x.shape[0]
        onehot = F.one_hot(x.long(), self.in_states).float()
        if self.self_cond:
            prev = onehot.new_zeros(*x.shape, self.out_states) if prev is None else prev.to(onehot.dtype)
            onehot = torch.cat([onehot, prev], -1)
        h = self.inp(onehot)
        h = h + self.pos + self.genomic
        time = self.time(sinusoidal(t, self.dim))
        h = self.encoder(h + (time + self.cond(y, z, b, x.device))[:, None, :])
        logits = self.out(self.norm(h))
        return logits if self.skip is None else logits + self.skip(x, time)
