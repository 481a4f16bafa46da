"""The registered DNA metrics return exactly their declared outputs, with sensible values on known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from omigen.data import SequenceData
from omigen.errors import OmigenInputError
from omigen_dna_latent.baselines import generate_markov
from omigen_dna_latent.io import strings
from omigen_dna_latent.metrics import METRICS


def _data(n, seed, prefix):
    rng = np.random.default_rng(seed)
    a = rng.choice(4, size=(n, 64), p=[0.1, 0.4, 0.4, 0.1])
    b = rng.choice(4, size=(n, 64), p=[0.4, 0.1, 0.1, 0.4])
    a[:, 20:27] = [3, 0, 3, 0, 0, 0, 0]  # a TATA box at a fixed place in class "gc"
    return SequenceData(sequences=strings(np.concatenate([a, b])), samples=[f"{prefix}{i}" for i in range(2 * n)],
                        labels=["gc"] * n + ["at"] * n)


@pytest.fixture(scope="module")
def sets():
    return _data(60, 0, "tr"), _data(30, 1, "te"), _data(30, 2, "sy")


def test_specs_are_well_formed():
    names = [m.name for m in METRICS]
    assert names == ["fred", "motifs", "motif-enrichment", "kmer", "gc", "diversity", "memorisation", "detection",
                     "word-detection", "cell-type-fidelity"]
    for spec in METRICS:
        spec.validate()
        assert spec.modalities == ("sequence",)
    by_name = {m.name: m for m in METRICS}
    assert by_name["memorisation"].needs_train and not by_name["memorisation"].needs_labels
    assert by_name["cell-type-fidelity"].needs_train and by_name["cell-type-fidelity"].needs_labels


def test_every_metric_returns_its_declared_outputs(sets):
    train, test, synthetic = sets
    for spec in METRICS:
        out = spec.compute(test, synthetic, train=train, seed=0)
        assert set(out) == set(spec.outputs), spec.name
        assert all(math.isfinite(v) for v in out.values()), (spec.name, out)


def test_known_values(sets):
    train, test, synthetic = sets
    by_name = {m.name: m for m in METRICS}
    copies = SequenceData(sequences=train.sequences[:10], samples=[f"c{i}" for i in range(10)],
                          labels=train.labels[:10])
    mem = by_name["memorisation"].compute(test, copies, train=train)
    assert mem["exact_copies"] == 10 and mem["exact_copy_fraction"] == 1.0 and mem["identity_median"] == 1.0
    same = by_name["kmer"].compute(test, test)
    assert same["js_mean"] == 0.0
    div = by_name["diversity"].compute(test, copies.subset(np.array([0, 0, 1, 2])))
    assert div["fraction_unique"] == 0.75
    gc_rows = np.arange(30)  # AT-rich sequences have TATA-like words everywhere; the GC-rich ones only the plant
    motifs = by_name["motifs"].compute(test.subset(gc_rows), synthetic.subset(gc_rows))
    assert motifs["tbp_position_r"] > 0.9  # the planted TATA box sits at the same place in both sets
    enrichment = by_name["motif-enrichment"]
    assert enrichment.needs_labels
    assert enrichment.compute(test, synthetic)["label_enrichment_r"] > 0.9  # same generator, same per-class motifs
    swapped = SequenceData(sequences=synthetic.sequences, samples=synthetic.samples,
                           labels=np.where(np.asarray(synthetic.labels) == "gc", "at", "gc"))
    assert enrichment.compute(test, swapped)["label_enrichment_r"] < 0.0
    with pytest.raises(OmigenInputError, match="labelled"):
        enrichment.compute(test, SequenceData(sequences=synthetic.sequences, samples=synthetic.samples))
    markov = generate_markov(train, synthetic.label_counts(), seed=0, order=2)
    fid = by_name["cell-type-fidelity"].compute(test, markov, train=train)
    assert fid["test_accuracy"] > 0.9 and fid["synthetic_accuracy"] > 0.9  # composition alone gives the class away


def test_length_mismatch_is_an_input_error(sets):
    train, test, _ = sets
    short = SequenceData(sequences=["ACGT"] * 4, samples=[f"s{i}" for i in range(4)], labels=["gc"] * 4)
    for spec in METRICS:
        with pytest.raises(OmigenInputError, match="length"):
            spec.compute(test, short, train=train)
