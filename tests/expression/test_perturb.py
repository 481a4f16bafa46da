"""Perturbation by DDIM inversion: known answer on an exact Gaussian denoiser, scores, p-values, the task."""

import json

import numpy as np
import pandas as pd
import pytest

from omigen.config import DiffusionConfig
from omigen.errors import OmigenInputError
from omigen.run import run_pipeline
from omigen_expression.perturb import gene_scores, perturb_latent, sign_flip_pvalues
from omigen_expression.pipeline import TINY

torch = pytest.importorskip("torch")
from omigen.diffusion import DiffusionModel  # noqa: E402


class ClassGaussianOracle(torch.nn.Module):
    """The exact noise estimate when class ``y`` has data ``N(means[y], std^2 I)``."""

    def __init__(self, alphas_cumprod, means, std):
        super().__init__()
        self.ab = torch.tensor(alphas_cumprod)
        self.means = torch.as_tensor(means, dtype=torch.float64)
        self.std = std

    def forward(self, x, t, y):
        ab = self.ab[t].view(-1, 1)
        mu = self.means[y.clamp(min=0)]
        return ((1 - ab).sqrt() * (x.double() - ab.sqrt() * mu) / (ab * self.std ** 2 + 1 - ab)).float()


def _oracle_model(means, std=0.2):
    cfg = DiffusionConfig(timesteps=200)
    model = DiffusionModel(torch.nn.Identity(), cfg, sample_shape=(len(means[0]),), n_classes=len(means))
    model.denoiser = ClassGaussianOracle(model.diffusion.alphas_cumprod64, means, std)
    return model


def test_perturbation_moves_a_sample_by_the_class_mean_difference():
    # Under the exact denoiser the DDIM map is x -> mu_y + (x - mu_y) * const, so inverting under A and
    # decoding under B carries a sample's offset from mu_A over to mu_B: perturbed = x - mu_A + mu_B.
    means = [[-0.5, 0.2, 0.0], [0.5, 0.2, -0.3]]
    model = _oracle_model(means)
    rng = np.random.default_rng(0)
    Z = (np.asarray(means[0]) + 0.2 * rng.standard_normal((200, 3))).astype(np.float32)
    perturbed, round_trip = perturb_latent(model, Z, source=0, target=1, steps=100)
    expected = Z - np.asarray(means[0]) + np.asarray(means[1])
    # DDIM inversion is exact only in the limit of many steps; its error grows with the distance from the mean
    np.testing.assert_allclose(perturbed, expected, atol=0.05)
    np.testing.assert_allclose(perturbed.mean(axis=0), expected.mean(axis=0), atol=0.005)
    np.testing.assert_allclose(round_trip, Z, atol=0.05)
    scores = gene_scores(Z, perturbed, ["up", "same", "down"], k=1.0, permutations=999, seed=0).set_index("gene")
    assert scores.loc["up", "mean_change"] == pytest.approx(1.0, abs=0.02)
    assert scores.loc["down", "mean_change"] == pytest.approx(-0.3, abs=0.02)
    assert scores.loc["up", "core"] == "up" and scores.loc["same", "core"] == ""
    assert scores.loc["up", "p_value"] == pytest.approx(1 / 1000)
    assert scores.loc["same", "p_value"] > 0.01


def test_perturbation_errors():
    model = _oracle_model([[0.0], [1.0]])
    Z = np.zeros((4, 1), np.float32)
    with pytest.raises(OmigenInputError, match="target class index 2"):
        perturb_latent(model, Z, 0, 2)
    model.n_classes = 0
    with pytest.raises(OmigenInputError, match="class-conditional"):
        perturb_latent(model, Z, 0, 1)


def test_gene_scores_hand_checked_and_sorted():
    original = np.zeros((4, 3))
    perturbed = np.array([[1.0, 0.0, -3.0], [1.0, 0.0, -3.0], [1.0, 1.0, -3.0], [1.0, -1.0, -3.0]])
    t = gene_scores(original, perturbed, ["a", "b", "c"], k=1.0, permutations=200, seed=1)
    assert t.gene.tolist() == ["c", "a", "b"]  # by absolute mean change
    row = t.set_index("gene")
    # mean changes 1, 0, -3: mean -2/3, SD over genes sqrt(26/9)
    z = (np.array([1.0, 0.0, -3.0]) + 2 / 3) / np.sqrt(26 / 9)
    np.testing.assert_allclose(row.loc[["a", "b", "c"], "z"], z)
    assert row.loc["c", "core"] == "down" and row.loc["a", "core"] == "" and row.loc["b", "core"] == ""
    assert row.loc["b", "mean_abs_change"] == pytest.approx(0.5)
    assert row.loc["b", "p_value"] == 1.0  # mean 0: every sign pattern is as extreme
    with pytest.raises(OmigenInputError, match="do not match"):
        gene_scores(original, perturbed[:, :2], ["a", "b"])
    with pytest.raises(OmigenInputError, match="k must be"):
        gene_scores(original, perturbed, ["a", "b", "c"], k=0)


def test_sign_flip_pvalues_exact_and_uniform_under_the_null():
    # With 3 samples there are 8 sign patterns; for D = (1, 2, 3) only +++ and --- are as extreme
    # as the observed mean, so the p-value tends to 2/8 = 0.25.
    p = sign_flip_pvalues(np.array([[1.0], [2.0], [3.0]]), permutations=20000, seed=0)
    assert p[0] == pytest.approx(0.25, abs=0.01)
    null = np.random.default_rng(1).standard_normal((30, 400))
    p = sign_flip_pvalues(null, permutations=999, seed=2)
    assert 0.03 < np.mean(p < 0.05) < 0.08 and 0.4 < p.mean() < 0.6
    with pytest.raises(OmigenInputError, match="at least 2 samples"):
        sign_flip_pvalues(np.ones((1, 3)))


@pytest.fixture(scope="module")
def perturb_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("perturb") / "run"
    overrides = {**TINY, "device": "cpu", "task": "perturb", "source": "tumor", "target": "normal"}
    result, _ = run_pipeline("expression", out_dir=out, overrides=overrides, progress=False)
    return out, result


def test_perturb_task_writes_tables_and_scores(perturb_run):
    from omigen_expression import io

    out, result = perturb_run
    genes = pd.read_csv(out / "perturbation_genes.tsv", sep="\t")
    assert len(genes) == 16 and {"mean_change", "core", "p_value", "q_value", "round_trip_error"} <= set(genes)
    assert (genes.p_value > 0).all() and (genes.p_value <= 1).all()
    perturbed = io.read_table(out / "perturbed.tsv")
    tumor_test = io.read_bundled("test")
    assert set(perturbed.labels) == {"normal"}
    assert set(perturbed.samples) <= set(tumor_test.samples[tumor_test.labels == "tumor"])
    summary = json.loads((out / "perturbation.json").read_text())
    assert summary["source"] == "tumor" and summary["n"] == len(perturbed)
    metrics = json.loads((out / "metrics.json").read_text())["rows"]
    assert set(metrics) == {"model", "baseline:mean-shift", "baseline:unperturbed", "reference:real"}
    assert 0 <= metrics["model"]["classified_target"] <= 1
    assert (out / "report.html").read_text().count("Per-gene perturbation scores") == 1
    assert result.files["genes"].endswith("perturbation_genes.tsv")


def test_perturb_from_a_finished_run_and_errors(perturb_run, tmp_path):
    out, _ = perturb_run
    base = {**TINY, "device": "cpu", "task": "perturb"}
    again, ctx = run_pipeline("expression", out_dir=tmp_path / "again", progress=False,
                              overrides={**base, "source": "normal", "target": "tumor", "from_run": str(out)})
    assert "train" not in ctx.timings and set(again.synthetic.labels) == {"tumor"}
    bad = tmp_path / "bad"
    for overrides, message in [({}, "needs source and target"),
                               ({"source": "tumor", "target": "tumor"}, "both 'tumor'"),
                               ({"source": "tumor", "target": "healthy", "from_run": str(out)},
                                "target class 'healthy' is not one"),
                               ({"source": "tumor", "target": "normal", "model": "vae"}, "cannot be inverted"),
                               ({"source": "tumor", "target": "normal", "perturb": {"split": "x"}}, "perturb.split")]:
        with pytest.raises(OmigenInputError, match=message):
            run_pipeline("expression", out_dir=bad, overrides={**base, **overrides}, progress=False)
    assert not bad.exists()
