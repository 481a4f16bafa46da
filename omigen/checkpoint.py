"""Training checkpoints: reading them safely, restoring weights, and the RNG state they carry.

Checkpoints hold plain tensors and JSON-able values, so ``torch.load(weights_only=True)``
reads them and loading one never executes code.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omigen.errors import OmigenInputError

if TYPE_CHECKING:
    import torch
    from torch import nn


def _rng_state(device: "torch.device") -> dict[str, Any]:
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, pstate, pgauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "state": list(pstate), "gauss": pgauss},
    }


def _set_rng_state(state: dict[str, Any], device: "torch.device") -> None:
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
    npst = state["numpy"]
    np.random.set_state(("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))


def _seed_all(seed: int) -> None:
    import numpy as np
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """A training checkpoint as a dict, read with ``weights_only=True``; a clear error if missing or corrupt."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise OmigenInputError(f"checkpoint not found: {p}")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # a damaged file surfaces as any of several unpickling/zip errors
        raise OmigenInputError(f"checkpoint {p} cannot be read "
                               f"({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "ema" not in ckpt:
        raise OmigenInputError(f"{p} is not an omigen training checkpoint")
    return ckpt


def restore(model: "nn.Module", path: str | Path, ema: bool = True) -> "nn.Module":
    """Load a checkpoint's EMA weights (or its raw weights, ``ema=False``) into ``model`` and return it."""
    ckpt = load_checkpoint(path)
    try:
        model.load_state_dict(ckpt["ema" if ema else "model"])
    except RuntimeError as exc:
        raise OmigenInputError(f"checkpoint {path} does not fit this model: {_first_line(exc)}") from None
    return model
