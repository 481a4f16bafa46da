"""The expression pipeline end to end on tiny settings: run folder, per-class counts, sampling, errors."""

import json

import numpy as np
import pytest

from omigen.errors import OmigenInputError
from omigen.run import run_pipeline
from omigen.testing import parametrize_plugin_checks
from omigen_expression import io
from omigen_expression.pipeline import TINY, proportional_counts, sample

torch = pytest.importorskip("torch")


@parametrize_plugin_checks("expression")
def test_contract(check, tmp_path):
    check(tmp_path)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("expr") / "run"
    result, ctx = run_pipeline("expression", out_dir=out, overrides={**TINY, "device": "cpu", "n_samples": 7},
                               progress=False)
    return out, result, ctx


def test_tiny_run_writes_synthetic_files_with_requested_counts(tiny_run):
    out, result, ctx = tiny_run
    for name in ("model.ckpt", "synthetic.tsv", "synthetic.h5ad", "metrics.json", "report.html", "config.json",
                 "manifest.json"):
        assert (out / name).is_file(), name
    table = io.read_table(out / "synthetic.tsv")
    assert table.label_counts() == {"normal": 7, "tumor": 7}
    assert table.units == "unknown" and table.genes.tolist() == io.read_bundled("train").genes.tolist()
    h5 = io.read_h5ad(out / "synthetic.h5ad")
    assert h5.units == "log2(FPKM+1)" and h5.label_counts() == {"normal": 7, "tumor": 7}
    np.testing.assert_allclose(h5.X, table.X, rtol=1e-5, atol=1e-5)
    # Inverse preprocessing keeps samples inside the training range (log2(FPKM+1) >= 0).
    train = io.read_bundled("train")
    assert (h5.X >= train.X.min(axis=0) - 1e-5).all() and (h5.X <= train.X.max(axis=0) + 1e-5).all()
    assert result.synthetic.label_counts() == {"normal": 7, "tumor": 7}
    assert result.files["synthetic"] == str(out / "synthetic.tsv")
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"load", "train", "sample"} <= set(manifest["timings"]) == set(ctx.timings)
    roles = {i["role"] for i in manifest["inputs"]}
    assert roles == {"train", "train_labels", "test", "test_labels"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"model", "baseline:gaussian", "reference:real"} <= set(metrics["rows"])


def test_sampling_by_label_and_in_training_proportions(tiny_run):
    out, _, _ = tiny_run
    normal = sample(out, 5, label="normal", seed=1)
    assert normal.labels.tolist() == ["normal"] * 5 and normal.X.shape == (5, 16)
    mixed = sample(out, 10, seed=1)
    # the tiny run trains on a stratified subset of 60 with the bundled 125:663 normal:tumor ratio
    assert mixed.label_counts() == proportional_counts(_class_counts(out), 10)
    assert np.array_equal(sample(out, 5, label="normal", seed=1).X, normal.X)
    assert not np.array_equal(sample(out, 5, label="normal", seed=2).X, normal.X)
    ddpm = sample(out, 3, label="tumor", sampler="ddpm", guidance=2.0)
    assert ddpm.label_counts() == {"tumor": 3}
    with pytest.raises(OmigenInputError, match=r"unknown label\(s\) 'metastasis'"):
        sample(out, 3, label="metastasis")
    with pytest.raises(OmigenInputError, match="sampler must be one of"):
        sample(out, 3, sampler="euler")
    with pytest.raises(OmigenInputError, match="not an expression run folder"):
        sample(out.parent, 3)


def _class_counts(run_dir):
    from omigen.train import load_checkpoint

    return load_checkpoint(run_dir / "model.ckpt")["run_config"]["class_counts"]


def test_proportional_counts_largest_remainder():
    assert proportional_counts({"a": 3, "b": 1}, 4) == {"a": 3, "b": 1}
    assert proportional_counts({"a": 663, "b": 125}, 10) == {"a": 8, "b": 2}
    assert proportional_counts({"a": 1, "b": 1}, 3) == {"a": 2, "b": 1}
    assert proportional_counts({"a": 5, "b": 1}, 1) == {"a": 1}


def _table(path, X, samples, genes):
    lines = ["\t" + "\t".join(genes)] + [s + "\t" + "\t".join(f"{v:.4f}" for v in row) for s, row in zip(samples, X)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_user_table_unlabelled_genes_x_samples_with_split_and_gene_subset(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.poisson(100, size=(40, 6)).astype(float)
    samples, genes = [f"s{i}" for i in range(40)], [f"g{j}" for j in range(6)]
    path = tmp_path / "expr.csv"
    path.write_text("gene," + ",".join(samples) + "\n"
                    + "".join(g + "," + ",".join(f"{v:.0f}" for v in X[:, j]) + "\n" for j, g in enumerate(genes)))
    overrides = {**TINY, "device": "cpu", "data": str(path), "orientation": "genes", "genes": ["g4", "g1", "g2"],
                 "max_samples": 0, "test_fraction": 0.25}
    result, ctx = run_pipeline("expression", out_dir=tmp_path / "run", overrides=overrides, progress=False)
    syn = result.synthetic
    assert syn.labels is None and syn.genes.tolist() == ["g4", "g1", "g2"] and len(syn) == 10
    assert syn.units == "unknown" and (syn.X >= 0).all()  # linear counts: log2(x+1) was applied and inverted
    assert [i["role"] for i in ctx.inputs] == ["data"]
    drawn = sample(tmp_path / "run", 4, seed=0)
    assert drawn.labels is None and drawn.X.shape == (4, 3)
    with pytest.raises(OmigenInputError, match="unconditional"):
        sample(tmp_path / "run", 4, label="x")


def test_bad_input_leaves_no_run_folder(tmp_path):
    expr = _table(tmp_path / "e.tsv", np.ones((4, 2)), ["a", "b", "c", "d"], ["g1", "g2"])
    (tmp_path / "lab.tsv").write_text("a\tx\nb\ty\nc\tx\n")
    out = tmp_path / "run"
    with pytest.raises(OmigenInputError, match="without a label: d"):
        run_pipeline("expression", out_dir=out, progress=False,
                     overrides={**TINY, "device": "cpu", "data": str(expr), "labels": str(tmp_path / "lab.tsv")})
    assert not out.exists()
    with pytest.raises(OmigenInputError, match="unknown gene"):
        run_pipeline("expression", out_dir=out, progress=False, overrides={**TINY, "genes": ["NOPE"]})
    with pytest.raises(OmigenInputError, match="needs data"):
        run_pipeline("expression", out_dir=out, progress=False, overrides={**TINY, "labels": "x.tsv"})
    with pytest.raises(OmigenInputError, match="denoiser.arch must be one of"):
        run_pipeline("expression", out_dir=out, progress=False, overrides={**TINY, "denoiser": {"arch": "rnn"}})
    assert not out.exists()
