"""Denoisers for expression diffusion: ``denoiser(x_t, t, y) -> eps`` on a samples x genes matrix.

- :class:`GeneTransformer` for narrow panels: every gene is a token (a learned gene embedding plus
  the gene's value through a per-gene projection); self-attention runs across genes; the time
  step and the class condition every block through adaptive layer norm (shift, scale and a
  zero-initialised gate, so each block starts as the identity); each token predicts its gene's
  noise.
- :class:`ResidualMLP` for wide inputs (hundreds to thousands of genes): pre-norm residual blocks
  over the whole vector, conditioned the same way.

A label ``y < 0`` (or ``y=None``) selects a learned null class embedding, which is what
classifier-free guidance needs. This module imports torch at import time: only the pipeline,
which runs after a command has been chosen, imports it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from omigen.errors import OmigenInputError
from omigen_expression.config import DenoiserConfig

ARCHS = ("auto", "transformer", "mlp")
#: ``arch="auto"`` picks the transformer up to this many genes, the MLP above.
TRANSFORMER_MAX_GENES = 64


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (n, dim) of time steps ``t`` (n,), integer or fractional."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class Condition(nn.Module):
    """Time step + class -> one conditioning vector; class index ``n_classes`` is the null class."""

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.dim = dim
        self.n_classes = n_classes
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.classes = nn.Embedding(n_classes + 1, dim)

    def forward(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        n = t.shape[0]
        if t.ndim == 0:
            t = t.expand(n)
        null = torch.full((n,), self.n_classes, dtype=torch.long, device=t.device)
        if y is None:
            idx = null
        else:
            y = y.long().reshape(-1).to(t.device)
            idx = torch.where(y < 0, null, y.clamp(max=self.n_classes))
        return self.time(timestep_embedding(t.reshape(-1), self.dim)) + self.classes(idx)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    # one fused kernel instead of three passes over the (samples, genes, dim) activations
    return torch.addcmul(shift.unsqueeze(1), x, 1 + scale.unsqueeze(1))


class _Attention(nn.Module):
    """Multi-head self-attention across genes through ``scaled_dot_product_attention``.

    With 16 gene tokens per sample the work is many tiny matrix products; the fused kernel runs
    them about twice as fast on a CPU as ``nn.MultiheadAttention`` (which also re-packs q, k, v).
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n, g, d = h.shape
        q, k, v = self.qkv(h).view(n, g, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(n, g, d))


class _AdaLNBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = _Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        s1, sc1, g1, s2, sc2, g2 = self.ada(c).chunk(6, dim=-1)
        h = torch.addcmul(h, g1.unsqueeze(1), self.attn(_modulate(self.norm1(h), s1, sc1)))
        return torch.addcmul(h, g2.unsqueeze(1), self.mlp(_modulate(self.norm2(h), s2, sc2)))


class GeneTransformer(nn.Module):
    """Gene-token transformer denoiser: (x_t (n, G), t (n,), y (n,) or None) -> eps (n, G)."""

    def __init__(self, n_genes: int, n_classes: int, dim: int = 64, layers: int = 3, heads: int = 4,
                 mlp_ratio: float = 2.0, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise OmigenInputError(f"model dim {dim} must be divisible by heads {heads}")
        self.n_genes = n_genes
        self.gene = nn.Parameter(torch.randn(n_genes, dim) * 0.02)
        # value of gene g -> x * w_g + b_g: each gene reads its value through its own projection
        self.value_w = nn.Parameter(torch.randn(n_genes, dim) / math.sqrt(dim))
        self.value_b = nn.Parameter(torch.zeros(n_genes, dim))
        self.cond = Condition(dim, n_classes)
        self.blocks = nn.ModuleList(_AdaLNBlock(dim, heads, mlp_ratio, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.out = nn.Linear(dim, 1)
        for layer in (self.final_ada[1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cond(t, y)
        h = x.unsqueeze(-1) * self.value_w + self.value_b + self.gene
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_ada(c).chunk(2, dim=-1)
        return self.out(_modulate(self.norm(h), shift, scale)).squeeze(-1)


class _ResBlock(nn.Module):
    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.ada = nn.Linear(hidden, 3 * hidden)
        self.ff = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.SiLU(), nn.Dropout(dropout),
                                nn.Linear(2 * hidden, hidden))
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.ada(c).chunk(3, dim=-1)
        return h + gate * self.ff(self.norm(h) * (1 + scale) + shift)


class ResidualMLP(nn.Module):
    """Residual-MLP denoiser for wide inputs: (x_t (n, G), t, y) -> eps (n, G)."""

    def __init__(self, n_genes: int, n_classes: int, hidden: int = 512, blocks: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.n_genes = n_genes
        self.inp = nn.Linear(n_genes, hidden)
        self.cond = Condition(hidden, n_classes)
        self.cond_act = nn.SiLU()
        self.blocks = nn.ModuleList(_ResBlock(hidden, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, n_genes)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cond_act(self.cond(t, y))
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, c)
        return self.out(self.norm(h))


def resolve_arch(arch: str, n_genes: int) -> str:
    """``auto`` -> ``transformer`` for <= 64 genes, else ``mlp``; other values checked."""
    if arch not in ARCHS:
        raise OmigenInputError(f"denoiser.arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if arch == "auto":
        return "transformer" if n_genes <= TRANSFORMER_MAX_GENES else "mlp"
    return arch


def build_denoiser(config: DenoiserConfig, info: dict) -> nn.Module:
    """Build the denoiser ``config`` describes for ``info["n_genes"]`` genes and ``info["n_classes"]`` classes."""
    n_genes, n_classes = int(info["n_genes"]), int(info.get("n_classes", 0))
    arch = resolve_arch(config.arch, n_genes)
    if arch == "transformer":
        return GeneTransformer(n_genes, n_classes, dim=config.dim, layers=config.layers, heads=config.heads,
                               mlp_ratio=config.mlp_ratio, dropout=config.dropout)
    return ResidualMLP(n_genes, n_classes, hidden=config.hidden, blocks=config.blocks, dropout=config.dropout)
