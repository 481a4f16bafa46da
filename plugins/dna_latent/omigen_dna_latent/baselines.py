"""Baseline DNA generators every sequence report compares a model against.

- ``markov``: a k-th order Markov chain per class (``k = 5`` by default). Training counts all
  (k+1)-mers of the class at once (rolling base-4 numbers + ``bincount``), adds a pseudo-count
  of :data:`PSEUDOCOUNT` per transition and normalises per context; the first ``k`` bases are a
  start k-mer drawn from the class's empirical first k-mers. Sampling goes position by position,
  each step one vectorised draw for all sequences. It matches the k-mer spectrum (up to k+1)
  but knows nothing of position within the sequence.
- ``position-frequency``: each position's base drawn independently from that position's base
  frequencies in the class; it matches every per-position composition and no dependence
  between positions.

Both return SequenceData with the requested labels and fresh ids (``markov5_0001`` ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from omigen.baselines import plan_counts, plan_labels, sample_ids
from omigen.errors import OmigenInputError
from omigen.registry import BaselineSpec

if TYPE_CHECKING:
    from omigen.data import SequenceData

#: Markov order used by the registered baseline.
DEFAULT_ORDER = 5
#: Added to every transition count so contexts unseen in training still have a distribution.
PSEUDOCOUNT = 0.5


def _codes(train: "SequenceData") -> np.ndarray:
    from omigen_dna_latent.io import codes_of

    codes = codes_of(train)
    if (codes < 0).any():
        raise OmigenInputError("training sequences contain characters other than A, C, G, T")
    return codes.astype(np.int64)


def _build(name: str, blocks: list[np.ndarray], plan, length: int) -> "SequenceData":
    from omigen.data import SequenceData
    from omigen_dna_latent.io import strings

    codes = np.concatenate(blocks) if blocks else np.zeros((0, length), dtype=np.int64)
    return SequenceData(sequences=np.asarray(strings(codes), dtype=object), samples=sample_ids(name, codes.shape[0]),
                        labels=plan_labels(plan))


def fit_markov(codes: np.ndarray, order: int = DEFAULT_ORDER) -> tuple[np.ndarray, np.ndarray]:
    """Transition probabilities (4^order x 4) and start k-mer probabilities (4^order) of a Markov chain."""
    from omigen_dna_latent.seqmetrics import kmer_index

    if order < 1 or order >= codes.shape[1]:
        raise OmigenInputError(f"Markov order {order} must lie between 1 and the sequence length - 1 "
                               f"({codes.shape[1] - 1})")
    size = 4 ** order
    counts = np.bincount(kmer_index(codes, order + 1).ravel(), minlength=size * 4).reshape(size, 4)
    trans = (counts + PSEUDOCOUNT) / (counts.sum(axis=1, keepdims=True) + 4 * PSEUDOCOUNT)
    start = np.bincount(kmer_index(codes[:, :order], order)[:, 0], minlength=size).astype(np.float64)
    return trans, start / start.sum()


def sample_markov(trans: np.ndarray, start: np.ndarray, n: int, length: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` code sequences of ``length`` from a fitted chain, all sequences advancing together."""
    size = start.shape[0]
    order = int(round(np.log(size) / np.log(4)))
    out = np.zeros((n, length), dtype=np.int64)
    ctx = rng.choice(size, size=n, p=start)
    for j in range(order):
        out[:, j] = (ctx // 4 ** (order - 1 - j)) % 4
    cum = np.cumsum(trans, axis=1)
    cum[:, -1] = 1.0
    for t in range(order, length):  # one vectorised draw per position
        nxt = (rng.random(n)[:, None] > cum[ctx]).sum(axis=1)
        out[:, t] = nxt
        ctx = (ctx * 4 + nxt) % size
    return out


def generate_markov(train: "SequenceData", n_per_label: dict, seed: int = 0,
                    order: int = DEFAULT_ORDER) -> "SequenceData":
    """A k-th order Markov chain fitted per class, sampled ``n_per_label[label]`` times per class."""
    plan = plan_counts(train, n_per_label)
    codes = _codes(train)
    rng = np.random.default_rng(seed)
    blocks = []
    for _, rows, n in plan:
        trans, start = fit_markov(codes[rows], order)
        blocks.append(sample_markov(trans, start, n, codes.shape[1], rng))
    return _build(f"markov{order}", blocks, plan, codes.shape[1])


def generate_position_frequency(train: "SequenceData", n_per_label: dict, seed: int = 0) -> "SequenceData":
    """Each position's base drawn from that position's base frequencies within the class."""
    plan = plan_counts(train, n_per_label)
    codes = _codes(train)
    rng = np.random.default_rng(seed)
    blocks = []
    for _, rows, n in plan:
        freq = np.stack([(codes[rows] == b).mean(axis=0) for b in range(4)], axis=1)  # L x 4
        cum = np.cumsum(freq, axis=1)
        cum[:, -1] = 1.0
        blocks.append((rng.random((n, codes.shape[1]))[..., None] > cum[None]).sum(axis=2))
    return _build("posfreq", blocks, plan, codes.shape[1])


BASELINES: list[BaselineSpec] = [
    BaselineSpec("markov", ("sequence",), generate_markov,
                 description=f"order-{DEFAULT_ORDER} Markov chain per class (k-mer counts, start k-mers from data)"),
    BaselineSpec("position-frequency", ("sequence",), generate_position_frequency,
                 description="independent per-position base frequencies per class"),
]
