"""Recombination augmentation of training haplotypes.

A synthetic haplotype should look like a new draw from the population: a mosaic of segments that the
cohort's haplotypes share, with each rare allele on the background that carries it. A cohort of a few hundred
people holds few such mosaics, and a denoiser trained on them alone learns to treat an unfamiliar pairing of
segments as noise and keeps too few rare alleles. Crossing training haplotypes over, as meiosis does, shows
the model new mosaics in which every segment is still real.

Crossovers fall between adjacent SNPs with probability ``1 - exp(-crossovers * gap / span)``, so a
recombinant has ``crossovers`` switches over the region on average, placed by base-pair distance (a uniform
recombination rate, as in the simulated default data). A recombinant keeps its population: its partner comes
from the same population. Its phenotype is dropped (NaN, "no condition"): a trait belongs to a whole
genome, not to one recombinant haplotype.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def switch_probabilities(positions: np.ndarray, crossovers: float) -> np.ndarray:
    """Probability ``(n - 1,)`` of a crossover between each pair of adjacent SNPs, for ``crossovers``
    expected switches over the span of ``positions`` (base pairs, sorted)."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.size < 2:
        return np.zeros(0, dtype=np.float32)
    gap = np.diff(pos).clip(min=0.0)
    span = max(float(pos[-1] - pos[0]), 1.0)
    return (-np.expm1(-crossovers * gap / span)).astype(np.float32)


def recombine(x: Tensor, y: Tensor | None, z: Tensor | None, switch: Tensor, fraction: float = 0.5,
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
    """Replace about ``fraction`` of the haplotypes ``x`` ``(B, n)`` by recombinants with another haplotype
    of the batch from the same population ``y``.

    ``switch`` ``(n - 1,)`` holds the crossover probabilities between adjacent SNPs
    (:func:`switch_probabilities`). Returns the rows and the phenotypes ``z`` with those of the recombinants
    set to NaN. Rows whose drawn partner is of another population stay as they are.
    """
    b, n = x.shape
    if b < 2 or n < 2 or fraction <= 0:
        return x, z
    dev = x.device
    partner = torch.randperm(b, generator=generator, device=dev)
    chosen = torch.rand(b, generator=generator, device=dev) < fraction
    chosen &= partner != torch.arange(b, device=dev)
    if y is not None:
        chosen &= y == y[partner]
    cross = torch.rand(b, n - 1, generator=generator, device=dev) < switch.to(dev)
    start = torch.rand(b, 1, generator=generator, device=dev) < 0.5  # which parent the first segment comes from
    parity = torch.cat([start, start ^ (torch.cumsum(cross.long(), 1) % 2).bool()], 1)
    mixed = torch.where(parity, x[partner], x)
    out = torch.where(chosen[:, None], mixed, x)
    if z is not None:
        z = torch.where(chosen, torch.full_like(z, float("nan")), z)
    return out, z
