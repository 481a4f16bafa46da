"""The shared training loop: step-based, seeded, resumable, on one process or several under torchrun.

Every model family trains through :class:`Trainer`: a diffusion model or a VAE with one
objective, a two-stage autoencoder-then-latent-diffusion as two Trainer runs with different
``stage`` names, and a GAN with alternating generator and critic objectives (the critic with
``repeats``). Each objective has its own AdamW optimiser over its own parameters.

- Batches are drawn from in-memory tensors. Each epoch is a permutation seeded by (seed, epoch),
  so a resumed run jumps straight to its step; under torchrun each process takes its shard.
- ``<out_dir>/<stage>.ckpt`` holds weights, EMA weights, optimiser states, the step and every RNG
  state, so a resumed run ends with the same weights, bit for bit on CPU, as one never stopped.
- ``<out_dir>/<stage>_log.jsonl`` gets one JSON line per ``log_every`` steps and one at the end.

Importing this module does not import torch (pipelines nest :class:`TrainConfig` in their config,
which ``omigen list`` reads): torch is imported inside the functions that train.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from omigen.distributed import is_main_process, world_info
from omigen.errors import OmigenError, OmigenInputError
from omigen.checkpoint import (_first_line, _rng_state, _seed_all, _set_rng_state, load_checkpoint,
                               restore)
from omigen.io import atomic_path, write_text

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

__all__ = ["TrainConfig", "for_run", "Objective", "TrainResult", "Trainer", "load_checkpoint", "restore", "lr_factor",
           "ema_decay_at", "epoch_permutation", "is_main_process", "world_info"]

PRECISIONS = ("auto", "fp32", "bf16")
SCHEDULES = ("constant", "cosine")
#: Data up to this size is copied to the accelerator once, so batches are gathered there each step.
DEVICE_DATA_BYTES = 2 << 30
_STAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


@dataclass
class TrainConfig:
    """Options of the training loop; pipelines nest it in their run config as ``train``."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True
    precision: str = "auto"
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    log_every: int = 50
    ckpt_every: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> OmigenInputError:
            return OmigenInputError(f"train option {name!r} {rule}, got {getattr(self, name)!r}")

        for name in ("steps", "warmup_steps", "log_every", "ckpt_every"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        if self.batch_size < 1:
            raise bad("batch_size", "must be >= 1")
        if not self.lr > 0:
            raise bad("lr", "must be > 0")
        if self.weight_decay < 0:
            raise bad("weight_decay", "must be >= 0")
        if self.grad_clip is not None and self.grad_clip < 0:
            raise bad("grad_clip", "must be > 0 (or 0/none for no clipping)")
        if not 0.0 <= self.ema_decay <= 1.0:
            raise bad("ema_decay", "must be between 0 and 1")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"must be one of {', '.join(PRECISIONS)}")
        if self.lr_schedule not in SCHEDULES:
            raise bad("lr_schedule", f"must be one of {', '.join(SCHEDULES)}")


@dataclass
class Objective:
    """One loss and the parameters it updates.

    ``loss(model, batch)`` returns a scalar tensor or a dict with a ``"loss"`` entry; other scalar
    entries are logged. ``params(model)`` picks the parameters (None: all). ``repeats`` updates per
    step, each on a fresh batch (e.g. 5 critic updates per generator update).
    """

    name: str
    loss: Callable[["nn.Module", tuple["Tensor", ...]], "Tensor | dict[str, Tensor]"]
    params: Callable[["nn.Module"], Iterable["nn.Parameter"]] | None = None
    repeats: int = 1
    lr: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` reports: the step reached, this call's time and speed, the last losses."""

    steps: int
    seconds: float
    steps_per_sec: float
    losses: dict[str, float]
    checkpoint: Path | None


def for_run(train: TrainConfig, *, progress: bool = True, steps: int | None = None,
            default_steps: int | None = None, name: str = "train") -> TrainConfig:
    """``train`` with a run's settings applied: ``--no-progress`` and the run's top-level ``steps``.

    Pipelines expose the training length as ``steps`` (``--steps``); when ``default_steps`` is
    given, a nested ``<name>.steps`` that was also changed and disagrees is a user error rather
    than silently overridden.
    """
    if steps is not None and default_steps is not None and train.steps not in (default_steps, steps):
        raise OmigenInputError(f"set the number of training steps with 'steps' (--steps), not {name}.steps "
                               f"({train.steps} vs steps={steps})")
    out = replace(train, progress=train.progress and progress)
    return out if steps is None else replace(out, steps=steps)


def lr_factor(config: TrainConfig, step: int) -> float:
    """Multiplier of the base learning rate at 0-based ``step``: linear warm-up, then constant or cosine."""
    w = config.warmup_steps
    if step < w:
        return (step + 1) / w
    if config.lr_schedule == "cosine":
        progress = min(1.0, (step - w) / max(1, config.steps - w))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def ema_decay_at(config: TrainConfig, step: int) -> float:
    """EMA decay of the update after 0-based ``step``: ``min(ema_decay, (1+t)/(10+t))`` with warm-up.

    The warm-up keeps a short run's average from being dominated by the random initial weights.
    """
    if not config.ema_warmup:
        return config.ema_decay
    return min(config.ema_decay, (1 + step) / (10 + step))


def _derive_seed(*parts: int) -> int:
    import numpy as np

    words = np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def epoch_permutation(n: int, seed: int, epoch: int) -> "Tensor":
    """The sample order of ``epoch``: a permutation of ``range(n)`` that depends only on (seed, epoch)."""
    import torch

    g = torch.Generator().manual_seed(_derive_seed(seed, epoch, 0xBA7C))
    return torch.randperm(n, generator=g)


class _Batches:
    """Batch ``b`` of the run: epoch ``b // per_epoch``, position ``b % per_epoch`` of this rank's shard."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int, world: int, device: "torch.device"):
        self.n, self.seed, self.rank, self.world, self.device = n, seed, rank, world, device
        local = -(-n // world)
        # A shard smaller than a batch is used whole every step; otherwise the partial batch is dropped.
        self.size = min(batch_size, local)
        self.per_epoch = local // self.size
        self._epoch: int | None = None
        self._perm: Tensor | None = None

    def indices(self, b: int) -> "Tensor":
        from omigen.distributed import shard

        epoch, pos = divmod(b, self.per_epoch)
        if epoch != self._epoch:
            perm = shard(epoch_permutation(self.n, self.seed, epoch), self.rank, self.world)
            self._perm, self._epoch = perm.to(self.device), epoch
        return self._perm[pos * self.size:(pos + 1) * self.size]


def _model_loss(model: "nn.Module", batch: tuple["Tensor", ...]) -> "Tensor | dict[str, Tensor]":
    return model.loss(*batch)


def _objectives_of(model: "nn.Module", objectives: list[Objective] | None) -> list[Objective]:
    if objectives is None:
        if callable(getattr(model, "objectives", None)):
            objectives = list(model.objectives())
        elif callable(getattr(model, "loss", None)):
            objectives = [Objective("loss", _model_loss)]
        else:
            raise TypeError(f"{type(model).__name__} defines neither objectives() nor loss(); pass objectives=")
    if not objectives:
        raise ValueError("no training objectives")
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ValueError(f"objective names must be unique, got {names}")
    for o in objectives:
        if o.repeats < 1:
            raise ValueError(f"objective {o.name!r}: repeats must be >= 1")
    return objectives


def _wrapper(model: "nn.Module", objectives: list[Objective]) -> "nn.Module":
    """A module whose forward(i, batch) is objective i's loss, so DDP sees every loss computed in forward."""
    from torch import nn

    class ObjectiveModule(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, index: int, batch: tuple) -> dict:
            obj = objectives[index]
            out = obj.loss(self.model, batch)
            out = dict(out) if isinstance(out, dict) else {"loss": out}
            if "loss" not in out:
                raise OmigenError(f"objective {obj.name!r} returned a dict without a 'loss' entry")
            return out

    return ObjectiveModule()


class Trainer:
    """Train ``model`` on in-memory ``data`` for ``config.steps`` steps; see the module docstring.

    ``model`` is moved to the device and trained in place; ``ema`` is a copy holding the
    exponential moving average of its weights, which samplers should use. ``run_config`` is a
    JSON-able dict stored in the checkpoint (the pipeline's resolved config).
    """

    def __init__(self, model: "nn.Module", data: "Tensor | tuple[Tensor, ...]", config: TrainConfig, *,
                 out_dir: str | Path | None = None, stage: str = "model", seed: int = 0, device: str = "auto",
                 objectives: list[Objective] | None = None, run_config: dict | None = None):
        import torch

        from omigen import distributed
        from omigen.run import resolve_device

        if not _STAGE.match(stage):
            raise ValueError(f"stage {stage!r} must be letters, digits, '_' or '-'")
        self.config, self.stage, self.seed = config, stage, int(seed)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.run_config = json.loads(json.dumps(run_config or {}))
        self.world = world_info()
        self.device = torch.device(distributed.setup(resolve_device(device)))
        self.bf16 = self._use_bf16()
        self.model = model.to(self.device)
        self.objectives = _objectives_of(self.model, objectives)
        self._module: nn.Module | None = None
        self._wrapped()  # under DDP this makes every rank's weights rank 0's before the EMA copies them
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval()
        pairs = list(zip(self.ema.parameters(), self.model.parameters()))
        # Float weights are averaged; integer weights and buffers (e.g. batch-norm statistics) are copied.
        self._ema_pairs = ([e for e, _ in pairs if e.is_floating_point()],
                           [m for e, m in pairs if e.is_floating_point()],
                           [(e, m) for e, m in pairs if not e.is_floating_point()]
                           + list(zip(self.ema.buffers(), self.model.buffers())))
        self.data = self._prepare(data)
        self._batches = _Batches(self.data[0].shape[0], config.batch_size, self.seed, self.world.rank,
                                 self.world.world_size, self.data[0].device)
        self._params = []
        self.optimizers = []
        fused = self.device.type == "cuda"
        for o in self.objectives:
            chosen = o.params(self.model) if o.params else self.model.parameters()
            params = [p for p in chosen if p.requires_grad]
            if not params:
                raise ValueError(f"objective {o.name!r} has no trainable parameters")
            self._params.append(params)
            self.optimizers.append(torch.optim.AdamW(params, lr=o.lr if o.lr is not None else config.lr,
                                                     betas=o.betas, weight_decay=config.weight_decay, fused=fused))
        self._base_lr = [opt.param_groups[0]["lr"] for opt in self.optimizers]
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self._losses: dict[str, float] = {}
        self._sums: dict[str, Tensor] = {}
        self._counts: dict[str, int] = {}
        self._elapsed = 0.0

    # -- set-up -------------------------------------------------------------------------------
    def _use_bf16(self) -> bool:
        import torch

        p = self.config.precision
        cuda = self.device.type == "cuda"
        if p == "bf16" and not (cuda and torch.cuda.is_bf16_supported()):
            raise OmigenInputError("train.precision 'bf16' needs a CUDA device with bf16 support "
                                   f"(training on {self.device}); use 'auto' or 'fp32'")
        return p == "bf16" or (p == "auto" and cuda and torch.cuda.is_bf16_supported())

    def _prepare(self, data: "Tensor | tuple[Tensor, ...]") -> tuple["Tensor", ...]:
        import torch

        tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
        if not tensors or not all(isinstance(t, torch.Tensor) and t.ndim >= 1 for t in tensors):
            raise TypeError("data must be a tensor or a tuple of tensors with a sample dimension")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError(f"data tensors disagree on the number of samples: {[t.shape[0] for t in tensors]}")
        if n == 0:
            raise OmigenInputError("training data has no samples")
        if self.device.type != "cpu" and sum(t.numel() * t.element_size() for t in tensors) <= DEVICE_DATA_BYTES:
            tensors = tuple(t.to(self.device) for t in tensors)
        return tensors

    def _wrapped(self) -> "nn.Module":
        if self._module is None:
            module = _wrapper(self.model, self.objectives)
            if self.world.world_size > 1:
                from torch.nn.parallel import DistributedDataParallel

                ids = [self.device.index] if self.device.type == "cuda" else None
                module = DistributedDataParallel(module, device_ids=ids,
                                                 find_unused_parameters=len(self.objectives) > 1)
            self._module = module
        return self._module

    @property
    def checkpoint_path(self) -> Path | None:
        """``<out_dir>/<stage>.ckpt``, or None without an output folder."""
        return self.out_dir / f"{self.stage}.ckpt" if self.out_dir is not None else None

    @property
    def log_path(self) -> Path | None:
        """``<out_dir>/<stage>_log.jsonl``, or None without an output folder."""
        return self.out_dir / f"{self.stage}_log.jsonl" if self.out_dir is not None else None

    @property
    def _writes(self) -> bool:
        return self.out_dir is not None and self.world.rank == 0

    # -- the loop -----------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> TrainResult:
        """Train to ``config.steps``; with ``resume`` continue from ``<out_dir>/<stage>.ckpt`` if present."""
        import torch

        t0 = time.perf_counter()
        cfg = self.config
        module = self._wrapped()
        self.model.train()
        ckpt = self.checkpoint_path
        if resume and ckpt is not None and ckpt.is_file():
            self._load(load_checkpoint(ckpt), ckpt)
            if self.step >= cfg.steps:
                return TrainResult(self.step, 0.0, 0.0, dict(self._losses), ckpt)
            self._trim_log()
        else:
            self.step, self._elapsed, self._losses, self._sums, self._counts = 0, 0.0, {}, {}, {}
            _seed_all(_derive_seed(self.seed, self.world.rank, 0x5EED))
            if self._writes:
                write_text(self.log_path, "")
        start = self.step
        per_step = sum(o.repeats for o in self.objectives)
        batch_no = start * per_step
        prefix = [f"{o.name}/" if len(self.objectives) > 1 else "" for o in self.objectives]
        clip = cfg.grad_clip or 0.0
        window = (time.perf_counter(), start)
        # Saving gathers every rank's RNG state, so under DDP all ranks take part whatever their out_dir.
        gathers = self.out_dir is not None or self.world.world_size > 1
        with self._progress(start) as bar:
            for step in range(start, cfg.steps):
                factor = lr_factor(cfg, step)
                for i, (obj, opt, params) in enumerate(zip(self.objectives, self.optimizers, self._params)):
                    for group in opt.param_groups:
                        group["lr"] = self._base_lr[i] * factor
                    for _ in range(obj.repeats):
                        batch = self._batch(batch_no)
                        batch_no += 1
                        module.zero_grad(set_to_none=True)
                        with self._autocast():
                            out = module(i, batch)
                        out["loss"].float().backward()
                        if clip > 0:
                            norm = torch.nn.utils.clip_grad_norm_(params, clip)
                            out["grad_norm"] = norm
                        opt.step()
                        for key, value in out.items():
                            self._accumulate(prefix[i] + key, value, obj.name)
                self._update_ema(step)
                self.step = step + 1
                bar.advance()
                last = self.step == cfg.steps
                if last or (cfg.log_every and self.step % cfg.log_every == 0):
                    self._log(window, t0, bar)
                    window = (time.perf_counter(), self.step)
                if gathers and (last or (cfg.ckpt_every and self.step % cfg.ckpt_every == 0)):
                    self._save(self._elapsed + time.perf_counter() - t0)
        if self.step == start and gathers:
            self._save(self._elapsed)  # zero steps asked for: still leave a checkpoint to sample from
        from omigen.distributed import barrier

        barrier()  # other ranks may read the final checkpoint once this returns
        seconds = time.perf_counter() - t0
        done = self.step - start
        return TrainResult(self.step, seconds, done / seconds if seconds > 0 else 0.0, dict(self._losses),
                           ckpt if self.out_dir is not None else None)

    def _batch(self, b: int) -> tuple["Tensor", ...]:
        idx = self._batches.indices(b)
        return tuple(t[idx].to(self.device, non_blocking=True) for t in self.data)

    def _autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _accumulate(self, key: str, value: Any, objective: str) -> None:
        import torch

        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise OmigenError(f"objective {objective!r}: {key!r} must be a scalar, "
                                  f"got shape {tuple(value.shape)}")
            value = value.detach().float().reshape(())
        else:
            value = torch.tensor(float(value), device=self.device)
        # Running sums stay on the device: reading them every step would stall an accelerator.
        self._sums[key] = self._sums[key] + value if key in self._sums else value
        self._counts[key] = self._counts.get(key, 0) + 1

    def _update_ema(self, step: int) -> None:
        import torch

        d = ema_decay_at(self.config, step)
        ema_float, model_float, copied = self._ema_pairs
        with torch.no_grad():
            if ema_float:
                torch._foreach_lerp_(ema_float, model_float, 1.0 - d)
            for e, m in copied:
                e.copy_(m)

    def _log(self, window: tuple[float, int], t0: float, bar: Any) -> None:
        import torch

        from omigen.distributed import all_reduce_mean

        keys = list(self._sums)
        values: list[float] = []
        if keys:
            stacked = torch.stack([self._sums[k] / self._counts[k] for k in keys]).to(self.device)
            values = all_reduce_mean(stacked).tolist()  # one device sync per log line
        self._losses = dict(zip(keys, values))
        self._sums, self._counts = {}, {}
        now = time.perf_counter()
        rate = (self.step - window[1]) / max(now - window[0], 1e-9)
        record = {"stage": self.stage, "step": self.step, "losses": self._losses,
                  "lr": {o.name: opt.param_groups[0]["lr"] for o, opt in zip(self.objectives, self.optimizers)},
                  "steps_per_sec": round(rate, 4), "elapsed": round(self._elapsed + now - t0, 4)}
        self.history.append(record)
        if self._writes:
            with open(self.log_path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
        bar.show(self._losses, rate)
        bad = [k for k, v in self._losses.items() if k.split("/")[-1] == "loss" and not math.isfinite(v)]
        if bad:
            raise OmigenError(f"training diverged at step {self.step} of stage {self.stage!r}: {bad[0]} is "
                              f"{self._losses[bad[0]]} (lower train.lr or set train.grad_clip)")

    def _trim_log(self) -> None:
        # Lines written after the checkpoint by the interrupted run would be repeated by this one.
        if not self._writes or not self.log_path.is_file():
            return
        lines = self.log_path.read_text().splitlines()
        keep = [ln for ln in lines if ln.strip() and self._step_of(ln) <= self.step]
        write_text(self.log_path, "".join(ln + "\n" for ln in keep))

    @staticmethod
    def _step_of(line: str) -> int:
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            return 1 << 62

    # -- checkpoints ---------------------------------------------------------------------------
    def _save(self, elapsed: float) -> None:
        import torch

        from omigen.distributed import all_gather_object

        # Every rank's RNG states and its part-filled log window, so a resumed run logs what this one would have.
        ranks = all_gather_object({"rng": _rng_state(self.device),
                                   "sums": {k: v.cpu() for k, v in self._sums.items()},
                                   "counts": dict(self._counts)})
        if not self._writes:
            return
        state = {
            "format": 1,
            "stage": self.stage,
            "step": self.step,
            "seed": self.seed,
            "world_size": self.world.world_size,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizers": {o.name: opt.state_dict() for o, opt in zip(self.objectives, self.optimizers)},
            "ranks": ranks,
            "losses": dict(self._losses),
            "elapsed": float(elapsed),
            "config": asdict(self.config),
            "run_config": self.run_config,
        }
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(state, tmp)

    def _load(self, ckpt: dict[str, Any], path: Path) -> None:
        names = [o.name for o in self.objectives]
        if sorted(ckpt.get("optimizers", {})) != sorted(names):
            raise OmigenInputError(f"checkpoint {path} was written for objectives "
                                   f"{sorted(ckpt.get('optimizers', {}))}, not {sorted(names)}")
        try:
            self.model.load_state_dict(ckpt["model"])
            self.ema.load_state_dict(ckpt["ema"])
            for name, opt in zip(names, self.optimizers):
                opt.load_state_dict(ckpt["optimizers"][name])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise OmigenInputError(f"checkpoint {path} does not fit this model: {_first_line(exc)}") from None
        self.step = int(ckpt["step"])
        self._losses = dict(ckpt.get("losses", {}))
        self._elapsed = float(ckpt.get("elapsed", 0.0))
        ranks = ckpt.get("ranks") or []
        if len(ranks) == self.world.world_size:
            mine = ranks[self.world.rank]
            self._sums = {k: v.to(self.device) for k, v in mine["sums"].items()}
            self._counts = dict(mine["counts"])
            _set_rng_state(mine["rng"], self.device)
        else:  # resumed on a different number of processes: reseed from the step, still deterministic
            self._sums, self._counts = {}, {}
            _seed_all(_derive_seed(self.seed, self.world.rank, self.step, 0x5EED))

    # -- progress ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _progress(self, start: int) -> Iterator[Any]:
        if not (self.config.progress and self.world.rank == 0):
            yield _NoBar()
            return
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[losses]}"), TextColumn("{task.fields[rate]}"),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
        with progress:
            task = progress.add_task(self.stage, total=self.config.steps, completed=start, losses="", rate="")
            yield _Bar(progress, task)


class _NoBar:
    def advance(self) -> None:
        pass

    def show(self, losses: dict[str, float], rate: float) -> None:
        pass


class _Bar(_NoBar):
    def __init__(self, progress: Any, task: Any):
        self.progress, self.task = progress, task

    def advance(self) -> None:
        self.progress.advance(self.task)

    def show(self, losses: dict[str, float], rate: float) -> None:
        shown = " ".join(f"{k} {v:.4g}" for k, v in losses.items() if k.split("/")[-1] == "loss")
        self.progress.update(self.task, losses=shown, rate=f"{rate:.1f} steps/s")
