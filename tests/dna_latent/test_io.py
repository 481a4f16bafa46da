"""Reading and writing sequences: FASTA/TSV parsing, the character, length and id policies, one-hot."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from omigen.errors import OmigenInputError
from omigen_dna_latent.io import (DATASETS, decode, encode, one_hot, read_fasta, read_table, save_table,
                                  write_fasta)


def _write(path, text):
    path.write_text(text)
    return path


def test_fasta_labels_from_headers_case_and_wrapping(tmp_path):
    fa = _write(tmp_path / "a.fa", ">s1 label=K562 extra words\nacgT\nAC\n>s2 label=HepG2\nTTTTTT\n")
    data = read_fasta(fa)
    assert data.samples.tolist() == ["s1", "s2"]
    assert data.sequences.tolist() == ["ACGTAC", "TTTTTT"]
    assert data.labels.tolist() == ["K562", "HepG2"]


def test_fasta_pipe_labels_and_unlabelled(tmp_path):
    data = read_fasta(_write(tmp_path / "p.fa", ">s1|K562\nACGT\n>s2|GM12878\nCCCC\n"))
    assert data.samples.tolist() == ["s1", "s2"] and data.labels.tolist() == ["K562", "GM12878"]
    plain = read_fasta(_write(tmp_path / "u.fa", ">s1\nACGT\n>s2\nCCCC\n"))
    assert plain.labels is None


def test_fasta_partial_labels_rejected(tmp_path):
    with pytest.raises(OmigenInputError, match="'s2' has no label"):
        read_fasta(_write(tmp_path / "x.fa", ">s1 label=A\nACGT\n>s2\nCCCC\n"))


def test_fasta_side_table_join_and_mismatch(tmp_path):
    fa = _write(tmp_path / "a.fa", ">s1\nACGT\n>s2\nCCCC\n")
    table = _write(tmp_path / "labels.tsv", "id\tlabel\ns2\tHepG2\ns1\tK562\ns9\tother\n")
    assert read_fasta(fa, label_table=table).labels.tolist() == ["K562", "HepG2"]
    short = _write(tmp_path / "short.csv", "id,label\ns1,K562\n")
    with pytest.raises(OmigenInputError, match=r"1 record\(s\) of a.fa have no label in short.csv: 's2'"):
        read_fasta(fa, label_table=short)


def test_bad_characters_and_ambiguous_policies(tmp_path):
    fa = _write(tmp_path / "n.fa", ">s1\nACGT\n>s2\nACNT\n>s3\nRCGT\n")
    with pytest.raises(OmigenInputError, match=r"'s2' has ambiguous base 'N' at position 3"):
        read_fasta(fa)
    dropped = read_fasta(fa, ambiguous="drop")
    assert dropped.samples.tolist() == ["s1"]
    masked = read_fasta(fa, ambiguous="mask", seed=3)
    seqs = masked.sequences.tolist()
    assert seqs[0] == "ACGT" and seqs[1][:2] + seqs[1][3] == "ACT" and seqs[1][2] in "ACGT"
    assert seqs[2][0] in "AG" and seqs[2][1:] == "CGT"
    gap = _write(tmp_path / "g.fa", ">ok\nACGT\n>bad\nAC-T\n")
    with pytest.raises(OmigenInputError, match=r"'bad' has '-' at position 3"):
        read_fasta(gap, ambiguous="mask")
    with pytest.raises(OmigenInputError, match="ambiguous must be one of"):
        read_fasta(fa, ambiguous="ignore")


def test_length_policies(tmp_path):
    fa = _write(tmp_path / "l.fa", ">a\nACGTAC\n>b\nAAAATTTT\n>c\nGG\n")
    with pytest.raises(OmigenInputError, match=r"record 'b' has length 8 but 'a' has 6"):
        read_fasta(fa)
    with pytest.raises(OmigenInputError, match=r"record 'b' has length 8, expected 6"):
        read_fasta(fa, length=6)
    with pytest.raises(OmigenInputError, match=r"record 'c' has length 2, expected 6 \(pad_crop='crop'\)"):
        read_fasta(fa, length=6, pad_crop="crop")
    padded = read_fasta(fa, length=6, pad_crop="pad")
    a, b, c = padded.sequences.tolist()
    assert a == "ACGTAC" and b == "AAATTT"  # centre crop of AAAATTTT
    assert len(c) == 6 and c[2:4] == "GG"
    cropped = read_fasta(_write(tmp_path / "c.fa", ">a\nACGTAC\n>b\nAAAATTTT\n"), length=4, pad_crop="crop")
    assert cropped.sequences.tolist() == ["CGTA", "AATT"]


def test_duplicate_ids_empty_and_garbage(tmp_path):
    with pytest.raises(OmigenInputError, match="duplicate sequence ids: s1"):
        read_fasta(_write(tmp_path / "d.fa", ">s1\nACGT\n>s1\nCCCC\n"))
    with pytest.raises(OmigenInputError, match="empty.fa holds no FASTA records"):
        read_fasta(_write(tmp_path / "empty.fa", ""))
    with pytest.raises(OmigenInputError, match="does not start with '>'"):
        read_fasta(_write(tmp_path / "t.fa", "id\tsequence\n"))
    with pytest.raises(OmigenInputError, match="missing.fa"):
        read_fasta(tmp_path / "missing.fa")


def test_table_columns_split_and_defaults(tmp_path):
    tsv = _write(tmp_path / "dhs.tsv", "dhs_id\tcell_type\tsplit\tsequence\n"
                                        "r1\tK562\ttraining\tACGT\nr2\tHepG2\ttest\tccgg\nr3\tK562\ttest\tTTAA\n")
    data = read_table(tsv)
    assert data.samples.tolist() == ["r1", "r2", "r3"] and data.labels.tolist() == ["K562", "HepG2", "K562"]
    test = read_table(tsv, split="test")
    assert test.samples.tolist() == ["r2", "r3"] and test.sequences.tolist() == ["CCGG", "TTAA"]
    none = read_table(tsv, label_col="", id_col="")
    assert none.labels is None and none.samples.tolist() == ["seq1", "seq2", "seq3"]
    csv = _write(tmp_path / "s.csv", "name,seq,group\nx,ACG,a\ny,TTT,b\n")
    got = read_table(csv, sequence_col="seq", label_col="group", id_col="name")
    assert got.samples.tolist() == ["x", "y"] and got.labels.tolist() == ["a", "b"]
    with pytest.raises(OmigenInputError, match="s.csv has no sequence column 'sequence'"):
        read_table(csv)
    with pytest.raises(OmigenInputError, match="no rows with split in"):
        read_table(tsv, split="validation")


def test_fasta_and_table_round_trip(tmp_path):
    data = read_table(_write(tmp_path / "in.tsv", "id\tlabel\tsequence\na\tK562\tACGTAA\nb\tHepG2\tTTGCAA\n"))
    for name in ("out.fa", "out.fa.gz"):
        write_fasta(data, tmp_path / name)
        back = read_fasta(tmp_path / name)
        assert back.samples.tolist() == ["a", "b"] and back.labels.tolist() == ["K562", "HepG2"]
        assert back.sequences.tolist() == data.sequences.tolist()
    assert (tmp_path / "out.fa").read_text().splitlines()[0] == ">a label=K562"
    with gzip.open(tmp_path / "out.fa.gz", "rt") as fh:
        assert fh.readline() == ">a label=K562\n"
    save_table(data, tmp_path / "t.csv.gz")
    assert read_table(tmp_path / "t.csv.gz").sequences.tolist() == data.sequences.tolist()
    assert [s.name for s in DATASETS] == ["sequence-fasta", "sequence-table"]
    assert DATASETS[0].matches("x.fasta.gz") and DATASETS[1].matches("x.csv")


def test_one_hot_round_trip_and_decode_logits():
    seqs = ["ACGTTGCA", "GGGGCCCC"]
    oh = one_hot(seqs)
    assert oh.shape == (2, 8, 4) and oh.dtype == np.float32
    assert np.array_equal(oh[0, :4], np.eye(4))
    assert decode(oh) == seqs
    logits = oh * 3.0 + np.random.default_rng(0).normal(0, 0.1, oh.shape)
    assert decode(logits) == seqs
    assert encode(seqs)[1].tolist() == [2, 2, 2, 2, 1, 1, 1, 1]
    torch = pytest.importorskip("torch")
    assert decode(torch.from_numpy(oh)) == seqs
    with pytest.raises(OmigenInputError, match="position 3"):
        one_hot(["ACNT"])
