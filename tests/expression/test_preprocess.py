"""Preprocessing: exact inverse, the GEMDiff blank convention, gene selection, saved state."""

import json

import numpy as np
import pytest

from omigen.data import ExpressionData
from omigen.errors import OmigenInputError
from omigen_expression.preprocess import Preprocessor, log2_to_log2p1, log2p1_to_log2, select_genes


def _data(X, labels=None, units="u"):
    X = np.asarray(X, dtype=np.float32)
    return ExpressionData(X=X, genes=[f"g{j}" for j in range(X.shape[1])],
                          samples=[f"s{i}" for i in range(X.shape[0])], labels=labels, units=units)


def test_min_max_scaling_known_values_and_round_trip():
    d = _data([[0.0, 10.0, 5.0], [2.0, 20.0, 5.0], [1.0, 15.0, 5.0]])
    pre = Preprocessor.fit(d, log="no")
    Z = pre.transform(d)
    # g0: 0->-1, 2->1, 1->0; g1: 10->-1, 20->1, 15->0; constant g2 -> -1
    np.testing.assert_allclose(Z, [[-1, -1, -1], [1, 1, -1], [0, 0, -1]], atol=1e-6)
    np.testing.assert_allclose(pre.inverse(Z), d.X, atol=1e-5)


def test_log_auto_applies_to_linear_data_only_and_inverts():
    rng = np.random.default_rng(0)
    counts = rng.poisson(200, size=(20, 4)).astype(np.float32)
    counts[0, 0] = 0.0
    pre = Preprocessor.fit(_data(counts, units="counts"), log="auto")
    assert pre.log and pre.model_units == "log2(counts+1)"
    Z = pre.transform(_data(counts))
    assert Z.min() >= -1 - 1e-6 and Z.max() <= 1 + 1e-6
    np.testing.assert_allclose(pre.inverse(Z), counts, rtol=1e-4, atol=1e-3)
    logged = np.log2(counts + 1)
    assert not Preprocessor.fit(_data(logged), log="auto").log
    assert Preprocessor.fit(_data(logged), log="yes").log
    with pytest.raises(OmigenInputError, match="log=yes needs non-negative"):
        Preprocessor.fit(_data(logged - 5), log="yes")


def test_inverse_clips_to_training_range_and_snaps_the_not_expressed_gap():
    # g0 is zero-inflated: 0 (not expressed) or >= 0.8; g1 has no zeros.
    d = _data([[0.0, 1.0], [0.8, 2.0], [2.0, 3.0], [0.0, 5.0]])
    pre = Preprocessor.fit(d, log="no")
    assert pre.floor[0] == pytest.approx(0.8) and np.isnan(pre.floor[1])
    # model space of g0: v = z + 1; of g1: v = 2 (z + 1) + 1
    Z = np.array([[-0.8, -1.0], [-0.25, 0.0], [-0.15, -0.5], [1.7, -1.5]])
    V = pre.inverse(Z)
    np.testing.assert_allclose(V, [[0.0, 1.0], [0.0, 3.0], [0.85, 2.0], [2.0, 1.0]], atol=1e-6)
    assert Preprocessor.fit(d, log="no", snap_zeros=False).inverse(Z)[1, 0] == pytest.approx(0.75)
    np.testing.assert_allclose(pre.inverse(pre.transform(d)), d.X, atol=1e-6)


def test_gemdiff_blank_convention_is_exact_and_invertible():
    x = np.array([np.nan, -2.0, 0.0, 3.0, 12.0])
    y = log2_to_log2p1(x)
    np.testing.assert_allclose(y, [0.0, np.log2(1.25), 1.0, np.log2(9.0), np.log2(4097.0)], rtol=1e-6)
    back = log2p1_to_log2(y)
    assert np.isnan(back[0])
    np.testing.assert_allclose(back[1:], x[1:], atol=1e-5)


def test_selection_of_genes():
    genes = [f"g{i}" for i in range(10)]
    assert select_genes(genes) == genes
    assert select_genes(genes, ["g3", "g1"]) == ["g3", "g1"]
    pick = select_genes(genes, k=4, seed=1)
    assert len(pick) == 4 and pick == sorted(pick, key=genes.index)
    assert pick == select_genes(genes, k=4, seed=1) and pick != select_genes(genes, k=4, seed=2)
    with pytest.raises(OmigenInputError, match="unknown gene"):
        select_genes(genes, ["g1", "nope"])


def test_transform_follows_gene_names_not_positions_and_state_round_trips():
    d = _data([[1.0, 2.0, 3.0], [3.0, 6.0, 9.0]], labels=["b", "a"])
    pre = Preprocessor.fit(d, genes=["g2", "g0"], log="no")
    shuffled = ExpressionData(X=d.X[:, [1, 2, 0]], genes=["g1", "g2", "g0"], samples=d.samples)
    np.testing.assert_allclose(pre.transform(shuffled), [[-1, -1], [1, 1]])
    state = json.loads(json.dumps(pre.state_dict()))
    again = Preprocessor.from_state(state)
    np.testing.assert_allclose(again.transform(d), pre.transform(d))
    assert again.classes == ["a", "b"]
    np.testing.assert_array_equal(again.labels_to_index(["b", "a", "b"]), [1, 0, 1])
    with pytest.raises(OmigenInputError, match="unknown label"):
        again.labels_to_index(["c"])
    with pytest.raises(OmigenInputError, match="lack gene"):
        pre.transform(_data([[1.0]]))
