"""Reading and writing DNA sequences: FASTA and TSV/CSV tables into :class:`omigen.data.SequenceData`.

Rules every reader applies, in this order:

1. **Case**: bases are upper-cased (soft-masked lower case is ordinary sequence).
2. **Characters**: ``A C G T`` pass. The other IUPAC codes (``N R Y S W K M B D H V``) follow the
   ``ambiguous`` policy: ``"error"`` (default) rejects the file naming the first such record and
   position; ``"mask"`` replaces each ambiguous base by a base it stands for, drawn uniformly and
   seeded (``N`` by any of ``ACGT``, ``R`` by ``A`` or ``G``, ...), so the data stays over ``ACGT``;
   ``"drop"`` leaves out every record holding one. Anything else (gaps, digits, ``U``, ``*``) is
   always an error naming the record.
3. **Length**: ``length=None`` requires one common length (else an error naming the first record
   that differs). ``length=<int>`` fixes it and ``pad_crop`` says what happens to the others:
   ``"error"`` rejects them, ``"crop"`` keeps the centre ``length`` bases of longer records (shorter
   ones are still an error), ``"pad"`` crops longer records the same way and pads shorter ones on
   both sides (centred) with seeded uniform random bases.
4. **Ids** must be unique and free of whitespace.

FASTA labels come from the header, with this rule: a ``label=<value>`` token anywhere after the
id (``>seq1 label=K562``) wins; otherwise an id of the form ``<id>|<label>`` (``>seq1|K562``) is
split at its last ``|``. Either every record has a label or none has. ``label_table`` instead
joins labels from a side TSV/CSV by id (its ``id`` and ``label`` columns, else its first two
columns); FASTA records missing from the table are an error listing them, extra table rows are
ignored.

Tables have a sequence column, an optional label column and an optional id column
(``sequence_col``, ``label_col``, ``id_col``; by default ``sequence``, the first of ``label`` /
``cell_type`` present, the first of ``id`` / ``dhs_id`` present, else row numbers). ``split``
keeps only rows whose ``split_col`` (default ``split``) is one of the given values, e.g. the DHS
file's ``training`` / ``validation`` / ``test`` chromosome split.
"""

from __future__ import annotations

import gzip
import io as _io
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from omigen.errors import OmigenInputError
from omigen.registry import DatasetSpec

if TYPE_CHECKING:
    from omigen.data import SequenceData

ALPHABET = "ACGT"
#: IUPAC ambiguity codes and the bases each stands for.
IUPAC = {"N": "ACGT", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
         "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG"}
AMBIGUOUS_POLICIES = ("error", "mask", "drop")
PAD_CROP_POLICIES = ("error", "crop", "pad")
FASTA_SUFFIXES = (".fa", ".fasta", ".fa.gz", ".fasta.gz")
TABLE_SUFFIXES = (".tsv", ".tsv.gz", ".csv", ".csv.gz")
#: The bundled demo table (a subset of the human DHS 200-bp set, shipped with the plugin).
BUNDLED = Path(__file__).resolve().parent / "data" / "dhs_demo.tsv.gz"

_LUT = np.full(256, -1, dtype=np.int8)
for _i, _b in enumerate(ALPHABET):
    _LUT[ord(_b)] = _i
_LETTERS = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)


# --------------------------------------------------------------------------- encoding

def encode(sequences: Iterable[str]) -> np.ndarray:
    """Integer codes (n x L, int8) of equal-length strings: A=0, C=1, G=2, T=3, anything else -1."""
    seqs = list(sequences)
    if not seqs:
        return np.zeros((0, 0), dtype=np.int8)
    lengths = {len(s) for s in seqs}
    if len(lengths) != 1:
        raise OmigenInputError(f"sequences have different lengths ({', '.join(map(str, sorted(lengths)[:5]))})")
    raw = np.frombuffer("".join(seqs).upper().encode("ascii", "replace"), dtype=np.uint8)
    return _LUT[raw].reshape(len(seqs), -1)


def codes_of(data: "SequenceData | Sequence[str] | np.ndarray") -> np.ndarray:
    """Integer codes (n x L, int8) of a SequenceData, a list of strings or an existing code matrix."""
    if hasattr(data, "sequences"):
        return encode(data.sequences)
    arr = np.asarray(data)
    if arr.dtype.kind in "iu" and arr.ndim == 2:
        return arr.astype(np.int8)
    return encode([str(s) for s in np.atleast_1d(arr)])


def strings(codes: np.ndarray) -> list[str]:
    """Strings of a code matrix (n x L with values 0..3)."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise OmigenInputError(f"sequence codes must be a 2-D matrix, got shape {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() > 3):
        raise OmigenInputError("sequence codes must lie in 0..3 (A, C, G, T)")
    if codes.shape[0] == 0:
        return []
    if codes.shape[1] == 0:
        return [""] * codes.shape[0]
    letters = np.ascontiguousarray(_LETTERS[codes.astype(np.intp)])
    return np.frombuffer(letters.tobytes(), dtype=f"S{codes.shape[1]}").astype(str).tolist()


def one_hot(data: "SequenceData | Sequence[str] | np.ndarray") -> np.ndarray:
    """One-hot encoding (n x L x 4, float32, channels A, C, G, T) of sequences over ACGT."""
    codes = codes_of(data)
    if (codes < 0).any():
        i, j = np.argwhere(codes < 0)[0]
        raise OmigenInputError(f"sequence {int(i) + 1} has a character other than A, C, G, T at position {int(j) + 1}")
    out = np.zeros(codes.shape + (4,), dtype=np.float32)
    np.put_along_axis(out, codes[..., None].astype(np.intp), 1.0, axis=-1)
    return out


def decode(onehot_or_logits) -> list[str]:
    """Sequences from one-hot vectors, probabilities or logits (n x L x 4, numpy or torch): argmax per position."""
    if hasattr(onehot_or_logits, "detach"):
        onehot_or_logits = onehot_or_logits.detach().cpu().float().numpy()
    arr = np.asarray(onehot_or_logits)
    if arr.ndim != 3 or arr.shape[-1] != 4:
        raise OmigenInputError(f"expected an n x L x 4 array of base scores, got shape {arr.shape}")
    return strings(arr.argmax(axis=-1))


# --------------------------------------------------------------------------- policies

def _check_policy(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise OmigenInputError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _clean(ids: list[str], seqs: list[str], labels: list[str] | None, ambiguous: str, length: int | None,
           pad_crop: str, seed: int, source: str) -> "SequenceData":
    """Apply the case, character, length and id rules (module docstring) and build the container."""
    from omigen.data import SequenceData

    _check_policy("ambiguous", ambiguous, AMBIGUOUS_POLICIES)
    _check_policy("pad_crop", pad_crop, PAD_CROP_POLICIES)
    if length is not None and (isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1):
        raise OmigenInputError(f"length must be a positive whole number of bases, got {length!r}")
    if not seqs:
        raise OmigenInputError(f"{source} holds no sequences")
    rng = np.random.default_rng(seed)
    seqs = [s.upper() for s in seqs]
    bad_ws = [i for i in ids if not i or any(c.isspace() for c in i)]
    if bad_ws:
        raise OmigenInputError(f"{source}: sequence id {bad_ws[0]!r} is empty or contains whitespace")
    keep = np.ones(len(seqs), dtype=bool)
    allowed = set(ALPHABET) | set(IUPAC)
    for k, s in enumerate(seqs):
        if not s:
            raise OmigenInputError(f"{source}: record {ids[k]!r} has an empty sequence")
        extra = set(s) - set(ALPHABET)
        if not extra:
            continue
        bad = extra - allowed
        if bad:
            j = min(s.index(c) for c in bad)
            raise OmigenInputError(f"{source}: record {ids[k]!r} has {s[j]!r} at position {j + 1}; "
                                   f"only A, C, G, T and IUPAC codes are allowed")
        if ambiguous == "error":
            j = min(s.index(c) for c in extra)
            raise OmigenInputError(f"{source}: record {ids[k]!r} has ambiguous base {s[j]!r} at position {j + 1} "
                                   f"(ambiguous='mask' or 'drop' accepts it)")
        if ambiguous == "drop":
            keep[k] = False
            continue
        chars = np.frombuffer(s.encode("ascii"), dtype="S1").astype(str)
        for code in extra:
            where = np.flatnonzero(chars == code)
            chars[where] = np.asarray(list(IUPAC[code]))[rng.integers(0, len(IUPAC[code]), where.size)]
        seqs[k] = "".join(chars.tolist())
    if not keep.all():
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            raise OmigenInputError(f"{source}: every record holds an ambiguous base; ambiguous='drop' left none")
        ids = [ids[i] for i in idx]
        seqs = [seqs[i] for i in idx]
        labels = None if labels is None else [labels[i] for i in idx]
    seqs = _fit_length(ids, seqs, length, pad_crop, rng, source)
    data = SequenceData(sequences=np.asarray(seqs, dtype=object), samples=np.asarray(ids, dtype=object),
                        labels=None if labels is None else np.asarray(labels, dtype=object))
    try:
        return data.validate()
    except OmigenInputError as exc:
        raise OmigenInputError(f"{source}: {exc}") from None


def _fit_length(ids: list[str], seqs: list[str], length: int | None, pad_crop: str,
                rng: np.random.Generator, source: str) -> list[str]:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    if length is None:
        off = np.flatnonzero(lengths != lengths[0])
        if off.size:
            i = int(off[0])
            raise OmigenInputError(f"{source}: record {ids[i]!r} has length {lengths[i]} but {ids[0]!r} has "
                                   f"{lengths[0]}; all sequences must share a length (set length= and pad_crop=)")
        return seqs
    out = list(seqs)
    for i in np.flatnonzero(lengths != length):
        n = int(lengths[i])
        if pad_crop == "error" or (n < length and pad_crop == "crop"):
            raise OmigenInputError(f"{source}: record {ids[i]!r} has length {n}, expected {length} "
                                   f"(pad_crop={pad_crop!r})")
        if n > length:
            start = (n - length) // 2
            out[i] = out[i][start:start + length]
        else:
            fill = strings(rng.integers(0, 4, size=(1, length - n)))[0]
            left = (length - n) // 2
            out[i] = fill[:left] + out[i] + fill[left:]
    return out


# --------------------------------------------------------------------------- files

def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return _io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _require(path: "str | Path", what: str) -> Path:
    from omigen.io import require_file

    return require_file(path, what)


def _parse_header(title: str) -> tuple[str, str | None]:
    """``(id, label or None)`` from a FASTA header line (without ``>``), by the module's rule."""
    parts = title.split()
    if not parts:
        return "", None
    rid = parts[0]
    for tok in parts[1:]:
        if tok.startswith("label="):
            return rid, tok[len("label="):]
    if "|" in rid:
        head, _, label = rid.rpartition("|")
        return head, label or None
    return rid, None


def read_fasta(path: "str | Path", *, label_table: "str | Path | None" = None, ambiguous: str = "error",
               length: int | None = None, pad_crop: str = "error", seed: int = 0) -> "SequenceData":
    """Read a FASTA file (optionally gzipped) into SequenceData; labels from headers or ``label_table``.

    See the module docstring for the header rule and the ``ambiguous``/``length``/``pad_crop``
    policies. Raises :class:`OmigenInputError` naming the file and record for bad input.
    """
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    p = _require(path, "FASTA file")
    ids: list[str] = []
    seqs: list[str] = []
    labels: list[str | None] = []
    try:
        with _open_text(p) as fh:
            first = fh.read(1)
            if first and first != ">":
                raise OmigenInputError(f"{p.name} is not FASTA: it does not start with '>'")
            fh.seek(0)
            for title, seq in SimpleFastaParser(fh):
                rid, label = _parse_header(title)
                ids.append(rid)
                seqs.append(seq.replace(" ", ""))
                labels.append(label)
    except (UnicodeDecodeError, ValueError, OSError, EOFError) as exc:
        if isinstance(exc, OmigenInputError):
            raise
        raise OmigenInputError(f"cannot read {p.name} as FASTA: {type(exc).__name__}: {exc}") from None
    if not ids:
        raise OmigenInputError(f"{p.name} holds no FASTA records")
    have = [lab is not None for lab in labels]
    if label_table is not None:
        final = _join_labels(ids, label_table, p.name)
    elif all(have):
        final = [str(lab) for lab in labels]
    elif any(have):
        i = have.index(False)
        raise OmigenInputError(f"{p.name}: record {ids[i]!r} has no label but others do; label every record "
                               f"('>id label=X' or '>id|X') or none")
    else:
        final = None
    return _clean(ids, seqs, final, ambiguous, length, pad_crop, seed, p.name)


def _read_frame(p: Path):
    import pandas as pd

    name = p.name.lower()
    sep = "," if name.endswith((".csv", ".csv.gz")) else "\t"
    try:
        frame = pd.read_csv(p, sep=sep, dtype=str, keep_default_na=False, compression="infer")
    except pd.errors.EmptyDataError:
        raise OmigenInputError(f"{p.name} is empty") from None
    except (UnicodeDecodeError, ValueError, OSError, EOFError, pd.errors.ParserError) as exc:
        raise OmigenInputError(f"cannot read {p.name} as a table: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if frame.empty:
        raise OmigenInputError(f"{p.name} has no rows")
    return frame


def _join_labels(ids: list[str], table: "str | Path", source: str) -> list[str]:
    p = _require(table, "label table")
    frame = _read_frame(p)
    cols = list(frame.columns)
    id_col = "id" if "id" in cols else cols[0]
    label_col = "label" if "label" in cols else (cols[1] if len(cols) > 1 else None)
    if label_col is None or label_col == id_col:
        raise OmigenInputError(f"label table {p.name} needs an id column and a label column")
    keys = frame[id_col].astype(str).str.strip()
    dup = keys[keys.duplicated()]
    if len(dup):
        raise OmigenInputError(f"label table {p.name} lists id {dup.iloc[0]!r} more than once")
    mapping = dict(zip(keys, frame[label_col].astype(str).str.strip()))
    missing = [i for i in ids if i not in mapping]
    if missing:
        shown = ", ".join(map(repr, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise OmigenInputError(f"{len(missing)} record(s) of {source} have no label in {p.name}: {shown}")
    return [mapping[i] for i in ids]


def _pick(cols: list[str], given: str | None, defaults: tuple[str, ...], what: str, source: str) -> str | None:
    if given is not None:
        if given == "":
            return None
        if given not in cols:
            raise OmigenInputError(f"{source} has no {what} column {given!r} (columns: {', '.join(cols)})")
        return given
    return next((c for c in defaults if c in cols), None)


def read_table(path: "str | Path", *, sequence_col: str = "sequence", label_col: str | None = None,
               id_col: str | None = None, split: "str | Sequence[str] | None" = None, split_col: str = "split",
               ambiguous: str = "error", length: int | None = None, pad_crop: str = "error",
               seed: int = 0) -> "SequenceData":
    """Read a TSV/CSV table (optionally gzipped) of sequences into SequenceData.

    ``label_col``/``id_col``: ``None`` picks the defaults of the module docstring, ``""`` means
    none (unlabelled / row-number ids). ``split`` keeps rows whose ``split_col`` is one of the
    given values. The ``ambiguous``/``length``/``pad_crop`` policies are the module's.
    """
    p = _require(path, "sequence table")
    frame = _read_frame(p)
    cols = [str(c) for c in frame.columns]
    seq_col = _pick(cols, sequence_col, (), "sequence", p.name)
    if seq_col is None:
        raise OmigenInputError(f"{p.name}: sequence_col must name a column")
    if split is not None:
        if split_col not in cols:
            raise OmigenInputError(f"{p.name} has no split column {split_col!r} (columns: {', '.join(cols)})")
        wanted = [split] if isinstance(split, str) else list(split)
        frame = frame[frame[split_col].isin(wanted)]
        if frame.empty:
            known = ", ".join(sorted(set(_read_frame(p)[split_col])))
            raise OmigenInputError(f"{p.name}: no rows with {split_col} in {wanted} (values: {known})")
    lab = _pick(cols, label_col, ("label", "cell_type"), "label", p.name)
    rid = _pick(cols, id_col, ("id", "dhs_id"), "id", p.name)
    seqs = frame[seq_col].astype(str).str.strip().tolist()
    ids = (frame[rid].astype(str).str.strip().tolist() if rid is not None
           else [f"seq{i + 1}" for i in range(len(frame))])
    labels = None if lab is None else frame[lab].astype(str).str.strip().tolist()
    return _clean(ids, seqs, labels, ambiguous, length, pad_crop, seed, p.name)


def write_fasta(data: "SequenceData", path: "str | Path") -> Path:
    """Write ``data`` as FASTA (``>id label=<label>`` headers, one line per sequence), atomically; ``.gz`` compresses."""
    from omigen.io import atomic_path

    data.validate()
    for what, values in (("id", data.samples), ("label", data.labels if data.labels is not None else [])):
        bad = [v for v in values if not str(v) or any(c.isspace() for c in str(v))]
        if bad:
            raise OmigenInputError(f"cannot write FASTA: {what} {bad[0]!r} is empty or contains whitespace")
    if data.labels is None:
        heads = [f">{i}" for i in data.samples]
    else:
        heads = [f">{i} label={lab}" for i, lab in zip(data.samples, data.labels)]
    text = "".join(f"{h}\n{s}\n" for h, s in zip(heads, data.sequences)).encode("utf-8")
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.name.lower().endswith(".gz"):
            # mtime=0 keeps the bytes of a rewritten file identical.
            tmp.write_bytes(gzip.compress(text, mtime=0))
        else:
            tmp.write_bytes(text)
    return path


# --------------------------------------------------------------------------- dataset specs

def load_fasta(path: "str | Path | None" = None, **options) -> "SequenceData":
    """DatasetSpec loader: FASTA at ``path``; ``None`` reads the bundled demo table instead."""
    if path is None:
        return load_table(None, **options)
    return read_fasta(path, **options)


def load_table(path: "str | Path | None" = None, **options) -> "SequenceData":
    """DatasetSpec loader: a TSV/CSV at ``path``; ``None`` reads the bundled demo table (DHS subset)."""
    if path is None:
        if not BUNDLED.exists():
            raise OmigenInputError(f"the bundled demo data {BUNDLED.name} is not installed; pass a file")
        path = BUNDLED
    return read_table(path, **options)


def save_table(data: "SequenceData", path: "str | Path") -> Path:
    """Write ``data`` as a TSV/CSV with ``id``, ``label`` (when labelled) and ``sequence`` columns, atomically."""
    import pandas as pd

    from omigen.io import atomic_path

    data.validate()
    cols = {"id": data.samples}
    if data.labels is not None:
        cols["label"] = data.labels
    cols["sequence"] = data.sequences
    path = Path(path)
    sep = "," if path.name.lower().endswith((".csv", ".csv.gz")) else "\t"
    with atomic_path(path) as tmp:
        pd.DataFrame(cols).to_csv(tmp, sep=sep, index=False,
                                  compression="gzip" if path.name.lower().endswith(".gz") else None)
    return path


DATASETS: list[DatasetSpec] = [
    DatasetSpec("sequence-fasta", "sequence", load_fasta, suffixes=FASTA_SUFFIXES, save=write_fasta,
                description="DNA sequences in FASTA; labels from '>id label=X' / '>id|X' headers or a side table"),
    DatasetSpec("sequence-table", "sequence", load_table, suffixes=TABLE_SUFFIXES, save=save_table,
                description="DNA sequences in a TSV/CSV with sequence, label and id columns (optional split filter)"),
]

__all__ = ["DATASETS", "read_fasta", "read_table", "write_fasta", "save_table", "load_fasta", "load_table",
           "one_hot", "decode", "encode", "codes_of", "strings", "BUNDLED", "IUPAC"]
