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
  ``--n`` sequences (equal per cell type) with seed 0 and scored as above, with its wall time;
- a blend with the order-5 Markov chain of each cell type (``--blend``): each base is drawn left to right
  from ``p_decoder(b)^w * p_markov(b | previous 5 bases)`` for each weight ``w`` (0: the chain alone, started
  from the model's first 5 bases). Whether any ``w > 0`` beats ``w = 0`` says whether the diffusion model
  knows anything about the sequences that the chain does not (the idea of Absorb & Escape, Li et al. 2024,
  which mends a diffusion model's local errors with an autoregressive model).

Writes ``benchmarks/results/dna_latent_diagnosis.json`` and prints the tables.

    python benchmarks/dna_latent_diagnose.py RUN [RUN ...] [--deep] [--samplers ddim:50:0:1,ddpm::0:1] [--blend 0,0.5,1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from omigen.data import SequenceData

ROOT = Path(__file__).resolve().parents[1]
NOISE = (0.1, 0.2, 0.3, 0.5)
SAMPLERS = "ddim:50:0:1,ddim:200:0:1,ddim:100:1:1,ddim:100:0.5:1,ddim:50:0:0,ddim:50:0:2,ddpm::0:1"
BLEND = "0,0.1,0.2,0.3,0.5,1"


def cg_share(codes: np.ndarray) -> float:
    """Share of CG among all adjacent base pairs (A=0, C=1, G=2, T=3)."""
    from omigen_dna_latent.seqmetrics import kmer_spectrum

    pairs = kmer_spectrum(codes, 2)
    return float(pairs[1 * 4 + 2] / pairs.sum())


def score(test: "SequenceData", synthetic: np.ndarray) -> dict[str, float]:
    """CG share, k-mer JS at k = 2 and 6, FReD and detection AUC of ``synthetic`` codes against ``test``.

    The plugin's metric functions memoise the test set's statistics, so every row after the first
    reuses its FReD embeddings and k-mer spectra.
    """
    from omigen.data import SequenceData
    from omigen_dna_latent import io
    from omigen_dna_latent.metrics import compute_detection, compute_fred, compute_kmer

    syn = SequenceData(io.strings(synthetic), np.char.add("s", np.arange(len(synthetic)).astype(str)).astype(object))
    kmer = compute_kmer(test, syn)
    return {"cg": cg_share(synthetic), "kmer_js_k2": kmer["js_k2"], "kmer_js_k6": kmer["js_k6"],
            "fred": compute_fred(test, syn)["fred"], "detection_auc": compute_detection(test, syn)["auc"]}


def run_row(run: Path, models: tuple, test: "SequenceData") -> dict:
    """A finished run's options and the scores of its ``synthetic.fasta``."""
    from omigen_dna_latent import io
    from omigen_dna_latent.autoencoder import reconstruction_accuracy

    ae, _, _, meta = models
    cfg = meta["config"]
    synthetic = io.codes_of(io.read_fasta(run / "synthetic.fasta"))
    return {"run": str(run), "seed": cfg.get("seed"), "steps": cfg["steps"],
            "latent_noise": cfg["autoencoder"]["latent_noise"], "latent_l2": cfg["autoencoder"]["latent_l2"],
            "ae_test_accuracy": reconstruction_accuracy(ae, io.codes_of(test)), **score(test, synthetic)}


def _labels(classes: list[str], n: int):
    import torch

    return torch.as_tensor(np.repeat(np.arange(len(classes)), n // len(classes))) if classes else None


def decoder_robustness(models: tuple, test: np.ndarray, seed: int = 0) -> dict:
    """Accuracy and CG share of noised real latents; distance of sampled latents from the data manifold."""
    import torch

    from omigen_dna_latent.autoencoder import decode_latents, encode_codes

    ae, model, classes, _ = models
    gen = torch.Generator().manual_seed(seed)
    real = model.normalise(encode_codes(ae, test))
    noised = {}
    for sd in NOISE:
        back = decode_latents(ae, model.denormalise(real + sd * torch.randn(real.shape, generator=gen)))
        noised[str(sd)] = {"accuracy": float((back == test).mean()), "cg": cg_share(back)}
    y = _labels(classes, len(test))
    drawn = model.normalise(model.sample(len(y) if y is not None else len(test), y, sampler="ddim", steps=50,
                                         generator=gen))
    again = model.normalise(encode_codes(ae, decode_latents(ae, model.denormalise(drawn))))
    half = len(real) // 2
    return {"noised_real_latents": noised,
            "sample_reencode_rms": float((again - drawn).pow(2).mean().sqrt()),
            "nearest_real_distance_median": {
                "synthetic": float(torch.cdist(drawn.flatten(1), real.flatten(1)).min(1).values.median()),
                "real": float(torch.cdist(real[:half].flatten(1), real[half:].flatten(1)).min(1).values.median())}}


def sampler_sweep(models: tuple, test: "SequenceData", specs: list[str], n: int) -> dict:
    """Draw ``n`` sequences per sampler spec from the run's models (seed 0) and score them."""
    import torch

    from omigen_dna_latent.autoencoder import decode_latents

    ae, model, classes, _ = models
    y = _labels(classes, n)
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


def blend_sweep(models: tuple, test: "SequenceData", train: "SequenceData", weights: list[float], n: int,
                order: int = 5) -> dict:
    """Scores of bases drawn from the decoder's probabilities (power ``w``) times each cell type's Markov chain."""
    import torch

    from omigen_dna_latent import io
    from omigen_dna_latent.baselines import fit_markov

    ae, model, classes, _ = models
    if not classes:
        return {}
    y = _labels(classes, n)
    z = model.sample(len(y), y, sampler="ddim", steps=50, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logp = torch.cat([torch.log_softmax(ae.decode(z[i:i + 1000]).float(), -1)
                          for i in range(0, len(z), 1000)]).numpy()
    codes, labels = io.codes_of(train), np.asarray(train.labels)
    trans = np.stack([fit_markov(codes[labels == c], order)[0] for c in classes])  # (classes, 4^order, 4)
    cls, size = y.numpy(), 4 ** order
    out = {}
    for w in weights:
        rng = np.random.default_rng(0)
        seq = logp.argmax(-1)
        ctx = (seq[:, :order] * 4 ** np.arange(order - 1, -1, -1)).sum(1)
        for i in range(order, seq.shape[1]):  # one vectorised draw per position
            p = trans[cls, ctx] * np.exp(w * logp[:, i])
            cum = np.cumsum(p / p.sum(1, keepdims=True), 1)
            seq[:, i] = (rng.random(len(seq))[:, None] > cum[:, :-1]).sum(1)
            ctx = (ctx * 4 + seq[:, i]) % size
        out[str(w)] = {"changed_bases": float((seq != logp.argmax(-1)).mean()), **score(test, seq)}
        print(f"  blend {w}: {json.dumps({k: round(v, 4) for k, v in out[str(w)].items()})}", flush=True)
    return out


def main() -> None:
    from omigen_dna_latent import io
    from omigen_dna_latent.pipeline import load_models

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="finished dna_latent run folders")
    ap.add_argument("--deep", action="store_true", help="decoder robustness, a sampler sweep and the Markov blend on the first run")
    ap.add_argument("--samplers", default=SAMPLERS)
    ap.add_argument("--blend", default=BLEND, help="decoder weights of the Markov blend ('' to skip)")
    ap.add_argument("--n", type=int, default=1000, help="sequences per sampler in the sweep")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dna_latent_diagnosis.json")
    args = ap.parse_args()
    test = io.read_table(io.BUNDLED, split="test", split_col="split")
    codes = io.codes_of(test)
    result: dict = {"test_sequences": len(test), "real_test_cg": cg_share(codes), "runs": []}
    for i, run in enumerate(args.runs):
        models = load_models(run)
        result["runs"].append(run_row(run, models, test))
        print(f"  {run}: {json.dumps({k: v for k, v in result['runs'][-1].items() if k != 'run'})}", flush=True)
        if args.deep and i == 0:
            result["decoder"] = decoder_robustness(models, codes)
            print(f"  decoder: {json.dumps(result['decoder'])}", flush=True)
            result["samplers"] = sampler_sweep(models, test, [s for s in args.samplers.split(",") if s], args.n)
            train = io.read_table(io.BUNDLED, split="training", split_col="split")
            result["markov_blend"] = blend_sweep(models, test, train, [float(w) for w in args.blend.split(",") if w],
                                                 args.n)
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
