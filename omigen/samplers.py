"""The host's samplers for Gaussian diffusion models: ``ddpm`` and ``ddim``.

Light on purpose (``omigen list`` imports it): torch is only touched through the model.
Both call :meth:`omigen.diffusion.DiffusionModel.sample`, so every plugin whose model has
``kind = "gaussian-diffusion"`` gets them without registering anything.
"""

from __future__ import annotations

import inspect
from typing import Any

from omigen.errors import OmigenInputError
from omigen.registry import SamplerSpec

#: The model kind these samplers draw from (``DiffusionModel.kind``).
DIFFUSION_KIND = "gaussian-diffusion"

# Options that make no sense for a sampler: its name is fixed, and DDPM walks every timestep.
_NOT_FOR = {"ddpm": ("sampler", "steps", "eta"), "ddim": ("sampler",)}


def _check(name: str, model: Any, options: dict[str, Any]) -> None:
    kind = getattr(model, "kind", None)
    if kind != DIFFUSION_KIND:
        raise OmigenInputError(f"sampler {name!r} draws from {DIFFUSION_KIND} models, "
                               f"not from {kind or type(model).__name__!r}")
    known = [p for p in inspect.signature(model.sample).parameters if p not in ("n", *_NOT_FOR[name])]
    for key in options:
        if key in _NOT_FOR[name]:
            hint = " (it uses every timestep; use 'ddim' to choose steps)" if name == "ddpm" else ""
            raise OmigenInputError(f"sampler {name!r} does not take option {key!r}{hint}")
        if key not in known:
            raise OmigenInputError(f"unknown option {key!r} for sampler {name!r} (known: {', '.join(known)})")


def sample_ddpm(model: Any, n: int, **options: Any) -> Any:
    """``n`` samples by ancestral DDPM sampling through all timesteps (options: y, guidance, generator, ...)."""
    _check("ddpm", model, options)
    return model.sample(n, sampler="ddpm", **options)


def sample_ddim(model: Any, n: int, **options: Any) -> Any:
    """``n`` samples by DDIM (options: y, steps, eta, guidance, generator, ...)."""
    _check("ddim", model, options)
    return model.sample(n, sampler="ddim", **options)


SAMPLERS: list[SamplerSpec] = [
    SamplerSpec(
        name="ddpm",
        model_kinds=(DIFFUSION_KIND,),
        sample=sample_ddpm,
        description="ancestral DDPM sampling through every diffusion timestep",
    ),
    SamplerSpec(
        name="ddim",
        model_kinds=(DIFFUSION_KIND,),
        sample=sample_ddim,
        description="DDIM with any number of steps; eta=0 is deterministic, eta=1 adds DDPM-like noise",
    ),
]
