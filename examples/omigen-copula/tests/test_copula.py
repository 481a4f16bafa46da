"""omigen-copula's own tests: the copula maths, the table reader, the checkpoint, and omigen's contract kit."""

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp, spearmanr

from omigen.errors import OmigenInputError
from omigen.testing import parametrize_plugin_checks
from omigen_copula import copula
from omigen_copula.table import generate_default, read_table, write_table


@parametrize_plugin_checks("copula")
def test_contract(check, tmp_path):
    check(tmp_path)


def test_quantile_transform_interpolates_each_column():
    table = np.array([[0.0, 10.0], [10.0, 20.0], [20.0, 40.0]])  # 3 quantiles (p = 0, .5, 1) of 2 genes
    probs = np.array([0.0, 0.5, 1.0])
    u = np.array([[0.25, 0.75], [1.0, 0.0]])
    assert np.allclose(copula.quantile_transform(table, probs, u), [[5.0, 30.0], [20.0, 10.0]])


def test_proportional_counts_by_largest_remainder():
    params = copula.fit(generate_default(40, 3).subset(np.r_[0:15, 20:25]), n_quantiles=5)  # A: 15, B: 5
    assert copula.proportional_counts(params, 8) == {"A": 6, "B": 2}
    assert copula.proportional_counts(params, 5) == {"A": 4, "B": 1}  # 3.75 / 1.25
    assert copula.proportional_counts(params, 1) == {"A": 1}


def test_samples_keep_marginals_and_rank_correlations():
    data = generate_default(2000, 5, seed=3)
    params = copula.fit(data, n_quantiles=200, shrinkage=0.01)
    synthetic = copula.sample(params, {"A": 1000, "B": 1000}, seed=0)
    for c in ("A", "B"):
        real_c, syn_c = data.X[data.labels == c], synthetic.X[synthetic.labels == c]
        for j in range(real_c.shape[1]):
            assert ks_2samp(real_c[:, j], syn_c[:, j]).statistic < 0.08
        rho_real, rho_syn = spearmanr(real_c).statistic, spearmanr(syn_c).statistic
        assert np.abs(rho_real - rho_syn).max() < 0.1
    # Values stay within each class's observed range: the quantile table never extrapolates.
    assert synthetic.X.min() >= data.X.min() - 1e-5 and synthetic.X.max() <= data.X.max() + 1e-5


def test_constant_gene_and_single_sample_class_are_handled():
    data = generate_default(21, 3).subset(np.arange(11))  # A: 10, B: 1
    data.X[:, 1] = 2.5
    params = copula.fit(data, n_quantiles=10)
    out = copula.sample(params, {"A": 50, "B": 3}, seed=1)
    assert np.all(out.X[:, 1] == 2.5)
    assert np.allclose(out.X[out.labels == "B"], data.X[data.labels == "B"])


def test_unknown_label_is_an_input_error():
    params = copula.fit(generate_default(20, 3), n_quantiles=5)
    with pytest.raises(OmigenInputError, match="unknown label 'C' \\(known: A, B\\)"):
        copula.sample(params, {"C": 2})


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    params = copula.fit(generate_default(30, 4), n_quantiles=7)
    path = copula.save(params, tmp_path / "copula.ckpt")
    assert isinstance(torch.load(path, weights_only=True)["quantiles"], torch.Tensor)
    back = copula.load(path)
    assert back.classes == params.classes and back.genes == params.genes
    assert np.array_equal(back.quantiles, params.quantiles) and np.array_equal(back.chol, params.chol)
    (tmp_path / "other.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(OmigenInputError, match="cannot read copula checkpoint"):
        copula.load(tmp_path / "other.ckpt")


def test_table_round_trip_csv_and_tsv(tmp_path):
    data = generate_default(10, 3)
    for name in ("t.csv", "t.tsv"):
        back = read_table(write_table(data, tmp_path / name))
        assert np.allclose(back.X, data.X, rtol=1e-5) and list(back.labels) == list(data.labels)
        assert list(back.genes) == list(data.genes) and list(back.samples) == list(data.samples)
    with pytest.raises(OmigenInputError, match="t.tsv: non-numeric value 'A' at sample 'sim_0001', gene 'label'"):
        read_table(tmp_path / "t.tsv", label_column=None)


def test_table_errors_name_the_problem(tmp_path):
    (tmp_path / "gap.tsv").write_text("sample\tg1\tg2\ns1\t1.0\t\ns2\t2.0\t3.0\n")
    with pytest.raises(OmigenInputError, match="gap.tsv: missing value at sample 's1', gene 'g2'"):
        read_table(tmp_path / "gap.tsv")
    (tmp_path / "nolabel.tsv").write_text("sample\tg1\tlabel\ns1\t1.0\tA\ns2\t2.0\t\n")
    with pytest.raises(OmigenInputError, match="nolabel.tsv: sample 's2' has no 'label'"):
        read_table(tmp_path / "nolabel.tsv")
    (tmp_path / "dup.csv").write_text("sample,g1,g1\ns1,1,2\n")
    with pytest.raises(OmigenInputError, match="dup.csv: duplicate column name\\(s\\): g1"):
        read_table(tmp_path / "dup.csv")
    (tmp_path / "dupid.csv").write_text("sample,g1\ns1,1\ns1,2\n")
    with pytest.raises(OmigenInputError, match="dupid.csv: duplicate sample ids: s1"):
        read_table(tmp_path / "dupid.csv")
    (tmp_path / "plain.tsv").write_text("sample\tg1\tg2\ns1\t1.0\t2.0\n")
    assert read_table(tmp_path / "plain.tsv").labels is None
    with pytest.raises(OmigenInputError, match="expression table not found: .*absent.csv"):
        read_table(tmp_path / "absent.csv")
