"""One process of the two-process DDP test (launched by tests/test_ddp.py through torchrun).

Trains a tiny model on CPU with gloo, resumes it to more steps, then trains a tiny two-objective
GAN stage; after each it gathers every rank's weight checksum, and the batches each rank saw.
Rank 0 writes ``ranks.json`` with what it gathered; the test compares the ranks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from omigen.distributed import all_gather_object, is_main_process, world_info
from omigen.train import Objective, TrainConfig, Trainer

N = 16


def checksum(module: nn.Module) -> float:
    return float(sum(p.detach().double().sum() for p in module.parameters()))


def gan_stage(out_dir: Path) -> list[float]:
    """Two objectives (find_unused_parameters) with a gradient penalty through create_graph, under DDP."""
    torch.manual_seed(7)
    model = nn.ModuleDict({"gen": nn.Linear(2, 2),
                           "critic": nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))})

    def critic(m: nn.Module, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        real = batch[0]
        fake = m["gen"](torch.randn_like(real)).detach()
        mix = (0.5 * real + 0.5 * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(m["critic"](mix).sum(), mix, create_graph=True)
        gp = ((grad.norm(dim=1) - 1) ** 2).mean()
        return {"loss": m["critic"](fake).mean() - m["critic"](real).mean() + 10 * gp, "gp": gp}

    def generator(m: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return -m["critic"](m["gen"](torch.randn_like(batch[0]))).mean()

    objectives = [Objective("critic", critic, params=lambda m: m["critic"].parameters(), repeats=2),
                  Objective("generator", generator, params=lambda m: m["gen"].parameters())]
    data = torch.randn(32, 2, generator=torch.Generator().manual_seed(1)) + 3
    trainer = Trainer(model, data, TrainConfig(steps=3, batch_size=4, progress=False), out_dir=out_dir,
                      stage="gan", seed=1, device="cpu", objectives=objectives)
    trainer.fit()
    return all_gather_object(checksum(trainer.model))


def main(out_dir: Path) -> None:
    torch.set_num_threads(1)
    rank = world_info().rank
    torch.manual_seed(100 + rank)  # different initial weights on purpose: DDP must start them equal
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3))
    g = torch.Generator().manual_seed(0)
    data = (torch.randn(N, 3, generator=g), torch.arange(N))
    seen: list[list[int]] = []

    def loss(m: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, idx = batch
        seen.append(idx.tolist())
        return ((m(x + 0.1 * torch.randn_like(x)) - x) ** 2).mean()

    cfg = TrainConfig(steps=6, batch_size=4, log_every=2, ckpt_every=3, progress=False, lr=1e-2)
    trainer = Trainer(model, data, cfg, out_dir=out_dir, seed=5, device="cpu",
                      objectives=[Objective("recon", loss)], run_config={"world": world_info().world_size})
    first = trainer.fit()
    sums = all_gather_object([checksum(trainer.model), checksum(trainer.ema)])
    batches = all_gather_object(seen)
    assert dist.is_initialized() and dist.get_world_size() == 2

    cfg2 = TrainConfig(steps=8, batch_size=4, log_every=2, ckpt_every=3, progress=False, lr=1e-2)
    torch.manual_seed(999)
    again = Trainer(nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3)), data, cfg2, out_dir=out_dir,
                    seed=5, device="cpu", objectives=[Objective("recon", loss)])
    second = again.fit(resume=True)
    resumed = all_gather_object([checksum(again.model), checksum(again.ema)])
    gan = gan_stage(out_dir)
    if is_main_process():
        (out_dir / "ranks.json").write_text(json.dumps({
            "world_size": world_info().world_size, "checksums": sums, "resumed_checksums": resumed,
            "batches": batches, "steps": [first.steps, second.steps], "losses": first.losses, "gan": gan,
        }))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
