"""Stage 1: a convolutional autoencoder between one-hot DNA and a continuous latent.

The encoder opens with parallel convolutions of several widths (DiscDiff's multi-kernel stem),
so short motifs and longer context are both seen at full resolution, then halves the length
``downsample`` times with strided convolutions; the decoder mirrors it with transposed
convolutions and ends in per-base logits over ``ACGT``. Any length divisible by
``2**downsample`` works, since every layer is a convolution.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omigen.errors import OmigenInputError
from omigen_dna_latent.config import AutoencoderConfig


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResBlock1d(nn.Module):
    """Two 3-wide convolutions with group norm and SiLU around an identity skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_norm(channels), nn.SiLU(), nn.Conv1d(channels, channels, 3, padding=1),
                                  _norm(channels), nn.SiLU(), nn.Conv1d(channels, channels, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class MultiKernelStem(nn.Module):
    """Parallel convolutions of the given odd widths over the one-hot input, concatenated and mixed."""

    def __init__(self, channels: int, kernels: list[int]) -> None:
        super().__init__()
        per = max(1, channels // len(kernels))
        self.branches = nn.ModuleList(nn.Conv1d(4, per, k, padding=k // 2) for k in kernels)
        self.mix = nn.Conv1d(per * len(kernels), channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.mix(F.silu(torch.cat([b(x) for b in self.branches], dim=1)))


class DnaAutoencoder(nn.Module):
    """One-hot ``(B, L, 4)`` -> latent ``(B, latent_channels, L / factor)`` -> logits ``(B, L, 4)``."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        c = config.channels
        enc: list[nn.Module] = [MultiKernelStem(c, list(config.kernels))]
        # Residual blocks run only below full resolution, where they cost a fraction as much.
        for _ in range(config.downsample):
            enc.append(nn.Conv1d(c, c, 4, stride=2, padding=1))
            enc += [ResBlock1d(c) for _ in range(config.blocks)]
        enc += [_norm(c), nn.SiLU(), nn.Conv1d(c, config.latent_channels, 1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv1d(config.latent_channels, c, 3, padding=1)]
        dec += [ResBlock1d(c) for _ in range(config.blocks)]
        for i in range(config.downsample):
            dec.append(nn.ConvTranspose1d(c, c, 4, stride=2, padding=1))
            if i < config.downsample - 1:
                dec += [ResBlock1d(c) for _ in range(config.blocks)]
        dec += [_norm(c), nn.SiLU(), nn.Conv1d(c, 4, 1)]
        self.decoder = nn.Sequential(*dec)

    @property
    def factor(self) -> int:
        """How many bases one latent position covers."""
        return 2 ** self.config.downsample

    def check_length(self, length: int) -> None:
        """A length the encoder cannot halve ``downsample`` times evenly is a user error."""
        if length < self.factor or length % self.factor:
            raise OmigenInputError(f"sequence length {length} is not a multiple of the autoencoder's "
                                   f"downsampling factor {self.factor} (set autoencoder.downsample)")

    def encode(self, onehot: Tensor) -> Tensor:
        """``(B, L, 4)`` float one-hot -> ``(B, latent_channels, L / factor)``."""
        return self.encoder(onehot.transpose(1, 2))

    def decode(self, z: Tensor) -> Tensor:
        """Latent -> per-base logits ``(B, L, 4)``."""
        return self.decoder(z).transpose(1, 2)

    def loss(self, codes: Tensor) -> dict[str, Tensor]:
        """Cross-entropy of reconstructing integer-coded sequences ``(B, L)`` through a noised latent."""
        z = self.encode(F.one_hot(codes.long(), 4).float())
        noisy = z + self.config.latent_noise * torch.randn_like(z) if self.config.latent_noise else z
        logits = self.decode(noisy)
        ce = F.cross_entropy(logits.reshape(-1, 4), codes.reshape(-1).long())
        acc = (logits.argmax(-1) == codes).float().mean()
        return {"loss": ce + self.config.latent_l2 * z.pow(2).mean(), "ce": ce.detach(), "acc": acc}


def one_hot_codes(codes: np.ndarray | Tensor) -> Tensor:
    """Integer codes ``(n, L)`` (A=0 .. T=3) as a float one-hot tensor ``(n, L, 4)``."""
    return F.one_hot(torch.as_tensor(np.asarray(codes), dtype=torch.long), 4).float()


@torch.no_grad()
def encode_codes(model: DnaAutoencoder, codes: np.ndarray, batch_size: int = 1024,
                 device: str | torch.device = "cpu") -> Tensor:
    """Latents ``(n, C, L / factor)`` of integer-coded sequences, in eval mode, ``batch_size`` at a time."""
    was = model.training
    model.eval()
    try:
        out = [model.encode(one_hot_codes(codes[i:i + batch_size]).to(device)).float().cpu()
               for i in range(0, len(codes), batch_size)]
    finally:
        model.train(was)
    c, f = model.config.latent_channels, model.factor
    return torch.cat(out) if out else torch.empty((0, c, codes.shape[1] // f if codes.ndim == 2 else 0))


@torch.no_grad()
def decode_latents(model: DnaAutoencoder, z: Tensor, batch_size: int = 1024,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """Integer codes ``(n, L)`` (argmax of the decoder's logits) of latents ``z``."""
    was = model.training
    model.eval()
    try:
        out = [model.decode(z[i:i + batch_size].to(device)).argmax(-1).cpu().numpy().astype(np.int8)
               for i in range(0, len(z), batch_size)]
    finally:
        model.train(was)
    return np.concatenate(out) if out else np.zeros((0, z.shape[-1] * model.factor), np.int8)


def reconstruction_accuracy(model: DnaAutoencoder, codes: np.ndarray, batch_size: int = 1024,
                            device: str | torch.device = "cpu") -> float:
    """Fraction of bases that survive encode -> decode -> argmax (no latent noise)."""
    if len(codes) == 0:
        raise OmigenInputError("no sequences to measure reconstruction accuracy on")
    back = decode_latents(model, encode_codes(model, codes, batch_size, device), batch_size, device)
    return float((back == np.asarray(codes)).mean())


def build_autoencoder(config: AutoencoderConfig, info: dict) -> DnaAutoencoder:
    """The ``dna-autoencoder`` model; ``info["length"]``, when given, is checked against the factor."""
    model = DnaAutoencoder(config)
    if info.get("length"):
        model.check_length(int(info["length"]))
    return model
