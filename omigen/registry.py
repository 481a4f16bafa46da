"""Named components that plugins register: datasets, models, samplers, metrics, baselines, pipelines.

A plugin's hook receives ``register`` and calls it with one of the spec classes below. The
host validates each spec when it is registered, so a malformed component is reported
against the plugin that made it instead of failing later in somebody else's run.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Union

from omigen.errors import OmigenInputError, PluginError

if TYPE_CHECKING:
    from pathlib import Path

    from omigen.data import Dataset
    from omigen.run import RunContext, RunResult

#: The modalities the host knows how to hold (see :mod:`omigen.data`).
MODALITIES = ("expression", "sequence", "genotype")

#: How a metric value is read: larger is better, smaller is better, closest to a
#: target value is best (a float), or an informative number that is not scored.
Direction = Union[Literal["higher", "lower", "info"], float]

_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(f"{kind} name {name!r} must be lower-case letters, digits, '_' or '-'")


def _check_modalities(kind: str, name: str, modalities: tuple[str, ...]) -> None:
    if not modalities:
        raise PluginError(f"{kind} {name!r} declares no modality")
    for m in modalities:
        if m not in MODALITIES:
            raise PluginError(f"{kind} {name!r}: unknown modality {m!r} (known: {', '.join(MODALITIES)})")


def _check_callable(kind: str, name: str, attr: str, fn: Any, required: bool = True) -> None:
    if fn is None and not required:
        return
    if not callable(fn):
        raise PluginError(f"{kind} {name!r}: {attr} must be callable, got {type(fn).__name__}")


@dataclass(frozen=True)
class DatasetSpec:
    """A data loader for one modality.

    ``load(path, **options)`` reads a file (``path=None`` means the bundled default) and returns
    a :class:`omigen.data.Dataset`; it raises :class:`OmigenInputError` for bad input.
    ``suffixes`` lists the file endings it reads (used by ``omigen evaluate``, ``omigen sample`` and
    the contract kit). ``save(data, path)``, when given, writes a Dataset in the same format.
    """

    name: str
    modality: str
    load: Callable[..., "Dataset"]
    suffixes: tuple[str, ...] = ()
    save: Callable[["Dataset", "Path"], None] | None = None
    description: str = ""

    def validate(self) -> None:
        _check_name("dataset", self.name)
        _check_modalities("dataset", self.name, (self.modality,))
        _check_callable("dataset", self.name, "load", self.load)
        _check_callable("dataset", self.name, "save", self.save, required=False)
        if any(not (isinstance(s, str) and s.startswith(".")) for s in self.suffixes):
            raise PluginError(f"dataset {self.name!r}: suffixes must look like '.tsv'")

    def matches(self, path: "str | Path") -> bool:
        """Whether ``path`` ends with one of this format's suffixes (case-insensitive, .gz aware)."""
        name = str(path).lower()
        return any(name.endswith(s.lower()) for s in self.suffixes)


@dataclass(frozen=True)
class ModelSpec:
    """A generative model family: a config dataclass and ``build(config, info) -> torch.nn.Module``.

    ``info`` is a plain dict describing the data the model will see (e.g. ``n_features``,
    ``n_classes``); the plugin that owns the model defines its keys.
    """

    name: str
    modality: str
    config_cls: type
    build: Callable[[Any, dict], Any]
    description: str = ""

    def validate(self) -> None:
        _check_name("model", self.name)
        _check_modalities("model", self.name, (self.modality,))
        _check_callable("model", self.name, "build", self.build)
        if not dataclasses.is_dataclass(self.config_cls):
            raise PluginError(f"model {self.name!r}: config_cls must be a dataclass")


@dataclass(frozen=True)
class SamplerSpec:
    """A way to draw samples from a trained model of one of ``model_kinds``.

    ``sample(model, n, **options)`` returns a tensor or array of ``n`` samples.
    """

    name: str
    model_kinds: tuple[str, ...]
    sample: Callable[..., Any]
    description: str = ""

    def validate(self) -> None:
        _check_name("sampler", self.name)
        if not self.model_kinds:
            raise PluginError(f"sampler {self.name!r} declares no model kind")
        _check_callable("sampler", self.name, "sample", self.sample)


@dataclass(frozen=True)
class MetricSpec:
    """A metric comparing real and synthetic data of the declared modalities.

    ``compute(real, synthetic, train=None, seed=0) -> dict[str, float]`` returns exactly the keys
    of ``outputs``; each key maps to its :data:`Direction`. ``real`` is held-out real data;
    ``train`` is the model's training data, required when ``needs_train`` is true.
    """

    name: str
    modalities: tuple[str, ...]
    outputs: dict[str, Direction]
    compute: Callable[..., dict[str, float]]
    needs_train: bool = False
    needs_labels: bool = False
    description: str = ""

    def validate(self) -> None:
        _check_name("metric", self.name)
        _check_modalities("metric", self.name, tuple(self.modalities))
        _check_callable("metric", self.name, "compute", self.compute)
        if not self.outputs:
            raise PluginError(f"metric {self.name!r} declares no outputs")
        for key, d in self.outputs.items():
            if not (d in ("higher", "lower", "info") or isinstance(d, (int, float))):
                raise PluginError(f"metric {self.name!r}: output {key!r} has invalid direction {d!r}")


@dataclass(frozen=True)
class BaselineSpec:
    """A trivial generator every report compares the model against.

    ``generate(train, n_per_label, seed) -> Dataset`` fits on ``train`` and draws
    ``n_per_label[label]`` samples of each label (key ``None`` when the data is unlabelled).
    """

    name: str
    modalities: tuple[str, ...]
    generate: Callable[..., "Dataset"]
    description: str = ""

    def validate(self) -> None:
        _check_name("baseline", self.name)
        _check_modalities("baseline", self.name, tuple(self.modalities))
        _check_callable("baseline", self.name, "generate", self.generate)


@dataclass(frozen=True)
class PipelineSpec:
    """What ``omigen run <name>`` does.

    - ``config_cls``: a dataclass (subclass of :class:`omigen.config.RunConfig`) with defaults
      that run on the bundled data; ``--config``/``--set`` fill it.
    - ``run(ctx) -> RunResult``: the whole job into ``ctx.out_dir``.
    - ``sample(run_dir, n, label, seed, **options) -> Dataset``: draws from a finished run's
      checkpoint (used by ``omigen sample`` and the contract kit).
    - ``quick``: config overrides for ``--quick`` (a smoke run in well under a minute).
    - ``tiny``: config overrides for the contract kit (tiny data and model, seconds on a CPU).
    """

    name: str
    modality: str
    config_cls: type
    run: Callable[["RunContext"], "RunResult"]
    sample: Callable[..., "Dataset"]
    quick: dict[str, Any] = field(default_factory=dict)
    tiny: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def validate(self) -> None:
        from omigen.config import RunConfig

        _check_name("pipeline", self.name)
        _check_modalities("pipeline", self.name, (self.modality,))
        _check_callable("pipeline", self.name, "run", self.run)
        _check_callable("pipeline", self.name, "sample", self.sample)
        if not (isinstance(self.config_cls, type) and issubclass(self.config_cls, RunConfig)):
            raise PluginError(f"pipeline {self.name!r}: config_cls must subclass omigen.config.RunConfig")


Spec = Union[DatasetSpec, ModelSpec, SamplerSpec, MetricSpec, BaselineSpec, PipelineSpec]

KINDS: dict[type, str] = {
    DatasetSpec: "datasets",
    ModelSpec: "models",
    SamplerSpec: "samplers",
    MetricSpec: "metrics",
    BaselineSpec: "baselines",
    PipelineSpec: "pipelines",
}


class Registry:
    """All registered components, by kind and name, with the plugin that registered each."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Spec]] = {kind: {} for kind in KINDS.values()}
        self.owner: dict[tuple[str, str], str] = {}

    def add(self, spec: Spec, plugin: str) -> None:
        """Validate and store ``spec``; a duplicate name of the same kind is an error."""
        kind = KINDS.get(type(spec))
        if kind is None:
            raise PluginError(f"cannot register a {type(spec).__name__}; expected one of "
                              + ", ".join(t.__name__ for t in KINDS))
        spec.validate()
        if spec.name in self._items[kind]:
            other = self.owner[(kind, spec.name)]
            raise PluginError(f"{kind[:-1]} {spec.name!r} is already registered by plugin {other!r}")
        self._items[kind][spec.name] = spec
        self.owner[(kind, spec.name)] = plugin

    def all(self, kind: str) -> dict[str, Spec]:
        """Every component of ``kind`` ("datasets", "models", ...), by name."""
        return dict(self._items[kind])

    def get(self, kind: str, name: str) -> Spec:
        """One component; an unknown name is a user error that lists the known ones."""
        try:
            return self._items[kind][name]
        except KeyError:
            known = ", ".join(sorted(self._items[kind])) or "none"
            raise OmigenInputError(f"unknown {kind[:-1]} {name!r} (known: {known})") from None

    def for_modality(self, kind: str, modality: str) -> list[Spec]:
        """Components of ``kind`` that accept ``modality``, in registration order."""
        out = []
        for spec in self._items[kind].values():
            mods = getattr(spec, "modalities", None) or (getattr(spec, "modality", None),)
            if modality in mods:
                out.append(spec)
        return out

    def formats_for(self, path: "str | Path", modality: str | None = None) -> list[DatasetSpec]:
        """Dataset specs whose suffixes match ``path`` (optionally of one modality)."""
        return [s for s in self._items["datasets"].values()  # type: ignore[misc]
                if s.matches(path) and (modality is None or s.modality == modality)]

    def metrics(self, modality: str) -> list[MetricSpec]:
        """Every metric that accepts ``modality``, whichever plugin registered it."""
        return self.for_modality("metrics", modality)  # type: ignore[return-value]

    def baselines(self, modality: str) -> list[BaselineSpec]:
        """Every baseline generator for ``modality``."""
        return self.for_modality("baselines", modality)  # type: ignore[return-value]

    def by_plugin(self, plugin: str) -> dict[str, list[str]]:
        """Names of the components ``plugin`` registered, by kind."""
        out: dict[str, list[str]] = {}
        for (kind, name), owner in self.owner.items():
            if owner == plugin:
                out.setdefault(kind, []).append(name)
        return out
