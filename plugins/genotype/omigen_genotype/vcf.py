"""VCF/BCF in and out: biallelic diploid SNPs as 0/1/2 alt-allele dosages, phenotypes from a TSV.

Reading (:func:`read_vcf`, through cyvcf2/htslib, so ``.vcf``, bgzipped ``.vcf.gz`` and ``.bcf``):

- kept: sites with one ALT allele where REF and ALT are single bases (A, C, G, T) and every call is
  diploid; phased (``0|1``) and unphased (``0/1``) calls are read alike, as the number of ALT alleles.
  When every heterozygous call kept is phased and none was imputed, the two alleles of each call are
  kept too (``GenotypeData.haplotypes``, ``meta["haplotypes"]``), for models that generate haplotypes.
- skipped and counted in ``meta["skipped"]``: ``multiallelic`` sites, ``non_snp`` sites (indels, MNPs,
  symbolic alleles such as ``<DEL>``), ``no_alt`` sites (ALT ``.``), ``non_diploid`` sites (any
  haploid or polyploid call, e.g. chrX in males) and ``no_gt`` sites (no GT field).
- missing calls (``./.``, or half-missing ``0/.``) follow ``missing``: ``"error"`` (default: name the
  first one), ``"drop-variant"`` (drop every site with a missing call) or ``"impute-mode"`` (fill with
  the site's most common observed genotype; sites with no observed call are dropped).
- ``maf``: sites whose minor-allele frequency (after the missing-call policy) is below it are dropped.
- phenotypes and covariates (e.g. ``population``) come from a tab-separated table with one row per
  sample, joined on the sample id (column ``sample``, ``IID`` or else the first column). Without an
  explicit table, ``<base>.phenotypes.tsv`` beside the VCF is used when it exists. VCF samples without
  a row, or rows without a VCF sample, are an error by default; ``on_mismatch="drop"`` keeps the
  samples present in both and counts the others in ``meta``.
- ``label`` names the covariate used as the class label (default ``population``, when present).

Writing (:func:`write_vcf`): a VCF 4.2 file with the same sites, IDs, REF/ALT and positions as the
data's variant table, the data's (synthetic) sample names and unphased genotypes ``0/0``, ``0/1``,
``1/1`` (phased ``0|1`` and ``1|0`` when the data hold haplotypes); plain text, bgzipped when the name
ends in ``.gz``/``.bgz``, or BCF for ``.bcf``. Phenotypes and the label go to the ``<base>.phenotypes.tsv`` sidecar (:func:`phenotype_path`), which the reader
picks up again. Both files are written atomically.

``DATASETS`` holds the ``genotype-vcf`` format; its ``load(None)`` is the simulated default data of
:mod:`omigen_genotype.simulate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omigen.errors import OmigenInputError
from omigen.io import atomic_path, require_file, write_text
from omigen.registry import DatasetSpec

if TYPE_CHECKING:
    import pandas as pd

    from omigen.data import GenotypeData

MISSING_POLICIES = ("error", "drop-variant", "impute-mode")
MISMATCH_POLICIES = ("error", "drop")
#: The covariate used as label when none is named.
DEFAULT_LABEL = "population"
#: Column names recognised as the sample id in a phenotype table, in order of preference.
SAMPLE_COLUMNS = ("sample", "sample_id", "IID", "iid", "id")
SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")
_BASES = frozenset("ACGT")
#: VCF genotype strings by dosage.
_GT = np.array(["0/0", "0/1", "1/1"], dtype=object)
_PHASED_GT = np.array(["0|0", "0|1", "1|0", "1|1"], dtype=object)  # indexed by 2 * first + second allele


def _base(path: Path) -> str:
    name = path.name
    for suffix in sorted(SUFFIXES + (".gz", ".bgz"), key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def phenotype_path(vcf_path: str | Path) -> Path:
    """The phenotype sidecar of a VCF: ``data.vcf.gz`` -> ``data.phenotypes.tsv`` in the same folder."""
    p = Path(vcf_path)
    return p.with_name(_base(p) + ".phenotypes.tsv")


def read_phenotypes(path: str | Path, sample_column: str | None = None) -> "pd.DataFrame":
    """A phenotype/covariate table indexed by sample id (str); numeric columns stay numeric.

    The sample id column is ``sample_column`` or the first of :data:`SAMPLE_COLUMNS` present, else
    the first column. Empty tables, duplicate ids and a missing named column are input errors.
    """
    import pandas as pd

    p = require_file(path, "phenotype table")
    try:
        table = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False, na_values=["", "NA", "nan"])
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise OmigenInputError(f"{p.name}: not a tab-separated phenotype table ({exc})") from None
    if table.shape[0] == 0 or table.shape[1] == 0:
        raise OmigenInputError(f"{p.name}: the phenotype table has no rows")
    if sample_column is None:
        sample_column = next((c for c in SAMPLE_COLUMNS if c in table.columns), table.columns[0])
    elif sample_column not in table.columns:
        raise OmigenInputError(f"{p.name}: no sample id column {sample_column!r} "
                               f"(columns: {', '.join(map(str, table.columns))})")
    ids = table[sample_column].astype(str)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise OmigenInputError(f"{p.name}: duplicate sample id {dup.iloc[0]!r}")
    table = table.drop(columns=[sample_column]).set_index(pd.Index(ids.to_numpy(), name="sample"))
    for col in table.columns:
        numeric = pd.to_numeric(table[col], errors="coerce")
        if numeric.notna().sum() == table[col].notna().sum():
            table[col] = numeric
    return table


def _open(path: Path, samples: list[str] | None = None):
    import cyvcf2

    try:
        vcf = cyvcf2.VCF(str(path), gts012=False, lazy=True, samples=samples)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise OmigenInputError(f"{path.name}: not a readable VCF/BCF file ({exc})") from None
    if not vcf.samples:
        raise OmigenInputError(f"{path.name}: the VCF has no samples (no genotype columns)")
    return vcf


def _contigs(vcf) -> dict[str, int]:
    try:
        return {str(n): int(length) for n, length in zip(vcf.seqnames, vcf.seqlens)}
    except Exception:  # noqa: BLE001 - headers without contig lengths are legal
        return {}


def _scan(vcf, path: Path) -> tuple[np.ndarray, list[tuple], dict[str, int], int, np.ndarray | None]:
    """Dosage matrix (samples x kept sites, -1 = missing), site rows, skip counts, phased calls, and the
    alleles (samples x sites x 2), or None once any heterozygous call is unphased."""
    skipped = {"multiallelic": 0, "non_snp": 0, "no_alt": 0, "non_diploid": 0, "no_gt": 0}
    columns: list[np.ndarray] = []
    haps: list[np.ndarray] = []
    sites: list[tuple] = []
    phased = 0
    all_phased = True
    try:
        for v in vcf:
            alts = v.ALT
            if not alts:
                skipped["no_alt"] += 1
                continue
            if len(alts) > 1:
                skipped["multiallelic"] += 1
                continue
            ref, alt = v.REF.upper(), alts[0].upper()
            if len(ref) != 1 or len(alt) != 1 or ref not in _BASES or alt not in _BASES:
                skipped["non_snp"] += 1
                continue
            # One row per sample: allele indices (-1 missing, -2 "no such allele": lower ploidy),
            # then the phased flag.
            # (Variant.FORMAT crashes cyvcf2 0.35 on lazily parsed records; a missing GT raises instead.)
            try:
                arr = v.genotype.array()
            except Exception:  # noqa: BLE001 - cyvcf2 raises a bare Exception when there is no GT field
                skipped["no_gt"] += 1
                continue
            if arr.shape[1] != 3 or (arr[:, :2] == -2).any():
                skipped["non_diploid"] += 1
                continue
            alleles = arr[:, :2]
            dosage = alleles.sum(axis=1, dtype=np.int16)
            dosage[(alleles < 0).any(axis=1)] = -1
            columns.append(dosage.astype(np.int8))
            phased += int(arr[:, 2].sum())
            if all_phased:  # homozygous calls need no phase; one unphased heterozygote ends the haplotypes
                het = alleles[:, 0] != alleles[:, 1]
                all_phased = bool(arr[het, 2].all())
                if all_phased:
                    haps.append(alleles.astype(np.int8))
            sites.append((v.ID or f"{v.CHROM}:{v.POS}:{ref}:{alt}", str(v.CHROM), int(v.POS), ref, alt))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise OmigenInputError(f"{path.name}: malformed VCF record ({exc})") from None
    n = len(vcf.samples)
    G = np.stack(columns, axis=1) if columns else np.zeros((n, 0), dtype=np.int8)
    H = np.stack(haps, axis=1) if (all_phased and haps) else None
    return G, sites, skipped, phased, H


def _apply_missing(G: np.ndarray, keep: np.ndarray, policy: str, path: Path, samples, sites) -> tuple[np.ndarray, dict]:
    """Apply the missing-call policy in place of ``G``; returns the updated site mask and counts."""
    miss = G < 0
    n_missing = int(miss.sum())
    info = {"missing_calls": n_missing, "dropped_for_missing": 0, "imputed_calls": 0}
    if not n_missing:
        return keep, info
    if policy == "error":
        i, j = np.argwhere(miss)[0]
        raise OmigenInputError(
            f"{path.name}: {n_missing} missing genotype call(s), first at sample {samples[i]!r}, "
            f"{sites[j][1]}:{sites[j][2]}; choose missing='drop-variant' or missing='impute-mode'")
    col_missing = miss.any(axis=0)
    if policy == "drop-variant":
        info["dropped_for_missing"] = int((col_missing & keep).sum())
        return keep & ~col_missing, info
    counts = np.stack([(G == k).sum(axis=0) for k in range(3)])
    empty = counts.sum(axis=0) == 0
    mode = counts.argmax(axis=0).astype(np.int8)
    G[miss] = np.broadcast_to(mode, G.shape)[miss]
    info["imputed_calls"] = int(miss[:, ~empty].sum())
    info["dropped_for_missing"] = int((empty & keep).sum())
    return keep & ~empty, info


def _join(vcf_samples: list[str], table: "pd.DataFrame", on_mismatch: str, path: Path) -> tuple[np.ndarray, dict]:
    """Row indices of the VCF samples kept, and the mismatch counts."""
    in_table = np.isin(np.asarray(vcf_samples, dtype=object), table.index.to_numpy())
    extra = table.index.difference(vcf_samples)
    counts = {"samples_without_phenotype": int((~in_table).sum()), "phenotypes_without_sample": len(extra)}
    if (counts["samples_without_phenotype"] or len(extra)) and on_mismatch == "error":
        parts = []
        if counts["samples_without_phenotype"]:
            first = vcf_samples[int(np.argmin(in_table))]
            parts.append(f"{counts['samples_without_phenotype']} VCF sample(s) have no phenotype row "
                         f"(e.g. {first!r})")
        if len(extra):
            parts.append(f"{len(extra)} phenotype row(s) have no VCF sample (e.g. {extra[0]!r})")
        raise OmigenInputError(f"{path.name}: " + " and ".join(parts)
                               + f"; on_mismatch='drop' keeps the {int(in_table.sum())} samples in both")
    return np.flatnonzero(in_table), counts


def read_vcf(path: str | Path, *, phenotypes: str | Path | None = None, label: str | None = DEFAULT_LABEL,
             missing: str = "error", maf: float = 0.0, on_mismatch: str = "error",
             sample_column: str | None = None) -> "GenotypeData":
    """Read a VCF/BCF into a validated :class:`omigen.data.GenotypeData` (see the module docstring).

    ``meta`` records ``source``, ``sites_read``, ``skipped`` (per reason), ``missing_calls``,
    ``imputed_calls``, ``dropped_for_missing``, ``dropped_for_maf``, ``phased_calls``, ``haplotypes``,
    ``samples_without_phenotype``, ``phenotypes_without_sample``, ``label_column`` and ``contigs``.
    """
    import pandas as pd

    from omigen.data import GenotypeData

    if missing not in MISSING_POLICIES:
        raise OmigenInputError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    if on_mismatch not in MISMATCH_POLICIES:
        raise OmigenInputError(f"on_mismatch must be one of {', '.join(MISMATCH_POLICIES)}, got {on_mismatch!r}")
    if not 0.0 <= float(maf) <= 0.5:
        raise OmigenInputError(f"maf must be in [0, 0.5], got {maf}")
    p = require_file(path, "VCF file")
    if phenotypes is None and phenotype_path(p).is_file():
        phenotypes = phenotype_path(p)
    table = read_phenotypes(phenotypes, sample_column) if phenotypes is not None else None

    vcf = _open(p)
    samples = [str(s) for s in vcf.samples]
    contigs = _contigs(vcf)
    try:
        G, sites, skipped, phased, H = _scan(vcf, p)
    finally:
        vcf.close()
    meta: dict[str, Any] = {"source": str(p), "sites_read": len(sites) + sum(skipped.values()),
                            "skipped": skipped, "phased_calls": phased,
                            "samples_without_phenotype": 0, "phenotypes_without_sample": 0}
    rows = np.arange(len(samples))
    if table is not None:
        rows, counts = _join(samples, table, on_mismatch, p)
        meta.update(counts)
        if rows.size == 0:
            raise OmigenInputError(f"{p.name}: no VCF sample has a phenotype row")
        G = G[rows]
        H = None if H is None else H[rows]
    kept_samples = np.asarray(samples, dtype=object)[rows]

    keep = np.ones(G.shape[1], dtype=bool)
    keep, info = _apply_missing(G, keep, missing, p, kept_samples, sites)
    meta.update(info)
    observed = G >= 0
    n_obs = observed.sum(axis=0)
    freq = np.where(observed, G, 0).sum(axis=0) / (2.0 * np.maximum(n_obs, 1))
    low = keep & (np.minimum(freq, 1 - freq) < maf)
    meta["dropped_for_maf"] = int(low.sum())
    keep &= ~low
    if not keep.any():
        raise OmigenInputError(f"{p.name}: no biallelic diploid SNP left to read ({meta['sites_read']} sites "
                               f"read; skipped {skipped}; {info['dropped_for_missing']} dropped for missing "
                               f"calls, {meta['dropped_for_maf']} below maf {maf})")
    idx = np.flatnonzero(keep)
    variants = pd.DataFrame([sites[j] for j in idx], columns=["id", "chrom", "pos", "ref", "alt"])
    variants["pos"] = variants["pos"].astype(np.int64)

    labels = None
    ph = None
    if table is not None:
        ph = table.loc[kept_samples.tolist()]
        if label is not None and label in ph.columns:
            if ph[label].isna().any():
                bad = ph.index[ph[label].isna().to_numpy()][0]
                raise OmigenInputError(f"{Path(phenotypes).name}: sample {bad!r} has no {label!r} value")
            labels = ph[label].astype(str).to_numpy(dtype=object)
        elif label is not None and label != DEFAULT_LABEL:
            raise OmigenInputError(f"{Path(phenotypes).name}: no label column {label!r} "
                                   f"(columns: {', '.join(map(str, ph.columns))})")
    elif label is not None and label != DEFAULT_LABEL:
        raise OmigenInputError(f"{p.name}: label {label!r} asked for but no phenotype table was given")
    meta["label_column"] = label if labels is not None else None
    meta["contigs"] = {c: contigs.get(c, int(variants.loc[variants.chrom == c, "pos"].max()))
                       for c in variants["chrom"].unique()}
    # Imputed calls have dosages but no alleles, so only fully phased, fully called input keeps haplotypes.
    if H is not None and not info["imputed_calls"]:
        H = np.ascontiguousarray(H[:, idx])
    else:
        H = None
    meta["haplotypes"] = H is not None
    data = GenotypeData(G=np.ascontiguousarray(G[:, idx]), samples=kept_samples, variants=variants,
                        labels=labels, phenotypes=ph, meta=meta, haplotypes=H)
    return data.validate()


def input_summary(meta: dict) -> "pd.DataFrame":
    """What the reader kept, skipped and repaired: a table (columns ``input``, ``count``) for a report
    section, e.g. ``Section("Input", table=input_summary(data.meta))``.

    ``meta`` is :attr:`GenotypeData.meta` from :func:`read_vcf`; keys it lacks are left out.
    """
    import pandas as pd

    rows = [("sites read", meta.get("sites_read"))]
    rows += [(f"skipped: {reason.replace('_', '-')}", n) for reason, n in (meta.get("skipped") or {}).items()]
    rows += [("missing calls", meta.get("missing_calls")), ("imputed calls", meta.get("imputed_calls")),
             ("dropped for missing calls", meta.get("dropped_for_missing")),
             ("dropped below the MAF filter", meta.get("dropped_for_maf")),
             ("VCF samples without phenotype", meta.get("samples_without_phenotype")),
             ("phenotype rows without VCF sample", meta.get("phenotypes_without_sample"))]
    return pd.DataFrame([(what, int(n)) for what, n in rows if n is not None], columns=["input", "count"])


def _mode(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".bcf"):
        return "wb"
    if name.endswith((".gz", ".bgz")):
        return "wz"
    return "w"


def _header(data: "GenotypeData") -> str:
    contigs = dict(data.meta.get("contigs") or {})
    v = data.variants
    lines = ["##fileformat=VCFv4.2", "##source=omigen-genotype"]
    for chrom in dict.fromkeys(v["chrom"].astype(str)):
        length = max(int(contigs.get(chrom, 0)), int(v.loc[v["chrom"].astype(str) == chrom, "pos"].max()))
        lines.append(f"##contig=<ID={chrom},length={length}>")
    lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    lines.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                            *map(str, data.samples)]))
    return "\n".join(lines) + "\n"


def _records(data: "GenotypeData", chunk: int = 1024):
    """The VCF body as UTF-8 text blocks of ``chunk`` sites (memory stays ``chunk x samples``)."""
    v = data.variants
    fixed = (v["chrom"].astype(str) + "\t" + v["pos"].astype(np.int64).astype(str) + "\t"
             + v["id"].astype(str).replace("", ".") + "\t" + v["ref"].astype(str) + "\t"
             + v["alt"].astype(str) + "\t.\tPASS\t.\tGT\t").to_numpy()
    H = data.haplotypes
    for s in range(0, len(fixed), chunk):
        if H is None:
            calls = _GT[data.G[:, s:s + chunk].T.astype(np.intp)]  # sites x samples
        else:
            block = H[:, s:s + chunk].astype(np.intp)
            calls = _PHASED_GT[(2 * block[..., 0] + block[..., 1]).T]
        yield "".join(head + "\t".join(row) + "\n" for head, row in zip(fixed[s:s + chunk], calls))


def write_vcf(data: "GenotypeData", path: str | Path) -> Path:
    """Write ``data`` as a VCF (bgzipped for ``.gz``/``.bgz``, BCF for ``.bcf``), atomically.

    Sites, IDs, REF/ALT and positions come from ``data.variants``; genotypes are written phased
    (``0|1``) when ``data.haplotypes`` holds the alleles, else unphased.
    VCF text is written directly (through Biopython's BGZF writer when compressed); BCF goes
    through cyvcf2/htslib.
    """
    data.validate()
    if len(data) == 0:
        raise OmigenInputError("cannot write a VCF without samples")
    path = Path(path)
    mode = _mode(path)
    with atomic_path(path) as tmp:
        if mode == "wb":
            import cyvcf2

            writer = cyvcf2.Writer.from_string(str(tmp), _header(data), mode=mode)
            try:
                for block in _records(data):
                    for line in block.splitlines():
                        writer.write_record(writer.variant_from_string(line))
            finally:
                writer.close()
        else:
            from Bio import bgzf

            out = bgzf.BgzfWriter(str(tmp), "wb") if mode == "wz" else open(tmp, "wb")
            try:
                out.write(_header(data).encode("utf-8"))
                for block in _records(data):
                    out.write(block.encode("utf-8"))
            finally:
                out.close()
    return path


def write_phenotypes(data: "GenotypeData", path: str | Path) -> Path | None:
    """Write the phenotypes (and the label, as ``meta['label_column']`` or ``population``) as a TSV.

    Returns the path, or None when the data carry neither phenotypes nor labels.
    """
    import pandas as pd

    table = pd.DataFrame(index=pd.Index(np.asarray(data.samples, dtype=str), name="sample"))
    if data.phenotypes is not None:
        ph = data.phenotypes.reset_index(drop=True)
        ph.index = table.index
        table = table.join(ph)
    label_col = data.meta.get("label_column") or DEFAULT_LABEL
    if data.labels is not None:
        table[label_col] = np.asarray(data.labels, dtype=str)
    if table.shape[1] == 0:
        return None
    return write_text(path, table.to_csv(sep="\t", na_rep="NA"))


def save(data: "GenotypeData", path: str | Path) -> None:
    """``DatasetSpec.save``: the VCF at ``path`` and its ``<base>.phenotypes.tsv`` sidecar."""
    write_vcf(data, path)
    write_phenotypes(data, phenotype_path(path))


def load(path: str | Path | None = None, **options: Any) -> "GenotypeData":
    """``DatasetSpec.load``: :func:`read_vcf` options for a file; ``None`` is the simulated default data.

    For ``None``, options are :class:`omigen_genotype.simulate.SimulationParams` fields (and ``label``).
    """
    if path is None:
        from omigen_genotype.simulate import load_default

        return load_default(**options)
    return read_vcf(path, **options)


DATASETS: list[DatasetSpec] = [
    DatasetSpec("genotype-vcf", "genotype", load, suffixes=(".vcf", ".vcf.gz", ".bcf"), save=save,
                description="VCF/BCF of biallelic diploid SNPs as 0/1/2 dosages, phenotypes from "
                            "<base>.phenotypes.tsv (no path: simulated Out-of-Africa chr22 data)"),
]
