"""k-mer guidance: per-class Markov log-ratios fitted to the training sequences tilt the chained draw."""

import math

import numpy as np
import pytest
import torch

from omigen.errors import OmigenInputError
from omigen.run import run_pipeline
from omigen.train import load_checkpoint
from omigen_dna_latent.autoencoder import DnaAutoencoder
from omigen_dna_latent.config import AutoencoderConfig, DenoiserConfig
from omigen_dna_latent.denoiser import build_latent_diffusion, kmer_log_ratios
from omigen_dna_latent.pipeline import generate, load_models, sample
from omigen_dna_latent.plugin import TINY


def test_log_ratios_by_hand():
    # class 0: AAAA (A after A 3 times, A after the padded start once); class 1: ACAC
    codes = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 1]])
    ratios = kmer_log_ratios(codes, torch.tensor([0, 1]), 2, order=1, pseudocount=1.0)
    assert ratios.shape == (2, 4, 4)
    # after A: class 0 counts A 4, C 0 (+1 each, 8 in all); class 1 A 1 (the start), C 2 (7 in all); pooled A 5, C 2 (11)
    p0 = np.log(np.array([5, 1, 1, 1]) / 8)
    p1 = np.log(np.array([2, 3, 1, 1]) / 7)
    pooled = np.log(np.array([7, 4, 2, 2]) / 15)  # pseudocounts pooled too: 5+2, 1+3, 1+1, 1+1
    np.testing.assert_allclose(ratios[0, 0].numpy(), p0 - pooled, rtol=1e-5)
    np.testing.assert_allclose(ratios[1, 0].numpy(), p1 - pooled, rtol=1e-5)
    # after G: no data in either class, so no tilt
    assert torch.allclose(ratios[:, 2], torch.zeros(2, 4))


def _denoiser(context, kmer_order=1, n_classes=2):
    ae = DnaAutoencoder(AutoencoderConfig(channels=8, latent_channels=4))
    return build_latent_diffusion(
        DenoiserConfig(channels=8, heads=2, context=context, kmer_order=kmer_order),
        {"latent_channels": 4, "latent_length": 6, "n_classes": n_classes, "autoencoder": ae.config})


def _two_compositions(rng, n, length):
    """Class 0 draws A and C with probability 0.4 each and G, T 0.1; class 1 the reverse."""
    return np.concatenate([rng.choice(4, (n, length), p=[0.4, 0.4, 0.1, 0.1]),
                           rng.choice(4, (n, length), p=[0.1, 0.1, 0.4, 0.4])])


def _two_walks(rng, n, length, stay=0.7):
    """Class 0 steps to base (b + 1) % 4 with probability 0.7 + 0.3/4, class 1 to (b - 1) % 4; else uniform.
    Both have uniform base frequencies, so every context is equally common in both."""
    steps = np.where(rng.random((2 * n, length)) < stay, np.repeat([1, 3], n)[:, None], rng.integers(0, 4, (2 * n, length)))
    return np.cumsum(steps, axis=1) % 4


@pytest.mark.parametrize("context", [0, 2])
def test_draw_is_tilted_towards_the_label_k_mers(context):
    model = _denoiser(context)
    model.set_kmer_guidance(torch.as_tensor(_two_walks(np.random.default_rng(0), 2000, 40)),
                            torch.tensor([0] * 2000 + [1] * 2000))
    den = model.model.denoiser
    flat = torch.zeros(400, 40, 4) if context == 0 else torch.zeros(400, 40, 16, 4)  # the U-Net says nothing
    y = torch.tensor([0] * 200 + [1] * 200)

    def own_steps(weight, labels):
        den.kmer_guidance = weight
        drawn = den.draw(flat.log_softmax(-1), torch.Generator().manual_seed(0), labels)
        step = (drawn[:, 1:] - drawn[:, :-1]) % 4
        return (step[:200] == 1).float().mean().item(), (step[200:] == 3).float().mean().item()

    # Pooled, the step is +1 or -1 with 0.425 each and 0 or 2 with 0.075; class 0's own step has
    # 0.775, the opposite one 0.075. A flat U-Net times (p_class / p_pooled) ** weight gives the own step
    # r ** w / (r ** w + s ** w + 2) with r = 0.775 / 0.425 and s = 0.075 / 0.425.
    r, s = 0.775 / 0.425, 0.075 / 0.425
    for weight in (1.0, 3.0):
        expected = r ** weight / (r ** weight + s ** weight + 2)
        assert own_steps(weight, y) == pytest.approx((expected, expected), abs=0.03)
    for off in (own_steps(0.0, y), own_steps(1.0, None), own_steps(1.0, torch.full((400,), -1))):
        assert off == pytest.approx((0.25, 0.25), abs=0.03)  # no weight, no labels or the null label: no tilt


def test_tables_travel_in_the_checkpoint_and_old_runs_load_without_them(tmp_path):
    codes = _two_walks(np.random.default_rng(0), 30, 32)
    lines = [f">s{i} label={'ab'[i // 30]}\n{''.join(np.array(list('ACGT'))[row])}\n" for i, row in enumerate(codes)]
    (tmp_path / "toy.fa").write_text("".join(lines))
    overrides = {**TINY, "device": "cpu", "data": str(tmp_path / "toy.fa"), "test_fraction": 0.25,
                 "evaluate": False, "diffusion_train.ckpt_every": 0, "denoiser.kmer_order": 1,
                 "autoencoder_train.steps": 300, "autoencoder_train.lr": 0.01}  # decodes what the draw wrote
    out = tmp_path / "run"
    run_pipeline("dna_latent", out_dir=out, overrides=overrides, progress=False)
    ratios = load_checkpoint(out / "diffusion.ckpt")["ema"]["model.denoiser.kmer_ratios"]
    assert ratios.shape == (2, 4, 4) and ratios.abs().max() > 1.0
    # 20 training steps teach the U-Net little; the tilt moves each label to its own steps
    ae, model, classes, meta = load_models(out)
    assert meta["config"]["kmer_guidance"] == 0.0  # off unless asked for

    def own_steps(weight):
        drawn = generate(ae, model, classes, {"a": 40, "b": 40}, seed=1, steps=5, kmer_guidance=weight)
        steps = np.diff(np.array([[("ACGT".index(b)) for b in seq] for seq in drawn.sequences]), axis=1) % 4
        return np.mean(np.where(np.asarray(drawn.labels)[:, None] == "a", steps == 1, steps == 3))

    # at low noise the U-Net's own logits are sharp and outweigh the tilt, so the end-to-end effect is
    # smaller than in a flat draw (measured: 0.38 plain, 0.43 at weight 2, 0.48 at 4)
    plain, tilted = own_steps(0.0), own_steps(4.0)
    assert tilted > plain + 0.05, (plain, tilted)

    old = tmp_path / "old"
    run_pipeline("dna_latent", out_dir=old, overrides={**overrides, "denoiser.kmer_order": 0, "kmer_guidance": 0.0},
                 progress=False)
    before = sample(old, 4, seed=5).sequences.tolist()
    ckpt = load_checkpoint(old / "diffusion.ckpt")
    del ckpt["run_config"]["config"]["denoiser"]["kmer_order"], ckpt["run_config"]["config"]["kmer_guidance"]
    torch.save(ckpt, old / "diffusion.ckpt")
    assert sample(old, 4, seed=5).sequences.tolist() == before


def test_unconditional_models_hold_no_tables_and_the_order_is_bounded():
    model = _denoiser(2, kmer_order=5, n_classes=0)
    assert model.model.denoiser.kmer_order == 0 and not hasattr(model.model.denoiser, "kmer_ratios")
    model.set_kmer_guidance(torch.zeros(2, 12, dtype=torch.long), torch.zeros(2, dtype=torch.long))  # a no-op
    with pytest.raises(OmigenInputError, match="kmer_order must be 0-6"):
        DenoiserConfig(kmer_order=7).validate()
    assert math.isclose(DenoiserConfig().kmer_order, 5)
