"""L1000 landmarks: the bundled list, matching data genes, reconstruction models, per-gene scores."""

import hashlib

import numpy as np
import pytest

from omigen.errors import OmigenInputError
from omigen_expression.l1000 import (LANDMARK_FILE, Reconstructor, landmark_genes, landmark_table, match_landmarks,
                                     reconstruction_scores, summarise)

torch = pytest.importorskip("torch")

# SHA-256 of the LINCS landmark list as copied into the package (see data/L1000_SOURCE.md).
LANDMARK_SHA256 = "3666d9cb511400f291bacdc998655048d1ecde09adfa9217e4567313d07fa8f8"


# -- the list ------------------------------------------------------------------------------------------
def test_bundled_list_is_the_978_landmarks_unchanged():
    assert hashlib.sha256(LANDMARK_FILE.read_bytes()).hexdigest() == LANDMARK_SHA256
    genes = landmark_genes()
    assert len(genes) == 978 and len(set(genes)) == 978
    assert len({g.upper() for g in genes}) == 978
    assert genes[0] == "INSIG1" and genes[-1] == "INPP1"  # file order
    table = landmark_table()
    assert list(table.columns) == ["entrez_id", "symbol"] and len(table) == 978
    assert table["entrez_id"].str.isdigit().all() and table["entrez_id"].is_unique
    known = dict(zip(table["symbol"], table["entrez_id"]))
    assert known["AARS"] == "16" and known["GAPDH"] == "2597" and known["TP53"] == "7157"
    table.loc[0, "symbol"] = "changed"  # a copy: the cached list is not altered
    assert landmark_genes()[0] == "INSIG1"


# -- matching -----------------------------------------------------------------------------------------
def test_match_by_symbol_keeps_data_order():
    assert match_landmarks(["g1", "TP53", "x", "GAPDH", "y"]) == (["TP53", "GAPDH"], ["g1", "x", "y"])


def test_match_ignores_case_but_prefers_exact_symbols():
    assert match_landmarks(["gapdh", "Tp53", "foo"]) == (["gapdh", "Tp53"], ["foo"])
    # "GAPDH" matches exactly; the later-listed case variant is then just another gene
    assert match_landmarks(["gapdh", "GAPDH", "TP53", "foo"]) == (["GAPDH", "TP53"], ["gapdh", "foo"])


def test_match_by_entrez_id_for_numeric_names():
    landmarks, rest = match_landmarks(["2597", "1", "7157", "16", "99999999"])
    assert landmarks == ["2597", "7157", "16"] and rest == ["1", "99999999"]
    # a landmark named twice (symbol and id) is matched once, by its symbol
    assert match_landmarks(["2597", "GAPDH", "TP53", "z"]) == (["GAPDH", "TP53"], ["2597", "z"])


def test_match_errors_name_the_counts():
    with pytest.raises(OmigenInputError, match=r"only 1 of the 978 L1000 landmark genes .* 3 genes"):
        match_landmarks(["GAPDH", "foo", "bar"])
    with pytest.raises(OmigenInputError, match="only 0 of the 978"):
        match_landmarks(["foo", "bar"])
    with pytest.raises(OmigenInputError, match="all 2 genes of the data are L1000 landmarks"):
        match_landmarks(["GAPDH", "tp53"])


# -- reconstruction -----------------------------------------------------------------------------------
def _linear(n=400, p=10, q=15, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(5.0, 2.0, size=(n, p))  # offset and scale as log2 expression might have
    W = rng.standard_normal((p, q)) / np.sqrt(p)
    return X, X @ W + 3.0 + noise * rng.standard_normal((n, q))


def _nonlinear(n=600, p=4, q=8, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, p))
    W = rng.standard_normal((p, q))
    # even functions of the inputs: no linear trend for a ridge to find
    return X, np.abs(X @ W) + (X[:, :1] * X[:, 1:2]) ** 2 * 0.5 + 0.05 * rng.standard_normal((n, q))


def _held_out_r2(rec, X, Y, n_train):
    rec.fit(X[:n_train], Y[:n_train], seed=0)
    scores = reconstruction_scores(Y[n_train:], rec.predict(X[n_train:]), [f"g{j}" for j in range(Y.shape[1])])
    return summarise(scores)


def test_linear_case_ridge_and_mlp_reconstruct_held_out_genes():
    X, Y = _linear()
    ridge = _held_out_r2(Reconstructor("ridge"), X, Y, 300)
    assert ridge["median_r2"] > 0.95 and ridge["fraction_r2_above_0.5"] == 1.0
    mlp = _held_out_r2(Reconstructor("mlp", hidden=(64,)), X, Y, 300)
    assert mlp["median_r2"] > 0.9
    plain = _held_out_r2(Reconstructor("mlp", hidden=(64,), shortcut=False, lr=1e-2), X, Y, 300)
    assert plain["median_r2"] > 0.8


def test_nonlinear_case_mlp_beats_ridge():
    X, Y = _nonlinear()
    ridge = _held_out_r2(Reconstructor("ridge"), X, Y, 500)
    mlp = _held_out_r2(Reconstructor("mlp", hidden=(64, 64), lr=1e-2), X, Y, 500)
    assert ridge["median_r2"] < 0.3
    assert mlp["median_r2"] > ridge["median_r2"] + 0.4


def test_mlp_is_deterministic_for_a_seed_and_leaves_global_state_alone():
    X, Y = _linear(n=120)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = Reconstructor("mlp", hidden=(32,), max_epochs=5).fit(X, Y, seed=3)
    assert torch.equal(torch.get_rng_state(), before) and torch.get_num_threads() == threads
    b = Reconstructor("mlp", hidden=(32,), max_epochs=5).fit(X, Y, seed=3)
    c = Reconstructor("mlp", hidden=(32,), max_epochs=5, shortcut=False).fit(X, Y, seed=4)
    d = Reconstructor("mlp", hidden=(32,), max_epochs=5, shortcut=False).fit(X, Y, seed=5)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert not np.array_equal(c.predict(X), d.predict(X))
    assert a.history["epochs"] == 5 and 0 <= a.history["best_epoch"] <= 5
    assert a.history["n_train"] + a.history["n_val"] == 120 and a.history["n_val"] == 12


def test_shortcut_mlp_starts_from_the_ridge_and_never_validates_worse():
    X, Y = _linear(n=200)
    rec = Reconstructor("mlp", hidden=(32,), max_epochs=10).fit(X, Y, seed=0)
    losses = rec.history["val_loss"]
    assert rec.history["best_val_loss"] == min(losses) <= losses[0]


@pytest.mark.parametrize("kind", ["ridge", "mlp"])
def test_state_round_trip_through_torch_save_weights_only(kind, tmp_path):
    X, Y = _linear(n=150)
    rec = Reconstructor(kind, hidden=(16,), max_epochs=3).fit(X[:100], Y[:100], seed=0)
    path = tmp_path / "rec.pt"
    torch.save({"reconstructor": rec.state_dict()}, path)
    state = torch.load(path, weights_only=True)["reconstructor"]
    back = Reconstructor.from_state(state)
    assert back.kind == kind and back.n_landmarks == 10 and back.n_rest == 15
    np.testing.assert_array_equal(back.predict(X[100:]), rec.predict(X[100:]))


def test_predictions_stay_in_the_training_range_unless_clip_is_off():
    X, Y = _linear(n=200, noise=0.5)
    rec = Reconstructor("ridge").fit(X[:100], Y[:100])
    far = X[100:] * 4.0  # far outside the training landmarks: raw predictions overshoot
    pred = rec.predict(far)
    assert (pred >= Y[:100].min(axis=0) - 1e-5).all() and (pred <= Y[:100].max(axis=0) + 1e-5).all()
    rec.clip = False
    assert (rec.predict(far) > Y[:100].max(axis=0)).any()


def test_constant_training_columns_are_handled():
    X, Y = _linear(n=100)
    X[:, 0] = 2.0
    Y[:, 1] = 7.0
    for kind in ("ridge", "mlp"):
        pred = Reconstructor(kind, hidden=(8,), max_epochs=2).fit(X, Y).predict(X)
        assert np.isfinite(pred).all()
        np.testing.assert_allclose(pred[:, 1], 7.0, atol=1e-5)


def test_reconstructor_input_errors():
    X, Y = _linear(n=20)
    with pytest.raises(OmigenInputError, match="kind must be one of ridge, mlp"):
        Reconstructor("lasso")
    with pytest.raises(OmigenInputError, match="20 landmark rows but 19 rows"):
        Reconstructor().fit(X, Y[:19])
    with pytest.raises(OmigenInputError, match="at least 4 training samples"):
        Reconstructor().fit(X[:3], Y[:3])
    bad = X.copy()
    bad[2, 3] = np.nan
    with pytest.raises(OmigenInputError, match="1 non-finite"):
        Reconstructor().fit(bad, Y)
    with pytest.raises(OmigenInputError, match="not fitted"):
        Reconstructor().predict(X)
    with pytest.raises(OmigenInputError, match="fitted on 10 landmarks, got 9 columns"):
        Reconstructor().fit(X, Y).predict(X[:, :9])
    with pytest.raises(OmigenInputError, match="not a reconstructor state"):
        Reconstructor.from_state({"weights": 1})


# -- scores -------------------------------------------------------------------------------------------
def test_scores_hand_checked_with_a_constant_gene():
    true = np.array([[1, 4, 1, 1, 0], [2, 4, 2, 2, 1], [3, 4, 3, 3, 5]], dtype=np.float32)
    pred = np.array([[1, 9, 3, 2, 0], [2, 1, 2, 2, 1], [4, 2, 1, 2, 5]], dtype=np.float32)
    df = reconstruction_scores(true, pred, ["a", "const", "rev", "flat", "exact"])
    assert df["gene"].tolist() == ["a", "const", "rev", "flat", "exact"]
    # a: SST 2, SSE 1; r = 3 / sqrt(2 * 42/9). rev: SSE 8. flat: SSE 2, a constant prediction has r 0.
    np.testing.assert_allclose(df["r2"], [0.5, np.nan, -3.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(df["pearson"], [9 / np.sqrt(84), np.nan, -1.0, 0.0, 1.0], atol=1e-12)
    s = summarise(df)
    assert s["n_genes"] == 5 and s["n_constant"] == 1
    assert s["median_r2"] == pytest.approx(0.25) and s["mean_r2"] == pytest.approx(-0.375)
    assert s["median_pearson"] == pytest.approx(9 / np.sqrt(84) / 2)
    assert s["mean_pearson"] == pytest.approx(9 / np.sqrt(84) / 4)
    assert s["fraction_r2_above_0.5"] == 0.25  # 0.5 itself is not above


def test_float32_constant_column_is_detected_exactly():
    true = np.full((7, 1), 0.1, dtype=np.float32)
    df = reconstruction_scores(true, true + 1, ["g"])
    assert np.isnan(df["r2"][0]) and np.isnan(df["pearson"][0])
    assert summarise(df)["n_constant"] == 1 and np.isnan(summarise(df)["median_r2"])


def test_score_errors():
    with pytest.raises(OmigenInputError, match="differ in shape"):
        reconstruction_scores(np.zeros((3, 2)), np.zeros((3, 3)), ["a", "b"])
    with pytest.raises(OmigenInputError, match="1 gene names for 2 columns"):
        reconstruction_scores(np.zeros((3, 2)), np.zeros((3, 2)), ["a"])
    with pytest.raises(OmigenInputError, match="at least 2 samples"):
        reconstruction_scores(np.zeros((1, 2)), np.zeros((1, 2)), ["a", "b"])
