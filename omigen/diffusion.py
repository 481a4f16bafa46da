"""Gaussian diffusion (DDPM training and DDPM/DDIM sampling) with classifier-free guidance.

Shared by the continuous plugins: expression diffusion works on (scaled) genes, DNA latent
diffusion on an autoencoder's latent. A plugin supplies a denoiser, a module called as
``denoiser(x_t, t, y) -> eps`` where ``x_t`` has shape ``(B, *sample_shape)``, ``t`` is a
LongTensor ``(B,)`` of timesteps in ``[0, T)`` and ``y`` is a LongTensor ``(B,)`` of class labels or
``None``. Labels equal to :data:`NULL_LABEL` (any ``y < 0``) mean "no condition"; training
replaces labels by it with probability ``cond_drop`` so one network learns both the
conditional and the unconditional noise, which classifier-free guidance mixes.

The schedule is computed in float64; per-sample coefficients used in training are kept as
float32 buffers that move with ``.to(device)``, and the per-step coefficients of the samplers
(one timestep for the whole batch) are taken from the float64 schedule.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omigen.config import NULL_LABEL, SCHEDULES, DiffusionConfig  # noqa: F401  (re-exported)
from omigen.errors import OmigenInputError

#: Samplers :meth:`DiffusionModel.sample` accepts.
SAMPLER_NAMES = ("ddpm", "ddim")
#: Default sampling batch on a CPU: small enough that one batch's activations stay in cache
#: (10,000 samples of a 16-gene transformer: 1,024 per batch sampled about 20% faster than 4,096).
CPU_SAMPLE_BATCH = 1024
#: Default sampling batch on a GPU, where larger batches keep the device busy.
ACCELERATOR_SAMPLE_BATCH = 16384

# Nichol & Dhariwal's offset that keeps the cosine schedule's first betas from vanishing.
_COSINE_OFFSET = 0.008
_MAX_BETA = 0.999


def make_betas(config: DiffusionConfig) -> np.ndarray:
    """The float64 betas ``(T,)`` of ``config``'s schedule."""
    T = config.timesteps
    if config.schedule == "linear":
        return np.linspace(config.beta_start, config.beta_end, T, dtype=np.float64)
    s = _COSINE_OFFSET
    f = np.cos((np.arange(T + 1, dtype=np.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
    return np.clip(1.0 - f[1:] / f[:-1], 0.0, _MAX_BETA)


def _randn(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    # Drawn on the generator's own device so a CPU seed gives the same numbers on any device.
    where = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=where).to(device)


def _rand(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    where = generator.device if generator is not None else device
    return torch.rand(tuple(shape), generator=generator, device=where).to(device)


def _progress(steps: Iterable[Any], enabled: bool, what: str, total: int | None = None) -> Iterable[Any]:
    if not enabled:
        return steps
    from rich.console import Console
    from rich.progress import track

    return track(steps, description=what, total=len(steps) if total is None else total,
                 console=Console(stderr=True), transient=True)


class GaussianDiffusion(nn.Module):
    """The maths of a Gaussian diffusion with ``config.timesteps`` steps: noising, loss, samplers.

    It holds no weights, only non-persistent buffers, so it adds nothing to a checkpoint.
    """

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.num_timesteps = config.timesteps
        betas = make_betas(config)
        ab = np.cumprod(1.0 - betas)
        #: float64 schedule for the samplers' per-step scalars.
        self.alphas_cumprod64 = ab
        unclipped = np.flatnonzero(betas < _MAX_BETA)
        #: Timesteps the samplers visit, ``0 .. ddim_horizon - 1`` (see :meth:`ddim_timesteps`).
        self.ddim_horizon = int(unclipped[-1]) + 1 if unclipped.size else 1
        for name, value in (("betas", betas), ("alphas_cumprod", ab), ("sqrt_alphas_cumprod", np.sqrt(ab)),
                            ("sqrt_one_minus_alphas_cumprod", np.sqrt(1.0 - ab))):
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32), persistent=False)

    @property
    def device(self) -> torch.device:
        """Where the buffers (and so the samplers' tensors) live."""
        return self.betas.device

    @staticmethod
    def _per_sample(coef: Tensor, t: Tensor, x: Tensor) -> Tensor:
        return coef[t].to(x.dtype).view(-1, *([1] * (x.dim() - 1)))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Draw ``x_t ~ q(x_t | x_0)``: ``sqrt(ab_t) x0 + sqrt(1 - ab_t) noise`` (``t`` of shape ``(B,)``)."""
        t = t.to(self.device)
        return (self._per_sample(self.sqrt_alphas_cumprod, t, x0) * x0
                + self._per_sample(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise)

    def noised(self, x0: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None
               ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """One training draw ``(x_t, t, noise, y)``: uniform random timesteps, Gaussian noise, and
        labels dropped to NULL with probability ``cond_drop`` (for classifier-free guidance)."""
        B, device = x0.shape[0], x0.device
        t = (_rand((B,), generator, device) * self.num_timesteps).long().clamp_(max=self.num_timesteps - 1)
        noise = _randn(x0.shape, generator, device).to(x0.dtype)
        if y is not None:
            y = torch.as_tensor(y, device=device).long()
            if self.config.cond_drop > 0:
                drop = _rand((B,), generator, device) < self.config.cond_drop
                y = torch.where(drop, torch.full_like(y, NULL_LABEL), y)
        return self.q_sample(x0, t, noise), t, noise, y

    def loss(self, denoiser: nn.Module, x0: Tensor, y: Tensor | None = None,
             generator: torch.Generator | None = None) -> Tensor:
        """Epsilon-prediction MSE on a :meth:`noised` draw."""
        x_t, t, noise, y = self.noised(x0, y, generator)
        return F.mse_loss(denoiser(x_t, t, y), noise)

    def predict_eps(self, denoiser: nn.Module, x: Tensor, t: Tensor | int, y: Tensor | None = None,
                    guidance: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """The (guided) noise estimate ``eps_null + w (eps_cond - eps_null)``.

        ``w = 1`` is the plain conditional prediction and ``w = 0`` the unconditional one (one
        denoiser call each); any other ``w`` evaluates both halves in one doubled-batch call.
        A denoiser with a ``guided_eps(x, t, y, guidance, generator)`` method does all of this
        itself (e.g. to guide in another space, or to draw from the sampler's ``generator``).
        """
        B = x.shape[0]
        t = torch.as_tensor(t, device=x.device).long()
        if t.dim() == 0:
            t = t.expand(B)
        if hasattr(denoiser, "guided_eps"):
            return denoiser.guided_eps(x, t, y, guidance, generator)
        if y is None:
            return denoiser(x, t, None)
        y = torch.as_tensor(y, device=x.device).long()
        if guidance == 1.0:
            return denoiser(x, t, y)
        null = torch.full_like(y, NULL_LABEL)
        if guidance == 0.0:
            return denoiser(x, t, null)
        eps = denoiser(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
        cond, uncond = eps[:B], eps[B:]
        return uncond + guidance * (cond - uncond)

    def _x0_and_eps(self, x: Tensor, eps: Tensor, ab: float, clip_x0: float | None) -> tuple[Tensor, Tensor]:
        x0 = (x - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)
        if clip_x0 is not None:
            x0 = x0.clamp(-clip_x0, clip_x0)
            # Keep eps consistent with the clipped x0 so the update stays on the same trajectory.
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1.0 - ab) if ab < 1.0 else eps
        return x0, eps

    def ddpm_sample(self, denoiser: nn.Module, shape: Sequence[int], y: Tensor | None = None,
                    guidance: float = 1.0, generator: torch.Generator | None = None, progress: bool = False,
                    clip_x0: float | None = None) -> Tensor:
        """Ancestral sampling with the posterior variance ``beta~_t`` through every timestep below
        :attr:`ddim_horizon` (all ``T`` unless the schedule's last betas hit the 0.999 clip).

        Starting at a clipped step would divide the first x0 estimate by ``sqrt(alpha_bar_T)``
        (about 5e-5 for the cosine schedule), so an eps error of 0.01 became an x0 error of
        hundreds that the remaining steps never shrank. One step earlier ``alpha_bar`` is still
        about 2e-6, so the start is pure noise either way.
        """
        ab = self.alphas_cumprod64
        x = _randn(shape, generator, self.device)
        for t in _progress(range(self.ddim_horizon - 1, -1, -1), progress, "DDPM sampling"):
            ab_t, ab_prev = float(ab[t]), float(ab[t - 1]) if t > 0 else 1.0
            beta_t = 1.0 - ab_t / ab_prev
            eps = self.predict_eps(denoiser, x, t, y, guidance, generator)
            x0, _ = self._x0_and_eps(x, eps, ab_t, clip_x0)
            mean = (math.sqrt(ab_prev) * beta_t / (1.0 - ab_t)) * x0 \
                + (math.sqrt(1.0 - beta_t) * (1.0 - ab_prev) / (1.0 - ab_t)) * x
            std = math.sqrt(beta_t * (1.0 - ab_prev) / (1.0 - ab_t))
            x = mean + std * _randn(shape, generator, self.device)
        return x

    def ddim_timesteps(self, steps: int) -> np.ndarray:
        """``steps`` evenly spaced timesteps ``floor(i H / steps)``, ascending from 0 (``H = ddim_horizon``).

        More steps than ``H`` means all ``H``. Deterministic DDIM cannot use a step whose beta hit
        the 0.999 clip (the cosine schedule's last): ``alpha_bar`` falls a thousandfold there, so
        the step from it multiplies any error of a learned noise estimate thirtyfold or more, and
        without fresh noise that error is carried to the end. Such trailing steps are left out
        (``H = T - 1`` for the cosine schedule), and for ``steps < H`` the sequence also stops
        short of ``H - 1``, as in Nichol & Dhariwal's respaced DDIM; starting from N(0, I) there
        misses only a few percent of the signal.
        """
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise OmigenInputError(f"DDIM steps must be a positive integer, got {steps!r}")
        steps = min(int(steps), self.ddim_horizon)
        return (np.arange(steps, dtype=np.int64) * self.ddim_horizon) // steps

    def ddim_sample(self, denoiser: nn.Module, shape: Sequence[int], y: Tensor | None = None, steps: int = 50,
                    eta: float = 0.0, guidance: float = 1.0, generator: torch.Generator | None = None,
                    x_T: Tensor | None = None, progress: bool = False, clip_x0: float | None = None) -> Tensor:
        """DDIM (Song et al. 2021) over ``steps`` timesteps; ``eta=0`` is deterministic, ``eta=1`` with
        all ``T`` steps (an unclipped schedule) is DDPM. ``x_T`` replaces the starting noise."""
        if eta < 0:
            raise OmigenInputError(f"DDIM eta must be >= 0, got {eta!r}")
        ts = self.ddim_timesteps(steps)
        ab = self.alphas_cumprod64
        if x_T is not None and tuple(x_T.shape) != tuple(shape):
            raise ValueError(f"x_T has shape {tuple(x_T.shape)}, expected {tuple(shape)}")
        x = _randn(shape, generator, self.device) if x_T is None else x_T.to(self.device, torch.float32)
        for i in _progress(range(len(ts) - 1, -1, -1), progress, "DDIM sampling"):
            ab_t, ab_prev = float(ab[ts[i]]), float(ab[ts[i - 1]]) if i > 0 else 1.0
            eps = self.predict_eps(denoiser, x, int(ts[i]), y, guidance, generator)
            x0, eps = self._x0_and_eps(x, eps, ab_t, clip_x0)
            sigma = eta * math.sqrt((1.0 - ab_prev) / (1.0 - ab_t) * (1.0 - ab_t / ab_prev))
            x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1.0 - ab_prev - sigma ** 2, 0.0)) * eps
            if eta > 0:
                x = x + sigma * _randn(x.shape, generator, self.device)
        return x

    def ddim_invert(self, denoiser: nn.Module, x0: Tensor, y: Tensor | None = None, steps: int = 50,
                    guidance: float = 1.0) -> Tensor:
        """Run the deterministic DDIM map backwards: data ``x0`` -> latent ``x_T``.

        It visits the timesteps :meth:`ddim_decode` uses, in reverse, estimating each step's noise
        at the step's starting point (the first step at the smallest timestep); the error of that
        approximation shrinks in proportion to ``1 / steps``.
        """
        ab = self.alphas_cumprod64
        x = x0.to(self.device, torch.float32)
        ts = self.ddim_timesteps(steps)
        ab_prev, t_eval = 1.0, int(ts[0])
        for t in ts:
            ab_t = float(ab[t])
            eps = self.predict_eps(denoiser, x, t_eval, y, guidance)
            x0_hat = (x - math.sqrt(1.0 - ab_prev) * eps) / math.sqrt(ab_prev)
            x = math.sqrt(ab_t) * x0_hat + math.sqrt(1.0 - ab_t) * eps
            ab_prev, t_eval = ab_t, int(t)
        return x

    def ddim_decode(self, denoiser: nn.Module, x_T: Tensor, y: Tensor | None = None, steps: int = 50,
                    guidance: float = 1.0) -> Tensor:
        """Latent ``x_T`` -> data by deterministic DDIM (``eta = 0``); inverse of :meth:`ddim_invert`."""
        return self.ddim_sample(denoiser, tuple(x_T.shape), y=y, steps=steps, eta=0.0, guidance=guidance,
                                x_T=x_T)


class DiffusionModel(nn.Module):
    """A denoiser with its diffusion: what plugins train (``loss``) and draw from (``sample``).

    ``n_classes = 0`` makes it unconditional (the denoiser always receives ``y=None``);
    otherwise labels are ``0 .. n_classes - 1`` and :data:`NULL_LABEL` means "no condition".
    Only the denoiser's weights are in its ``state_dict``.
    """

    kind = "gaussian-diffusion"

    def __init__(self, denoiser: nn.Module, config: DiffusionConfig, sample_shape: tuple[int, ...],
                 n_classes: int = 0) -> None:
        super().__init__()
        if n_classes < 0:
            raise ValueError(f"n_classes must be >= 0, got {n_classes}")
        self.denoiser = denoiser
        self.config = config
        self.diffusion = GaussianDiffusion(config)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.n_classes = int(n_classes)

    def loss(self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Training loss of one batch; an unconditional model ignores ``y``."""
        if self.n_classes == 0:
            y = None
        elif y is None:
            raise ValueError("a class-conditional DiffusionModel needs labels in each training batch")
        return self.diffusion.loss(self.denoiser, x, y, generator=generator)

    def labels(self, y: Any, n: int) -> Tensor | None:
        """``y`` (None, one int, or ``n`` ints) as a checked LongTensor ``(n,)``; None when unconditional.

        A conditional model given ``y=None`` samples unconditionally (all :data:`NULL_LABEL`).
        """
        from omigen.conditional_mlp import check_labels

        return check_labels(y, n, self.n_classes)

    @torch.no_grad()
    def sample(self, n: int, y: Any = None, sampler: str = "ddim", steps: int = 50, eta: float = 0.0,
               guidance: float = 1.0, generator: torch.Generator | None = None, batch_size: int | None = None,
               progress: bool = False, clip_x0: float | None = None) -> Tensor:
        """Draw ``n`` samples, ``batch_size`` at a time, as a float32 CPU tensor ``(n, *sample_shape)``.

        ``batch_size`` defaults to :data:`CPU_SAMPLE_BATCH` on a CPU and :data:`ACCELERATOR_SAMPLE_BATCH`
        elsewhere.

        ``sampler`` is ``"ddim"`` (``steps``, of which at most ``diffusion.ddim_horizon`` are
        used, and ``eta``) or ``"ddpm"`` (every timestep below ``ddim_horizon``; ``steps`` and
        ``eta`` unused; DDIM with ``eta=1`` is DDPM over fewer steps). ``guidance`` is the
        classifier-free guidance weight; ``clip_x0`` clamps each step's x0 estimate. The denoiser
        runs in eval mode; the model's previous mode is restored afterwards.
        """
        if sampler not in SAMPLER_NAMES:
            raise OmigenInputError(f"unknown diffusion sampler {sampler!r} (known: {', '.join(SAMPLER_NAMES)})")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise OmigenInputError(f"number of samples must be a non-negative integer, got {n!r}")
        device = self.diffusion.device
        if batch_size is None:
            batch_size = CPU_SAMPLE_BATCH if device.type == "cpu" else ACCELERATOR_SAMPLE_BATCH
        if batch_size < 1:
            raise OmigenInputError(f"batch_size must be at least 1, got {batch_size!r}")
        if sampler == "ddim":
            self.diffusion.ddim_timesteps(steps)  # reject a bad step count before any work
        labels = self.labels(y, int(n))
        starts = list(range(0, int(n), batch_size))
        # one generator per batch, seeded from ``generator``: the draws do not depend on which thread
        # runs a batch or in which order the batches finish
        seeds = torch.randint(0, 2**62, (len(starts),), generator=generator,
                              device=generator.device if generator is not None else "cpu").tolist()
        gen_device = generator.device if generator is not None else device
        workers = min(len(starts), torch.get_num_threads()) if device.type == "cpu" else 1

        def draw(start: int, seed: int, show: bool) -> Tensor:
            m = min(batch_size, int(n) - start)
            yb = None if labels is None else labels[start:start + m].to(device)
            gen = torch.Generator(device=gen_device).manual_seed(int(seed))
            shape = (m, *self.sample_shape)
            with torch.no_grad():  # grad mode is per thread
                if sampler == "ddpm":
                    x = self.diffusion.ddpm_sample(self.denoiser, shape, yb, guidance=guidance, generator=gen,
                                                   progress=show, clip_x0=clip_x0)
                else:
                    x = self.diffusion.ddim_sample(self.denoiser, shape, yb, steps=steps, eta=eta,
                                                   guidance=guidance, generator=gen, progress=show,
                                                   clip_x0=clip_x0)
            return x.float().cpu()

        was_training = self.training
        self.eval()
        try:
            if workers > 1:
                # Batches of a small denoiser use two CPU threads poorly inside each operation; one
                # batch per thread, each single-threaded, keeps every core busy.
                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                try:
                    with ThreadPoolExecutor(workers) as pool:
                        chunks = list(_progress(pool.map(draw, starts, seeds, [False] * len(starts)),
                                                progress, "sampling batches", total=len(starts)))
                finally:
                    torch.set_num_threads(threads)
            else:
                chunks = [draw(start, seed, progress) for start, seed in zip(starts, seeds)]
        finally:
            self.train(was_training)
        return torch.cat(chunks) if chunks else torch.empty((0, *self.sample_shape))
