"""FReD's shipped reference embedder: card and hash, any length, ~0 for identical sets, larger when shifted."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from omigen.errors import OmigenInputError
from omigen.io import sha256_file
from omigen_dna_latent import fred


def _random(n, length, p=(0.25, 0.25, 0.25, 0.25), seed=0):
    return np.random.default_rng(seed).choice(4, size=(n, length), p=p)


def test_card_matches_shipped_weights():
    card = fred.read_card()
    assert card["version"] == "v1" and card["sha256"] == sha256_file(fred.WEIGHTS)
    assert card["dimension"] == 2 * card["architecture"]["channels"] == 2 * fred.CHANNELS
    assert card["training_data"]["split"] == "validation"
    assert set(card["training_data"]["chromosomes"]).isdisjoint({"chr1"})  # chr1 is the test split
    assert fred.WEIGHTS.stat().st_size < 400_000


@pytest.mark.parametrize("length", [64, 200, 1024])
def test_embeds_any_length(length):
    emb = fred.embed(_random(5, length))
    assert emb.shape == (5, fred.read_card()["dimension"]) and np.isfinite(emb).all()


def test_fred_zero_for_identical_and_grows_with_shift():
    base = _random(300, 100, seed=1)
    assert fred.fred(base, base) == pytest.approx(0.0, abs=1e-6)
    other = _random(300, 100, seed=2)
    mild = _random(300, 100, p=(0.2, 0.3, 0.3, 0.2), seed=3)
    strong = _random(300, 100, p=(0.1, 0.4, 0.4, 0.1), seed=4)
    same_dist, d_mild, d_strong = fred.fred(base, other), fred.fred(base, mild), fred.fred(base, strong)
    assert same_dist < d_mild < d_strong
    # reverse complements embed alike in distribution: the embedder was trained strand-blind
    rc = (3 - base)[:, ::-1]
    assert fred.fred(base, rc) < d_mild


def test_hash_mismatch_and_missing_files_are_clear(tmp_path):
    weights = tmp_path / "w.pt"
    shutil.copy(fred.WEIGHTS, weights)
    card = fred.read_card()
    card["sha256"] = "0" * 64
    (tmp_path / "w.json").write_text(json.dumps(card))
    with pytest.raises(OmigenInputError, match="do not match their card"):
        fred.load_embedder(weights, tmp_path / "w.json")
    with pytest.raises(OmigenInputError, match="card nothere.json is missing"):
        fred.load_embedder(weights, tmp_path / "nothere.json")
    with pytest.raises(OmigenInputError, match="only"):
        fred.embed(["ACGN"])
