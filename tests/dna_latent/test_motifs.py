"""JASPAR motif scanning: planted motifs found at their positions on both strands; count and position statistics."""

from __future__ import annotations

import numpy as np
import pytest

from omigen.errors import OmigenInputError
from omigen_dna_latent import motifs as mo
from omigen_dna_latent.io import encode, strings


def _consensus(motif: mo.Motif) -> str:
    return strings(motif.pssm.argmax(axis=1)[None])[0]


def _revcomp(seq: str) -> str:
    return seq[::-1].translate(str.maketrans("ACGT", "TGCA"))


def test_default_motifs_load_from_jaspar():
    motifs = mo.load_motifs()
    assert [m.name for m in motifs] == ["TBP", "NFYA", "SP1", "GATA1", "HNF4A", "CTCF"]
    assert [m.matrix_id for m in motifs] == list(mo.DEFAULT_MOTIFS.values())
    tbp = motifs[0]
    assert tbp.width == 7 and _consensus(tbp) == "TATAAAA"
    by_name = mo.load_motifs(["CTCF"])[0]
    assert by_name.name == "CTCF" and by_name.matrix_id.startswith("MA")
    with pytest.raises(OmigenInputError, match="no JASPAR motif named 'NOTAFACTOR'"):
        mo.load_motifs(["NOTAFACTOR"])


def test_planted_tata_box_found_on_both_strands():
    tbp = mo.load_motifs({"TBP": "MA0108.3"})[0]
    site = _consensus(tbp)
    background = "G" * 60
    fwd = background[:10] + site + background[17:]
    rev = background[:30] + _revcomp(site) + background[37:]
    both = background[:5] + site + background[12:40] + _revcomp(site) + background[47:]
    # 0.9 of the range: the TATA box's flanks give partial matches near 0.8 in this background
    hits = mo.scan(encode([fwd, rev, both, background]), tbp, threshold=0.9)
    assert hits.shape == (4, 54)
    assert [np.flatnonzero(h).tolist() for h in hits] == [[10], [30], [5, 40], []]


def test_pssm_reverse_complement_and_threshold_by_hand():
    # a 2-column motif: column 1 always A, column 2 always C (counts 10 of 10)
    counts = np.array([[10, 0], [0, 10], [0, 0], [0, 0]])
    pssm = mo.pssm_from_counts(counts, pseudocount=0.0 + 1e-9)
    assert pssm.shape == (2, 4)
    assert pssm[0, 0] == pytest.approx(2.0, abs=1e-6)  # log2(1 / 0.25)
    rc = mo.reverse_complement(pssm)
    assert rc.argmax(axis=1).tolist() == [2, 3]  # AC on the other strand reads GT
    toy = mo.Motif("toy", "toy", mo.pssm_from_counts(counts))
    assert mo.hit_threshold(toy.pssm, 1.0) == pytest.approx(toy.pssm.max(axis=1).sum())
    hits = mo.scan(encode(["ACTTGT", "CCCCCC"]), toy, threshold=1.0)
    assert hits.tolist() == [[True, False, False, False, True], [False] * 5]
    with pytest.raises(OmigenInputError, match="threshold"):
        mo.hit_threshold(toy.pssm, 1.5)


def test_statistics_identical_and_shifted_sets():
    counts = np.array([[10, 0, 0], [0, 10, 0], [0, 0, 10], [0, 0, 0]])  # ACG
    toy = [mo.Motif("acg", "toy", mo.pssm_from_counts(counts))]
    rng = np.random.default_rng(0)
    base = np.full((50, 40), "A")
    early = base.copy()
    early[:, 5:8] = list("ACG")
    late = base.copy()
    late[:, 30:33] = list("ACG")
    late[:25, 10:13] = list("ACG")
    to_codes = lambda a: encode(["".join(r) for r in a])  # noqa: E731
    same = mo.motif_statistics(to_codes(early), to_codes(early), toy, threshold=0.99, bin_width=5)["acg"]
    assert same["count_js"] == 0.0 and same["position_r"] == pytest.approx(1.0)
    assert same["real_rate"] == same["synthetic_rate"] == 1.0
    moved = mo.motif_statistics(to_codes(early), to_codes(late), toy, threshold=0.99, bin_width=5)["acg"]
    assert moved["synthetic_rate"] == 1.5
    # counts: real all 1; synthetic half 1, half 2 -> JS of (0, 1) vs (0, 1/2, 1/2)
    assert moved["count_js"] == pytest.approx(1.5 - 0.75 * np.log2(3), abs=1e-9)
    assert moved["position_r"] < 0.0
    never = mo.motif_statistics(to_codes(base), to_codes(base[:10]), toy, threshold=0.99)["acg"]
    assert never["position_r"] == 1.0 and never["count_js"] == 0.0  # no hits in either set: they agree
    one_sided = mo.motif_statistics(to_codes(base), to_codes(early), toy, threshold=0.99, bin_width=5)["acg"]
    assert one_sided["position_r"] == 0.0 and one_sided["count_js"] == pytest.approx(1.0)
    assert mo.positional_profile(np.array([[1, 0, 0, 1, 1]], bool), 2).tolist() == [1.0, 1.0, 1.0]


def test_label_rates_and_enrichment_by_hand():
    counts = np.array([[10, 0, 0], [0, 10, 0], [0, 0, 10], [0, 0, 0]])  # ACG
    toy = [mo.Motif("acg", "toy", mo.pssm_from_counts(counts))]
    # "x" sequences carry ACG twice, "y" ones once
    real = encode(["ACGAACGAAA"] * 4 + ["AAAACGAAAA"] * 4)
    labels = np.array(["x"] * 4 + ["y"] * 4)
    rates = mo.label_rates(real, labels, toy, threshold=0.99)["acg"]
    assert rates == {"x": 2.0, "y": 1.0, "all": 1.5}
    flat = mo.label_rates(encode(["ACGAAAAAAA"] * 8), labels, toy, threshold=0.99)
    assert flat["acg"] == {"x": 1.0, "y": 1.0, "all": 1.0}

    two = {"acg": rates, "gca": {"x": 0.5, "y": 1.5, "all": 1.0}}
    assert mo.label_enrichment_r(two, two) == pytest.approx(1.0)
    # the same enrichments at twice the overall rates: still r = 1
    doubled = {m: {k: 2 * v for k, v in r.items()} for m, r in two.items()}
    assert mo.label_enrichment_r(two, doubled) == pytest.approx(1.0)
    # labels swapped: log2 enrichments (0.415, -0.585, -1, 0.585) against (-0.585, 0.415, 0.585, -1)
    swapped = {m: {"x": r["y"], "y": r["x"], "all": r["all"]} for m, r in two.items()}
    x = np.log2([2 / 1.5, 1 / 1.5, 0.5, 1.5])
    y = np.log2([1 / 1.5, 2 / 1.5, 1.5, 0.5])
    r = mo.label_enrichment_r(two, swapped)
    assert r == pytest.approx(np.corrcoef(x, y)[0, 1]) and r < -0.9
    # one motif mix for every label: no enrichment to correlate with, r 0 by the flat-profile rule
    assert mo.label_enrichment_r({"acg": rates}, flat) == 0.0
    # a motif absent from a set contributes no pair
    assert mo.label_enrichment_r({"acg": {"x": 0.0, "y": 0.0, "all": 0.0}}, flat) == 0.0
    with pytest.raises(OmigenInputError, match="one label per sequence"):
        mo.label_rates(real, labels[:3], toy)
