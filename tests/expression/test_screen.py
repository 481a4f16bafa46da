"""Gene-set screening: GMT parsing, subset splitting, silhouettes against scikit-learn, a toy screen."""

import numpy as np
import pandas as pd
import pytest

from omigen.data import ExpressionData
from omigen.errors import OmigenInputError
from omigen_expression.screen import (COLUMNS, Subset, flags, read_gmt, screen, silhouettes, split_gene_sets,
                                      write_screen)


def _gmt(tmp_path, text, name="sets.gmt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


# --- GMT -------------------------------------------------------------------------------------------

def test_read_gmt_parses_sets_in_order_skipping_blanks_and_duplicate_genes(tmp_path):
    path = _gmt(tmp_path, "T_CELL\thttp://x\tCD3D\tCD3E\tCD3D\t\r\n\n  \nB_CELL\t\tMS4A1\tCD79A\t\t\n")
    sets = read_gmt(path)
    assert list(sets) == ["T_CELL", "B_CELL"]
    assert sets == {"T_CELL": ["CD3D", "CD3E"], "B_CELL": ["MS4A1", "CD79A"]}


@pytest.mark.parametrize("text, message", [
    ("A\tdesc\tG1\n\nB\tdesc\n", r"sets.gmt, line 3: gene set 'B' has no genes"),
    ("A\tdesc\tG1\nB\n", r"sets.gmt, line 2: gene set 'B' has no genes"),
    ("A\td\tG1\nB\td\tG2\nA\td\tG3\n", r"sets.gmt, line 3: gene set 'A' is already defined on line 1"),
    ("\td\tG1\n", r"sets.gmt, line 1: gene set without a name"),
    ("\n\n", r"sets.gmt: no gene sets"),
])
def test_read_gmt_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(OmigenInputError, match=message):
        read_gmt(_gmt(tmp_path, text))


def test_read_gmt_missing_and_binary_files(tmp_path):
    with pytest.raises(OmigenInputError, match="gene set file not found"):
        read_gmt(tmp_path / "absent.gmt")
    bad = tmp_path / "bad.gmt"
    bad.write_bytes(b"A\td\t\xff\xfe\n")
    with pytest.raises(OmigenInputError, match="not a UTF-8"):
        read_gmt(bad)


# --- splitting -------------------------------------------------------------------------------------

def _names(prefix, k):
    return [f"{prefix}{i}" for i in range(k)]


def test_split_sizes_and_remainder_rule():
    data_genes = _names("a", 40) + _names("b", 37) + _names("c", 10) + _names("d", 5)
    sets = {"A": _names("a", 40), "B": _names("b", 37), "C": _names("c", 10), "D": _names("d", 5)}
    subsets = split_gene_sets(sets, data_genes, size=16)  # min_size defaults to 8
    sizes = {}
    for s in subsets:
        sizes.setdefault(s.gene_set, []).append(len(s.genes))
    assert sizes == {"A": [16, 16, 8],  # remainder 8 >= min_size: its own subset
                     "B": [16, 21],  # remainder 5 < 8: joins the last full subset
                     "C": [10]}  # fewer than size but >= min_size: one subset
    assert subsets.skipped == ["D"]
    assert [s.index for s in subsets if s.gene_set == "A"] == [0, 1, 2]
    for name in ("A", "B", "C"):
        got = [g for s in subsets if s.gene_set == name for g in s.genes]
        assert sorted(got) == sorted(sets[name]) and len(set(got)) == len(got)
    assert [len(s.genes) for s in split_gene_sets({"B": _names("b", 37)}, data_genes, size=16, min_size=5)] == \
        [16, 16, 5]


def test_split_drops_and_counts_missing_genes():
    sets = {"S": ["g1", "x1", "g2", "g3", "x2", "g4", "g2"], "T": ["x3", "g5", "x4"]}
    subsets = split_gene_sets(sets, ["g1", "g2", "g3", "g4", "g5"], size=4, min_size=2)
    assert subsets.missing == {"S": 2, "T": 2}
    assert subsets.present == {"S": 4, "T": 1}
    assert subsets.skipped == ["T"]
    assert len(subsets) == 1 and sorted(subsets[0].genes) == ["g1", "g2", "g3", "g4"]


def test_split_is_seeded_and_sets_are_independent():
    genes = _names("g", 64) + _names("h", 32)
    sets = {"G": _names("g", 64)}
    one = split_gene_sets(sets, genes, size=16, seed=3)
    assert one == split_gene_sets(sets, genes, size=16, seed=3)
    assert one != split_gene_sets(sets, genes, size=16, seed=4)
    assert one[0].genes != tuple(_names("g", 16))  # shuffled, not the file order
    both = split_gene_sets({"H": _names("h", 32), **sets}, genes, size=16, seed=3)
    assert [s for s in both if s.gene_set == "G"] == list(one)


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 1}, "subset size must be at least 2"),
    ({"size": 8, "min_size": 9}, "minimum subset size must be between 2 and the subset size 8"),
    ({"size": 8, "min_size": 1}, "minimum subset size"),
])
def test_split_rejects_bad_sizes(kwargs, message):
    with pytest.raises(OmigenInputError, match=message):
        split_gene_sets({"S": ["a", "b"]}, ["a", "b"], **kwargs)


# --- silhouettes and flags -------------------------------------------------------------------------

def test_silhouettes_hand_checked_case():
    # classes {0, 1} and {10, 11} on a line
    E = np.array([[[0.0], [1.0], [10.0], [11.0]]])
    expected = (9.5 / 10.5 + 8.5 / 9.5) / 2
    np.testing.assert_allclose(silhouettes(E, np.array(["a", "a", "b", "b"])), [expected])


def test_silhouettes_match_sklearn_with_singleton_class_and_small_blocks():
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(0)
    E = rng.normal(size=(5, 50, 3))
    labels = rng.integers(0, 3, 50)
    labels[7] = 9  # a class of one sample scores 0
    ours = silhouettes(E, labels, block_elements=300)  # forces blocks of subsets and of rows
    np.testing.assert_allclose(ours, [silhouette_score(e, labels) for e in E], atol=1e-12)


def test_flags_one_sd_either_side():
    assert flags(np.array([1.0, 2.0, 3.0])).tolist() == ["low", "", "high"]  # SD 0.816
    assert flags(np.array([0.0, 0.0, 0.0, 0.0, 10.0])).tolist() == ["", "", "", "", "high"]  # mean 2, SD 4
    assert flags(np.array([0.5, np.nan])).tolist() == ["", ""]


# --- screening -------------------------------------------------------------------------------------

def _toy(n=60, seed=1):
    """Two classes; genes s* shift by 1.5 SD in class b, genes n* are noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(["a", "b"], n // 2)
    signal = rng.normal(size=(n, 16))
    signal[labels == "b"] += 1.5
    X = np.hstack([signal, rng.normal(size=(n, 48))])
    genes = _names("s", 16) + _names("n", 48)
    data = ExpressionData(X=X, genes=genes, samples=_names("c", n), labels=labels)
    subsets = split_gene_sets({"signal": genes[:16], "noise": genes[16:]}, genes, size=8)
    return data, subsets


def _check_signal_flagged(frame, column):
    by_set = frame.groupby("set")[column]
    assert by_set.min()["signal"] > 0.3 and by_set.max()["noise"] < 0.1
    flag = "flag_" + column.split("_")[1]
    assert (frame.loc[frame.set == "signal", flag] == "high").all()
    assert (frame.loc[frame.set == "noise", flag] != "high").all()


def test_pca_screen_finds_the_signal_set_and_matches_sklearn():
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    data, subsets = _toy()
    frame = screen(data, subsets, umap=False)
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 8
    assert frame.silhouette_umap.isna().all() and (frame.flag_umap == "").all()
    assert frame.silhouette_pca.is_monotonic_decreasing
    assert list(frame.set[:2]) == ["signal", "signal"]
    _check_signal_flagged(frame, "silhouette_pca")
    row = frame.iloc[3]
    cols = [data.genes.tolist().index(g) for g in row.genes.split(",")]
    expected = silhouette_score(PCA(2).fit_transform(data.X[:, cols].astype(np.float64)), data.labels)
    assert row.silhouette_pca == pytest.approx(expected, abs=1e-9)
    assert row.n_genes == 8


def test_pca_screen_with_subsampled_silhouettes():
    data, subsets = _toy(n=80)
    full = screen(data, subsets, umap=False)
    assert full.equals(screen(data, subsets, umap=False, max_samples=80))
    part = screen(data, subsets, umap=False, max_samples=50)
    assert part.equals(screen(data, subsets, umap=False, max_samples=50))
    merged = full.merge(part, on=["set", "subset"])
    assert not np.allclose(merged.silhouette_pca_x, merged.silhouette_pca_y)
    np.testing.assert_allclose(merged.silhouette_pca_x, merged.silhouette_pca_y, atol=0.1)


@pytest.fixture(scope="module")
def umap_screen():
    data, subsets = _toy()
    return data, subsets, screen(data, subsets, n_neighbors=10, progress=True)


@pytest.mark.slow
def test_umap_screen_finds_the_signal_set(umap_screen):
    _, _, frame = umap_screen
    assert frame.silhouette_umap.is_monotonic_decreasing
    _check_signal_flagged(frame, "silhouette_umap")
    _check_signal_flagged(frame, "silhouette_pca")


@pytest.mark.slow
def test_umap_screen_in_parallel_gives_the_same_table(umap_screen):
    from joblib import parallel_config

    # Threads reuse this process's compiled UMAP; worker processes would each spend many seconds
    # compiling it (benchmarks/expression_screen.py compares the process pool on real data).
    data, subsets, frame = umap_screen
    with parallel_config(backend="threading"):
        pd.testing.assert_frame_equal(screen(data, subsets, n_neighbors=10, n_jobs=2), frame)


def test_screen_label_and_subset_errors():
    data, subsets = _toy(n=6)
    unlabelled = ExpressionData(X=data.X, genes=data.genes, samples=data.samples)
    with pytest.raises(OmigenInputError, match="needs class labels"):
        screen(unlabelled, subsets, umap=False)
    one_class = ExpressionData(X=data.X, genes=data.genes, samples=data.samples, labels=["a"] * 6)
    with pytest.raises(OmigenInputError, match="at least 2 classes; all samples are 'a'"):
        screen(one_class, subsets, umap=False)
    each_own = ExpressionData(X=data.X, genes=data.genes, samples=data.samples, labels=_names("k", 6))
    with pytest.raises(OmigenInputError, match="fewer classes than samples"):
        screen(each_own, subsets, umap=False)
    with pytest.raises(OmigenInputError, match=r"names gene\(s\) not in the data: zz"):
        screen(data, [Subset("S", 0, ("s1", "zz"))], umap=False)
    with pytest.raises(OmigenInputError, match="no gene subsets"):
        screen(data, [], umap=False)
    with pytest.raises(OmigenInputError, match="n_neighbors"):
        screen(data, subsets, n_neighbors=1)


def test_write_screen_tsv_round_trip(tmp_path):
    data, subsets = _toy()
    frame = screen(data, subsets, umap=False)
    path = write_screen(frame, tmp_path / "out" / "screen.tsv")
    back = pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])
    assert list(back.columns) == list(COLUMNS)
    assert back.genes.tolist() == frame.genes.tolist()
    np.testing.assert_allclose(back.silhouette_pca, frame.silhouette_pca, rtol=1e-5)
    assert back.flag_pca.fillna("").tolist() == frame.flag_pca.tolist()
    assert [p.name for p in path.parent.iterdir()] == ["screen.tsv"]
