"""Train the FReD reference embedder and write its weights and card into the package.

The embedder (:func:`omigen_dna_latent.fred.build_embedder`) learns two things at once from the
DHS sequences of the **validation** chromosome only (disjoint from every generator's training
and test splits): which of the four cell types a sequence comes from, and whether it is a real
sequence or a per-sequence shuffle of one (a fifth class). Its pooled last-block activations
then respond to motif content and to the order of bases, which is what FReD should compare.
Reverse complements are drawn at random during training, so both strands embed alike.

    python plugins/dna_latent/scripts/train_fred_embedder.py            # reads ../shared/data
    python plugins/dna_latent/scripts/train_fred_embedder.py --data-root /path/to/data --epochs 20

Writes ``omigen_dna_latent/weights/fred_embedder_v1.pt`` (a state dict, float32) and
``fred_embedder_v1.json`` (version, sha256, data, layer, dimension, accuracy) atomically.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from omigen.io import atomic_path, sha256_file, write_text
from omigen_dna_latent import fred
from omigen_dna_latent.io import codes_of, read_table

REPO = Path(__file__).resolve().parents[3]
DATA_FILE = Path("dhs-200bp") / "dhs_sequences.tsv.gz"
SPLIT = "validation"
VERSION = "v1"


def _shuffled(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row's bases in a random order (composition kept, order destroyed)."""
    return np.take_along_axis(codes, rng.random(codes.shape).argsort(axis=1), axis=1)


def _batches(x: torch.Tensor, y: torch.Tensor, size: int, gen: torch.Generator):
    order = torch.randperm(x.shape[0], generator=gen)
    for i in range(0, x.shape[0], size):
        idx = order[i:i + size]
        xb = x[idx]
        flip = torch.rand(idx.shape[0], generator=gen) < 0.5
        # reverse complement: reverse positions, and A<->T, C<->G is reversing the channel order
        xb[flip] = xb[flip].flip(dims=(1, 2))
        yield xb, y[idx]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=fred.WEIGHTS)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    path = args.data_root / DATA_FILE
    data = read_table(path, split=SPLIT)
    classes = data.classes
    codes = codes_of(data).astype(np.int64)
    labels = np.searchsorted(classes, data.labels.astype(str))
    codes = np.concatenate([codes, _shuffled(codes, rng)])
    labels = np.concatenate([labels, np.full(len(data), len(classes))])
    holdout = rng.random(codes.shape[0]) < 0.1
    onehot = torch.eye(4)[torch.from_numpy(codes)].transpose(1, 2).contiguous()
    target = torch.from_numpy(labels)
    x_tr, y_tr = onehot[~torch.from_numpy(holdout)], target[~torch.from_numpy(holdout)]
    x_ho, y_ho = onehot[torch.from_numpy(holdout)], target[torch.from_numpy(holdout)]

    model = fred.build_embedder(n_outputs=len(classes) + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for xb, yb in _batches(x_tr.clone(), y_tr, args.batch_size, gen):
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * xb.shape[0]
        sched.step()
        model.eval()
        with torch.no_grad():
            pred = model(x_ho).argmax(1)
        acc = float((pred == y_ho).float().mean())
        real = y_ho < len(classes)
        cell_acc = float((pred[real] == y_ho[real]).float().mean())
        print(f"epoch {epoch + 1:2d}  loss {total / x_tr.shape[0]:.4f}  holdout accuracy {acc:.3f}  "
              f"cell-type accuracy on real {cell_acc:.3f}  {time.time() - t0:.0f} s", flush=True)

    state = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(args.out) as tmp:
        torch.save(state, tmp)
    card = {
        "version": VERSION,
        "file": args.out.name,
        "sha256": sha256_file(args.out),
        "parameters": int(sum(v.numel() for v in state.values())),
        "layer": "last convolution block (conv + ReLU), global mean and global max over positions, concatenated",
        "dimension": 2 * fred.CHANNELS,
        "architecture": {"channels": fred.CHANNELS, "kernel": fred.KERNEL, "dilations": list(fred.DILATIONS),
                         "n_outputs": len(classes) + 1},
        "training_data": {
            "file": str(DATA_FILE), "file_sha256": sha256_file(path), "split": SPLIT,
            "chromosomes": _chromosomes(path),
            "n_sequences": len(data), "classes": classes,
            "negatives": "one per-sequence base shuffle of every sequence (a fifth class)",
            "disjoint_from": "the training and test splits (other chromosomes) that generators use",
        },
        "training": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                     "optimizer": "AdamW, weight decay 1e-4, cosine schedule",
                     "augmentation": "random reverse complement", "holdout_fraction": 0.1,
                     "holdout_accuracy_5_class": acc, "holdout_cell_type_accuracy_real": cell_acc,
                     "seconds": round(time.time() - t0, 1), "torch": torch.__version__},
    }
    write_text(args.out.with_suffix(".json"), json.dumps(card, indent=2) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB) and its card; sha256 {card['sha256']}")


def _chromosomes(path: Path) -> list[str]:
    import pandas as pd

    frame = pd.read_csv(path, sep="\t", usecols=["chr", "split"])
    return sorted(frame.loc[frame["split"] == SPLIT, "chr"].unique().tolist())


if __name__ == "__main__":
    main()
