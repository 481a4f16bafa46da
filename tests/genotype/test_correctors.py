"""Corrector steps of the D3PM sampler: the forward jump, and what repeating a step buys on lineages."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from omigen.errors import OmigenInputError
from omigen_genotype.config import DiffusionModelConfig
from omigen_genotype.d3pm import DiscreteDiffusion, GenotypeD3PM


@pytest.mark.parametrize("transition", ["uniform", "absorbing"])
def test_jump_keeps_the_fraction_the_schedule_says(transition):
    process = DiscreteDiffusion(20, transition)
    n = 200_000
    xs = torch.zeros(1, n, dtype=torch.long)
    s, t = torch.tensor([5]), torch.tensor([12])
    a = (process.abar[12] / process.abar[5]).item()
    xt = process.jump(xs, s, t, torch.Generator().manual_seed(0))
    kept = (xt == 0).float().mean().item()
    if transition == "uniform":
        assert kept == pytest.approx(a + (1 - a) / 3, abs=0.005)
        assert (xt == 1).float().mean().item() == pytest.approx((1 - a) / 3, abs=0.005)
    else:
        assert kept == pytest.approx(a, abs=0.005)
        assert set(xt.unique().tolist()) == {0, process.mask}
        masked = torch.full((1, 50), process.mask)
        assert torch.equal(process.jump(masked, s, t), masked)  # a masked SNP stays masked


class _Lineages(nn.Module):
    """The exact x0 posterior of genomes drawn uniformly from a few fixed lineages, under uniform transitions."""

    def __init__(self, lineages: torch.Tensor, abar: torch.Tensor):
        super().__init__()
        self.lineages, self.abar = lineages, abar
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, t, y=None, z=None):
        a = self.abar[t].view(-1, 1, 1)
        match = (x[:, None, :] == self.lineages[None]).float()  # (B, lineages, SNPs)
        weight = torch.softmax(torch.log(a * match + (1 - a) / 3).sum(-1), 1)
        p = torch.einsum("bm,mnk->bnk", weight, nn.functional.one_hot(self.lineages, 3).float())
        return torch.log(p + 1e-12)


def _mismatches(correctors: int) -> float:
    """Mean number of SNPs by which a sampled genome differs from its nearest lineage: 16 lineages that share
    every SNP but 5 private minor alleles each, 5 sampling steps."""
    lineages = torch.zeros(16, 200, dtype=torch.long)
    for m in range(16):
        lineages[m, m * 12:m * 12 + 5] = 2
    model = GenotypeD3PM(nn.Identity(), timesteps=100, cond_drop=0.0)
    model.denoiser = _Lineages(lineages, model.process.abar)
    x = model.sample(300, 200, steps=5, generator=torch.Generator().manual_seed(0), correctors=correctors)
    return (x[:, None, :] != lineages[None]).sum(-1).min(1).values.float().mean().item()


def test_correctors_mend_genomes_that_mix_lineages():
    # The posterior is exact, so every error is the sampler's: SNPs drawn together in one step pick minor
    # alleles of different lineages. Repeating each step from a re-noised state lets them agree.
    plain, corrected = _mismatches(0), _mismatches(4)
    assert plain > 0.3
    assert corrected < 0.5 * plain


def test_correctors_are_validated():
    with pytest.raises(OmigenInputError, match="correctors"):
        DiffusionModelConfig(correctors=-1)
    model = GenotypeD3PM(nn.Identity(), timesteps=10, cond_drop=0.0)
    with pytest.raises(ValueError, match="correctors"):
        model.sample(2, 3, correctors=-1)
