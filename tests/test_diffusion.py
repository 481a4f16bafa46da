"""Gaussian diffusion maths, checked against closed-form answers.

For data that are a Gaussian N(mu_k, s^2 I) per class, x_t | k ~ N(sqrt(ab) mu_k, v I) with
v = ab s^2 + 1 - ab, and the exact noise estimate is E[eps | x_t, k] = sqrt(1 - ab) (x_t - sqrt(ab) mu_k) / v
(s = 0 is a single point). With that oracle in place of a network, the samplers must reproduce
the data distribution, and DDIM inversion then decoding must reproduce (or move) the data.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from omigen.config import resolve, to_dict
from omigen.diffusion import (NULL_LABEL, DiffusionConfig, DiffusionModel, GaussianDiffusion, make_betas)
from omigen.errors import OmigenInputError
from omigen.samplers import SAMPLERS, sample_ddim, sample_ddpm


class Oracle(nn.Module):
    """Exact eps for a mixture of isotropic Gaussians N(means[k], std^2 I) with equal weights.

    A label ``y >= 0`` selects its component; ``y < 0`` or ``None`` gives the mixture's estimate.
    """

    def __init__(self, diffusion: GaussianDiffusion, means, std: float) -> None:
        super().__init__()
        self.ab = torch.tensor(diffusion.alphas_cumprod64)
        self.means = torch.as_tensor(means, dtype=torch.float64)
        self.std = std
        self.calls: list[tuple[int, torch.Tensor | None]] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        self.calls.append((x.shape[0], None if y is None else y.clone()))
        ab = self.ab[t].view(-1, 1, 1)
        xd = x.double().unsqueeze(1)                                   # (B, 1, D)
        centred = xd - ab.sqrt() * self.means.unsqueeze(0)            # (B, K, D)
        v = ab * self.std ** 2 + 1 - ab
        eps_k = (1 - ab).sqrt() * centred / v
        weights = torch.softmax(-(centred ** 2).sum(-1) / (2 * v[:, :, 0]), dim=1)   # (B, K)
        if y is not None:
            chosen = torch.nn.functional.one_hot(y.clamp(min=0), len(self.means)).double()
            weights = torch.where((y < 0).view(-1, 1), weights, chosen)
        return (weights.unsqueeze(-1) * eps_k).sum(1).to(x.dtype)


class LabelRecorder(nn.Module):
    """eps = 1 for the null label, y + 2 for label y: makes guidance arithmetic visible."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, torch.Tensor | None]] = []

    def forward(self, x, t, y):
        self.calls.append((x.shape[0], None if y is None else y.clone()))
        if y is None:
            return torch.ones_like(x)
        value = torch.where(y < 0, torch.ones_like(y, dtype=x.dtype), y.to(x.dtype) + 2.0)
        return value.view(-1, *([1] * (x.dim() - 1))).expand_as(x).clone()


class TinyDenoiser(nn.Module):
    """MLP denoiser: x, sinusoidal features of t/T and a label embedding (last row = null)."""

    def __init__(self, dim: int = 2, n_classes: int = 2, timesteps: int = 100, hidden: int = 64) -> None:
        super().__init__()
        self.n_classes, self.timesteps = n_classes, timesteps
        self.label = nn.Embedding(n_classes + 1, 16)
        self.register_buffer("freqs", math.pi * torch.exp(torch.arange(8.0)))
        self.net = nn.Sequential(nn.Linear(dim + 32, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, dim))

    def forward(self, x, t, y):
        phase = t.float()[:, None] / self.timesteps * self.freqs
        null = torch.full_like(t, self.n_classes)
        idx = null if y is None else torch.where(y < 0, null, y)
        return self.net(torch.cat([x, phase.sin(), phase.cos(), self.label(idx)], dim=1))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- configuration and schedules -------------------------------------------------------------

def test_config_is_json_able_and_validated():
    cfg = resolve(DiffusionConfig, {"schedule": "linear", "timesteps": "50"})
    assert cfg.schedule == "linear" and cfg.timesteps == 50
    assert to_dict(cfg) == {"timesteps": 50, "schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02,
                            "cond_drop": 0.1}
    for bad in ({"timesteps": 0}, {"schedule": "sigmoid"}, {"cond_drop": 1.5},
                {"schedule": "linear", "beta_start": 0.5, "beta_end": 0.1}):
        with pytest.raises(OmigenInputError):
            resolve(DiffusionConfig, bad)


def test_cosine_schedule():
    T, s = 1000, 0.008
    d = GaussianDiffusion(DiffusionConfig(timesteps=T, schedule="cosine"))
    ab = d.alphas_cumprod64
    assert np.all(np.diff(ab) < 0) and np.all((ab > 0) & (ab < 1))
    assert ab[-1] < 1e-6
    betas = d.betas.numpy()
    assert betas.max() == pytest.approx(0.999) and np.all(betas <= 0.999 + 1e-7)
    # Away from the clipped end, alpha_bar_t is Nichol & Dhariwal's f(t + 1) / f(0).
    f = lambda u: math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 10, 499, 900):
        assert ab[t] == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert d.alphas_cumprod.dtype == torch.float32
    assert torch.allclose(d.alphas_cumprod, torch.cumprod(1 - d.betas.double(), 0).float())


def test_linear_schedule():
    d = GaussianDiffusion(DiffusionConfig(timesteps=200, schedule="linear", beta_start=1e-3, beta_end=0.05))
    betas = d.betas.double().numpy()
    assert betas[0] == pytest.approx(1e-3) and betas[-1] == pytest.approx(0.05)
    assert np.allclose(np.diff(betas), (0.05 - 1e-3) / 199)
    assert d.alphas_cumprod64[0] == pytest.approx(1 - 1e-3)
    assert np.all(np.diff(d.alphas_cumprod64) < 0)
    assert make_betas(DiffusionConfig(timesteps=1, schedule="cosine")).tolist() == [0.999]


def test_buffers_stay_out_of_checkpoints():
    model = DiffusionModel(TinyDenoiser(), DiffusionConfig(timesteps=100), (2,), n_classes=2)
    assert all(k.startswith("denoiser.") for k in model.state_dict())
    assert model.diffusion.betas.device.type == "cpu"


# --- forward process and loss ----------------------------------------------------------------

def test_q_sample_moments_and_broadcasting():
    d = GaussianDiffusion(DiffusionConfig(timesteps=100))
    x0 = torch.tensor([1.5, -2.0, 0.5])
    n = 40000
    for t in (0, 30, 70, 99):
        noise = torch.randn(n, 3, generator=gen(t))
        xt = d.q_sample(x0.expand(n, 3), torch.full((n,), t), noise)
        ab = d.alphas_cumprod64[t]
        assert torch.allclose(xt.mean(0), math.sqrt(ab) * x0, atol=0.03)
        assert torch.allclose(xt.var(0), torch.full((3,), 1 - ab, dtype=torch.float32), rtol=0.05, atol=2e-4)
    # Per-sample timesteps on (B, 2, 3) samples: each row uses its own alpha_bar.
    x0 = torch.randn(4, 2, 3, generator=gen(1))
    noise = torch.randn(4, 2, 3, generator=gen(2))
    t = torch.tensor([0, 5, 50, 99])
    ab = torch.tensor(d.alphas_cumprod64[t.numpy()], dtype=torch.float32).view(4, 1, 1)
    assert torch.allclose(d.q_sample(x0, t, noise), ab.sqrt() * x0 + (1 - ab).sqrt() * noise, atol=1e-6)


def test_loss_known_values_and_label_dropping():
    d = GaussianDiffusion(DiffusionConfig(timesteps=100, cond_drop=0.3))
    x0 = torch.tensor([[0.7, -1.2]]).expand(4000, 2)
    exact = Oracle(d, [[0.7, -1.2]], std=0.0)
    assert d.loss(exact, x0, generator=gen(0)).item() < 1e-8
    zero = lambda x, t, y: torch.zeros_like(x)  # noqa: E731
    assert d.loss(zero, x0, generator=gen(0)).item() == pytest.approx(1.0, abs=0.05)   # E[noise^2]

    rec = LabelRecorder()
    d.loss(rec, x0, y=torch.ones(4000, dtype=torch.long), generator=gen(3))
    y_seen = rec.calls[-1][1]
    assert set(y_seen.unique().tolist()) == {NULL_LABEL, 1}
    assert (y_seen == NULL_LABEL).float().mean().item() == pytest.approx(0.3, abs=0.03)
    for drop, expected in ((0.0, 0.0), (1.0, 1.0)):
        dd = GaussianDiffusion(DiffusionConfig(timesteps=100, cond_drop=drop))
        dd.loss(rec, x0, y=torch.zeros(4000, dtype=torch.long), generator=gen(3))
        assert (rec.calls[-1][1] == NULL_LABEL).float().mean().item() == expected
    # Same generator, same loss.
    assert d.loss(zero, x0, generator=gen(9)).item() == d.loss(zero, x0, generator=gen(9)).item()


# --- samplers with an exact denoiser ------------------------------------------------------------

def test_single_point_is_recovered_by_every_sampler():
    d = GaussianDiffusion(DiffusionConfig(timesteps=200))
    point = [1.0, -3.0, 0.25]
    oracle = Oracle(d, [point], std=0.0)
    target = torch.tensor(point).expand(64, 3)
    assert torch.allclose(d.ddpm_sample(oracle, (64, 3), generator=gen(0)), target, atol=1e-3)
    for steps in (1, 7, 50, 200):
        for eta in (0.0, 1.0):
            out = d.ddim_sample(oracle, (64, 3), steps=steps, eta=eta, generator=gen(0))
            assert torch.allclose(out, target, atol=1e-3), (steps, eta)


def test_clip_x0_and_progress():
    d = GaussianDiffusion(DiffusionConfig(timesteps=50))
    oracle = Oracle(d, [[5.0, -0.5]], std=0.0)
    # The last step returns the (clipped) x0 estimate itself, for both samplers.
    for out in (d.ddpm_sample(oracle, (8, 2), generator=gen(0), clip_x0=1.0),
                d.ddim_sample(oracle, (8, 2), steps=10, generator=gen(0), clip_x0=1.0)):
        assert torch.allclose(out, torch.tensor([1.0, -0.5]).expand(8, 2), atol=1e-4)
    quiet = d.ddim_sample(oracle, (8, 2), steps=10, eta=1.0, generator=gen(3))
    assert torch.equal(quiet, d.ddim_sample(oracle, (8, 2), steps=10, eta=1.0, generator=gen(3), progress=True))


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_gaussian_data_mean_and_std(sampler):
    d = GaussianDiffusion(DiffusionConfig(timesteps=200))
    mu, s = torch.tensor([2.0, -1.0]), 0.5
    oracle = Oracle(d, [mu.tolist()], std=s)
    if sampler == "ddpm":
        x = d.ddpm_sample(oracle, (6000, 2), generator=gen(1))
    else:
        x = d.ddim_sample(oracle, (6000, 2), steps=50, generator=gen(1))
    # DDIM(50) starts at t = 196, not 199, so it misses a sliver of the signal: a slightly wider mean band.
    assert torch.allclose(x.mean(0), mu, atol=0.05)
    assert torch.allclose(x.std(0), torch.full((2,), s), rtol=0.06)


def test_ddim_with_eta_one_and_all_steps_is_ddpm():
    d = GaussianDiffusion(DiffusionConfig(timesteps=50, schedule="linear", beta_end=0.2))
    assert d.ddim_horizon == 50
    oracle = Oracle(d, [[1.0, 0.0], [-1.0, 2.0]], std=0.3)
    a = d.ddpm_sample(oracle, (256, 2), generator=gen(5))
    b = d.ddim_sample(oracle, (256, 2), steps=50, eta=1.0, generator=gen(5))
    assert torch.allclose(a, b, atol=1e-4)


class Saturating(nn.Module):
    """An oracle whose eps saturates smoothly at +-5, as a trained network's output is bounded."""

    def __init__(self, oracle: Oracle) -> None:
        super().__init__()
        self.oracle = oracle

    def forward(self, x, t, y):
        return 5.0 * torch.tanh(self.oracle(x, t, y) / 5.0)


def test_ddpm_on_the_cosine_schedule_survives_a_bounded_denoiser():
    # The cosine schedule's last beta hits the 0.999 clip. Starting DDPM there divided the first x0
    # estimate by sqrt(alpha_bar) ~ 5e-5, and this denoiser's samples came out with SD 320, not 0.5.
    d = GaussianDiffusion(DiffusionConfig(timesteps=1000, schedule="cosine"))
    assert d.ddim_horizon == 999
    x = d.ddpm_sample(Saturating(Oracle(d, [[1.0, -1.0]], std=0.5)), (2000, 2), generator=gen(4))
    assert torch.allclose(x.mean(0), torch.tensor([1.0, -1.0]), atol=0.05)
    assert torch.allclose(x.std(0), torch.full((2,), 0.5), rtol=0.1)


def test_ddim_inversion_reconstructs_and_moves_between_classes():
    d = GaussianDiffusion(DiffusionConfig(timesteps=1000))
    mu = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])
    s = 0.5
    oracle = Oracle(d, mu.tolist(), std=s)
    x = mu[0] + s * torch.randn(500, 2, generator=gen(2))
    y0, y1 = torch.zeros(500, dtype=torch.long), torch.ones(500, dtype=torch.long)
    z = d.ddim_invert(oracle, x, y0, steps=100)
    assert torch.allclose(z.std(0), torch.ones(2), atol=0.1)        # the latent is close to N(0, I)
    assert (d.ddim_decode(oracle, z, y0, steps=100) - x).abs().mean() < 0.03
    # Both classes share s, so the probability-flow map sends x to x + (mu_1 - mu_0).
    moved = d.ddim_decode(oracle, z, y1, steps=100)
    assert (moved - (x + mu[1] - mu[0])).abs().mean() < 0.05
    # More steps, smaller inversion error.
    err = [(d.ddim_decode(oracle, d.ddim_invert(oracle, x, y0, steps=k), y0, steps=k) - x).abs().mean()
           for k in (10, 100)]
    assert err[1] < err[0] / 4


def test_step_counts_and_bounds():
    # The cosine schedule's last step (beta clipped at 0.999) is left out of DDIM: 99 usable steps.
    d = GaussianDiffusion(DiffusionConfig(timesteps=100))
    assert d.ddim_horizon == 99
    assert d.ddim_timesteps(1).tolist() == [0]
    assert d.ddim_timesteps(4).tolist() == [0, 24, 49, 74]
    assert d.ddim_timesteps(7).tolist() == [0, 14, 28, 42, 56, 70, 84]
    assert d.ddim_timesteps(99).tolist() == d.ddim_timesteps(1000).tolist() == list(range(99))
    linear = GaussianDiffusion(DiffusionConfig(timesteps=100, schedule="linear"))
    assert linear.ddim_horizon == 100 and linear.ddim_timesteps(4).tolist() == [0, 25, 50, 75]
    assert linear.ddim_timesteps(100).tolist() == list(range(100))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(OmigenInputError):
            d.ddim_timesteps(bad)
    with pytest.raises(OmigenInputError):
        d.ddim_sample(LabelRecorder(), (2, 2), eta=-1.0)
    with pytest.raises(ValueError, match="x_T"):
        d.ddim_sample(LabelRecorder(), (2, 2), x_T=torch.zeros(3, 2))


# --- classifier-free guidance ------------------------------------------------------------------

def test_guidance_arithmetic_and_single_batched_call():
    d = GaussianDiffusion(DiffusionConfig(timesteps=20))
    x = torch.zeros(3, 2)
    y = torch.tensor([0, 1, NULL_LABEL])
    rec = LabelRecorder()
    cond, null = torch.tensor([2.0, 3.0, 1.0]), torch.ones(3)
    assert torch.equal(d.predict_eps(rec, x, 5, y, guidance=1.0)[:, 0], cond)
    assert torch.equal(d.predict_eps(rec, x, 5, y, guidance=0.0)[:, 0], null)
    rec.calls.clear()
    guided = d.predict_eps(rec, x, 5, y, guidance=2.5)[:, 0]
    assert torch.allclose(guided, null + 2.5 * (cond - null))
    assert len(rec.calls) == 1 and rec.calls[0][0] == 6
    assert rec.calls[0][1].tolist() == [0, 1, NULL_LABEL] + [NULL_LABEL] * 3
    assert torch.equal(d.predict_eps(rec, x, 5, None, guidance=3.0)[:, 0], null)

    rec.calls.clear()
    d.ddim_sample(rec, (3, 2), y=y, steps=7, guidance=2.0, generator=gen(0))
    assert [b for b, _ in rec.calls] == [6] * 7
    rec.calls.clear()
    d.ddpm_sample(rec, (3, 2), y=y, guidance=2.0, generator=gen(0))
    assert d.ddim_horizon == 19  # the cosine schedule's clipped last step is skipped
    assert [b for b, _ in rec.calls] == [6] * 19


class SelfGuided(nn.Module):
    """A denoiser that guides itself and draws its own random numbers from the sampler's generator."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def guided_eps(self, x, t, y, guidance, generator):
        self.calls.append((int(t[0]), guidance, generator))
        return torch.rand(x.shape, generator=generator)


def test_a_self_guided_denoiser_gets_the_guidance_and_the_samplers_generator():
    d = GaussianDiffusion(DiffusionConfig(timesteps=20))
    den = SelfGuided()
    y = torch.tensor([0, 1])
    g = gen(3)
    first = d.ddim_sample(den, (2, 2), y=y, steps=4, eta=1.0, guidance=2.0, generator=g)
    assert [c[0] for c in den.calls] == sorted((c[0] for c in den.calls), reverse=True) and len(den.calls) == 4
    assert all(c[1] == 2.0 and c[2] is g for c in den.calls)
    torch.testing.assert_close(d.ddim_sample(den, (2, 2), y=y, steps=4, eta=1.0, guidance=2.0, generator=gen(3)), first)
    den.calls.clear()
    d.ddpm_sample(den, (2, 2), y=y, guidance=0.5, generator=g)
    assert len(den.calls) == d.ddim_horizon and all(c[1] == 0.5 and c[2] is g for c in den.calls)


def test_guidance_on_the_oracle_pushes_past_the_class_mean():
    d = GaussianDiffusion(DiffusionConfig(timesteps=200))
    mu = [[-1.0, 0.0], [1.0, 0.0]]
    oracle = Oracle(d, mu, std=0.4)
    y = torch.ones(2000, dtype=torch.long)
    plain = d.ddim_sample(oracle, (2000, 2), y=y, steps=50, guidance=1.0, generator=gen(4))
    strong = d.ddim_sample(oracle, (2000, 2), y=y, steps=50, guidance=3.0, generator=gen(4))
    assert plain[:, 0].mean().item() == pytest.approx(1.0, abs=0.05)
    assert strong[:, 0].mean().item() > plain[:, 0].mean().item() + 0.1


# --- DiffusionModel ---------------------------------------------------------------------------

def test_tiny_model_learns_two_classes():
    torch.manual_seed(0)
    T = 100
    model = DiffusionModel(TinyDenoiser(timesteps=T), DiffusionConfig(timesteps=T), (2,), n_classes=2)
    mu = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = gen(0)
    for _ in range(300):
        y = torch.randint(0, 2, (256,), generator=g)
        x = mu[y] + 0.3 * torch.randn(256, 2, generator=g)
        loss = model.loss(x, y, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    labels = torch.tensor([0, 1]).repeat_interleave(300)
    # DDIM asked for all 100 steps takes the 99 usable ones: a step from the clipped last one would blow up.
    for sampler, steps in (("ddim", 50), ("ddim", 100), ("ddpm", 50)):
        x = model.sample(600, y=labels, sampler=sampler, steps=steps, generator=gen(1), batch_size=256)
        assert x.shape == (600, 2) and x.dtype == torch.float32
        for k in (0, 1):
            assert torch.linalg.norm(x[labels == k].mean(0) - mu[k]) < 0.5, (sampler, steps, k)
            assert torch.all(x[labels == k].std(0) < 0.6), (sampler, steps, k)
    # Unconditional draws (null label, learnt through cond_drop) cover both classes.
    x = model.sample(600, y=None, steps=50, generator=gen(2))
    near_first = (torch.cdist(x, mu).argmin(1) == 0).float().mean().item()
    assert 0.3 < near_first < 0.7
    assert model.training                               # sample() restores the mode it found


def test_model_sampling_is_seeded_and_chunked():
    T = 30
    torch.manual_seed(1)
    model = DiffusionModel(TinyDenoiser(dim=3, n_classes=3, timesteps=T), DiffusionConfig(timesteps=T), (3,),
                           n_classes=3)
    for steps in (1, 7, 30):
        a = model.sample(10, y=2, steps=steps, eta=0.5, generator=gen(7), batch_size=4)
        b = model.sample(10, y=2, steps=steps, eta=0.5, generator=gen(7), batch_size=4)
        c = model.sample(10, y=2, steps=steps, eta=0.5, generator=gen(8), batch_size=4)
        assert a.shape == (10, 3) and torch.equal(a, b) and not torch.equal(a, c)
    a = model.sample(5, sampler="ddpm", generator=gen(7))
    assert torch.equal(a, model.sample(5, sampler="ddpm", generator=gen(7)))
    assert model.sample(0, y=1).shape == (0, 3)

    # Labels follow their chunk: an oracle with one point per class puts every sample on its own point.
    points = [[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [-5.0, 0.0, 5.0]]
    exact = DiffusionModel(nn.Identity(), DiffusionConfig(timesteps=T), (3,), n_classes=3)
    exact.denoiser = Oracle(exact.diffusion, points, std=0.0)
    y = torch.tensor([2, 0, 1, 1, 2, 0, 0])
    out = exact.sample(7, y=y, steps=10, batch_size=3, generator=gen(0))
    assert torch.allclose(out, torch.tensor(points)[y], atol=1e-3)


def test_cpu_sampling_draws_the_same_whatever_the_thread_count():
    # several batches run one per thread when torch has more than one; each batch has its own
    # generator, so the draws match the single-threaded ones exactly, for DDPM noise too
    T = 20
    torch.manual_seed(3)
    model = DiffusionModel(TinyDenoiser(dim=3, n_classes=2, timesteps=T), DiffusionConfig(timesteps=T), (3,),
                           n_classes=2)
    before = torch.get_num_threads()
    try:
        draws = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            draws[threads] = [model.sample(11, y=1, sampler=sampler, steps=5, eta=0.5, generator=gen(4),
                                           batch_size=3) for sampler in ("ddim", "ddpm")]
            assert torch.get_num_threads() == threads  # restored after the threaded batches
    finally:
        torch.set_num_threads(before)
    for one, two in zip(draws[1], draws[2]):
        assert one.shape == (11, 3) and torch.equal(one, two)
    assert not torch.equal(draws[1][0][:3], draws[1][0][3:6])  # batches do not share one stream


def test_model_label_checks():
    cond = DiffusionModel(TinyDenoiser(), DiffusionConfig(timesteps=10), (2,), n_classes=2)
    uncond = DiffusionModel(TinyDenoiser(), DiffusionConfig(timesteps=10), (2,))
    assert cond.labels(None, 3).tolist() == [NULL_LABEL] * 3
    assert cond.labels(1, 2).tolist() == [1, 1]
    assert cond.labels(np.array([0, NULL_LABEL]), 2).tolist() == [0, NULL_LABEL]
    assert uncond.labels(None, 3) is None
    for model, y in ((uncond, 0), (cond, 2), (cond, -3), (cond, [0.5, 1.0]), (cond, [0, 1, 0])):
        with pytest.raises(OmigenInputError):
            model.sample(2, y=y, steps=2)
    with pytest.raises(OmigenInputError):
        cond.sample(2, sampler="euler")
    with pytest.raises(OmigenInputError):
        cond.sample(2, steps=0)
    # More DDIM steps than timesteps means all of them.
    assert torch.equal(cond.sample(2, steps=50, generator=gen(0)), cond.sample(2, steps=9, generator=gen(0)))
    with pytest.raises(ValueError):
        cond.loss(torch.zeros(4, 2))
    # An unconditional model ignores the labels a labelled data set hands it.
    rec = LabelRecorder()
    uncond.denoiser = rec
    uncond.loss(torch.zeros(4, 2), torch.ones(4, dtype=torch.long))
    assert rec.calls[-1][1] is None


# --- sampler specs ----------------------------------------------------------------------------

def test_sampler_specs_call_the_model():
    assert [s.name for s in SAMPLERS] == ["ddpm", "ddim"]
    for spec in SAMPLERS:
        spec.validate()
        assert spec.model_kinds == (DiffusionModel.kind,)
    torch.manual_seed(2)
    model = DiffusionModel(TinyDenoiser(timesteps=20), DiffusionConfig(timesteps=20), (2,), n_classes=2)
    assert torch.equal(sample_ddim(model, 6, y=1, steps=5, generator=gen(3)),
                       model.sample(6, y=1, sampler="ddim", steps=5, generator=gen(3)))
    assert torch.equal(sample_ddpm(model, 6, y=0, guidance=2.0, generator=gen(3)),
                       model.sample(6, y=0, sampler="ddpm", guidance=2.0, generator=gen(3)))
    with pytest.raises(OmigenInputError, match="steps"):
        sample_ddpm(model, 2, steps=10)
    with pytest.raises(OmigenInputError, match="temperature"):
        sample_ddim(model, 2, temperature=0.5)
    with pytest.raises(OmigenInputError, match="gaussian-diffusion"):
        sample_ddim(nn.Linear(2, 2), 2)


def test_samplers_module_does_not_import_torch():
    code = "import sys, omigen.samplers; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
