"""What the genotype privacy target asks for: AATS of new real genomes and of haplotype mosaics (not a test).

The genotype benchmark wants both AATS parts of synthetic genomes against the test split in [0.4, 0.6]
with privacy loss <= 0.05. This script measures what two model-free generators score there, on data
simulated exactly like the default set (stdpopsim OutOfAfrica_3G09, 2 Mb of chr22, MAF >= 1%) but with
60 more diploids per population in the same simulation:

- ``fresh``: those 180 extra individuals, new members of the very genealogy the data come from, i.e.
  a perfect generator's output; with ``--draws K`` the simulation holds ``K`` x 60 extra diploids per
  population and ``fresh-1`` ... ``fresh-K`` are ``K`` disjoint perfect draws of 180 genomes each, so the
  share of perfect draws that meet the target can be counted;
- ``mosaic-S``: each synthetic haplotype copies training haplotypes of its population, switching donor
  at ``S`` uniformly placed points on average (Poisson), no mutation; two haplotypes make a genome;
- ``real train`` scored as if synthetic (privacy loss is meaningless there: it is the training set).

The 300 individuals per population are split 80/20 as in ``benchmarks/genotype.py``; distances and AATS
come from :func:`omigen.metrics.privacy.privacy`. Each simulation seed is a new data set, so the spread
over seeds shows how much one benchmark row can move. Writes
``benchmarks/results/genotype_aats_reference.json`` and prints a table.

    python benchmarks/genotype_aats_reference.py [--seeds 1-20] [--switches 3,5,10,30] [--draws 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "genotype_aats_reference.json"
EXTRA = 60


def simulate(seed: int, extra: int = EXTRA):
    """``(haplotypes (individuals, 2, sites), population per individual, positions, is_extra)`` of a default-like
    simulation with ``extra`` more diploids per population, restricted to biallelic sites with MAF >= 1% among
    the first 300 of each population."""
    from omigen_genotype.simulate import POPULATIONS, SimulationParams, _simulate_tree_sequence

    base = SimulationParams()
    ts = _simulate_tree_sequence(SimulationParams(n_per_population=base.n_per_population + extra, seed=seed))
    G = ts.genotype_matrix()  # (sites, haplotype nodes); samples are ordered individual by individual
    H = G.T.reshape(-1, 2, G.shape[0])
    names = {p.id: p.metadata.get("name") for p in ts.populations()}
    pops = np.array([names[ts.node(n).population] for n in ts.samples()[::2]])
    rng = np.random.default_rng(seed)
    is_extra = np.zeros(len(pops), dtype=bool)
    for p in POPULATIONS:
        idx = rng.permutation(np.flatnonzero(pops == p))
        is_extra[idx[base.n_per_population:]] = True
    dosage = H[~is_extra].sum(1)
    af = dosage.mean(0) / 2
    keep = (H.max(axis=(0, 1)) <= 1) & (np.minimum(af, 1 - af) >= base.maf)
    positions = ts.tables.sites.position[keep]
    return H[:, :, keep].astype(np.int8), pops, positions, is_extra


def mosaics(donors: np.ndarray, n: int, switches: float, positions: np.ndarray, rng) -> np.ndarray:
    """``n`` haplotypes, each copying ``donors`` (haplotypes x sites) and switching to a random donor at
    Poisson(``switches``) uniform points along ``positions``."""
    counts = rng.poisson(switches, n)
    width = max(int(counts.max()), 1)
    cuts = np.where(np.arange(width)[None] < counts[:, None],
                    rng.uniform(positions[0], positions[-1], (n, width)), np.inf)
    segment = (cuts[:, :, None] < positions[None, None, :]).sum(1)  # (n, sites): which copied stretch
    who = rng.integers(0, donors.shape[0], (n, width + 1))
    return donors[np.take_along_axis(who, segment, 1), np.arange(positions.size)[None]]


def fresh_draws(pops: np.ndarray, is_extra: np.ndarray, draws: int, rng) -> list[np.ndarray]:
    """``draws`` disjoint index sets of extra individuals, each with ``EXTRA`` of every population."""
    per_pop = [rng.permutation(np.flatnonzero(is_extra & (pops == p))) for p in np.unique(pops[is_extra])]
    return [np.concatenate([idx[d * EXTRA:(d + 1) * EXTRA] for idx in per_pop]) for d in range(draws)]


def score(seed: int, switch_counts: list[float], draws: int = 1) -> dict[str, dict]:
    """AATS rows of one simulated data set (``draws`` perfect draws of fresh genomes)."""
    from omigen.metrics.privacy import privacy

    H, pops, positions, is_extra = simulate(seed, EXTRA * draws)
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(~is_extra)
    perm = rng.permutation(idx.size)
    n_test = int(round(0.2 * idx.size))
    test, train = idx[perm[:n_test]], idx[perm[n_test:]]
    G = H.sum(1).astype(np.float64)
    fresh = fresh_draws(pops, is_extra, draws, np.random.default_rng(seed + 1000))
    sets = {"fresh": G[fresh[0]]} if draws == 1 else {f"fresh-{d + 1}": G[f] for d, f in enumerate(fresh)}
    sets["real train"] = G[train]
    for s in switch_counts:
        genomes = []
        for p in np.unique(pops[test]):
            donors = H[train][pops[train] == p].reshape(-1, positions.size)
            k = int((pops[test] == p).sum())
            genomes.append(mosaics(donors, 2 * k, s, positions, rng).reshape(2, k, -1).sum(0))
        sets[f"mosaic-{s:g}"] = np.concatenate(genomes).astype(np.float64)
    rows = {}
    for name, S in sets.items():
        p = privacy(S, G[train], G[test], seed=0)
        rows[name] = {k: p[k] for k in ("aa_truth", "aa_synth", "aats_test", "aa_truth_train", "aa_synth_train",
                                        "privacy_loss", "membership_auc")}
        rows[name]["in_band_and_private"] = bool(0.4 <= p["aa_truth"] <= 0.6 and 0.4 <= p["aa_synth"] <= 0.6
                                                 and p["privacy_loss"] <= 0.05)
    return {"n_snps": int(positions.size), "n_train": int(train.size), "n_test": int(test.size), "rows": rows}


def summary(seeds: dict[str, dict]) -> dict[str, dict]:
    """Per generator (the fresh draws pooled): mean and SD of each AATS part and of privacy loss over every
    row, and the share of rows that meet the whole privacy target."""
    groups: dict[str, list[dict]] = {}
    for res in seeds.values():
        for name, r in res["rows"].items():
            groups.setdefault(name.split("-")[0] if name.startswith("fresh") else name, []).append(r)
    out = {}
    for name, rows in groups.items():
        entry = {"rows": len(rows), "share_meeting": float(np.mean([r["in_band_and_private"] for r in rows]))}
        for key in ("aa_truth", "aa_synth", "privacy_loss"):
            v = np.array([r[key] for r in rows])
            entry[key] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                          "min": float(v.min()), "max": float(v.max())}
        out[name] = entry
    return out


def _seed_list(text: str) -> list[int]:
    """``1,2,3`` or ``1-20`` (or a mix) as a list of seeds."""
    seeds: list[int] = []
    for part in (p for p in text.split(",") if p):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    return seeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1,2,3", help="simulation seeds, e.g. 1,2,3 or 1-20 (1 is the default data's seed)")
    ap.add_argument("--switches", default="3,5,10,30", help="mean donor switches per mosaic haplotype")
    ap.add_argument("--draws", type=int, default=1, help="disjoint perfect draws of 180 fresh genomes per seed")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    switch_counts = [float(s) for s in args.switches.split(",") if s]
    result = {"extra_per_population": EXTRA * args.draws, "draws": args.draws, "seeds": {}}
    for seed in _seed_list(args.seeds):
        t0 = time.perf_counter()
        result["seeds"][str(seed)] = score(seed, switch_counts, args.draws)
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    from omigen.io import write_json

    result["summary"] = summary(result["seeds"])
    write_json(args.out, result)
    print(f"{'seed':>4s} {'generator':14s} {'AA_truth':>9s} {'AA_synth':>9s} {'loss':>7s} {'MIA AUC':>8s}  meets")
    for seed, res in result["seeds"].items():
        for name, r in res["rows"].items():
            loss = "-" if name == "real train" else f"{r['privacy_loss']:.3f}"
            mia = "-" if name == "real train" else f"{r['membership_auc']:.3f}"
            print(f"{seed:>4s} {name:14s} {r['aa_truth']:9.3f} {r['aa_synth']:9.3f} {loss:>7s} {mia:>8s}  "
                  f"{r['in_band_and_private'] if name != 'real train' else '-'}")
    print(f"\n{'generator':14s} {'rows':>4s} {'AA_truth':>13s} {'AA_synth':>13s} {'loss':>13s}  share meeting")
    for name, e in result["summary"].items():
        cells = " ".join(f"{e[k]['mean']:6.3f}+-{e[k]['sd']:.3f}" for k in ("aa_truth", "aa_synth", "privacy_loss"))
        print(f"{name:14s} {e['rows']:4d} {cells}  {e['share_meeting']:.2f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
