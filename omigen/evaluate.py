"""Scoring synthetic data: every registered metric on the model, the baselines and a real-vs-real reference.

One :func:`evaluate` call produces an :class:`Evaluation` table with these rows, in order:

- ``model``: the synthetic data under test;
- ``baseline:<name>``: each registered baseline generator, fitted on the training data and asked
  for exactly the synthetic data's per-label counts, so a model is only credited for beating them;
- ``reference:real``: the training data scored as if it were synthetic against the held-out test
  data, i.e. what a generator that reproduced the real distribution perfectly would score.

Columns are ``"<metric>.<output>"``. A metric that raises is recorded in ``errors`` and leaves
``NaN`` in its cells; it never aborts the evaluation. :func:`evaluate_run` does the same inside a
pipeline run and writes ``metrics.json`` and ``report.html`` into the run folder.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from omigen.errors import OmigenInputError
from omigen.registry import BaselineSpec, Direction, MetricSpec, Registry

if TYPE_CHECKING:
    from omigen.data import Dataset
    from omigen.report import Section
    from omigen.run import RunContext

MODEL = "model"
REFERENCE = "reference:real"
BASELINE_PREFIX = "baseline:"
#: Key under ``errors[row]`` for a baseline whose generator failed; parentheses cannot occur in
#: a registered metric name, so it never collides with one.
GENERATE = "(generate)"
#: Prefix of the ``errors`` messages of metrics that were not run rather than failed.
SKIPPED = "skipped: "


def _is_target(direction: Any) -> bool:
    return isinstance(direction, (int, float)) and not isinstance(direction, bool)


def _json_value(value: Any) -> Any:
    """``value`` with every non-finite float turned into ``None`` (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass
class Evaluation:
    """The metrics table of one evaluation and what happened while computing it."""

    rows: dict[str, dict[str, float]]
    directions: dict[str, Direction]
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    datasets: dict[str, "Dataset"] = field(default_factory=dict)
    modality: str = ""
    sizes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """Metric columns (``"<metric>.<output>"``) in metric order."""
        return list(self.directions)

    def failures(self) -> dict[str, dict[str, str]]:
        """``errors`` without the skipped metrics: only what actually raised."""
        out = {row: {m: msg for m, msg in errs.items() if not msg.startswith(SKIPPED)}
               for row, errs in self.errors.items()}
        return {row: errs for row, errs in out.items() if errs}

    def skipped(self) -> dict[str, dict[str, str]]:
        """Metrics that were not run, per row, with the reason."""
        out = {row: {m: msg[len(SKIPPED):] for m, msg in errs.items() if msg.startswith(SKIPPED)}
               for row, errs in self.errors.items()}
        return {row: errs for row, errs in out.items() if errs}

    def best(self, column: str) -> str | None:
        """The row (model or a baseline, never the reference) that does best on ``column``.

        ``higher``/``lower`` take the largest/smallest value, a numeric target the value
        closest to it; ``info`` columns and columns without any finite value give ``None``.
        Ties go to the earlier row, so the model wins a tie with a baseline.
        """
        if column not in self.directions:
            known = ", ".join(self.directions) or "none"
            raise OmigenInputError(f"unknown metric column {column!r} (known: {known})")
        direction = self.directions[column]
        if direction == "info":
            return None
        names = [r for r in self.rows if r == MODEL or r.startswith(BASELINE_PREFIX)]
        values = np.array([self.rows[r].get(column, math.nan) for r in names], dtype=float)
        ok = np.isfinite(values)
        if not ok.any():
            return None
        if direction == "higher":
            score = np.where(ok, values, -np.inf)
        elif direction == "lower":
            score = np.where(ok, -values, -np.inf)
        else:
            score = np.where(ok, -np.abs(values - float(direction)), -np.inf)
        return names[int(np.argmax(score))]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``metrics.json`` holds); non-finite values become ``null``."""
        return _json_value({
            "modality": self.modality,
            "rows": self.rows,
            "directions": self.directions,
            "best": {c: self.best(c) for c in self.columns},
            "errors": self.errors,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "sizes": self.sizes,
            "notes": self.notes,
        })

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Evaluation":
        """Rebuild an evaluation (without its datasets) from :meth:`as_dict` output, e.g. ``metrics.json``."""
        try:
            rows = {r: {c: (math.nan if v is None else float(v)) for c, v in vals.items()}
                    for r, vals in data["rows"].items()}
            directions = dict(data["directions"])
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise OmigenInputError(f"not an omigen metrics table: {type(exc).__name__}: {exc}") from None
        return cls(rows=rows, directions=directions, errors=dict(data.get("errors", {})),
                   seconds=dict(data.get("seconds", {})), modality=data.get("modality", ""),
                   sizes=dict(data.get("sizes", {})), notes=list(data.get("notes", [])))


def _label_counts(data: "Dataset") -> dict[str | None, int]:
    counts = getattr(data, "label_counts", None)
    if callable(counts):
        return counts()
    if data.labels is None:
        return {None: len(data)}
    uniq, n = np.unique(np.asarray(data.labels).astype(str), return_counts=True)
    return {str(u): int(c) for u, c in zip(uniq, n)}


def _select(available: list, wanted: list[str] | None, kind: str, modality: str) -> list:
    if wanted is None:
        return list(available)
    by_name = {s.name: s for s in available}
    out, seen = [], set()
    for name in wanted:
        if name not in by_name:
            known = ", ".join(by_name) or "none"
            raise OmigenInputError(f"no {kind} {name!r} for {modality} data (known: {known})")
        if name not in seen:
            seen.add(name)
            out.append(by_name[name])
    return out


def _check_modality(what: str, data: "Dataset", modality: str) -> None:
    got = getattr(data, "modality", None)
    if got != modality:
        raise OmigenInputError(f"{what} data is {got} but the test data is {modality}")


def _skip_reason(spec: MetricSpec, real: "Dataset", data: "Dataset", train: "Dataset | None") -> str | None:
    if spec.needs_train and train is None:
        return "needs training data"
    if spec.needs_labels and (real.labels is None or data.labels is None):
        return "needs labels"
    return None


def _score(spec: MetricSpec, real: "Dataset", data: "Dataset", train: "Dataset | None",
           seed: int) -> tuple[dict[str, float], str | None]:
    """The metric's declared outputs on one row (NaN where missing) and an error message, if any."""
    values = {key: math.nan for key in spec.outputs}
    try:
        result = spec.compute(real, data, train=train, seed=seed)
        got = dict(result)
    except Exception as exc:  # noqa: BLE001 - one broken metric must not lose the others
        return values, f"{type(exc).__name__}: {exc}"
    problems = []
    for key in spec.outputs:
        if key not in got:
            problems.append(f"no value for {key!r}")
            continue
        try:
            values[key] = float(got[key])
        except (TypeError, ValueError):
            problems.append(f"{key!r} is not a number ({got[key]!r})")
    extra = sorted(set(map(str, got)) - set(spec.outputs))
    if extra:
        problems.append(f"undeclared output(s) {', '.join(extra)}")
    return values, ("ValueError: " + "; ".join(problems)) if problems else None


def _generate(spec: BaselineSpec, train: "Dataset", counts: dict, seed: int,
              modality: str) -> tuple["Dataset | None", str | None]:
    try:
        data = spec.generate(train, dict(counts), seed)
    except Exception as exc:  # noqa: BLE001 - a broken baseline is reported, not fatal
        return None, f"{type(exc).__name__}: {exc}"
    if getattr(data, "modality", None) != modality:
        return None, f"ValueError: returned {type(data).__name__}, not {modality} data"
    if len(data) != sum(counts.values()):
        return None, f"ValueError: returned {len(data)} samples, asked for {sum(counts.values())}"
    return data, None


def evaluate(test: "Dataset", synthetic: "Dataset", train: "Dataset | None" = None, *, registry: Registry,
             seed: int = 0, metrics: list[str] | None = None, baselines: bool | list[str] = True,
             reference: bool = True, progress: bool = False) -> Evaluation:
    """Score ``synthetic`` against held-out ``test`` with every registered metric for its modality.

    ``metrics`` restricts to the named metrics (in that order); ``baselines`` is ``True`` for
    every registered baseline, ``False`` for none or a list of names. Baselines and the
    ``reference:real`` row need ``train``: without it they are left out (and noted), except that
    naming baselines explicitly without ``train`` is an error. Every row is scored with the same
    ``seed``, so rows differ only by their data.
    """
    modality = test.modality
    _check_modality("synthetic", synthetic, modality)
    if train is not None:
        _check_modality("training", train, modality)
    specs: list[MetricSpec] = _select(registry.metrics(modality), metrics, "metric", modality)
    wanted = None if baselines is True else ([] if baselines is False else list(baselines))
    base_specs: list[BaselineSpec] = _select(registry.baselines(modality), wanted, "baseline", modality)
    notes: list[str] = []
    if train is None and base_specs:
        if wanted:
            raise OmigenInputError("baselines are fitted on the training data; pass train to use them")
        notes.append("baselines left out: no training data")
        base_specs = []
    if train is None and reference:
        notes.append("real reference left out: no training data")
        reference = False

    directions: dict[str, Direction] = {f"{s.name}.{k}": d for s in specs for k, d in s.outputs.items()}
    ev = Evaluation(rows={}, directions=directions, modality=modality, notes=notes,
                    seconds={s.name: 0.0 for s in specs}, sizes={"test": len(test)})
    counts = _label_counts(synthetic)
    n_rows = 1 + len(base_specs) + int(reference)
    with _Progress(progress, total=len(base_specs) + n_rows * len(specs)) as bar:
        row_data: list[tuple[str, "Dataset | None"]] = [(MODEL, synthetic)]
        for b in base_specs:
            bar.describe(f"baseline {b.name}")
            data, err = _generate(b, train, counts, seed, modality)
            row = BASELINE_PREFIX + b.name
            if err is not None:
                ev.errors.setdefault(row, {})[GENERATE] = err
            else:
                ev.datasets[row] = data
            row_data.append((row, data))
            bar.advance()
        if reference:
            row_data.append((REFERENCE, train))
        for row, data in row_data:
            ev.rows[row] = {c: math.nan for c in directions}
            if data is None:
                bar.advance(len(specs))
                continue
            ev.sizes[row] = len(data)
            for spec in specs:
                bar.describe(f"{spec.name} on {row}")
                reason = _skip_reason(spec, test, data, train)
                if row == REFERENCE and spec.needs_train:
                    # Scoring the training data against itself says nothing (every record is its own copy).
                    reason = "the reference is the training data itself"
                if reason is not None:
                    ev.errors.setdefault(row, {})[spec.name] = SKIPPED + reason
                else:
                    t0 = time.perf_counter()
                    values, err = _score(spec, test, data, train, seed)
                    ev.seconds[spec.name] += time.perf_counter() - t0
                    ev.rows[row].update({f"{spec.name}.{k}": v for k, v in values.items()})
                    if err is not None:
                        ev.errors.setdefault(row, {})[spec.name] = err
                bar.advance()
    return ev


class _Progress:
    """A transient rich progress bar on stderr, or nothing at all when disabled."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total
        self._bar = self._task = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("evaluating", total=self.total)
        return self

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=f"evaluating: {text}")

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def evaluate_run(ctx: "RunContext", *, train: "Dataset", test: "Dataset", synthetic: "Dataset",
                 metrics: list[str] | None = None, sections: "list[Section] | None" = None,
                 title: str | None = None) -> Evaluation:
    """Evaluate a pipeline's synthetic data and write ``metrics.json`` and ``report.html`` into its run folder.

    Uses the run's registry and seed, times the work under ``evaluate`` (and ``report``) in the
    manifest and prints the table. ``sections`` defaults to a PCA embedding of test vs synthetic.
    """
    from omigen.config import to_dict
    from omigen.io import write_json
    from omigen.report import Section, embedding_figure, print_table, write_report

    with ctx.timer("evaluate"):
        ev = evaluate(test, synthetic, train, registry=ctx.registry, seed=ctx.seed, metrics=metrics,
                      progress=ctx.progress)
    write_json(ctx.path("metrics.json"), ev.as_dict())
    with ctx.timer("report"):
        if sections is None:
            sections = [Section("Embedding: held-out real vs synthetic (PCA fitted on real)",
                                figure=embedding_figure(test, synthetic, seed=ctx.seed))]
        write_report(ctx.path("report.html"), title=title or f"omigen run: {ctx.pipeline.name}",
                     evaluation=ev, manifest=ctx.manifest(), config=to_dict(ctx.config), sections=sections)
    print_table(ev)
    return ev
