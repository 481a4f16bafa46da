"""Two CPU processes under torchrun (gloo): ranks stay in sync, shard the data, and only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow  # two torch processes start up: several seconds
def test_two_process_training_keeps_ranks_in_sync(tmp_path):
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available in this torch build")
    out = tmp_path / "run"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(WORKER), str(out)], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Rank 1 wrote nothing: no second log, no temporary files, nothing but rank 0's outputs.
    assert sorted(p.name for p in out.iterdir()) == ["gan.ckpt", "gan_log.jsonl", "model.ckpt", "model_log.jsonl",
                                                     "ranks.json"]
    info = json.loads((out / "ranks.json").read_text())
    assert info["world_size"] == 2 and info["steps"] == [6, 8]
    a, b = info["checksums"]
    assert a == b, "ranks disagree after training"
    assert info["resumed_checksums"][0] == info["resumed_checksums"][1]
    assert info["resumed_checksums"] != info["checksums"]
    assert info["gan"][0] == info["gan"][1], "ranks disagree after the two-objective stage"

    # 16 samples, 2 ranks, batch 4: each epoch is 2 steps, and the ranks' batches of one epoch
    # are disjoint and together cover the data.
    r0, r1 = info["batches"]
    assert len(r0) == len(r1) == 6
    for epoch in range(3):
        steps = slice(2 * epoch, 2 * epoch + 2)
        seen = [i for batch in r0[steps] + r1[steps] for i in batch]
        assert sorted(seen) == list(range(16))

    records = [json.loads(line) for line in (out / "model_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6, 8]
    ckpt = torch.load(out / "model.ckpt", weights_only=True)
    assert ckpt["step"] == 8 and ckpt["world_size"] == 2 and len(ckpt["ranks"]) == 2
