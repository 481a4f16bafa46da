"""Typed run configuration: dataclasses filled from defaults, a TOML file and ``--set key=value``.

Nested dataclasses are addressed with dots (``--set train.lr=3e-4``). Values are coerced to the
field's declared type, so a typo or a wrong type is a clear error before any work starts.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, TypeVar

from omigen.errors import OmigenInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

C = TypeVar("C")


#: The class label that means "no condition" (classifier-free guidance); denoisers map y < 0 to it.
NULL_LABEL = -1

#: Noise schedules :class:`DiffusionConfig` accepts.
SCHEDULES = ("linear", "cosine")


@dataclass
class RunConfig:
    """Options every pipeline understands; a plugin's config subclasses this.

    ``data`` is an input path (None: the plugin's bundled default), ``device`` one of
    ``auto|cpu|cuda|mps``, ``steps`` the number of training steps.
    """

    data: str | None = None
    seed: int = 0
    device: str = "auto"
    steps: int = 1000


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], optional
        return tp, optional
    return tp, False


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (often a string from the command line) to type ``tp``."""
    base, optional = _strip_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null", "")):
        if optional or base is Any:
            return None
        raise OmigenInputError(f"option {key!r} cannot be empty")
    if base is Any:
        return value
    origin = typing.get_origin(base)
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            if isinstance(value, str):
                f = float(value)
                if not f.is_integer():
                    raise ValueError(value)
                return int(f)
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if base is str:
            return str(value)
        if origin in (list, tuple):
            (item,) = typing.get_args(base)[:1] or (Any,)
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()] if value.strip() else []
            items = [coerce(v, item, key) for v in value]
            return items if origin is list else tuple(items)
        if origin is typing.Literal:
            choices = typing.get_args(base)
            for c in choices:
                if str(c) == str(value):
                    return c
            raise OmigenInputError(f"option {key!r} must be one of {', '.join(map(str, choices))}, got {value!r}")
        if origin is dict or base is dict:
            if isinstance(value, str):
                value = json.loads(value)
            return dict(value)
    except OmigenInputError:
        raise
    except (ValueError, TypeError, json.JSONDecodeError):
        raise OmigenInputError(f"option {key!r} expects {getattr(base, '__name__', base)}, got {value!r}") from None
    return value


def from_dict(cls: type[C], values: Mapping[str, Any], prefix: str = "") -> C:
    """Build dataclass ``cls`` from a (possibly nested) mapping; unknown keys are errors."""
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise OmigenInputError(f"unknown option {prefix + unknown[0]!r} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in values.items():
        tp = hints[key]
        base, _ = _strip_optional(tp)
        if dataclasses.is_dataclass(base) and isinstance(value, Mapping):
            kwargs[key] = from_dict(base, value, prefix=f"{prefix}{key}.")
        else:
            kwargs[key] = coerce(value, tp, prefix + key)
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain, JSON-ready dict of a config dataclass (nested dataclasses become dicts)."""
    return dataclasses.asdict(config)


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise OmigenInputError(f"option {dotted!r}: {p!r} is not a group of options")
        node = nxt
    node[parts[-1]] = value


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``["a=1", "train.lr=3e-4"]`` -> nested dict of strings (typed later by :func:`resolve`)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise OmigenInputError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise OmigenInputError(f"--set expects key=value, got {pair!r}")
        _set_path(out, key, value)
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML config file as a nested dict."""
    p = Path(path)
    if not p.is_file():
        raise OmigenInputError(f"config file not found: {p}")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise OmigenInputError(f"config file {p} is not valid TOML: {exc}") from None


def _merge(base: dict, extra: Mapping) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def resolve(cls: type[C], *layers: Mapping[str, Any]) -> C:
    """Defaults of ``cls``, then each layer in order (later wins), validated and typed."""
    values = to_dict(cls())
    for layer in layers:
        values = _merge(values, _flatten_dots(layer))
    return from_dict(cls, values)


def _flatten_dots(layer: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in layer.items():
        if isinstance(v, Mapping):
            v = _flatten_dots(v)
        if "." in k:
            nested: dict[str, Any] = {}
            _set_path(nested, k, v)
            out = _merge(out, nested)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


@dataclass
class DiffusionConfig:
    """Settings of the forward process and of classifier-free-guidance training (JSON-able).

    ``schedule`` is ``"cosine"`` (Nichol & Dhariwal 2021, betas clipped at 0.999) or
    ``"linear"`` (betas evenly spaced from ``beta_start`` to ``beta_end``; with few
    ``timesteps`` raise ``beta_end`` so that the last step is close to pure noise).
    ``cond_drop`` is the probability a training label is replaced by :data:`NULL_LABEL`.
    """

    timesteps: int = 1000
    schedule: str = "cosine"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    cond_drop: float = 0.1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`OmigenInputError` naming the first invalid setting."""
        if isinstance(self.timesteps, bool) or not isinstance(self.timesteps, int) or self.timesteps < 1:
            raise OmigenInputError(f"diffusion timesteps must be a positive integer, got {self.timesteps!r}")
        if self.schedule not in SCHEDULES:
            raise OmigenInputError(f"diffusion schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.schedule == "linear" and not (0.0 < self.beta_start <= self.beta_end < 1.0):
            raise OmigenInputError("diffusion linear schedule needs 0 < beta_start <= beta_end < 1, got "
                                   f"beta_start={self.beta_start!r}, beta_end={self.beta_end!r}")
        if not (0.0 <= self.cond_drop <= 1.0):
            raise OmigenInputError(f"diffusion cond_drop must be in [0, 1], got {self.cond_drop!r}")
