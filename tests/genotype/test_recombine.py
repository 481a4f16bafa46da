"""Recombination augmentation: crossovers placed by distance, partners from one population, phenotypes dropped."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from omigen.errors import OmigenInputError
from omigen_genotype.config import DiffusionModelConfig
from omigen_genotype.d3pm import GenotypeD3PM
from omigen_genotype.pipeline import builder
from omigen_genotype.recombine import recombine, switch_probabilities


def test_switch_probabilities_follow_distance_and_sum_to_the_crossovers():
    pos = np.array([0, 10, 20, 20, 1000])
    p = switch_probabilities(pos, 2.0)
    assert p.shape == (4,) and p[2] == 0.0  # two SNPs at one position never cross over
    assert p[0] == pytest.approx(p[1]) and p[3] > 10 * p[0]
    # For small probabilities their sum is the expected number of crossovers.
    dense = switch_probabilities(np.arange(0, 10_000, 5), 3.0)
    assert dense.sum() == pytest.approx(3.0, rel=1e-3)
    assert switch_probabilities(np.array([5]), 3.0).size == 0


def _colours(b: int, n: int) -> torch.Tensor:
    """Row i holds the value i everywhere, so each entry of a recombinant names the row it came from."""
    return torch.arange(b)[:, None].expand(b, n).clone()


def test_recombinants_are_mosaics_of_two_haplotypes_of_one_population():
    b, n = 400, 200
    x = _colours(b, n)
    y = torch.arange(b) % 2
    z = torch.randn(b)
    switch = torch.from_numpy(switch_probabilities(np.arange(n) * 100, 4.0))
    out, z2 = recombine(x, y, z, switch, fraction=1.0, generator=torch.Generator().manual_seed(0))
    changed = (out != x).any(1)
    assert changed.float().mean() > 0.3  # half of the drawn partners share the population
    for i in range(b):
        sources = out[i].unique()
        assert len(sources) <= 2 and i in sources.tolist()
        assert bool((y[sources] == y[i]).all())  # the partner is of the same population
    # Recombinants lose their phenotype; untouched rows keep theirs.
    assert torch.isnan(z2[changed]).all() and torch.equal(z2[~changed & ~torch.isnan(z2)], z[~changed & ~torch.isnan(z2)])
    switches = (out[changed, 1:] != out[changed, :-1]).sum(1).float()
    assert 3.0 < switches.mean() < 5.0, switches.mean()  # 4 expected crossovers; a few fall inside one segment's run


def test_recombination_fraction_and_determinism():
    x = _colours(1000, 50)
    switch = torch.from_numpy(switch_probabilities(np.arange(50), 5.0))
    none, _ = recombine(x, None, None, switch, fraction=0.0)
    assert torch.equal(none, x)
    a, _ = recombine(x, None, None, switch, fraction=0.5, generator=torch.Generator().manual_seed(3))
    b, _ = recombine(x, None, None, switch, fraction=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert 0.4 < (a != x).any(1).float().mean() < 0.5  # a recombinant can match its own row when no switch lands


def test_recombination_needs_a_haplotype_model():
    with pytest.raises(OmigenInputError, match="haplotypes"):
        DiffusionModelConfig(recombine=2.0)
    with pytest.raises(OmigenInputError, match="recombine"):
        DiffusionModelConfig(haplotypes=True, recombine=-1.0)
    with pytest.raises(ValueError, match="haplotype"):
        GenotypeD3PM(torch.nn.Identity(), 10, switch=np.zeros(3))


def test_a_recombining_model_trains_and_keeps_its_checkpoint_format():
    rng = np.random.default_rng(0)
    H = rng.integers(0, 2, size=(64, 12)).astype(np.int8)
    info = {"n_snps": 12, "positions": list(range(0, 1200, 100)), "n_classes": 2, "phenotype": True, "G": H}
    cfg = DiffusionModelConfig(dim=16, layers=1, heads=2, timesteps=10, sample_steps=5, haplotypes=True)
    torch.manual_seed(0)
    plain = builder("diffusion")(cfg, info)
    torch.manual_seed(0)
    model = builder("diffusion")(replace(cfg, recombine=3.0), info)
    assert model.switch is not None and model.switch.shape == (11,)
    assert set(model.state_dict()) == set(plain.state_dict())  # the crossover table is not saved
    x = torch.from_numpy(H).long()
    y = torch.from_numpy(rng.integers(0, 2, 64))
    out = model.loss(x, y, torch.randn(64))
    assert torch.isfinite(out["loss"]) and out["loss"].requires_grad
