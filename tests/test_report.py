"""omigen.report: the metrics DataFrame, the terminal table, embedding figures and the self-contained HTML."""

from __future__ import annotations

import base64
import io
import math
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from omigen.data import ExpressionData, SequenceData
from omigen.errors import OmigenInputError
from omigen.evaluate import Evaluation
from omigen.report import (Section, direction_label, embedding_figure, figure_to_data_uri, format_value,
                           metrics_table, print_table, write_report)


@pytest.fixture
def ev() -> Evaluation:
    return Evaluation(
        rows={"model": {"mmd.rbf": 0.0123, "c2st.auc": 0.61, "prdc.n": 40.0, "boom.x": math.nan},
              "baseline:marginals": {"mmd.rbf": 0.0456, "c2st.auc": 0.93, "prdc.n": 40.0, "boom.x": math.nan},
              "baseline:gaussian": {"mmd.rbf": 0.031, "c2st.auc": 0.58, "prdc.n": 40.0, "boom.x": math.nan},
              "reference:real": {"mmd.rbf": 0.001, "c2st.auc": 0.5, "prdc.n": 60.0, "boom.x": math.nan}},
        directions={"mmd.rbf": "lower", "c2st.auc": 0.5, "prdc.n": "info", "boom.x": "higher"},
        errors={row: {"boom": "RuntimeError: <b>bad</b> input"}
                for row in ("model", "baseline:marginals", "baseline:gaussian", "reference:real")},
        seconds={"mmd": 0.1, "c2st": 0.2, "prdc": 0.0, "boom": 0.0},
        modality="expression", sizes={"test": 60, "model": 40})


def expr(X, prefix, labels=None) -> ExpressionData:
    X = np.asarray(X, dtype=np.float32)
    return ExpressionData(X=X, genes=[f"g{i}" for i in range(X.shape[1])],
                          samples=[f"{prefix}{i}" for i in range(len(X))], labels=labels)


def test_direction_labels_and_values():
    assert [direction_label(d) for d in ("higher", "lower", 0.5, 0, "info")] == ["↑", "↓", "→0.5", "→0", ""]
    assert format_value(math.nan) == "—"
    assert format_value(0.123456) == "0.1235" and format_value(40.0) == "40"


def test_metrics_table_frame(ev):
    df = metrics_table(ev)
    assert list(df.index) == ["model", "baseline:marginals", "baseline:gaussian", "reference:real"]
    assert list(df.columns) == ["mmd.rbf", "c2st.auc", "prdc.n", "boom.x"]
    assert df.loc["baseline:gaussian", "c2st.auc"] == 0.58 and np.isnan(df.loc["model", "boom.x"])
    assert df.attrs["arrows"] == {"mmd.rbf": "↓", "c2st.auc": "→0.5", "prdc.n": "", "boom.x": "↑"}
    # the reference is closest to 0.5 and lowest, but only model and baselines compete
    assert df.attrs["best"] == {"mmd.rbf": "model", "c2st.auc": "baseline:gaussian", "prdc.n": None,
                                "boom.x": None}


def test_print_table_fits_100_columns_and_marks_best(ev):
    out = io.StringIO()
    table = print_table(ev, Console(file=out, width=100, color_system=None))
    text = out.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert len(table.columns) == 2 + 4  # metric, direction, then one per row
    mmd = next(line for line in lines if line.lstrip().startswith("mmd.rbf"))
    assert re.search(r"0\.0123\*\s+0\.0456\s+0\.031\s+0\.001\b", mmd)
    auc = next(line for line in lines if line.lstrip().startswith("c2st.auc"))
    assert "→0.5" in auc and "0.58*" in auc and "0.61*" not in auc
    # one line for an error repeated on every row, naming the rows
    err = [line for line in lines if "RuntimeError" in line]
    assert err == ["boom [model, marginals, gaussian, real (ref)]: RuntimeError: <b>bad</b> input"]


def test_print_table_many_metrics_and_baselines_stay_narrow():
    cols = [f"metric{i}.output_with_long_name{i}" for i in range(15)]
    rows = ["model"] + [f"baseline:generator{i}" for i in range(4)] + ["reference:real"]
    rng = np.random.default_rng(0)
    ev = Evaluation(rows={r: dict(zip(cols, rng.random(15) * 1000)) for r in rows},
                    directions={c: "higher" for c in cols})
    out = io.StringIO()
    print_table(ev, Console(file=out, width=100, color_system=None))
    assert max(len(line) for line in out.getvalue().splitlines()) <= 100


def test_print_table_column_selection(ev):
    out = io.StringIO()
    table = print_table(ev, Console(file=out, width=100, color_system=None), columns=["c2st.auc"])
    assert table.row_count == 1 and "mmd.rbf" not in out.getvalue()
    with pytest.raises(OmigenInputError, match="unknown metric column 'nope'"):
        print_table(ev, Console(file=io.StringIO()), columns=["nope"])


def _labelled_pair():
    rng = np.random.default_rng(1)
    real = expr(rng.normal(size=(30, 5)) * [5, 3, 1, 0.5, 0.1], "r", labels=["a"] * 15 + ["b"] * 15)
    synth = expr(rng.normal(size=(12, 5)), "s", labels=["a"] * 6 + ["c"] * 6)
    return real, synth


def test_embedding_figure_pca_is_fitted_on_real(ev):
    from sklearn.decomposition import PCA

    real, synth = _labelled_pair()
    fig = embedding_figure(real, synth, seed=0)
    by_source, by_class = fig.axes
    pca = PCA(n_components=2, random_state=0).fit(real.X)
    real_pts, synth_pts = (c.get_offsets() for c in by_class.collections)
    np.testing.assert_allclose(real_pts, pca.transform(real.X), atol=1e-4)
    np.testing.assert_allclose(synth_pts, pca.transform(synth.X), atol=1e-4)
    # the source panel holds every point once, in shuffled order
    (mixed,) = by_source.collections
    assert np.allclose(np.sort(mixed.get_offsets()[:, 0]),
                       np.sort(np.r_[real_pts[:, 0], synth_pts[:, 0]]))
    # colour by class: same label, same colour; shared classes match across real and synthetic
    rc, sc = (c.get_facecolors()[:, :3] for c in by_class.collections)
    assert np.allclose(rc[:15], rc[0]) and not np.allclose(rc[0], rc[15])
    assert np.allclose(sc[:6], rc[0]) and not np.allclose(sc[6], rc[0]) and not np.allclose(sc[6], rc[15])
    assert "PC1" in by_source.get_xlabel()
    legend = [t.get_text() for t in by_class.get_legend().get_texts()]
    assert legend == ["real", "synthetic", "a", "b", "c"]


def test_embedding_figure_other_modalities_and_errors():
    seqs = SequenceData(sequences=["ACGTAC", "ACGTTT", "GGGGAC", "TTACGA"], samples=list("wxyz"))
    fig = embedding_figure(seqs, seqs.subset(np.array([0, 1])))
    assert len(fig.axes) == 2
    real, synth = _labelled_pair()
    with pytest.raises(OmigenInputError, match="5 features but synthetic data has 3"):
        embedding_figure(real, expr(np.zeros((2, 3)), "z"))
    with pytest.raises(OmigenInputError, match="unknown embedding method 'tsne'"):
        embedding_figure(real, synth, method="tsne")


@pytest.mark.slow
def test_embedding_figure_umap():
    real, synth = _labelled_pair()
    fig = embedding_figure(real, synth, method="umap", seed=0, n_neighbors=5)
    real_pts, synth_pts = (c.get_offsets() for c in fig.axes[1].collections)
    assert real_pts.shape == (30, 2) and synth_pts.shape == (12, 2)
    assert np.isfinite(real_pts).all() and np.isfinite(synth_pts).all()
    assert fig.axes[0].get_xlabel() == "UMAP 1"


def test_figure_to_data_uri_is_png():
    real, synth = _labelled_pair()
    uri = figure_to_data_uri(embedding_figure(real, synth))
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    assert base64.b64decode(uri[len(prefix):])[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_report_is_one_self_contained_file(tmp_path, ev):
    real, synth = _labelled_pair()
    manifest = {"pipeline": "expr-diffusion", "plugin": "expression", "plugin_version": "0.3.1", "seed": 42,
                "device": "cpu", "started": "2026-01-01T00:00:00+00:00", "wall_seconds": 12.5,
                "versions": {"omigen": "0.1.0", "torch": "2.13.0"}, "argv": ["omigen", "run", "<x>"]}
    table = pd.DataFrame({"gene": ["<TP53>", "BRCA1"], "corr": [0.91234, math.nan]})
    sections = [Section("Embedding", figure=embedding_figure(real, synth)),
                Section("Per-gene <check>", html="<p class=\"note\">trusted markup</p>", table=table)]
    out = tmp_path / "report" / "report.html"
    path = write_report(out, title="Run <1> & co", evaluation=ev, manifest=manifest,
                        config={"steps": 100, "data": "<bundled>"}, sections=sections)
    assert path == out
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # written atomically, no leftovers
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<img src=\"data:image/png;base64,") == 1
    assert not re.search(r"https?://", page)
    assert "<link" not in page and "<script" not in page
    # header
    for text in ("expr-diffusion", "expression 0.3.1", "42", "cpu", "torch 2.13.0", "Run &lt;1&gt; &amp; co"):
        assert text in page
    # metrics table: values, arrows, best highlighted, reference shown
    for text in ("0.0123*", "0.0456", "0.001", "→0.5", "↓", "real (ref)", "marginals"):
        assert text in page
    assert re.search(r'<td class="best"[^>]*>0\.0123\*</td>', page)
    assert re.search(r'<td class="best"[^>]*>0\.58\*</td>', page)
    # data strings are escaped, trusted section markup is not
    assert "<b>bad</b>" not in page and "RuntimeError: &lt;b&gt;bad&lt;/b&gt; input" in page
    assert "&lt;TP53&gt;" in page and "<TP53>" not in page and "0.9123" in page
    assert "Per-gene &lt;check&gt;" in page and "<p class=\"note\">trusted markup</p>" in page
    assert "&lt;bundled&gt;" in page and "&lt;x&gt;" in page
    # sections come in order after the metrics
    assert page.index("<h2>Metrics</h2>") < page.index("<h2>Embedding</h2>") < page.index("Per-gene")


def test_write_report_without_manifest(tmp_path, ev):
    out = write_report(tmp_path / "r.html", title="t", evaluation=ev, manifest=None, config=None, sections=[])
    page = out.read_text(encoding="utf-8")
    assert "no run manifest" in page and "<img" not in page and "0.61" in page
