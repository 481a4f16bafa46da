"""Mosaic-seeded sampling: donor pools, tract copying, the sampler's start, and the pipeline option."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from omigen.errors import OmigenInputError
from omigen.run import run_pipeline
from omigen_genotype.config import DiffusionModelConfig
from omigen_genotype.d3pm import GenotypeD3PM
from omigen_genotype.mosaic import donor_pools, mosaic_haplotypes
from omigen_genotype.pipeline import sample
from omigen_genotype.vcf import read_vcf

from genotype.test_pipeline import _TINY, _toy_vcf


def test_donor_pools_keep_the_population_and_take_the_nearest_phenotypes():
    train_labels = np.array(["A"] * 6 + ["B"] * 4, dtype=object)
    train_pheno = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 11.0, 12.0, 13.0])
    pools = donor_pools(train_labels, train_pheno, np.array(["A", "B", "A"], dtype=object),
                        np.array([2.9, 12.2, -5.0]), 3, np.random.default_rng(0))
    assert sorted(pools[0]) == [2, 3, 4]  # |2.9 - 3| < |2.9 - 2| < |2.9 - 4|
    assert sorted(pools[1]) == [7, 8, 9]
    assert sorted(pools[2]) == [0, 1, 2]


def test_donor_pools_repeat_a_small_population_and_reject_a_missing_one():
    labels = np.array(["A"] * 5 + ["B"] * 2, dtype=object)
    pools = donor_pools(labels, None, np.array(["B"], dtype=object), None, 4, np.random.default_rng(0))
    assert set(pools[0]) == {5, 6} and len(pools[0]) == 4  # never borrowed from A
    unlabelled = donor_pools(np.zeros(7), None, np.zeros(3), None, 4, np.random.default_rng(0))
    assert unlabelled.shape == (3, 4) and len(set(unlabelled[0])) == 4
    with pytest.raises(OmigenInputError, match="population 'C'"):
        donor_pools(labels, None, np.array(["C"], dtype=object), None, 2, np.random.default_rng(0))
    with pytest.raises(OmigenInputError, match="donors must be >= 1"):
        donor_pools(labels, None, np.array(["A"], dtype=object), None, 0, np.random.default_rng(0))


def _labelled_haplotypes(n_train: int, snps: int) -> np.ndarray:
    """Haplotype ``h`` of individual ``d`` carries ``2 d + h + 1`` at every SNP, so each allele names its source."""
    return (np.arange(n_train)[:, None, None] * 2 + np.arange(2)[None, None, :] + 1
            + np.zeros((1, snps, 1), dtype=np.int64)).astype(np.int16)


def test_mosaic_copies_whole_tracts_from_the_pool_and_switches_as_often_as_asked():
    n_train, snps, n = 10, 2000, 400
    H = _labelled_haplotypes(n_train, snps)
    chrom = np.array(["1"] * 1000 + ["2"] * 1000)
    pos = np.r_[np.arange(1000) * 100, np.arange(1000) * 100]
    pools = np.tile(np.array([[1, 4, 7]]), (n, 1))
    out = mosaic_haplotypes(H, pools, chrom, pos, 5.0, np.random.default_rng(0)).astype(np.int64)
    assert out.shape == (2 * n, snps)
    donors, copies = (out - 1) // 2, (out - 1) % 2
    assert set(np.unique(donors)) == {1, 4, 7} and set(np.unique(copies)) == {0, 1}
    changes = (np.diff(out[:, :1000], axis=1) != 0).sum(1)
    # 5 switches per contig, each to one of 6 (donor, copy) sources: 5 x 5/6 visible changes on average.
    assert changes.mean() == pytest.approx(5 * 5 / 6, rel=0.1)
    # a new contig starts a new tract: chromosome 2's first source is independent of chromosome 1's last
    same = (out[:, 999] == out[:, 1000]).mean()
    assert same == pytest.approx(1 / 6, abs=0.06)
    no_switch = mosaic_haplotypes(H[:, :1000], pools, chrom[:1000], pos[:1000], 0.0, np.random.default_rng(1))
    assert (no_switch == no_switch[:, :1]).all()  # one tract per contig


def test_mosaic_rejects_unphased_input_and_negative_switches():
    pools = np.zeros((2, 1), dtype=np.int64)
    with pytest.raises(OmigenInputError, match="phased"):
        mosaic_haplotypes(np.zeros((3, 5), np.int8), pools, np.array(["1"] * 5), np.arange(5), 1.0,
                          np.random.default_rng(0))
    with pytest.raises(OmigenInputError, match="switches must be >= 0"):
        mosaic_haplotypes(np.zeros((3, 5, 2), np.int8), pools, np.array(["1"] * 5), np.arange(5), -1.0,
                          np.random.default_rng(0))


class _Copier(nn.Module):
    """A denoiser sure that x0 is the state it is shown: sampling then keeps whatever the start's noise left."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, t, y=None, z=None):
        return nn.functional.one_hot(x, 3).float() * 30.0 - 30.0


def test_sampler_starts_from_the_given_states_noised_to_start_t():
    model = GenotypeD3PM(nn.Identity(), timesteps=100, cond_drop=0.0)
    model.denoiser = _Copier()
    start = torch.full((50, 400), 2, dtype=torch.long)
    assert torch.equal(model.sample(50, 400, steps=20, start=start, start_t=0), start)
    gen = torch.Generator().manual_seed(0)
    low, high = (model.sample(50, 400, steps=20, start=start, start_t=t, generator=gen) for t in (20, 100))
    abar = model.process.abar
    # the forward noise to step 20 keeps abar + (1 - abar) / 3 of the start; from step 100 none is left
    assert (low == 2).float().mean().item() == pytest.approx((abar[20] + (1 - abar[20]) / 3).item(), abs=0.02)
    assert (high == 2).float().mean().item() == pytest.approx(1 / 3, abs=0.02)
    with pytest.raises(ValueError, match="start_t must be from 0 to 100"):
        model.sample(50, 400, start=start, start_t=101)
    with pytest.raises(ValueError, match="start must have shape"):
        model.sample(49, 400, start=start, start_t=10)


def test_mosaic_config_is_checked():
    with pytest.raises(OmigenInputError, match="mosaic_noise must be in"):
        DiffusionModelConfig(mosaic_noise=1.5)
    with pytest.raises(OmigenInputError, match="mosaic_donors must be a whole number"):
        DiffusionModelConfig(mosaic_donors=0)


@pytest.fixture(scope="module")
def phased_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mosaic")
    vcf = _toy_vcf(folder, phased=True)
    out = folder / "run"
    sets = {**_TINY, "model": "diffusion", "data": str(vcf),
            "diffusion": {**_TINY["diffusion"], "haplotypes": True, "mosaic": True, "mosaic_noise": 0.3,
                          "mosaic_switches": 2, "mosaic_donors": 4}}
    result, _ = run_pipeline("genotype", out_dir=out, sets=sets, progress=False)
    return vcf, out, result


def _tracts(hap: np.ndarray, donors: np.ndarray) -> int:
    """Fewest pieces ``hap`` splits into, each an exact copy of one of ``donors`` ``(k, snps)`` (greedy longest match)."""
    pieces, at = 0, 0
    while at < len(hap):
        run = np.cumprod(donors[:, at:] == hap[None, at:], axis=1).sum(1).max()
        at += max(int(run), 1)
        pieces += 1
    return pieces


def test_pipeline_seeds_the_sampler_with_training_tracts(phased_run):
    vcf, out, result = phased_run
    real = read_vcf(vcf)
    assert result.synthetic.G.shape == (12, real.G.shape[1])
    a, b = sample(out, 12, seed=2), sample(out, 12, seed=2)
    assert np.array_equal(a.haplotypes, b.haplotypes)
    copied = sample(out, 12, seed=2, mosaic_noise=0.0)  # no noise: the mosaic itself
    plain = sample(out, 12, seed=2, mosaic=False)

    def tracts(s):
        counts = []
        for i in range(len(s)):
            pop = real.haplotypes[real.labels == s.labels[i]]
            donors = np.concatenate([pop[..., 0], pop[..., 1]])
            counts += [_tracts(s.haplotypes[i, :, h], donors) for h in range(2)]
        return float(np.mean(counts))

    # 2 switches per contig on average: about 3 tracts, each copied whole from a donor of the population
    assert tracts(copied) <= 3.5 < tracts(plain)


def test_mosaic_sampling_needs_phased_training_data(vcf_unphased, tmp_path):
    sets = {**_TINY, "model": "diffusion", "data": str(vcf_unphased),
            "diffusion": {**_TINY["diffusion"], "mosaic": True}}
    with pytest.raises(OmigenInputError, match="mosaic sampling needs the phased training genotypes"):
        run_pipeline("genotype", out_dir=tmp_path / "run", sets=sets, progress=False)


@pytest.fixture(scope="module")
def vcf_unphased(tmp_path_factory):
    return _toy_vcf(tmp_path_factory.mktemp("unphased"), phased=False)


def test_sampling_a_mosaic_run_whose_input_is_gone_says_so(tmp_path):
    vcf = _toy_vcf(tmp_path, phased=True)
    out = tmp_path / "run"
    sets = {**_TINY, "model": "diffusion", "data": str(vcf),
            "diffusion": {**_TINY["diffusion"], "haplotypes": True, "mosaic": True, "mosaic_donors": 4}}
    run_pipeline("genotype", out_dir=out, sets=sets, progress=False)
    assert len(sample(out, 4, mosaic=False)) == 4
    vcf.unlink()
    assert len(sample(out, 4, mosaic=False)) == 4  # plain sampling needs only the run folder
    with pytest.raises(OmigenInputError, match="needs the run's training data"):
        sample(out, 4)
