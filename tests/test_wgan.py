"""The host's WGAN-GP: the gradient penalty by hand, objectives, training, checkpoints, configs, sampler spec."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from omigen.config import resolve, to_dict
from omigen.errors import OmigenInputError
from omigen.generator_configs import SAMPLERS, WGANConfig, sample_latent_prior
from omigen.train import TrainConfig, Trainer, restore
from omigen.vae import VAE
from omigen.wgan import WGANGP

MU = torch.tensor([[-0.4, 0.3], [0.4, -0.3]])
SD = torch.tensor([0.25, 0.2])


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def toy(n: int = 1024, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    return MU[y] + SD * torch.randn(n, 2, generator=g), y


def quiet(**kw) -> TrainConfig:
    kw.setdefault("progress", False)
    kw.setdefault("log_every", 50)
    return TrainConfig(**kw)


def small(**kw) -> WGANConfig:
    kw.setdefault("latent_dim", 4)
    kw.setdefault("hidden", (32, 32))
    return WGANConfig(**kw)


@pytest.fixture(scope="module")
def trained() -> Trainer:
    torch.manual_seed(0)
    model = WGANGP(2, 2, small(lr_g=2e-4))
    trainer = Trainer(model, toy(), quiet(steps=400, batch_size=64, lr=1e-3, lr_schedule="cosine"), seed=0,
                      device="cpu")
    trainer.fit()
    return trainer


# -- the gradient penalty, by hand -------------------------------------------------------------------

def linear_critic(model: WGANGP, w: list[float], class_w: float = 0.0) -> None:
    """Make the critic ``D(x, y) = w . x (+ class_w * x_0 for y = 0)`` exactly."""
    critic = model.critic
    critic.features = nn.Identity()
    critic.out = nn.Linear(len(w), 1)
    with torch.no_grad():
        critic.out.weight.copy_(torch.tensor([w]))
        critic.out.bias.fill_(0.3)
        if critic.n_classes:
            critic.embed = nn.Embedding(critic.n_classes + 1, len(w))
            critic.embed.weight.zero_()
            critic.embed.weight[0, 0] = class_w


def test_gradient_penalty_of_linear_critics():
    model = WGANGP(2, 2, small(hidden=()))
    real, fake = torch.randn(16, 2, generator=gen(0)), torch.randn(16, 2, generator=gen(1))
    y = torch.tensor([1] * 16)
    # A 1-Lipschitz linear critic has gradient norm 1 everywhere: no penalty.
    linear_critic(model, [0.6, 0.8])
    assert model.gradient_penalty(real, fake, y).item() == pytest.approx(0.0, abs=1e-6)
    # Slope 2: (2 - 1)^2 = 1 at every interpolate; slope 0.5: 0.25.
    linear_critic(model, [1.2, 1.6])
    assert model.gradient_penalty(real, fake, y).item() == pytest.approx(1.0, rel=1e-5)
    linear_critic(model, [0.3, 0.4])
    assert model.gradient_penalty(real, fake, y).item() == pytest.approx(0.25, rel=1e-5)
    # The class term counts: for y = 0 the slope is (0.6 + 0.4, 0.8) = norm sqrt(1.64).
    linear_critic(model, [0.6, 0.8], class_w=0.4)
    expect = (math.sqrt(1.64) - 1) ** 2
    assert model.gradient_penalty(real, fake, torch.zeros(16, dtype=torch.long)).item() == pytest.approx(expect)
    assert model.gradient_penalty(real, fake, y).item() == pytest.approx(0.0, abs=1e-6)
    # The penalty is differentiable (create_graph=True): its gradient reaches the critic's weights.
    linear_critic(model, [1.2, 1.6])
    model.gradient_penalty(real, fake, y).backward()
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w| = 2 * 1 * (0.6, 0.8)
    assert torch.allclose(model.critic.out.weight.grad, torch.tensor([[1.2, 1.6]]), atol=1e-5)


def test_critic_loss_is_the_negated_wasserstein_estimate_plus_penalty():
    model = WGANGP(2, 0, small(hidden=(), gp_weight=10.0)).eval()
    linear_critic(model, [0.6, 0.8])
    x = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    torch.manual_seed(0)
    with torch.no_grad():
        fake = model.generate(torch.randn(2, 4))
    torch.manual_seed(0)
    out = model.critic_loss(x)
    wdist = (x @ torch.tensor([0.6, 0.8])).mean() - (fake @ torch.tensor([0.6, 0.8])).mean()
    assert out["wdist"].item() == pytest.approx(wdist.item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx(-wdist.item(), abs=1e-5)       # penalty 0
    gen_out = model.generator_loss(x)
    assert set(gen_out) == {"loss"} and math.isfinite(gen_out["loss"].item())


def test_objectives_update_their_own_networks():
    model = WGANGP(2, 2, small(n_critic=3, lr_g=1e-4, lr_c=4e-4, betas=(0.0, 0.99)))
    critic, generator = model.objectives()
    assert (critic.name, critic.repeats, critic.lr, critic.betas) == ("critic", 3, 4e-4, (0.0, 0.99))
    assert (generator.name, generator.repeats, generator.lr) == ("generator", 1, 1e-4)
    assert {id(p) for p in critic.params(model)} == {id(p) for p in model.critic.parameters()}
    assert {id(p) for p in generator.params(model)} == {id(p) for p in model.generator.parameters()}
    # Generated samples never get gradients through the critic's loss.
    x, y = toy(32)
    critic.loss(model, (x, y))["loss"].backward()
    assert all(p.grad is None for p in model.generator.parameters())


# -- training on a toy problem -----------------------------------------------------------------------

def test_trained_wgan_separates_the_classes(trained):
    assert all(math.isfinite(v) for r in trained.history for v in r["losses"].values())
    assert {"critic/loss", "critic/wdist", "critic/gp", "generator/loss"} <= set(trained.history[-1]["losses"])
    model = trained.ema
    # WGAN-GP's class means still swing around the data's after a few hundred steps (the game does
    # not settle; Mescheder et al. 2018), so this checks what such a short run reliably learns:
    # bounded samples, each class on its own side, a spread of the data's order.
    means = []
    for k in (0, 1):
        x = model.sample(3000, y=k, generator=gen(k))
        assert x.shape == (3000, 2) and x.dtype == torch.float32 and x.abs().max() <= 1.0
        ratio = x.std(0) / SD
        assert torch.all((ratio > 0.5) & (ratio < 2.0)), (k, ratio)
        means.append(x.mean(0))
    gap = MU[1] - MU[0]
    assert torch.dot(means[1] - means[0], gap) > 0.5 * torch.dot(gap, gap)


def test_unconditional_draws_of_a_conditional_wgan_cover_both_classes(trained):
    x = trained.ema.sample(2000, generator=gen(3))
    first = (torch.cdist(x, MU).argmin(1) == 0).float().mean().item()
    assert 0.1 < first < 0.9
    model = trained.model.train()
    a = model.sample(50, y=[0, 1] * 25, generator=gen(7), batch_size=16)
    assert torch.equal(a, model.sample(50, y=[0, 1] * 25, generator=gen(7), batch_size=16))
    assert not torch.equal(a, model.sample(50, y=[0, 1] * 25, generator=gen(8), batch_size=16))
    assert model.training and model.sample(0).shape == (0, 2)


def test_checkpoint_restore_gives_identical_samples(tmp_path):
    torch.manual_seed(2)
    trainer = Trainer(WGANGP(2, 2, small(n_critic=2)), toy(256), quiet(steps=10, batch_size=64),
                      out_dir=tmp_path, seed=5, device="cpu")
    trainer.fit()
    expected = trainer.ema.sample(100, y=1, generator=gen(11))
    torch.manual_seed(99)
    fresh = restore(WGANGP(2, 2, small(n_critic=2)), tmp_path / "model.ckpt")
    assert torch.equal(fresh.sample(100, y=1, generator=gen(11)), expected)
    raw = restore(WGANGP(2, 2, small(n_critic=2)), tmp_path / "model.ckpt", ema=False)
    assert torch.equal(raw.sample(100, y=1, generator=gen(11)), trainer.model.sample(100, y=1, generator=gen(11)))


def test_unconditional_wgan():
    torch.manual_seed(3)
    x = MU[1] + SD * torch.randn(256, 2, generator=gen(6))
    model = WGANGP(2, config=small())
    assert model.critic.embed is None and model.generator.net[0].in_features == 4
    labels = torch.zeros(256, dtype=torch.long)                # a labelled data set: ignored
    trainer = Trainer(model, (x, labels), quiet(steps=20, batch_size=64, log_every=5), device="cpu")
    trainer.fit()
    assert all(math.isfinite(v) for r in trainer.history for v in r["losses"].values())
    s = trainer.ema.sample(100, generator=gen(0))
    assert s.shape == (100, 2) and s.abs().max() <= 1.0
    with pytest.raises(OmigenInputError, match="unconditional"):
        model.sample(3, y=0)


def test_label_and_count_checks():
    model = WGANGP(2, 2, small())
    assert model.sample(2, y=[-1, 1], generator=gen(0)).shape == (2, 2)
    for bad in (2, -3, [0.5, 1.0], [0, 1, 0]):
        with pytest.raises(OmigenInputError):
            model.sample(2, y=bad)
    for n, bs in ((-1, 8), (2.5, 8), (3, 0)):
        with pytest.raises(OmigenInputError):
            model.sample(n, batch_size=bs)
    with pytest.raises(ValueError, match="labels"):
        model.critic_loss(torch.zeros(4, 2))


# -- configs and the sampler spec ---------------------------------------------------------------------

def test_config_validation_and_round_trip():
    for bad in (dict(latent_dim=0), dict(hidden=(8, -1)), dict(n_critic=0), dict(gp_weight=-1.0),
                dict(lr_g=0.0), dict(lr_c=-1e-4), dict(betas=(0.5,)), dict(betas=(0.5, 1.0)), dict(cond_drop=-0.1)):
        with pytest.raises(OmigenInputError):
            WGANConfig(**bad)
    cfg = resolve(WGANConfig, {"hidden": "128,64", "betas": "0.0,0.99", "lr_g": "1e-4", "n_critic": "3"})
    assert cfg.hidden == (128, 64) and cfg.betas == (0.0, 0.99) and cfg.lr_g == 1e-4 and cfg.lr_c is None
    assert resolve(WGANConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg
    model = WGANGP(7, 3, WGANConfig(hidden=(16, 8), latent_dim=5))
    assert model.generator.net[0].in_features == 5 + 4
    assert model.critic.embed.num_embeddings == 4 and model.critic.out.in_features == 16
    assert model.sample(4, y=2, generator=gen(0)).shape == (4, 7)


def test_latent_prior_sampler_spec():
    (spec,) = SAMPLERS
    spec.validate()
    assert spec.name == "latent-prior" and set(spec.model_kinds) == {WGANGP.kind, VAE.kind} == {"wgan-gp", "vae"}
    wgan, vae = WGANGP(3, 2, small()), VAE(3, 2)
    assert torch.equal(spec.sample(wgan, 5, y=1, generator=gen(0)), wgan.sample(5, y=1, generator=gen(0)))
    assert torch.equal(sample_latent_prior(vae, 5, y=0, generator=gen(0), noise=False),
                       vae.sample(5, y=0, generator=gen(0), noise=False))
    with pytest.raises(OmigenInputError, match="noise"):
        sample_latent_prior(wgan, 2, noise=False)
    with pytest.raises(OmigenInputError, match="latent-prior"):
        sample_latent_prior(nn.Linear(2, 2), 2)
