"""Stage 2: a class-conditioned 1-D U-Net denoiser and the latent diffusion model around it.

The U-Net sees the normalised latent ``(B, C, L')``, the timestep and a label (``y < 0`` or
``None`` is the null label of classifier-free guidance). A sinusoidal position code is added
after the input convolution so the network knows where along the sequence it is: regulatory
motifs sit at preferred positions, which convolutions alone cannot locate. Lengths that the
U-Net cannot halve evenly are padded on the right and cropped back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omigen.config import DiffusionConfig
from omigen.diffusion import DiffusionModel
from omigen_dna_latent.config import DenoiserConfig


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


def sinusoidal(values: Tensor, dim: int) -> Tensor:
    """Transformer-style sinusoidal codes ``(len(values), dim)`` of integer positions or timesteps."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=values.device, dtype=torch.float32) / half)
    args = values.float()[:, None] * freqs[None]
    out = torch.cat([args.sin(), args.cos()], dim=1)
    return F.pad(out, (0, dim - 2 * half))


class ResBlock(nn.Module):
    """Residual block whose second half is scaled and shifted by the time/label embedding."""

    def __init__(self, cin: int, cout: int, emb: int, dropout: float) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(_norm(cin), nn.SiLU(), nn.Conv1d(cin, cout, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb, 2 * cout))
        self.out_norm = _norm(cout)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Dropout(dropout), nn.Conv1d(cout, cout, 3, padding=1))
        nn.init.zeros_(self.out_layers[-1].weight)
        nn.init.zeros_(self.out_layers[-1].bias)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.in_layers(x)
        scale, shift = self.emb(emb)[:, :, None].chunk(2, dim=1)
        h = self.out_layers(self.out_norm(h) * (1 + scale) + shift)
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the length axis, residual."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(x).transpose(1, 2)
        out, _ = self.attn(h, h, h, need_weights=False)
        return x + out.transpose(1, 2)


class UNet1d(nn.Module):
    """``forward(x, t, y) -> eps`` over latents ``(B, in_channels, L')``; ``n_classes = 0``: unconditional."""

    def __init__(self, in_channels: int, config: DenoiserConfig, n_classes: int = 0) -> None:
        super().__init__()
        config.validate()
        self.config, self.n_classes = config, int(n_classes)
        c = config.channels
        widths = [c * m for m in config.mults]
        emb = 4 * c
        self.time_mlp = nn.Sequential(nn.Linear(c, emb), nn.SiLU(), nn.Linear(emb, emb))
        # Index n_classes is the null label, so one table serves conditional and unconditional calls.
        self.label_emb = nn.Embedding(n_classes + 1, emb) if n_classes else None
        self.conv_in = nn.Conv1d(in_channels, c, 3, padding=1)
        self.pos = nn.Linear(c, c)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = c
        for i, w in enumerate(widths):
            self.down.append(nn.ModuleList(ResBlock(prev if j == 0 else w, w, emb, config.dropout)
                                           for j in range(config.blocks)))
            prev = w
            self.downsample.append(nn.Conv1d(w, w, 4, stride=2, padding=1) if i < len(widths) - 1 else nn.Identity())
        self.mid1 = ResBlock(prev, prev, emb, config.dropout)
        self.attn = SelfAttention(prev, config.heads) if config.attention else nn.Identity()
        self.mid2 = ResBlock(prev, prev, emb, config.dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(widths))):
            w = widths[i]
            self.upsample.append(nn.Conv1d(prev, w, 3, padding=1) if i < len(widths) - 1 else nn.Identity())
            inc = w if i < len(widths) - 1 else prev
            self.up.append(nn.ModuleList(ResBlock(inc + w if j == 0 else w, w, emb, config.dropout)
                                         for j in range(config.blocks)))
            prev = w
        self.out = nn.Sequential(_norm(prev), nn.SiLU(), nn.Conv1d(prev, in_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    @property
    def multiple(self) -> int:
        """Lengths are padded to a multiple of this."""
        return 2 ** (len(self.config.mults) - 1)

    def _embedding(self, t: Tensor, y: Tensor | None, batch: int) -> Tensor:
        emb = self.time_mlp(sinusoidal(t.expand(batch) if t.dim() == 0 else t, self.config.channels))
        if self.label_emb is not None:
            if y is None:
                idx = torch.full((batch,), self.n_classes, dtype=torch.long, device=emb.device)
            else:
                y = y.long().to(emb.device)
                idx = torch.where(y < 0, torch.full_like(y, self.n_classes), y)
            emb = emb + self.label_emb(idx)
        return emb

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        length = x.shape[-1]
        pad = (-length) % self.multiple
        h = F.pad(x, (0, pad)) if pad else x
        emb = self._embedding(t, y, x.shape[0])
        positions = torch.arange(h.shape[-1], device=x.device)
        h = self.conv_in(h) + self.pos(sinusoidal(positions, self.config.channels)).t()[None]
        skips = []
        for blocks, down in zip(self.down, self.downsample):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)
        for blocks, up in zip(self.up, self.upsample):
            skip = skips.pop()
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, size=skip.shape[-1], mode="nearest"))
            h = torch.cat([h, skip], dim=1)
            for block in blocks:
                h = block(h, emb)
        return self.out(h)[..., :length]


class LatentDiffusion(nn.Module):
    """A :class:`omigen.diffusion.DiffusionModel` over normalised latents, with the normalisation.

    ``latent_mean``/``latent_std`` (per channel, persistent buffers, so they travel in the
    checkpoint) map the autoencoder's latents to roughly unit scale and back.
    """

    kind = "dna-latent-diffusion"

    def __init__(self, denoiser: nn.Module, config: DiffusionConfig, latent_shape: tuple[int, int],
                 n_classes: int = 0) -> None:
        super().__init__()
        self.model = DiffusionModel(denoiser, config, tuple(latent_shape), n_classes=n_classes)
        c = int(latent_shape[0])
        self.register_buffer("latent_mean", torch.zeros(c, 1))
        self.register_buffer("latent_std", torch.ones(c, 1))

    @property
    def n_classes(self) -> int:
        """0 for an unconditional model."""
        return self.model.n_classes

    def set_normalisation(self, latents: Tensor) -> None:
        """Per-channel mean and standard deviation of ``latents`` ``(n, C, L')``."""
        flat = latents.detach().float().transpose(0, 1).reshape(latents.shape[1], -1)
        self.latent_mean.copy_(flat.mean(1, keepdim=True))
        self.latent_std.copy_(flat.std(1, keepdim=True).clamp_min(1e-6))

    def normalise(self, z: Tensor) -> Tensor:
        """Autoencoder latents -> diffusion space."""
        return (z - self.latent_mean.to(z.device)) / self.latent_std.to(z.device)

    def denormalise(self, x: Tensor) -> Tensor:
        """Diffusion space -> autoencoder latents."""
        return x * self.latent_std.to(x.device) + self.latent_mean.to(x.device)

    def loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Noise-prediction loss of a batch of normalised latents (labels ignored when unconditional)."""
        return self.model.loss(x, y)

    def sample(self, n: int, y=None, **options) -> Tensor:
        """``n`` autoencoder latents (denormalised), see :meth:`DiffusionModel.sample` for ``options``."""
        return self.denormalise(self.model.sample(n, y, **options))


def build_latent_diffusion(config: DenoiserConfig, info: dict) -> LatentDiffusion:
    """The ``dna-latent-denoiser`` model: ``info`` has ``latent_channels``, ``latent_length``,
    ``n_classes`` and ``diffusion`` (a :class:`DiffusionConfig` or its dict)."""
    diffusion = info.get("diffusion") or DiffusionConfig()
    if isinstance(diffusion, dict):
        diffusion = DiffusionConfig(**diffusion)
    c, length = int(info["latent_channels"]), int(info["latent_length"])
    n_classes = int(info.get("n_classes", 0))
    return LatentDiffusion(UNet1d(c, config, n_classes), diffusion, (c, length), n_classes)
