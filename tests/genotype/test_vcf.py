"""VCF reading edge cases, phenotype joins and the writer's round trip through cyvcf2 (and bcftools if present)."""

import gzip
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from omigen.errors import OmigenInputError
from omigen_genotype.vcf import DATASETS, load, phenotype_path, read_vcf, save, write_vcf

HEADER = """##fileformat=VCFv4.2
##contig=<ID=1,length=1000>
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\tc
"""

# One line per case; only rs1, rs4 and rs7 are biallelic diploid SNPs.
EDGE = HEADER + "\n".join([
    "1\t10\trs1\tA\tG\t.\tPASS\t.\tGT\t0|1\t1|1\t0|0",       # phased
    "1\t20\trs2\tA\tG,T\t.\tPASS\t.\tGT\t0/1\t1/2\t0/0",     # multi-allelic
    "1\t30\trs3\tAT\tA\t.\tPASS\t.\tGT\t0/1\t1/1\t0/0",      # indel
    "1\t40\trs4\tc\tt\t.\tPASS\t.\tGT\t1/0\t0/0\t1/1",       # unphased, lower-case bases
    "1\t50\trs5\tC\tT\t.\tPASS\t.\tGT\t0\t1\t0/1",           # haploid calls
    "1\t60\trs6\tC\t.\t.\tPASS\t.\tGT\t0/0\t0/0\t0/0",       # no ALT
    "1\t70\t.\tG\tC\t.\tPASS\t.\tGT\t1|0\t1/1\t0/1",         # no ID, mixed phasing
    "1\t80\trs8\tC\t<DEL>\t.\tPASS\t.\tGT\t0/0\t0/1\t0/0",   # symbolic
]) + "\n"

MISSING = HEADER + "\n".join([
    "1\t10\trs1\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1\t0/0",
    "1\t20\trs2\tA\tG\t.\tPASS\t.\tGT\t./.\t1/1\t1/1",       # fully missing in a
    "1\t30\trs3\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/.\t0/1",       # half-missing in b
    "1\t40\trs4\tA\tG\t.\tPASS\t.\tGT\t./.\t./.\t./.",       # nothing observed
]) + "\n"


def write(path, text):
    path.write_text(text)
    return path


def test_edge_cases_are_skipped_and_counted(tmp_path):
    d = read_vcf(write(tmp_path / "e.vcf", EDGE))
    assert d.G.tolist() == [[1, 1, 1], [2, 0, 2], [0, 2, 1]]
    assert d.variants["id"].tolist() == ["rs1", "rs4", "1:70:G:C"]
    assert d.variants["pos"].tolist() == [10, 40, 70]
    assert d.variants[["ref", "alt"]].values.tolist() == [["A", "G"], ["C", "T"], ["G", "C"]]
    assert d.meta["skipped"] == {"multiallelic": 1, "non_snp": 2, "no_alt": 1, "non_diploid": 1, "no_gt": 0}
    assert d.meta["sites_read"] == 8
    assert d.meta["phased_calls"] == 4  # three in rs1, one in the 1|0 call
    assert d.labels is None and d.phenotypes is None
    assert list(d.samples) == ["a", "b", "c"]


def test_sites_without_gt_are_skipped(tmp_path):
    dp = '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    text = HEADER.replace("##FORMAT=<ID=GT", dp + "##FORMAT=<ID=GT")
    text += "1\t10\trs1\tA\tG\t.\tPASS\t.\tDP\t3\t4\t5\n1\t20\trs2\tA\tG\t.\tPASS\t.\tGT:DP\t0/1:3\t1/1:4\t0/0:5\n"
    d = read_vcf(write(tmp_path / "dp.vcf", text))
    assert d.variants["id"].tolist() == ["rs2"] and d.G[:, 0].tolist() == [1, 2, 0]
    assert d.meta["skipped"]["no_gt"] == 1


def test_phased_input_keeps_haplotypes(tmp_path):
    # Unphased homozygous calls carry no phase, so they do not stop the haplotypes.
    text = HEADER + "1\t10\trs1\tA\tG\t.\tPASS\t.\tGT\t0|1\t1/1\t1|0\n" \
                    "1\t20\trs2\tA\tG\t.\tPASS\t.\tGT\t1|1\t0|1\t0/0\n"
    d = read_vcf(write(tmp_path / "p.vcf", text))
    assert d.meta["haplotypes"] is True
    assert d.haplotypes.tolist() == [[[0, 1], [1, 1]], [[1, 1], [0, 1]], [[1, 0], [0, 0]]]
    assert np.array_equal(d.haplotypes.sum(2), d.G)


def test_one_unphased_heterozygote_or_an_imputed_call_drops_the_haplotypes(tmp_path):
    assert read_vcf(write(tmp_path / "e.vcf", EDGE)).haplotypes is None  # rs4's 1/0
    phased_missing = MISSING.replace("/", "|")
    d = read_vcf(write(tmp_path / "m.vcf", phased_missing), missing="drop-variant")
    assert d.meta["haplotypes"] is True and d.haplotypes[:, 0].tolist() == [[0, 1], [1, 1], [0, 0]]
    d = read_vcf(write(tmp_path / "m2.vcf", phased_missing), missing="impute-mode")
    assert d.haplotypes is None and d.meta["haplotypes"] is False


def test_missing_calls_error_names_the_first(tmp_path):
    with pytest.raises(OmigenInputError, match=r"m.vcf: 5 missing .*sample 'a', 1:20"):
        read_vcf(write(tmp_path / "m.vcf", MISSING))


def test_missing_calls_drop_variant(tmp_path):
    d = read_vcf(write(tmp_path / "m.vcf", MISSING), missing="drop-variant")
    assert d.variants["id"].tolist() == ["rs1"]
    assert d.meta["missing_calls"] == 5 and d.meta["dropped_for_missing"] == 3


def test_missing_calls_impute_mode(tmp_path):
    d = read_vcf(write(tmp_path / "m.vcf", MISSING), missing="impute-mode")
    # rs2: observed 2, 2 -> a becomes 2; rs3: observed 1, 1 -> b becomes 1; rs4 has no observed call.
    assert d.variants["id"].tolist() == ["rs1", "rs2", "rs3"]
    assert d.G.tolist() == [[1, 2, 1], [2, 2, 1], [0, 2, 1]]
    assert d.meta["imputed_calls"] == 2 and d.meta["dropped_for_missing"] == 1


def test_maf_filter(tmp_path):
    text = HEADER + "1\t10\trs1\tA\tG\t.\tPASS\t.\tGT\t0/0\t0/0\t0/1\n" \
                    "1\t20\trs2\tA\tG\t.\tPASS\t.\tGT\t0/1\t0/0\t0/1\n"
    path = write(tmp_path / "f.vcf", text)
    assert read_vcf(path).G.shape == (3, 2)
    d = read_vcf(path, maf=0.2)  # rs1 has MAF 1/6 < 0.2, rs2 2/6
    assert d.variants["id"].tolist() == ["rs2"] and d.meta["dropped_for_maf"] == 1
    with pytest.raises(OmigenInputError, match="no biallelic diploid SNP left"):
        read_vcf(path, maf=0.5)
    with pytest.raises(OmigenInputError, match="maf must be"):
        read_vcf(path, maf=0.7)


def test_phenotypes_join_and_label(tmp_path):
    vcf = write(tmp_path / "e.vcf", EDGE)
    ph = write(tmp_path / "ph.tsv", "sample\tpopulation\tphenotype\tage\nc\tX\t0.5\t30\na\tY\t-1.5\t40\nb\tX\t2\t50\n")
    d = read_vcf(vcf, phenotypes=ph)
    assert list(d.labels) == ["Y", "X", "X"]
    assert d.phenotypes["phenotype"].tolist() == [-1.5, 2.0, 0.5]
    assert d.phenotypes["age"].dtype.kind in "if" and d.meta["label_column"] == "population"
    assert read_vcf(vcf, phenotypes=ph, label=None).labels is None
    assert list(read_vcf(vcf, phenotypes=ph, label="age").labels) == ["40", "50", "30"]
    with pytest.raises(OmigenInputError, match="no label column 'ancestry'"):
        read_vcf(vcf, phenotypes=ph, label="ancestry")


def test_phenotype_sidecar_is_found(tmp_path):
    vcf = write(tmp_path / "cohort.vcf", EDGE)
    write(tmp_path / "cohort.phenotypes.tsv", "IID\tpopulation\na\tP\nb\tQ\nc\tP\n")
    assert phenotype_path(tmp_path / "cohort.vcf.gz") == tmp_path / "cohort.phenotypes.tsv"
    assert list(read_vcf(vcf).labels) == ["P", "Q", "P"]


@pytest.mark.parametrize("rows, message", [
    ("sample\tpopulation\na\tP\nb\tQ\n", r"1 VCF sample\(s\) have no phenotype row \(e.g. 'c'\)"),
    ("sample\tpopulation\na\tP\nb\tQ\nc\tP\nz\tQ\n", r"1 phenotype row\(s\) have no VCF sample \(e.g. 'z'\)"),
])
def test_sample_phenotype_mismatch_is_an_error(tmp_path, rows, message):
    vcf = write(tmp_path / "e.vcf", EDGE)
    with pytest.raises(OmigenInputError, match=message):
        read_vcf(vcf, phenotypes=write(tmp_path / "ph.tsv", rows))


def test_sample_phenotype_mismatch_drop(tmp_path):
    vcf = write(tmp_path / "e.vcf", EDGE)
    ph = write(tmp_path / "ph.tsv", "sample\tpopulation\nz\tQ\nc\tP\na\tP\n")
    d = read_vcf(vcf, phenotypes=ph, on_mismatch="drop")
    assert list(d.samples) == ["a", "c"] and list(d.labels) == ["P", "P"]
    assert d.G.tolist() == [[1, 1, 1], [0, 2, 1]]
    assert d.meta["samples_without_phenotype"] == 1 and d.meta["phenotypes_without_sample"] == 1
    with pytest.raises(OmigenInputError, match="no VCF sample has a phenotype row"):
        read_vcf(vcf, phenotypes=write(tmp_path / "none.tsv", "sample\tpopulation\nz\tQ\n"), on_mismatch="drop")


def test_bad_phenotype_tables(tmp_path):
    vcf = write(tmp_path / "e.vcf", EDGE)
    with pytest.raises(OmigenInputError, match="duplicate sample id 'a'"):
        read_vcf(vcf, phenotypes=write(tmp_path / "d.tsv", "sample\tx\na\t1\na\t2\n"))
    with pytest.raises(OmigenInputError, match="phenotype table not found"):
        read_vcf(vcf, phenotypes=tmp_path / "nope.tsv")
    with pytest.raises(OmigenInputError, match="sample 'b' has no 'population' value"):
        read_vcf(vcf, phenotypes=write(tmp_path / "n.tsv", "sample\tpopulation\na\tP\nb\tNA\nc\tP\n"))


def test_bad_options_and_files(tmp_path):
    vcf = write(tmp_path / "e.vcf", EDGE)
    with pytest.raises(OmigenInputError, match="missing must be one of"):
        read_vcf(vcf, missing="ignore")
    with pytest.raises(OmigenInputError, match="on_mismatch must be one of"):
        read_vcf(vcf, on_mismatch="keep")
    with pytest.raises(OmigenInputError, match="nope.vcf"):
        load(tmp_path / "nope.vcf")
    with pytest.raises(OmigenInputError, match="empty.vcf: not a readable VCF"):
        load(write(tmp_path / "empty.vcf", ""))
    (tmp_path / "junk.vcf.gz").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(OmigenInputError, match="junk.vcf.gz"):
        load(tmp_path / "junk.vcf.gz")
    no_samples = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t5\t.\tA\tG\t.\t.\t.\n"
    with pytest.raises(OmigenInputError, match="no samples"):
        load(write(tmp_path / "sites.vcf", no_samples))


def _toy(tmp_path):
    vcf = write(tmp_path / "e.vcf", EDGE)
    ph = write(tmp_path / "ph.tsv", "sample\tpopulation\tphenotype\na\tY\t-1.5\nb\tX\t2\nc\tX\t0.25\n")
    return read_vcf(vcf, phenotypes=ph)


@pytest.mark.parametrize("name", ["out.vcf", "out.vcf.gz", "out.bcf"])
def test_round_trip(tmp_path, name):
    d = _toy(tmp_path)
    path = tmp_path / name
    save(d, path)
    back = read_vcf(path)  # picks up out.phenotypes.tsv
    np.testing.assert_array_equal(back.G, d.G)
    pd.testing.assert_frame_equal(back.variants, d.variants)
    assert list(back.samples) == list(d.samples) and list(back.labels) == list(d.labels)
    assert back.phenotypes["phenotype"].tolist() == [-1.5, 2.0, 0.25]
    assert back.meta["phased_calls"] == 0  # written unphased
    if name.endswith(".gz"):
        assert path.read_bytes()[:4] == b"\x1f\x8b\x08\x04"  # BGZF: gzip with the extra field
        assert "0/1" in gzip.decompress(path.read_bytes()).decode()
    if name == "out.vcf":
        body = [ln.split("\t") for ln in path.read_text().splitlines() if not ln.startswith("#")]
        assert [b[9:] for b in body] == [["0/1", "1/1", "0/0"], ["0/1", "0/0", "1/1"], ["0/1", "1/1", "0/1"]]
        assert "##contig=<ID=1,length=1000>" in path.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", ["phased.vcf", "phased.bcf"])
def test_haplotypes_are_written_phased_and_read_back(tmp_path, name):
    text = HEADER + "1\t10\trs1\tA\tG\t.\tPASS\t.\tGT\t0|1\t1|1\t1|0\n" \
                    "1\t20\trs2\tA\tG\t.\tPASS\t.\tGT\t1|0\t0|0\t0|1\n"
    d = read_vcf(write(tmp_path / "in.vcf", text))
    path = tmp_path / name
    save(d, path)
    back = read_vcf(path)
    assert back.meta["phased_calls"] == 6 and np.array_equal(back.haplotypes, d.haplotypes)
    if name.endswith(".vcf"):
        body = [ln.split("\t")[9:] for ln in path.read_text().splitlines() if not ln.startswith("#")]
        assert body == [["0|1", "1|1", "1|0"], ["1|0", "0|0", "0|1"]]


def test_written_synthetic_names_and_domain(tmp_path):
    from omigen.data import GenotypeData

    d = _toy(tmp_path)
    syn = GenotypeData(G=np.array([[0, 1, 2], [2, 2, 0]]), samples=["syn_1", "syn_2"], variants=d.variants)
    write_vcf(syn, tmp_path / "s.vcf.gz")
    back = read_vcf(tmp_path / "s.vcf.gz")
    assert list(back.samples) == ["syn_1", "syn_2"] and back.G.tolist() == [[0, 1, 2], [2, 2, 0]]
    bad = GenotypeData(G=np.array([[0, 3, 2]]), samples=["x"], variants=d.variants)
    with pytest.raises(OmigenInputError, match="dosages must be 0, 1 or 2"):
        write_vcf(bad, tmp_path / "bad.vcf")
    assert not (tmp_path / "bad.vcf").exists()


@pytest.mark.skipif(shutil.which("bcftools") is None, reason="bcftools is not installed")
def test_bcftools_reads_the_output(tmp_path):
    d = _toy(tmp_path)
    write_vcf(d, tmp_path / "o.vcf.gz")
    out = subprocess.run(["bcftools", "query", "-f", "%POS[\\t%GT]\\n", str(tmp_path / "o.vcf.gz")],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["10\t0/1\t1/1\t0/0", "40\t0/1\t0/0\t1/1", "70\t0/1\t1/1\t0/1"]


def test_dataset_spec():
    (spec,) = DATASETS
    spec.validate()
    assert spec.modality == "genotype" and spec.save is save
    assert spec.matches("x.vcf") and spec.matches("x.VCF.GZ") and spec.matches("x.bcf")


def test_input_summary_lists_what_was_skipped(tmp_path):
    from omigen_genotype.vcf import input_summary

    table = input_summary(read_vcf(write(tmp_path / "m.vcf", MISSING), missing="impute-mode").meta)
    counts = dict(zip(table["input"], table["count"]))
    assert counts["sites read"] == 4 and counts["skipped: multiallelic"] == 0
    assert counts["imputed calls"] == 2 and counts["dropped for missing calls"] == 1
    assert input_summary({}).empty
