"""The genotype pipeline end to end on a small VCF: each model family, VCF + phenotype output, sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omigen.data import GenotypeData
from omigen.errors import OmigenInputError
from omigen.run import run_pipeline
from omigen_genotype.pipeline import conditions, load_run, sample
from omigen_genotype.vcf import read_vcf, save

_TINY = {"steps": 15, "device": "cpu",
         "train": {"batch_size": 16, "warmup_steps": 0, "log_every": 5, "progress": False},
         "diffusion": {"dim": 16, "layers": 1, "heads": 2, "timesteps": 10, "sample_steps": 4, "max_tokens": 8},
         "vae": {"hidden": 32, "latent": 4, "embed": 4, "max_tokens": 8},
         "gan": {"hidden": 32, "latent": 4, "embed": 4, "max_tokens": 8, "n_critic": 2}}


def _toy_vcf(folder, phased: bool):
    """60 individuals of two populations, 30 SNPs; the phenotype follows SNP 3 and is shifted in population B.
    ``phased`` draws each individual's two haplotypes and writes them phased."""
    rng = np.random.default_rng(int(phased))
    n, m = 60, 30
    pops = np.repeat(["A", "B"], n // 2).astype(object)
    p = np.where(pops[:, None] == "A", 0.3, 0.6)
    if phased:
        H = rng.binomial(1, np.broadcast_to(p[:, :, None], (n, m, 2))).astype(np.int8)
        G = H.sum(2)
    else:
        H, G = None, rng.binomial(2, np.broadcast_to(p, (n, m))).astype(np.int8)
    pheno = G[:, 3] + (pops == "B") * 2.0 + 0.1 * rng.standard_normal(n)
    samples = np.array([f"ind{i}" for i in range(n)], dtype=object)
    variants = pd.DataFrame({"id": [f"rs{i}" for i in range(m)], "chrom": "chr1",
                             "pos": np.arange(m) * 1000 + 5000, "ref": "A", "alt": "G"})
    data = GenotypeData(G=G, samples=samples, variants=variants, labels=pops, haplotypes=H,
                        phenotypes=pd.DataFrame({"population": pops, "phenotype": pheno}, index=samples.astype(str)),
                        meta={"label_column": "population"})
    path = folder / "toy.vcf"
    save(data, path)
    return path


@pytest.fixture(scope="module")
def vcf(tmp_path_factory):
    """The toy VCF, unphased."""
    return _toy_vcf(tmp_path_factory.mktemp("vcf"), phased=False)


@pytest.fixture(scope="module")
def phased_vcf(tmp_path_factory):
    """The toy VCF, phased: each individual's two haplotypes are known."""
    return _toy_vcf(tmp_path_factory.mktemp("phased"), phased=True)


@pytest.mark.parametrize("model", ["diffusion", "vae", "gan"])
def test_each_model_runs_and_writes_a_vcf_with_the_input_sites(vcf, tmp_path, model):
    out = tmp_path / "run"
    result, _ = run_pipeline("genotype", out_dir=out, sets={**_TINY, "model": model, "data": str(vcf)},
                             progress=False)
    written = read_vcf(out / "synthetic.vcf")
    real = read_vcf(vcf)
    for col in ("id", "chrom", "pos", "ref", "alt"):
        assert written.variants[col].tolist() == real.variants[col].tolist()
    assert len(written) == 12  # the 20% test split: 6 of each population
    assert all(s.startswith("syn_") for s in written.samples)
    assert np.array_equal(written.G, result.synthetic.G)
    table = pd.read_csv(out / "synthetic.phenotypes.tsv", sep="\t", index_col=0)
    assert sorted(table["population"].value_counts().to_dict().items()) == [("A", 6), ("B", 6)]
    # Phenotypes are drawn from each population's own training distribution (B is shifted by 2).
    assert table.loc[table.population == "A", "phenotype"].max() < 2.6
    assert table.loc[table.population == "B", "phenotype"].min() > 1.6
    for name in ("metrics.json", "report.html", "model.ckpt", "sites.tsv"):
        assert (out / name).is_file()
    assert "Mirrored Manhattan" in (out / "report.html").read_text()


def test_sample_is_seeded_labelled_and_checked(vcf, tmp_path):
    out = tmp_path / "run"
    run_pipeline("genotype", out_dir=out, sets={**_TINY, "model": "vae", "data": str(vcf)}, progress=False)
    a, b = sample(out, 10, seed=3), sample(out, 10, seed=3)
    assert np.array_equal(a.G, b.G) and not np.array_equal(a.G, sample(out, 10, seed=4).G)
    assert sorted(a.label_counts().items()) == [("A", 5), ("B", 5)]
    only_b = sample(out, 7, label="B", seed=0)
    assert set(only_b.labels) == {"B"} and len(only_b) == 7
    with pytest.raises(OmigenInputError, match="unknown label"):
        sample(out, 3, label="C")
    with pytest.raises(OmigenInputError, match="no option 'eta'"):
        sample(out, 3, eta=0.5)
    with pytest.raises(OmigenInputError, match="temperature must be > 0"):
        sample(out, 3, temperature=0)
    with pytest.raises(OmigenInputError, match="mosaic sampling is a diffusion option"):
        sample(out, 3, mosaic=True)
    with pytest.raises(OmigenInputError, match="not a genotype run folder"):
        sample(tmp_path, 3)


def test_diffusion_with_skip_path_reloads_for_sampling(vcf, tmp_path):
    out = tmp_path / "run"
    sets = {**_TINY, "model": "diffusion", "data": str(vcf), "diffusion": {**_TINY["diffusion"], "skip": True}}
    result, _ = run_pipeline("genotype", out_dir=out, sets=sets, progress=False)
    model = load_run(out)[0]
    assert model.denoiser.skip is not None and model.denoiser.skip.table.abs().sum() > 0  # trained, and saved
    a, b = sample(out, 8, seed=1), sample(out, 8, seed=1)
    assert np.array_equal(a.G, b.G) and a.G.shape == (8, result.synthetic.G.shape[1])
    corrected = sample(out, 8, seed=1, correctors=2)  # the same seed draws other genomes once steps repeat
    assert np.array_equal(corrected.G, sample(out, 8, seed=1, correctors=2).G) and not np.array_equal(corrected.G, a.G)
    with pytest.raises(OmigenInputError, match="correctors must be >= 0"):
        sample(out, 3, correctors=-1)


def test_haplotype_diffusion_writes_phased_genomes_and_reloads(phased_vcf, tmp_path):
    out = tmp_path / "run"
    sets = {**_TINY, "model": "diffusion", "data": str(phased_vcf),
            "diffusion": {**_TINY["diffusion"], "haplotypes": True}}
    result, _ = run_pipeline("genotype", out_dir=out, sets=sets, progress=False)
    written = read_vcf(out / "synthetic.vcf")
    assert written.meta["haplotypes"] and np.array_equal(written.haplotypes, result.synthetic.haplotypes)
    assert np.array_equal(written.G, result.synthetic.G) and len(written) == 12
    model, _, info, _, _ = load_run(out)
    assert info["haplotypes"] and model.haplotypes and model.process.states == 2
    a, b = sample(out, 8, seed=1), sample(out, 8, seed=1)
    assert np.array_equal(a.haplotypes, b.haplotypes) and a.G.shape == (8, 30)


def test_haplotype_diffusion_on_unphased_input_is_a_user_error(vcf, tmp_path):
    sets = {**_TINY, "model": "diffusion", "data": str(vcf), "diffusion": {**_TINY["diffusion"], "haplotypes": True}}
    with pytest.raises(OmigenInputError, match="diffusion.haplotypes needs phased genotypes"):
        run_pipeline("genotype", out_dir=tmp_path / "run", sets=sets, progress=False)


def test_unknown_model_is_a_user_error(vcf, tmp_path):
    with pytest.raises(OmigenInputError, match="model must be one of"):
        run_pipeline("genotype", out_dir=tmp_path / "run", sets={"model": "hmm", "data": str(vcf)}, progress=False)
    assert not (tmp_path / "run").exists()


def test_phenotype_conditions_come_from_each_population():
    info = {"n_classes": 2, "classes": ["A", "B"], "phenotype": True, "phenotype_mean": 1.0, "phenotype_sd": 2.0,
            "phenotype_quantiles": {"A": np.linspace(0, 1, 101).tolist(), "B": np.linspace(10, 11, 101).tolist()}}
    labels, y, raw, z = conditions(info, {"A": 50, "B": 30}, seed=0)
    assert y.tolist() == [0] * 50 + [1] * 30
    assert raw[:50].min() >= 0 and raw[:50].max() <= 1 and raw[50:].min() >= 10 and raw[50:].max() <= 11
    np.testing.assert_allclose(z.numpy(), (raw - 1.0) / 2.0, rtol=1e-6)
    again = conditions(info, {"A": 50, "B": 30}, seed=0)[2]
    assert np.array_equal(raw, again)
