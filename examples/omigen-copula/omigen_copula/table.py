"""Expression tables: reading and writing samples x genes TSV/CSV files, and the generated default data.

A table has sample ids in its first column, one column per gene and optionally a label column
(``label`` by default). Every problem with a file is an :class:`omigen.errors.OmigenInputError`
whose message names the file and what is wrong with it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from omigen.data import ExpressionData
from omigen.errors import OmigenInputError

#: Units of the generated default data: softplus of a Gaussian, in log2 units, like log2(FPKM + 1).
GENERATED_UNITS = "log2(x+1) (simulated)"


def _sep(path: Path) -> str:
    return "," if path.suffix.lower() == ".csv" else "\t"


def read_table(path: str | Path | None = None, label_column: str | None = "label",
               units: str = "unknown") -> ExpressionData:
    """Read a samples x genes table (``.csv`` comma-separated, anything else tab-separated).

    ``path=None`` returns the generated default dataset. ``label_column`` names the column of
    class labels (absent column: unlabelled data; ``None``/``""``: never read labels).
    """
    import pandas as pd

    from omigen.io import require_file

    if path is None:
        return generate_default()
    p = require_file(path, "expression table")
    kind = "CSV" if _sep(p) == "," else "TSV"
    try:
        with open(p, encoding="utf-8") as fh:
            header = [h.strip() for h in fh.readline().rstrip("\r\n").split(_sep(p))[1:]]
        df = pd.read_csv(p, sep=_sep(p), index_col=0, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise OmigenInputError(f"expression table {p.name} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OmigenInputError(f"cannot read {p.name} as a {kind} table: {first}") from None
    repeated = sorted(h for h, k in Counter(header).items() if k > 1)
    if repeated:  # pandas would silently rename them to "g.1"
        raise OmigenInputError(f"{p.name}: duplicate column name(s): {', '.join(repeated[:5])}")
    labels = None
    if label_column and label_column in df.columns:
        column = df.pop(label_column)
        if column.isna().any():
            raise OmigenInputError(f"{p.name}: sample {df.index[column.isna().to_numpy()][0]!r} has no "
                                   f"{label_column!r}")
        labels = column.astype(str).to_numpy()
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise OmigenInputError(f"{p.name} holds no expression values ({df.shape[0]} samples x "
                               f"{df.shape[1]} genes); expected sample ids, then one column per gene")
    values = df.apply(pd.to_numeric, errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        i, j = np.argwhere(bad)[0]
        cell = df.iat[i, j]
        what = "missing value" if pd.isna(cell) else f"non-numeric value {cell!r}"
        raise OmigenInputError(f"{p.name}: {what} at sample {df.index[i]!r}, gene {df.columns[j]!r}")
    data = ExpressionData(X=values.to_numpy(np.float32), genes=df.columns.astype(str).to_numpy(),
                          samples=df.index.astype(str).to_numpy(), labels=labels, units=units)
    try:
        return data.validate()
    except OmigenInputError as exc:
        raise OmigenInputError(f"{p.name}: {exc}") from None


def write_table(data: ExpressionData, path: str | Path, label_column: str = "label") -> Path:
    """Write ``data`` as a samples x genes table (labels as the last column), atomically."""
    import pandas as pd

    from omigen.io import write_text

    p = Path(path)
    df = pd.DataFrame(data.X, index=pd.Index(data.samples, name="sample"), columns=data.genes)
    if data.labels is not None:
        df[label_column] = data.labels
    return write_text(p, df.to_csv(sep=_sep(p), float_format="%.6g"))


def generate_default(n_samples: int = 400, n_genes: int = 12, seed: int = 0) -> ExpressionData:
    """Two classes ("A", "B") of correlated, skewed expression values; the same data for the same arguments.

    Genes share three latent factors (so they are correlated), the classes differ in their means,
    and softplus in log2 units makes the marginals positive and skewed, as expression values are.
    """
    if n_samples < 4 or n_genes < 2:
        raise OmigenInputError(f"generated data needs at least 4 samples and 2 genes, got {n_samples} x {n_genes}")
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0.0, 0.8, size=(n_genes, 3))
    noise = rng.uniform(0.2, 0.6, size=n_genes)
    mean_a = rng.normal(1.0, 1.0, size=n_genes)
    means = np.stack([mean_a, mean_a + rng.choice([-1.0, 1.0], size=n_genes) * rng.uniform(0.3, 1.2, size=n_genes)])
    is_b = np.arange(n_samples) >= n_samples // 2
    labels = np.where(is_b, "B", "A")
    z = (rng.standard_normal((n_samples, 3)) @ loadings.T + rng.standard_normal((n_samples, n_genes)) * noise
         + means[is_b.astype(np.int64)])
    x = np.logaddexp(0.0, z) / np.log(2.0)
    samples = np.char.add("sim_", np.char.zfill(np.arange(1, n_samples + 1).astype(str), 4))
    return ExpressionData(X=x, genes=[f"gene_{j + 1:02d}" for j in range(n_genes)], samples=samples,
                          labels=labels, units=GENERATED_UNITS).validate()
