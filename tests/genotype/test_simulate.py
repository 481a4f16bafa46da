"""The simulated default data: seeded, cached by its parameters, read through the real VCF reader."""

import numpy as np
import pytest

from omigen.errors import OmigenInputError
from omigen_genotype.simulate import SimulationParams, cache_key, load_default, simulate_default, simulate_phenotype

TINY = dict(n_per_population=8, length=60_000, seed=5)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_tiny_simulation_is_valid_and_labelled(cache):
    d = load_default(SimulationParams(**TINY), cache_dir=cache)
    d.validate()
    assert d.label_counts() == {"CEU": 8, "CHB": 8, "YRI": 8}
    assert d.samples[0] == "YRI_0001" and set(d.variants["chrom"]) == {"chr22"}
    pos = d.variants["pos"].to_numpy()
    assert pos.min() >= 20_000_000 and pos.max() < 20_060_000 and (np.diff(pos) > 0).all()
    p = d.G.mean(axis=0) / 2
    assert (np.minimum(p, 1 - p) >= 0.01).all()
    assert np.isfinite(d.phenotypes["phenotype"]).all()
    m = d.G.shape[1]
    assert len(d.meta["causal_variants"]) == max(1, round(0.01 * m))
    assert set(d.meta["causal_variants"]) <= set(d.variants["id"])
    assert d.meta["h2"] == 0.5 and d.meta["simulation"]["seed"] == 5
    assert d.meta["sites_read"] == m + sum(d.meta["skipped"].values())


def test_seeded_and_cached(cache, monkeypatch):
    a = simulate_default(SimulationParams(**TINY), cache_dir=cache)
    stamp = a.vcf.stat().st_mtime_ns
    b = simulate_default(SimulationParams(**TINY), cache_dir=cache)
    assert a == b and b.vcf.stat().st_mtime_ns == stamp  # served from the cache, not rebuilt
    assert a.vcf.parent.name == cache_key(SimulationParams(**TINY))
    # A rebuild elsewhere from the same parameters gives identical data.
    other = simulate_default(SimulationParams(**TINY), cache_dir=cache / "elsewhere")
    d1 = load_default(SimulationParams(**TINY), cache_dir=cache)
    d2 = load_default(SimulationParams(**TINY), cache_dir=cache / "elsewhere")
    assert other.vcf != a.vcf
    np.testing.assert_array_equal(d1.G, d2.G)
    np.testing.assert_array_equal(d1.phenotypes["phenotype"], d2.phenotypes["phenotype"])
    # Another seed is another data set, in another folder.
    d3 = load_default(SimulationParams(**{**TINY, "seed": 6}), cache_dir=cache)
    assert d3.G.shape != d1.G.shape or not np.array_equal(d3.G, d1.G)
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no leftover temporary folders


def test_overrides_and_env_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OMIGEN_CACHE", str(tmp_path / "envcache"))
    d = load_default(**TINY)
    assert (tmp_path / "envcache" / "genotype" / cache_key(SimulationParams(**TINY))).is_dir()
    assert len(d) == 24
    with pytest.raises(OmigenInputError, match="unknown option"):
        load_default(n_individuals=3)
    with pytest.raises(OmigenInputError, match="h2 must be"):
        SimulationParams(h2=1.0)


def test_incomplete_cache_folder_is_rebuilt(cache):
    files = simulate_default(SimulationParams(**{**TINY, "seed": 7}), cache_dir=cache)
    files.causal.unlink()  # a crash or a manual deletion
    again = simulate_default(SimulationParams(**{**TINY, "seed": 7}), cache_dir=cache)
    assert again.causal.is_file()


def test_phenotype_has_the_asked_heritability():
    rng = np.random.default_rng(0)
    G = rng.binomial(2, rng.uniform(0.1, 0.9, 400), size=(4000, 400)).astype(np.int8)
    y, causal, beta = simulate_phenotype(G, 0.5, 0.05, np.random.default_rng(1))
    assert causal.size == 20 and np.all(np.diff(causal) > 0)
    X = G[:, causal].astype(float)
    g = ((X - X.mean(0)) / X.std(0)) @ beta
    assert abs(g.var() / y.var() - 0.5) < 0.05
    # The genetic value is exactly recoverable from the causal SNPs: regression gives R² = h² (noise aside).
    coef, *_ = np.linalg.lstsq(np.c_[np.ones(4000), X], y, rcond=None)
    assert abs(1 - np.var(y - np.c_[np.ones(4000), X] @ coef) / y.var() - 0.5) < 0.05


def test_dataset_spec_load_without_path_is_the_simulation(cache):
    from omigen_genotype.vcf import DATASETS

    d = DATASETS[0].load(None, cache_dir=cache, **TINY)
    np.testing.assert_array_equal(d.G, load_default(SimulationParams(**TINY), cache_dir=cache).G)
    assert d.meta["causal_variants"]
