"""The contract kit on the example copula plugin (it passes) and on broken toy plugins (each break is caught)."""

from __future__ import annotations

import importlib.util
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from omigen import hookimpl
from omigen.config import RunConfig
from omigen.data import ExpressionData
from omigen.errors import OmigenInputError
from omigen.io import atomic_path, require_file, write_json, write_text
from omigen.plugins import load_host
from omigen.registry import DatasetSpec, MetricSpec, PipelineSpec
from omigen.run import RunResult
from omigen.testing import check_plugin, parametrize_plugin_checks, plugin_checks

COPULA_MISSING = importlib.util.find_spec("omigen_copula") is None


@pytest.mark.skipif(COPULA_MISSING, reason="omigen-copula is not installed: "
                                           "pip install -e examples/omigen-copula --no-deps")
@parametrize_plugin_checks("copula")
def test_copula_contract(check, tmp_path):
    check(tmp_path)


# A toy plugin: per-class Gaussian (mean, std) per gene. ``fault`` breaks one rule of the contract.

@dataclass
class ToyConfig(RunConfig):
    n_samples: int = 40


def _toy_data(n: int, labelled: bool) -> ExpressionData:
    rng = np.random.default_rng(7)
    labels = np.where(np.arange(n) % 2 == 0, "a", "b")
    X = rng.normal(size=(n, 3)) + (labels == "b")[:, None] * 2.0
    return ExpressionData(X=X, genes=["g1", "g2", "g3"], samples=np.arange(n).astype(str),
                          labels=labels if labelled else None)


def make_plugin(fault: str | None = None, labelled: bool = True) -> types.ModuleType:
    """A plugin module for ``load_host(extra=...)``, correct unless ``fault`` names what it gets wrong."""
    import torch

    def load(path=None, **options):
        if path is None:
            return _toy_data(40, labelled)
        if fault == "lenient-loader":
            X = np.loadtxt(path, ndmin=2)  # FileNotFoundError / ValueError escape as they are
        else:
            p = require_file(path, "toy table")
            if p.stat().st_size == 0:
                raise OmigenInputError(f"{p.name} is empty")
            try:
                X = np.loadtxt(p, ndmin=2)
            except (ValueError, UnicodeDecodeError):
                raise OmigenInputError(f"{p.name} is not a numeric matrix") from None
        return ExpressionData(X=X, genes=[f"g{j + 1}" for j in range(X.shape[1])],
                              samples=np.arange(len(X)).astype(str)).validate()

    def run(ctx):
        if fault == "crashing-run":
            raise RuntimeError("the toy run crashed")
        if fault == "early-folder":
            ctx.path("started").write_text("")
        data = load(ctx.config.data).subset(np.arange(ctx.config.n_samples)) if ctx.config.data is None \
            else load(ctx.config.data)
        classes = data.classes or ["all"]
        groups = [data.X[data.labels == c] if data.labels is not None else data.X for c in classes]
        state = {"classes": classes, "labelled": data.labels is not None, "genes": data.genes.tolist(),
                 "mean": torch.tensor(np.stack([g.mean(0) for g in groups])),
                 "std": torch.tensor(np.stack([g.std(0) + 1e-3 for g in groups]))}
        if fault == "pickled-checkpoint":
            state["config"] = ctx.config  # a dataclass needs pickle: weights_only=True refuses it
        with atomic_path(ctx.path("toy.ckpt")) as tmp:
            torch.save(state, tmp)
        synthetic = sample(ctx.out_dir, n=len(data), seed=ctx.seed)
        write_json(ctx.path("metrics.json"), {"rows": {}})
        if fault != "no-report":
            write_text(ctx.path("report.html"), "<html><body>toy report</body></html>\n")
        return RunResult(synthetic=synthetic)

    def sample(run_dir, n, label=None, seed=0, **options):
        p = Path(run_dir) / "toy.ckpt"
        if not p.is_file():
            raise OmigenInputError(f"{run_dir} is not a toy run folder")
        state = torch.load(p, weights_only=True)
        classes = state["classes"]
        if label is not None and (label not in classes or not state["labelled"]) and fault != "ignores-label":
            raise OmigenInputError(f"unknown label {label!r}")
        idx = np.arange(n) % len(classes) if label is None or label not in classes else \
            np.full(n, classes.index(label))
        rng = np.random.default_rng(None if fault == "unseeded" else seed)
        X = state["mean"].numpy()[idx] + state["std"].numpy()[idx] * rng.standard_normal((n, len(state["genes"])))
        if fault == "nan-samples":
            X[0, 0] = np.nan
        labels = np.asarray(classes, dtype=object)[idx] if state["labelled"] else None
        if fault == "new-labels" and labels is not None:
            labels = np.char.add("x-", labels.astype(str)).astype(object)
        return ExpressionData(X=X, genes=state["genes"], samples=np.char.add("toy", np.arange(n).astype(str)),
                              labels=labels)

    def mean_gap(real, synthetic, train=None, seed=0):
        gap = float(np.abs(real.X.mean(0) - synthetic.X.mean(0)).mean())
        return {"gap": float("nan") if fault == "nan-metric" else gap}

    def class_gap(real, synthetic, train=None, seed=0):
        return {"gap": float(np.abs(real.X[real.labels == "a"].mean() - synthetic.X[synthetic.labels == "a"].mean()))}

    mod = types.ModuleType("toy_plugin")

    @hookimpl
    def omigen_register_datasets(register):
        register(DatasetSpec(name="toy-table", modality="expression", load=load, suffixes=(".txt",)))

    @hookimpl
    def omigen_register_pipelines(register):
        if fault == "raising-hook":
            raise RuntimeError("the toy pipeline hook broke")
        register(PipelineSpec(name="toy", modality="expression", config_cls=ToyConfig, run=run, sample=sample,
                              tiny={"n_samples": 20}))

    @hookimpl
    def omigen_register_metrics(register):
        register(MetricSpec(name="toy-gap", modalities=("expression",), outputs={"gap": "lower"}, compute=mean_gap))
        register(MetricSpec(name="toy-class-gap", modalities=("expression",), outputs={"gap": "lower"},
                            compute=class_gap, needs_labels=True))

    for fn in (omigen_register_datasets, omigen_register_pipelines, omigen_register_metrics):
        setattr(mod, fn.__name__, fn)
    return mod


def toy_checks(fault: str | None = None, labelled: bool = True) -> dict:
    host = load_host(only=["toy"], extra={"toy": make_plugin(fault, labelled)})
    return dict(plugin_checks("toy", host))


def test_correct_toy_plugin_passes_every_check(tmp_path):
    host = load_host(only=["toy"], extra={"toy": make_plugin()})
    ids = [i for i, _ in plugin_checks("toy", host)]
    assert "toy:metric[toy:toy-gap]" in ids and "toy:rejects-bad-files[toy-table]" in ids
    check_plugin("toy", host, tmp_dir=tmp_path)


@pytest.mark.filterwarnings("ignore:loadtxt")  # the lenient loader reads the empty file as it comes
@pytest.mark.parametrize("fault, check_id, message", [
    ("unseeded", "toy:seeded-sampling[toy]", "two sample.* calls differ"),
    ("no-report", "toy:tiny-run[toy]", "lacks report.html"),
    ("pickled-checkpoint", "toy:tiny-run[toy]", r"weights_only=True"),
    ("nan-samples", "toy:samples-in-domain[toy]", "non-finite"),
    ("new-labels", "toy:samples-in-domain[toy]", "labels not in the training data"),
    ("ignores-label", "toy:rejects-bad-sample-requests[toy]", "an unknown label: sampled without error"),
    ("lenient-loader", "toy:rejects-bad-files[toy-table]", "raised FileNotFoundError"),
    ("lenient-loader", "toy:rejects-missing-data[toy]", "instead of OmigenInputError"),
    ("early-folder", "toy:rejects-missing-data[toy]", "created the run folder"),
    ("nan-metric", "toy:metric[toy:toy-gap]", "non-finite values"),
])
def test_each_broken_rule_fails_its_check(fault, check_id, message, tmp_path):
    checks = toy_checks(fault)
    with pytest.raises(AssertionError, match=message):
        checks[check_id](tmp_path)


def test_checks_that_need_a_failed_run_say_so(tmp_path):
    checks = toy_checks("crashing-run")
    with pytest.raises(AssertionError, match="RuntimeError: the toy run crashed"):
        checks["toy:tiny-run[toy]"](tmp_path)
    with pytest.raises(AssertionError, match="the tiny run of pipeline 'toy' failed"):
        checks["toy:seeded-sampling[toy]"](tmp_path)


def test_failed_plugin_shows_its_error(tmp_path):
    checks = toy_checks("raising-hook")
    assert list(checks) == ["toy:loaded"]
    with pytest.raises(AssertionError, match="failed to load: RuntimeError: the toy pipeline hook broke"):
        checks["toy:loaded"](tmp_path)


def test_unknown_plugin_is_named(tmp_path):
    host = load_host(only=["toy"], extra={"toy": make_plugin()})
    with pytest.raises(AssertionError, match="no plugin named 'nonesuch' was loaded"):
        dict(plugin_checks("nonesuch", host))["nonesuch:loaded"](tmp_path)


def test_check_plugin_lists_every_failed_check(tmp_path):
    host = load_host(only=["toy"], extra={"toy": make_plugin("unseeded")})
    with pytest.raises(AssertionError) as info:
        check_plugin("toy", host, tmp_dir=tmp_path)
    text = str(info.value)
    assert text.startswith(f"plugin 'toy' failed 2 of {len(plugin_checks('toy', host))} contract checks")
    failed = [line[2:].split(": ")[0] for line in text.splitlines() if line.startswith("- ")]
    # Unseeded sampling also makes the original and the re-saved copy disagree.
    assert failed == ["toy:seeded-sampling[toy]", "toy:checkpoint-roundtrip[toy]"]


def test_label_metric_is_skipped_on_unlabelled_data(tmp_path):
    checks = toy_checks(labelled=False)
    reason = checks["toy:metric[toy:toy-class-gap]"].run(tmp_path)
    assert reason is not None and "needs labels" in reason
    assert checks["toy:metric[toy:toy-gap]"].run(tmp_path / "other") is None
