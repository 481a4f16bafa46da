"""The DNA metrics registered for the sequence modality (specs only; the numeric work is imported lazily).

========================  ========================================================================
metric                    outputs
========================  ========================================================================
``fred``                  ``fred``: Fréchet distance of reference-embedder embeddings (:mod:`.fred`)
``motifs``                per default JASPAR motif ``<tf>_count_js`` and ``<tf>_position_r``, and
                          their mean / minimum over the motifs that occur in the real data
                          (a motif absent from both sets has ``position_r`` 1, see :mod:`.motifs`)
``motif-enrichment``      ``label_enrichment_r``: per (motif, label) log2 ratio of the label's hits per
                          sequence to the set's, correlated real vs synthetic (needs labels)
``kmer``                  ``js_k1`` .. ``js_k6``: JS divergence (bits) of k-mer spectra; ``js_mean``
``gc``                    ``gc_wasserstein`` of per-sequence GC content; both mean GC values
``diversity``             ``fraction_unique`` of synthetic sequences (and of the real ones, info)
``memorisation``          identity to the nearest training sequence, synthetic vs real test;
                          ``exact_copies`` of training sequences
``detection``             ``auc`` of boosted trees on 4-mer + per-20-bp GC/CpG features (0.5 ideal)
``word-detection``        ``auc`` of a logistic regression on 8-mer counts (0.5 ideal): whole sites and
                          simple repeats, which 4-mer features do not see
``cell-type-fidelity``    accuracy of a CNN trained on real training sequences: on synthetic (by
                          intended label) and on real test; ``accuracy_gap`` (0 ideal)
========================  ========================================================================

An evaluation scores the same real (test) and training sets against every row (model, each
baseline, the real reference), so what depends on them alone is computed once and memoised in
this process: the real set's FReD embeddings, motif hits, k-mer spectra and uniqueness, the test
set's nearest-training identities and the cell-type classifier's test accuracy. The synthetic set's
motif hits are memoised too, as two metrics read them. Entries are keyed
by a SHA-1 of the sequences (and labels, seed and settings), so a changed set is never served a
stale value; at most :data:`MEMO_ENTRIES` are kept (oldest dropped first).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable

from omigen.errors import OmigenInputError
from omigen.registry import MetricSpec

if TYPE_CHECKING:
    import numpy as np

    from omigen.data import SequenceData

#: Motifs scored by the registered ``motifs`` metric (keys are the output prefixes, lower-cased).
MOTIF_NAMES = ("TBP", "NFYA", "SP1", "GATA1", "HNF4A", "CTCF")
KS = (1, 2, 3, 4, 5, 6)
#: At most this many sequences per set enter the motif scan (seeded subsample).
MAX_MOTIF_SEQS = 20000
#: Statistics kept in memory between the rows of an evaluation (and across evaluations).
MEMO_ENTRIES = 32

_MEMO: "OrderedDict[tuple, Any]" = OrderedDict()


def digest(*parts: Any) -> str:
    """SHA-1 of code matrices (their shape and bytes), label arrays and plain values, in order."""
    import numpy as np

    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray) and part.dtype.kind in "iub":
            h.update(repr(part.shape).encode("ascii"))
            h.update(np.ascontiguousarray(part.astype(np.int8)).tobytes())
        elif isinstance(part, np.ndarray):
            h.update("\x00".join(map(str, part.tolist())).encode("utf-8"))
        else:
            h.update(repr(part).encode("utf-8"))
        h.update(b"\x01")
    return h.hexdigest()


def memoised(kind: str, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per ``(kind, key)``; later calls return the stored value (LRU, :data:`MEMO_ENTRIES`).

    Callers share the stored value, so they must not change it; an array value is made read-only
    to enforce that.
    """
    import numpy as np

    entry = (kind, key)
    if entry in _MEMO:
        _MEMO.move_to_end(entry)
        return _MEMO[entry]
    value = compute()
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    _MEMO[entry] = value
    while len(_MEMO) > MEMO_ENTRIES:
        _MEMO.popitem(last=False)
    return value


def clear_memo() -> None:
    """Forget every memoised real-data statistic (the next evaluation recomputes them)."""
    _MEMO.clear()


def _codes(data: "SequenceData", what: str) -> "np.ndarray":
    from omigen_dna_latent.io import codes_of

    if getattr(data, "modality", None) != "sequence":
        raise OmigenInputError(f"{what} data is not DNA sequences")
    codes = codes_of(data)
    if codes.size and (codes < 0).any():
        raise OmigenInputError(f"{what} sequences contain characters other than A, C, G, T")
    return codes


def _pair(real: "SequenceData", synthetic: "SequenceData") -> tuple["np.ndarray", "np.ndarray"]:
    X, Y = _codes(real, "real"), _codes(synthetic, "synthetic")
    if X.shape[0] == 0 or Y.shape[0] == 0:
        raise OmigenInputError("need at least one real and one synthetic sequence")
    if X.shape[1] != Y.shape[1]:
        raise OmigenInputError(f"real sequences have length {X.shape[1]} but synthetic ones {Y.shape[1]}")
    return X, Y


def _need_train(name: str, train: "SequenceData | None") -> "SequenceData":
    if train is None:
        raise OmigenInputError(f"metric {name!r} needs the model's training data")
    return train


def compute_fred(real, synthetic, train=None, seed: int = 0) -> dict[str, float]:
    """FReD between real and synthetic sequences (shipped reference embedder)."""
    from omigen.metrics.frechet import frechet_distance
    from omigen_dna_latent.fred import embed, load_embedder, read_card

    X, Y = _pair(real, synthetic)
    model = load_embedder()
    real_emb = memoised("fred-embedding", digest(X, read_card().get("sha256")), lambda: embed(X, model))
    return {"fred": frechet_distance(real_emb, embed(Y, model), seed=seed)}


def _rows(n: int, limit: int, seed: int) -> "np.ndarray":
    """All row indices when ``n <= limit``, else ``limit`` of them drawn with ``seed``, sorted."""
    import numpy as np

    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _subsample(codes, limit: int, seed: int):
    return codes if codes.shape[0] <= limit else codes[_rows(codes.shape[0], limit, seed)]


def _motif_hits(codes: "np.ndarray", seed: int) -> "dict":
    """The default motifs' :class:`~.motifs.MotifHits` in a seeded subsample of ``codes`` (at most
    :data:`MAX_MOTIF_SEQS`), memoised: ``motifs`` and ``motif-enrichment`` both read them, for the real
    set of every row and for the row's synthetic set, so each set is scanned once."""
    from omigen_dna_latent.motifs import DEFAULT_MOTIFS, POSITION_BIN, THRESHOLD, load_motifs, motif_hits

    motifs = load_motifs({name: DEFAULT_MOTIFS[name] for name in MOTIF_NAMES})
    subset = _subsample(codes, MAX_MOTIF_SEQS, seed)
    key = digest(subset, [(m.name, m.matrix_id) for m in motifs], THRESHOLD, POSITION_BIN)
    return memoised("motif-hits", key, lambda: motif_hits(subset, motifs))


def compute_motifs(real, synthetic, train=None, seed: int = 0) -> dict[str, float]:
    """Per-motif count divergence and positional correlation, and their summaries."""
    import numpy as np

    from omigen_dna_latent.motifs import compare_motif_hits

    X, Y = _pair(real, synthetic)
    stats = compare_motif_hits(_motif_hits(X, seed), _motif_hits(Y, seed))
    out: dict[str, float] = {}
    for name in MOTIF_NAMES:
        out[f"{name.lower()}_count_js"] = stats[name]["count_js"]
        out[f"{name.lower()}_position_r"] = stats[name]["position_r"]
    # summaries cover the motifs that occur in the real data (all of them when none does)
    present = [s for s in stats.values() if s["real_rate"] > 0] or list(stats.values())
    js = [s["count_js"] for s in present]
    rs = [s["position_r"] for s in present]
    out["count_js_mean"] = float(np.mean(js))
    out["position_r_mean"] = float(np.mean(rs))
    out["position_r_min"] = float(np.min(rs))
    return out


def compute_motif_enrichment(real, synthetic, train=None, seed: int = 0) -> dict[str, float]:
    """Correlation of per-label motif enrichments, real vs synthetic (:func:`.motifs.label_enrichment_r`)."""
    import numpy as np

    from omigen_dna_latent.motifs import label_enrichment_r, rates_by_label

    X, Y = _pair(real, synthetic)
    if real.labels is None or synthetic.labels is None:
        raise OmigenInputError("metric 'motif-enrichment' needs labelled real and synthetic sequences")
    x_labels = np.asarray(real.labels)[_rows(len(X), MAX_MOTIF_SEQS, seed)]
    y_labels = np.asarray(synthetic.labels)[_rows(len(Y), MAX_MOTIF_SEQS, seed)]
    return {"label_enrichment_r": label_enrichment_r(rates_by_label(_motif_hits(X, seed), x_labels),
                                                     rates_by_label(_motif_hits(Y, seed), y_labels))}


def compute_kmer(real, synthetic, train=None, seed: int = 0) -> dict[str, float]:
    """JS divergence of k-mer spectra for k = 1..6 (k longer than the sequences: NaN) and their mean."""
    import numpy as np

    from omigen_dna_latent.seqmetrics import js_divergence, kmer_spectrum

    X, Y = _pair(real, synthetic)
    ks = [k for k in KS if k <= X.shape[1]]
    spectra = memoised("kmer-spectra", digest(X, ks), lambda: {k: kmer_spectrum(X, k) for k in ks})
    div = {k: js_divergence(spectra[k], kmer_spectrum(Y, k)) for k in ks}
    out = {f"js_k{k}": div.get(k, math.nan) for k in KS}
    out["js_mean"] = float(np.mean(list(div.values())))
    return out


def compute_gc(real, synthetic, train=None, seed: int = 0) -> dict[str, float]:
    """Wasserstein distance between per-sequence GC contents, and the two mean GC fractions."""
    from omigen_dna_latent.seqmetrics import gc_content, gc_distance

    X, Y = _pair(real, synthetic)
    return {"gc_wasserstein": gc_distance(X, Y), "gc_mean_real": float(gc_content(X).mean()),
            "gc_mean_synthetic": float(gc_content(Y).mean())}


def compute_diversity(real, synthetic, train=None, seed: int = 0) -> dict[str, float]:
    """Fraction of distinct sequences among the synthetic ones (and among the real ones, for scale)."""
    from omigen_dna_latent.seqmetrics import fraction_unique

    X, Y = _pair(real, synthetic)
    real_unique = memoised("fraction-unique", digest(X), lambda: fraction_unique(X))
    return {"fraction_unique": fraction_unique(Y), "real_fraction_unique": real_unique}


def compute_memorisation(real, synthetic, train=None, seed: int = 0) -> dict[str, float]:
    """Nearest-training-sequence identity of synthetic vs real test sequences; exact training copies."""
    from omigen_dna_latent.seqmetrics import MAX_QUERY, memorisation, test_memorisation

    X, Y = _pair(real, synthetic)
    T = _codes(_need_train("memorisation", train), "training")
    if T.shape[1] != X.shape[1]:
        raise OmigenInputError(f"training sequences have length {T.shape[1]} but test ones {X.shape[1]}")
    reference = memoised("test-memorisation", digest(X, T, seed, MAX_QUERY),
                         lambda: test_memorisation(T, X, seed=seed))
    out = memorisation(Y, T, X, seed=seed, test_part=reference)
    out["identity_gap"] = out["identity_median"] - out["test_identity_median"]
    return out


def compute_detection(real, synthetic, train=None, seed: int = 0) -> dict[str, float]:
    """C2ST AUC on order- and position-aware features (4-mer composition, GC/CpG per 20-bp bin)."""
    from omigen_dna_latent.seqmetrics import detection_auc

    X, Y = _pair(real, synthetic)
    if X.shape[0] < 2 or Y.shape[0] < 2:
        raise OmigenInputError("metric 'detection' needs at least 2 real and 2 synthetic sequences")
    return {"auc": detection_auc(X, Y, seed=seed)}


def compute_word_detection(real, synthetic, train=None, seed: int = 0) -> dict[str, float]:
    """Cross-validated AUC of a logistic regression on each sequence's 8-mer counts (0.5 ideal)."""
    from omigen_dna_latent.seqmetrics import word_detection_auc

    X, Y = _pair(real, synthetic)
    return {"auc": word_detection_auc(X, Y, seed=seed)}


def compute_cell_type_fidelity(real, synthetic, train=None, seed: int = 0) -> dict[str, float]:
    """Accuracy of a CNN cell-type classifier (trained on real training data) on synthetic and real test."""
    from omigen_dna_latent.classifier import conditional_fidelity

    _pair(real, synthetic)
    return conditional_fidelity(real, synthetic, _need_train("cell-type-fidelity", train), seed=seed)


_MOTIF_OUTPUTS: dict = {}
for _name in MOTIF_NAMES:
    _MOTIF_OUTPUTS[f"{_name.lower()}_count_js"] = "lower"
    _MOTIF_OUTPUTS[f"{_name.lower()}_position_r"] = "higher"
_MOTIF_OUTPUTS.update({"count_js_mean": "lower", "position_r_mean": "higher", "position_r_min": "higher"})

_SEQ = ("sequence",)
METRICS: list[MetricSpec] = [
    MetricSpec("fred", _SEQ, {"fred": "lower"}, compute_fred,
               description="Fréchet distance of embeddings from the shipped reference DNA embedder (v1)"),
    MetricSpec("motifs", _SEQ, dict(_MOTIF_OUTPUTS), compute_motifs,
               description="JASPAR motif hits per sequence (JS divergence) and positional-frequency correlation"),
    MetricSpec("motif-enrichment", _SEQ, {"label_enrichment_r": "higher"}, compute_motif_enrichment,
               needs_labels=True,
               description="correlation of per-label motif enrichments (e.g. HNF4A in HepG2), real vs synthetic"),
    MetricSpec("kmer", _SEQ, {**{f"js_k{k}": "lower" for k in KS}, "js_mean": "lower"}, compute_kmer,
               description="Jensen-Shannon divergence of k-mer spectra, k = 1..6"),
    MetricSpec("gc", _SEQ, {"gc_wasserstein": "lower", "gc_mean_real": "info", "gc_mean_synthetic": "info"},
               compute_gc, description="Wasserstein distance between per-sequence GC-content distributions"),
    MetricSpec("diversity", _SEQ, {"fraction_unique": "higher", "real_fraction_unique": "info"}, compute_diversity,
               description="fraction of distinct synthetic sequences"),
    MetricSpec("memorisation", _SEQ,
               {"identity_median": "info", "identity_p95": "info", "test_identity_median": "info",
                "test_identity_p95": "info", "identity_gap": "lower", "exact_copies": "lower",
                "exact_copy_fraction": "lower", "test_exact_copies": "info"},
               compute_memorisation, needs_train=True,
               description="identity to the nearest training sequence (synthetic vs real test), exact copies"),
    MetricSpec("detection", _SEQ, {"auc": 0.5}, compute_detection,
               description="C2ST AUC of boosted trees on 4-mer composition plus GC/CpG per 20-bp bin"),
    MetricSpec("word-detection", _SEQ, {"auc": 0.5}, compute_word_detection,
               description="AUC of a logistic regression on 8-mer counts: whole sites and repeats (0.5 ideal)"),
    MetricSpec("cell-type-fidelity", _SEQ,
               {"synthetic_accuracy": "higher", "test_accuracy": "info", "accuracy_gap": 0.0},
               compute_cell_type_fidelity, needs_train=True, needs_labels=True,
               description="CNN cell-type classifier trained on real data: accuracy on synthetic vs real test"),
]
