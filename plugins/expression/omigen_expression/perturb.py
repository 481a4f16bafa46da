"""Perturbation by diffusion inversion (GEMDiff's Algorithm 1) and per-gene perturbation scores.

A real sample of the source class, in the model's [-1, 1] space, is mapped to its latent ``x_T``
by deterministic DDIM inversion under the source label, then decoded by deterministic DDIM under
the target label. The latent keeps what the sample does not owe to its class; the decoding adds
what the target class implies. The same latent decoded under the source label again gives the
round trip, whose error shows how much of a change the inversion alone causes.

Per gene, the change ``perturbed - original`` (in input units) is summarised by its mean (signed)
and mean absolute value. Core genes follow GEMDiff's rule: a gene whose mean change lies beyond
``mean ± k·SD`` of all genes' mean changes (two-sided) is a core gene, ``up`` or ``down``. Each
gene's p-value tests a zero mean change with a paired sign-flip permutation test (the per-sample
changes are symmetric about 0 under the null), and q-values control the false discovery rate
(Benjamini-Hochberg).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from omigen.errors import OmigenInputError

if TYPE_CHECKING:
    import pandas as pd

#: Random sign patterns drawn at once in :func:`sign_flip_pvalues` (bounds memory: chunk x samples).
FLIP_CHUNK = 1000


def perturb_latent(model: Any, Z: np.ndarray, source: int, target: int, steps: int = 100, guidance: float = 1.0,
                   batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """``(perturbed, round_trip)`` of the rows of ``Z`` (model space) for a trained ``DiffusionModel``.

    Inversion runs under ``source`` (plain conditional noise estimates); the decoding under
    ``target`` uses classifier-free ``guidance``, the round trip decodes under ``source`` without
    guidance. Both are deterministic (DDIM, ``eta = 0``) with ``steps`` steps.
    """
    import torch

    n_classes = int(getattr(model, "n_classes", 0))
    if n_classes < 2:
        raise OmigenInputError("perturbation needs a class-conditional model with at least 2 classes")
    for what, c in (("source", source), ("target", target)):
        if not 0 <= int(c) < n_classes:
            raise OmigenInputError(f"{what} class index {c} is not one of the model's {n_classes} classes")
    diffusion, denoiser = model.diffusion, model.denoiser
    diffusion.ddim_timesteps(steps)  # rejects a bad step count before any work
    device = diffusion.device
    was_training = model.training
    model.eval()
    out_p, out_r = [], []
    try:
        with torch.no_grad():
            for start in range(0, Z.shape[0], batch_size):
                x0 = torch.as_tensor(Z[start:start + batch_size], dtype=torch.float32, device=device)
                m = x0.shape[0]
                y_src = torch.full((m,), int(source), dtype=torch.long, device=device)
                y_tgt = torch.full((m,), int(target), dtype=torch.long, device=device)
                x_T = diffusion.ddim_invert(denoiser, x0, y_src, steps=steps)
                out_p.append(diffusion.ddim_decode(denoiser, x_T, y_tgt, steps=steps, guidance=guidance).cpu())
                out_r.append(diffusion.ddim_decode(denoiser, x_T, y_src, steps=steps).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out_p).numpy(), torch.cat(out_r).numpy()


def sign_flip_pvalues(D: np.ndarray, permutations: int = 9999, seed: int = 0) -> np.ndarray:
    """Two-sided p-value per column of ``D`` (samples x genes) for a zero mean, by random sign flips.

    ``p = (1 + #{|mean of flipped D| >= |mean of D|}) / (1 + permutations)``, every gene under the
    same sign patterns; patterns are drawn :data:`FLIP_CHUNK` at a time.
    """
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] < 2:
        raise OmigenInputError(f"the sign-flip test needs at least 2 samples, got shape {D.shape}")
    if permutations < 1:
        raise OmigenInputError(f"permutations must be >= 1, got {permutations}")
    n = D.shape[0]
    observed = np.abs(D.mean(axis=0))
    # relative tolerance so that the observed pattern itself (all +1) counts as "as extreme"
    threshold = observed * (1.0 - 1e-12)
    rng = np.random.default_rng(seed)
    hits = np.zeros(D.shape[1], dtype=np.int64)
    for start in range(0, permutations, FLIP_CHUNK):
        m = min(FLIP_CHUNK, permutations - start)
        signs = rng.integers(0, 2, size=(m, n), dtype=np.int8).astype(np.float64) * 2.0 - 1.0
        hits += (np.abs(signs @ D / n) >= threshold).sum(axis=0)
    return (1.0 + hits) / (1.0 + permutations)


def gene_scores(original: np.ndarray, perturbed: np.ndarray, genes: list[str], k: float = 1.0,
                permutations: int = 9999, seed: int = 0) -> "pd.DataFrame":
    """Per-gene perturbation table, rows sorted by absolute mean change (largest first).

    Columns: ``gene``, ``source_mean``, ``perturbed_mean``, ``mean_change`` (signed),
    ``mean_abs_change``, ``sd_change``, ``z`` (the mean change standardised over genes), ``core``
    (``up`` / ``down`` beyond ``mean ± k·SD``, else empty), ``p_value``, ``q_value``.
    """
    import pandas as pd
    from scipy.stats import false_discovery_control

    original = np.asarray(original, dtype=np.float64)
    perturbed = np.asarray(perturbed, dtype=np.float64)
    if original.shape != perturbed.shape or original.shape[1] != len(genes):
        raise OmigenInputError(f"original {original.shape}, perturbed {perturbed.shape} and {len(genes)} genes "
                               "do not match")
    if not (np.isfinite(k) and k > 0):
        raise OmigenInputError(f"k must be a positive number of standard deviations, got {k}")
    D = perturbed - original
    mean = D.mean(axis=0)
    spread = mean.std()
    z = (mean - mean.mean()) / spread if spread > 0 else np.zeros_like(mean)
    core = np.where(z > k, "up", np.where(z < -k, "down", ""))
    p = sign_flip_pvalues(D, permutations, seed)
    table = pd.DataFrame({
        "gene": list(genes), "source_mean": original.mean(axis=0), "perturbed_mean": perturbed.mean(axis=0),
        "mean_change": mean, "mean_abs_change": np.abs(D).mean(axis=0), "sd_change": D.std(axis=0, ddof=1),
        "z": z, "core": core, "p_value": p, "q_value": false_discovery_control(p),
    })
    order = np.argsort(-np.abs(mean), kind="stable")
    return table.iloc[order].reset_index(drop=True)


def mean_shift(original: np.ndarray, source_ref: np.ndarray, target_ref: np.ndarray) -> np.ndarray:
    """The naive perturbation every report compares against: add the target-minus-source mean difference."""
    return np.asarray(original) + (np.asarray(target_ref).mean(axis=0) - np.asarray(source_ref).mean(axis=0))
