"""Invertible preprocessing between expression units and the model's [-1, 1] space.

Forward, fitted on the training data only:

1. optional ``log2(x + 1)`` (``log="yes"``; ``"auto"`` applies it when the data look linear:
   no negative value and a maximum above :data:`LINEAR_MAX`; ``"no"`` never);
2. per-gene min-max scaling to [-1, 1]: ``z = 2 (v - lo) / (hi - lo) - 1`` with the gene's
   training minimum ``lo`` and maximum ``hi`` (a constant gene maps to -1).

:meth:`Preprocessor.inverse` undoes both, so model output comes back in the input's units. It
first clips to [-1, 1] (the training range). For a gene whose training minimum is exactly 0 with a
gap above it (a gene not expressed in some samples) it then sets values below the smallest
positive training value (the gene's detection floor) to 0: real data hold nothing in that gap, so
model output there belongs to the not-expressed point mass, which a continuous model only
approaches. (On the bundled data this step lowers the C2ST AUC from about 0.95 to about 0.65.)

The GEMDiff files store log2 FPKM with a blank where a gene is not expressed. Their reader
(``missing="not-expressed"``) turns them into log2(FPKM+1) with :func:`log2_to_log2p1`:
``y = log2(2**x + 1)`` for a value ``x`` and ``y = 0`` for a blank, so "not expressed" sits at the
bottom of the scale and every other value is above it; :func:`log2p1_to_log2` inverts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omigen.data import ExpressionData
from omigen.errors import OmigenInputError

#: ``log="auto"`` takes data whose maximum exceeds this (and with no negative value) as linear.
LINEAR_MAX = 50.0
LOG_CHOICES = ("auto", "yes", "no")


def log2_to_log2p1(x: np.ndarray) -> np.ndarray:
    """``log2(2**x + 1)``, blank (NaN) -> 0: log2 FPKM with blanks for "not expressed" -> log2(FPKM+1)."""
    x = np.asarray(x, dtype=np.float64)
    blank = np.isnan(x)
    out = np.logaddexp2(np.where(blank, 0.0, x), 0.0)  # log2(2**x + 2**0) without overflow for large x
    return np.where(blank, 0.0, out).astype(np.float32)


def log2p1_to_log2(y: np.ndarray) -> np.ndarray:
    """Inverse of :func:`log2_to_log2p1`: ``log2(2**y - 1)``; ``y <= 0`` (not expressed) -> NaN."""
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # log2(2**y - 1) = y + log2(1 - 2**-y), accurate for small and large y alike
        out = y + np.log1p(-np.exp2(-y)) / np.log(2.0)
    return np.where(y > 0, out, np.nan)


def select_genes(genes, names: list[str] | None = None, k: int = 0, seed: int = 0) -> list[str]:
    """Genes to model: ``names`` (in that order) if given, else ``k`` random ones (seeded, in the
    data's order) if ``k > 0``, else all of them."""
    genes = [str(g) for g in genes]
    if names:
        known = set(genes)
        unknown = [g for g in names if g not in known]
        if unknown:
            raise OmigenInputError(f"unknown gene(s): {', '.join(unknown[:5])}"
                                   + (" ..." if len(unknown) > 5 else ""))
        if len(set(names)) != len(names):
            raise OmigenInputError("the gene list names a gene twice")
        return list(names)
    if k < 0:
        raise OmigenInputError(f"the number of random genes must be >= 0, got {k}")
    if k and k < len(genes):
        keep = np.sort(np.random.default_rng(seed).choice(len(genes), size=k, replace=False))
        return [genes[i] for i in keep]
    return genes


def _columns(data: ExpressionData, genes: list[str]) -> np.ndarray:
    index = {g: i for i, g in enumerate(data.genes.tolist())}
    missing = [g for g in genes if g not in index]
    if missing:
        raise OmigenInputError(f"data lack gene(s) the model was trained on: {', '.join(missing[:5])}"
                               + (" ..." if len(missing) > 5 else ""))
    return np.asarray([index[g] for g in genes], dtype=np.int64)


@dataclass
class Preprocessor:
    """Fitted forward/inverse transform for a fixed list of genes; plain data, saved as JSON."""

    genes: list[str]
    log: bool
    lo: np.ndarray
    hi: np.ndarray
    floor: np.ndarray  # smallest positive training value of zero-inflated genes, NaN for others
    units: str = "unknown"
    snap_zeros: bool = True
    classes: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, data: ExpressionData, *, genes: list[str] | None = None, log: str = "auto",
            snap_zeros: bool = True) -> "Preprocessor":
        """Fit on training ``data`` (all its genes unless ``genes`` is given)."""
        if log not in LOG_CHOICES:
            raise OmigenInputError(f"log must be one of {', '.join(LOG_CHOICES)}, got {log!r}")
        if len(data) < 2:
            raise OmigenInputError(f"need at least 2 training samples, got {len(data)}")
        genes = list(genes) if genes is not None else data.genes.tolist()
        X = data.X[:, _columns(data, genes)].astype(np.float64)
        if log == "auto":
            use_log = bool(X.min() >= 0 and X.max() > LINEAR_MAX)
        else:
            use_log = log == "yes"
        if use_log:
            if X.min() < 0:
                raise OmigenInputError("log=yes needs non-negative values; the data hold negative ones "
                                       "(already on a log scale? use log=no)")
            X = np.log2(X + 1.0)
        lo, hi = X.min(axis=0), X.max(axis=0)
        positive = np.where(X > 0, X, np.inf).min(axis=0)
        zero_inflated = (lo == 0) & np.isfinite(positive) & (X == 0).any(axis=0)
        floor = np.where(zero_inflated, positive, np.nan)
        classes = data.classes
        return cls(genes=genes, log=use_log, lo=lo, hi=hi, floor=floor, units=data.units,
                   snap_zeros=snap_zeros, classes=classes)

    @property
    def model_units(self) -> str:
        """Units after the optional log step (what the [-1, 1] scale is linear in)."""
        return f"log2({self.units}+1)" if self.log else self.units

    def _span(self) -> np.ndarray:
        span = self.hi - self.lo
        return np.where(span > 0, span, 1.0)

    def transform(self, data: ExpressionData) -> np.ndarray:
        """``data`` (any gene order; extra genes ignored) -> float32 matrix in [-1, 1] on the training range."""
        X = data.X[:, _columns(data, self.genes)].astype(np.float64)
        if self.log:
            X = np.log2(np.clip(X, 0.0, None) + 1.0)
        return (2.0 * (X - self.lo) / self._span() - 1.0).astype(np.float32)

    def inverse(self, Z: np.ndarray, clip: bool = True) -> np.ndarray:
        """Model space -> input units (float32), clipped to the training range when ``clip``."""
        Z = np.asarray(Z, dtype=np.float64)
        if clip:
            Z = np.clip(Z, -1.0, 1.0)
        V = (Z + 1.0) / 2.0 * self._span() + self.lo
        if self.snap_zeros:
            # the tolerance keeps a real value at the floor, round-tripped through float32, above it
            floor = np.where(np.isnan(self.floor), -np.inf, self.floor - 1e-5 * self._span())
            V = np.where(V < floor, 0.0, V)
        if self.log:
            V = np.exp2(V) - 1.0
        return V.astype(np.float32)

    def labels_to_index(self, labels) -> np.ndarray:
        """Class names -> int64 indices into :attr:`classes`."""
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({str(v) for v in labels} - set(index))
        if unknown:
            raise OmigenInputError(f"unknown label(s) {', '.join(map(repr, unknown[:5]))} "
                                   f"(known: {', '.join(self.classes) or 'none'})")
        return np.asarray([index[str(v)] for v in labels], dtype=np.int64)

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state (NaN floors stored as null)."""
        return {
            "genes": list(self.genes), "log": self.log, "lo": self.lo.tolist(), "hi": self.hi.tolist(),
            "floor": [None if np.isnan(f) else float(f) for f in self.floor], "units": self.units,
            "snap_zeros": self.snap_zeros, "classes": list(self.classes),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Preprocessor":
        """Rebuild from :meth:`state_dict` output."""
        return cls(genes=list(state["genes"]), log=bool(state["log"]),
                   lo=np.asarray(state["lo"], dtype=np.float64), hi=np.asarray(state["hi"], dtype=np.float64),
                   floor=np.asarray([np.nan if f is None else f for f in state["floor"]], dtype=np.float64),
                   units=str(state["units"]), snap_zeros=bool(state["snap_zeros"]),
                   classes=list(state.get("classes", [])))
