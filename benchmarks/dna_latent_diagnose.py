"""Where a ``dna_latent`` run falls short: CpG, decoder robustness, sampler choice, and runs side by side (not a test).

For each finished run folder (``omigen run dna_latent --out DIR``, ``--set evaluate=false`` is enough) this
scores the run's own ``synthetic.fasta`` against the bundled test split: autoencoder per-base accuracy, CG
dinucleotide share, k-mer JS (k = 2, 6), FReD and the detection AUC. A table of runs made with different
seeds or options then shows how far one setting moves against seed noise.

For the first run it also reports, with ``--deep``:

- the decoder's robustness: per-base accuracy and CG share of real test latents with Gaussian noise added
  (in the diffusion model's normalised units), and how far sampled latents sit from the latent of their
  own decoded sequence (RMS, normalised units) next to the nearest-real distances;
- a sampler sweep (``--samplers``): ``ddim:STEPS:ETA:GUIDANCE`` or ``ddpm::0:GUIDANCE`` specs, each drawing
  ``--n`` sequences (equal per cell type) with seed 0 and scored as above, with its wall time.

Writes ``benchmarks/results/dna_latent_diagnosis.json`` and prints the tables.

    python benchmarks/dna_latent_diagnose.py RUN [RUN ...] [--deep] [--samplers ddim:50:0:1,ddpm::0:1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NOISE = (0.1, 0.2, 0.3, 0.5)
SAMPLERS = "ddim:50:0:1,ddim:200:0:1,ddim:100:1:1,ddim:100:0.5:1,ddim:50:0:0,ddim:50:0:2,ddpm::0:1"


def cg_share(codes: np.ndarray) -> float:
    """Share of CG among all adjacent base pairs (A=0, C=1, G=2, T=3)."""
    pairs = codes[:, :-1].astype(np.int64) * 4 + codes[:, 1:]
    return float((pairs == 6).mean())


def score(test: np.ndarray, synthetic: np.ndarray) -> dict[str, float]:
    """CG share, k-mer JS at k = 2 and 6, FReD and detection AUC of ``synthetic`` against ``test``."""
    from omigen_dna_latent.fred import fred
    from omigen_dna_latent.seqmetrics import detection_auc, kmer_divergence

    kmer = kmer_divergence(test, synthetic, ks=(2, 6))
    return {"cg": cg_share(synthetic), "kmer_js_k2": kmer[2], "kmer_js_k6": kmer[6],
            "fred": float(fred(test, synthetic)), "detection_auc": float(detection_auc(test, synthetic))}


def run_row(run: Path, test: np.ndarray) -> dict:
    """A finished run's options and the scores of its ``synthetic.fasta``."""
    from omigen_dna_latent import io
    from omigen_dna_latent.autoencoder import reconstruction_accuracy
    from omigen_dna_latent.pipeline import load_models

    ae, _, _, meta = load_models(run)
    cfg = meta["config"]
    synthetic = io.codes_of(io.read_fasta(run / "synthetic.fasta"))
    return {"run": str(run), "seed": cfg.get("seed"),
            "steps": cfg["steps"], "latent_noise": cfg["autoencoder"]["latent_noise"],
            "latent_l2": cfg["autoencoder"]["latent_l2"], "ae_test_accuracy": reconstruction_accuracy(ae, test),
            **score(test, synthetic)}


def decoder_robustness(run: Path, test: np.ndarray, seed: int = 0) -> dict:
    """Accuracy and CG share of noised real latents; distance of sampled latents from the data manifold."""
    import torch

    from omigen_dna_latent.autoencoder import decode_latents, encode_codes
    from omigen_dna_latent.pipeline import load_models

    ae, model, classes, _ = load_models(run)
    gen = torch.Generator().manual_seed(seed)
    real = model.normalise(encode_codes(ae, test))
    noised = {}
    for sd in NOISE:
        back = decode_latents(ae, model.denormalise(real + sd * torch.randn(real.shape, generator=gen)))
        noised[str(sd)] = {"accuracy": float((back == test).mean()), "cg": cg_share(back)}
    y = torch.as_tensor(np.repeat(np.arange(len(classes)), len(test) // max(len(classes), 1))) if classes else None
    n = len(y) if y is not None else len(test)
    drawn = model.normalise(model.sample(n, y, sampler="ddim", steps=50, generator=gen))
    again = model.normalise(encode_codes(ae, decode_latents(ae, model.denormalise(drawn))))
    half = len(real) // 2
    return {"noised_real_latents": noised,
            "sample_reencode_rms": float((again - drawn).pow(2).mean().sqrt()),
            "nearest_real_distance_median": {
                "synthetic": float(torch.cdist(drawn.flatten(1), real.flatten(1)).min(1).values.median()),
                "real": float(torch.cdist(real[:half].flatten(1), real[half:].flatten(1)).min(1).values.median())}}


def sampler_sweep(run: Path, test: np.ndarray, specs: list[str], n: int) -> dict:
    """Draw ``n`` sequences per sampler spec from the run's models (seed 0) and score them."""
    import torch

    from omigen_dna_latent.autoencoder import decode_latents
    from omigen_dna_latent.pipeline import load_models

    ae, model, classes, _ = load_models(run)
    y = torch.as_tensor(np.repeat(np.arange(len(classes)), n // len(classes))) if classes else None
    out = {}
    for spec in specs:
        sampler, steps, eta, guidance = (spec.split(":") + ["", "0", "1"])[:4]
        t0 = time.perf_counter()
        z = model.sample(len(y) if y is not None else n, y, sampler=sampler, steps=int(steps or 50), eta=float(eta),
                         guidance=float(guidance), generator=torch.Generator().manual_seed(0))
        seconds = time.perf_counter() - t0
        out[spec] = {"seconds": seconds, **score(test, decode_latents(ae, z))}
        print(f"  {spec}: {json.dumps({k: round(v, 4) for k, v in out[spec].items()})}", flush=True)
    return out


def main() -> None:
    from omigen_dna_latent import io

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="finished dna_latent run folders")
    ap.add_argument("--deep", action="store_true", help="decoder robustness and a sampler sweep on the first run")
    ap.add_argument("--samplers", default=SAMPLERS)
    ap.add_argument("--n", type=int, default=1000, help="sequences per sampler in the sweep")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dna_latent_diagnosis.json")
    args = ap.parse_args()
    test = io.codes_of(io.read_table(io.BUNDLED, split="test", split_col="split"))
    result: dict = {"test_sequences": len(test), "real_test_cg": cg_share(test), "runs": []}
    for run in args.runs:
        result["runs"].append(run_row(run, test))
        print(f"  {run}: {json.dumps({k: v for k, v in result['runs'][-1].items() if k != 'run'})}", flush=True)
    if args.deep:
        result["decoder"] = decoder_robustness(args.runs[0], test)
        print(f"  decoder: {json.dumps(result['decoder'])}", flush=True)
        result["samplers"] = sampler_sweep(args.runs[0], test, [s for s in args.samplers.split(",") if s], args.n)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(args.out)
    cols = ("seed", "steps", "latent_noise", "latent_l2", "ae_test_accuracy", "cg", "fred", "detection_auc")
    print(f"real test CG share {result['real_test_cg']:.4f}")
    print("".join(f"{c[:13]:>14s}" for c in cols))
    for row in result["runs"]:
        print("".join(f"{row[c]:14.4g}" if isinstance(row[c], (int, float)) else f"{row[c]!s:>14s}" for c in cols))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
