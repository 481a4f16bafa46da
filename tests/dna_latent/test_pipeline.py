"""``omigen run dna_latent`` end to end on toy data: files, labels, sampling, resume and input errors."""

import json

import numpy as np
import pytest

from omigen.errors import OmigenInputError
from omigen.run import run_pipeline
from omigen.train import load_checkpoint
from omigen_dna_latent import io
from omigen_dna_latent.pipeline import load_splits, sample
from omigen_dna_latent.plugin import TINY
from omigen_dna_latent.config import SEQUENCE_METRICS, DnaLatentConfig

LENGTH = 64


def _toy_fasta(path, n_per_class=24, length=LENGTH, seed=0):
    """Two classes: 'gc' sequences are GC-rich, 'at' ones AT-rich, so conditioning has something to learn."""
    rng = np.random.default_rng(seed)
    lines = []
    for label, probs in (("gc", [0.1, 0.4, 0.4, 0.1]), ("at", [0.4, 0.1, 0.1, 0.4])):
        for i in range(n_per_class):
            seq = "".join(rng.choice(list("ACGT"), size=length, p=probs))
            lines.append(f">{label}{i} label={label}\n{seq}\n")
    path.write_text("".join(lines))
    return path


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dna")
    fasta = _toy_fasta(root / "toy.fa")
    out = root / "run"
    overrides = {**TINY, "device": "cpu", "data": str(fasta), "test_fraction": 0.25, "max_train": 0,
                 "max_test": 0, "diffusion_train.ckpt_every": 0}
    result, ctx = run_pipeline("dna_latent", out_dir=out, overrides=overrides, progress=False)
    return out, result, overrides


def test_run_writes_checkpoints_fasta_and_report(toy_run):
    out, result, _ = toy_run
    for name in ("autoencoder.ckpt", "diffusion.ckpt", "synthetic.fasta", "metrics.json", "report.html",
                 "config.json", "manifest.json"):
        assert (out / name).is_file(), name
    fasta = io.read_fasta(out / "synthetic.fasta")
    assert fasta.length == LENGTH
    # 48 toy sequences, a quarter held out stratified: 6 per class in test, so 6 synthetic per class.
    assert fasta.label_counts() == {"at": 6, "gc": 6}
    assert fasta.sequences.tolist() == result.synthetic.sequences.tolist()
    assert (out / "synthetic.fasta").read_text().startswith(">syn1 label=")
    meta = load_checkpoint(out / "diffusion.ckpt")["run_config"]
    assert meta["classes"] == ["at", "gc"] and meta["length"] == LENGTH
    assert "Positional base and motif frequencies" in (out / "report.html").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert "model" in json.dumps(metrics)
    # by default only the plugin's own metrics run, not the host's generic ones on one-hot features
    computed = {key.split(".", 1)[0] for key in metrics["rows"]["model"]}
    assert computed == set(SEQUENCE_METRICS)


def test_sample_from_the_run_folder(toy_run):
    out, _, _ = toy_run
    drawn = sample(out, 10, seed=2)
    assert len(drawn) == 10 and drawn.length == LENGTH
    assert drawn.label_counts() == {"at": 5, "gc": 5}  # training classes are balanced
    one = sample(out, 3, label="gc", seed=2, sampler="ddpm")
    assert one.labels.tolist() == ["gc"] * 3
    assert sample(out, 4, seed=7, steps=2, guidance=3.0).sequences.tolist() == \
        sample(out, 4, seed=7, steps=2, guidance=3.0).sequences.tolist()
    with pytest.raises(OmigenInputError, match="unknown label 'xx'"):
        sample(out, 2, label="xx")
    with pytest.raises(OmigenInputError, match="not a dna_latent run folder"):
        sample(out.parent, 2)
    with pytest.raises(OmigenInputError, match="n must be a positive integer"):
        sample(out, 0)


def test_resume_continues_the_unfinished_stage_only(toy_run, tmp_path):
    import shutil

    out, _, overrides = toy_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    ae_before = (copy / "autoencoder.ckpt").read_bytes()
    more = {**overrides, "steps": overrides["steps"] + 5, "evaluate": False}  # scoring is covered above
    run_pipeline("dna_latent", out_dir=copy, overrides=more, resume=True, progress=False)
    assert (copy / "autoencoder.ckpt").read_bytes() == ae_before  # finished stage: loaded, not retrained
    assert load_checkpoint(copy / "diffusion.ckpt")["step"] == overrides["steps"] + 5
    lines = [json.loads(x) for x in (copy / "diffusion_log.jsonl").read_text().splitlines() if x.strip()]
    assert lines[-1]["step"] == overrides["steps"] + 5


def test_table_split_column_decides_train_and_test(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["id\tlabel\tsplit\tsequence"]
    for i in range(30):
        split = "test" if i % 3 == 0 else ("validation" if i % 3 == 1 else "training")
        rows.append(f"s{i}\t{'ab'[i % 2]}\t{split}\t{''.join(rng.choice(list('ACGT'), 16))}")
    table = tmp_path / "seqs.tsv"
    table.write_text("\n".join(rows) + "\n")
    train, test, path = load_splits(DnaLatentConfig(data=str(table)), seed=0)
    assert path == table
    assert train.samples.tolist() == [f"s{i}" for i in range(30) if i % 3 == 2]
    assert test.samples.tolist() == [f"s{i}" for i in range(30) if i % 3 == 0]


def test_bundled_data_uses_its_chromosome_split():
    train, test, _ = load_splits(DnaLatentConfig(), seed=0)
    assert train.length == 200 and len(train) == 8000 and len(test) == 2000
    assert train.label_counts() == {"GM12878": 2000, "HepG2": 2000, "K562": 2000, "hESCT0": 2000}
    assert not set(train.samples.tolist()) & set(test.samples.tolist())


def test_bad_input_is_rejected_before_the_run_folder_exists(tmp_path):
    out = tmp_path / "run"
    odd = _toy_fasta(tmp_path / "odd.fa", n_per_class=6, length=62)
    with pytest.raises(OmigenInputError, match="length 62 is not a multiple"):
        run_pipeline("dna_latent", out_dir=out, overrides={**TINY, "device": "cpu", "data": str(odd)},
                     progress=False)
    bad = tmp_path / "seqs.txt"
    bad.write_text("ACGT\n")
    with pytest.raises(OmigenInputError, match="unknown sequence file type"):
        run_pipeline("dna_latent", out_dir=out, overrides={**TINY, "device": "cpu", "data": str(bad)},
                     progress=False)
    with pytest.raises(OmigenInputError, match="sampler must be one of"):
        run_pipeline("dna_latent", out_dir=out, overrides={**TINY, "device": "cpu", "sampler": "euler"},
                     progress=False)
    with pytest.raises(OmigenInputError, match="no metric 'fid' for sequence data"):
        run_pipeline("dna_latent", out_dir=out, overrides={**TINY, "device": "cpu", "metrics": ["fred", "fid"]},
                     progress=False)
    assert not out.exists()
