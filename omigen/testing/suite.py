"""The contract suite: the list of checks for a plugin, a runner, and a pytest decorator.

Check ids read ``<plugin>:<check>`` or ``<plugin>:<check>[<component>]`` so a failing test names
both the rule and the component that broke it.
"""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from omigen.testing import component_checks as cc
from omigen.testing import run_checks as rc


@dataclass(frozen=True)
class Check:
    """One contract check, callable with a temporary folder; raises AssertionError when the plugin breaks it."""

    id: str
    fn: Callable[..., None]
    args: tuple

    def run(self, tmp_dir: str | Path) -> str | None:
        """Run the check; returns a reason when it does not apply, None when it passed.

        Errors other than AssertionError (a crash in the plugin's code) are re-raised as
        AssertionError naming the check, so every broken contract fails the same way.
        """
        tmp = Path(tmp_dir)
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            self.fn(tmp, *self.args)
        except rc.CheckSkipped as exc:
            return str(exc)
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"{self.id}: {type(exc).__name__}: {exc}") from exc
        return None

    def __call__(self, tmp_dir: str | Path) -> None:
        reason = self.run(tmp_dir)
        if reason is not None and "pytest" in sys.modules:
            import pytest

            pytest.skip(reason)

    def __repr__(self) -> str:
        return f"<omigen contract check {self.id}>"


def _host_and_registry(registry: Any):
    from omigen.plugins import Host, get_host

    if registry is None:
        host = get_host()
        return host, host.registry
    if isinstance(registry, Host):
        return registry, registry.registry
    return None, registry


def _scored_pipelines(registry, plugin: str, kind: str, modalities: tuple[str, ...]) -> list[str]:
    """Pipelines to score a plugin's metric/baseline on: the plugin's own, else the first of each modality."""
    own = [n for n in registry.by_plugin(plugin).get("pipelines", [])
           if registry.get("pipelines", n).modality in modalities]
    if own:
        return own
    out = []
    for modality in modalities:
        others = registry.for_modality("pipelines", modality)
        if others:
            out.append(others[0].name)
    return out


def plugin_checks(plugin: str, registry=None) -> list[tuple[str, Callable[[Path], None]]]:
    """The contract checks for ``plugin`` (an entry-point name), as ``(check id, check(tmp_dir))`` pairs.

    ``registry`` is a :class:`~omigen.registry.Registry` or a :class:`~omigen.plugins.Host`
    (pass the host to see why a plugin failed to load); default: the process-wide host.
    Checks that need a run share one tiny CPU run per pipeline, made on first use.
    """
    host, reg = _host_and_registry(registry)
    checks = [Check(f"{plugin}:loaded", cc.check_loaded, (plugin, host, reg))]
    mine = reg.by_plugin(plugin)
    if not mine:
        return [(c.id, c) for c in checks]
    checks.append(Check(f"{plugin}:well-formed", cc.check_well_formed, (plugin, reg)))
    for kind in ("pipelines", "models"):
        for name in mine.get(kind, []):
            checks.append(Check(f"{plugin}:config-roundtrip[{kind[:-1]}:{name}]", cc.check_config_roundtrip,
                                (reg, kind, name)))
    for name in mine.get("datasets", []):
        checks.append(Check(f"{plugin}:rejects-bad-files[{name}]", cc.check_dataset_rejects_bad_files,
                            (reg, name)))
    scored: list[tuple[str, str, str]] = []
    for name in mine.get("pipelines", []):
        modality = reg.get("pipelines", name).modality
        for fn, label in ((rc.check_tiny_run, "tiny-run"), (rc.check_samples_in_domain, "samples-in-domain"),
                          (rc.check_seeded_sampling, "seeded-sampling"),
                          (rc.check_checkpoint_roundtrip, "checkpoint-roundtrip"),
                          (rc.check_rejects_missing_data, "rejects-missing-data"),
                          (rc.check_rejects_bad_sample_requests, "rejects-bad-sample-requests")):
            checks.append(Check(f"{plugin}:{label}[{name}]", fn, (reg, name)))
        scored += [("metrics", name, m.name) for m in reg.metrics(modality)]
        scored += [("baselines", name, b.name) for b in reg.baselines(modality)]
    # A plugin's own metrics and baselines are scored even where it has no pipeline of their modality.
    for kind in ("metrics", "baselines"):
        for comp in mine.get(kind, []):
            modalities = tuple(reg.get(kind, comp).modalities)
            scored += [(kind, p, comp) for p in _scored_pipelines(reg, plugin, kind, modalities)]
    seen = set()
    for kind, pipeline, comp in scored:
        if (kind, pipeline, comp) in seen:
            continue
        seen.add((kind, pipeline, comp))
        fn = rc.check_metric if kind == "metrics" else rc.check_baseline
        checks.append(Check(f"{plugin}:{kind[:-1]}[{pipeline}:{comp}]", fn, (reg, pipeline, comp)))
    return [(c.id, c) for c in checks]


def _slug(check_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", check_id).strip("_")


def check_plugin(plugin: str, registry=None, tmp_dir: str | Path | None = None) -> None:
    """Run every contract check for ``plugin``; raise one AssertionError listing each failed check.

    Each check gets its own subfolder of ``tmp_dir`` (default: a temporary folder removed afterwards).
    """
    checks = plugin_checks(plugin, registry)
    failures: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="omigen-check-") as scratch:
        root = Path(tmp_dir) if tmp_dir is not None else Path(scratch)
        for check_id, check in checks:
            try:
                check.run(root / _slug(check_id)) if isinstance(check, Check) else check(root / _slug(check_id))
            except AssertionError as exc:
                failures.append((check_id, str(exc)))
    if failures:
        lines = "\n".join(f"- {cid}: {msg}" for cid, msg in failures)
        raise AssertionError(f"plugin {plugin!r} failed {len(failures)} of {len(checks)} contract checks:\n{lines}")


def parametrize_plugin_checks(*plugins: str, registry=None):
    """A pytest decorator running every contract check of ``plugins`` as its own test case::

        @parametrize_plugin_checks("expression")
        def test_contract(check, tmp_path):
            check(tmp_path)
    """
    import pytest

    pairs = [pair for plugin in plugins for pair in plugin_checks(plugin, registry)]
    return pytest.mark.parametrize("check", [c for _, c in pairs], ids=[i for i, _ in pairs])
