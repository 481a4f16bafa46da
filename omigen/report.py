"""Showing an evaluation: the metrics table in the terminal, embedding plots and one self-contained HTML report.

``report.html`` is a single file a user can mail or archive: CSS is inline, figures are PNG data
URIs and nothing is fetched from elsewhere. Every string that comes from data, configs or error
messages is HTML-escaped; only :attr:`Section.html`, markup written by a pipeline, goes in as is.
matplotlib, pandas and rich are imported inside the functions so that importing this module
(for :class:`Section`) stays cheap.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omigen.errors import OmigenInputError
from omigen.evaluate import BASELINE_PREFIX, GENERATE, MODEL, REFERENCE, SKIPPED, Evaluation

if TYPE_CHECKING:
    import matplotlib.figure
    import pandas
    import rich.console
    import rich.table

    from omigen.data import Dataset
    from omigen.registry import Direction

LEGEND = ("↑ higher is better, ↓ lower is better, →x closest to x is best. "
          "* marks the best of the model and the baselines. The real reference scores the "
          "training data as if it were synthetic: what a perfect generator would approach.")


@dataclass
class Section:
    """One part of a report below the metrics: trusted HTML, a figure and/or a table, under a title."""

    title: str
    html: str = ""
    figure: "matplotlib.figure.Figure | None" = None
    table: "pandas.DataFrame | None" = None


def direction_label(direction: "Direction") -> str:
    """``↑`` (higher is better), ``↓`` (lower), ``→0.5`` (closest to 0.5) or ``""`` (not scored)."""
    if direction == "higher":
        return "↑"
    if direction == "lower":
        return "↓"
    if isinstance(direction, (int, float)) and not isinstance(direction, bool):
        return f"→{direction:g}"
    return ""


def row_label(row: str) -> str:
    """Short display name of an evaluation row: ``model``, the baseline's name, ``real (ref)``."""
    if row == REFERENCE:
        return "real (ref)"
    return row[len(BASELINE_PREFIX):] if row.startswith(BASELINE_PREFIX) else row


def format_value(value: float) -> str:
    """Four significant digits; ``—`` for a missing (NaN) value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4g}"


def _cell(ev: Evaluation, row: str, column: str) -> tuple[str, str, str]:
    """(text, kind, message) of one cell; kind is value, error or skipped."""
    value = ev.rows.get(row, {}).get(column, math.nan)
    errs = ev.errors.get(row, {})
    msg = errs.get(column.split(".", 1)[0]) or errs.get(GENERATE, "")
    if math.isnan(value):
        if msg.startswith(SKIPPED):
            return "skipped", "skipped", msg[len(SKIPPED):]
        if msg:
            return "error", "error", msg
    return format_value(value), "value", msg


def _columns(ev: Evaluation, columns: list[str] | None) -> list[str]:
    if columns is None:
        return ev.columns
    unknown = [c for c in columns if c not in ev.directions]
    if unknown:
        raise OmigenInputError(f"unknown metric column {unknown[0]!r} (known: {', '.join(ev.columns)})")
    return list(columns)


def metrics_table(evaluation: Evaluation) -> "pandas.DataFrame":
    """Rows (model, baselines, reference) x metric columns, NaN where missing.

    ``df.attrs`` holds ``directions`` (column -> direction), ``arrows`` (column -> ``↑``/``↓``/``→x``)
    and ``best`` (column -> best row or None).
    """
    import pandas as pd

    cols = evaluation.columns
    df = pd.DataFrame([[evaluation.rows[r].get(c, math.nan) for c in cols] for r in evaluation.rows],
                      index=list(evaluation.rows), columns=cols, dtype=float)
    df.attrs = {"directions": dict(evaluation.directions),
                "arrows": {c: direction_label(d) for c, d in evaluation.directions.items()},
                "best": {c: evaluation.best(c) for c in cols}}
    return df


def print_table(evaluation: Evaluation, console: "rich.console.Console | None" = None,
                columns: list[str] | None = None) -> "rich.table.Table":
    """Print the metrics (one line per metric, one column per row) with rich; returns the Table.

    Metrics run down the table so it stays narrow however many there are; the best of the model
    and baselines is marked ``*`` (and bold green where colour is available). Errors follow, one
    short line each.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    cols = _columns(evaluation, columns)
    rows = list(evaluation.rows)
    table = Table(box=box.SIMPLE_HEAD, title="omigen metrics", title_justify="left", pad_edge=False,
                  header_style="bold")
    table.add_column("metric", overflow="fold", max_width=30)
    table.add_column("", no_wrap=True)
    for row in rows:
        table.add_column(row_label(row), justify="right", overflow="fold",
                         style="dim" if row == REFERENCE else None)
    for col in cols:
        best = evaluation.best(col)
        cells = []
        for row in rows:
            text, kind, _ = _cell(evaluation, row, col)
            if row == best:
                cells.append(Text(text + "*", style="bold green"))
            else:
                cells.append(Text(text, style={"error": "red", "skipped": "dim"}.get(kind, "")))
        table.add_row(col, direction_label(evaluation.directions[col]), *cells)
    console.print(table)
    console.print(Text(LEGEND, style="dim"))
    # A metric usually fails the same way on every row: one line per distinct problem.
    problems: dict[tuple[str, str], list[str]] = {}
    for row, errs in evaluation.failures().items():
        for metric, msg in errs.items():
            problems.setdefault((metric, msg), []).append(row_label(row))
    for row, errs in evaluation.skipped().items():
        for metric, reason in errs.items():
            problems.setdefault((metric, SKIPPED + reason), []).append(row_label(row))
    for (metric, msg), where in problems.items():
        style = "dim" if msg.startswith(SKIPPED) else "red"
        console.print(Text(f"{metric} [{', '.join(where)}]: {msg}", style=style), no_wrap=True,
                      overflow="ellipsis")
    for note in evaluation.notes:
        console.print(Text(note, style="dim"), no_wrap=True, overflow="ellipsis")
    return table


def _sample_rows(n: int, max_points: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= max_points else np.sort(rng.choice(n, max_points, replace=False))


def _project(xr: np.ndarray, xs: np.ndarray, method: str, seed: int,
             n_neighbors: int) -> tuple[np.ndarray, np.ndarray, tuple[str, str]]:
    """2-D coordinates of real and synthetic rows from a projection fitted on the real rows only."""
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(2, xr.shape[0], xr.shape[1]), random_state=seed).fit(xr)
        zr, zs = pca.transform(xr), pca.transform(xs)
        ratio = list(pca.explained_variance_ratio_) + [0.0]
        names = (f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%} of variance)")
        if zr.shape[1] < 2:  # a single feature or sample: plot it on a flat second axis
            zr, zs = (np.pad(z, ((0, 0), (0, 2 - z.shape[1]))) for z in (zr, zs))
        return zr, zs, names
    if method == "umap":
        if xr.shape[0] < 4:
            raise OmigenInputError(f"UMAP needs at least 4 real samples, got {xr.shape[0]}")
        import umap

        reducer = umap.UMAP(n_neighbors=max(2, min(n_neighbors, xr.shape[0] - 1)), random_state=seed, n_jobs=1)
        with warnings.catch_warnings():
            # A seed makes UMAP single-threaded, which is what we ask for; its notice is noise.
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            zr = reducer.fit_transform(xr)
            zs = reducer.transform(xs)
        return zr, zs, ("UMAP 1", "UMAP 2")
    raise OmigenInputError(f"unknown embedding method {method!r} (use pca or umap)")


def embedding_figure(real: "Dataset", synthetic: "Dataset", method: str = "pca", seed: int = 0,
                     n_neighbors: int = 15, max_points: int = 5000) -> "matplotlib.figure.Figure":
    """Real (held-out) vs synthetic samples in 2-D: one panel coloured by source, one by class.

    The projection (PCA, or UMAP with ``n_neighbors``) is fitted on the real features only, so
    synthetic samples land where the real data's structure puts them. At most ``max_points`` of
    each are drawn (a seeded subsample) to keep the plot and UMAP fast on large data.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    xr, xs = np.asarray(real.features(), dtype=np.float32), np.asarray(synthetic.features(), dtype=np.float32)
    if xr.shape[1] != xs.shape[1]:
        raise OmigenInputError(f"real data has {xr.shape[1]} features but synthetic data has {xs.shape[1]}")
    if xr.shape[0] < 2 or xs.shape[0] < 1:
        raise OmigenInputError("an embedding needs at least 2 real and 1 synthetic sample")
    rng = np.random.default_rng(seed)
    ir, is_ = _sample_rows(len(xr), max_points, rng), _sample_rows(len(xs), max_points, rng)
    zr, zs, (ax_x, ax_y) = _project(xr[ir], xs[is_], method, seed, n_neighbors)

    # A Figure with its own Agg canvas, not pyplot: no global backend switch, nothing to close.
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    by_source, by_class = fig.subplots(1, 2, sharex=True, sharey=True)

    z = np.concatenate([zr, zs])
    source = np.r_[np.zeros(len(zr), int), np.ones(len(zs), int)]
    order = rng.permutation(len(z))  # interleave so neither source hides under the other
    palette = np.array(["#1f77b4", "#ff7f0e"])
    by_source.scatter(z[order, 0], z[order, 1], c=palette[source[order]], s=12, alpha=0.6, linewidths=0)
    by_source.legend(handles=[Line2D([], [], ls="", marker="o", color=palette[0], label=f"real (n={len(xr)})"),
                              Line2D([], [], ls="", marker="o", color=palette[1],
                                     label=f"synthetic (n={len(xs)})")], loc="best", fontsize=8)
    by_source.set_title("by source")

    def labels_of(data: "Dataset", idx: np.ndarray) -> np.ndarray:
        lab = getattr(data, "labels", None)
        return np.full(len(idx), "unlabelled", object) if lab is None else np.asarray(lab)[idx].astype(str)

    lr, ls = labels_of(real, ir), labels_of(synthetic, is_)
    classes, codes = np.unique(np.r_[lr, ls].astype(str), return_inverse=True)
    k = len(classes)
    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20" if k <= 20 else "turbo"]

    def colour(idx):
        return cmap(np.asarray(idx) / max(k - 1, 1)) if k > 20 else cmap(np.asarray(idx) % cmap.N)

    colours = colour(codes)
    by_class.scatter(zr[:, 0], zr[:, 1], c=colours[:len(zr)], s=12, alpha=0.6, marker="o", linewidths=0)
    by_class.scatter(zs[:, 0], zs[:, 1], c=colours[len(zr):], s=14, alpha=0.6, marker="x", linewidths=0.8)
    handles = [Line2D([], [], ls="", marker="o", color="grey", label="real"),
               Line2D([], [], ls="", marker="x", color="grey", label="synthetic")]
    handles += [Line2D([], [], ls="", marker="s", color=colour(i), label=str(c)[:24])
                for i, c in enumerate(classes[:12])]
    by_class.legend(handles=handles, loc="best", fontsize=7,
                    title=None if k <= 12 else f"first 12 of {k} classes")
    by_class.set_title("by class")
    for ax in (by_source, by_class):
        ax.set_xlabel(ax_x)
    by_source.set_ylabel(ax_y)
    fig.suptitle(f"{method.upper()} fitted on real data ({real.modality})")
    return fig


def figure_to_data_uri(fig: "matplotlib.figure.Figure") -> str:
    """The figure as a ``data:image/png;base64,...`` URI, for embedding in HTML."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;
 padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f5f5f5}
td.best{font-weight:bold;color:#0a6b2b;background:#e8f6ec}td.error{color:#b00020}td.skipped{color:#999}
td.ref,th.ref{color:#666;font-style:italic}td.dir{text-align:center;color:#555}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem;font-size:.9rem}
dl.meta dt{color:#666}dl.meta dd{margin:0}
pre{background:#f7f7f7;padding:.6rem;overflow-x:auto;font-size:.8rem}
.note{color:#555;font-size:.85rem}img{max-width:100%}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _header(title: str, ev: Evaluation, manifest: dict | None) -> str:
    m = manifest or {}
    versions = m.get("versions", {})
    items: list[tuple[str, Any]] = []
    if m:
        plugin = m.get("plugin") or "?"
        if m.get("plugin_version"):
            plugin += f" {m['plugin_version']}"
        items += [("pipeline", m.get("pipeline")), ("plugin", plugin), ("seed", m.get("seed")),
                  ("device", m.get("device")), ("started", m.get("started")),
                  ("wall time", f"{m['wall_seconds']:.1f} s" if "wall_seconds" in m else None)]
        if m.get("quick"):
            items.append(("mode", "quick (smoke run)"))
    if ev.modality:
        items.append(("modality", ev.modality))
    if ev.sizes:
        items.append(("samples", ", ".join(f"{row_label(k)}: {v}" for k, v in ev.sizes.items())))
    if versions:
        items.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    if not m:
        items.append(("provenance", "no run manifest (evaluated outside a pipeline run)"))
    body = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items if v is not None)
    return f"<h1>{_e(title)}</h1>\n<dl class=\"meta\">{body}</dl>\n"


def _metrics_html(ev: Evaluation) -> str:
    rows = list(ev.rows)
    kinds = {MODEL: "", REFERENCE: "<br><small>reference</small>"}
    head = "<tr><th>metric</th><th>dir.</th>" + "".join(
        f"<th class=\"{'ref' if r == REFERENCE else ''}\">{_e(row_label(r))}"
        f"{kinds.get(r, '<br><small>baseline</small>')}</th>" for r in rows) + "</tr>"
    lines = [head]
    for col in ev.columns:
        best = ev.best(col)
        cells = []
        for r in rows:
            text, kind, msg = _cell(ev, r, col)
            cls = "best" if r == best else (kind if kind != "value" else "")
            if r == REFERENCE:
                cls = (cls + " ref").strip()
            tip = f" title=\"{_e(msg)}\"" if msg else ""
            cells.append(f"<td class=\"{cls}\"{tip}>{_e(text)}{'*' if r == best else ''}</td>")
        arrow = direction_label(ev.directions[col]) or "info"
        lines.append(f"<tr><td>{_e(col)}</td><td class=\"dir\">{_e(arrow)}</td>{''.join(cells)}</tr>")
    return "<table class=\"metrics\">\n" + "\n".join(lines) + "\n</table>\n"


def _problems_html(ev: Evaluation) -> str:
    out = []
    failures: dict[tuple[str, str], list[str]] = {}
    for r, errs in ev.failures().items():
        for m, msg in errs.items():
            failures.setdefault((m, msg), []).append(row_label(r))
    if failures:
        body = "".join(f"<tr><td>{_e(m if m != GENERATE else 'baseline generator')}</td>"
                       f"<td>{_e(', '.join(where))}</td><td>{_e(msg)}</td></tr>"
                       for (m, msg), where in failures.items())
        out.append("<h2>Errors</h2>\n<table class=\"errors\"><tr><th>metric</th><th>rows</th><th>error</th></tr>"
                   f"{body}</table>\n")
    skipped = [(r, m, why) for r, errs in ev.skipped().items() for m, why in errs.items()]
    notes = [f"{m} skipped on {row_label(r)}: {why}" for r, m, why in skipped] + list(ev.notes)
    if notes:
        out.append("<ul class=\"note\">" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>\n")
    return "".join(out)


def _section_html(section: Section) -> str:
    parts = [f"<section>\n<h2>{_e(section.title)}</h2>\n"]
    if section.html:
        parts.append(section.html + "\n")
    if section.figure is not None:
        parts.append(f"<img src=\"{figure_to_data_uri(section.figure)}\" alt=\"{_e(section.title)}\">\n")
    if section.table is not None:
        parts.append(section.table.to_html(escape=True, na_rep="—", border=0,
                                           float_format=lambda v: f"{v:.4g}") + "\n")
    parts.append("</section>\n")
    return "".join(parts)


def render_report(*, title: str, evaluation: Evaluation, manifest: dict | None = None,
                  config: dict | None = None, sections: list[Section] | None = None) -> str:
    """The HTML text of a report (what :func:`write_report` writes)."""
    ev = evaluation
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{_e(title)}</title>\n"
             f"<style>{_CSS}</style>\n</head>\n<body>\n", _header(title, ev, manifest),
             "<h2>Metrics</h2>\n", f"<p class=\"note\">{_e(LEGEND)}</p>\n", _metrics_html(ev),
             _problems_html(ev)]
    parts += [_section_html(s) for s in sections or []]
    if ev.seconds:
        timing = "".join(f"<tr><td>{_e(k)}</td><td>{v:.2f}</td></tr>" for k, v in ev.seconds.items())
        parts.append(f"<h2>Metric time</h2>\n<table><tr><th>metric</th><th>seconds</th></tr>{timing}</table>\n")
    if config is not None:
        parts.append("<h2>Configuration</h2>\n<pre>" + _e(json.dumps(config, indent=2, default=str)) + "</pre>\n")
    if manifest is not None:
        parts.append("<details><summary>Full provenance manifest</summary>\n<pre>"
                     + _e(json.dumps(manifest, indent=2, default=str)) + "</pre></details>\n")
    from omigen import __version__

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<p class=\"note\">Written by omigen {_e(__version__)} on {_e(stamp)}.</p>\n</body>\n</html>\n")
    return "".join(parts)


def write_report(path: str | Path, *, title: str, evaluation: Evaluation, manifest: dict | None = None,
                 config: dict | None = None, sections: list[Section] | None = None) -> Path:
    """Write one self-contained HTML report atomically and return its path.

    Header (pipeline, seed, device, versions), the metrics table (model vs baselines vs the real
    reference, best per metric highlighted, directions as ↑ ↓ →x), errors and skipped metrics,
    then ``sections`` in order, metric timings, the config and the full manifest.
    """
    from omigen.io import atomic_path

    text = render_report(title=title, evaluation=evaluation, manifest=manifest, config=config, sections=sections)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")  # the page declares utf-8 whatever the locale
    return Path(path)
