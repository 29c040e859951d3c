"""The training loop end to end: a run, exact resume, SIGKILL at random moments, DDP on 2 CPU processes."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import litesr
from litesr.train.config import load_config
from litesr.train.state import list_states, load_state
from litesr.train.trainer import Trainer, TrainingError


def _images(folder: Path, count: int, size: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        # smooth random content (an upsampled noise field), so the model has something to learn
        small = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(folder / f"img{index:02d}.png")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return _images(root / "train", 6, 64, 0), _images(root / "val" / "HR", 2, 48, 1)


def _config(tmp_path: Path, data, **overrides) -> Path:
    train, val = data
    raw = {
        "name": "tiny", "scale": 2, "manual_seed": 3,
        "datasets": {
            "train": {"name": "toy", "type": "HRImageDataset", "dataroot_gt": str(train), "gt_size": 32,
                      "use_hflip": True, "use_rot": True, "batch_size_per_gpu": 4, "num_worker_per_gpu": 0,
                      "dataset_enlarge_ratio": 2},
            "val": {"name": "toyval", "type": "HRImageDataset", "dataroot_gt": str(val)},
        },
        "network_g": {"type": "SCNet", "num_feat": 8, "num_block": 1, "upscale": 2, "use_pixelshuffle": True},
        "path": {"experiments_root": str(tmp_path / "exp")},
        "train": {"ema_decay": 0.9, "optim_g": {"type": "Adam", "lr": 1e-3}, "total_iter": 12,
                  "scheduler": {"type": "MultiStepLR", "milestones": [6], "gamma": 0.5},
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0}},
        "val": {"val_freq": 6, "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2,
                                                      "test_y_channel": True}}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 3, "use_tb_logger": False},
    }
    for key, value in overrides.items():
        section = raw
        *parents, leaf = key.split(".")
        for part in parents:
            section = section.setdefault(part, {})
        section[leaf] = value
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "tiny.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_run_validates_saves_and_exports(tmp_path, data):
    config, notes = load_config(_config(tmp_path, data), strict=True)
    exported = Trainer(config, progress=False).run()
    model = litesr.load(exported)
    assert model.arch == "scnet" and model.spec.kwargs["num_feat"] == 8
    folder = tmp_path / "exp"
    assert [p.name for p in list_states(folder / "training_states")] == ["iter_00000009.state", "iter_00000012.state"]
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["kind"] == "val"] == [6, 12]
    assert [r["lr"] for r in records if r["kind"] == "train"][5:7] == [pytest.approx(5e-4)] * 2
    assert (folder / "models" / "best.safetensors").exists() and (folder / "config.yml").exists()
    with pytest.raises(TrainingError, match="already holds training states"):
        Trainer(config, progress=False)


def test_resume_continues_exactly(tmp_path, data):
    straight, _ = load_config(_config(tmp_path / "a", data))
    reference = Trainer(straight, progress=False)
    reference.run()
    split, _ = load_config(_config(tmp_path / "b", data))
    assert Trainer(split, progress=False).run(stop_at=7) is None
    resumed = Trainer(split, resume=True, progress=False)
    assert resumed.iteration == 7
    resumed.run()
    for key, value in reference.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key
    for key, value in reference.ema.state_dict().items():
        assert torch.equal(value, resumed.ema.state_dict()[key]), key


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_at_most_one_interval(tmp_path, data):
    """Kill the trainer (SIGKILL, no clean-up) at random moments, including mid-save;
    every state left behind must load, and resuming must finish the run."""
    config_path = _config(tmp_path, data, **{"train.total_iter": 60, "logger.save_checkpoint_freq": 4,
                                             "val.val_freq": 1000})
    folder = tmp_path / "exp"
    command = [sys.executable, "-m", "litesr", "train", str(config_path), "--resume", "-q"]
    rng = random.Random(0)
    for trial in range(4):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(4.0, 9.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        states = list_states(folder / "training_states")
        for state in states:
            load_state(state)  # never corrupt
        logged = [json.loads(line)["iter"] for line in (folder / "metrics.jsonl").read_text().splitlines()
                  if '"train"' in line] if (folder / "metrics.jsonl").exists() else [0]
        reached = max(logged)
        saved = int(states[-1].name[5:13]) if states else 0
        assert reached - saved <= 4, f"trial {trial}: reached {reached}, newest state {saved}"
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert (folder / "models" / "tiny.safetensors").exists()
    assert load_state(list_states(folder / "training_states")[-1])["iteration"] == 60
    # metrics.jsonl was rewound at each resume: every iteration once, in order; no killed save's temp file is left
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["kind"] == "train"] == list(range(1, 61))
    assert not [p.name for p in (folder / "training_states").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path, data):
    config_path = _config(tmp_path, data, **{"train.total_iter": 6, "val.val_freq": 6})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29531",
                             "-m", "litesr", "train", str(config_path), "-q"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    folder = tmp_path / "exp"
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]  # rank 0 alone logs
    assert litesr.load(folder / "models" / "tiny.safetensors").arch == "scnet"
