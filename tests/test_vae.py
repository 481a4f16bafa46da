"""The host's continuous VAE: hand-checked loss terms, KL warm-up, training, checkpoints, configs."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from omigen.config import resolve, to_dict
from omigen.errors import OmigenInputError
from omigen.generator_configs import VAEConfig
from omigen.train import TrainConfig, Trainer, restore
from omigen.vae import VAE

# Two classes in 2-D, each a correlated Gaussian: the correlation is only reachable through the
# latent, since the likelihood is diagonal.
MU = torch.tensor([[-0.4, 0.3], [0.4, -0.3]])
SD = torch.tensor([0.3, 0.2])
CORR = 0.8


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def toy(n: int = 1024, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    e = torch.randn(n, 2, generator=g)
    z = torch.stack([e[:, 0], CORR * e[:, 0] + math.sqrt(1 - CORR ** 2) * e[:, 1]], dim=1)
    return MU[y] + SD * z, y


def quiet(**kw) -> TrainConfig:
    kw.setdefault("progress", False)
    kw.setdefault("log_every", 50)
    return TrainConfig(**kw)


def small(**kw) -> VAEConfig:
    kw.setdefault("latent_dim", 2)
    kw.setdefault("hidden", (32, 32))
    return VAEConfig(**kw)


@pytest.fixture(scope="module")
def trained() -> Trainer:
    torch.manual_seed(0)
    steps = 300
    model = VAE(2, n_classes=2, config=small(kl_warmup=0.2), train_steps=steps)
    trainer = Trainer(model, toy(), quiet(steps=steps, batch_size=128, lr=3e-3), seed=0, device="cpu")
    trainer.fit()
    return trainer


# -- the loss, by hand ------------------------------------------------------------------------------

def pinned(config: VAEConfig, out_bias: torch.Tensor, n_classes: int = 0) -> VAE:
    """A VAE whose encoder says z ~ N(0, e^-30) (so z = 0) and whose decoder outputs ``out_bias``."""
    model = VAE(len(out_bias), n_classes, config)
    with torch.no_grad():
        enc, dec = model.encoder.net[-1], model.decoder.net[-1]
        enc.weight.zero_()
        enc.bias.copy_(torch.cat([torch.zeros(config.latent_dim), torch.full((config.latent_dim,), -30.0)]))
        dec.weight.zero_()
        dec.bias.copy_(out_bias)
    return model


def test_loss_terms_match_the_gaussian_formulas():
    x = torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    b = torch.tensor([0.5, 1.0, -0.5])
    # Fixed likelihood std 0.5: NLL = 0.5 * sum((x - b)^2 / 0.25 + log 0.25 + log 2 pi), averaged over rows.
    model = pinned(small(latent_dim=3, obs_std=0.5), b).eval()
    out = model.loss(x)
    sq = ((x - b) ** 2).sum(1)                                    # [0.5, 1.5]
    expect = (0.5 * (sq / 0.25 + 3 * math.log(0.25) + 3 * math.log(2 * math.pi))).mean()
    assert out["recon"].item() == pytest.approx(expect.item(), rel=1e-5)
    # KL of N(0, e^-30) from N(0, 1) per latent dimension: 0.5 (e^-30 - 1 + 30).
    assert out["kl"].item() == pytest.approx(3 * 0.5 * (math.exp(-30) + 29.0), rel=1e-6)
    assert out["kl_weight"].item() == 1.0
    assert out["loss"].item() == pytest.approx(out["recon"].item() + out["kl"].item(), rel=1e-6)

    # Calibrated variance: each feature's variance is its mean squared error, so the NLL is
    # 0.5 * sum_j (1 + log v_j + log 2 pi); the running estimate takes the first batch's value.
    model = pinned(small(latent_dim=3), b)
    v = ((x - b) ** 2).mean(0)                                    # [0.125, 1.0, 0.125]
    out = model.loss(x)
    expect = 0.5 * (3 + v.log().sum() + 3 * math.log(2 * math.pi))
    assert out["recon"].item() == pytest.approx(expect.item(), rel=1e-5)
    assert torch.allclose(model.obs_var, v)
    # The second step averages the two batches' estimates; a perfect fit is floored at min_std^2.
    model.loss(b.expand(2, 3).clone())
    assert torch.allclose(model.obs_var, (v + VAEConfig().min_std ** 2) / 2)


def test_gradients_flow_and_reach_both_networks():
    x, y = toy(64)
    model = VAE(2, 2, small())
    out = model.loss(x, y)
    out["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.encoder.net[0].weight.grad.abs().sum() > 0 and model.decoder.net[0].weight.grad.abs().sum() > 0


# -- KL warm-up -------------------------------------------------------------------------------------

def test_kl_warmup_ramps_with_the_step_counter():
    x, y = toy(32)
    model = VAE(2, 2, small(beta=2.0, kl_warmup=0.5), train_steps=8)   # warm-up over 4 steps
    assert model.warmup_steps == 4
    weights = []
    for _ in range(6):
        out = model.loss(x, y)
        weights.append(out["kl_weight"].item())
        assert out["loss"].item() == pytest.approx(out["recon"].item() + weights[-1] * out["kl"].item(), rel=1e-5)
    assert weights == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
    assert int(model.step_count) == 6
    # Neither evaluation nor a no-grad call advances the counter.
    with torch.no_grad():
        model.loss(x, y)
    model.eval().loss(x, y)
    assert int(model.step_count) == 6
    # No warm-up: the full beta from the first step.
    assert VAE(2, 2, small(beta=0.5), train_steps=100).loss(x, y)["kl_weight"].item() == 0.5


def test_warmup_counter_follows_the_trainer_and_its_checkpoint(tmp_path):
    torch.manual_seed(1)
    model = VAE(2, 2, small(kl_warmup=1.0), train_steps=10)
    trainer = Trainer(model, toy(64), quiet(steps=6, batch_size=32, log_every=1), out_dir=tmp_path, device="cpu")
    trainer.fit()
    assert [r["losses"]["kl_weight"] for r in trainer.history] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    fresh = restore(VAE(2, 2, small(kl_warmup=1.0), train_steps=10), tmp_path / "model.ckpt", ema=False)
    assert int(fresh.step_count) == 6 and torch.equal(fresh.obs_var, model.obs_var)


# -- training on a toy problem -----------------------------------------------------------------------

def test_trained_vae_matches_each_class(trained):
    assert all(math.isfinite(v) for r in trained.history for v in r["losses"].values())
    model = trained.ema
    for k in (0, 1):
        x = model.sample(3000, y=k, generator=gen(k))
        assert x.shape == (3000, 2) and x.dtype == torch.float32
        assert torch.all((x.mean(0) - MU[k]).abs() < 0.3 * SD), k
        ratio = x.std(0) / SD
        assert torch.all((ratio > 0.5) & (ratio < 1.5)), (k, ratio)
        # The correlation lives in the latent: a diagonal likelihood alone would give ~0.
        assert torch.corrcoef(x.T)[0, 1] > 0.5
    # The decoder means alone are narrower than the data: the likelihood noise is the rest.
    means = model.sample(3000, y=0, generator=gen(5), noise=False)
    assert torch.all(means.std(0) < model.sample(3000, y=0, generator=gen(5)).std(0))


def test_unconditional_draws_of_a_conditional_vae_cover_both_classes(trained):
    x = trained.ema.sample(2000, generator=gen(3))
    first = (torch.cdist(x, MU).argmin(1) == 0).float().mean().item()
    assert 0.3 < first < 0.7
    # Labels follow their chunk: alternating labels drawn 3 at a time land by their own class.
    y = torch.tensor([0, 1] * 10)
    x = trained.ema.sample(20, y=y, generator=gen(4), batch_size=3, noise=False)
    assert torch.equal(torch.cdist(x, MU).argmin(1), y)


def test_sampling_is_seeded_and_restores_the_mode(trained):
    model = trained.model.train()
    a = model.sample(50, y=1, generator=gen(7), batch_size=16)
    assert torch.equal(a, model.sample(50, y=1, generator=gen(7), batch_size=16))
    assert not torch.equal(a, model.sample(50, y=1, generator=gen(8), batch_size=16))
    assert model.training
    assert model.sample(0, y=1).shape == (0, 2)


def test_checkpoint_restore_gives_identical_samples(tmp_path):
    torch.manual_seed(2)
    trainer = Trainer(VAE(2, 2, small(), train_steps=30), toy(256), quiet(steps=30, batch_size=64),
                      out_dir=tmp_path, seed=5, device="cpu")
    trainer.fit()
    expected = trainer.ema.sample(100, y=torch.arange(100) % 2, generator=gen(11))
    torch.manual_seed(99)                                   # other initial weights
    fresh = restore(VAE(2, 2, small(), train_steps=30), tmp_path / "model.ckpt")
    assert torch.equal(fresh.sample(100, y=torch.arange(100) % 2, generator=gen(11)), expected)
    with pytest.raises(OmigenInputError, match="does not fit"):
        restore(VAE(3, 2, small()), tmp_path / "model.ckpt")


def test_unconditional_vae():
    torch.manual_seed(3)
    x = MU[0] + SD * torch.randn(512, 2, generator=gen(6))
    model = VAE(2, config=small())
    labels = torch.ones(512, dtype=torch.long)               # a labelled data set: ignored
    trainer = Trainer(model, (x, labels), quiet(steps=150, batch_size=128, lr=3e-3), device="cpu")
    trainer.fit()
    s = trainer.ema.sample(3000, generator=gen(0))
    assert torch.all((s.mean(0) - MU[0]).abs() < 0.3 * SD)
    assert torch.all((s.std(0) / SD > 0.5) & (s.std(0) / SD < 1.5))
    with pytest.raises(OmigenInputError, match="unconditional"):
        model.sample(3, y=0)


def test_label_and_count_checks():
    model = VAE(2, 2, small())
    assert model.sample(2, y=[-1, 1], generator=gen(0)).shape == (2, 2)
    for bad in (2, -3, [0.5, 1.0], [0, 1, 0]):
        with pytest.raises(OmigenInputError):
            model.sample(2, y=bad)
    for n, bs in ((-1, 8), (2.5, 8), (True, 8), (3, 0)):
        with pytest.raises(OmigenInputError):
            model.sample(n, batch_size=bs)
    with pytest.raises(ValueError, match="labels"):
        model.loss(torch.zeros(4, 2))


# -- configs --------------------------------------------------------------------------------------

def test_config_validation_and_round_trip():
    for bad in (dict(latent_dim=0), dict(hidden=(32, 0)), dict(hidden="wide"), dict(beta=-1.0),
                dict(kl_warmup=1.5), dict(dropout=1.0), dict(obs_std=0.0), dict(min_std=-1.0),
                dict(cond_drop=1.0)):
        with pytest.raises(OmigenInputError):
            VAEConfig(**bad)
    cfg = resolve(VAEConfig, {"hidden": "64,32", "obs_std": "none", "beta": "0.5"})
    assert cfg.hidden == (64, 32) and cfg.obs_std is None and cfg.beta == 0.5
    again = resolve(VAEConfig, json.loads(json.dumps(to_dict(cfg))))
    assert again == cfg
    model = VAE(5, 3, VAEConfig(hidden=[16, 8], dropout=0.2))
    assert [m.out_features for m in model.encoder.net if isinstance(m, nn.Linear)] == [16, 8, 32]
    assert [m.out_features for m in model.decoder.net if isinstance(m, nn.Linear)] == [8, 16, 5]
    assert any(isinstance(m, nn.Dropout) for m in model.decoder.net)
    assert model.encoder.net[0].in_features == 5 + 4          # features + one-hot of 3 classes and "none"


def test_config_module_does_not_import_torch():
    code = "import sys, omigen.generator_configs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
