"""Discrete diffusion maths against explicit transition matrices; each model family learning a toy case."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from omigen.train import TrainConfig, Trainer
from omigen_genotype.config import DiffusionModelConfig, GANConfig, VAEConfig
from omigen_genotype.d3pm import DiscreteDiffusion, GenotypeD3PM, cosine_abar, step_schedule
from omigen_genotype.denoiser import PatchIn, PatchOut, PatchTransformer, patch_size
from omigen_genotype.gan import GenotypeGAN
from omigen_genotype.pipeline import builder, proportional


def _matrix(transition: str, beta: float) -> np.ndarray:
    """One-step transition matrix Q[i, j] = q(x_t = j | x_{t-1} = i)."""
    if transition == "uniform":
        return (1 - beta) * np.eye(3) + beta / 3
    q = (1 - beta) * np.eye(4)
    q[:, 3] += beta
    return q


def _cumulative(transition: str, abar: np.ndarray, s: int, t: int) -> np.ndarray:
    k = 3 if transition == "uniform" else 4
    out = np.eye(k)
    for step in range(s + 1, t + 1):
        out = out @ _matrix(transition, 1 - abar[step] / abar[step - 1])
    return out


def test_cosine_schedule_runs_from_one_to_zero():
    abar = cosine_abar(50)
    assert abar[0] == 1.0 and abar[-1] == 0.0
    assert np.all(np.diff(abar) < 0)


@pytest.mark.parametrize("transition", ["uniform", "absorbing"])
def test_marginal_and_posterior_match_explicit_matrices(transition):
    T = 8
    proc = DiscreteDiffusion(T, transition).double()
    abar = proc.abar.double().numpy()
    x0 = torch.tensor([[0, 1, 2]])
    onehot = torch.nn.functional.one_hot(x0, 3).double()
    for t in (1, 4, 7):
        want = _cumulative(transition, abar, 0, t)[x0[0].numpy()]
        got = proc.marginal(proc.abar[[t]].double(), onehot)[0].numpy()
        np.testing.assert_allclose(got, want, atol=1e-6)
    # Bayes from the matrices, including a skipped step (s = t - 3).
    for t, s in ((5, 4), (6, 3), (2, 0)):
        qs = _cumulative(transition, abar, 0, s)  # q(x_s | x0)
        qts = _cumulative(transition, abar, s, t)  # q(x_t | x_s)
        for xt_state in range(proc.K):
            xt = torch.full((1, 3), xt_state)
            post = torch.softmax(proc.posterior_logits(xt, torch.tensor([t]), torch.tensor([s]), onehot.float()), -1)
            for j, a in enumerate(x0[0].tolist()):
                joint = qs[a] * qts[:, xt_state]
                if joint.sum() == 0:
                    continue  # x_t impossible from this x0
                np.testing.assert_allclose(post[0, j].numpy(), joint / joint.sum(), atol=1e-5)


def test_step_schedule_skips_evenly_and_ends_at_zero():
    assert step_schedule(100, 4) == [100, 75, 50, 25, 0]
    assert step_schedule(5, 50) == [5, 4, 3, 2, 1, 0]


class _Oracle(nn.Module):
    """Predicts a fixed x0 with certainty, whatever it is given."""

    def __init__(self, x0: torch.Tensor):
        super().__init__()
        self.x0 = x0
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, t, y=None, z=None):
        return 50.0 * torch.nn.functional.one_hot(self.x0.expand(x.shape[0], -1), 3).float()


@pytest.mark.parametrize("transition", ["uniform", "absorbing"])
def test_oracle_denoiser_has_zero_loss_and_samples_its_x0(transition):
    x0 = torch.tensor([[0, 2, 1, 1, 0, 2]])
    model = GenotypeD3PM(_Oracle(x0), timesteps=20, transition=transition, hybrid_lambda=0.5, cond_drop=0.0)
    out = model.loss(x0.expand(16, -1))
    assert out["vb"].item() < 1e-6 and out["ce"].item() < 1e-6
    g = torch.Generator().manual_seed(0)
    for steps in (20, 3):
        sampled = model.sample(5, 6, steps=steps, generator=g)
        assert torch.equal(sampled, x0.expand(5, -1))


class _Leaning(nn.Module):
    """Predicts x0 = 0 with probability 0.9 at every SNP, whatever it is given."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, t, y=None, z=None):
        return torch.log(torch.tensor([0.9, 0.05, 0.05])).expand(*x.shape, 3)


def test_temperature_flattens_x0_and_spreads_the_samples():
    model = GenotypeD3PM(_Leaning(), timesteps=10, cond_drop=0.0)
    xt = torch.zeros(1, 4, dtype=torch.long)
    hot = model._x0_logp(xt, 5, None, None, 0.0, temperature=2.0).exp()[0, 0]
    want = torch.tensor([0.9, 0.05, 0.05]) ** 0.5
    torch.testing.assert_close(hot, want / want.sum())
    rare = {}
    for temperature in (1.0, 3.0):
        g = torch.Generator().manual_seed(0)
        rare[temperature] = (model.sample(200, 50, steps=10, generator=g, temperature=temperature) != 0).float().mean()
    assert rare[3.0] > rare[1.0] + 0.1
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, 3, temperature=0.0)


def _copy_accuracy(skip: bool) -> float:
    """Train a 4-wide, one-token denoiser on independent random SNPs at t = 1 (nearly clean input); return
    how often it predicts each SNP's own clean state on fresh genomes."""
    torch.manual_seed(0)
    n = 32
    den = PatchTransformer(n, np.arange(n) * 100, 3, 0, False, dim=4, layers=1, heads=1, max_tokens=1, skip=skip)
    opt = torch.optim.Adam(den.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(0)
    t = torch.ones(64, dtype=torch.long)
    for _ in range(150):
        x = torch.randint(0, 3, (64, n), generator=g)
        loss = torch.nn.functional.cross_entropy(den(x, t).transpose(1, 2), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.randint(0, 3, (256, n), generator=g)
    with torch.no_grad():
        return (den(x, torch.ones(256, dtype=torch.long)).argmax(-1) == x).float().mean().item()


def test_snp_skip_lets_a_narrow_denoiser_copy_its_input():
    # 32 independent 3-state SNPs do not fit through one 4-wide token, so the token path alone guesses
    # (1/3 would be chance); the per-SNP path carries every SNP's own state to its logits.
    without, with_skip = _copy_accuracy(False), _copy_accuracy(True)
    assert without < 0.6, without
    assert with_skip > 0.99, with_skip


def test_patches_are_local_and_padded():
    assert patch_size(50_000, 0, 128) == 391 and patch_size(10, 4, 128) == 4
    inp = PatchIn(10, 4, 3, 8)
    x = torch.nn.functional.one_hot(torch.zeros(2, 10, dtype=torch.long), 3).float()
    h0 = inp(x)
    x[:, 5] = torch.tensor([0.0, 0.0, 1.0])  # SNP 5 lives in token 1
    changed = (inp(x) - h0).abs().sum((0, 2)) > 0
    assert changed.tolist() == [False, True, False]
    out = PatchOut(10, 4, 8)
    assert out(h0).shape == (2, 10, 3)
    G = np.array([[0] * 10, [2] * 10, [2] * 10, [2] * 10])
    out.init_frequencies(G)
    probs = torch.softmax(out.bias.view(-1, 3)[:10], -1)
    assert probs[0, 2] > 0.6 and probs[0, 1] < 0.2


def test_gan_temperature_anneals_and_objectives_alternate():
    gan = GenotypeGAN(6, 0, False, latent=4, hidden=8, embed=2, n_critic=3, tau_start=1.0, tau_end=0.25,
                      anneal_steps=4)
    assert gan.tau == pytest.approx(1.0)
    x = torch.randint(0, 3, (5, 6))
    for _ in range(2):
        gan.generator_loss(x)
    assert gan.tau == pytest.approx(0.5)
    for _ in range(5):
        gan.generator_loss(x)
    assert gan.tau == pytest.approx(0.25)
    objs = gan.objectives()
    assert [o.name for o in objs] == ["critic", "generator"] and objs[0].repeats == 3
    assert set(map(id, objs[0].params(gan))) == set(map(id, gan.critic.parameters()))


def test_proportional_counts_are_exact():
    assert proportional({"a": 1, "b": 1, "c": 2}, 7) == {"a": 2, "b": 2, "c": 3}
    assert sum(proportional({"x": 3, "y": 7}, 11).values()) == 11


def _toy_haplotypes(n_per: int = 120, seed: int = 0):
    """Two populations, 16 SNPs in 4 perfect-LD blocks of 4; block allele frequency 0.2 or 0.8 by population.
    Returns every individual's first haplotype, then every second one (2 x 2 n_per rows), with populations."""
    rng = np.random.default_rng(seed)
    pops = np.repeat([0, 1], n_per)
    p = np.where(pops[:, None] == 0, [0.2, 0.8, 0.2, 0.8], [0.8, 0.2, 0.8, 0.2])
    haps = (rng.random((2, 2 * n_per, 4)) < p[None]).astype(np.int8)
    return np.repeat(haps.reshape(4 * n_per, 4), 4, axis=1), np.concatenate([pops, pops])


def _toy(n_per: int = 120, seed: int = 0):
    """The individuals of :func:`_toy_haplotypes` as dosages (the sum of their two haplotypes)."""
    H, pops = _toy_haplotypes(n_per, seed)
    n = len(H) // 2
    return H[:n] + H[n:], pops[:n]


def _cfg(kind: str):
    if kind == "diffusion":
        return DiffusionModelConfig(dim=32, layers=1, heads=2, timesteps=20, sample_steps=20, max_tokens=4,
                                    hybrid_lambda=0.1, cond_drop=0.0)
    if kind == "vae":
        return VAEConfig(latent=8, hidden=64, embed=4, max_tokens=4)
    return GANConfig(latent=8, hidden=32, embed=4, max_tokens=4, n_critic=2, lr=2e-3, tau_end=0.5)


@pytest.mark.parametrize("kind,steps", [("diffusion", 250), ("vae", 400), ("gan", 200)])
def test_each_family_learns_population_frequencies_and_ld(kind, steps):
    G, pops = _toy()
    info = {"n_snps": 16, "positions": list(range(1000, 17000, 1000)), "n_classes": 2, "phenotype": False,
            "G": G, "steps": steps}
    torch.manual_seed(0)
    model = builder(kind)(_cfg(kind), info)
    data = (torch.from_numpy(G).long(), torch.from_numpy(pops).long(), torch.full((len(G),), float("nan")))
    trainer = Trainer(model, data, TrainConfig(steps=steps, batch_size=48, lr=3e-3, ema_decay=0.9, progress=False,
                                               log_every=0), device="cpu")
    trainer.fit()
    g = torch.Generator().manual_seed(1)
    y = torch.tensor([0] * 150 + [1] * 150)
    if kind == "diffusion":
        S = trainer.ema.sample(300, 16, y, None, steps=10, generator=g).numpy()
    else:
        S = trainer.ema.sample(300, y, None, generator=g).numpy()
    for k in (0, 1):
        real = G[pops == k].mean(0) / 2
        syn = S[y.numpy() == k].mean(0) / 2
        # Ignoring the population would be 0.3 off everywhere (0.5 against 0.2/0.8) and uncorrelated; the GAN
        # fits marginals more loosely than the likelihood-based models.
        assert np.corrcoef(real, syn)[0, 1] > 0.85, (kind, k, real.round(2), syn.round(2))
        err = np.abs(real - syn).mean() if kind == "gan" else np.abs(real - syn).max()
        assert err < 0.2, (kind, k, real.round(2), syn.round(2))
    # Within a block all SNPs are copies; independent SNPs with these frequencies would agree about 51% of
    # the time, so agreement well above that is LD learned.
    within = np.mean([(S[:, 4 * b] == S[:, 4 * b + j]).mean() for b in range(4) for j in range(1, 4)])
    # The short GAN run learns the least LD (as the GAN of the genotype literature does).
    assert within > {"diffusion": 0.75, "vae": 0.6, "gan": 0.55}[kind], (kind, within)


class _Recording(nn.Module):
    """A self-conditioning denoiser that leans to state 0 and records the estimates it is given."""

    self_cond = True

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.seen: list[Tensor | None] = []

    def forward(self, x, t, y=None, z=None, prev=None):
        self.seen.append(None if prev is None else prev.clone())
        return torch.log(torch.tensor([0.8, 0.1, 0.1])).expand(*x.shape, 3)


def test_the_sampler_feeds_a_self_conditioning_denoiser_its_last_estimate():
    den = _Recording()
    model = GenotypeD3PM(den, timesteps=10, cond_drop=0.0)
    model.sample(3, 5, steps=4, generator=torch.Generator().manual_seed(0))
    assert len(den.seen) == 4 and den.seen[0] is None
    for prev in den.seen[1:]:
        torch.testing.assert_close(prev, torch.tensor([0.8, 0.1, 0.1]).expand(3, 5, 3))
    # Training: half the rows get the first pass's estimate, the others zeros (none).
    den.seen.clear()
    torch.manual_seed(0)
    model.loss(torch.zeros(64, 5, dtype=torch.long))
    first, second = den.seen
    assert first is None and second.shape == (64, 5, 3)
    given = second.sum((1, 2)) > 0
    assert 10 < int(given.sum()) < 54 and torch.all(second[~given] == 0)


@pytest.mark.parametrize("self_cond", [False, True])
def test_haplotype_diffusion_pairs_two_learned_haplotypes_in_hardy_weinberg_proportions(self_cond):
    H, pops = _toy_haplotypes()
    cfg = replace(_cfg("diffusion"), haplotypes=True, self_cond=self_cond)
    info = {"n_snps": 16, "positions": list(range(1000, 17000, 1000)), "n_classes": 2, "phenotype": False, "G": H}
    torch.manual_seed(0)
    model = builder("diffusion")(cfg, info)
    assert model.process.K == 2 and model.denoiser.out.out == 2
    data = (torch.from_numpy(H).long(), torch.from_numpy(pops).long(), torch.full((len(H),), float("nan")))
    trainer = Trainer(model, data, TrainConfig(steps=250, batch_size=48, lr=3e-3, ema_decay=0.9, progress=False,
                                               log_every=0), device="cpu")
    trainer.fit()
    y = torch.tensor([0] * 150 + [1] * 150)
    S = trainer.ema.sample(300, 16, y, None, steps=10, generator=torch.Generator().manual_seed(1)).numpy()
    again = trainer.ema.sample(300, 16, y, None, steps=10, generator=torch.Generator().manual_seed(1)).numpy()
    assert np.array_equal(S, again) and set(np.unique(S)) <= {0, 1, 2}
    for k in (0, 1):
        real = H[pops == k].mean(0)
        syn = S[y.numpy() == k] / 2
        assert np.abs(real - syn.mean(0)).max() < 0.2, (k, real.round(2), syn.mean(0).round(2))
        # Two independent haplotypes give heterozygotes at 2pq (F = 0); summing one haplotype twice gives
        # none (F = 1) and a per-SNP choice of the middle state gives too many (F < 0).
        p = syn.mean(0)
        f = 1 - (S[y.numpy() == k] == 1).mean(0).sum() / (2 * p * (1 - p)).sum()
        assert abs(f) < 0.15, (k, f)
    within = np.mean([(S[:, 4 * b] == S[:, 4 * b + j]).mean() for b in range(4) for j in range(1, 4)])
    assert within > 0.75, within


def test_conditional_vae_follows_the_phenotype():
    """Phenotype = dosage of SNP 0 + small noise: conditioning on a high value must give high dosages there."""
    rng = np.random.default_rng(3)
    G = rng.binomial(2, 0.5, size=(300, 8)).astype(np.int8)
    z = (G[:, 0] - 1.0 + 0.1 * rng.standard_normal(300)).astype(np.float32)
    info = {"n_snps": 8, "positions": list(range(8)), "n_classes": 0, "phenotype": True, "G": G}
    torch.manual_seed(0)
    model = builder("vae")(VAEConfig(latent=4, hidden=32, embed=4, max_tokens=8), info)
    data = (torch.from_numpy(G).long(), torch.full((300,), -1), torch.from_numpy(z))
    Trainer(model, data, TrainConfig(steps=300, batch_size=64, lr=3e-3, ema_decay=0.0, ema_warmup=False,
                                     progress=False, log_every=0), device="cpu").fit()
    g = torch.Generator().manual_seed(0)
    high = model.sample(200, None, torch.full((200,), 1.0), generator=g).numpy()
    low = model.sample(200, None, torch.full((200,), -1.0), generator=g).numpy()
    assert high[:, 0].mean() > 1.6 and low[:, 0].mean() < 0.4, (high[:, 0].mean(), low[:, 0].mean())
    # SNPs unrelated to the trait keep their frequency either way.
    assert abs(high[:, 1:].mean() - low[:, 1:].mean()) < 0.25
