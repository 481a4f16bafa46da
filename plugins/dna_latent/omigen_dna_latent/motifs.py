"""Transcription-factor motif statistics with JASPAR matrices: occurrence counts and where hits fall.

Matrices come offline from the ``pyjaspar`` package (release :data:`RELEASE`, pinned so numbers
are comparable across installs). Each count matrix becomes a log-odds PSSM against a uniform
background with Biopython (pseudo-count :data:`PSEUDOCOUNT` per base).

Scanning: a window is a **hit** when its score on either strand reaches ``threshold`` of the
PSSM's range, i.e. ``score >= min + threshold * (max - min)`` (the usual relative score; 0.8 by
default). Scores of every window of every sequence are summed column by column from the PSSM
(``score += P[j][codes[:, j:j + W]]`` for each motif column ``j``), which is the one-hot window
x PSSM product without materialising the windows; the reverse strand uses the
reverse-complemented PSSM. A window that hits on both strands counts once. Hits are reported at
the window's start (0-based).

Comparisons, real vs synthetic, per motif:

- ``count_js``: Jensen–Shannon divergence (bits) of the histograms of hits per sequence;
- ``position_r``: Pearson correlation of the per-position hit frequency, summed in bins of
  :data:`POSITION_BIN` bp to smooth it. A flat profile has no correlation; then two identical
  profiles (e.g. no hits in either set) score 1 and any other pair 0, so the value is always finite;
- ``real_rate`` / ``synthetic_rate``: mean hits per sequence.

Per label (cell type), :func:`label_rates` gives each motif's hits per sequence of each label and
:func:`label_enrichment_r` compares them: the Pearson r, over every (motif, label) pair, of
``log2(rate of the label / rate of the whole set)`` real against synthetic. A cell-type factor
that is enriched in its own cell type (HNF4A in HepG2 DHS sites) must be enriched in the
synthetic sequences of that label too; a generator that writes the same motif mix for every
label scores about 0 however well its pooled positional profiles match.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from omigen.errors import OmigenInputError

RELEASE = "JASPAR2024"
#: Default motifs: JASPAR matrix ids of general promoter elements (TATA box, CCAAT box, GC box),
#: cell-type factors (GATA1 for K562, HNF4A for HepG2) and the insulator CTCF.
DEFAULT_MOTIFS: dict[str, str] = {"TBP": "MA0108.3", "NFYA": "MA0060.4", "SP1": "MA0079.5",
                                  "GATA1": "MA0035.5", "HNF4A": "MA0114.5", "CTCF": "MA0139.2"}
PSEUDOCOUNT = 0.5
THRESHOLD = 0.8
POSITION_BIN = 20
_MATRIX_ID = re.compile(r"^MA\d{4}\.\d+$")


@dataclass(frozen=True)
class Motif:
    """A motif ready to scan: its name, JASPAR id and log-odds PSSM (width x 4, columns A C G T)."""

    name: str
    matrix_id: str
    pssm: np.ndarray

    @property
    def width(self) -> int:
        """Number of positions of the motif."""
        return int(self.pssm.shape[0])


def pssm_from_counts(counts: np.ndarray, pseudocount: float = PSEUDOCOUNT) -> np.ndarray:
    """Log2-odds PSSM (width x 4) of a count matrix (4 x width, rows A C G T) against a uniform background."""
    from Bio.motifs.matrix import FrequencyPositionMatrix

    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != 4:
        raise OmigenInputError(f"a motif count matrix must be 4 x width, got shape {counts.shape}")
    fpm = FrequencyPositionMatrix("ACGT", {b: counts[i].tolist() for i, b in enumerate("ACGT")})
    pssm = fpm.normalize(pseudocounts=pseudocount).log_odds()
    return np.array([pssm[b] for b in "ACGT"], dtype=np.float64).T


@lru_cache(maxsize=64)
def _fetch(key: str, release: str):
    from pyjaspar import jaspardb

    db = jaspardb(release=release)
    if _MATRIX_ID.match(key):
        motif = db.fetch_motif_by_id(key)
        if motif is None:
            raise OmigenInputError(f"JASPAR matrix {key!r} is not in {release}")
        return motif
    with warnings.catch_warnings():
        # pyjaspar warns on an empty result; the error below says it better
        warnings.simplefilter("ignore")
        found = [m for m in db.fetch_motifs_by_name(key) if m.name.upper() == key.upper()]
    if not found:
        raise OmigenInputError(f"no JASPAR motif named {key!r} in {release}; give a name or a matrix id "
                               f"like 'MA0108.3'")
    # the newest version of the lowest base id: deterministic whatever order the database returns
    return sorted(found, key=lambda m: (m.base_id, -int(m.version)))[0]


def load_motifs(motifs: "list[str] | dict[str, str] | None" = None, release: str = RELEASE) -> list[Motif]:
    """JASPAR motifs by name or matrix id (``None``: :data:`DEFAULT_MOTIFS`), as scan-ready PSSMs."""
    if motifs is None:
        motifs = DEFAULT_MOTIFS
    items = list(motifs.items()) if isinstance(motifs, dict) else [(str(m), str(m)) for m in motifs]
    if not items:
        raise OmigenInputError("the motif list is empty")
    out = []
    for name, key in items:
        m = _fetch(key, release)
        counts = np.array([m.counts[b] for b in "ACGT"], dtype=np.float64)
        label = name if isinstance(motifs, dict) or not _MATRIX_ID.match(name) else m.name
        out.append(Motif(label, m.matrix_id, pssm_from_counts(counts)))
    return out


def reverse_complement(pssm: np.ndarray) -> np.ndarray:
    """The PSSM of the opposite strand: positions reversed, A<->T and C<->G swapped."""
    return pssm[::-1, ::-1].copy()


def window_scores(codes: np.ndarray, pssm: np.ndarray) -> np.ndarray:
    """Log-odds score of every window (n x (L - width + 1)) of code sequences under ``pssm``."""
    codes = np.asarray(codes)
    width = pssm.shape[0]
    n, length = codes.shape
    if length < width:
        return np.zeros((n, 0))
    windows = length - width + 1
    score = np.zeros((n, windows), dtype=np.float64)
    for j in range(width):  # one gather per motif column, over all sequences and windows at once
        score += pssm[j][codes[:, j:j + windows]]
    return score


def hit_threshold(pssm: np.ndarray, threshold: float = THRESHOLD) -> float:
    """Absolute score at relative ``threshold`` of the PSSM's range (min..max over all words)."""
    if not 0.0 <= threshold <= 1.0:
        raise OmigenInputError(f"relative motif threshold must lie in [0, 1], got {threshold}")
    lo, hi = pssm.min(axis=1).sum(), pssm.max(axis=1).sum()
    return float(lo + threshold * (hi - lo))


def scan(codes: np.ndarray, motif: Motif, threshold: float = THRESHOLD) -> np.ndarray:
    """Boolean hits (n x windows): the window scores at least ``threshold`` on either strand."""
    cut = hit_threshold(motif.pssm, threshold) - 1e-9
    return (window_scores(codes, motif.pssm) >= cut) | (window_scores(codes, reverse_complement(motif.pssm)) >= cut)


def _count_js(a: np.ndarray, b: np.ndarray) -> float:
    from omigen_dna_latent.seqmetrics import js_divergence

    top = int(max(a.max(initial=0), b.max(initial=0))) + 1
    return js_divergence(np.bincount(a, minlength=top), np.bincount(b, minlength=top))


def positional_profile(hits: np.ndarray, bin_width: int = POSITION_BIN) -> np.ndarray:
    """Hit frequency per position (fraction of sequences), summed in bins of ``bin_width`` positions."""
    freq = hits.mean(axis=0)
    n_bins = -(-freq.size // bin_width)
    padded = np.zeros(n_bins * bin_width)
    padded[:freq.size] = freq
    return padded.reshape(n_bins, bin_width).sum(axis=1)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return 1.0 if np.allclose(x, y) else 0.0
    return float(np.corrcoef(x, y)[0, 1])


@dataclass(frozen=True)
class MotifHits:
    """What the comparisons need of one set's scan for one motif: hits per sequence and the binned profile."""

    counts: np.ndarray
    profile: np.ndarray


def motif_hits(codes: np.ndarray, motifs: list[Motif] | None = None, threshold: float = THRESHOLD,
               bin_width: int = POSITION_BIN) -> dict[str, MotifHits]:
    """Per motif name, the :class:`MotifHits` of one set of code sequences (``motifs``: the defaults)."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] == 0:
        raise OmigenInputError("motif statistics need real and synthetic sequences")
    out = {}
    for motif in motifs if motifs is not None else load_motifs():
        hits = scan(codes, motif, threshold)
        out[motif.name] = MotifHits(hits.sum(axis=1), positional_profile(hits, bin_width))
    return out


def compare_motif_hits(real: dict[str, MotifHits], synthetic: dict[str, MotifHits]) -> dict[str, dict[str, float]]:
    """Per motif name: ``count_js``, ``position_r``, ``real_rate``, ``synthetic_rate`` of two :func:`motif_hits`."""
    if set(real) != set(synthetic):
        raise OmigenInputError("real and synthetic motif hits cover different motifs")
    out = {}
    for name, r in real.items():
        s = synthetic[name]
        out[name] = {
            "count_js": _count_js(r.counts, s.counts),
            "position_r": _pearson(r.profile, s.profile),
            "real_rate": float(r.counts.mean()),
            "synthetic_rate": float(s.counts.mean()),
        }
    return out


def rates_by_label(hits: dict[str, MotifHits], labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Per motif name, per label (sorted, as strings): mean hits per sequence of that label, from one
    set's :func:`motif_hits` and its labels; key ``"all"`` holds the whole set's rate."""
    labels = np.asarray(labels).astype(str)
    names, index = np.unique(labels, return_inverse=True)
    sizes = np.bincount(index, minlength=names.size)
    out = {}
    for name, h in hits.items():
        if h.counts.shape != labels.shape:
            raise OmigenInputError("label rates need one label per sequence")
        per = np.bincount(index, weights=h.counts, minlength=names.size) / sizes
        out[name] = {**{str(k): float(v) for k, v in zip(names, per)}, "all": float(h.counts.mean())}
    return out


def label_rates(codes: np.ndarray, labels: np.ndarray, motifs: list[Motif] | None = None,
                threshold: float = THRESHOLD) -> dict[str, dict[str, float]]:
    """:func:`rates_by_label` of code sequences ``codes`` scanned for ``motifs`` (the defaults)."""
    return rates_by_label(motif_hits(codes, motifs, threshold), labels)


def label_enrichment_r(real: dict[str, dict[str, float]], synthetic: dict[str, dict[str, float]]) -> float:
    """Pearson r of per-label log2 enrichments (module docstring) over the (motif, label) pairs where
    the motif occurs in both sets; 0 when fewer than two pairs qualify."""
    pairs = []
    for name, r in real.items():
        s = synthetic.get(name, {})
        if r["all"] <= 0 or s.get("all", 0) <= 0:
            continue
        for label in r:
            if label != "all" and label in s and r[label] > 0 and s[label] > 0:
                pairs.append((np.log2(r[label] / r["all"]), np.log2(s[label] / s["all"])))
    if len(pairs) < 2:
        return 0.0
    x, y = np.asarray(pairs).T
    return _pearson(x, y)


def motif_statistics(real: np.ndarray, synthetic: np.ndarray, motifs: list[Motif] | None = None,
                     threshold: float = THRESHOLD, bin_width: int = POSITION_BIN) -> dict[str, dict[str, float]]:
    """Per motif name: ``count_js``, ``position_r``, ``real_rate``, ``synthetic_rate`` (module docstring).

    ``real`` and ``synthetic`` are code matrices of one length; ``motifs`` defaults to
    :func:`load_motifs` of the default list.
    """
    real, synthetic = np.asarray(real), np.asarray(synthetic)
    if real.shape[1:] != synthetic.shape[1:]:
        raise OmigenInputError(f"real sequences have length {real.shape[1]} but synthetic ones {synthetic.shape[1]}")
    if real.shape[0] == 0 or synthetic.shape[0] == 0:
        raise OmigenInputError("motif statistics need real and synthetic sequences")
    motifs = motifs if motifs is not None else load_motifs()
    return compare_motif_hits(motif_hits(real, motifs, threshold, bin_width),
                              motif_hits(synthetic, motifs, threshold, bin_width))
