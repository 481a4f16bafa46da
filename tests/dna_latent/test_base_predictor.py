"""The base-predicting denoiser (``denoiser.predict = "bases"``): its noise estimate, training and runs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from omigen.config import DiffusionConfig
from omigen.errors import OmigenInputError
from omigen.run import run_pipeline
from omigen.train import TrainConfig, Trainer, load_checkpoint
from omigen_dna_latent.autoencoder import DnaAutoencoder, encode_codes
from omigen_dna_latent.config import AutoencoderConfig, DenoiserConfig, DnaLatentConfig
from omigen_dna_latent.denoiser import BasePredictor, build_latent_diffusion
from omigen_dna_latent.pipeline import generate, sample
from omigen_dna_latent.plugin import TINY


def _model(ae, length, n_classes=2, timesteps=50, channels=8, context=0):
    model = build_latent_diffusion(
        DenoiserConfig(channels=channels, heads=2, predict="bases", context=context),
        {"latent_channels": ae.config.latent_channels, "latent_length": length // ae.factor, "n_classes": n_classes,
         "diffusion": DiffusionConfig(timesteps=timesteps, cond_drop=0.2), "autoencoder": ae.config})
    model.set_encoder(ae)
    return model


class _Oracle(nn.Module):
    """A stand-in U-Net that knows the clean bases: +-30 logits, in the U-Net's output layout."""

    def __init__(self, codes: torch.Tensor, factor: int) -> None:
        super().__init__()
        self.codes, self.factor = codes, factor

    def forward(self, x, t, y):
        logits = 60.0 * F.one_hot(self.codes, 4).float() - 30.0
        B, L, _ = logits.shape
        return logits.view(B, L // self.factor, self.factor, 4).permute(0, 2, 3, 1).reshape(B, 4 * self.factor, -1)


def test_noise_estimate_is_the_true_noise_when_the_bases_are_known():
    torch.manual_seed(0)
    ae = DnaAutoencoder(AutoencoderConfig(channels=8, latent_channels=4))
    model = _model(ae, 16)
    den = model.model.denoiser
    assert isinstance(den, BasePredictor) and model.predicts_bases
    codes = torch.randint(0, 4, (3, 16))
    with torch.no_grad():
        z = ae.encode(F.one_hot(codes, 4).float())
        model.set_normalisation(torch.cat([z, 2.0 * z + 1.0]))
        x0 = model.normalise(z)
        den.unet = _Oracle(codes, ae.factor)
        t = torch.tensor([1, 20, 45])
        noise = torch.randn_like(x0)
        x_t = model.model.diffusion.q_sample(x0, t, noise)
        assert (den.logits(x_t, t).argmax(-1) == codes).all()
        torch.testing.assert_close(den(x_t, t), noise, atol=2e-3, rtol=1e-3)
        # the encoder copy is the autoencoder's and its normalisation is the model's
        torch.testing.assert_close(den.encode(F.one_hot(codes, 4).float()), x0)


def test_encoder_copy_is_frozen_and_travels_in_the_state_dict():
    ae = DnaAutoencoder(AutoencoderConfig(channels=8, latent_channels=4))
    model = _model(ae, 16)
    assert not any(p.requires_grad for p in model.model.denoiser.encoder.parameters())
    assert any(key.startswith("model.denoiser.encoder.") for key in model.state_dict())
    assert {"model.denoiser.latent_mean", "model.denoiser.latent_std"} <= set(model.state_dict())


@pytest.mark.parametrize("context", [0, 2])
def test_base_predictor_learns_class_composition(context):
    # 'gc' sequences are GC-rich, 'at' ones AT-rich; the trained model must follow its label.
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, length = 128, 16
    y = np.arange(n) % 2
    probs = np.where(y[:, None] == 0, [[0.05, 0.45, 0.45, 0.05]], [[0.45, 0.05, 0.05, 0.45]])
    codes = np.stack([rng.choice(4, size=length, p=p) for p in probs]).astype(np.int64)
    ae = DnaAutoencoder(AutoencoderConfig(channels=16, latent_channels=4, latent_noise=0.05))
    cfg = TrainConfig(steps=200, batch_size=32, lr=3e-3, ema_decay=0.0, progress=False, log_every=0)
    ae = Trainer(ae, torch.as_tensor(codes), cfg, device="cpu", seed=0).fit() and ae
    model = _model(ae, length, channels=16, context=context)
    model.set_normalisation(encode_codes(ae, codes))
    cfg = TrainConfig(steps=250, batch_size=32, lr=3e-3, ema_decay=0.9, progress=False, log_every=0)
    trainer = Trainer(model, (torch.as_tensor(codes), torch.as_tensor(y)), cfg, device="cpu", seed=0)
    losses = trainer.fit()
    drawn = generate(ae, trainer.ema, ["gc", "at"], {"gc": 40, "at": 40}, seed=0, steps=20)
    gc = np.asarray([(s.count("G") + s.count("C")) / length for s in drawn.sequences])
    assert gc[:40].mean() > 0.7 and gc[40:].mean() < 0.3, (gc[:40].mean(), gc[40:].mean(), losses)
    assert len(set(drawn.sequences[:40])) > 30  # the noise, not only the label, decides each sequence


def _toy_run(tmp_path, seed: int, **options):
    """A tiny ``dna_latent`` run on 40 random 32-bp sequences of two labels; returns the folder and result."""
    rng = np.random.default_rng(seed)
    lines = [f">s{i} label={'ab'[i % 2]}\n{''.join(rng.choice(list('ACGT'), 32))}\n" for i in range(40)]
    (tmp_path / "toy.fa").write_text("".join(lines))
    out = tmp_path / "run"
    overrides = {**TINY, "device": "cpu", "data": str(tmp_path / "toy.fa"), "test_fraction": 0.25,
                 "evaluate": False, "diffusion_train.ckpt_every": 0, **options}
    result, _ = run_pipeline("dna_latent", out_dir=out, overrides=overrides, progress=False)
    return out, result


def test_run_with_a_base_predictor_saves_samples_and_reloads(tmp_path):
    out, result = _toy_run(tmp_path, 0, **{"denoiser.predict": "bases"})
    assert result.synthetic.length == 32
    assert any(k.startswith("model.denoiser.encoder.") for k in load_checkpoint(out / "diffusion.ckpt")["ema"])
    # 20 training steps teach the base composition only, so only determinism is checked here
    assert sample(out, 6, seed=3).sequences.tolist() == sample(out, 6, seed=3).sequences.tolist()


def test_unknown_prediction_target_and_negative_eta_are_rejected():
    with pytest.raises(OmigenInputError, match="denoiser predict must be one of eps, bases"):
        DenoiserConfig(predict="x0").validate()
    with pytest.raises(OmigenInputError, match="eta must be >= 0"):
        DnaLatentConfig(eta=-0.5).validate()


def test_runs_recorded_before_the_options_existed_load_as_noise_predicting(tmp_path):
    out, _ = _toy_run(tmp_path, 1, **{"denoiser.predict": "eps", "eta": 0.0})
    before = sample(out, 4, seed=5).sequences.tolist()
    ckpt = load_checkpoint(out / "diffusion.ckpt")
    del ckpt["run_config"]["config"]["denoiser"]["predict"], ckpt["run_config"]["config"]["eta"]
    torch.save(ckpt, out / "diffusion.ckpt")
    assert sample(out, 4, seed=5).sequences.tolist() == before


def test_context_index_codes_the_preceding_bases():
    from omigen_dna_latent.denoiser import context_index

    codes = torch.tensor([[1, 2, 3, 0, 2]])
    assert context_index(codes, 0).tolist() == [[0, 0, 0, 0, 0]]
    assert context_index(codes, 1).tolist() == [[0, 1, 2, 3, 0]]
    # two bases back: the one just before in the low digit, before the start counts as A
    assert context_index(codes, 2).tolist() == [[0, 1, 2 + 4 * 1, 3 + 4 * 2, 0 + 4 * 3]]


def _cycle_logp(length, batch=5):
    """Log-probabilities of a first-order chain: the base after b is (b + 1) % 4, the first one C."""
    logp = torch.full((batch, length, 4, 4), -30.0)
    logp[:, :, torch.arange(4), (torch.arange(4) + 1) % 4] = 0.0
    return logp


def test_chained_draw_follows_the_preceding_base():
    ae = DnaAutoencoder(AutoencoderConfig(channels=8, latent_channels=4))
    den = build_latent_diffusion(
        DenoiserConfig(channels=8, heads=2, context=1),
        {"latent_channels": 4, "latent_length": 4, "n_classes": 0, "autoencoder": ae.config}).model.denoiser
    assert den.context == 1 and den.unet.out[-1].out_channels == 16 * ae.factor
    drawn = den.draw(_cycle_logp(9), torch.Generator().manual_seed(0))
    assert drawn.tolist() == [[1, 2, 3, 0, 1, 2, 3, 0, 1]] * 5
    # the rows the loss reads for the true sequence are the ones that predict it
    picked = den.base_logits(_cycle_logp(9), drawn)
    assert (picked.argmax(-1) == drawn).all()
    # logits(): the U-Net's channels unpack to (B, L, rows, 4) with the factor bases of a latent position together
    nn.init.normal_(den.unet.out[-1].weight)  # the output layer starts at zero; make the layout visible
    x = torch.randn(2, 4, 4)
    out = den.unet(x, torch.tensor([3, 3]))
    assert out.abs().min() > 0
    logits = den.logits(x, torch.tensor([3, 3]))
    assert logits.shape == (2, 16, 4, 4)
    torch.testing.assert_close(logits[1, ae.factor + 1, 2], out[1].view(ae.factor, 4, 4, 4)[1, 2, :, 1])


def test_context_is_at_most_three_bases():
    with pytest.raises(OmigenInputError, match="context must be 0-3"):
        DenoiserConfig(context=4).validate()


def test_chained_base_predictor_learns_neighbour_dependence():
    # Bases come in identical pairs (AA, CC, ...): uniform per base, but position 2i+1 copies 2i.
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, length = 128, 16
    codes = np.repeat(rng.integers(0, 4, size=(n, length // 2)), 2, axis=1).astype(np.int64)
    ae = DnaAutoencoder(AutoencoderConfig(channels=16, latent_channels=4, latent_noise=0.05))
    cfg = TrainConfig(steps=200, batch_size=32, lr=3e-3, ema_decay=0.0, progress=False, log_every=0)
    ae = Trainer(ae, torch.as_tensor(codes), cfg, device="cpu", seed=0).fit() and ae
    agreement = {}
    for context in (0, 1):
        torch.manual_seed(0)
        model = build_latent_diffusion(
            DenoiserConfig(channels=16, heads=2, context=context),
            {"latent_channels": 4, "latent_length": length // ae.factor, "n_classes": 0,
             "diffusion": DiffusionConfig(timesteps=50), "autoencoder": ae.config})
        model.set_encoder(ae)
        model.set_normalisation(encode_codes(ae, codes))
        cfg = TrainConfig(steps=150, batch_size=32, lr=3e-3, ema_decay=0.9, progress=False, log_every=0)
        trainer = Trainer(model, torch.as_tensor(codes), cfg, device="cpu", seed=0)
        trainer.fit()
        # one step's draw from pure noise, where the latent says nothing about the pairs
        den = trainer.ema.model.denoiser
        with torch.no_grad():
            x, t = torch.randn(200, 4, length // ae.factor, generator=torch.Generator().manual_seed(1)), torch.tensor(49)
            drawn = den.draw(den.logits(x, t.expand(200)).log_softmax(-1), torch.Generator().manual_seed(2))
        agreement[context] = (drawn[:, 0::2] == drawn[:, 1::2]).float().mean().item()
        if context:
            sequences = generate(ae, trainer.ema, [], {None: 60}, seed=0, steps=10).sequences
            assert np.mean([s[0::2] == s[1::2] for s in sequences]) > 0.5
    assert agreement[1] > 0.9 and agreement[0] < 0.5, agreement


def test_runs_recorded_before_the_chained_draw_load_with_independent_bases(tmp_path):
    out, _ = _toy_run(tmp_path, 2, **{"denoiser.context": 0})
    before = sample(out, 4, seed=5).sequences.tolist()
    ckpt = load_checkpoint(out / "diffusion.ckpt")
    del ckpt["run_config"]["config"]["denoiser"]["context"]
    torch.save(ckpt, out / "diffusion.ckpt")
    assert sample(out, 4, seed=5).sequences.tolist() == before
    assert DenoiserConfig().context == 2  # new runs chain each base to the two before it
