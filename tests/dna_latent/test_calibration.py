"""Calibration: positional, per-label Markov log-ratios of real against the model's own draws tilt the draw."""

import numpy as np
import pytest
import torch

from omigen.errors import OmigenInputError
from omigen.run import run_pipeline
from omigen_dna_latent import calibration
from omigen_dna_latent.autoencoder import DnaAutoencoder
from omigen_dna_latent.config import AutoencoderConfig, CalibrationConfig, DenoiserConfig
from omigen_dna_latent.denoiser import build_latent_diffusion
from omigen_dna_latent.pipeline import CALIBRATION, load_models, sample
from omigen_dna_latent.plugin import TINY


def test_chain_log_probs_by_hand():
    # class 0: AAAA, class 1: ACAC; bins of 2 positions; order 1 (before the start counts as A)
    codes = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 1]])
    logp = calibration.chain_log_probs(codes, torch.tensor([0, 1]), 2, order=1, bin_width=2, pseudocount=1.0)
    assert logp.shape == (2, 2, 4, 4)
    # class 1, bin 0: A after (start) A, C after A -> after A: A 1, C 1 (+1 each of 4 bases: 6 in all)
    np.testing.assert_allclose(logp[1, 0, 0].exp().numpy(), np.array([2, 2, 1, 1]) / 6, rtol=1e-6)
    # class 1, bin 1: A after C, C after A
    np.testing.assert_allclose(logp[1, 1, 0].exp().numpy(), np.array([1, 2, 1, 1]) / 5, rtol=1e-6)
    np.testing.assert_allclose(logp[1, 1, 1].exp().numpy(), np.array([2, 1, 1, 1]) / 5, rtol=1e-6)
    # class 0, bin 1: A after A twice; after C nothing was seen: uniform
    np.testing.assert_allclose(logp[0, 1, 0].exp().numpy(), np.array([3, 1, 1, 1]) / 6, rtol=1e-6)
    np.testing.assert_allclose(logp[0, 1, 1].exp().numpy(), np.full(4, 0.25), rtol=1e-6)
    # no labels: one class holding both sequences
    pooled = calibration.chain_log_probs(codes, None, 0, order=1, bin_width=2, pseudocount=1.0)
    np.testing.assert_allclose(pooled[0, 1, 0].exp().numpy(), np.array([3, 2, 1, 1]) / 7, rtol=1e-6)
    with pytest.raises(OmigenInputError, match="one class index"):
        calibration.chain_log_probs(codes, torch.tensor([0, 2]), 2, order=1, bin_width=2)


def _denoiser(n_classes=2):
    ae = DnaAutoencoder(AutoencoderConfig(channels=8, latent_channels=4))
    return build_latent_diffusion(DenoiserConfig(channels=8, heads=2, context=2),
                                  {"latent_channels": 4, "latent_length": 10, "n_classes": n_classes,
                                   "autoencoder": ae.config}).model.denoiser


def _positional(rng, n, length, first, second):
    """Sequences whose first half draws bases with probabilities ``first`` and the second half ``second``."""
    half = length // 2
    return np.concatenate([rng.choice(4, (n, half), p=first), rng.choice(4, (n, length - half), p=second)], axis=1)


def test_one_round_moves_a_miscalibrated_draw_to_the_real_positional_composition():
    """A 'model' that writes the same composition everywhere, for data whose halves differ and whose labels
    differ: after one round of calibration its draw has each label's composition in each half."""
    rng = np.random.default_rng(0)
    real0 = _positional(rng, 1500, 40, [0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7])  # A then T
    real1 = _positional(rng, 1500, 40, [0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1])  # C then G
    codes = torch.as_tensor(np.concatenate([real0, real1]))
    labels = torch.tensor([0] * 1500 + [1] * 1500)
    den = _denoiser()
    model_logp = torch.full((1000, 40, 16, 4), 0.25).log()  # the U-Net: uniform bases, whatever the context
    y = torch.tensor([0] * 500 + [1] * 500)

    def draw(table, seed):
        den.set_calibration(table, 20, 1.0)
        return den.draw(model_logp, torch.Generator().manual_seed(seed), y), y

    config = CalibrationConfig(rounds=1, order=0, bin_width=20, step=1.0)
    table = calibration.fit_table(codes, labels, 2, draw, config, seed=1)
    assert table.shape == (2, 2, 1, 4)
    drawn, _ = draw(table, 99)
    for cls, (first, second) in enumerate(((0, 3), (1, 2))):
        rows = drawn[y == cls]
        assert (rows[:, :20] == first).float().mean().item() == pytest.approx(0.7, abs=0.03)
        assert (rows[:, 20:] == second).float().mean().item() == pytest.approx(0.7, abs=0.03)
    half = calibration.fit_table(codes, labels, 2, draw, CalibrationConfig(rounds=1, order=0, bin_width=20, step=0.5),
                                 seed=1)
    assert torch.allclose(half, table / 2)  # a damped round adds that fraction of the same log-ratio
    two = calibration.fit_table(codes, labels, 2, draw, CalibrationConfig(rounds=2, order=0, bin_width=20, step=0.5),
                                seed=1)
    # the second round adds half of what the first left: closer to the full ratio, not past it
    assert ((two - half).abs().sum() > 0) and ((two - table).abs().mean() < (half - table).abs().mean())
    den.set_calibration(table, 20, 0.0)  # weight 0: the model's own draw again
    plain = den.draw(model_logp, torch.Generator().manual_seed(99), y)
    assert (plain == 0).float().mean().item() == pytest.approx(0.25, abs=0.02)
    # the null label of guidance is not tilted
    null = den.draw(model_logp, torch.Generator().manual_seed(5), torch.full((1000,), -1))
    den.set_calibration(table, 20, 1.0)
    assert torch.equal(den.draw(model_logp, torch.Generator().manual_seed(5), torch.full((1000,), -1)), null)


def test_a_draw_that_already_matches_gets_no_tilt_and_an_unlabelled_table_tilts_every_row():
    codes = torch.as_tensor(np.random.default_rng(1).integers(0, 4, (50, 12)))
    table = calibration.fit_table(codes, None, 0, lambda table, seed: (codes, None),
                                  CalibrationConfig(rounds=2, order=2, bin_width=4))
    assert table.shape == (1, 3, 16, 4) and torch.equal(table, torch.zeros_like(table))
    den = _denoiser(n_classes=0)
    flat = torch.zeros(400, 12, 16, 4).log_softmax(-1)
    favour_g = torch.zeros(1, 3, 16, 4)
    favour_g[..., 2] = 3.0
    den.set_calibration(favour_g, 4, 1.0)
    drawn = den.draw(flat, torch.Generator().manual_seed(0), None)
    assert (drawn == 2).float().mean().item() == pytest.approx(np.exp(3) / (np.exp(3) + 3), abs=0.03)
    with pytest.raises(ValueError, match="calibration table"):
        den.set_calibration(torch.zeros(2, 4), 4)


def test_runs_save_the_table_and_samples_use_it(tmp_path):
    out = tmp_path / "run"
    overrides = {**TINY, "device": "cpu", "evaluate": False, "diffusion_train.ckpt_every": 0}
    run_pipeline("dna_latent", out_dir=out, overrides=overrides, progress=False)
    saved = calibration.load(out / CALIBRATION)
    assert saved["table"].shape == (4, 10, 4 ** 4, 4)  # 4 cell types, 200 bp in bins of 20, order 4
    assert saved["sampling"]["steps"] == TINY["sample_steps"] and saved["config"]["n_per_class"] == 16
    assert saved["table"].abs().max() > 0.5  # a tiny model is far from the data
    _, model, _, _ = load_models(out)
    den = model.model.denoiser
    assert torch.equal(den.calibration, saved["table"]) and den.calibration_weight == 1.0
    with_table = sample(out, 6, seed=3).sequences.tolist()
    (out / CALIBRATION).rename(tmp_path / "kept.pt")
    without = sample(out, 6, seed=3).sequences.tolist()
    assert with_table != without
    (out / CALIBRATION).write_bytes(b"not a torch file")
    with pytest.raises(OmigenInputError, match="cannot be read"):
        load_models(out)
    # rounds = 0: no calibration, no file
    plain = tmp_path / "plain"
    run_pipeline("dna_latent", out_dir=plain, overrides={**overrides, "calibration.rounds": 0}, progress=False)
    assert not (plain / CALIBRATION).exists() and load_models(plain)[1].model.denoiser.calibration is None
    # calibrated later on resume, with another sampler: the table's sampler becomes the run's
    later = {**overrides, "guidance": 2.0, "calibration.order": 3}
    run_pipeline("dna_latent", out_dir=plain, overrides=later, resume=True, progress=False)
    _, model, _, meta = load_models(plain)
    assert model.model.denoiser.calibration.shape == (4, 10, 4 ** 3, 4)
    assert meta["config"]["guidance"] == 2.0 and meta["config"]["calibration"]["order"] == 3


def test_config_is_checked():
    for bad, match in (({"rounds": -1}, "rounds"), ({"order": 7}, "order must be 0-6"),
                       ({"bin_width": 0}, "bin_width"), ({"pseudocount": 0}, "pseudocount"),
                       ({"step": 0}, "step"), ({"step": 1.5}, "step")):
        with pytest.raises(OmigenInputError, match=match):
            CalibrationConfig(**bad).validate()
