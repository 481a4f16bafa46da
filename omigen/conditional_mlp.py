"""Pieces shared by the host's VAE and WGAN-GP: a class-conditioned MLP, label checks, chunked draws.

A conditional network reads its class as a one-hot vector of ``n_classes + 1`` entries appended
to its input; the last entry is the "no class" slot, used for labels ``< 0`` (:data:`NULL_LABEL`)
and for the training labels dropped with probability ``cond_drop``, so one network also learns
the unconditional distribution. An unconditional network (``n_classes = 0``) reads no label.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omigen.config import NULL_LABEL
from omigen.errors import OmigenInputError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "silu": nn.SiLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
}


class ConditionalMLP(nn.Module):
    """``(x (B, in_dim), y (B,) or None) -> (B, out_dim)`` through ``hidden`` layers.

    ``y`` holds class indices ``0 .. n_classes - 1``; any negative value (or ``y=None``) selects
    the "no class" slot. ``n_classes = 0`` ignores ``y``. Weights start variance-preserving, so
    the output's initial scale is about ``out_gain`` times the input's.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int], n_classes: int = 0,
                 activation: str = "silu", dropout: float = 0.0, out_gain: float = 1.0) -> None:
        super().__init__()
        if n_classes < 0:
            raise ValueError(f"n_classes must be >= 0, got {n_classes}")
        self.n_classes = int(n_classes)
        cond = self.n_classes + 1 if self.n_classes else 0
        layers: list[nn.Module] = []
        width = in_dim + cond
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)
        self._init_weights(0.2 if activation == "leaky_relu" else 0.0, out_gain)

    def _init_weights(self, slope: float, out_gain: float) -> None:
        # Variance-preserving (He) initialisation: PyTorch's default shrinks the signal about
        # threefold a layer, so a fresh generator would emit a near-constant and spend hundreds of
        # steps widening its output before it could match the data's spread.
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        for layer in linears[:-1]:
            nn.init.kaiming_normal_(layer.weight, a=slope, nonlinearity="leaky_relu")
            nn.init.zeros_(layer.bias)
        nn.init.normal_(linears[-1].weight, std=out_gain * linears[-1].in_features ** -0.5)
        nn.init.zeros_(linears[-1].bias)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        if self.n_classes:
            x = torch.cat([x, self.one_hot(y, x.shape[0], x.device).to(x.dtype)], dim=1)
        return self.net(x)

    def one_hot(self, y: Tensor | None, n: int, device: torch.device) -> Tensor:
        """The ``(n, n_classes + 1)`` condition block of labels ``y`` (negative or None: the last column)."""
        return F.one_hot(class_index(y, n, self.n_classes, device), self.n_classes + 1).float()


def class_index(y: Tensor | None, n: int, n_classes: int, device: torch.device) -> Tensor:
    """Labels ``y`` as indices ``(n,)`` into ``n_classes + 1`` slots: negative labels or None give ``n_classes``."""
    if y is None:
        return torch.full((n,), n_classes, dtype=torch.long, device=device)
    y = y.to(device).long()
    return torch.where(y < 0, torch.full_like(y, n_classes), y)


def training_labels(y: Tensor | None, n_classes: int, cond_drop: float, n: int) -> Tensor | None:
    """A training batch's labels with a ``cond_drop`` share set to :data:`NULL_LABEL` (global RNG).

    ``None`` for an unconditional model, whatever ``y`` is; a conditional model needs labels,
    each below ``n_classes`` (negative: no class). They are not range-checked here, which would
    cost an accelerator sync every step: the loader that makes them guarantees the range.
    """
    if n_classes == 0:
        return None
    if y is None:
        raise ValueError("a class-conditional model needs labels in each training batch")
    y = y.long().reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"got {y.shape[0]} labels for a batch of {n}")
    if cond_drop > 0:
        drop = torch.rand(n, device=y.device) < cond_drop
        y = torch.where(drop, torch.full_like(y, NULL_LABEL), y)
    return y


def check_labels(y: Any, n: int, n_classes: int) -> Tensor | None:
    """``y`` (None, one int, or ``n`` ints) as a checked LongTensor ``(n,)``; None when unconditional.

    A conditional model given ``y=None`` samples unconditionally (all :data:`NULL_LABEL`).
    """
    if n_classes == 0:
        if y is not None:
            raise OmigenInputError("this model is unconditional: it takes no labels")
        return None
    if y is None:
        return torch.full((n,), NULL_LABEL, dtype=torch.long)
    arr = np.asarray(y.detach().cpu() if isinstance(y, Tensor) else y)
    if arr.dtype.kind not in "iu":
        raise OmigenInputError(f"labels must be integers, got {arr.dtype}")
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    if arr.shape != (n,):
        raise OmigenInputError(f"expected one label or {n} labels, got shape {arr.shape}")
    bad = arr[(arr != NULL_LABEL) & ((arr < 0) | (arr >= n_classes))]
    if bad.size:
        raise OmigenInputError(f"label {int(bad[0])} out of range: the model has {n_classes} classes "
                               f"(0..{n_classes - 1}, or {NULL_LABEL} for none)")
    return torch.as_tensor(arr, dtype=torch.long)


def check_count(n: Any, batch_size: Any) -> int:
    """``n`` as an int after checking it and ``batch_size``; errors name the bad value."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise OmigenInputError(f"number of samples must be a non-negative integer, got {n!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise OmigenInputError(f"batch_size must be at least 1, got {batch_size!r}")
    return int(n)


def randn(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal draws made on ``generator``'s device, so a CPU seed gives the same numbers anywhere."""
    where = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=where).to(device)


@torch.no_grad()
def draw_in_chunks(model: nn.Module, n: int, labels: Tensor | None, batch_size: int, n_features: int,
                   draw: Callable[[int, Tensor | None], Tensor]) -> Tensor:
    """``draw(m, y)`` on chunks of at most ``batch_size``, in eval mode, as one float32 CPU tensor ``(n, F)``.

    ``labels`` follow their chunk to ``model``'s device; the model's previous mode is restored.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            yb = None if labels is None else labels[start:start + m].to(device)
            chunks.append(draw(m, yb).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty((0, n_features))
