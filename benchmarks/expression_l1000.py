"""Reconstructing genes from L1000 landmarks on real PBMCs: held-out per-gene R² and Pearson r (not a test).

Data: scanpy's ``pbmc68k_reduced`` (``../shared/data/pbmc68k/10x_pbmc68k_reduced.h5ad``; BSD-3 licence
beside it): 700 PBMCs, 765 highly variable genes, log-normalised values in ``raw.X``, cell types in
``obs['bulk_labels']``. 71 of its genes are L1000 landmarks; the other 694 are reconstructed from them.

Cells are split 70/30, stratified by cell type (seeded). On the training cells the script fits
``ridge`` (per-gene RidgeCV), ``mlp`` (the default MLP on a ridge shortcut) and ``mlp-plain`` (the MLP
without the shortcut), and scores each on the held-out cells, next to ``train-mean`` (every cell gets
the training mean: R² just below 0 by construction). A second, synthetic part times both kinds at the
size the module is meant for: 1,000 samples, 978 landmarks, 1,000 other genes (linear map + noise).
Writes ``benchmarks/results/expression_l1000.json`` and prints tables.

    python benchmarks/expression_l1000.py
    python benchmarks/expression_l1000.py --threads 2 --skip-synthetic

Timings depend on the machine and on whatever else runs on it; the JSON records threads and platform.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = (Path(__file__).parents[1] / ".." / "shared" / "data").resolve() / "pbmc68k" / "10x_pbmc68k_reduced.h5ad"
RESULTS = HERE / "results" / "expression_l1000.json"
MODELS = {"ridge": {"kind": "ridge"}, "mlp": {"kind": "mlp"}, "mlp-plain": {"kind": "mlp", "shortcut": False}}


def fit_and_score(name: str, options: dict, X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray,
                  Y_test: np.ndarray, genes: list[str], seed: int) -> tuple[dict, object]:
    """Fit one model, predict the held-out rows; summary, timings and per-gene scores."""
    from omigen_expression.l1000 import Reconstructor, reconstruction_scores, summarise

    t0 = time.perf_counter()
    rec = Reconstructor(**options).fit(X_train, Y_train, seed=seed)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = rec.predict(X_test)
    predict_s = time.perf_counter() - t0
    scores = reconstruction_scores(Y_test, pred, genes)
    row = {**summarise(scores), "fit_seconds": fit_s, "predict_seconds": predict_s, "options": options,
           "history": {k: v for k, v in rec.history.items() if k != "val_loss"}}
    print(f"  {name}: fitted in {fit_s:.2f} s", flush=True)
    return row, scores


def pbmc(path: Path, seed: int) -> dict:
    """The real-data part: landmarks -> other genes on held-out PBMCs."""
    from omigen.data import split
    from omigen_expression.io import read_h5ad
    from omigen_expression.l1000 import match_landmarks, reconstruction_scores, summarise

    if not path.is_file():
        raise SystemExit(f"PBMC data not found at {path} (expected the project's shared reference data "
                         "../shared/data/pbmc68k/10x_pbmc68k_reduced.h5ad; pass --data)")
    data = read_h5ad(path, label_key="bulk_labels", layer="raw")
    landmarks, rest = match_landmarks(data.genes.tolist())
    train, test = split(data, 0.3, seed, stratify=True)
    col = {g: i for i, g in enumerate(data.genes.tolist())}
    li, ri = [col[g] for g in landmarks], [col[g] for g in rest]
    Xtr, Ytr, Xte, Yte = train.X[:, li], train.X[:, ri], test.X[:, li], test.X[:, ri]
    print(f"{len(data)} cells ({len(train)} train / {len(test)} test), {len(landmarks)} landmarks, "
          f"{len(rest)} genes to reconstruct", flush=True)

    rows, per_gene = {}, {}
    mean_pred = np.broadcast_to(Ytr.mean(axis=0), Yte.shape)
    rows["train-mean"] = {**summarise(reconstruction_scores(Yte, mean_pred, rest)), "fit_seconds": 0.0,
                          "predict_seconds": 0.0}
    for name, options in MODELS.items():
        rows[name], per_gene[name] = fit_and_score(name, options, Xtr, Ytr, Xte, Yte, rest, seed)
    best = per_gene["ridge"].sort_values("r2", ascending=False).head(10)
    return {"data": path.name, "n_cells": len(data), "n_train": len(train), "n_test": len(test),
            "n_landmarks": len(landmarks), "n_reconstructed": len(rest), "landmarks": landmarks,
            "split": "70/30 stratified by obs['bulk_labels']", "units": data.units, "rows": rows,
            "ridge_best_genes": [{"gene": r.gene, "r2": float(r.r2), "pearson": float(r.pearson)}
                                 for r in best.itertuples()],
            "mlp_minus_ridge_r2_median_per_gene": float(np.nanmedian(per_gene["mlp"]["r2"] - per_gene["ridge"]["r2"]))}


def synthetic(seed: int, n: int = 1000, p: int = 978, q: int = 1000) -> dict:
    """Timing and accuracy at L1000 size on data with a known linear map (noise SD 0.3 vs signal SD 1)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(5.0, 1.5, size=(n, p)).astype(np.float32)
    W = rng.standard_normal((p, q)) / np.sqrt(p * 1.5**2)
    Y = (X @ W + 0.3 * rng.standard_normal((n, q))).astype(np.float32)
    n_train = int(0.8 * n)
    genes = [f"g{j}" for j in range(q)]
    rows = {}
    for name in ("ridge", "mlp"):
        rows[name], _ = fit_and_score(name, MODELS[name], X[:n_train], Y[:n_train], X[n_train:], Y[n_train:], genes,
                                      seed)
    return {"n_train": n_train, "n_test": n - n_train, "n_landmarks": p, "n_reconstructed": q,
            "best_possible_r2": 1 / (1 + 0.3**2), "rows": rows}


def _table(title: str, rows: dict):
    from rich.table import Table

    cols = {"median_r2": "med R²", "mean_r2": "mean R²", "median_pearson": "med r", "mean_pearson": "mean r",
            "fraction_r2_above_0.5": "R²>0.5", "n_constant": "const", "fit_seconds": "fit s"}
    table = Table(title=title)
    table.add_column("model", no_wrap=True)
    for header in cols.values():
        table.add_column(header, justify="right")
    for name, vals in rows.items():
        table.add_row(name, *(f"{vals[c]:.3f}" if isinstance(vals[c], float) else str(vals[c]) for c in cols))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS CPU threads")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch
    from rich.console import Console
    from threadpoolctl import threadpool_limits

    from omigen.io import write_json

    torch.set_num_threads(args.threads)
    result: dict = {"threads": args.threads, "platform": platform.platform(), "seed": args.seed,
                    "note": "CPU timings on a shared machine; other work may slow them"}
    # numpy's BLAS (the ridge) gets the same thread count as torch: oversubscribed cores slow both
    with threadpool_limits(limits=args.threads):
        result["pbmc"] = pbmc(args.data, args.seed)
        if not args.skip_synthetic:
            print("synthetic 1,000 x 978 -> 1,000:", flush=True)
            result["synthetic"] = synthetic(args.seed)
    write_json(args.out, result)
    console = Console()
    r = result["pbmc"]
    console.print(_table(f"PBMC held-out cells ({r['n_test']}): {r['n_landmarks']} landmarks -> "
                         f"{r['n_reconstructed']} genes", r["rows"]))
    console.print("best ridge genes: " + ", ".join(f"{g['gene']} {g['r2']:.2f}" for g in r["ridge_best_genes"]))
    if "synthetic" in result:
        s = result["synthetic"]
        console.print(_table(f"synthetic linear map, {s['n_train']} train / {s['n_test']} test "
                             f"(best possible R² {s['best_possible_r2']:.3f})", s["rows"]))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
