"""The expression pipeline's other routes: screening task, gene-set and L1000 gene selection, VAE and WGAN."""

import json

import numpy as np
import pandas as pd
import pytest

from omigen.errors import OmigenInputError
from omigen.run import run_pipeline
from omigen_expression import io
from omigen_expression.l1000 import landmark_genes
from omigen_expression.pipeline import TINY, sample

pytest.importorskip("torch")

BREAST = io.read_bundled("train").genes.tolist()


def _gmt(path, sets):
    path.write_text("".join(f"{name}\tdescription\t" + "\t".join(genes) + "\n" for name, genes in sets.items()))
    return path


def test_screen_task_scores_gene_set_subsets(tmp_path):
    gmt = _gmt(tmp_path / "sets.gmt", {"FIRST": BREAST[:8] + ["NOT_A_GENE"], "SECOND": BREAST[8:], "TINY": ["ID4"]})
    overrides = {**TINY, "device": "cpu", "task": "screen", "gmt": str(gmt), "screen": {"size": 4, "n_neighbors": 10}}
    result, ctx = run_pipeline("expression", out_dir=tmp_path / "run", overrides=overrides, progress=False)
    table = pd.read_csv(tmp_path / "run" / "screen.tsv", sep="\t")
    assert len(table) == 4 and set(table.set) == {"FIRST", "SECOND"} and (table.n_genes == 4).all()
    assert table.silhouette_umap.is_monotonic_decreasing and table.silhouette_pca.between(-1, 1).all()
    summary = json.loads((tmp_path / "run" / "screen.json").read_text())
    assert summary["skipped_sets"] == ["TINY"] and summary["genes_missing"] == {"FIRST": 1}
    # training and test samples together (the tiny run caps each at about 60)
    assert 110 <= summary["samples"] == sum(summary["classes"].values()) <= 130 and summary["subsets"] == 4
    assert "train" not in ctx.timings and [i["role"] for i in ctx.inputs][0] == "gmt"
    assert "Gene-set screening" in (tmp_path / "run" / "report.html").read_text()
    bad = tmp_path / "bad"
    for extra, message in [({"gmt": None}, "needs gmt"), ({"genes": ["ID4"]}, "genes does not apply"),
                           ({"screen": {"n_jobs": 0}}, "n_jobs")]:
        with pytest.raises(OmigenInputError, match=message):
            run_pipeline("expression", out_dir=bad, overrides={**overrides, **extra}, progress=False)
    assert not bad.exists()


def test_gene_set_selects_the_genes_of_one_set(tmp_path):
    gmt = _gmt(tmp_path / "sets.gmt", {"PICK": ["ID4", "FABP7", "ABSENT", "TFPI"], "ONE": ["ID4"]})
    base = {**TINY, "device": "cpu", "gmt": str(gmt)}
    result, _ = run_pipeline("expression", out_dir=tmp_path / "run", overrides={**base, "gene_set": "PICK"},
                             progress=False)
    assert result.synthetic.genes.tolist() == ["ID4", "FABP7", "TFPI"]
    bad = tmp_path / "bad"
    for extra, message in [({"gene_set": "NOPE"}, "no gene set 'NOPE'"), ({"gene_set": "ONE"}, "need at least 2"),
                           ({"gene_set": "PICK", "gmt": None}, "gene_set needs gmt"),
                           ({"gene_set": "PICK", "random_genes": 3}, "not by random_genes and gene_set")]:
        with pytest.raises(OmigenInputError, match=message):
            run_pipeline("expression", out_dir=bad, overrides={**base, **extra}, progress=False)


def _landmark_table(path, n=240, seed=0):
    """Six landmarks (log-scale values) and three other genes that are linear in them, plus noise."""
    rng = np.random.default_rng(seed)
    marks = landmark_genes()[:6]
    L = rng.normal(6.0, 1.0, size=(n, 6))
    L[: n // 2, 0] += 2.0  # a class difference
    W = rng.normal(0, 0.5, size=(6, 3))
    R = 4.0 + (L - 6.0) @ W + rng.normal(0, 0.05, size=(n, 3))
    X = np.concatenate([L, R], axis=1)
    genes = marks + ["OTHER1", "OTHER2", "OTHER3"]
    samples = [f"s{i}" for i in range(n)]
    table = pd.DataFrame(X, index=samples, columns=genes)
    table.insert(0, "label", ["a"] * (n // 2) + ["b"] * (n - n // 2))
    table.to_csv(path, sep="\t", index_label="sample", float_format="%.5f")
    return marks


def test_landmarks_model_the_landmarks_and_reconstruct_the_rest(tmp_path):
    marks = _landmark_table(tmp_path / "expr.tsv")
    overrides = {**TINY, "device": "cpu", "data": str(tmp_path / "expr.tsv"), "max_samples": 0, "landmarks": True,
                 "log": "no"}
    result, ctx = run_pipeline("expression", out_dir=tmp_path / "run", overrides=overrides, progress=False)
    assert result.synthetic.genes.tolist() == marks
    rec = pd.read_csv(tmp_path / "run" / "reconstruction.tsv", sep="\t").set_index("gene")
    assert rec.index.tolist() == ["OTHER1", "OTHER2", "OTHER3"]
    assert (rec.r2_ridge > 0.95).all() and (rec.pearson_ridge > 0.97).all() and (rec.r2_mlp > 0.5).all()
    full = io.read_table(tmp_path / "run" / "synthetic_full.tsv")
    assert full.genes.tolist() == marks + ["OTHER1", "OTHER2", "OTHER3"] and len(full) == len(result.synthetic)
    np.testing.assert_allclose(full.X[:, :6], result.synthetic.X, atol=1e-4)
    summary = json.loads((tmp_path / "run" / "reconstruction.json").read_text())
    assert summary["landmarks"] == 6 and summary["best"] in ("ridge", "mlp") and "reconstruct" in ctx.timings


def test_landmarks_need_landmark_genes():
    from omigen_expression.l1000 import match_landmarks

    marks = landmark_genes()[:3]
    assert match_landmarks(marks, need_others=False) == (marks, [])  # an L1000 matrix: nothing to reconstruct
    with pytest.raises(OmigenInputError, match="L1000 landmark genes"):
        run_pipeline("expression", out_dir="unused", overrides={**TINY, "landmarks": True}, progress=False)


@pytest.mark.parametrize("model", ["vae", "wgan"])
def test_vae_and_wgan_generators_run_and_sample(model, tmp_path):
    out = tmp_path / model
    result, _ = run_pipeline("expression", out_dir=out, progress=False,
                             overrides={**TINY, "device": "cpu", "model": model, "n_samples": 5})
    assert result.synthetic.label_counts() == {"normal": 5, "tumor": 5}
    assert "model" in json.loads((out / "metrics.json").read_text())["rows"]
    drawn = sample(out, 6, label="tumor", seed=3)
    assert drawn.label_counts() == {"tumor": 6} and np.isfinite(drawn.X).all()
    assert np.array_equal(sample(out, 6, label="tumor", seed=3).X, drawn.X)
    with pytest.raises(OmigenInputError, match="model must be one of"):
        run_pipeline("expression", out_dir=tmp_path / "bad", overrides={**TINY, "model": "flow"}, progress=False)
