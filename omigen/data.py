"""Modality-typed data containers: what loaders return, models learn from and metrics compare.

Three modalities, one shape of API (``len``, ``subset``, ``labels``, ``features``, ``validate``):

- :class:`ExpressionData` — float matrix samples x genes, gene names, sample ids, labels.
- :class:`SequenceData` — fixed-length DNA strings over ACGT, ids, labels.
- :class:`GenotypeData` — int8 0/1/2 alt-allele dosages samples x variants, variant table, phenotypes.

``features()`` gives every container a float32 matrix view (samples x features) so generic
metrics (MMD, Fréchet, PRDC, C2ST, privacy) apply to any modality.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from omigen.errors import OmigenInputError


@runtime_checkable
class Dataset(Protocol):
    """What every modality container offers."""

    modality: ClassVar[str]
    samples: np.ndarray
    labels: np.ndarray | None

    def __len__(self) -> int: ...
    def subset(self, index: np.ndarray) -> "Dataset": ...
    def features(self) -> np.ndarray: ...
    def validate(self) -> "Dataset": ...


def _as_str_array(values, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise OmigenInputError(f"{what} must be one-dimensional")
    return np.asarray([str(v) for v in arr], dtype=object)


def _unique(values: np.ndarray, what: str) -> None:
    uniq, counts = np.unique(values.astype(str), return_counts=True)
    dup = uniq[counts > 1]
    if dup.size:
        shown = ", ".join(map(str, dup[:5])) + (" ..." if dup.size > 5 else "")
        raise OmigenInputError(f"duplicate {what}: {shown}")


def _check_labels(labels, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    arr = _as_str_array(labels, "labels")
    if arr.shape[0] != n:
        raise OmigenInputError(f"{arr.shape[0]} labels for {n} samples")
    return arr


class _Base:
    samples: np.ndarray
    labels: np.ndarray | None

    def __len__(self) -> int:
        return int(self.samples.shape[0])

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels (empty when unlabelled)."""
        return [] if self.labels is None else sorted(set(self.labels.tolist()))

    def label_counts(self) -> dict[str | None, int]:
        """How many samples of each label; ``{None: n}`` when unlabelled."""
        if self.labels is None:
            return {None: len(self)}
        uniq, counts = np.unique(self.labels.astype(str), return_counts=True)
        return {str(u): int(c) for u, c in zip(uniq, counts)}


@dataclass
class ExpressionData(_Base):
    """Gene expression: ``X`` (samples x genes, float32) in ``units`` (e.g. ``log2(x+1)``)."""

    modality: ClassVar[str] = "expression"
    X: np.ndarray
    genes: np.ndarray
    samples: np.ndarray
    labels: np.ndarray | None = None
    units: str = "unknown"

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float32)
        self.genes = _as_str_array(self.genes, "genes")
        self.samples = _as_str_array(self.samples, "sample ids")
        self.labels = _check_labels(self.labels, len(self.samples))

    def validate(self) -> "ExpressionData":
        """Check shape, finiteness and unique ids; returns self for chaining."""
        if self.X.ndim != 2:
            raise OmigenInputError(f"expression matrix must be 2-D, got shape {self.X.shape}")
        if self.X.shape != (len(self.samples), len(self.genes)):
            raise OmigenInputError(f"expression matrix shape {self.X.shape} does not match "
                                   f"{len(self.samples)} samples x {len(self.genes)} genes")
        bad = ~np.isfinite(self.X)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise OmigenInputError(f"{int(bad.sum())} non-finite expression values, first at sample "
                                   f"{self.samples[i]!r}, gene {self.genes[j]!r}")
        _unique(self.samples, "sample ids")
        _unique(self.genes, "gene names")
        return self

    def subset(self, index) -> "ExpressionData":
        """Rows ``index`` (integer or boolean array)."""
        index = np.asarray(index)
        return replace(self, X=self.X[index], samples=self.samples[index],
                       labels=None if self.labels is None else self.labels[index])

    def features(self) -> np.ndarray:
        """The expression matrix itself."""
        return self.X


ALPHABET = "ACGT"


@dataclass
class SequenceData(_Base):
    """DNA sequences of one length over ``ACGT`` (upper case), with ids and optional labels."""

    modality: ClassVar[str] = "sequence"
    sequences: np.ndarray
    samples: np.ndarray
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.sequences = _as_str_array(self.sequences, "sequences")
        self.samples = _as_str_array(self.samples, "sequence ids")
        self.labels = _check_labels(self.labels, len(self.samples))

    @property
    def length(self) -> int:
        """The common sequence length (0 when empty)."""
        return len(self.sequences[0]) if len(self.sequences) else 0

    def validate(self) -> "SequenceData":
        """Check one length, the ACGT alphabet and unique ids; returns self."""
        if len(self.sequences) != len(self.samples):
            raise OmigenInputError(f"{len(self.sequences)} sequences for {len(self.samples)} ids")
        lengths = np.fromiter((len(s) for s in self.sequences), dtype=np.int64, count=len(self.sequences))
        if lengths.size and (lengths != lengths[0]).any():
            i = int(np.argmax(lengths != lengths[0]))
            raise OmigenInputError(f"sequence {self.samples[i]!r} has length {lengths[i]}, "
                                   f"expected {lengths[0]} like {self.samples[0]!r}")
        codes = self.codes() if lengths.size else np.zeros((0, 0), np.int8)
        if (codes < 0).any():
            i, j = np.argwhere(codes < 0)[0]
            raise OmigenInputError(f"sequence {self.samples[i]!r} has {self.sequences[i][j]!r} at "
                                   f"position {j + 1}; only A, C, G, T are allowed")
        _unique(self.samples, "sequence ids")
        return self

    def codes(self) -> np.ndarray:
        """Integer codes (n x L, int8): A=0, C=1, G=2, T=3, anything else -1."""
        if not len(self.sequences):
            return np.zeros((0, 0), dtype=np.int8)
        raw = np.frombuffer("".join(self.sequences).encode("ascii", "replace"), dtype=np.uint8)
        lut = np.full(256, -1, dtype=np.int8)
        for i, base in enumerate(ALPHABET):
            lut[ord(base)] = i
        return lut[raw].reshape(len(self.sequences), -1)

    def subset(self, index) -> "SequenceData":
        """Rows ``index`` (integer or boolean array)."""
        index = np.asarray(index)
        return replace(self, sequences=self.sequences[index], samples=self.samples[index],
                       labels=None if self.labels is None else self.labels[index])

    def features(self) -> np.ndarray:
        """Flattened one-hot encoding (n x 4L, float32)."""
        codes = self.codes()
        onehot = np.zeros(codes.shape + (4,), dtype=np.float32)
        np.put_along_axis(onehot, np.clip(codes, 0, 3)[..., None].astype(np.int64), 1.0, axis=-1)
        return onehot.reshape(len(self), -1)


@dataclass
class GenotypeData(_Base):
    """Diploid genotypes as alt-allele dosages ``G`` (samples x variants, int8 in {0, 1, 2}).

    ``variants`` is a table with at least ``id``, ``chrom``, ``pos``, ``ref``, ``alt`` (a pandas
    DataFrame, one row per column of ``G``); ``phenotypes`` an optional DataFrame indexed like
    ``samples`` (phenotypes and covariates such as population). ``haplotypes``, when the input was
    phased, holds the two alleles of every call (samples x variants x 2, int8 in {0, 1}, summing to ``G``).
    """

    modality: ClassVar[str] = "genotype"
    G: np.ndarray
    samples: np.ndarray
    variants: object  # pandas.DataFrame; kept untyped so importing omigen.data stays light
    labels: np.ndarray | None = None
    phenotypes: object | None = None
    meta: dict = field(default_factory=dict)
    haplotypes: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.G = np.asarray(self.G, dtype=np.int8)
        if self.haplotypes is not None:
            self.haplotypes = np.asarray(self.haplotypes, dtype=np.int8)
        self.samples = _as_str_array(self.samples, "sample ids")
        self.labels = _check_labels(self.labels, len(self.samples))

    def validate(self) -> "GenotypeData":
        """Check shape, the 0/1/2 domain, the variant table and unique ids; returns self."""
        if self.G.ndim != 2 or self.G.shape[0] != len(self.samples):
            raise OmigenInputError(f"genotype matrix shape {self.G.shape} does not match "
                                   f"{len(self.samples)} samples")
        if len(self.variants) != self.G.shape[1]:
            raise OmigenInputError(f"{len(self.variants)} variants described for {self.G.shape[1]} columns")
        missing = {"id", "chrom", "pos", "ref", "alt"} - set(getattr(self.variants, "columns", []))
        if missing:
            raise OmigenInputError(f"variant table lacks column(s): {', '.join(sorted(missing))}")
        bad = (self.G < 0) | (self.G > 2)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise OmigenInputError(f"genotype {int(self.G[i, j])} at sample {self.samples[i]!r}, "
                                   f"variant {j}; dosages must be 0, 1 or 2")
        _unique(self.samples, "sample ids")
        H = self.haplotypes
        if H is not None:
            if H.shape != (*self.G.shape, 2):
                raise OmigenInputError(f"haplotypes shape {H.shape} does not match genotypes {self.G.shape} x 2")
            if ((H < 0) | (H > 1)).any() or not np.array_equal(H.sum(axis=2, dtype=np.int8), self.G):
                raise OmigenInputError("haplotypes must be 0/1 alleles that sum to the dosages")
        return self

    def subset(self, index) -> "GenotypeData":
        """Rows ``index`` (integer or boolean array)."""
        index = np.asarray(index)
        ph = self.phenotypes
        if ph is not None:
            ph = ph.iloc[index] if index.dtype != bool else ph[index]
        return replace(self, G=self.G[index], samples=self.samples[index], phenotypes=ph,
                       labels=None if self.labels is None else self.labels[index],
                       haplotypes=None if self.haplotypes is None else self.haplotypes[index])

    def features(self) -> np.ndarray:
        """Dosages as float32."""
        return self.G.astype(np.float32)


def split(data: Dataset, test_fraction: float, seed: int, stratify: bool = True) -> tuple[Dataset, Dataset]:
    """Seeded train/test split, stratified by label when labels exist."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise OmigenInputError(f"test fraction must be in (0, 1), got {test_fraction}")
    idx = np.arange(len(data))
    strat = data.labels if (stratify and data.labels is not None) else None
    tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=strat)
    return data.subset(np.sort(tr)), data.subset(np.sort(te))
