"""Expression readers: labels joined by id, orientation, missing values, h5ad, writing round trips."""

import numpy as np
import pytest

from omigen.errors import OmigenInputError
from omigen_expression import io

MATRIX = "\tg1\tg2\tg3\ns1\t1.0\t2.0\t3.0\ns2\t4.0\t5.0\t6.0\ns3\t7.0\t8.0\t9.0\n"


def _write(path, text):
    path.write_text(text)
    return path


def test_labels_joined_by_id_whatever_their_order(tmp_path):
    m = _write(tmp_path / "m.tsv", MATRIX)
    lab = _write(tmp_path / "lab.tsv", "s3\tb\ns1\ta\ns2\tc\n")
    d = io.read_table(m, lab)
    assert d.samples.tolist() == ["s1", "s2", "s3"]
    assert d.labels.tolist() == ["a", "c", "b"]
    np.testing.assert_array_equal(d.X, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert d.genes.tolist() == ["g1", "g2", "g3"]


def test_label_file_with_header_and_crlf(tmp_path):
    m = _write(tmp_path / "m.tsv", MATRIX)
    lab = tmp_path / "lab.tsv"
    lab.write_bytes(b"sample\tlabel\r\ns2\tx\r\ns1\ty\r\ns3\tx")
    d = io.read_table(m, lab)
    assert d.labels.tolist() == ["y", "x", "x"]


def test_first_label_row_is_data_when_its_label_recurs(tmp_path):
    # "s9" is not a sample, but its label "a" is used by other rows: a stray sample, not a header.
    m = _write(tmp_path / "m.tsv", MATRIX)
    lab = _write(tmp_path / "lab.tsv", "s9\ta\ns1\ta\ns2\tb\ns3\tb\n")
    with pytest.raises(OmigenInputError, match=r"1 label\(s\) without a sample in m.tsv: s9"):
        io.read_table(m, lab)


def test_missing_labels_are_named_and_drop_policy_keeps_the_intersection(tmp_path):
    m = _write(tmp_path / "m.tsv", MATRIX)
    lab = _write(tmp_path / "lab.tsv", "s1\ta\ns3\tb\ns7\tc\n")
    with pytest.raises(OmigenInputError) as err:
        io.read_table(m, lab)
    msg = str(err.value)
    assert "1 sample(s) in m.tsv without a label: s2" in msg and "label(s) without a sample" in msg
    assert "s7" in msg and "\n" not in msg
    d = io.read_table(m, lab, unmatched="drop")
    assert d.samples.tolist() == ["s1", "s3"] and d.labels.tolist() == ["a", "b"]
    np.testing.assert_array_equal(d.X[:, 0], [1, 7])


def test_duplicates_are_rejected(tmp_path):
    dup_sample = _write(tmp_path / "a.tsv", "\tg1\tg2\ns1\t1\t2\ns1\t3\t4\n")
    with pytest.raises(OmigenInputError, match="duplicate sample ids: s1"):
        io.read_table(dup_sample)
    dup_gene = _write(tmp_path / "b.tsv", "\tg1\tg1\ns1\t1\t2\ns2\t3\t4\n")
    with pytest.raises(OmigenInputError, match="duplicate gene names: g1"):
        io.read_table(dup_gene)
    m = _write(tmp_path / "m.tsv", MATRIX)
    dup_label = _write(tmp_path / "lab.tsv", "s1\ta\ns2\tb\ns2\tc\ns3\ta\n")
    with pytest.raises(OmigenInputError, match="duplicate sample ids: s2"):
        io.read_table(m, dup_label)


def test_missing_value_policies(tmp_path):
    m = _write(tmp_path / "m.tsv", "\tg1\tg2\ns1\t1\t\ns2\t3\t4\ns3\tNA\t8\n")
    with pytest.raises(OmigenInputError, match=r"2 missing value\(s\), first at sample 's1', gene 'g2'"):
        io.read_table(m)
    np.testing.assert_array_equal(io.read_table(m, missing="zero").X, [[1, 0], [3, 4], [0, 8]])
    np.testing.assert_array_equal(io.read_table(m, missing="gene-mean").X, [[1, 6], [3, 4], [2, 8]])
    with pytest.raises(OmigenInputError, match="missing must be one of"):
        io.read_table(m, missing="guess")


def test_not_expressed_convention_gives_log2_fpkm_plus_one(tmp_path):
    # log2 FPKM 3 -> FPKM 8 -> log2(9); -1 -> FPKM 0.5 -> log2(1.5); blank -> FPKM 0 -> 0.
    m = _write(tmp_path / "m.tsv", "\tg1\tg2\ns1\t3\t\ns2\t-1\t0\n")
    d = io.read_table(m, missing="not-expressed")
    np.testing.assert_allclose(d.X, [[np.log2(9), 0.0], [np.log2(1.5), 1.0]], rtol=1e-6)
    assert d.units == "log2(FPKM+1)"


def test_non_numeric_value_is_named(tmp_path):
    m = _write(tmp_path / "m.tsv", "\tg1\tg2\ns1\t1\t2\ns2\t3\tabc\n")
    with pytest.raises(OmigenInputError, match="value 'abc' at row 's2', column 'g2' is not a number"):
        io.read_table(m)


def test_orientation_detected_from_label_ids(tmp_path):
    # genes x samples: the label file's ids are the columns.
    m = _write(tmp_path / "m.csv", "gene,s1,s2\ng1,1,2\ng2,3,4\ng3,5,6\n")
    lab = _write(tmp_path / "lab.csv", "s2,b\ns1,a\n")
    d = io.read_table(m, lab)
    assert d.samples.tolist() == ["s1", "s2"] and d.genes.tolist() == ["g1", "g2", "g3"]
    np.testing.assert_array_equal(d.X, [[1, 3, 5], [2, 4, 6]])
    assert d.labels.tolist() == ["a", "b"]
    # Without labels rows are samples, unless told otherwise.
    assert io.read_table(m).samples.tolist() == ["g1", "g2", "g3"]
    forced = io.read_table(m, orientation="genes")
    assert forced.samples.tolist() == ["s1", "s2"] and forced.labels is None


def test_header_without_index_name_and_whitespace_separated(tmp_path):
    m = _write(tmp_path / "m.txt", "g1 g2\ns1 1 2\ns2 3 4\n")
    d = io.read_table(m)
    assert d.genes.tolist() == ["g1", "g2"] and d.samples.tolist() == ["s1", "s2"]


def test_sample_ids_kept_as_text(tmp_path):
    m = _write(tmp_path / "m.tsv", "\tg1\n001\t1\n002\t2\n")
    assert io.read_table(m).samples.tolist() == ["001", "002"]


def test_table_round_trip_keeps_labels_and_values(tmp_path):
    m = _write(tmp_path / "m.tsv", MATRIX)
    d = io.read_table(m, _write(tmp_path / "lab.tsv", "s1\ta\ns2\tb\ns3\ta\n"))
    out = tmp_path / "out.tsv"
    io.write_table(d, out)
    back = io.read_table(out)
    assert back.labels.tolist() == ["a", "b", "a"] and back.samples.tolist() == ["s1", "s2", "s3"]
    np.testing.assert_array_equal(back.X, d.X)
    # A table with its own label column does not need (and ignores) a label file.
    assert io.read_table(out, tmp_path / "lab.tsv").labels.tolist() == ["a", "b", "a"]


def test_h5ad_reading_with_label_key_and_missing(tmp_path):
    anndata = pytest.importorskip("anndata")
    import pandas as pd
    import scipy.sparse as sp

    X = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, np.nan]], dtype=np.float32)
    obs = pd.DataFrame({"cell_type": ["B", "T"]}, index=["c1", "c2"])
    var = pd.DataFrame(index=["g1", "g2", "g3"])
    adata = anndata.AnnData(X=X, obs=obs, var=var)
    adata.layers["counts"] = sp.csr_matrix(np.nan_to_num(X) * 10)
    path = tmp_path / "d.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(OmigenInputError, match="missing value"):
        io.read_h5ad(path, label_key="cell_type")
    d = io.read_h5ad(path, label_key="cell_type", missing="zero")
    assert d.labels.tolist() == ["B", "T"] and d.samples.tolist() == ["c1", "c2"]
    np.testing.assert_array_equal(d.X, [[1, 0, 2], [0, 3, 0]])
    counts = io.read_h5ad(path, layer="counts")
    assert counts.labels is None
    np.testing.assert_array_equal(counts.X, [[10, 0, 20], [0, 30, 0]])
    with pytest.raises(OmigenInputError, match="no obs column 'celltype'"):
        io.read_h5ad(path, label_key="celltype")
    with pytest.raises(OmigenInputError, match="no layer 'x'"):
        io.read_h5ad(path, layer="x")


def test_h5ad_round_trip_states_units(tmp_path):
    pytest.importorskip("anndata")
    d = io.read_bundled("test").subset(np.arange(5))
    io.write_h5ad(d, tmp_path / "s.h5ad")
    back = io.read_h5ad(tmp_path / "s.h5ad")
    assert back.units == "log2(FPKM+1)" and back.labels.tolist() == d.labels.tolist()
    np.testing.assert_array_equal(back.X, d.X)


def test_bundled_data_matches_the_documented_split():
    train, test = io.read_bundled("train"), io.read_bundled("test")
    assert train.X.shape == (788, 16) and test.X.shape == (393, 16)
    assert train.label_counts() == {"normal": 125, "tumor": 663}
    assert test.label_counts() == {"normal": 74, "tumor": 319}
    assert np.isfinite(train.X).all() and train.X.min() == 0.0  # not expressed -> 0
    assert train.units == "log2(FPKM+1)"
    # CELA1 is blank (not expressed) in 416 training samples.
    assert int((train.X[:, train.genes.tolist().index("CELA1")] == 0).sum()) == 416


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(OmigenInputError, match="expression file not found"):
        io.read_table(tmp_path / "nope.tsv")
    with pytest.raises(OmigenInputError, match="label file not found"):
        io.read_table(_write(tmp_path / "m.tsv", MATRIX), tmp_path / "nolabels.tsv")
