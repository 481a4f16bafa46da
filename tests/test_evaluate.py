"""omigen.evaluate: rows, directions, baselines, errors, skips and the run-folder outputs, on hand-made specs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from omigen.config import RunConfig
from omigen.data import ExpressionData, SequenceData
from omigen.errors import OmigenInputError
from omigen.evaluate import Evaluation, evaluate, evaluate_run
from omigen.io import write_json
from omigen.registry import BaselineSpec, MetricSpec, PipelineSpec, Registry
from omigen.run import RunContext

GENES = ["g0", "g1"]


def expr(value: float, n: int, prefix: str, labels=None) -> ExpressionData:
    """``n`` samples whose every expression value is ``value``."""
    return ExpressionData(X=np.full((n, 2), value), genes=GENES, samples=[f"{prefix}{i}" for i in range(n)],
                          labels=labels)


def mean_gap(real, synthetic, train=None, seed=0):
    return {"gap": float(abs(real.X.mean() - synthetic.X.mean())), "n": float(len(synthetic))}


def level(real, synthetic, train=None, seed=0):
    return {"auc": float(synthetic.X.mean())}


def boom(real, synthetic, train=None, seed=0):
    raise RuntimeError("metric exploded")


def memorised(real, synthetic, train=None, seed=0):
    return {"dcr": float(abs(synthetic.X.mean() - train.X.mean()))}


def n_classes(real, synthetic, train=None, seed=0):
    return {"k": float(len(set(synthetic.labels)))}


class ConstBaseline:
    """Draws the requested counts, every value ``value``; remembers what it was asked."""

    def __init__(self, value: float) -> None:
        self.value, self.calls = value, []

    def __call__(self, train, n_per_label, seed):
        self.calls.append((train, dict(n_per_label), seed))
        labels = [lab for lab, k in n_per_label.items() for _ in range(k)]
        n = len(labels)
        return expr(self.value, n, "b", labels=None if None in n_per_label else labels)


def make_registry(*metrics: MetricSpec, baselines: tuple[BaselineSpec, ...] = ()) -> Registry:
    reg = Registry()
    for spec in (*metrics, *baselines):
        reg.add(spec, "tests")
    return reg


GAP = MetricSpec("gap", ("expression",), {"gap": "lower", "n": "info"}, mean_gap)
LEVEL = MetricSpec("level", ("expression", "sequence"), {"auc": 0.5}, level)
BOOM = MetricSpec("boom", ("expression",), {"x": "higher"}, boom)
PRIV = MetricSpec("priv", ("expression",), {"dcr": "higher"}, memorised, needs_train=True)
LAB = MetricSpec("lab", ("expression",), {"k": "info"}, n_classes, needs_labels=True)
SEQ_ONLY = MetricSpec("seqonly", ("sequence",), {"s": "higher"}, level)


@pytest.fixture
def data():
    test = expr(0.0, 4, "te", labels=list("aabb"))
    train = expr(0.5, 6, "tr", labels=list("aaabbb"))
    synthetic = expr(1.0, 3, "sy", labels=list("aab"))
    return test, train, synthetic


def test_rows_columns_directions_and_values(data):
    test, train, synthetic = data
    const = ConstBaseline(2.0)
    reg = make_registry(GAP, LEVEL, SEQ_ONLY, baselines=(BaselineSpec("const", ("expression",), const),))
    ev = evaluate(test, synthetic, train, registry=reg, seed=7)
    assert list(ev.rows) == ["model", "baseline:const", "reference:real"]
    # seqonly does not accept expression data, so it is not run at all.
    assert ev.directions == {"gap.gap": "lower", "gap.n": "info", "level.auc": 0.5}
    assert ev.columns == ["gap.gap", "gap.n", "level.auc"]
    assert ev.rows["model"] == {"gap.gap": 1.0, "gap.n": 3.0, "level.auc": 1.0}
    assert ev.rows["baseline:const"] == {"gap.gap": 2.0, "gap.n": 3.0, "level.auc": 2.0}
    assert ev.rows["reference:real"] == {"gap.gap": 0.5, "gap.n": 6.0, "level.auc": 0.5}
    assert ev.errors == {}
    assert set(ev.seconds) == {"gap", "level"} and all(v >= 0 for v in ev.seconds.values())
    assert ev.sizes == {"test": 4, "model": 3, "baseline:const": 3, "reference:real": 6}
    assert list(ev.datasets) == ["baseline:const"]
    assert float(ev.datasets["baseline:const"].X.mean()) == 2.0


def test_baselines_get_synthetic_label_counts_train_and_seed(data):
    test, train, synthetic = data
    const = ConstBaseline(2.0)
    reg = make_registry(GAP, baselines=(BaselineSpec("const", ("expression",), const),))
    evaluate(test, synthetic, train, registry=reg, seed=11)
    ((got_train, counts, seed),) = const.calls
    assert got_train is train
    assert counts == {"a": 2, "b": 1}  # the synthetic data's counts, not train's 3/3
    assert seed == 11

    unlabelled = expr(1.0, 5, "u")
    evaluate(test, unlabelled, train, registry=reg)
    assert const.calls[-1][1] == {None: 5}


def test_reference_row_scores_train_against_test(data):
    test, train, synthetic = data
    seen = []

    def record(real, synthetic, train=None, seed=0):
        seen.append((real, synthetic, train, seed))
        return {"v": 1.0}

    reg = make_registry(MetricSpec("rec", ("expression",), {"v": "higher"}, record))
    evaluate(test, synthetic, train, registry=reg, seed=3)
    assert len(seen) == 2
    (r0, s0, t0, seed0), (r1, s1, t1, seed1) = seen
    assert r0 is test and s0 is synthetic and t0 is train
    assert r1 is test and s1 is train and t1 is train
    assert seed0 == seed1 == 3


def test_raising_metric_is_recorded_not_fatal(data):
    test, train, synthetic = data
    ev = evaluate(test, synthetic, train, registry=make_registry(BOOM, GAP))
    assert ev.errors["model"] == {"boom": "RuntimeError: metric exploded"}
    assert ev.errors["reference:real"] == {"boom": "RuntimeError: metric exploded"}
    assert math.isnan(ev.rows["model"]["boom.x"])
    assert ev.rows["model"]["gap.gap"] == 1.0
    assert ev.failures() == ev.errors and ev.skipped() == {}


def test_metric_with_wrong_outputs_is_an_error_but_keeps_declared_values(data):
    test, train, synthetic = data

    def sloppy(real, synthetic, train=None, seed=0):
        return {"a": 1.0, "extra": 2.0}

    spec = MetricSpec("sloppy", ("expression",), {"a": "higher", "b": "higher"}, sloppy)
    ev = evaluate(test, synthetic, registry=make_registry(spec))
    assert ev.rows["model"]["sloppy.a"] == 1.0 and math.isnan(ev.rows["model"]["sloppy.b"])
    assert ev.errors["model"]["sloppy"] == "ValueError: no value for 'b'; undeclared output(s) extra"


def test_needs_train_metric_skipped_without_train(data):
    test, train, synthetic = data
    const = ConstBaseline(2.0)
    reg = make_registry(GAP, PRIV, baselines=(BaselineSpec("const", ("expression",), const),))
    ev = evaluate(test, synthetic, None, registry=reg)
    assert list(ev.rows) == ["model"]  # baselines and the reference need train
    assert const.calls == []
    assert ev.errors == {"model": {"priv": "skipped: needs training data"}}
    assert ev.skipped() == {"model": {"priv": "needs training data"}} and ev.failures() == {}
    assert math.isnan(ev.rows["model"]["priv.dcr"]) and ev.rows["model"]["gap.gap"] == 1.0
    assert len(ev.notes) == 2

    with_train = evaluate(test, synthetic, train, registry=reg)
    assert with_train.rows["model"]["priv.dcr"] == 0.5
    # The training data scored against itself would be its own nearest copy: not scored.
    assert math.isnan(with_train.rows["reference:real"]["priv.dcr"])
    assert with_train.skipped() == {"reference:real": {"priv": "the reference is the training data itself"}}
    assert with_train.failures() == {}


def test_needs_labels_metric_skipped_on_unlabelled_rows(data):
    test, train, synthetic = data
    ev = evaluate(test, synthetic, train, registry=make_registry(LAB))
    assert ev.rows["model"]["lab.k"] == 2.0 and ev.errors == {}
    unlabelled = expr(1.0, 3, "u")
    ev = evaluate(test, unlabelled, train, registry=make_registry(LAB))
    assert ev.errors == {"model": {"lab": "skipped: needs labels"}}
    assert ev.rows["reference:real"]["lab.k"] == 2.0


def test_failing_or_wrong_baselines_are_recorded(data):
    test, train, synthetic = data

    def broken(train, n_per_label, seed):
        raise ValueError("cannot fit")

    def short(train, n_per_label, seed):
        return expr(2.0, 1, "s")

    reg = make_registry(GAP, baselines=(BaselineSpec("broken", ("expression",), broken),
                                        BaselineSpec("short", ("expression",), short)))
    ev = evaluate(test, synthetic, train, registry=reg)
    assert list(ev.rows) == ["model", "baseline:broken", "baseline:short", "reference:real"]
    assert ev.errors["baseline:broken"] == {"(generate)": "ValueError: cannot fit"}
    assert ev.errors["baseline:short"] == {"(generate)": "ValueError: returned 1 samples, asked for 3"}
    assert all(math.isnan(v) for v in ev.rows["baseline:broken"].values())
    assert ev.best("gap.gap") == "model"


def test_selection_and_input_errors(data):
    test, train, synthetic = data
    const = ConstBaseline(2.0)
    reg = make_registry(GAP, LEVEL, baselines=(BaselineSpec("const", ("expression",), const),))
    ev = evaluate(test, synthetic, train, registry=reg, metrics=["level", "gap", "level"], baselines=False,
                  reference=False)
    assert list(ev.rows) == ["model"] and ev.columns == ["level.auc", "gap.gap", "gap.n"]
    ev = evaluate(test, synthetic, train, registry=reg, baselines=["const"])
    assert "baseline:const" in ev.rows
    with pytest.raises(OmigenInputError, match="no metric 'mmd'.*known: gap, level"):
        evaluate(test, synthetic, train, registry=reg, metrics=["mmd"])
    with pytest.raises(OmigenInputError, match="no baseline 'nope'"):
        evaluate(test, synthetic, train, registry=reg, baselines=["nope"])
    with pytest.raises(OmigenInputError, match="training data"):
        evaluate(test, synthetic, None, registry=reg, baselines=["const"])
    seqs = SequenceData(sequences=["ACGT", "AAAA"], samples=["q1", "q2"])
    with pytest.raises(OmigenInputError, match="synthetic data is sequence but the test data is expression"):
        evaluate(test, seqs, train, registry=reg)


def test_best_honours_directions():
    ev = Evaluation(
        rows={"model": {"hi": 0.9, "lo": 0.3, "tg": 0.62, "info": 5.0, "tie": 1.0, "gone": math.nan},
              "baseline:a": {"hi": 0.95, "lo": 0.1, "tg": 0.45, "info": 9.0, "tie": 1.0, "gone": math.nan},
              "baseline:b": {"hi": math.nan, "lo": 0.2, "tg": 0.7, "info": 1.0, "tie": 0.5, "gone": math.nan},
              "reference:real": {"hi": 1.0, "lo": 0.0, "tg": 0.5, "info": 0.0, "tie": 2.0, "gone": 1.0}},
        directions={"hi": "higher", "lo": "lower", "tg": 0.5, "info": "info", "tie": "higher", "gone": "lower"})
    assert ev.best("hi") == "baseline:a"  # the reference (1.0) never competes; NaN is ignored
    assert ev.best("lo") == "baseline:a"
    assert ev.best("tg") == "baseline:a"  # |0.45-0.5| < |0.62-0.5| < |0.7-0.5|
    assert ev.best("info") is None
    assert ev.best("tie") == "model"
    assert ev.best("gone") is None
    with pytest.raises(OmigenInputError, match="unknown metric column 'zz'"):
        ev.best("zz")


def test_metrics_json_round_trips_with_nan_as_null(tmp_path, data):
    test, train, synthetic = data
    ev = evaluate(test, synthetic, train, registry=make_registry(GAP, BOOM, LEVEL))
    as_dict = ev.as_dict()
    json.dumps(as_dict, allow_nan=False)  # strict JSON: no NaN tokens
    path = write_json(tmp_path / "metrics.json", as_dict)
    loaded = json.loads(path.read_text())
    assert loaded["rows"]["model"]["boom.x"] is None
    assert loaded["rows"]["model"]["gap.gap"] == 1.0
    assert loaded["directions"] == {"gap.gap": "lower", "gap.n": "info", "boom.x": "higher", "level.auc": 0.5}
    assert loaded["best"] == {"gap.gap": "model", "gap.n": None, "boom.x": None, "level.auc": "model"}
    assert loaded["errors"]["model"]["boom"] == "RuntimeError: metric exploded"
    back = Evaluation.from_dict(loaded)
    assert math.isnan(back.rows["model"]["boom.x"])
    assert back.rows["reference:real"]["level.auc"] == 0.5
    assert back.directions == ev.directions and back.errors == ev.errors
    with pytest.raises(OmigenInputError, match="not an omigen metrics table"):
        Evaluation.from_dict({"rows": []})


def _pipeline_ctx(tmp_path, registry: Registry) -> RunContext:
    spec = PipelineSpec(name="stub", modality="expression", config_cls=RunConfig,
                        run=lambda ctx: None, sample=lambda run_dir, n, label, seed, **kw: None)
    return RunContext(pipeline=spec, config=RunConfig(seed=5, device="cpu"), out_dir=tmp_path / "run",
                      registry=registry, progress=False)


def test_evaluate_run_writes_metrics_and_report(tmp_path, data, capsys):
    test = ExpressionData(X=np.random.default_rng(0).normal(size=(8, 2)), genes=GENES,
                          samples=[f"te{i}" for i in range(8)], labels=list("aabbaabb"))
    _, train, synthetic = data
    const = ConstBaseline(2.0)
    reg = make_registry(GAP, BOOM, baselines=(BaselineSpec("const", ("expression",), const),))
    ctx = _pipeline_ctx(tmp_path, reg)
    ev = evaluate_run(ctx, train=train, test=test, synthetic=synthetic)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json", "report.html"]  # no temp files left
    loaded = json.loads((run / "metrics.json").read_text())
    assert list(loaded["rows"]) == ["model", "baseline:const", "reference:real"]
    assert loaded["rows"]["model"]["gap.n"] == 3.0
    assert const.calls[0][2] == 5  # the run's seed
    assert "evaluate" in ctx.timings and "report" in ctx.timings
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "stub" in html and "<img src=\"data:image/png;base64," in html
    assert "RuntimeError: metric exploded" in html
    assert "gap.gap" in capsys.readouterr().out
    back = Evaluation.from_dict(loaded).rows
    assert {r: {c: repr(v) for c, v in vals.items()} for r, vals in back.items()} == \
        {r: {c: repr(v) for c, v in vals.items()} for r, vals in ev.rows.items()}
