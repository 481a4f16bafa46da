"""The CLI end to end on a small pipeline plugin: outputs, provenance and every error path."""

import json

import pytest
from helpers import run_cli, write_plugin

TOY = '''
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omigen import hookimpl
from omigen.config import RunConfig
from omigen.data import ExpressionData
from omigen.errors import OmigenInputError
from omigen.io import require_file, write_json, write_text
from omigen.registry import DatasetSpec, MetricSpec, PipelineSpec
from omigen.run import RunResult


@dataclass
class ToyConfig(RunConfig):
    scale: float = 2.0
    steps: int = 3


def load(path, **options):
    p = require_file(path)
    try:
        X = np.loadtxt(p, ndmin=2)
    except ValueError:
        raise OmigenInputError(f"{p.name} is not a numeric matrix") from None
    return ExpressionData(X=X, genes=[f"g{j}" for j in range(X.shape[1])],
                          samples=[f"s{i}" for i in range(X.shape[0])]).validate()


def save(data, path):
    write_text(path, "\\n".join(" ".join(map(str, row)) for row in data.X) + "\\n")


def run(ctx):
    data = load(ctx.config.data)
    ctx.record_input(ctx.config.data)
    with ctx.timer("train"):
        mean = data.X.mean(axis=0)
    write_json(ctx.path("model.json"), {"mean": mean.tolist(), "scale": ctx.config.scale})
    synth = sample(ctx.out_dir, n=len(data), seed=ctx.seed)
    save(synth, ctx.path("synthetic.txt"))
    return RunResult(synthetic=synth, files={"synthetic": str(ctx.path("synthetic.txt"))},
                     summary=[("samples", str(len(synth)))])


def sample(run_dir, n, label=None, seed=0, **options):
    import json
    model = json.loads((Path(run_dir) / "model.json").read_text())
    rng = np.random.default_rng(seed)
    X = np.asarray(model["mean"]) + model["scale"] * rng.normal(size=(n, len(model["mean"])))
    return ExpressionData(X=X, genes=[f"g{j}" for j in range(X.shape[1])], samples=[f"t{i}" for i in range(n)])


def gap(real, synthetic, train=None, seed=0):
    return {"gap": float(abs(real.X.mean() - synthetic.X.mean()))}


@hookimpl
def omigen_register_datasets(register):
    register(DatasetSpec(name="toy-txt", modality="expression", load=load, save=save, suffixes=(".txt",)))


@hookimpl
def omigen_register_metrics(register):
    register(MetricSpec(name="toy-gap", modalities=("expression",), outputs={"gap": "lower"}, compute=gap))


@hookimpl
def omigen_register_pipelines(register):
    register(PipelineSpec(name="toy", modality="expression", config_cls=ToyConfig, run=run, sample=sample))
'''

ENV = {"OMIGEN_PLUGINS": "toy"}


@pytest.fixture
def toy(plugin_dir, tmp_path):
    write_plugin(plugin_dir, "toy", TOY)
    data = tmp_path / "data.txt"
    data.write_text("1 2\n3 4\n5 6\n")
    return plugin_dir, data


def cli(toy, *args):
    return run_cli(*args, extra_path=toy[0], env=ENV)


def assert_user_error(proc, fragment):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert fragment in lines[0], lines[0]


def test_run_writes_folder_with_provenance(toy, tmp_path):
    out = tmp_path / "run"
    proc = cli(toy, "run", "toy", "--data", str(toy[1]), "--out", str(out), "--seed", "5", "--set", "scale=0.5")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "manifest.json", "model.json", "synthetic.txt"]
    config = json.loads((out / "config.json").read_text())
    assert config == {"pipeline": "toy", "config": {"data": str(toy[1]), "seed": 5, "device": "auto",
                                                      "steps": 3, "scale": 0.5}}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 5 and manifest["plugin"] == "toy" and manifest["device"] in ("cpu", "cuda", "mps")
    assert manifest["inputs"][0]["sha256"] and manifest["inputs"][0]["bytes"] == 12
    assert "train" in manifest["timings"] and manifest["versions"]["omigen"]

    sample_out = tmp_path / "more.txt"
    proc = cli(toy, "sample", str(out), "-n", "4", "--seed", "1", "--out", str(sample_out))
    assert proc.returncode == 0, proc.stderr
    assert len(sample_out.read_text().splitlines()) == 4
    assert_user_error(cli(toy, "sample", str(out), "-n", "4", "--out", str(tmp_path / "x.vcf")),
                      "cannot write expression data to x.vcf; use one of: .txt")
    assert_user_error(cli(toy, "sample", str(tmp_path), "-n", "4", "--out", str(sample_out)),
                      "is not an omigen run folder")

    proc = cli(toy, "evaluate", str(toy[1]), str(sample_out), "--out", str(tmp_path / "m.json"))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert "toy-gap.gap" in json.dumps(metrics)


@pytest.mark.parametrize("args, fragment", [
    (["run", "nope"], "unknown pipeline 'nope' (known: toy)"),
    (["run", "toy", "--data", "{missing}"], "input file not found"),
    (["run", "toy", "--data", "{nan}"], "non-finite expression values"),
    (["run", "toy", "--data", "{text}"], "text.txt is not a numeric matrix"),
    (["run", "toy", "--data", "{data}", "--set", "nope=1"], "unknown option 'nope'"),
    (["run", "toy", "--data", "{data}", "--set", "scale=big"], "option 'scale' expects float"),
    (["run", "toy", "--data", "{data}", "--config", "{missing}"], "config file not found"),
    (["run", "toy", "--data", "{data}", "--device", "tpu"], "unknown device 'tpu'"),
    (["evaluate", "{missing}", "{data}"], "input file not found"),
    (["evaluate", "{data}", "{data}", "--metrics", "nope"], "unknown metric 'nope'"),
])
def test_bad_input_exits_2_with_one_line_and_no_output(toy, tmp_path, args, fragment):
    files = {"data": toy[1], "missing": tmp_path / "missing.txt", "nan": tmp_path / "nan.txt",
             "text": tmp_path / "text.txt"}
    files["nan"].write_text("1 nan\n2 3\n")
    files["text"].write_text("a b\nc d\n")
    out = tmp_path / "out"
    argv = [a.format(**files) for a in args]
    if argv[0] == "run":
        argv += ["--out", str(out)]
    assert_user_error(cli(toy, *argv), fragment)
    assert not out.exists()


def test_debug_shows_traceback_and_nonempty_out_is_refused(toy, tmp_path):
    proc = cli(toy, "--debug", "run", "toy", "--data", str(tmp_path / "missing.txt"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "OmigenInputError" in proc.stderr
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_user_error(cli(toy, "run", "toy", "--data", str(toy[1]), "--out", str(out)), "is not empty")
    assert (out / "keep.txt").read_text() == "mine"


def test_unknown_option_and_no_command(toy):
    proc = cli(toy, "run", "toy", "--bogus")
    assert proc.returncode == 2 and "unrecognized arguments: --bogus" in proc.stderr
    proc = cli(toy)
    assert proc.returncode == 0 and "usage: omigen" in proc.stdout
