"""Plugin discovery through the ``omigen`` entry-point group, one plugin's failure isolated from the rest.

Every plugin, the host's own ``core`` included, is found the same way: an entry point in the
group ``omigen`` naming a module with hook implementations. A plugin that fails to import,
implements an unknown hook, raises in a hook or registers a malformed component is recorded
as failed (name and error) and contributes nothing; the others still load.

``OMIGEN_PLUGINS=core,expression`` restricts loading to the named plugins.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Iterable

from omigen.errors import PluginError
from omigen.registry import KINDS, Registry

GROUP = "omigen"
ENV_VAR = "OMIGEN_PLUGINS"

#: hook name -> registry kind it registers
HOOKS = {f"omigen_register_{kind}": kind for kind in KINDS.values()}


@dataclass
class PluginInfo:
    """What the host knows of one plugin, for ``omigen plugins``."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    status: str = "loaded"  # or "failed"
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    components: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "name": self.name, "module": self.module, "distribution": self.distribution,
            "version": self.version, "status": self.status, "error": self.error,
            "hooks": self.hooks, "components": self.components,
        }


@dataclass
class Host:
    """The loaded plugins and the registry they filled."""

    registry: Registry
    plugins: list[PluginInfo]

    @property
    def failed(self) -> list[PluginInfo]:
        """Plugins that did not load."""
        return [p for p in self.plugins if p.status == "failed"]


def _allowed(env: str | None) -> set[str] | None:
    if env is None or not env.strip():
        return None
    return {n.strip() for n in env.split(",") if n.strip()}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def load_host(only: Iterable[str] | None = None, extra: dict[str, ModuleType] | None = None) -> Host:
    """Discover, import and run every plugin's hooks into a fresh :class:`Registry`.

    ``only`` restricts by plugin name (default: the ``OMIGEN_PLUGINS`` variable); ``extra``
    adds plugin modules by name without an entry point (for tests and notebooks).
    """
    import pluggy

    from omigen import hookspecs

    allowed = set(only) if only is not None else _allowed(os.environ.get(ENV_VAR))
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []

    candidates: list[tuple[str, str, object]] = []
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: (e.name != "core", e.name)):
        candidates.append((ep.name, ep.value, ep))
    for name, mod in (extra or {}).items():
        candidates.append((name, getattr(mod, "__name__", name), mod))

    seen: set[str] = set()
    for name, target, obj in candidates:
        if allowed is not None and name not in allowed:
            continue
        info = PluginInfo(name=name, module=target)
        infos.append(info)
        if name in seen:
            info.status, info.error = "failed", f"PluginError: another plugin is already named {name!r}"
            continue
        seen.add(name)
        dist = getattr(obj, "dist", None)
        if dist is not None:
            info.distribution, info.version = dist.metadata["Name"], dist.version
        try:
            module = obj.load() if isinstance(obj, metadata.EntryPoint) else obj
            pm.register(module, name=name)
        except BaseException as exc:  # noqa: BLE001 - a plugin must never take the host down
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            info.status, info.error = "failed", _describe(exc)
            continue
        unknown = [h.name for h in pm.get_hookcallers(module) or [] if h.name not in HOOKS]
        if unknown:
            pm.unregister(module)
            info.status, info.error = "failed", f"PluginError: unknown hook(s) {', '.join(unknown)}"
            continue
        info.hooks = sorted(h.name for h in pm.get_hookcallers(module) or [])

    registry = Registry()
    for info in infos:
        if info.status != "loaded":
            continue
        staged: list = []
        try:
            for hook_name in info.hooks:
                kind = HOOKS[hook_name]
                for impl in getattr(pm.hook, hook_name).get_hookimpls():
                    if impl.plugin_name == info.name:
                        impl.function(register=_stager(staged, kind, info.name))
            trial = Registry()
            for spec in staged:
                trial.add(spec, info.name)
                if spec.name in registry.all(KINDS[type(spec)]):
                    other = registry.owner[(KINDS[type(spec)], spec.name)]
                    raise PluginError(f"{KINDS[type(spec)][:-1]} {spec.name!r} is already registered "
                                      f"by plugin {other!r}")
        except Exception as exc:  # noqa: BLE001
            info.status, info.error = "failed", _describe(exc)
            continue
        for spec in staged:
            registry.add(spec, info.name)
        info.components = registry.by_plugin(info.name)
    return Host(registry=registry, plugins=infos)


def _stager(staged: list, kind: str, plugin: str):
    def register(spec) -> None:
        actual = KINDS.get(type(spec))
        if actual != kind:
            raise PluginError(f"plugin {plugin!r} registered a {type(spec).__name__} "
                              f"from the {kind} hook")
        staged.append(spec)

    return register


_cache: dict[str | None, Host] = {}
_lock = threading.Lock()


def get_host() -> Host:
    """The process-wide host, loaded once per value of ``OMIGEN_PLUGINS``."""
    key = os.environ.get(ENV_VAR)
    with _lock:
        if key not in _cache:
            _cache[key] = load_host()
        return _cache[key]


def get_registry() -> Registry:
    """The registry of the process-wide host."""
    return get_host().registry
