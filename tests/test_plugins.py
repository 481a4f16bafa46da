"""Plugin discovery: entry points, failure isolation, OMIGEN_PLUGINS, lazy imports."""

import json
import subprocess
import sys

from helpers import run_cli, write_plugin

from omigen.plugins import load_host

GOOD = """
from omigen import hookimpl
from omigen.registry import MetricSpec

@hookimpl
def omigen_register_metrics(register):
    register(MetricSpec(name="good-metric", modalities=("expression",), outputs={"gap": "lower"},
                        compute=lambda real, synthetic, train=None, seed=0: {"gap": 0.0}))
"""


def test_good_plugin_loads_with_version_and_hooks(plugin_dir):
    write_plugin(plugin_dir, "good", GOOD, version="1.2.3")
    host = load_host(only=["good"])
    (info,) = host.plugins
    assert info.status == "loaded", info.error
    assert info.version == "1.2.3" and info.distribution == "fake-good"
    assert info.hooks == ["omigen_register_metrics"]
    assert info.components == {"metrics": ["good-metric"]}
    assert host.registry.get("metrics", "good-metric").outputs == {"gap": "lower"}


def test_broken_import_is_reported_and_others_load(plugin_dir):
    write_plugin(plugin_dir, "good", GOOD)
    write_plugin(plugin_dir, "broken", "raise RuntimeError('boom at import')\n")
    host = load_host(only=["good", "broken"])
    status = {p.name: (p.status, p.error) for p in host.plugins}
    assert status["good"] == ("loaded", None)
    assert status["broken"][0] == "failed" and "boom at import" in status["broken"][1]
    assert "good-metric" in host.registry.all("metrics")


def test_raising_hook_contributes_nothing(plugin_dir):
    write_plugin(plugin_dir, "half", """
from omigen import hookimpl
from omigen.registry import MetricSpec

@hookimpl
def omigen_register_metrics(register):
    register(MetricSpec(name="half-metric", modalities=("expression",), outputs={"x": "lower"},
                        compute=lambda real, synthetic, train=None, seed=0: {"x": 0.0}))
    raise ValueError("second metric failed")
""")
    write_plugin(plugin_dir, "good", GOOD)
    host = load_host(only=["half", "good"])
    half = next(p for p in host.plugins if p.name == "half")
    assert half.status == "failed" and "second metric failed" in half.error
    assert "half-metric" not in host.registry.all("metrics")
    assert "good-metric" in host.registry.all("metrics")


def test_malformed_wrong_kind_unknown_hook_and_duplicates_fail(plugin_dir):
    write_plugin(plugin_dir, "good", GOOD)
    write_plugin(plugin_dir, "zdup", GOOD)  # loads after "good", registers the same metric name again
    write_plugin(plugin_dir, "badname", GOOD.replace('"good-metric"', '"Bad Name"'))
    write_plugin(plugin_dir, "wrongkind", GOOD.replace("omigen_register_metrics", "omigen_register_datasets"))
    write_plugin(plugin_dir, "unknownhook", """
from omigen import hookimpl

@hookimpl
def omigen_register_everything(register):
    pass
""")
    host = load_host(only=["good", "zdup", "badname", "wrongkind", "unknownhook"])
    status = {p.name: p for p in host.plugins}
    assert status["good"].status == "loaded"
    assert "already registered by plugin 'good'" in status["zdup"].error
    assert "lower-case" in status["badname"].error
    assert "MetricSpec from the datasets hook" in status["wrongkind"].error
    assert "unknown hook" in status["unknownhook"].error
    assert list(host.registry.all("metrics")) == ["good-metric"]


def test_env_var_restricts_plugins(plugin_dir, monkeypatch):
    write_plugin(plugin_dir, "good", GOOD)
    write_plugin(plugin_dir, "other", GOOD.replace("good-metric", "other-metric"))
    monkeypatch.setenv("OMIGEN_PLUGINS", "other")
    host = load_host()
    assert [p.name for p in host.plugins] == ["other"]
    assert list(host.registry.all("metrics")) == ["other-metric"]


def test_plugins_json_lists_builtins_and_broken(plugin_dir):
    write_plugin(plugin_dir, "broken", "import no_such_module_anywhere\n")
    proc = run_cli("plugins", "--json", extra_path=plugin_dir)
    assert proc.returncode == 0, proc.stderr
    plugins = {p["name"]: p for p in json.loads(proc.stdout)}
    assert plugins["core"]["status"] == "loaded", plugins["core"]["error"]
    assert plugins["expression"]["status"] == "loaded", plugins["expression"]["error"]
    assert plugins["broken"]["status"] == "failed"
    assert "no_such_module_anywhere" in plugins["broken"]["error"]


def test_cli_import_and_list_do_not_import_torch():
    code = ("import sys; from omigen.cli import main; assert 'torch' not in sys.modules; "
            "main(['list']); main(['plugins']); "
            "heavy = [m for m in ('torch', 'umap', 'sklearn', 'matplotlib', 'anndata') if m in sys.modules]; "
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    imp = subprocess.run([sys.executable, "-X", "importtime", "-c", "import omigen.cli"],
                         capture_output=True, text=True, timeout=60)
    assert imp.returncode == 0
    assert "torch" not in imp.stderr
