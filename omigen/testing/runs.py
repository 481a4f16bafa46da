"""The tiny runs the contract checks share: one per (registry, pipeline), in one temp folder per process.

Several checks need a finished run folder (samples, checkpoints, metrics). Training it once and
handing the same folder to every check keeps the kit at one tiny training per pipeline. A run
that fails is remembered too, so the dependent checks report it instead of retrying.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import traceback
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omigen.registry import PipelineSpec, Registry

#: File endings the kit treats as checkpoints of a run folder.
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")


@dataclass
class TinyRun:
    """One finished (or failed) tiny run of a pipeline."""

    pipeline: PipelineSpec
    registry: Registry
    run_dir: Path
    result: Any = None
    config: Any = None
    error: BaseException | None = None
    trace: str = ""
    _reference: Any = field(default=None, repr=False)
    _reference_error: str | None = field(default=None, repr=False)

    def require(self) -> "TinyRun":
        """Self, or an AssertionError explaining that the run every other check builds on failed."""
        if self.error is not None:
            raise AssertionError(f"cannot check: the tiny run of pipeline {self.pipeline.name!r} failed "
                                 f"(see its tiny-run check): {type(self.error).__name__}: {self.error}")
        return self

    def reference(self):
        """The real data the pipeline trains on, read through its plugin's own DatasetSpec (cached)."""
        if self._reference is None and self._reference_error is None:
            try:
                self._reference = load_reference(self.registry, self.pipeline, self.config)
            except AssertionError as exc:
                self._reference_error = str(exc)
        if self._reference_error is not None:
            raise AssertionError(self._reference_error)
        return self._reference


_lock = threading.Lock()
_root: Path | None = None
_runs: "weakref.WeakKeyDictionary[Registry, dict[str, TinyRun]]" = weakref.WeakKeyDictionary()


def _session_root() -> Path:
    global _root
    if _root is None:
        _root = Path(tempfile.mkdtemp(prefix="omigen-contract-"))
        atexit.register(shutil.rmtree, _root, True)
    return _root


def tiny_run(registry: Registry, name: str) -> TinyRun:
    """The shared tiny CPU run of pipeline ``name`` (run on first use, then cached)."""
    from omigen.run import build_config, run_pipeline

    with _lock:
        per_registry = _runs.setdefault(registry, {})
        if name in per_registry:
            return per_registry[name]
        spec: PipelineSpec = registry.get("pipelines", name)  # type: ignore[assignment]
        overrides = {**spec.tiny, "device": "cpu"}
        run_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_session_root())) / "run"
        run = TinyRun(pipeline=spec, registry=registry, run_dir=run_dir)
        try:
            run.config = build_config(spec, overrides=overrides)
            run.result, _ = run_pipeline(name, out_dir=run_dir, overrides=overrides, progress=False,
                                         registry=registry)
        except Exception as exc:  # noqa: BLE001 - recorded and reported by the checks
            run.error = exc
            run.trace = traceback.format_exc(limit=-8)
        per_registry[name] = run
        return run


def checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint files anywhere under ``run_dir``, sorted."""
    return sorted(p for p in Path(run_dir).rglob("*") if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)


def reference_datasets(registry: Registry, pipeline: PipelineSpec) -> list:
    """DatasetSpecs of the pipeline's own plugin that read the pipeline's modality."""
    owner = registry.owner.get(("pipelines", pipeline.name))
    names = registry.by_plugin(owner).get("datasets", []) if owner else []
    specs = [registry.get("datasets", n) for n in names]
    return [s for s in specs if s.modality == pipeline.modality]


def load_reference(registry: Registry, pipeline: PipelineSpec, config: Any):
    """Load the pipeline's real data as ``DatasetSpec.load(config.data)`` (None: the bundled default)."""
    specs = reference_datasets(registry, pipeline)
    if not specs:
        raise AssertionError(f"pipeline {pipeline.name!r}: its plugin registers no DatasetSpec for "
                             f"{pipeline.modality!r}; the kit reads the real data through one "
                             "(load(config.data), where None means the bundled default data)")
    path = getattr(config, "data", None)
    spec = specs[0]
    if path:
        spec = next((s for s in specs if s.matches(path)), spec)
    try:
        data = spec.load(path)
        data.validate()
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"pipeline {pipeline.name!r}: dataset {spec.name!r}.load({path!r}) failed: "
                             f"{type(exc).__name__}: {exc}") from exc
    return data


def align(real, synthetic):
    """``real`` restricted to the synthetic data's genes or variants when the pipeline used a subset."""
    from dataclasses import replace

    variants = getattr(synthetic, "variants", None)
    if variants is not None and getattr(real, "variants", None) is not None:
        ids = list(variants["id"])
        if list(real.variants["id"]) == ids:
            return real
        where = {v: i for i, v in enumerate(real.variants["id"])}
        missing = [v for v in ids if v not in where]
        if missing:
            raise AssertionError(f"synthetic variants {missing[:5]} are not in the real data")
        idx = np.array([where[v] for v in ids], dtype=np.int64)
        return replace(real, G=real.G[:, idx], variants=real.variants.iloc[idx].reset_index(drop=True))
    genes = getattr(synthetic, "genes", None)
    if genes is None or getattr(real, "genes", None) is None or list(real.genes) == list(genes):
        return real
    position = {g: i for i, g in enumerate(real.genes)}
    missing = [g for g in genes if g not in position]
    if missing:
        raise AssertionError(f"synthetic genes {missing[:5]} are not in the real data")
    idx = np.array([position[g] for g in genes], dtype=np.int64)
    return replace(real, X=real.X[:, idx], genes=real.genes[idx])


def _split(data, fraction: float, seed: int):
    from omigen.data import split

    try:
        return split(data, fraction, seed, stratify=True)
    except ValueError:  # a class too small to stratify
        return split(data, fraction, seed, stratify=False)


def halves(data, limit: int = 100, seed: int = 0):
    """Two disjoint seeded subsets, stratified by label: a held-out "real" one and a "train" one.

    At most ``2 * limit`` rows are used so every metric stays fast on large bundled data.
    """
    if len(data) > 2 * limit:
        data, _ = _split(data, 1 - 2 * limit / len(data), seed)
    train, real = _split(data, 0.5, seed)
    return real, train
