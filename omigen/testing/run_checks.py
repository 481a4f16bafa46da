"""Checks on a pipeline's behaviour: a tiny CPU run and what can be drawn, scored and reloaded from it.

All but the bad-input check share one tiny run per pipeline (:mod:`omigen.testing.runs`).
Every check raises AssertionError with a message naming the pipeline and what went wrong.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np

from omigen.errors import OmigenInputError
from omigen.registry import Registry
from omigen.testing.runs import checkpoints, halves, align, reference_datasets, tiny_run

#: Files every run folder holds besides its checkpoints.
RUN_FILES = ("config.json", "manifest.json", "metrics.json", "report.html")


class CheckSkipped(Exception):
    """A check that does not apply to this data (e.g. a metric needing labels on unlabelled data)."""


def _container(modality: str) -> type:
    from omigen.data import ExpressionData, GenotypeData, SequenceData

    return {"expression": ExpressionData, "sequence": SequenceData, "genotype": GenotypeData}[modality]


def _sample(registry: Registry, name: str, run_dir: Path, n: int, label, seed: int):
    spec = registry.get("pipelines", name)
    try:
        return spec.sample(run_dir, n=n, label=label, seed=seed)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"pipeline {name!r}: sample(run_dir, n={n}, label={label!r}, seed={seed}) raised "
                             f"{type(exc).__name__}: {exc}") from exc


def _load_checkpoint(path: Path):
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"checkpoint {path.name} does not load with torch.load(weights_only=True): "
                             f"{type(exc).__name__}: {exc}") from exc


def check_tiny_run(tmp: Path, registry: Registry, name: str) -> None:
    """The tiny CPU run completes and leaves config, manifest, metrics, report and a loadable checkpoint."""
    from omigen.run import RunResult

    run = tiny_run(registry, name)
    if run.error is not None:
        raise AssertionError(f"pipeline {name!r}: run_pipeline with its tiny config on CPU failed: "
                             f"{type(run.error).__name__}: {run.error}\n{run.trace}")
    if not isinstance(run.result, RunResult):
        raise AssertionError(f"pipeline {name!r}: run(ctx) returned {type(run.result).__name__}, not RunResult")
    missing = [f for f in RUN_FILES if not (run.run_dir / f).is_file()]
    if missing:
        raise AssertionError(f"pipeline {name!r}: the run folder lacks {', '.join(missing)} "
                             f"(has: {', '.join(sorted(p.name for p in run.run_dir.iterdir()))})")
    for f in ("config.json", "manifest.json", "metrics.json"):
        try:
            json.loads((run.run_dir / f).read_text())
        except ValueError as exc:
            raise AssertionError(f"pipeline {name!r}: {f} is not valid JSON: {exc}") from exc
    if not (run.run_dir / "report.html").read_text(errors="replace").strip():
        raise AssertionError(f"pipeline {name!r}: report.html is empty")
    found = checkpoints(run.run_dir)
    if not found:
        raise AssertionError(f"pipeline {name!r}: no checkpoint file (*.ckpt, *.pt, *.pth) in the run folder")
    for path in found:
        _load_checkpoint(path)


def _check_domain(data, name: str, what: str, modality: str, train_labels: set[str] | None) -> None:
    cls = _container(modality)
    if not isinstance(data, cls):
        raise AssertionError(f"pipeline {name!r}: {what} is a {type(data).__name__}, expected {cls.__name__}")
    try:
        data.validate()
    except OmigenInputError as exc:
        raise AssertionError(f"pipeline {name!r}: {what} is outside the {modality} domain: {exc}") from exc
    if data.labels is None:
        return
    if train_labels is None:
        raise AssertionError(f"pipeline {name!r}: {what} has labels but the training data has none")
    extra = sorted(set(data.labels.tolist()) - train_labels)
    if extra:
        raise AssertionError(f"pipeline {name!r}: {what} has labels not in the training data: {extra[:5]}")


def check_samples_in_domain(tmp: Path, registry: Registry, name: str) -> None:
    """The run's synthetic set and ``sample()`` output are valid containers whose labels come from training."""
    run = tiny_run(registry, name).require()
    spec = run.pipeline
    real = run.reference()
    labels = None if real.labels is None else set(real.labels.tolist())
    _check_domain(run.result.synthetic, name, "result.synthetic", spec.modality, labels)
    drawn = _sample(registry, name, run.run_dir, 12, None, 1)
    _check_domain(drawn, name, "sample(n=12)", spec.modality, labels)
    if len(drawn) != 12:
        raise AssertionError(f"pipeline {name!r}: sample(n=12) returned {len(drawn)} samples")
    if labels:
        label = sorted(labels)[0]
        one = _sample(registry, name, run.run_dir, 4, label, 1)
        _check_domain(one, name, f"sample(label={label!r})", spec.modality, labels)
        if one.labels is None or set(one.labels.tolist()) != {label}:
            got = None if one.labels is None else sorted(set(one.labels.tolist()))
            raise AssertionError(f"pipeline {name!r}: sample(label={label!r}) returned labels {got}")


def _same(a, b) -> bool:
    fa, fb = np.asarray(a.features()), np.asarray(b.features())
    la = None if a.labels is None else a.labels.tolist()
    lb = None if b.labels is None else b.labels.tolist()
    return fa.shape == fb.shape and np.array_equal(fa, fb) and la == lb


def check_seeded_sampling(tmp: Path, registry: Registry, name: str) -> None:
    """Same seed, same samples (exactly); another seed, other samples."""
    run = tiny_run(registry, name).require()
    a = _sample(registry, name, run.run_dir, 12, None, 3)
    b = _sample(registry, name, run.run_dir, 12, None, 3)
    if not _same(a, b):
        raise AssertionError(f"pipeline {name!r}: two sample(n=12, seed=3) calls differ; sampling must be "
                             "a function of the seed alone")
    c = _sample(registry, name, run.run_dir, 12, None, 4)
    if _same(a, c):
        raise AssertionError(f"pipeline {name!r}: sample(seed=3) and sample(seed=4) are identical; the seed "
                             "is ignored")


def check_checkpoint_roundtrip(tmp: Path, registry: Registry, name: str) -> None:
    """A copy of the run folder whose checkpoints went through load(weights_only)+save samples the same."""
    import torch

    run = tiny_run(registry, name).require()
    copy = tmp / "run-copy"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(run.run_dir, copy)
    found = checkpoints(copy)
    if not found:
        raise AssertionError(f"pipeline {name!r}: no checkpoint file in the run folder")
    for path in found:
        torch.save(_load_checkpoint(path), path)
    original = _sample(registry, name, run.run_dir, 12, None, 3)
    copied = _sample(registry, name, copy, 12, None, 3)
    if not _same(original, copied):
        raise AssertionError(f"pipeline {name!r}: samples from the re-saved copy of the run folder differ from "
                             "the original's; sample() must depend only on the given run folder's checkpoints")


def _scoring_sets(run):
    synthetic = run.result.synthetic
    real, train = halves(align(run.reference(), synthetic))
    return real, synthetic, train


def check_metric(tmp: Path, registry: Registry, name: str, metric: str) -> None:
    """Metric ``metric`` returns finite numbers for exactly its declared outputs on this pipeline's data."""
    run = tiny_run(registry, name).require()
    spec = registry.get("metrics", metric)
    real, synthetic, train = _scoring_sets(run)
    if spec.needs_labels and (real.labels is None or synthetic.labels is None):
        raise CheckSkipped(f"metric {metric!r} needs labels and pipeline {name!r}'s data has none")
    try:
        values = spec.compute(real, synthetic, train=train, seed=0)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"metric {metric!r} on pipeline {name!r}'s data raised {type(exc).__name__}: "
                             f"{exc}") from exc
    if not isinstance(values, dict):
        raise AssertionError(f"metric {metric!r} returned {type(values).__name__}, not a dict")
    missing, extra = sorted(set(spec.outputs) - set(values)), sorted(set(values) - set(spec.outputs))
    if missing or extra:
        raise AssertionError(f"metric {metric!r} returned keys that differ from its declared outputs: "
                             f"missing {missing}, undeclared {extra}")
    bad = {}
    for key, value in values.items():
        try:
            if not math.isfinite(float(value)):
                bad[key] = value
        except (TypeError, ValueError):
            bad[key] = value
    if bad:
        raise AssertionError(f"metric {metric!r} on pipeline {name!r}'s data gave non-finite values: {bad}")


def check_baseline(tmp: Path, registry: Registry, name: str, baseline: str) -> None:
    """Baseline ``baseline`` fitted on this pipeline's data draws exactly the requested per-label counts."""
    run = tiny_run(registry, name).require()
    spec = registry.get("baselines", baseline)
    real, synthetic, train = _scoring_sets(run)
    wanted = synthetic.label_counts()
    if train.labels is None:
        wanted = {None: len(synthetic)}
    try:
        drawn = spec.generate(train, wanted, 0)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"baseline {baseline!r} on pipeline {name!r}'s data raised "
                             f"{type(exc).__name__}: {exc}") from exc
    _check_domain(drawn, name, f"baseline {baseline!r} output", run.pipeline.modality,
                  None if train.labels is None else set(train.labels.tolist()))
    if drawn.label_counts() != wanted:
        raise AssertionError(f"baseline {baseline!r} drew {drawn.label_counts()}, asked for {wanted}")
    if drawn.features().shape[1] != train.features().shape[1]:
        raise AssertionError(f"baseline {baseline!r} drew {drawn.features().shape[1]} features, training data "
                             f"has {train.features().shape[1]}")


def check_rejects_missing_data(tmp: Path, registry: Registry, name: str) -> None:
    """``data`` naming a missing file raises OmigenInputError naming it, before the run folder exists."""
    from omigen.run import run_pipeline

    spec = registry.get("pipelines", name)
    suffixes = [s for d in reference_datasets(registry, spec) for s in d.suffixes]
    suffix = suffixes[0] if suffixes else ".tsv"
    suffix = suffix if suffix.startswith(".") else "." + suffix
    missing = tmp / f"does-not-exist{suffix}"
    out = tmp / "run"
    try:
        run_pipeline(name, out_dir=out, overrides={**spec.tiny, "device": "cpu", "data": str(missing)},
                     progress=False, registry=registry)
    except OmigenInputError as exc:
        if missing.name not in str(exc):
            raise AssertionError(f"pipeline {name!r}: the error for a missing data file does not name it: "
                                 f"{exc}") from exc
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"pipeline {name!r}: a missing data file raised {type(exc).__name__} ({exc}) "
                             "instead of OmigenInputError") from exc
    else:
        raise AssertionError(f"pipeline {name!r}: ran although data={missing.name!r} does not exist")
    if out.exists():
        raise AssertionError(f"pipeline {name!r}: created the run folder before rejecting its input; read and "
                             "validate the data before the first ctx.path()")


def check_rejects_bad_sample_requests(tmp: Path, registry: Registry, name: str) -> None:
    """``sample()`` raises OmigenInputError for a folder that is no run and for an unknown label."""
    run = tiny_run(registry, name).require()
    spec = run.pipeline
    cases = {"a folder that is not a run": (tmp / "not-a-run", None),
             "an unknown label": (run.run_dir, "no-such-label-in-the-data")}
    (tmp / "not-a-run").mkdir(exist_ok=True)
    problems = []
    for what, (folder, label) in cases.items():
        try:
            spec.sample(folder, n=2, label=label, seed=0)
        except OmigenInputError:
            pass
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{what}: raised {type(exc).__name__} ({exc}) instead of OmigenInputError")
        else:
            problems.append(f"{what}: sampled without error")
    if problems:
        raise AssertionError(f"pipeline {name!r}: sample() mishandles bad requests:\n  " + "\n  ".join(problems))
