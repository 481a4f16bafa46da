"""Memoised real-data statistics: the same numbers as a fresh computation, never served for other data."""

from __future__ import annotations

import numpy as np
import pytest

from omigen.data import SequenceData
from omigen_dna_latent import metrics as mt
from omigen_dna_latent import seqmetrics as sm
from omigen_dna_latent.io import codes_of, strings
from omigen_dna_latent.metrics import METRICS
from omigen_dna_latent.motifs import Motif, compare_motif_hits, motif_hits, motif_statistics


def _data(n, seed, prefix, p=(0.25, 0.25, 0.25, 0.25)):
    rng = np.random.default_rng(seed)
    codes = rng.choice(4, size=(n, 48), p=p)
    return SequenceData(sequences=strings(codes), samples=[f"{prefix}{i}" for i in range(n)],
                        labels=["a", "b"] * (n // 2))


@pytest.fixture(autouse=True)
def fresh_memo():
    mt.clear_memo()
    yield
    mt.clear_memo()


def test_memoised_rows_equal_fresh_ones():
    train, test = _data(80, 0, "tr"), _data(40, 1, "te")
    rows = [_data(40, 2, "s"), _data(40, 3, "m", p=(0.4, 0.1, 0.1, 0.4)), train]
    for spec in METRICS:
        if spec.name in ("detection", "word-detection", "cell-type-fidelity"):
            continue  # the classifiers and the CNN are covered by their own tests; nothing of theirs is memoised here
        for row in rows:
            mt.clear_memo()
            fresh = spec.compute(test, row, train=train, seed=3)
            again = spec.compute(test, row, train=train, seed=3)  # served from the memo now
            assert again == fresh, spec.name
        assert bool(mt._MEMO) == (spec.name != "gc"), spec.name  # gc is too cheap to memoise


def test_memo_key_follows_the_data_not_the_object():
    a, b = _data(30, 5, "x"), _data(30, 6, "y")
    syn = _data(30, 7, "s")
    kmer = {m.name: m for m in METRICS}["kmer"]
    first = kmer.compute(a, syn)
    other = kmer.compute(b, syn)
    assert other != first  # a different real set is not served the memoised spectra of the first
    mt.clear_memo()
    assert kmer.compute(b, syn) == other
    # equal content in a new object hits the same entry
    copy = SequenceData(sequences=np.array(list(a.sequences), dtype=object), samples=a.samples, labels=a.labels)
    assert mt.digest(codes_of(copy)) == mt.digest(codes_of(a))
    assert mt.digest(codes_of(a)) != mt.digest(codes_of(a)[:, ::-1])
    assert mt.digest(np.zeros((2, 6), dtype=np.int8)) != mt.digest(np.zeros((3, 4), dtype=np.int8))


def test_memo_is_bounded_and_least_recently_used_goes_first(monkeypatch):
    monkeypatch.setattr(mt, "MEMO_ENTRIES", 2)
    calls = []

    def make(v):
        return lambda: calls.append(v) or v

    assert mt.memoised("k", "1", make(1)) == 1
    assert mt.memoised("k", "2", make(2)) == 2
    assert mt.memoised("k", "1", make(-1)) == 1  # a hit: not recomputed, and now the newest
    assert mt.memoised("k", "3", make(3)) == 3  # drops "2", the least recently used
    assert mt.memoised("k", "1", make(-1)) == 1
    assert mt.memoised("k", "2", make(22)) == 22
    assert calls == [1, 2, 3, 22]
    assert len(mt._MEMO) == 2


def test_memorisation_test_part_is_the_same_as_computed_inline():
    rng = np.random.default_rng(0)
    train, test, syn = rng.integers(0, 4, (50, 20)), rng.integers(0, 4, (30, 20)), rng.integers(0, 4, (25, 20))
    test[:3] = train[:3]
    part = sm.test_memorisation(train, test, max_query=10, seed=4)
    assert part["test_exact_copies"] == 3.0
    inline = sm.memorisation(syn, train, test, max_query=10, seed=4)
    assert sm.memorisation(syn, train, test, max_query=10, seed=4, test_part=part) == inline
    # the test subsample does not depend on the synthetic set's size
    assert sm.memorisation(syn[:5], train, test, max_query=10, seed=4)["test_identity_median"] == \
        part["test_identity_median"]


def test_motif_hits_compare_like_motif_statistics():
    pssm = np.full((3, 4), -2.0)
    pssm[[0, 1, 2], [0, 1, 2]] = 2.0  # "ACG"
    toy = [Motif("acg", "toy", pssm)]
    rng = np.random.default_rng(1)
    real, syn = rng.integers(0, 4, (40, 30)), rng.integers(0, 4, (35, 30))
    real[:10, 5:8] = [0, 1, 2]
    direct = motif_statistics(real, syn, toy, threshold=0.99, bin_width=5)
    split = compare_motif_hits(motif_hits(real, toy, 0.99, 5), motif_hits(syn, toy, 0.99, 5))
    assert split == direct
    assert direct["acg"]["real_rate"] >= 10 / 40


def test_motif_metrics_scan_each_set_once_and_match_direct_rates(monkeypatch):
    from omigen_dna_latent import motifs as mo

    test, syn = _data(40, 1, "te"), _data(40, 3, "s", p=(0.4, 0.1, 0.1, 0.4))
    scanned = []
    real_scan = mo.motif_hits
    monkeypatch.setattr(mo, "motif_hits", lambda codes, *a, **k: scanned.append(len(codes)) or real_scan(codes, *a, **k))
    specs = {m.name: m for m in METRICS}
    specs["motifs"].compute(test, syn, seed=3)
    enrichment = specs["motif-enrichment"].compute(test, syn, seed=3)["label_enrichment_r"]
    assert scanned == [40, 40]  # real and synthetic once each; the second metric reads the memo
    motifs = mo.load_motifs({name: mo.DEFAULT_MOTIFS[name] for name in mt.MOTIF_NAMES})
    direct = mo.label_enrichment_r(mo.label_rates(codes_of(test), test.labels, motifs),
                                   mo.label_rates(codes_of(syn), syn.labels, motifs))
    assert enrichment == pytest.approx(direct)


def test_single_thread_restores_the_thread_count():
    import torch

    from omigen_dna_latent.fred import single_thread

    before = torch.get_num_threads()
    with single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), single_thread():
        raise RuntimeError("restored even when the block fails")
    assert torch.get_num_threads() == before


def test_memoised_test_accuracy_equals_fresh():
    from omigen_dna_latent import classifier

    rng = np.random.default_rng(0)

    def labelled(n, seed):
        r = np.random.default_rng(seed)
        gc = r.choice(4, size=(n, 40), p=[0.05, 0.45, 0.45, 0.05])
        at = r.choice(4, size=(n, 40), p=[0.45, 0.05, 0.05, 0.45])
        return SequenceData(sequences=strings(np.concatenate([gc, at])),
                            samples=[f"{seed}_{i}" for i in range(2 * n)], labels=["gc"] * n + ["at"] * n)

    train, test = labelled(60, 0), labelled(20, 1)
    # a test set the classifier gets partly wrong: labels flipped on a random half
    flip = rng.random(len(test)) < 0.5
    noisy = SequenceData(sequences=test.sequences, samples=test.samples,
                         labels=np.where(flip, np.where(test.labels == "gc", "at", "gc"), test.labels))
    first = classifier.conditional_fidelity(test, labelled(20, 2), train)
    served = classifier.conditional_fidelity(test, labelled(20, 3), train)
    assert served["test_accuracy"] == first["test_accuracy"]
    other = classifier.conditional_fidelity(noisy, labelled(20, 2), train)
    assert other["test_accuracy"] < first["test_accuracy"]  # other test labels: not the memoised value
    mt.clear_memo()
    assert classifier.conditional_fidelity(noisy, labelled(20, 2), train) == other
