"""Markov-chain and position-frequency baselines: what they keep of the training data."""

from __future__ import annotations

import numpy as np
import pytest

from omigen.data import SequenceData
from omigen.errors import OmigenInputError
from omigen_dna_latent import seqmetrics as sm
from omigen_dna_latent.baselines import (BASELINES, fit_markov, generate_markov, generate_position_frequency,
                                         sample_markov)
from omigen_dna_latent.io import codes_of, encode, strings


def _train():
    rng = np.random.default_rng(0)
    # class "a": an order-1 chain that mostly alternates A and C (a G now and then, followed by A);
    # class "b": uniform random bases.
    a = np.zeros((200, 30), dtype=np.int64)
    a[:, 0] = rng.integers(0, 2, 200)
    for t in range(1, 30):
        a[:, t] = np.where(rng.random(200) < 0.95, np.where(a[:, t - 1] == 0, 1, 0), 2)
    b = rng.integers(0, 4, (200, 30))
    seqs = strings(np.concatenate([a, b]))
    return SequenceData(sequences=seqs, samples=[f"s{i}" for i in range(400)], labels=["a"] * 200 + ["b"] * 200)


def test_markov_transitions_match_counts():
    codes = encode(["ACAC", "ACAA"])
    trans, start = fit_markov(codes, order=1)
    # transitions from A: A->C three times, A->A once; pseudo-count 0.5 each
    assert trans[0] == pytest.approx(np.array([1.5, 3.5, 0.5, 0.5]) / 6)
    assert start.tolist() == [1.0, 0.0, 0.0, 0.0]
    rng = np.random.default_rng(0)
    draws = sample_markov(trans, start, 20000, 2, rng)
    assert np.all(draws[:, 0] == 0)
    assert np.bincount(draws[:, 1], minlength=4) / 20000 == pytest.approx(trans[0], abs=0.01)


def test_markov_samples_match_training_kmers_per_class():
    train = _train()
    out = generate_markov(train, {"a": 300, "b": 200}, seed=1, order=2)
    assert len(out) == 500 and out.labels.tolist() == ["a"] * 300 + ["b"] * 200
    assert out.samples[0] == "markov2_0001" and out.validate() is out
    real_a = codes_of(train.subset(np.arange(200)))
    fake_a = codes_of(out.subset(np.arange(300)))
    for k in (1, 2, 3):
        assert sm.kmer_divergence(real_a, fake_a, ks=[k])[k] < 0.01
    # the classes stay apart: class-a samples keep their alternation, class b does not have it
    fake_b = codes_of(out.subset(np.arange(300, 500)))
    assert sm.kmer_divergence(real_a, fake_b, ks=[2])[2] > 0.3
    assert np.array_equal(codes_of(generate_markov(train, {"a": 5}, seed=1, order=2)),
                          codes_of(generate_markov(train, {"a": 5}, seed=1, order=2)))


def test_position_frequency_matches_columns():
    train = SequenceData(sequences=["AC", "AG", "AT", "AA"] * 50, samples=[f"s{i}" for i in range(200)])
    out = generate_position_frequency(train, {None: 4000}, seed=0)
    codes = codes_of(out)
    assert np.all(codes[:, 0] == 0)
    assert np.bincount(codes[:, 1], minlength=4) / 4000 == pytest.approx([0.25] * 4, abs=0.03)
    assert out.labels is None and out.samples[0] == "posfreq_0001"


def test_baseline_errors_and_specs():
    train = _train()
    with pytest.raises(OmigenInputError, match="label 'z' does not occur"):
        generate_markov(train, {"z": 3})
    with pytest.raises(OmigenInputError, match="Markov order 30"):
        generate_markov(train, {"a": 3}, order=30)
    assert [b.name for b in BASELINES] == ["markov", "position-frequency"]
    for spec in BASELINES:
        spec.validate()
        assert spec.modalities == ("sequence",)
