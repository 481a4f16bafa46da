"""Running a pipeline: the run context a plugin's pipeline receives, and the run folder it fills.

A run folder holds ``config.json`` (the resolved config), ``manifest.json`` (versions, seed,
device, input hashes, timings), the checkpoint(s), the synthetic data, ``metrics.json`` and
``report.html``. It is created only when the pipeline first asks for a path, after its input
has been read and validated, so bad input leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping

from omigen import __version__
from omigen.config import RunConfig, read_toml, resolve, to_dict
from omigen.errors import OmigenInputError
from omigen.io import sha256_file, write_json
from omigen.registry import PipelineSpec, Registry

#: Distributions whose versions every manifest records.
PROVENANCE = ("torch", "numpy", "pandas", "scipy", "scikit-learn", "pluggy", "umap-learn",
              "anndata", "cyvcf2", "biopython")


@dataclass
class RunResult:
    """What a pipeline hands back: the synthetic data, the metrics table and the files it wrote."""

    synthetic: Any = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RunContext:
    """Everything a pipeline needs: its typed config, where to write, which device, the registry."""

    pipeline: PipelineSpec
    config: RunConfig
    out_dir: Path
    registry: Registry
    quick: bool = False
    resume: bool = False
    progress: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    _device: str | None = None

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self.config.seed

    @property
    def is_main(self) -> bool:
        """False on the non-zero ranks of a ``torchrun`` job: only rank 0 samples, evaluates and writes."""
        from omigen.distributed import is_main_process

        return is_main_process()

    @property
    def device(self) -> str:
        """The resolved device name (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
        if self._device is None:
            self._device = resolve_device(self.config.device)
            if self._device == "cuda" and "LOCAL_RANK" in os.environ:
                self._device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        return self._device

    def path(self, name: str) -> Path:
        """``out_dir / name``, creating the run folder (and subfolders) on first use."""
        p = self.out_dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def record_input(self, path: str | Path, role: str = "data") -> None:
        """Remember an input file and its SHA-256 for the manifest."""
        p = Path(path)
        self.inputs.append({"role": role, "path": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size})

    @contextlib.contextmanager
    def timer(self, name: str) -> Iterator[None]:
        """Time a phase (``load``, ``train``, ``sample``, ``evaluate`` ...) into the manifest."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0

    def manifest(self) -> dict[str, Any]:
        """Provenance of this run: software versions, seed, device, inputs, timings."""
        versions = {"omigen": __version__, "python": sys.version.split()[0]}
        for dist in PROVENANCE:
            try:
                versions[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
        owner = self.registry.owner.get(("pipelines", self.pipeline.name))
        plugin_version = None
        for ep in metadata.entry_points(group="omigen"):
            if ep.name == owner and getattr(ep, "dist", None) is not None:
                plugin_version = ep.dist.version
        return {
            "pipeline": self.pipeline.name,
            "plugin": owner,
            "plugin_version": plugin_version,
            "seed": self.seed,
            "device": self.device,
            "quick": self.quick,
            "started": datetime.fromtimestamp(self.started, timezone.utc).isoformat(),
            "wall_seconds": round(time.time() - self.started, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "inputs": self.inputs,
            "versions": versions,
            "platform": platform.platform(),
            "argv": sys.argv,
        }


def resolve_device(name: str) -> str:
    """``auto`` picks cuda, then mps, then cpu; an unavailable explicit choice is a user error."""
    name = (name or "auto").lower()
    if name == "cpu":
        return "cpu"
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OmigenInputError(f"device {name!r} requested but CUDA is not available")
        return name
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise OmigenInputError("device 'mps' requested but MPS is not available")
        return name
    raise OmigenInputError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)")


def build_config(spec: PipelineSpec, *, config_file: str | None = None, sets: Mapping[str, Any] | None = None,
                 overrides: Mapping[str, Any] | None = None, quick: bool = False) -> RunConfig:
    """Defaults, then ``--quick`` overrides, the TOML file, ``--set`` pairs and explicit options."""
    layers: list[Mapping[str, Any]] = []
    if quick:
        layers.append(spec.quick)
    if config_file:
        layers.append(read_toml(config_file))
    if sets:
        layers.append(sets)
    if overrides:
        layers.append({k: v for k, v in overrides.items() if v is not None})
    return resolve(spec.config_cls, *layers)


def default_out_dir(name: str) -> Path:
    """``runs/<pipeline>-<UTC timestamp>`` under the current directory."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name}-{stamp}"


def run_pipeline(name: str, *, out_dir: str | Path | None = None, config_file: str | None = None,
                 sets: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
                 quick: bool = False, resume: bool = False, progress: bool = True,
                 registry: Registry | None = None) -> tuple[RunResult, RunContext]:
    """Resolve the config of pipeline ``name``, run it into ``out_dir`` and write config and manifest."""
    if registry is None:
        from omigen.plugins import get_registry

        registry = get_registry()
    spec: PipelineSpec = registry.get("pipelines", name)  # type: ignore[assignment]
    config = build_config(spec, config_file=config_file, sets=sets, overrides=overrides, quick=quick)
    out = Path(out_dir) if out_dir is not None else default_out_dir(name)
    if out.exists() and not out.is_dir():
        raise OmigenInputError(f"output folder {out} is a file")
    rank0 = int(os.environ.get("RANK", "0")) == 0  # other ranks never write, and rank 0 may already have
    if rank0 and out.exists() and any(out.iterdir()) and not resume:
        raise OmigenInputError(f"output folder {out} is not empty (use --resume to continue a run there, "
                               "or choose another --out)")
    if resume and not out.is_dir():
        raise OmigenInputError(f"--resume: no run folder at {out}")
    ctx = RunContext(pipeline=spec, config=config, out_dir=out, registry=registry, quick=quick,
                     resume=resume, progress=progress)
    ctx.device  # resolve early: an unavailable device is a user error before any work
    result = spec.run(ctx)
    if ctx.is_main:
        write_json(ctx.path("config.json"), {"pipeline": name, "config": to_dict(config)})
        write_json(ctx.path("manifest.json"), ctx.manifest())
    return result, ctx


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a finished run folder."""
    import json

    p = Path(run_dir) / "config.json"
    if not p.is_file():
        raise OmigenInputError(f"{run_dir} is not an omigen run folder (no config.json)")
    return json.loads(p.read_text())
