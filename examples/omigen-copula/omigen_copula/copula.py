"""The Gaussian copula: fitting per-class marginals and correlations, sampling, and the checkpoint.

For each class, gene j keeps its empirical quantile function Q_j (a table at ``n_quantiles``
evenly spaced probabilities, linearly interpolated). The dependence between genes is the
correlation R of the normal scores z = Φ⁻¹(rank / (n + 1)), shrunk towards the identity so it
stays positive definite with few samples. Sampling draws z ~ N(0, R) and returns Q_j(Φ(z_j)).

A class with a single training sample has a degenerate quantile table, so it reproduces that
sample; a gene constant within a class gets zero correlation with the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omigen.data import ExpressionData
from omigen.errors import OmigenInputError

FORMAT = "omigen-copula/1"


@dataclass
class CopulaParams:
    """Fitted parameters. ``classes[c]`` indexes the first axis of ``quantiles``, ``chol`` and ``counts``."""

    genes: list[str]
    classes: list[str]
    labelled: bool
    units: str
    probs: np.ndarray       # (K,) probabilities of the quantile table, 0 .. 1
    quantiles: np.ndarray   # (C, K, genes)
    chol: np.ndarray        # (C, genes, genes) lower Cholesky factors of the copula correlations
    counts: np.ndarray      # (C,) training samples per class


def normal_scores(x: np.ndarray) -> np.ndarray:
    """Per column: Φ⁻¹ of the mid-ranks scaled into (0, 1)."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    return ndtri(rankdata(x, axis=0) / (x.shape[0] + 1))


def copula_correlation(z: np.ndarray, shrinkage: float) -> np.ndarray:
    """Correlation of the columns of ``z`` shrunk towards I: (1 - s) R + s I; constant columns are uncorrelated."""
    centred = z - z.mean(axis=0)
    sd = np.sqrt((centred ** 2).mean(axis=0))
    scaled = np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)
    r = scaled.T @ scaled / max(z.shape[0], 1)
    np.fill_diagonal(r, 1.0)
    return (1.0 - shrinkage) * r + shrinkage * np.eye(z.shape[1])


def fit(data: ExpressionData, n_quantiles: int = 200, shrinkage: float = 0.05) -> CopulaParams:
    """Fit one copula per class of ``data`` (one for all samples when it is unlabelled)."""
    if n_quantiles < 2:
        raise OmigenInputError(f"n_quantiles must be at least 2, got {n_quantiles}")
    if not 0.0 < shrinkage <= 1.0:
        raise OmigenInputError(f"shrinkage must be in (0, 1], got {shrinkage}")
    if len(data) == 0:
        raise OmigenInputError("cannot fit a copula to no samples")
    labelled = data.labels is not None
    classes = data.classes if labelled else ["all"]
    probs = np.linspace(0.0, 1.0, n_quantiles)
    x = data.X.astype(np.float64)
    quantiles, chols, counts = [], [], []
    for c in classes:  # a loop over classes, not samples: each class is fitted on its whole block at once
        xc = x[data.labels == c] if labelled else x
        quantiles.append(np.quantile(xc, probs, axis=0))
        chols.append(np.linalg.cholesky(copula_correlation(normal_scores(xc), shrinkage)))
        counts.append(xc.shape[0])
    return CopulaParams(genes=[str(g) for g in data.genes], classes=list(classes), labelled=labelled,
                        units=data.units, probs=probs, quantiles=np.stack(quantiles), chol=np.stack(chols),
                        counts=np.asarray(counts, dtype=np.int64))


def quantile_transform(table: np.ndarray, probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Evaluate per-column quantile functions (``table``: K x genes, at evenly spaced ``probs``) at ``u``."""
    k = len(probs)
    pos = np.clip(u, 0.0, 1.0) * (k - 1)
    lo = np.clip(np.floor(pos).astype(np.int64), 0, k - 2)
    w = pos - lo
    below = np.take_along_axis(table, lo, axis=0)
    above = np.take_along_axis(table, lo + 1, axis=0)
    return below + w * (above - below)


def proportional_counts(params: CopulaParams, n: int) -> dict[str | None, int]:
    """``n`` split over the classes in training proportions (largest remainders, ties to the earlier class)."""
    share = params.counts / params.counts.sum() * n
    counts = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    keys = params.classes if params.labelled else [None]
    return {k: int(v) for k, v in zip(keys, counts) if v > 0}


def sample(params: CopulaParams, counts: dict[str | None, int], seed: int = 0) -> ExpressionData:
    """Draw ``counts[label]`` samples of each label (key None for unlabelled models); seeded."""
    from scipy.special import ndtr

    rng = np.random.default_rng(seed)
    index = {c: i for i, c in enumerate(params.classes)}
    blocks, labels = [], []
    for label, n in counts.items():
        if not params.labelled and label is not None:
            raise OmigenInputError(f"unknown label {label!r}: the model was fitted on unlabelled data")
        if params.labelled and label not in index:
            raise OmigenInputError(f"unknown label {label!r} (known: {', '.join(params.classes)})")
        c = index[label] if params.labelled else 0
        z = rng.standard_normal((int(n), len(params.genes))) @ params.chol[c].T
        blocks.append(quantile_transform(params.quantiles[c], params.probs, ndtr(z)))
        labels.append(np.full(int(n), str(label), dtype=object))
    total = sum(len(b) for b in blocks)
    return ExpressionData(
        X=np.concatenate(blocks) if blocks else np.zeros((0, len(params.genes))),
        genes=params.genes, samples=np.char.add("copula_", np.char.zfill(np.arange(1, total + 1).astype(str), 5)),
        labels=np.concatenate(labels) if params.labelled and labels else None, units=params.units)


def save(params: CopulaParams, path: str | Path) -> Path:
    """Write the parameters as plain tensors, strings and numbers (readable with ``weights_only=True``), atomically."""
    import torch

    from omigen.io import atomic_path

    state = {"format": FORMAT, "genes": params.genes, "classes": params.classes, "labelled": params.labelled,
             "units": params.units, "probs": torch.from_numpy(params.probs),
             "quantiles": torch.from_numpy(params.quantiles), "chol": torch.from_numpy(params.chol),
             "counts": torch.from_numpy(params.counts)}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load(path: str | Path) -> CopulaParams:
    """Read a checkpoint written by :func:`save`; a missing or foreign file is an OmigenInputError."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise OmigenInputError(f"no copula checkpoint at {p}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise OmigenInputError(f"cannot read copula checkpoint {p}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise OmigenInputError(f"{p} is not an {FORMAT} checkpoint")
    return CopulaParams(genes=list(state["genes"]), classes=list(state["classes"]), labelled=bool(state["labelled"]),
                        units=str(state["units"]), probs=state["probs"].numpy(),
                        quantiles=state["quantiles"].numpy(), chol=state["chol"].numpy(),
                        counts=state["counts"].numpy())
