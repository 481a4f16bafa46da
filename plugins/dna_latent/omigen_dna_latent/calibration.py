"""Calibration of a base-predicting latent diffusion model against its own draws (discriminator guidance).

The U-Net learns each cell type's composition well but places its transcription-factor sites
poorly: on the DHS data the real HepG2 sequences carry their HNF4A sites in the centre, the
model's were spread evenly (plugin README). Calibration measures what the model gets wrong and
tilts its draw to correct it, in the spirit of discriminator guidance (Kim et al. 2023,
"Refining generative process with discriminator guidance in score-based diffusion models"), with
a discriminator that factorises over bases so it can act inside the chained draw:

1. Fit, per label and per bin of ``bin_width`` positions, an ``order``-th order Markov chain to the
   training sequences: ``log R(base | order bases before, label, bin)``.
2. Draw ``n_per_class`` sequences per label from the model with the run's sampler and fit the same
   chain to them: ``log M``.
3. The table ``log R - log M`` is the log-likelihood ratio, real against model, of each base in
   its context, label and bin (a Markov real-vs-synthetic classifier). Adding it to each base's
   log-probability in the draw moves the draw towards the real statistics.

A table of zeros changes nothing. Each further round (``rounds``) draws again with the table so
far and adds the ratio that remains, since the sampler rewrites part of what one tilted draw
changes; ``step`` < 1 adds only that fraction of each round's ratio, because the tilt acts at
every sampling step and a full one overshoots. The table is fitted to the sampler settings it
was drawn with; other settings still get it, only less exactly. Tables are saved beside the
run's checkpoints (``calibration.pt``) as plain tensors, read back with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from omigen.errors import OmigenInputError
from omigen_dna_latent.config import CalibrationConfig
from omigen_dna_latent.denoiser import context_index

#: Bump when the saved table's meaning changes.
FORMAT = 1


def chain_log_probs(codes: Tensor, labels: Tensor | None, n_classes: int, order: int, bin_width: int,
                    pseudocount: float = 1.0) -> Tensor:
    """``(max(n_classes, 1), bins, 4**order, 4)``: log-probabilities of each base given the ``order``
    bases before it, per label and per bin of ``bin_width`` positions, fitted to integer-coded
    ``codes`` ``(n, L)`` with class indices ``labels`` (``None``: one class); ``pseudocount`` per cell."""
    codes = codes.long().cpu()
    n, length = codes.shape
    classes, bins, contexts = max(int(n_classes), 1), -(-length // bin_width), 4 ** order
    rows = torch.zeros(n, dtype=torch.long) if labels is None else labels.long().cpu()
    if rows.shape != (n,) or (rows < 0).any() or (rows >= classes).any():
        raise OmigenInputError(f"calibration needs one class index in [0, {classes}) per sequence")
    position_bin = torch.arange(length) // bin_width
    cell = ((rows[:, None] * bins + position_bin[None]) * contexts + context_index(codes, order)) * 4 + codes
    counts = torch.bincount(cell.reshape(-1), minlength=classes * bins * contexts * 4).double()
    counts = counts.view(classes, bins, contexts, 4) + pseudocount
    return (counts.log() - counts.sum(-1, keepdim=True).log()).float()


#: ``draw(table, seed) -> (codes (n, L), class indices (n,) or None)``: the model's draw with a calibration table.
Draw = Callable[[Tensor, int], "tuple[Tensor, Tensor | None]"]


def fit_table(codes: Tensor, labels: Tensor | None, n_classes: int, draw: Draw, config: CalibrationConfig,
              seed: int = 0, log: Callable[[str], None] | None = None) -> Tensor:
    """The calibration table of a model whose draw is ``draw``, against training ``codes`` / ``labels``
    (module docstring): ``rounds`` rounds, each adding ``step`` times ``log R - log M`` of a fresh draw."""
    config.validate()
    real = chain_log_probs(codes, labels, n_classes, config.order, config.bin_width, config.pseudocount)
    table = torch.zeros_like(real)
    for r in range(config.rounds):
        drawn, drawn_labels = draw(table, seed + r)
        step = real - chain_log_probs(drawn, drawn_labels, n_classes, config.order, config.bin_width,
                                      config.pseudocount)
        table = table + config.step * step
        if log is not None:
            log(f"calibration round {r + 1}/{config.rounds}: {drawn.shape[0]} sequences drawn, "
                f"mean |log R - log M| {step.abs().mean():.3f}")
    return table


def save(path: "str | Path", table: Tensor, config: CalibrationConfig, sampling: dict[str, Any]) -> Path:
    """Write ``table`` with the settings that made it (``sampling``: the draw's sampler settings), atomically."""
    from dataclasses import asdict

    from omigen.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "table": table.cpu(), "config": asdict(config),
                    "sampling": {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in sampling.items()}},
                   tmp)
    return path


def load(path: "str | Path") -> dict[str, Any]:
    """A saved calibration (``table``, ``config``, ``sampling``), read without executing code."""
    path = Path(path)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file surfaces as any of several unpickling/zip errors
        raise OmigenInputError(f"calibration file {path} cannot be read ({type(exc).__name__})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT or not isinstance(saved.get("table"), Tensor):
        raise OmigenInputError(f"{path} is not an omigen dna_latent calibration file (format {FORMAT})")
    if saved["table"].dim() != 4 or saved["table"].shape[-1] != 4:
        raise OmigenInputError(f"{path}: calibration table has shape {tuple(saved['table'].shape)}, "
                               "expected (classes, bins, contexts, 4)")
    return saved
