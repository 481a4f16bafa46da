"""Reading and writing expression matrices: delimited tables with label files, and AnnData ``.h5ad``.

Tables
    A delimited text file (tab, comma or whitespace; detected from the header line) whose first
    column holds names and whose header row holds the other axis' names. ``orientation`` says
    which axis holds the samples:

    - ``"samples"``: one sample per row (columns are genes);
    - ``"genes"``: one gene per row (columns are samples), transposed on reading;
    - ``"auto"`` (default): when a label file is given, the axis whose names share more ids with
      the label file holds the samples (rows win a tie); without a label file, rows are samples.

Labels
    A label file has two columns, sample id and label, with or without a header row. The first
    row is taken as a header when its id is not a sample of the matrix and its label is not a
    label of any other row (``sample<TAB>label`` is a header, ``S9<TAB>tumor`` a stray sample).
    Labels are joined to the matrix BY SAMPLE ID, whatever the row order. Ids on one side only are
    an error naming the first few, unless ``unmatched="drop"`` keeps the samples present in both.
    A table that carries its own ``label`` column (as omigen's ``synthetic.tsv`` does) takes its
    labels from that column and does not use a label file.

Missing values (``missing``)
    ``"error"`` rejects them, naming the first; ``"zero"`` writes 0; ``"gene-mean"`` writes the
    gene's mean over the file's observed values; ``"not-expressed"`` is the GEMDiff convention for
    log2 expression with blanks for genes not expressed: every value ``x`` becomes
    ``log2(2**x + 1)`` (log2 FPKM -> log2(FPKM+1)) and a blank becomes 0, see
    :func:`omigen_expression.preprocess.log2_to_log2p1`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from omigen.data import ExpressionData
from omigen.errors import OmigenInputError
from omigen.io import atomic_path, require_file

ORIENTATIONS = ("auto", "samples", "genes")
MISSING = ("error", "zero", "gene-mean", "not-expressed")
UNMATCHED = ("error", "drop")
LABEL_COLUMN = "label"

DATA_DIR = Path(__file__).resolve().parent / "data"
#: The bundled GEMDiff breast tumour/normal split (log2 FPKM, blank = not expressed).
BUNDLED = {
    "train": DATA_DIR / "example_train.txt",
    "train_labels": DATA_DIR / "example_train_labels.txt",
    "test": DATA_DIR / "example_test.txt",
    "test_labels": DATA_DIR / "example_test_labels.txt",
}
BUNDLED_UNITS = "log2(FPKM+1)"


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise OmigenInputError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _shown(names, k: int = 5) -> str:
    names = list(names)
    return ", ".join(map(str, names[:k])) + (f" ... ({len(names)} in all)" if len(names) > k else "")


def _duplicates(names: list[str], what: str, path: Path) -> None:
    seen: set[str] = set()
    dup = [n for n in names if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
    if dup:
        raise OmigenInputError(f"{path.name}: duplicate {what}: {_shown(dict.fromkeys(dup))}")


def _sniff_sep(line: str) -> str | None:
    if "\t" in line:
        return "\t"
    if "," in line:
        return ","
    return None  # whitespace


def _head(path: Path, k: int = 2) -> list[str]:
    """The first ``k`` non-blank lines (fewer if the file is shorter)."""
    out: list[str] = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    out.append(line.rstrip("\r\n"))
                    if len(out) == k:
                        break
    except UnicodeDecodeError:
        raise OmigenInputError(f"{path.name} is not a UTF-8 text table") from None
    if any("\x00" in line for line in out):
        raise OmigenInputError(f"{path.name} is not a text table (it holds NUL bytes)")
    if not out:
        raise OmigenInputError(f"{path.name} is empty")
    return out


def _split(line: str, sep: str | None) -> list[str]:
    if sep is None:
        return line.split()
    return next(csv.reader([line], delimiter=sep))


def read_labels(path: str | Path, sample_ids: set[str] | None = None) -> dict[str, str]:
    """Sample id -> label from a two-column file (header optional, see the module notes)."""
    import pandas as pd

    p = require_file(path, "label file")
    sep = _sniff_sep(_head(p, 1)[0])
    try:
        frame = pd.read_csv(p, sep=sep if sep else r"\s+", header=None, dtype=str,
                            keep_default_na=False, skip_blank_lines=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise OmigenInputError(f"{p.name}: cannot parse label file ({str(exc).splitlines()[0]})") from None
    if frame.shape[1] != 2:
        raise OmigenInputError(f"{p.name}: a label file needs 2 columns (sample id, label), found {frame.shape[1]}")
    ids = frame.iloc[:, 0].str.strip().tolist()
    labels = frame.iloc[:, 1].str.strip().tolist()
    if ids and (sample_ids is None or ids[0] not in sample_ids) and labels[0] not in set(labels[1:]):
        ids, labels = ids[1:], labels[1:]
    if not ids:
        raise OmigenInputError(f"{p.name}: no labels")
    empty = [i for i, lab in zip(ids, labels) if not lab]
    if empty:
        raise OmigenInputError(f"{p.name}: empty label for sample(s) {_shown(empty)}")
    _duplicates(ids, "sample ids", p)
    return dict(zip(ids, labels))


def _join_labels(ids: list[str], table: dict[str, str], unmatched: str, what: str) -> tuple[np.ndarray, list[str]]:
    """Rows of ``ids`` to keep and their labels."""
    no_label = [i for i in ids if i not in table]
    idset = set(ids)
    no_row = [i for i in table if i not in idset]
    if unmatched == "error" and (no_label or no_row):
        parts = []
        if no_label:
            parts.append(f"{len(no_label)} sample(s) in {what} without a label: {_shown(no_label, 3)}")
        if no_row:
            parts.append(f"{len(no_row)} label(s) without a sample in {what}: {_shown(no_row, 3)}")
        raise OmigenInputError("; ".join(parts) + " (use unmatched=drop to keep the samples in both)")
    keep = np.array([i in table for i in ids], dtype=bool)
    if not keep.any():
        raise OmigenInputError(f"no sample of {what} has a label")
    return keep, [table[i] for i, k in zip(ids, keep) if k]


def _fill_missing(X: np.ndarray, missing: str, samples, genes, what: str) -> tuple[np.ndarray, str | None]:
    """Apply the missing-value policy; returns the matrix and new units (None: unchanged)."""
    from omigen_expression.preprocess import log2_to_log2p1

    nan = np.isnan(X)
    if missing == "not-expressed":
        return log2_to_log2p1(X), BUNDLED_UNITS
    if not nan.any():
        return X, None
    if missing == "error":
        i, j = np.argwhere(nan)[0]
        raise OmigenInputError(f"{what}: {int(nan.sum())} missing value(s), first at sample {samples[i]!r}, gene "
                               f"{genes[j]!r} (choose missing=zero, gene-mean or not-expressed)")
    if missing == "zero":
        return np.where(nan, 0.0, X).astype(np.float32), None
    observed = (~nan).sum(axis=0)
    if (observed == 0).any():
        j = int(np.argmax(observed == 0))
        raise OmigenInputError(f"{what}: gene {genes[j]!r} has no observed value to take a mean of")
    means = np.nanmean(X, axis=0)
    return np.where(nan, means[None, :], X).astype(np.float32), None


def read_table(path: str | Path, labels: str | Path | None = None, *, orientation: str = "auto",
               missing: str = "error", unmatched: str = "error", units: str = "unknown") -> ExpressionData:
    """Read a delimited expression matrix (and optional label file) into :class:`ExpressionData`.

    See the module notes for ``orientation``, ``missing`` and ``unmatched``; ``units`` names the
    values' units (replaced by ``log2(FPKM+1)`` under ``missing="not-expressed"``).
    """
    import pandas as pd

    _choice(orientation, ORIENTATIONS, "orientation")
    _choice(missing, MISSING, "missing")
    _choice(unmatched, UNMATCHED, "unmatched")
    p = require_file(path, "expression file")
    head = _head(p, 2)
    sep = _sniff_sep(head[0])
    header = [h.strip() for h in _split(head[0], sep)]
    if len(head) < 2:
        raise OmigenInputError(f"{p.name}: expected a header row and at least one row of names and values")
    width = len(_split(head[1], sep))
    # The header either names the index column too, or leaves it out (R's write.table style).
    if len(header) == width - 1:
        header = [""] + header
    if len(header) != width or width < 2:
        raise OmigenInputError(f"{p.name}: header has {len(header)} fields but the first row has {width}")
    cols = header[1:]
    label_at = cols.index(LABEL_COLUMN) + 1 if LABEL_COLUMN in cols else None
    text_cols = {0: str} if label_at is None else {0: str, label_at: str}
    try:
        body = pd.read_csv(p, sep=sep if sep else r"\s+", header=None, skiprows=1, dtype=text_cols,
                           skipinitialspace=True, skip_blank_lines=True)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise OmigenInputError(f"{p.name}: cannot parse table ({str(exc).splitlines()[0]})") from None
    if body.shape[1] != width:
        raise OmigenInputError(f"{p.name}: rows have {body.shape[1]} fields but the header has {width}")
    rows = body.iloc[:, 0].fillna("").str.strip().tolist()

    file_labels = None
    if label_at is not None:
        file_labels = body.iloc[:, label_at].fillna("").str.strip().tolist()
        body = body.drop(columns=body.columns[label_at])
        cols = cols[:label_at - 1] + cols[label_at:]
        orientation = "samples"
    values = body.iloc[:, 1:].copy()

    table = read_labels(labels, set(rows) | set(cols)) if (labels is not None and file_labels is None) else None
    if orientation == "auto":
        ids = set(table) if table else set()
        orientation = "genes" if len(ids & set(cols)) > len(ids & set(rows)) else "samples"

    for j in np.flatnonzero([not pd.api.types.is_numeric_dtype(t) for t in values.dtypes]):
        column = values.iloc[:, j]
        parsed = pd.to_numeric(column, errors="coerce")
        bad = parsed.isna().to_numpy() & column.notna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise OmigenInputError(f"{p.name}: value {column.iat[i]!r} at row {rows[i]!r}, column {cols[j]!r} "
                                   "is not a number")
        values.isetitem(j, parsed)
    X = values.to_numpy(dtype=np.float64)
    if orientation == "genes":
        X, rows, cols = X.T, cols, rows
    samples, genes = rows, cols
    for names, what in ((samples, "sample id"), (genes, "gene name")):
        if "" in names:
            raise OmigenInputError(f"{p.name}: empty {what} at position {names.index('') + 1}")
    _duplicates(samples, "sample ids", p)
    _duplicates(genes, "gene names", p)

    y = None
    if file_labels is not None:
        if "" in file_labels:
            raise OmigenInputError(f"{p.name}: empty label for sample {samples[file_labels.index('')]!r}")
        y = file_labels
    elif table is not None:
        keep, y = _join_labels(samples, table, unmatched, p.name)
        X, samples = X[keep], [s for s, k in zip(samples, keep) if k]
    X, new_units = _fill_missing(X.astype(np.float32), missing, samples, genes, p.name)
    return ExpressionData(X=X, genes=np.array(genes, dtype=object), samples=np.array(samples, dtype=object),
                          labels=None if y is None else np.array(y, dtype=object),
                          units=new_units or units).validate()


def read_h5ad(path: str | Path, *, label_key: str | None = "auto", layer: str | None = None,
              missing: str = "error", units: str | None = None) -> ExpressionData:
    """Read an AnnData file into :class:`ExpressionData`.

    The matrix is ``X``, ``layers[layer]``, or ``raw.X`` for ``layer="raw"``. Labels come from
    ``obs[label_key]``; ``"auto"`` uses an ``obs["label"]`` column when there is one (as in
    omigen's ``synthetic.h5ad``), ``None`` reads no labels. Units come from ``uns["units"]``
    unless ``units`` is given.
    """
    import anndata
    import scipy.sparse as sp

    _choice(missing, MISSING, "missing")
    p = require_file(path, "h5ad file")
    try:
        adata = anndata.read_h5ad(p)
    except Exception as exc:  # noqa: BLE001 - h5py/anndata raise many types for a bad file
        raise OmigenInputError(f"{p.name}: cannot read as AnnData ({type(exc).__name__}: {exc})") from None
    genes = adata.var_names
    if layer is None:
        X = adata.X
    elif layer == "raw":
        if adata.raw is None:
            raise OmigenInputError(f"{p.name}: layer 'raw' requested but the file has no raw data")
        X, genes = adata.raw.X, adata.raw.var_names
    elif layer in adata.layers:
        X = adata.layers[layer]
    else:
        raise OmigenInputError(f"{p.name}: no layer {layer!r} (layers: {_shown(adata.layers.keys()) or 'none'}, raw)")
    if X is None:
        raise OmigenInputError(f"{p.name}: the AnnData file has no expression matrix")
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    y = None
    if label_key == "auto":
        label_key = LABEL_COLUMN if LABEL_COLUMN in adata.obs.columns else None
    if label_key is not None:
        if label_key not in adata.obs.columns:
            raise OmigenInputError(f"{p.name}: no obs column {label_key!r} (columns: {_shown(adata.obs.columns)})")
        col = adata.obs[label_key]
        if col.isna().any():
            raise OmigenInputError(f"{p.name}: obs[{label_key!r}] is missing for sample "
                                   f"{str(adata.obs_names[int(np.argmax(col.isna().to_numpy()))])!r}")
        y = col.astype(str).to_numpy(dtype=object)
    samples = [str(s) for s in adata.obs_names]
    genes = [str(g) for g in genes]
    _duplicates(samples, "sample ids", p)
    _duplicates(genes, "gene names", p)
    X, new_units = _fill_missing(X.astype(np.float32), missing, samples, genes, p.name)
    units = new_units or units or str(adata.uns.get("units", "unknown"))
    return ExpressionData(X=X, genes=np.array(genes, dtype=object), samples=np.array(samples, dtype=object),
                          labels=y, units=units).validate()


def read_bundled(split: str = "train") -> ExpressionData:
    """The bundled GEMDiff breast data, ``split`` ``train`` or ``test``, in log2(FPKM+1)."""
    _choice(split, ("train", "test"), "bundled split")
    return read_table(BUNDLED[split], BUNDLED[f"{split}_labels"], missing="not-expressed")


def load_table(path: str | Path | None = None, **options: Any) -> ExpressionData:
    """DatasetSpec loader for tables; ``path=None`` is the bundled training split."""
    if path is None:
        return read_bundled(options.pop("split", "train"))
    return read_table(path, **options)


def load_h5ad(path: str | Path | None = None, **options: Any) -> ExpressionData:
    """DatasetSpec loader for ``.h5ad``; ``path=None`` is the bundled training split."""
    if path is None:
        return read_bundled(options.pop("split", "train"))
    return read_h5ad(path, **options)


def write_table(data: ExpressionData, path: str | Path) -> None:
    """Write samples x genes as TSV: ``sample``, then ``label`` when labelled, then one column per gene."""
    import pandas as pd

    frame = pd.DataFrame(data.X, columns=list(data.genes))
    if data.labels is not None:
        frame.insert(0, LABEL_COLUMN, data.labels)
    frame.insert(0, "sample", data.samples)
    sep = "," if str(path).lower().endswith(".csv") else "\t"
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=sep, index=False, float_format="%.6g")


def write_h5ad(data: ExpressionData, path: str | Path) -> None:
    """Write an AnnData file with labels in ``obs["label"]`` and the units in ``uns["units"]``."""
    import anndata
    import pandas as pd

    obs = pd.DataFrame(index=pd.Index(list(data.samples), name="sample"))
    if data.labels is not None:
        obs[LABEL_COLUMN] = pd.Categorical(list(data.labels))
    var = pd.DataFrame(index=pd.Index(list(data.genes), name="gene"))
    adata = anndata.AnnData(X=np.asarray(data.X, dtype=np.float32), obs=obs, var=var, uns={"units": data.units})
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)


def write_results_tsv(table: Any, path: str | Path) -> Path:
    """Write a result table (a pandas DataFrame: screening, perturbation, reconstruction) as TSV, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return Path(path)
