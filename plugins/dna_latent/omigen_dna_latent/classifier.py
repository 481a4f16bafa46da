"""Conditional fidelity: does a cell-type classifier trained on real sequences recognise synthetic ones?

A small CNN (:func:`build_classifier`: two convolutions, global mean+max pooling, a linear head)
is trained on the real training sequences with their labels, then predicts

- the real test sequences: its accuracy there is what a perfect generator could reach;
- the synthetic sequences: accuracy against the label each was generated for.

A conditional generator that really produces cell-type-specific sequences scores close to the
real test accuracy; one that ignores its label scores near chance.

Training happens once per training set: the classifier is keyed by a SHA-256 of the training
sequences, labels and settings, kept in memory for the process and, when a cache folder is set
(:func:`cache_in`, e.g. the run folder), saved there as ``celltype_classifier-<key>.pt`` and
reloaded with ``weights_only=True``. Training subsamples at most :data:`MAX_TRAIN` sequences
(seeded) and runs on one CPU thread (:func:`omigen_dna_latent.fred.single_thread`), so it stays
in CPU seconds and its weights do not depend on the number of cores.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from omigen.errors import OmigenInputError

if TYPE_CHECKING:
    from torch import nn

    from omigen.data import SequenceData

MAX_TRAIN = 20000
EPOCHS = 4
BATCH = 128
LR = 2e-3
CHANNELS = 64

_MEMORY: dict[str, "TrainedClassifier"] = {}
_CACHE_DIR: list[Path | None] = [None]


@dataclass
class TrainedClassifier:
    """A fitted classifier and the class names its outputs stand for."""

    model: "nn.Module"
    classes: list[str]
    key: str

    def predict(self, codes: np.ndarray, batch: int = 1024) -> np.ndarray:
        """Predicted class names for an n x L code matrix."""
        import torch

        from omigen_dna_latent.fred import single_thread

        eye = torch.eye(4)
        out = []
        self.model.eval()
        with torch.no_grad(), single_thread():
            for i in range(0, codes.shape[0], batch):
                x = eye[torch.from_numpy(codes[i:i + batch].astype(np.int64))].transpose(1, 2)
                out.append(self.model(x).argmax(1).numpy())
        idx = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
        return np.asarray(self.classes, dtype=object)[idx]


def cache_in(folder: "str | Path | None") -> None:
    """Save (and look for) trained classifiers in ``folder``; ``None`` keeps them in memory only."""
    _CACHE_DIR[0] = None if folder is None else Path(folder)


def build_classifier(n_classes: int, channels: int = CHANNELS) -> "nn.Module":
    """Conv(15) -> ReLU -> MaxPool(4) -> Conv(7) -> ReLU -> global mean+max -> Linear(n_classes)."""
    from torch import nn

    from omigen_dna_latent.fred import pooled

    class CellTypeCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv1d(4, channels, 15, padding=7), nn.ReLU(), nn.MaxPool1d(4, ceil_mode=True),
                                      nn.Conv1d(channels, channels, 7, padding=3), nn.ReLU())
            self.head = nn.Linear(2 * channels, n_classes)

        def forward(self, x):
            return self.head(pooled(self.body(x)))

    return CellTypeCNN()


def training_key(codes: np.ndarray, labels: np.ndarray, seed: int) -> str:
    """SHA-256 of the training sequences, labels and the training settings."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(codes.astype(np.int8)).tobytes())
    h.update("\x00".join(map(str, labels)).encode("utf-8"))
    h.update(repr((codes.shape, seed, MAX_TRAIN, EPOCHS, BATCH, LR, CHANNELS)).encode("ascii"))
    return h.hexdigest()[:16]


def _fit(codes: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> "nn.Module":
    from omigen_dna_latent.fred import single_thread

    with single_thread():
        return _fit_steps(codes, y, n_classes, seed)


def _fit_steps(codes: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> "nn.Module":
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_classifier(n_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-4)
    x = torch.eye(4)[torch.from_numpy(codes.astype(np.int64))].transpose(1, 2).contiguous()
    target = torch.from_numpy(y.astype(np.int64))
    steps = EPOCHS * -(-x.shape[0] // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(x.shape[0], generator=gen)
        for i in range(0, x.shape[0], BATCH):
            idx = order[i:i + BATCH]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def get_classifier(train: "SequenceData", seed: int = 0) -> TrainedClassifier:
    """The cell-type classifier for ``train`` (trained on first use, then from memory or the cache folder)."""
    import torch

    from omigen.io import atomic_path
    from omigen_dna_latent.io import codes_of

    if train.labels is None:
        raise OmigenInputError("the cell-type classifier needs labelled training sequences")
    classes = train.classes
    if len(classes) < 2:
        raise OmigenInputError(f"the cell-type classifier needs at least 2 labels, got {len(classes)}")
    codes = codes_of(train)
    labels = train.labels.astype(str)
    key = training_key(codes, labels, seed)
    if key in _MEMORY:
        return _MEMORY[key]
    folder = _CACHE_DIR[0]
    path = None if folder is None else folder / f"celltype_classifier-{key}.pt"
    if path is not None and path.exists():
        model = build_classifier(len(classes))
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.eval()
    else:
        rng = np.random.default_rng(seed)
        rows = np.arange(codes.shape[0])
        if rows.size > MAX_TRAIN:
            rows = np.sort(rng.choice(rows, MAX_TRAIN, replace=False))
        model = _fit(codes[rows], np.searchsorted(classes, labels[rows]), len(classes), seed)
        if path is not None:
            with atomic_path(path) as tmp:
                torch.save(model.state_dict(), tmp)
    _MEMORY[key] = TrainedClassifier(model, list(classes), key)
    return _MEMORY[key]


def conditional_fidelity(real: "SequenceData", synthetic: "SequenceData", train: "SequenceData",
                         seed: int = 0) -> dict[str, float]:
    """Classifier accuracy on real test sequences and on synthetic ones by intended label.

    Returns ``test_accuracy``, ``synthetic_accuracy`` and ``accuracy_gap`` (synthetic minus test;
    0 is ideal, negative means the synthetic sequences carry less cell-type signal).
    """
    from omigen_dna_latent.io import codes_of

    if real.labels is None or synthetic.labels is None:
        raise OmigenInputError("conditional fidelity needs labelled real and synthetic sequences")
    clf = get_classifier(train, seed)
    unknown = sorted(set(synthetic.labels.astype(str)) - set(clf.classes))
    if unknown:
        raise OmigenInputError(f"synthetic labels not in the training data: {', '.join(unknown[:5])}")
    from omigen_dna_latent.metrics import digest, memoised

    real_codes, real_labels = codes_of(real), real.labels.astype(str)
    # the real test accuracy is the same for every row of an evaluation: predict the test set once
    test_acc = memoised("celltype-test-accuracy", digest(clf.key, real_codes, real_labels),
                        lambda: float((clf.predict(real_codes) == real_labels).mean()))
    syn_acc = float((clf.predict(codes_of(synthetic)) == synthetic.labels.astype(str)).mean())
    return {"test_accuracy": test_acc, "synthetic_accuracy": syn_acc, "accuracy_gap": syn_acc - test_acc}
