"""``litesr test -opt FILE.yml``: BasicSR's test files, scored with exactly ``litesr eval``'s numbers."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import shared_path
from PIL import Image

from litesr.cli import main
from litesr.data.benchmark import open_benchmark
from litesr.data.lmdb_backend import make_lmdb
from litesr.evaluate import evaluate
from litesr.imaging.resize import make_lr
from litesr.model import SRModel
from litesr.spec import ArchSpec

TINY = {"type": "SCNet", "num_feat": 8, "num_block": 1, "upscale": 2, "use_pixelshuffle": True}


@pytest.fixture(scope="module")
def toy_set(tmp_path_factory) -> tuple[Path, Path]:
    """An EDSR-layout set: HR/<name>.png and LR_bicubic/X2/<name>x2.png."""
    root = tmp_path_factory.mktemp("Toy")
    rng = np.random.default_rng(0)
    (root / "HR").mkdir()
    (root / "LR_bicubic" / "X2").mkdir(parents=True)
    for name in ("a", "b"):
        hr = np.asarray(Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).resize((40, 36)))
        Image.fromarray(hr).save(root / "HR" / f"{name}.png")
        Image.fromarray(make_lr(hr, 2)).save(root / "LR_bicubic" / "X2" / f"{name}x2.png")
    return root / "HR", root / "LR_bicubic" / "X2"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> tuple[Path, dict, dict]:
    """A BasicSR-style checkpoint holding different ``params`` and ``params_ema``."""
    spec = ArchSpec("scnet", {key: value for key, value in TINY.items() if key != "type"})
    torch.manual_seed(0)
    params, ema = spec.build().state_dict(), spec.build().state_dict()
    path = tmp_path_factory.mktemp("weights") / "tiny_x2.pth"
    torch.save({"params": params, "params_ema": ema}, path)
    return path, params, ema


def _test_file(tmp_path: Path, toy_set, weights, **overrides) -> Path:
    hr, lr = toy_set
    raw = {
        "name": "toy_test", "model_type": "SRModel", "scale": 2, "num_gpu": 1, "manual_seed": 0,
        "datasets": {"test_1": {"name": "Toy", "type": "PairedImageDataset", "dataroot_gt": str(hr),
                                "dataroot_lq": str(lr), "filename_tmpl": "{}x2", "io_backend": {"type": "disk"}}},
        "network_g": dict(TINY),
        "path": {"pretrain_network_g": str(weights[0]), "strict_load_g": True, "resume_state": None},
        "val": {"save_img": True, "suffix": None,
                "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": True},
                            "ssim": {"type": "calculate_ssim", "crop_border": 2, "test_y_channel": True}}},
    }
    for key, value in overrides.items():
        section = raw
        *parents, leaf = key.split(".")
        for part in parents:
            section = section.setdefault(part, {})
        section[leaf] = value
    path = tmp_path / "test_toy.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _table_values(out: str) -> dict[str, list[float]]:
    """Set name → the metric columns of the Markdown table ``litesr test`` prints."""
    rows = [line.strip("| ").split(" | ") for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    return {row[0].strip(): [float(cell) for cell in row[3:]] for row in rows[1:]}


def _eval_numbers(state_dict: dict, hr: Path, lr: Path) -> tuple[float, float]:
    spec = ArchSpec("scnet", {key: value for key, value in TINY.items() if key != "type"})
    net = spec.build()
    net.load_state_dict(state_dict)
    result = evaluate(SRModel(net, spec), open_benchmark(hr.parent, 2, lr=lr), 2, crop_border=2, progress=False)
    return result.psnr, result.ssim


def test_scores_every_set_with_the_files_metrics_like_litesr_eval(tmp_path, toy_set, weights, capsys):
    config = _test_file(tmp_path, toy_set, weights, **{"path.param_key_g": "params"})
    assert main(["test", "-opt", str(config), "--results", str(tmp_path / "results"), "-q"]) == 0
    out = capsys.readouterr().out
    psnr, ssim = _eval_numbers(weights[1], *toy_set)  # params, not params_ema: param_key_g is honoured
    assert _table_values(out) == {"Toy": [round(psnr, 4), round(ssim, 4)]}
    log = (tmp_path / "results" / "test_toy_test.log").read_text()
    assert "| Toy " in log and f"{psnr:.4f}" in log
    saved = sorted(p.name for p in (tmp_path / "results" / "visualization" / "Toy").iterdir())
    assert saved == ["a.png", "b.png"]


def test_param_key_picks_the_ema_weights_and_save_img_false_saves_nothing(tmp_path, toy_set, weights, capsys):
    config = _test_file(tmp_path, toy_set, weights, **{"path.param_key_g": "params_ema", "val.save_img": False})
    assert main(["test", str(config), "--results", str(tmp_path / "results"), "-q"]) == 0
    psnr, _ = _eval_numbers(weights[2], *toy_set)
    assert _table_values(capsys.readouterr().out)["Toy"][0] == round(psnr, 4)
    assert not (tmp_path / "results" / "visualization").exists()


def test_lmdb_sets_score_the_same_as_folders(tmp_path, toy_set, weights, capsys):
    pytest.importorskip("lmdb")
    hr_db, lr_db = make_lmdb(toy_set[0], tmp_path / "hr.lmdb"), make_lmdb(toy_set[1], tmp_path / "lr.lmdb")
    config = _test_file(tmp_path, toy_set, weights, **{
        "datasets.test_1.dataroot_gt": str(hr_db), "datasets.test_1.dataroot_lq": str(lr_db),
        "datasets.test_1.io_backend": {"type": "lmdb"}, "val.save_img": False})
    assert main(["test", "-opt", str(config), "--results", str(tmp_path / "r"), "-q"]) == 0
    psnr, ssim = _eval_numbers(weights[1], *toy_set)  # no param_key_g: BasicSR's default, 'params'
    assert _table_values(capsys.readouterr().out)["Toy"] == [round(psnr, 4), round(ssim, 4)]


def test_non_strict_load_reports_what_it_skipped(tmp_path, toy_set, weights, capsys):
    other = {key: value for key, value in weights[1].items() if not key.startswith("conv_first")}
    partial = tmp_path / "partial.pth"
    torch.save({"params": other}, partial)
    config = _test_file(tmp_path, toy_set, weights, **{"path.pretrain_network_g": str(partial)})
    assert main(["test", "-opt", str(config), "--results", str(tmp_path / "r"), "-q"]) == 1
    assert re.search(r"error: .*partial\.pth: the weights do not fit network_g .*missing keys conv_first",
                     capsys.readouterr().err)
    config = _test_file(tmp_path, toy_set, weights, **{"path.pretrain_network_g": str(partial),
                                                       "path.strict_load_g": False, "val.save_img": False})
    assert main(["test", "-opt", str(config), "--results", str(tmp_path / "r"), "-q"]) == 0
    assert "warning: " in capsys.readouterr().err


@pytest.mark.parametrize("overrides, message", [
    ({"path.pretrain_network_g": None}, "path.pretrain_network_g is not set"),
    ({"datasets.test_1.filename_tmpl": "{}_LR"}, r"have no LR image .*filename_tmpl '\{\}_LR' expects e\.g\. a_LR"),
    ({"datasets.test_1.dataroot_gt": "nowhere/HR"}, r"datasets\.test_1 \(Toy\): dataroot_gt folder does not exist"),
    ({"network_g.num_feat": 16}, r"tiny_x2\.pth: the weights do not fit network_g .*shape mismatch"),
])
def test_mistakes_are_one_error_line(tmp_path, toy_set, weights, capsys, overrides, message):
    config = _test_file(tmp_path, toy_set, weights, **overrides)
    assert main(["test", "-opt", str(config), "--results", str(tmp_path / "r"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_option_file_is_required_once(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["test"])
    assert exit_info.value.code == 2 and "the option file is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["test", "a.yml", "-opt", "b.yml"])
    assert exit_info.value.code == 2 and "give the option file once" in capsys.readouterr().err


@pytest.mark.slow
def test_shipped_test_file_with_released_weights_equals_litesr_eval(tmp_path, capsys):
    """The SCNet release's own test file, paths pointed at ../shared, LiteSR's SCNet-T ×4 weights."""
    option_file = shared_path("options", "scnet", "test_SCNet-T-x4-PS.yml")
    set5 = shared_path("data", "benchmark", "Set5")
    weights = Path(__file__).resolve().parents[1] / "src" / "litesr" / "weights" / "scnet-t-x4.safetensors"
    sets = ["--set", f"datasets.test_1.dataroot_gt={set5 / 'HR'}",
            "--set", f"datasets.test_1.dataroot_lq={set5 / 'LR_bicubic' / 'X4'}",
            *(arg for index in (2, 3, 4, 5) for arg in ("--set", f"datasets.test_{index}=~"))]
    assert main(["test", "-opt", str(option_file), "--set", f"path.pretrain_network_g={weights}", *sets,
                 "--results", str(tmp_path / "results"), "-q"]) == 0
    tested = _table_values(capsys.readouterr().out)["Set5"]
    assert main(["eval", "-w", str(weights), "--data", str(set5), "--scale", "4", "-q",
                 "--json", str(tmp_path / "eval.json")]) == 0
    evaluated = json.loads((tmp_path / "eval.json").read_text())["sets"][0]
    assert tested == [round(evaluated["psnr"], 4), round(evaluated["ssim"], 4)]
    assert tested[0] == pytest.approx(31.203, abs=1e-3)  # the number on scnet-t-x4.litesr's card
