"""The bundled default genotype data, simulated at run time: offline, seeded and cached.

What is simulated (:func:`simulate_default`):

- msprime through stdpopsim's ``HomSap`` species and ``OutOfAfrica_3G09`` demographic model (Gutenkunst
  et al. 2009: YRI, CEU and CHB), ``n_per_population`` diploid individuals of each population;
- ``length`` bp of chr22 from ``start`` (default 20-22 Mb), with the chromosome's mean recombination rate
  (no genetic map is downloaded) and the model's own mutation rate, on a discrete genome;
- sites kept where the minor allele (for multi-allelic sites, the rarest non-major allele) has frequency
  >= ``maf``; the VCF is written by tskit (bgzipped, contig ``chr22``, samples ``<POP>_<k>``) and read back
  through the real reader (:func:`omigen_genotype.vcf.read_vcf`), which skips the few multi-allelic sites
  and counts them;
- an additive phenotype on the SNPs read back: ``m = max(1, round(causal_fraction * M))`` causal SNPs
  drawn uniformly, effects ``beta ~ N(0, h2 / m)`` on genotypes standardised over all individuals,
  genetic value ``g = Z_causal @ beta`` and environmental noise ``e ~ N(0, var(g) (1 - h2) / h2)``, so the
  heritability is ``h2`` in expectation over the noise whatever the LD between causal SNPs;
  ``phenotype = g + e``. The population is a covariate (and the default label).

Files, in ``<cache>/genotype/<hash of the parameters and library versions>/``: ``genotypes.vcf.gz``,
its sidecar ``genotypes.phenotypes.tsv`` (sample, population, phenotype) and ``causal.tsv`` (variant
id, effect). The cache root is ``$OMIGEN_CACHE``, else ``$XDG_CACHE_HOME/omigen``, else
``~/.cache/omigen``. A folder is built under a temporary name and renamed when complete, so a crash
never leaves a half-written data set behind.

API used by the pipeline:

- ``simulate_default(params=None, cache_dir=None) -> SimulatedFiles(vcf, phenotypes, causal)``
  (a NamedTuple of paths; cached);
- ``load_default(params=None, cache_dir=None, label="population", **overrides) -> GenotypeData``
  with ``meta["causal_variants"]`` (ids), ``meta["causal_effects"]``, ``meta["h2"]`` and
  ``meta["simulation"]`` (the parameters); keyword overrides are :class:`SimulationParams` fields.

The default (3 x 300 diploids, 2 Mb) takes a few seconds on one CPU core; tests use e.g.
``SimulationParams(n_per_population=20, length=100_000)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from omigen.errors import OmigenInputError

if TYPE_CHECKING:
    from omigen.data import GenotypeData

#: Bump when the files made from the same parameters change.
FORMAT_VERSION = 1
POPULATIONS = ("YRI", "CEU", "CHB")
CONTIG = "chr22"


@dataclass(frozen=True)
class SimulationParams:
    """Parameters of the simulated default data (see the module docstring)."""

    n_per_population: int = 300
    length: int = 2_000_000
    start: int = 20_000_000
    seed: int = 1
    maf: float = 0.01
    h2: float = 0.5
    causal_fraction: float = 0.01

    def __post_init__(self) -> None:
        if self.n_per_population < 2:
            raise OmigenInputError(f"n_per_population must be >= 2, got {self.n_per_population}")
        if self.length < 1000 or self.start < 1:
            raise OmigenInputError(f"length must be >= 1000 bp and start >= 1, got {self.length}, {self.start}")
        if not 0 <= self.maf < 0.5:
            raise OmigenInputError(f"maf must be in [0, 0.5), got {self.maf}")
        if not 0 < self.h2 < 1:
            raise OmigenInputError(f"h2 must be in (0, 1), got {self.h2}")
        if not 0 < self.causal_fraction <= 1:
            raise OmigenInputError(f"causal_fraction must be in (0, 1], got {self.causal_fraction}")


class SimulatedFiles(NamedTuple):
    """Paths of one cached simulated data set."""

    vcf: Path
    phenotypes: Path
    causal: Path


def cache_root() -> Path:
    """Where simulated data sets are cached: ``$OMIGEN_CACHE``, ``$XDG_CACHE_HOME/omigen`` or ``~/.cache/omigen``."""
    if os.environ.get("OMIGEN_CACHE"):
        return Path(os.environ["OMIGEN_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "omigen"


def cache_key(params: SimulationParams) -> str:
    """Hash of the parameters and of the simulator versions (another version may draw other data)."""
    from importlib.metadata import version

    blob = json.dumps({"params": dataclasses.asdict(params), "format": FORMAT_VERSION,
                       "versions": [version(p) for p in ("msprime", "stdpopsim", "tskit")]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _simulate_tree_sequence(params: SimulationParams):
    import stdpopsim

    species = stdpopsim.get_species("HomSap")
    model = species.get_demographic_model("OutOfAfrica_3G09")
    contig = species.get_contig(CONTIG, left=params.start, right=params.start + params.length,
                                mutation_rate=model.mutation_rate)
    engine = stdpopsim.get_engine("msprime")
    return engine.simulate(model, contig, {p: params.n_per_population for p in POPULATIONS},
                           seed=params.seed)


def _rare_sites(ts, maf: float) -> np.ndarray:
    """Mask (True = leave out) of sites whose rarest non-major allele is below ``maf``."""
    mask = np.zeros(ts.num_sites, dtype=bool)
    n = ts.num_samples
    for v in ts.variants(copy=False):
        g = v.genotypes
        if len(v.alleles) == 2:  # nearly every site: no missing data in a simulation, one derived allele
            alt = int(g.sum())
            mask[v.site.id] = min(alt, n - alt) < maf * n
            continue
        counts = np.bincount(g[g >= 0], minlength=len(v.alleles))
        counts = np.sort(counts[counts > 0])[::-1]
        mask[v.site.id] = counts.size < 2 or counts[1:].min() < maf * n
    return mask


class _Chunked:
    """Gathers small text writes (tskit writes a VCF line at a time) into ~1 MB writes to ``raw``."""

    def __init__(self, raw, size: int = 1 << 20) -> None:
        self.raw, self.size, self.parts, self.n = raw, size, [], 0

    def write(self, text: str) -> int:
        self.parts.append(text)
        self.n += len(text)
        if self.n >= self.size:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self.parts:
            self.raw.write("".join(self.parts))
        self.parts, self.n = [], 0


def _individual_names(ts) -> tuple[list[str], list[str]]:
    pops = [ts.population(ts.node(ind.nodes[0]).population).metadata["name"] for ind in ts.individuals()]
    seen: dict[str, int] = {}
    names = []
    for pop in pops:
        seen[pop] = seen.get(pop, 0) + 1
        names.append(f"{pop}_{seen[pop]:04d}")
    return names, pops


def simulate_phenotype(G: np.ndarray, h2: float, causal_fraction: float,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Additive phenotype on dosages ``G`` (samples x SNPs): ``(phenotype, causal column indices, effects)``.

    Effects are on standardised genotypes; the noise variance is ``var(g) (1 - h2) / h2``.
    """
    m_total = G.shape[1]
    m = max(1, int(round(causal_fraction * m_total)))
    causal = np.sort(rng.choice(m_total, size=m, replace=False))
    beta = rng.normal(0.0, np.sqrt(h2 / m), size=m)
    X = G[:, causal].astype(np.float64)
    sd = X.std(axis=0)
    Z = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    g = Z @ beta
    noise_sd = np.sqrt(g.var() * (1 - h2) / h2) if g.var() > 0 else np.sqrt(1 - h2)
    return g + rng.normal(0.0, noise_sd, size=g.shape[0]), causal, beta


def _build(params: SimulationParams, folder: Path) -> None:
    """Simulate into ``folder`` (empty): VCF, then phenotypes computed on the SNPs read back."""
    import pandas as pd
    from Bio import bgzf

    from omigen_genotype.vcf import read_vcf

    ts = _simulate_tree_sequence(params)
    names, pops = _individual_names(ts)
    vcf = folder / "genotypes.vcf.gz"
    mask = _rare_sites(ts, params.maf)
    writer = bgzf.BgzfWriter(str(vcf), "wb", compresslevel=1)  # a cache: speed over size
    try:
        out = _Chunked(writer)
        ts.write_vcf(out, contig_id=CONTIG, individual_names=names, site_mask=mask)
        out.flush()
    finally:
        writer.close()
    covariates = folder / "covariates.tsv"
    pd.DataFrame({"sample": names, "population": pops}).to_csv(covariates, sep="\t", index=False)
    data = read_vcf(vcf, phenotypes=covariates, maf=params.maf)
    rng = np.random.default_rng([params.seed, 1])
    y, causal, beta = simulate_phenotype(data.G, params.h2, params.causal_fraction, rng)
    pd.DataFrame({"sample": data.samples, "population": data.labels, "phenotype": y}).to_csv(
        folder / "genotypes.phenotypes.tsv", sep="\t", index=False, float_format="%.10g")
    pd.DataFrame({"id": data.variants["id"].to_numpy()[causal], "effect": beta}).to_csv(
        folder / "causal.tsv", sep="\t", index=False, float_format="%.10g")
    (folder / "params.json").write_text(json.dumps(dataclasses.asdict(params), indent=2) + "\n")
    covariates.unlink()


def simulate_default(params: SimulationParams | None = None, cache_dir: str | Path | None = None) -> SimulatedFiles:
    """The simulated data set's files, made on first use and cached by ``params``."""
    params = params or SimulationParams()
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "genotype"
    final = root / cache_key(params)
    files = SimulatedFiles(final / "genotypes.vcf.gz", final / "genotypes.phenotypes.tsv", final / "causal.tsv")
    if all(p.is_file() for p in files):
        return files
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        _build(params, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the cache is an ordinary folder
        if final.exists():  # an incomplete folder from an older crash, or a concurrent build
            if all(p.is_file() for p in files):
                return files
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:
            if not all(p.is_file() for p in files):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files


def load_default(params: SimulationParams | None = None, cache_dir: str | Path | None = None,
                 label: str | None = "population", **overrides) -> "GenotypeData":
    """The simulated data as :class:`GenotypeData`, read through the VCF reader, causal SNPs in ``meta``."""
    import pandas as pd

    from omigen_genotype.vcf import read_vcf

    params = params or SimulationParams()
    if overrides:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(SimulationParams)}
        if unknown:
            raise OmigenInputError(f"unknown option(s) for the simulated data: {', '.join(sorted(unknown))}")
        params = dataclasses.replace(params, **overrides)
    files = simulate_default(params, cache_dir)
    data = read_vcf(files.vcf, phenotypes=files.phenotypes, label=label, maf=params.maf)
    causal = pd.read_csv(files.causal, sep="\t", dtype={"id": str})
    data.meta.update(causal_variants=causal["id"].tolist(), causal_effects=causal["effect"].tolist(),
                     h2=params.h2, simulation=dataclasses.asdict(params))
    return data
