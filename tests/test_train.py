"""The shared trainer: determinism, exact resume, EMA maths, objectives, checkpoints, clipping, schedules."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict, dataclass, field

import pytest
import torch
from torch import nn

from omigen.config import RunConfig, resolve
from omigen.distributed import is_main_process, shard, world_info
from omigen.errors import OmigenError, OmigenInputError
from omigen.train import (Objective, TrainConfig, Trainer, ema_decay_at, epoch_permutation, load_checkpoint,
                          lr_factor, restore)

MU = torch.tensor([4.0, -4.0])


def quiet(**kw) -> TrainConfig:
    kw.setdefault("progress", False)
    return TrainConfig(**kw)


def toy_data(n: int = 256, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return MU + 0.5 * torch.randn(n, 2, generator=g)


class TinyVAE(nn.Module):
    """A 2-D VAE: one objective with a stochastic (reparameterised) loss and a logged KL term."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 4))
        self.dec = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, logvar = self.enc(x).chunk(2, dim=1)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        recon = ((self.dec(z) - x) ** 2).sum(1).mean()
        kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(1).mean()
        return {"loss": recon + kl, "kl": kl}


class TinyGAN(nn.Module):
    """A 2-D WGAN-GP: critic and generator objectives over disjoint parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.gen = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
        self.critic = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))

    def sample(self, n: int) -> torch.Tensor:
        return self.gen(torch.randn(n, 2))

    def objectives(self) -> list[Objective]:
        return [Objective("critic", critic_loss, params=lambda m: m.critic.parameters(), repeats=3,
                          betas=(0.5, 0.9)),
                Objective("generator", generator_loss, params=lambda m: m.gen.parameters(), betas=(0.5, 0.9))]


def critic_loss(m: TinyGAN, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    real = batch[0]
    fake = m.sample(len(real)).detach()
    eps = torch.rand(len(real), 1)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(m.critic(mix).sum(), mix, create_graph=True)
    gp = ((grad.norm(dim=1) - 1) ** 2).mean()
    wdist = m.critic(real).mean() - m.critic(fake).mean()
    return {"loss": -wdist + 10 * gp, "wdist": wdist, "gp": gp}


def generator_loss(m: TinyGAN, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return -m.critic(m.sample(len(batch[0]))).mean()


def build(cls: type, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return cls()


def same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- determinism and resume ------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [TinyVAE, TinyGAN])
def test_same_seed_gives_bitwise_identical_weights(cls):
    cfg = quiet(steps=15, batch_size=32, lr_schedule="cosine", warmup_steps=3)
    runs = []
    for _ in range(2):
        t = Trainer(build(cls), toy_data(), cfg, seed=7, device="cpu")
        t.fit()
        runs.append(t)
    assert same_state(runs[0].model, runs[1].model) and same_state(runs[0].ema, runs[1].ema)
    other = Trainer(build(cls), toy_data(), cfg, seed=8, device="cpu")
    other.fit()
    assert not same_state(runs[0].model, other.model)


class Interrupted(Exception):
    pass


def interrupting(objectives: list[Objective], after_calls: int) -> list[Objective]:
    """The same objectives, but the process 'dies' on loss call number ``after_calls``."""
    calls = {"n": 0}

    def wrap(fn):
        def loss(model, batch):
            calls["n"] += 1
            if calls["n"] > after_calls:
                raise Interrupted
            return fn(model, batch)
        return loss

    return [Objective(o.name, wrap(o.loss), o.params, o.repeats, o.lr, o.betas) for o in objectives]


@pytest.mark.parametrize("cls", [TinyVAE, TinyGAN])
def test_resume_after_interruption_equals_uninterrupted_run(cls, tmp_path):
    cfg = quiet(steps=20, batch_size=24, ckpt_every=10, log_every=4, lr_schedule="cosine", warmup_steps=4)
    data = toy_data(100)  # 4 batches an epoch: the interruption falls mid-epoch
    straight = Trainer(build(cls), data, cfg, out_dir=tmp_path / "a", seed=3, device="cpu")
    straight.fit()

    model = build(cls)
    objectives = (model.objectives() if hasattr(model, "objectives")
                  else [Objective("loss", lambda m, b: m.loss(*b))])
    per_step = sum(o.repeats for o in objectives)
    first = Trainer(model, data, cfg, out_dir=tmp_path / "b", seed=3, device="cpu",
                    objectives=interrupting(objectives, 13 * per_step + 1))
    with pytest.raises(Interrupted):
        first.fit()
    assert load_checkpoint(tmp_path / "b" / "model.ckpt")["step"] == 10

    fresh = build(cls, seed=99)  # a new process: other initial weights, other global RNG state
    torch.manual_seed(12345)
    resumed = Trainer(fresh, data, cfg, out_dir=tmp_path / "b", seed=3, device="cpu", objectives=objectives)
    result = resumed.fit(resume=True)
    assert result.steps == 20
    assert same_state(straight.model, resumed.model) and same_state(straight.ema, resumed.ema)
    logs = [[json.loads(line) for line in (tmp_path / d / "model_log.jsonl").read_text().splitlines()]
            for d in ("a", "b")]
    assert [r["step"] for r in logs[1]] == [4, 8, 12, 16, 20]  # step 12 of the dead run not repeated
    assert [r["losses"] for r in logs[0]] == [r["losses"] for r in logs[1]]


def test_resume_of_a_finished_run_loads_it_and_trains_no_further(tmp_path):
    cfg = quiet(steps=6, batch_size=16)
    done = Trainer(build(TinyVAE), toy_data(), cfg, out_dir=tmp_path, device="cpu")
    done.fit()
    again = Trainer(build(TinyVAE, seed=5), toy_data(), cfg, out_dir=tmp_path, device="cpu")
    result = again.fit(resume=True)
    assert result.steps == 6 and result.seconds == 0.0
    assert result.losses == done.fit(resume=True).losses
    assert same_state(again.model, done.model) and same_state(again.ema, done.ema)


def test_resume_without_checkpoint_starts_fresh_and_longer_steps_continue(tmp_path):
    t = Trainer(build(TinyVAE), toy_data(), quiet(steps=5, batch_size=16), out_dir=tmp_path, device="cpu")
    assert t.fit(resume=True).steps == 5
    longer = Trainer(build(TinyVAE), toy_data(), quiet(steps=8, batch_size=16), out_dir=tmp_path, device="cpu")
    assert longer.fit(resume=True).steps == 8
    straight = Trainer(build(TinyVAE), toy_data(), quiet(steps=8, batch_size=16), device="cpu")
    straight.fit()
    assert same_state(straight.model, longer.model)  # constant schedule: 5 + 3 steps == 8 steps


# -- EMA ---------------------------------------------------------------------------------------------

def test_ema_decay_warms_up_then_caps():
    cfg = TrainConfig(ema_decay=0.999)
    assert ema_decay_at(cfg, 0) == pytest.approx(0.1)
    assert ema_decay_at(cfg, 90) == pytest.approx(0.91)
    assert ema_decay_at(cfg, 10**6) == 0.999
    decays = [ema_decay_at(cfg, t) for t in range(2000)]
    assert all(a <= b for a, b in zip(decays, decays[1:]))
    assert ema_decay_at(TrainConfig(ema_decay=0.9, ema_warmup=False), 0) == 0.9


@pytest.mark.parametrize("warmup,decay", [(True, 0.1), (False, 0.999)])
def test_ema_after_one_step_is_the_weighted_average(warmup, decay):
    model = build(TinyVAE)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    t = Trainer(model, toy_data(), quiet(steps=1, batch_size=32, ema_warmup=warmup), device="cpu")
    t.fit()
    for k, w in t.model.state_dict().items():
        assert not torch.equal(w, init[k])
        torch.testing.assert_close(t.ema.state_dict()[k], decay * init[k] + (1 - decay) * w)


def test_ema_decay_zero_tracks_the_model():
    t = Trainer(build(TinyVAE), toy_data(), quiet(steps=4, batch_size=32, ema_decay=0.0), device="cpu")
    t.fit()
    assert same_state(t.model, t.ema)


# -- objectives ----------------------------------------------------------------------------------------

def test_vae_single_objective_loss_falls():
    t = Trainer(build(TinyVAE), toy_data(), quiet(steps=150, batch_size=32, lr=1e-2, log_every=30), device="cpu")
    result = t.fit()
    first, last = t.history[0]["losses"], t.history[-1]["losses"]
    assert set(first) == {"loss", "kl", "grad_norm"}
    assert last["loss"] < 0.25 * first["loss"]
    assert result.losses == last and result.steps == 150 and result.checkpoint is None


def test_gan_critic_repeats_and_generator_moves_towards_data():
    model = build(TinyGAN)
    with torch.no_grad():
        before = (model.sample(2000).mean(0) - MU).norm().item()
    calls = {"critic": 0, "generator": 0}

    def counted(o: Objective) -> Objective:
        def loss(m, b):
            calls[o.name] += 1
            return o.loss(m, b)
        return Objective(o.name, loss, o.params, o.repeats, o.lr, o.betas)

    t = Trainer(model, toy_data(), quiet(steps=150, batch_size=32, lr=3e-3, log_every=30, grad_clip=None,
                                          ema_decay=0.99), device="cpu",
                objectives=[counted(o) for o in model.objectives()])
    t.fit()
    assert calls == {"critic": 450, "generator": 150}
    with torch.no_grad():
        after = (model.sample(2000).mean(0) - MU).norm().item()
    assert after < 0.3 * before
    wdist = [h["losses"]["critic/wdist"] for h in t.history]
    assert wdist[-1] < 0.5 * max(wdist)  # the critic found a gap, then the generator closed it
    assert all(h["losses"]["critic/gp"] >= 0 for h in t.history)
    assert set(t.history[0]["lr"]) == {"critic", "generator"}


def test_objective_only_updates_its_parameters():
    model = build(TinyGAN)
    critic_before = {k: v.clone() for k, v in model.critic.state_dict().items()}
    only_gen = [Objective("generator", generator_loss, params=lambda m: m.gen.parameters())]
    Trainer(model, toy_data(), quiet(steps=3, batch_size=16), device="cpu", objectives=only_gen).fit()
    assert all(torch.equal(v, critic_before[k]) for k, v in model.critic.state_dict().items())


def test_loss_dict_without_loss_and_divergence_are_errors():
    class NoLoss(TinyVAE):
        def loss(self, x):
            return {"recon": x.sum()}

    with pytest.raises(OmigenError, match="without a 'loss'"):
        Trainer(build(NoLoss), toy_data(), quiet(steps=1), device="cpu").fit()

    class Diverges(TinyVAE):
        def loss(self, x):
            return super().loss(x)["loss"] * float("nan")

    with pytest.raises(OmigenError, match="diverged at step 2"):
        Trainer(build(Diverges), toy_data(), quiet(steps=4, log_every=2), device="cpu").fit()


# -- batches -------------------------------------------------------------------------------------------

def seen_batches(n: int, batch_size: int, steps: int, seed: int = 0) -> list[list[int]]:
    seen: list[list[int]] = []

    def loss(m, batch):
        x, idx = batch
        seen.append(idx.tolist())
        return ((m(x) - x) ** 2).mean()

    data = (torch.randn(n, 2), torch.arange(n))
    Trainer(nn.Linear(2, 2), data, quiet(steps=steps, batch_size=batch_size), seed=seed, device="cpu",
            objectives=[Objective("fit", loss)]).fit()
    return seen


def test_batches_follow_seeded_epoch_permutations_and_drop_the_partial_batch():
    seen = seen_batches(10, 4, 5, seed=2)
    p0, p1, p2 = (epoch_permutation(10, 2, e).tolist() for e in range(3))
    assert seen == [p0[0:4], p0[4:8], p1[0:4], p1[4:8], p2[0:4]]
    assert p0 != p1 and epoch_permutation(10, 2, 0).tolist() == p0
    assert sorted(p0) == list(range(10))


def test_dataset_smaller_than_batch_is_used_whole_each_step():
    seen = seen_batches(3, 8, 3)
    assert [sorted(b) for b in seen] == [[0, 1, 2]] * 3


def test_shard_splits_each_epoch_between_ranks():
    perm = torch.tensor([4, 0, 3, 1, 2])
    a, b = shard(perm, 0, 2), shard(perm, 1, 2)
    assert a.tolist() == [4, 3, 2] and b.tolist() == [0, 1, 4]  # padded with the permutation's start
    assert sorted(set(a.tolist()) | set(b.tolist())) == [0, 1, 2, 3, 4]
    assert shard(perm, 0, 1) is perm


def test_world_info_reads_torchrun_environment(monkeypatch):
    assert world_info() == (0, 1, 0) and is_main_process()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert world_info() == (1, 2, 1) and not is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(OmigenInputError, match="WORLD_SIZE"):
        world_info()


# -- checkpoints and logs ----------------------------------------------------------------------------

def test_checkpoint_is_weights_only_and_holds_config_and_run_config(tmp_path):
    cfg = quiet(steps=7, batch_size=16, log_every=3)
    model = build(TinyGAN)
    t = Trainer(model, toy_data(), cfg, out_dir=tmp_path, stage="gan", device="cpu",
                run_config={"pipeline": "toy", "train": asdict(cfg)})
    result = t.fit()
    assert result.checkpoint == tmp_path / "gan.ckpt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gan.ckpt", "gan_log.jsonl"]
    ckpt = torch.load(tmp_path / "gan.ckpt", weights_only=True)
    assert ckpt["step"] == 7 and ckpt["config"] == asdict(cfg)
    assert ckpt["run_config"] == {"pipeline": "toy", "train": asdict(cfg)}
    assert set(ckpt["optimizers"]) == {"critic", "generator"}
    assert isinstance(ckpt["ranks"][0]["rng"]["torch"], torch.Tensor)
    records = [json.loads(line) for line in (tmp_path / "gan_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6, 7]
    assert {"stage", "step", "losses", "lr", "steps_per_sec", "elapsed"} <= set(records[-1])
    assert records[-1]["losses"] == result.losses

    ema_copy, raw_copy = build(TinyGAN, seed=1), build(TinyGAN, seed=1)
    assert same_state(restore(ema_copy, result.checkpoint), t.ema)
    assert same_state(restore(raw_copy, result.checkpoint, ema=False), t.model)


def test_bad_checkpoints_are_clear_user_errors(tmp_path):
    with pytest.raises(OmigenInputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(OmigenInputError, match="cannot be read"):
        load_checkpoint(tmp_path / "junk.ckpt")
    t = Trainer(build(TinyVAE), toy_data(), quiet(steps=2, batch_size=16), out_dir=tmp_path, device="cpu")
    t.fit()
    good = (tmp_path / "model.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(good[: len(good) // 2])
    with pytest.raises(OmigenInputError, match="cannot be read"):
        load_checkpoint(tmp_path / "cut.ckpt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.ckpt")
    with pytest.raises(OmigenInputError, match="not an omigen training checkpoint"):
        load_checkpoint(tmp_path / "other.ckpt")
    with pytest.raises(OmigenInputError, match="does not fit this model"):
        restore(nn.Linear(3, 3), tmp_path / "model.ckpt")


# -- clipping, schedules, config ---------------------------------------------------------------------

class Steep(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(10))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return 1e4 * (self.w**2).sum() + 0 * x.sum()


def grad_norm(model: nn.Module) -> float:
    return torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()


def test_grad_clip_bounds_the_gradient_norm():
    clipped = Trainer(build(Steep), toy_data(), quiet(steps=3, grad_clip=0.5), device="cpu")
    clipped.fit()
    assert clipped.history[-1]["losses"]["grad_norm"] > 1000  # the norm before clipping, logged
    assert grad_norm(clipped.model) <= 0.5 * (1 + 1e-5)
    free = Trainer(build(Steep), toy_data(), quiet(steps=3, grad_clip=None), device="cpu")
    free.fit()
    assert grad_norm(free.model) > 1000 and "grad_norm" not in free.history[-1]["losses"]


def test_cosine_schedule_warms_up_and_ends_near_zero():
    cfg = TrainConfig(steps=100, lr_schedule="cosine", warmup_steps=10)
    assert lr_factor(cfg, 0) == pytest.approx(0.1) and lr_factor(cfg, 9) == 1.0 and lr_factor(cfg, 10) == 1.0
    assert lr_factor(cfg, 55) == pytest.approx(0.5)
    after = [lr_factor(cfg, s) for s in range(10, 100)]
    assert all(a > b for a, b in zip(after, after[1:]))
    assert lr_factor(cfg, 99) < 1e-3 and lr_factor(cfg, 100) == 0.0
    assert lr_factor(TrainConfig(steps=100), 99) == 1.0
    t = Trainer(build(TinyVAE), toy_data(), quiet(steps=60, lr=0.01, lr_schedule="cosine", log_every=20),
                device="cpu")
    t.fit()
    lrs = [h["lr"]["loss"] for h in t.history]
    assert lrs[0] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 19 / 60)))
    assert lrs[-1] < 0.01 * 1e-2


@dataclass
class ToyRunConfig(RunConfig):
    train: TrainConfig = field(default_factory=TrainConfig)


def test_train_config_nests_in_a_run_config_and_validates():
    cfg = resolve(ToyRunConfig, {"train.lr": "3e-4", "train.grad_clip": "none", "train.lr_schedule": "cosine"})
    assert cfg.train.lr == 3e-4 and cfg.train.grad_clip is None and cfg.train.lr_schedule == "cosine"
    assert json.loads(json.dumps(asdict(cfg.train))) == asdict(cfg.train)
    with pytest.raises(OmigenInputError, match="'precision' must be one of"):
        resolve(ToyRunConfig, {"train.precision": "fp16"})
    with pytest.raises(OmigenInputError, match="'batch_size' must be >= 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(OmigenInputError, match="'lr_schedule'"):
        TrainConfig(lr_schedule="step")


def test_bf16_off_cuda_is_a_user_error():
    with pytest.raises(OmigenInputError, match="bf16"):
        Trainer(build(TinyVAE), toy_data(), quiet(precision="bf16"), device="cpu")
    assert not Trainer(build(TinyVAE), toy_data(), quiet(), device="cpu").bf16


def test_importing_the_trainer_does_not_import_torch():
    code = "import sys, omigen.train; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_non_scalar_logged_entry_is_an_error_and_plain_numbers_are_logged():
    class Wide(TinyVAE):
        def loss(self, x):
            return {"loss": super().loss(x)["loss"], "per_sample": x.sum(1)}

    with pytest.raises(OmigenError, match="'per_sample' must be a scalar"):
        Trainer(build(Wide), toy_data(), quiet(steps=1), device="cpu").fit()

    class Annotated(TinyVAE):
        def loss(self, x):
            return {"loss": super().loss(x)["loss"], "beta": 0.5}

    t = Trainer(build(Annotated), toy_data(), quiet(steps=2, grad_clip=None), device="cpu")
    assert t.fit().losses["beta"] == 0.5


def test_zero_steps_still_leaves_a_checkpoint_of_the_initial_weights(tmp_path):
    model = build(TinyVAE)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    result = Trainer(model, toy_data(), quiet(steps=0), out_dir=tmp_path, device="cpu").fit()
    assert result.steps == 0 and load_checkpoint(result.checkpoint)["step"] == 0
    assert all(torch.equal(v, init[k]) for k, v in load_checkpoint(result.checkpoint)["ema"].items())


def test_for_run_applies_steps_and_progress_and_rejects_conflicts():
    from omigen.errors import OmigenInputError
    from omigen.train import for_run

    base = TrainConfig(steps=1000, progress=True)
    assert for_run(base, progress=False) == TrainConfig(steps=1000, progress=False)
    assert for_run(base, steps=20, default_steps=1000).steps == 20
    assert for_run(TrainConfig(steps=20), steps=20, default_steps=1000).steps == 20
    with pytest.raises(OmigenInputError, match=r"not train\.steps \(50 vs steps=20\)"):
        for_run(TrainConfig(steps=50), steps=20, default_steps=1000)
    assert for_run(TrainConfig(steps=50), steps=20).steps == 20  # no default given: the run's steps win
