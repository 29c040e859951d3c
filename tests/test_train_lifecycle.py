"""A run you can leave alone: early data checks, saves before validation, resume as configured, a clean log."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from litesr.cli import main
from litesr.data.files import DataError
from litesr.imaging.resize import make_lr
from litesr.train.config import load_config
from litesr.train.state import list_states
from litesr.train.trainer import Trainer
from test_trainer import _config, data  # noqa: F401  (the module-scoped toy data fixture)


def _iterations(folder, kind="train"):
    return [json.loads(line)["iter"] for line in (folder / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["kind"] == kind]


def test_a_wrong_validation_path_fails_at_start_up(tmp_path, data):  # noqa: F811
    path = _config(tmp_path, data, **{"datasets.val.dataroot_gt": str(tmp_path / "no_such_set")})
    config, _ = load_config(path)
    with pytest.raises(DataError, match=r"datasets\.val \(toyval\): .*no_such_set"):
        Trainer(config, progress=False)
    assert not (tmp_path / "exp" / "training_states").exists()


def test_x2_validation_images_with_a_x4_network_say_what_to_change_in_the_file(tmp_path, data):  # noqa: F811
    hr_dir, lr_dir = tmp_path / "set" / "HR", tmp_path / "set" / "X2"
    hr_dir.mkdir(parents=True)
    lr_dir.mkdir(parents=True)
    hr = np.asarray(Image.open(next(data[1].iterdir())).convert("RGB"))
    Image.fromarray(hr).save(hr_dir / "a.png")
    Image.fromarray(make_lr(hr, 2)).save(lr_dir / "ax2.png")
    path = _config(tmp_path, data, **{
        "scale": 4, "network_g.upscale": 4,
        "datasets.val": {"name": "x2set", "type": "PairedImageDataset", "dataroot_gt": str(hr_dir),
                         "dataroot_lq": str(lr_dir), "filename_tmpl": "{}x2"}})
    config, _ = load_config(path)
    with pytest.raises(DataError) as info:
        Trainer(config, progress=False)
    message = str(info.value)
    assert "size mismatch" in message and "point dataroot_lq at ×4 LR images" in message
    assert "--scale" not in message  # an eval flag means nothing to an option file


def test_the_state_is_saved_before_validating(tmp_path, data, monkeypatch):  # noqa: F811
    path = _config(tmp_path, data, **{"val.val_freq": 6, "logger.save_checkpoint_freq": 6})
    config, _ = load_config(path)
    trainer = Trainer(config, progress=False)

    def broken_validation():
        raise RuntimeError("validation failed")

    monkeypatch.setattr(trainer, "validate", broken_validation)
    with pytest.raises(RuntimeError, match="validation failed"):
        trainer.run()
    assert [p.name for p in list_states(tmp_path / "exp" / "training_states")] == ["iter_00000006.state"]


def test_resume_rewinds_metrics_and_removes_interrupted_saves(tmp_path, data):  # noqa: F811
    path = _config(tmp_path, data, **{"val.val_freq": 100, "train.total_iter": 8})
    config, _ = load_config(path)
    assert Trainer(config, progress=False).run(stop_at=6) is None
    folder = tmp_path / "exp"
    with (folder / "metrics.jsonl").open("a") as handle:  # a killed run logged past its last state
        handle.write(json.dumps({"iter": 7, "kind": "train", "loss": 1.0}) + "\n" + '{"iter": 8, "ki')
    stale = folder / "training_states" / ".iter_00000009.state.k1ll3d.tmp"
    stale.write_bytes(b"x" * 1000)
    resumed = Trainer(config, resume=True, progress=False)
    assert not stale.exists()
    resumed.run()
    assert _iterations(folder) == [1, 2, 3, 4, 5, 6, 7, 8]  # each once, never backwards


def test_resume_continues_the_experiment_as_configured(tmp_path, data, capsys):  # noqa: F811
    recipe = _config(tmp_path, data, **{"val.val_freq": 100, "logger.save_checkpoint_freq": 100})
    folder = tmp_path / "exp"
    assert main(["train", "-opt", str(recipe), "--set", "train.total_iter=9", "--stop-at", "4", "-q"]) == 0
    assert main(["train", "--resume", str(folder), "-q"]) == 0  # no --set repeated
    assert yaml.safe_load((folder / "config.yml").read_text())["train"]["total_iter"] == 9
    assert _iterations(folder)[-1] == 9 and (folder / "models" / "tiny.safetensors").is_file()
    assert main(["train", str(recipe), "--resume", "-q"]) == 0  # the recipe's experiment: still 9, done
    assert "continuing" in capsys.readouterr().err
    assert _iterations(folder)[-1] == 9


def test_training_prints_a_clean_log(tmp_path, data, capsys):  # noqa: F811
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    for image in data[0].iterdir():
        (train_dir / image.name).write_bytes(image.read_bytes())
    Image.new("RGB", (20, 18)).save(train_dir / "small.png")
    workers = (os.cpu_count() or 1) + 1  # more than the CPUs: torch's own warning would say so twice
    recipe = _config(tmp_path, data, **{"datasets.train.dataroot_gt": str(train_dir),
                                        "datasets.train.num_worker_per_gpu": workers, "logger.print_freq": 100})
    assert main(["train", str(recipe), "--stop-at", "2"]) == 0
    err = capsys.readouterr().err
    assert "Warning" not in err and "warnings.warn" not in err  # no raw warnings with source lines
    assert "skipped 1 image(s) smaller than the 32-pixel HR patch: small.png 20×18" in err
    assert f"data loader: {workers} workers" in err and "plan: 12 iterations, this session until iteration 2" in err
    assert "[iter 1/12] loss" in err  # progress before print_freq
    assert "stopped at iteration 2 of 12 (--stop-at)" in err and f"--resume {tmp_path / 'exp'}" in err


def test_train_on_a_test_file_points_to_litesr_test(tmp_path, data, capsys):  # noqa: F811
    recipe = _config(tmp_path, data)
    raw = yaml.safe_load(recipe.read_text())
    del raw["train"], raw["datasets"]["train"]
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["train", "-opt", str(recipe)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "litesr test -opt" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_under_torchrun_an_error_is_printed_once(tmp_path, data):  # noqa: F811
    recipe = _config(tmp_path, data, **{"datasets.val.dataroot_gt": str(tmp_path / "no_such_set")})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             "--master_port=29533", "-m", "litesr", "train", str(recipe), "-q"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "no_such_set" in errors[0], result.stderr[-2000:]
