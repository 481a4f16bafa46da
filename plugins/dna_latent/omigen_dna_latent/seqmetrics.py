"""Sequence statistics behind the DNA metrics: k-mer spectra, GC content, diversity, memorisation, detection.

Everything works on integer code matrices (n x L, A=0 C=1 G=2 T=3, see :func:`omigen_dna_latent.io.encode`)
and is vectorised over sequences and positions:

- k-mers are rolling base-4 numbers (``sum_j code[i + j] * 4^(k-1-j)``), counted with ``bincount``;
- identity to the nearest training sequence is a one-hot matrix product (matching bases at the
  same position, i.e. Hamming identity without shifts), computed block by block;
- the detection features (4-mer composition plus GC and CpG fraction per 20-bp bin) see both
  composition and position, which a k-mer spectrum alone does not;
- the word detector counts every 8-mer of a sequence (a sparse n x 4^8 matrix): whole TF sites and
  simple repeats, which need eight bases to agree, are what generators built from shorter contexts
  miss and what 4-mer features cannot see.

Divergences are Jensen–Shannon in bits (0 = identical distributions, 1 = disjoint support).
"""

from __future__ import annotations

import numpy as np

from omigen.errors import OmigenInputError

#: Width of the positional bins of the detection features.
BIN = 20
#: Word length and inverse L2 strength of the word detector (DHS benchmark: real train vs test 0.499).
WORD_K = 8
WORD_C = 0.03
#: Rows per block of the nearest-identity search (block x n_train scores in memory).
CHUNK = 1024
#: At most this many sequences of each set enter the nearest-identity search (seeded subsample).
MAX_QUERY = 2000


def _check_codes(codes: np.ndarray, what: str) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise OmigenInputError(f"{what} must be an n x L code matrix, got shape {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() > 3):
        raise OmigenInputError(f"{what} holds characters other than A, C, G, T")
    return codes.astype(np.int64, copy=False)


def kmer_index(codes: np.ndarray, k: int) -> np.ndarray:
    """Base-4 k-mer numbers (n x (L-k+1), int64) of every window of every sequence."""
    codes = _check_codes(codes, "sequences")
    n, length = codes.shape
    if not 1 <= k <= length:
        raise OmigenInputError(f"k-mer size {k} must lie between 1 and the sequence length {length}")
    width = length - k + 1
    index = np.zeros((n, width), dtype=np.int64)
    for j in range(k):  # k terms, each a whole-matrix operation
        index = index * 4 + codes[:, j:j + width]
    return index


def kmer_spectrum(codes: np.ndarray, k: int) -> np.ndarray:
    """Pooled k-mer counts over all sequences and positions (length 4^k, int64)."""
    return np.bincount(kmer_index(codes, k).ravel(), minlength=4 ** k)


def kmer_profiles(codes: np.ndarray, k: int) -> np.ndarray:
    """Per-sequence k-mer frequencies (n x 4^k, float32; each row sums to 1)."""
    index = kmer_index(codes, k)
    n, width = index.shape
    flat = (np.arange(n, dtype=np.int64)[:, None] * 4 ** k + index).ravel()
    counts = np.bincount(flat, minlength=n * 4 ** k).reshape(n, 4 ** k)
    return (counts / max(width, 1)).astype(np.float32)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (bits) between two count or probability vectors."""
    from scipy.special import rel_entr

    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise OmigenInputError(f"distributions of different sizes: {p.shape} and {q.shape}")
    if p.sum() <= 0 or q.sum() <= 0:
        raise OmigenInputError("cannot compare an empty distribution")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2.0
    value = 0.5 * rel_entr(p, m).sum() + 0.5 * rel_entr(q, m).sum()
    return float(max(value / np.log(2.0), 0.0))


def kmer_divergence(real: np.ndarray, synthetic: np.ndarray, ks=range(1, 7)) -> dict[int, float]:
    """JS divergence of pooled k-mer frequency vectors, real vs synthetic, for each ``k``."""
    return {int(k): js_divergence(kmer_spectrum(real, k), kmer_spectrum(synthetic, k)) for k in ks}


def gc_content(codes: np.ndarray) -> np.ndarray:
    """Fraction of G or C per sequence."""
    codes = _check_codes(codes, "sequences")
    return ((codes == 1) | (codes == 2)).mean(axis=1)


def gc_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Wasserstein-1 distance between the per-sequence GC-content distributions."""
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(gc_content(real), gc_content(synthetic)))


def fraction_unique(codes: np.ndarray) -> float:
    """Distinct sequences divided by the number of sequences (1.0 = no duplicates)."""
    codes = _check_codes(codes, "sequences")
    if codes.shape[0] == 0:
        raise OmigenInputError("cannot measure the diversity of no sequences")
    return float(np.unique(codes, axis=0).shape[0] / codes.shape[0])


def _flat_onehot(codes: np.ndarray) -> np.ndarray:
    n, length = codes.shape
    out = np.zeros((n, length * 4), dtype=np.float32)
    out[np.arange(n)[:, None], np.arange(length)[None, :] * 4 + codes] = 1.0
    return out


def nearest_identity(query: np.ndarray, reference: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """For each query sequence, the largest fraction of positions it shares with any reference sequence.

    Identity is position by position (Hamming, no shifts or indels); 1.0 means an exact copy.
    Computed as one-hot matrix products in blocks of ``chunk`` x ``chunk`` rows, so memory stays
    bounded; float32 sums of 0/1 stay exact far beyond any sequence length used here.
    """
    query = _check_codes(query, "query sequences")
    reference = _check_codes(reference, "reference sequences")
    if query.shape[1] != reference.shape[1]:
        raise OmigenInputError(f"sequences of length {query.shape[1]} cannot be compared with length "
                               f"{reference.shape[1]}")
    if reference.shape[0] == 0:
        raise OmigenInputError("no reference sequences to compare with")
    length = query.shape[1]
    best = np.zeros(query.shape[0], dtype=np.float32)
    for r0 in range(0, reference.shape[0], chunk):
        ref = _flat_onehot(reference[r0:r0 + chunk])
        for q0 in range(0, query.shape[0], chunk):
            matches = _flat_onehot(query[q0:q0 + chunk]) @ ref.T
            np.maximum(best[q0:q0 + chunk], matches.max(axis=1), out=best[q0:q0 + chunk])
    return best.astype(np.float64) / length


def exact_copies(query: np.ndarray, reference: np.ndarray) -> int:
    """How many query sequences occur verbatim in ``reference`` (by hashing whole rows)."""
    query = _check_codes(query, "query sequences")
    reference = _check_codes(reference, "reference sequences")
    if query.shape[1] != reference.shape[1]:
        return 0
    as_bytes = lambda m: np.ascontiguousarray(m.astype(np.uint8)).view(f"V{m.shape[1]}").ravel()  # noqa: E731
    return int(np.isin(as_bytes(query), as_bytes(reference)).sum())


def _pick(codes: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if codes.shape[0] <= limit:
        return codes
    return codes[np.sort(rng.choice(codes.shape[0], limit, replace=False))]


def test_memorisation(train: np.ndarray, test: np.ndarray, max_query: int = MAX_QUERY,
                      seed: int = 0) -> dict[str, float]:
    """The real test set's side of :func:`memorisation`: its nearest-training identities and exact copies.

    It depends on the test and training sets only, so an evaluation computes it once for all
    its rows. The ``max_query`` subsample has its own seeded stream (not shared with the
    synthetic set's), so it is the same whatever the synthetic set's size.
    """
    test_id = nearest_identity(_pick(test, max_query, np.random.default_rng([seed, 1])), train)
    return {
        "test_identity_median": float(np.median(test_id)),
        "test_identity_p95": float(np.quantile(test_id, 0.95)),
        "test_exact_copies": float(exact_copies(test, train)),
    }


def memorisation(synthetic: np.ndarray, train: np.ndarray, test: np.ndarray, max_query: int = MAX_QUERY,
                 seed: int = 0, test_part: "dict[str, float] | None" = None) -> dict[str, float]:
    """Identity to the nearest training sequence for synthetic and real test sequences, and exact copies.

    The identity distributions are summarised by their medians and 95th percentiles (on at most
    ``max_query`` sequences of each set, seeded); ``exact_copies`` counts every synthetic sequence
    found verbatim in the training set (all of them, not a subsample), ``test_exact_copies`` the
    same for real test sequences (duplicates in the real data itself). ``test_part`` is a
    previous :func:`test_memorisation` result for the same ``train``, ``test``, ``max_query`` and
    ``seed`` (computed here when omitted).
    """
    syn_id = nearest_identity(_pick(synthetic, max_query, np.random.default_rng(seed)), train)
    copies = exact_copies(synthetic, train)
    if test_part is None:
        test_part = test_memorisation(train, test, max_query, seed)
    return {
        "identity_median": float(np.median(syn_id)),
        "identity_p95": float(np.quantile(syn_id, 0.95)),
        "test_identity_median": test_part["test_identity_median"],
        "test_identity_p95": test_part["test_identity_p95"],
        "exact_copies": float(copies),
        "exact_copy_fraction": float(copies / max(synthetic.shape[0], 1)),
        "test_exact_copies": test_part["test_exact_copies"],
    }


def detection_features(codes: np.ndarray, k: int = 4, bin_width: int = BIN) -> np.ndarray:
    """4-mer composition plus GC and CpG fraction per ``bin_width``-bp bin (n x (4^k + 2 bins), float32).

    Sequences whose length is not a multiple of ``bin_width`` get ``max(1, L // bin_width)`` bins of
    (nearly) equal width.
    """
    codes = _check_codes(codes, "sequences")
    n, length = codes.shape
    if length < max(k, 2):
        raise OmigenInputError(f"sequences of length {length} are too short for detection features")
    n_bins = max(1, length // bin_width)
    pos = np.arange(length)
    assign = np.zeros((length, n_bins), dtype=np.float32)
    assign[pos, pos * n_bins // length] = 1.0
    gc = ((codes == 1) | (codes == 2)).astype(np.float32) @ assign / assign.sum(axis=0)
    cpg = np.zeros((n, length), dtype=np.float32)
    cpg[:, :-1] = (codes[:, :-1] == 1) & (codes[:, 1:] == 2)
    cpg = cpg @ assign / assign.sum(axis=0)
    return np.concatenate([kmer_profiles(codes, k), gc, cpg], axis=1)


def detection_auc(real: np.ndarray, synthetic: np.ndarray, seed: int = 0, max_per_set: int = 2000) -> float:
    """C2ST AUC of boosted trees telling ``synthetic`` from ``real`` on :func:`detection_features`.

    At most ``max_per_set`` sequences of each set are used (seeded subsample); 0.5 means
    indistinguishable.
    """
    from omigen.metrics.detection import c2st_auc

    rng = np.random.default_rng(seed)
    return c2st_auc(detection_features(_pick(real, max_per_set, rng)),
                    detection_features(_pick(synthetic, max_per_set, rng)), seed=seed)


def word_counts(codes: np.ndarray, k: int = WORD_K) -> "scipy.sparse.csr_matrix":
    """Sparse ``(n, 4**k)`` counts of every k-mer of each sequence (scipy CSR, float32)."""
    import scipy.sparse as sp

    index = kmer_index(codes, k)
    n, width = index.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), width)
    return sp.csr_matrix((np.ones(index.size, dtype=np.float32), (rows, index.ravel())), shape=(n, 4 ** k))


def word_detection_auc(real: np.ndarray, synthetic: np.ndarray, k: int = WORD_K, seed: int = 0,
                       max_per_set: int = 2000, folds: int = 5) -> float:
    """Cross-validated AUC of an L2 logistic regression telling ``synthetic`` from ``real`` by their k-mer
    counts (:func:`word_counts`): equal-sized seeded subsamples of at most ``max_per_set`` each, out-of-fold
    probabilities over ``folds`` stratified folds. 0.5 means indistinguishable."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    real, synthetic = _check_codes(real, "real sequences"), _check_codes(synthetic, "synthetic sequences")
    if folds < 2 or max_per_set < 2:
        raise OmigenInputError(f"word detection needs folds >= 2 and max_per_set >= 2, got {folds} and {max_per_set}")
    m = min(real.shape[0], synthetic.shape[0], max_per_set)
    if m < 2:
        raise OmigenInputError("word detection needs at least 2 real and 2 synthetic sequences")
    if real.shape[1] < 1:
        raise OmigenInputError("word detection needs sequences of at least 1 bp")
    if real.shape[1] != synthetic.shape[1]:
        raise OmigenInputError(f"real ({real.shape[1]} bp) and synthetic ({synthetic.shape[1]} bp) lengths differ")
    rng = np.random.default_rng(seed)
    pick = [_pick(x, m, rng) for x in (real, synthetic)]
    data = sp.vstack([word_counts(x, min(k, real.shape[1])) for x in pick]).tocsr()
    target = np.repeat([0, 1], [m, m])
    cv = StratifiedKFold(n_splits=min(folds, m), shuffle=True, random_state=seed)
    proba = cross_val_predict(LogisticRegression(C=WORD_C, max_iter=1000), data, target, cv=cv,
                              method="predict_proba")[:, 1]
    return float(roc_auc_score(target, proba))
