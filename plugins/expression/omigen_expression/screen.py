"""Gene-set screening (GEMDiff style): which small gene subsets separate the classes?

Each gene set of a GMT file is cut into subsets of a few genes; for each subset the samples are
embedded using only those genes and the silhouette score of the class labels is measured in the
embedding. Subsets whose score lies more than one standard deviation above (below) the mean of all
screened subsets are flagged ``high`` (``low``).

Two embeddings are scored side by side:

- **PCA**: the first ``n_pcs`` (default 2, the dimension of the UMAP embedding) principal components
  of the subset's centred values. Deterministic and cheap: the PCAs of many subsets are computed at
  once from stacked covariance matrices.
- **UMAP** (as in GEMDiff): a 2-D UMAP with ``n_neighbors=90`` (capped at the number of samples
  minus one), ``min_dist=0.3`` and ``random_state=seed``. One fit per subset; fits run in parallel
  with joblib when ``n_jobs != 1``.

Silhouettes use Euclidean distances in the embedding and follow scikit-learn's definition (a sample
alone in its class scores 0). They are computed for many embeddings at once in blocks of bounded
size, so memory does not grow with the square of the sample count. Their cost does: with more than
``max_samples`` samples (default 5000) the scores are measured on one seeded random subset of
``max_samples`` samples, the same for every gene subset (scikit-learn's ``sample_size`` idea); the
embeddings themselves are always fitted on all samples.

The flags use the population standard deviation (``ddof=0``) of all subsets screened together.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from omigen.data import ExpressionData
from omigen.errors import OmigenInputError
from omigen.io import require_file

if TYPE_CHECKING:
    import pandas

COLUMNS = ("set", "subset", "n_genes", "genes", "silhouette_pca", "silhouette_umap", "flag_pca", "flag_umap")
#: Float64 elements a block of work may hold (distance blocks, gathered gene columns): 128 MiB.
BLOCK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Subset:
    """One screened unit: subset ``index`` (0-based) of gene set ``gene_set``, holding ``genes``."""

    gene_set: str
    index: int
    genes: tuple[str, ...]


class Subsets(list):
    """The subsets of :func:`split_gene_sets` (a list of :class:`Subset`) and how the sets matched the data.

    ``present[name]`` and ``missing[name]`` count each set's genes found in and absent from the
    data; ``skipped`` names the sets left out for having fewer than ``min_size`` genes present.
    """

    def __init__(self, items: Iterable[Subset] = (), present: dict[str, int] | None = None,
                 missing: dict[str, int] | None = None, skipped: list[str] | None = None) -> None:
        super().__init__(items)
        self.present = dict(present or {})
        self.missing = dict(missing or {})
        self.skipped = list(skipped or [])


def read_gmt(path: str | Path) -> dict[str, list[str]]:
    """Gene sets of a GMT file: name -> genes, in file order.

    One set per line, tab-separated: name, description, genes. Blank lines are skipped, empty
    fields (trailing tabs) ignored, and a gene named twice in a set is kept once, at its first
    place. A line without genes and a set name used twice are errors naming the file and line.
    """
    p = require_file(path, "gene set file")
    sets: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    try:
        with open(p, encoding="utf-8", newline="") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                fields = [f.strip() for f in line.rstrip("\r\n").split("\t")]
                name = fields[0]
                if not name:
                    raise OmigenInputError(f"{p.name}, line {lineno}: gene set without a name")
                genes = list(dict.fromkeys(g for g in fields[2:] if g))
                if not genes:
                    raise OmigenInputError(f"{p.name}, line {lineno}: gene set {name!r} has no genes "
                                           "(expected name, description, genes separated by tabs)")
                if name in sets:
                    raise OmigenInputError(f"{p.name}, line {lineno}: gene set {name!r} is already "
                                           f"defined on line {first_line[name]}")
                sets[name], first_line[name] = genes, lineno
    except UnicodeDecodeError:
        raise OmigenInputError(f"{p.name} is not a UTF-8 text file") from None
    if not sets:
        raise OmigenInputError(f"{p.name}: no gene sets")
    return sets


def split_gene_sets(gene_sets: Mapping[str, Sequence[str]], genes: Iterable[str], size: int = 16, seed: int = 0,
                    min_size: int | None = None) -> Subsets:
    """Cut each gene set into subsets of ``size`` genes present in the data.

    Genes absent from ``genes`` (the data's gene names) are dropped and counted in ``missing``.
    Each set's present genes are shuffled with an RNG seeded by ``seed`` and the set's name (so a
    set's subsets do not depend on the other sets) and cut into consecutive subsets of ``size``.
    The remainder of ``r = n_present % size`` genes becomes a subset of its own when
    ``r >= min_size`` and otherwise joins the last full subset (which then holds ``size + r``
    genes), so no present gene goes unscreened. A set with ``min_size <= n_present < size`` is
    one subset; a set with fewer than ``min_size`` present genes is skipped and named in
    ``skipped``. ``min_size`` defaults to ``max(2, size // 2)``.
    """
    if size < 2:
        raise OmigenInputError(f"subset size must be at least 2 genes, got {size}")
    min_size = max(2, size // 2) if min_size is None else min_size
    if not 2 <= min_size <= size:
        raise OmigenInputError(f"minimum subset size must be between 2 and the subset size {size}, got {min_size}")
    if seed < 0:
        raise OmigenInputError(f"seed must be >= 0, got {seed}")
    known = {str(g) for g in genes}
    out = Subsets()
    for name, members in gene_sets.items():
        members = list(dict.fromkeys(str(g) for g in members))
        present = [g for g in members if g in known]
        out.present[name], out.missing[name] = len(present), len(members) - len(present)
        if len(present) < min_size:
            out.skipped.append(name)
            continue
        rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
        order = [present[i] for i in rng.permutation(len(present))]
        full, rest = divmod(len(order), size)
        cuts = [order[i * size:(i + 1) * size] for i in range(full)]
        if rest >= min_size or not cuts:
            cuts.append(order[full * size:])
        elif rest:
            cuts[-1] = cuts[-1] + order[full * size:]
        out.extend(Subset(name, i, tuple(c)) for i, c in enumerate(cuts))
    return out


def silhouettes(embeddings: np.ndarray, codes: np.ndarray, block_elements: int = BLOCK_ELEMENTS) -> np.ndarray:
    """Mean silhouette score of each embedding in ``embeddings`` (m x n x d) for class ``codes`` (n ints).

    Scikit-learn's definition with Euclidean distances; a sample alone in its class scores 0.
    Distances are formed in blocks of at most about ``block_elements`` values.
    """
    E = np.asarray(embeddings, dtype=np.float64)
    m, n, d = E.shape
    codes = np.asarray(codes)
    _, codes = np.unique(codes, return_inverse=True)
    counts = np.bincount(codes).astype(np.float64)
    onehot = np.zeros((n, counts.size))
    onehot[np.arange(n), codes] = 1.0
    total = np.zeros(m)
    mb = max(1, min(m, block_elements // max(n, 1)))
    rows = max(1, block_elements // (mb * max(n, 1)))
    for s0 in range(0, m, mb):
        Es = E[s0:s0 + mb]
        for r0 in range(0, n, rows):
            r = slice(r0, min(n, r0 + rows))
            sq = np.zeros((Es.shape[0], r.stop - r0, n))
            for k in range(d):
                sq += (Es[:, r, None, k] - Es[:, None, :, k]) ** 2
            per_class = np.sqrt(sq) @ onehot  # (subsets, rows, classes): summed distances to each class
            own = codes[r]
            at = np.arange(own.size)
            a = per_class[:, at, own] / np.maximum(counts[own] - 1.0, 1.0)
            mean_to = per_class / counts
            mean_to[:, at, own] = np.inf
            b = mean_to.min(axis=2)
            with np.errstate(invalid="ignore", divide="ignore"):
                s = np.nan_to_num((b - a) / np.maximum(a, b))
            s[:, counts[own] == 1] = 0.0
            total[s0:s0 + mb] += s.sum(axis=1)
    return total / n


def _pca_embed(X: np.ndarray, cols: np.ndarray, mask: np.ndarray, n_pcs: int) -> np.ndarray:
    """First ``n_pcs`` PC scores (m x n x n_pcs) of column subsets ``cols`` (m x k, padded; ``mask``: real ones)."""
    G = X[:, cols].astype(np.float64)  # (n, m, k)
    G -= G.mean(axis=0)
    G *= mask[None]
    C = np.einsum("nmk,nml->mkl", G, G)
    _, V = np.linalg.eigh(C)  # eigenvalues ascending: the top components are the last columns
    top = V[..., ::-1][..., :n_pcs]
    return np.einsum("nmk,mkp->mnp", G, top)


def _umap_embed(Xs: np.ndarray, n_neighbors: int, min_dist: float, seed: int) -> np.ndarray:
    import warnings

    import umap

    with warnings.catch_warnings():
        # tiny or clustered inputs give "graph not fully connected" notes; the embedding is still scored
        warnings.simplefilter("ignore", UserWarning)
        reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed, n_jobs=1)
        return np.asarray(reducer.fit_transform(Xs), dtype=np.float64)


def flags(scores: np.ndarray) -> np.ndarray:
    """``"high"`` above mean + 1 SD, ``"low"`` below mean - 1 SD, ``""`` otherwise (NaN scores: ``""``)."""
    scores = np.asarray(scores, dtype=np.float64)
    out = np.full(scores.shape, "", dtype=object)
    finite = np.isfinite(scores)
    if not finite.any():
        return out
    mean, sd = scores[finite].mean(), scores[finite].std()
    out[finite & (scores > mean + sd)] = "high"
    out[finite & (scores < mean - sd)] = "low"
    return out


def _progress(enabled: bool, total: int, what: str):
    """A (context manager, advance) pair: a transient rich bar on stderr, or nothing."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext(), lambda k=1: None
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    task = bar.add_task(what, total=total)
    return bar, lambda k=1: bar.advance(task, k)


def _check_labels(data: ExpressionData, max_samples: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer class codes and the sample rows the silhouettes are measured on."""
    if data.labels is None:
        raise OmigenInputError("gene-set screening needs class labels; the data have none")
    classes, codes = np.unique(data.labels.astype(str), return_inverse=True)
    if classes.size < 2:
        raise OmigenInputError(f"gene-set screening needs at least 2 classes; all samples are {str(classes[0])!r}")
    n = len(data)
    if classes.size >= n:
        raise OmigenInputError(f"silhouettes need fewer classes than samples; {classes.size} classes "
                               f"for {n} samples")
    if max_samples is not None and max_samples < 3:
        raise OmigenInputError(f"max_samples must be at least 3, got {max_samples}")
    rows = np.arange(n)
    if max_samples is not None and n > max_samples:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))
        if np.unique(codes[rows]).size < 2:
            raise OmigenInputError(f"the {max_samples} samples drawn for silhouettes hold one class only; "
                                   "raise max_samples")
    return codes, rows


def _columns(data: ExpressionData, subsets: Sequence[Subset]) -> tuple[np.ndarray, np.ndarray]:
    """Padded column indices (m x k) and their mask for each subset."""
    index = {g: i for i, g in enumerate(data.genes.tolist())}
    width = max(len(s.genes) for s in subsets)
    cols = np.zeros((len(subsets), width), dtype=np.int64)
    mask = np.zeros((len(subsets), width), dtype=np.float64)
    for i, s in enumerate(subsets):
        if not s.genes:
            raise OmigenInputError(f"subset {s.index} of gene set {s.gene_set!r} has no genes")
        unknown = [g for g in s.genes if g not in index]
        if unknown:
            raise OmigenInputError(f"subset {s.index} of gene set {s.gene_set!r} names gene(s) not in the data: "
                                   f"{', '.join(unknown[:5])}" + (" ..." if len(unknown) > 5 else ""))
        cols[i, :len(s.genes)] = [index[g] for g in s.genes]
        mask[i, :len(s.genes)] = 1.0
    return cols, mask


def _batches(items: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def screen(data: ExpressionData, subsets: Sequence[Subset], n_neighbors: int = 90, min_dist: float = 0.3,
           seed: int = 0, umap: bool = True, n_jobs: int = 1, progress: bool = False, n_pcs: int = 2,
           max_samples: int | None = 5000) -> pandas.DataFrame:
    """Silhouette of the class labels for each gene subset, in PCA and (when ``umap``) UMAP space.

    ``data.X`` is used as given: pass preprocessed values (e.g. log2 and per-gene scaled). Returns
    one row per subset with the columns of :data:`COLUMNS` (``genes`` comma-joined;
    ``silhouette_umap`` NaN and ``flag_umap`` empty when ``umap`` is False), sorted by
    ``silhouette_umap`` (or ``silhouette_pca`` without UMAP) from highest to lowest. ``n_jobs``
    runs the UMAP fits in that many joblib processes (-1: all cores); ``progress`` shows a bar on
    stderr. See the module notes for the embeddings, ``max_samples`` and the flags.
    """
    import pandas as pd

    if not subsets:
        raise OmigenInputError("no gene subsets to screen (did every gene set miss the data's genes?)")
    if n_neighbors < 2:
        raise OmigenInputError(f"n_neighbors must be at least 2, got {n_neighbors}")
    if min_dist < 0:
        raise OmigenInputError(f"min_dist must be >= 0, got {min_dist}")
    if n_jobs == 0:
        raise OmigenInputError("n_jobs must be a positive number of processes or negative (-1: all cores), not 0")
    if n_pcs < 1:
        raise OmigenInputError(f"n_pcs must be at least 1, got {n_pcs}")
    codes, rows = _check_labels(data, max_samples, seed)
    if umap and len(data) < 3:
        raise OmigenInputError(f"UMAP needs at least 3 samples, got {len(data)}")
    cols, mask = _columns(data, subsets)
    X = data.X
    m, n = len(subsets), len(data)

    sil_pca = np.empty(m)
    chunk = max(1, BLOCK_ELEMENTS // (n * cols.shape[1]))
    steps = -(-m // chunk) + (m if umap else 0)
    bar, advance = _progress(progress, steps, "screening gene subsets")
    with bar:
        for s0 in range(0, m, chunk):
            E = _pca_embed(X, cols[s0:s0 + chunk], mask[s0:s0 + chunk], n_pcs)
            sil_pca[s0:s0 + chunk] = silhouettes(E[:, rows], codes[rows])
            advance()
        sil_umap = np.full(m, np.nan)
        if umap:
            k = min(n_neighbors, n - 1)
            jobs = (X[:, c[w > 0]] for c, w in zip(cols, mask))
            if n_jobs == 1:
                fits: Iterator[np.ndarray] = (_umap_embed(Xs, k, min_dist, seed) for Xs in jobs)
            else:
                from joblib import Parallel, delayed

                fits = Parallel(n_jobs=n_jobs, return_as="generator")(
                    delayed(_umap_embed)(Xs, k, min_dist, seed) for Xs in jobs)
            done = 0
            per_batch = max(1, BLOCK_ELEMENTS // (2 * n))  # embeddings held before they are scored
            for batch in _batches(_advancing(fits, advance), per_batch):
                E = np.stack(batch)
                sil_umap[done:done + len(batch)] = silhouettes(E[:, rows], codes[rows])
                done += len(batch)

    frame = pd.DataFrame({
        "set": [s.gene_set for s in subsets], "subset": [s.index for s in subsets],
        "n_genes": [len(s.genes) for s in subsets], "genes": [",".join(s.genes) for s in subsets],
        "silhouette_pca": sil_pca, "silhouette_umap": sil_umap,
        "flag_pca": flags(sil_pca), "flag_umap": flags(sil_umap),
    }, columns=list(COLUMNS))
    key = "silhouette_umap" if umap else "silhouette_pca"
    return frame.sort_values([key, "set", "subset"], ascending=[False, True, True], kind="mergesort",
                             ignore_index=True)


def _advancing(items: Iterable[np.ndarray], advance: Callable[[], None]) -> Iterator[np.ndarray]:
    for item in items:
        advance()
        yield item


def write_screen(df: "pandas.DataFrame", path: str | Path) -> Path:  # noqa: F821 - pandas imported lazily
    """Write a :func:`screen` table as TSV, atomically; returns the path."""
    from omigen_expression.io import write_results_tsv

    return write_results_tsv(df, path)
