"""FReD, reproducible: Fréchet distance between embeddings of a fixed reference DNA embedder.

The reference embedder is *not* a generator's own autoencoder. It is a small dilated CNN
(:func:`build_embedder`) trained by ``plugins/dna_latent/scripts/train_fred_embedder.py`` on
sequences disjoint from any generator's training and test data (the DHS set's validation
chromosome), and shipped as ``weights/fred_embedder_v1.pt`` with a JSON card beside it
(``fred_embedder_v1.json``: version, SHA-256 of the weights, training data, layer, dimension).

- **Layer**: the output of the last convolution block (after its ReLU), pooled over positions by
  global mean and global max and concatenated; the classification head is not used.
- **Dimension**: ``2 x channels`` = 64 for v1.
- **Lengths**: convolutions are padded and the pooling is global, so any length embeds (tested
  from 64 to 1,024 bp); FReD compares sets of one length.

Loading checks the file's SHA-256 against the card and reads it with ``weights_only=True``.
``FReD = |mu_r - mu_s|^2 + tr(S_r + S_s - 2 (S_r S_s)^(1/2))`` on those embeddings, computed by
:func:`omigen.metrics.frechet.frechet_distance`.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from omigen.errors import OmigenInputError

if TYPE_CHECKING:
    from torch import nn

    from omigen.data import SequenceData

WEIGHTS = Path(__file__).resolve().parent / "weights" / "fred_embedder_v1.pt"
CARD = WEIGHTS.with_suffix(".json")
#: Architecture of v1 (the card repeats it; a mismatch is an error).
CHANNELS = 32
KERNEL = 9
DILATIONS = (1, 2, 4)
#: Sequences per forward pass when embedding.
BATCH = 512


@contextmanager
def single_thread():
    """Run torch on one CPU thread inside the block (the previous count is restored after).

    The evaluation's networks are small: per operation there is too little work to share, and
    two threads were measured 1.5-8x slower than one on a 2-core CPU (worse when the machine is
    busy). One thread also makes their results the same whatever the machine's core count.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_embedder(channels: int = CHANNELS, n_outputs: int = 5, kernel: int = KERNEL,
                   dilations: tuple[int, ...] = DILATIONS) -> "nn.Module":
    """The embedder network: ``body`` (dilated conv blocks over one-hot N x 4 x L) and a linear ``head``.

    ``forward(x)`` returns head logits; :func:`pooled` gives the embedding used by FReD.
    """
    from torch import nn

    layers: list[nn.Module] = []
    width = 4
    for d in dilations:
        layers += [nn.Conv1d(width, channels, kernel, padding=d * (kernel // 2), dilation=d), nn.ReLU()]
        width = channels
    body = nn.Sequential(*layers)
    head = nn.Linear(2 * channels, n_outputs)

    class Embedder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body
            self.head = head

        def embed(self, x):
            return pooled(self.body(x))

        def forward(self, x):
            return self.head(self.embed(x))

    return Embedder()


def pooled(h):
    """Global mean and max over positions of ``h`` (N x C x L), concatenated (N x 2C)."""
    import torch

    return torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)


def read_card(card: "str | Path" = CARD) -> dict:
    """The embedder's JSON card (version, sha256, training data, layer, dimension, architecture)."""
    p = Path(card)
    if not p.exists():
        raise OmigenInputError(f"FReD embedder card {p.name} is missing; run scripts/train_fred_embedder.py")
    return json.loads(p.read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def _load(weights: str, card: str) -> "nn.Module":
    import torch

    from omigen.io import sha256_file

    info = read_card(card)
    p = Path(weights)
    if not p.exists():
        raise OmigenInputError(f"FReD embedder weights {p.name} are missing; run scripts/train_fred_embedder.py")
    digest = sha256_file(p)
    if digest != info.get("sha256"):
        raise OmigenInputError(f"FReD embedder weights {p.name} do not match their card "
                               f"(sha256 {digest[:12]}..., card says {str(info.get('sha256'))[:12]}...)")
    arch = info.get("architecture", {})
    model = build_embedder(int(arch.get("channels", CHANNELS)), int(arch.get("n_outputs", 5)),
                           int(arch.get("kernel", KERNEL)), tuple(arch.get("dilations", DILATIONS)))
    model.load_state_dict(torch.load(p, map_location="cpu", weights_only=True))
    return model.eval()


def load_embedder(weights: "str | Path" = WEIGHTS, card: "str | Path" = CARD) -> "nn.Module":
    """The reference embedder, its hash checked against the card (cached per file pair)."""
    return _load(str(Path(weights).resolve()), str(Path(card).resolve()))


def embed(data: "SequenceData | np.ndarray | list[str]", model: "nn.Module | None" = None,
          batch: int = BATCH) -> np.ndarray:
    """Embeddings (n x 64 for v1, float64) of sequences (SequenceData, strings or an n x L code matrix)."""
    import torch

    from omigen_dna_latent.io import codes_of

    codes = codes_of(data)
    if (codes < 0).any():
        raise OmigenInputError("FReD embeds sequences over A, C, G, T only")
    if codes.shape[0] == 0:
        raise OmigenInputError("no sequences to embed")
    model = model if model is not None else load_embedder()
    eye = torch.eye(4)
    out = []
    with torch.no_grad(), single_thread():
        for i in range(0, codes.shape[0], batch):
            x = eye[torch.from_numpy(codes[i:i + batch].astype(np.int64))].transpose(1, 2)
            out.append(model.embed(x).double().numpy())
    return np.concatenate(out)


def fred(real: "SequenceData | np.ndarray | list[str]", synthetic: "SequenceData | np.ndarray | list[str]",
         model: "nn.Module | None" = None, seed: int = 0) -> float:
    """FReD: Fréchet distance between reference-embedder embeddings of ``real`` and ``synthetic``."""
    from omigen.metrics.frechet import frechet_distance

    model = model if model is not None else load_embedder()
    return frechet_distance(embed(real, model), embed(synthetic, model), seed=seed)
