"""Checks on what a plugin registered, needing no run: it loaded, its specs are sound, configs round-trip,
its loaders reject bad files with a clear error.

Each check takes the per-check temporary folder first, then what it checks, and raises
AssertionError with a message that names the component and the problem.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from omigen.errors import OmigenInputError
from omigen.registry import Registry

#: Bytes no loader should accept: NULs, invalid UTF-8, ragged text.
GARBAGE = bytes(range(256)) + b"\n\x00not,a\ttable\n;;\xff\xfe\n" + bytes(range(255, -1, -1))


def check_loaded(tmp: Path, plugin: str, host, registry: Registry) -> None:
    """The plugin is installed, loaded without error and registered at least one component."""
    from omigen.plugins import ENV_VAR

    if host is not None:
        info = next((p for p in host.plugins if p.name == plugin), None)
        if info is None:
            found = ", ".join(sorted(p.name for p in host.plugins)) or "none"
            hint = f"; {ENV_VAR}={os.environ[ENV_VAR]!r} restricts which plugins load" if os.environ.get(
                ENV_VAR) else ""
            raise AssertionError(f"no plugin named {plugin!r} was loaded (found: {found}); declare it under "
                                 f"the 'omigen' entry-point group and install it{hint}")
        if info.status != "loaded":
            raise AssertionError(f"plugin {plugin!r} failed to load: {info.error}")
    if not registry.by_plugin(plugin):
        raise AssertionError(f"plugin {plugin!r} registered no component (no hook registered anything)")


def check_well_formed(tmp: Path, plugin: str, registry: Registry) -> None:
    """Every component validates; config classes build from defaults; ``tiny``/``quick`` name real options."""
    from omigen.config import resolve

    problems: list[str] = []
    for kind, names in sorted(registry.by_plugin(plugin).items()):
        for name in names:
            spec = registry.get(kind, name)
            where = f"{kind[:-1]} {name!r}"
            try:
                spec.validate()
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{where}: {exc}")
                continue
            config_cls = getattr(spec, "config_cls", None)
            if config_cls is None:
                continue
            try:
                config_cls()
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{where}: config_cls() needs defaults for every field: {exc}")
                continue
            for attr in ("tiny", "quick"):
                overrides = getattr(spec, attr, None)
                if overrides is None:
                    continue
                try:
                    resolve(config_cls, overrides)
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{where}: its {attr} overrides do not fit its config: {exc}")
    if problems:
        raise AssertionError("malformed component(s):\n  " + "\n  ".join(problems))


def check_config_roundtrip(tmp: Path, registry: Registry, kind: str, name: str) -> None:
    """``from_dict(cls, json(to_dict(cls())))`` gives back ``cls()``: configs survive config.json."""
    from omigen.config import from_dict, to_dict

    cls = registry.get(kind, name).config_cls
    default = cls()
    try:
        text = json.dumps(to_dict(default))
    except TypeError as exc:
        raise AssertionError(f"{kind[:-1]} {name!r}: default config is not JSON-able: {exc}") from exc
    try:
        back = from_dict(cls, json.loads(text))
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{kind[:-1]} {name!r}: config does not load back from JSON: "
                             f"{type(exc).__name__}: {exc}") from exc
    if back != default:
        diff = [f"{f.name}: {getattr(default, f.name)!r} -> {getattr(back, f.name)!r}"
                for f in dataclasses.fields(cls) if getattr(back, f.name) != getattr(default, f.name)]
        raise AssertionError(f"{kind[:-1]} {name!r}: config changes through JSON: " + "; ".join(diff))


def _suffix(spec) -> str:
    if not spec.suffixes:
        return ""
    s = spec.suffixes[0]
    return s if s.startswith(".") else "." + s


def check_dataset_rejects_bad_files(tmp: Path, registry: Registry, name: str) -> None:
    """``load`` raises OmigenInputError, naming the file, for a missing, an empty and a garbage file."""
    spec = registry.get("datasets", name)
    suffix = _suffix(spec)
    empty = tmp / f"empty{suffix}"
    empty.write_bytes(b"")
    garbage = tmp / f"garbage{suffix}"
    garbage.write_bytes(GARBAGE)
    cases = {"a missing file": tmp / f"does-not-exist{suffix}", "an empty file": empty,
             "a file of garbage": garbage}
    problems = []
    for what, path in cases.items():
        try:
            spec.load(str(path))
        except OmigenInputError as exc:
            if what == "a missing file" and path.name not in str(exc):
                problems.append(f"{what}: the error does not name the file: {exc}")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{what}: raised {type(exc).__name__} ({exc}) instead of OmigenInputError")
        else:
            problems.append(f"{what}: accepted without error")
    if problems:
        raise AssertionError(f"dataset {name!r} mishandles bad input ({suffix or 'no suffix'}):\n  "
                             + "\n  ".join(problems))
