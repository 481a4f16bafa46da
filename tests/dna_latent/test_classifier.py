"""Conditional fidelity: the cell-type CNN recognises real classes and flags synthetic data with the wrong label."""

from __future__ import annotations

import numpy as np
import pytest

from omigen.data import SequenceData
from omigen.errors import OmigenInputError
from omigen_dna_latent import classifier
from omigen_dna_latent.io import strings


def _data(n, seed, swap=False):
    rng = np.random.default_rng(seed)
    gc = rng.choice(4, size=(n, 40), p=[0.05, 0.45, 0.45, 0.05])
    at = rng.choice(4, size=(n, 40), p=[0.45, 0.05, 0.05, 0.45])
    labels = ["at"] * n + ["gc"] * n if swap else ["gc"] * n + ["at"] * n
    return SequenceData(sequences=strings(np.concatenate([gc, at])),
                        samples=[f"{seed}_{i}" for i in range(2 * n)], labels=labels)


def test_accuracy_on_real_and_mislabelled_synthetic(tmp_path):
    classifier.cache_in(tmp_path)
    try:
        train, test = _data(100, 0), _data(40, 1)
        good = classifier.conditional_fidelity(test, _data(40, 2), train)
        assert good["test_accuracy"] > 0.95 and good["synthetic_accuracy"] > 0.95
        bad = classifier.conditional_fidelity(test, _data(40, 3, swap=True), train)
        assert bad["synthetic_accuracy"] < 0.05
        assert bad["accuracy_gap"] == pytest.approx(bad["synthetic_accuracy"] - bad["test_accuracy"])
        saved = list(tmp_path.glob("celltype_classifier-*.pt"))
        assert len(saved) == 1  # trained once, reused for the second call
        classifier._MEMORY.clear()
        again = classifier.conditional_fidelity(test, _data(40, 2), train)  # reloaded from the cache folder
        assert again == good
    finally:
        classifier.cache_in(None)


def test_needs_labels():
    train = _data(10, 0)
    unlabelled = SequenceData(sequences=train.sequences, samples=train.samples)
    with pytest.raises(OmigenInputError, match="labelled"):
        classifier.conditional_fidelity(train, unlabelled, train)
    with pytest.raises(OmigenInputError, match="needs labelled training"):
        classifier.get_classifier(unlabelled)
