"""BasicSR-style option files: the papers' files parse, LiteSR's recipes parse strictly, and
every bad value is a ConfigError naming the file and the key path."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import shared_path

from litesr.errors import LiteSRError
from litesr.spec import ArchSpec
from litesr.train.config import (
    ConfigError, CosineAnnealingRestartLROptions, MultiStepLROptions, apply_override, load_config, parse_config,
)

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"
SCNET_T_X4 = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4)


def _options(name: str) -> Path:
    return shared_path("options", "scnet", name)


def _minimal() -> dict:
    """A small valid training option dict to break one key at a time."""
    return {
        "name": "tiny", "model_type": "SRModel", "scale": 2,
        "datasets": {
            "train": {"name": "T91", "type": "HRImageDataset", "dataroot_gt": "data/T91", "gt_size": 96,
                      "batch_size_per_gpu": 4},
            "val": {"name": "Set5", "type": "PairedImageDataset", "dataroot_gt": "Set5/HR",
                    "dataroot_lq": "Set5/LR_bicubic/X2", "filename_tmpl": "{}x2", "io_backend": {"type": "disk"}},
        },
        "network_g": {"type": "SCNet", "num_feat": 16, "num_block": 2, "upscale": 2},
        "train": {"optim_g": {"type": "Adam", "lr": 1e-3}, "total_iter": 100,
                  "scheduler": {"type": "MultiStepLR", "milestones": [50], "gamma": 0.5},
                  "pixel_opt": {"type": "L1Loss"}},
        "val": {"val_freq": 10, "metrics": {"psnr": {"type": "psnr", "crop_border": 2}}},
    }


def _parse(raw: dict, strict: bool = False):
    return parse_config(raw, source="opt.yml", strict=strict)


def _fails(raw: dict, key: str, match: str = "") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _parse(raw)
    error = info.value
    assert isinstance(error, LiteSRError)
    assert error.key == key and str(error).startswith(f"opt.yml: {key}: "), str(error)
    assert match in str(error), str(error)
    return error


# ---- the option files the SCNet release ships -------------------------------------------------

def test_released_train_file_parses_with_its_values():
    config, warnings = load_config(_options("train_SCNet-T-x4.yml"), strict=True)
    assert warnings == []
    assert config.name == "SCNet-T-x4" and config.scale == 4 and config.manual_seed == 0 and config.num_gpu == 2
    assert config.network_g.to_spec() == ArchSpec("scnet", {**SCNET_T_X4, "use_pixelshuffle": False})
    train_set = config.train_set
    assert train_set.type == "PairedImageDataset" and train_set.io_backend == "lmdb"
    assert train_set.dataroot_gt == ("Path to your data",)  # placeholders parse; checked when opened
    assert (train_set.gt_size, train_set.batch_size_per_gpu, train_set.num_worker_per_gpu) == (256, 8, 4)
    assert train_set.use_hflip and train_set.use_rot and train_set.use_shuffle and train_set.pin_memory
    assert [(s.phase, s.name, s.filename_tmpl) for s in config.val_sets] == [("val", "Set14", "{}x4")]
    train = config.train
    assert train.ema_decay == 0.999 and train.total_iter == 300000 and train.warmup_iter == -1
    assert (train.optim_g.type, train.optim_g.lr, train.optim_g.betas) == ("Adam", 2e-4, (0.9, 0.99))
    assert train.scheduler == MultiStepLROptions(milestones=(200000,), gamma=0.5)
    assert (train.pixel_opt.type, train.pixel_opt.loss_weight, train.pixel_opt.reduction) == ("L1Loss", 1.0, "mean")
    assert config.val.val_freq == 5000 and type(config.val.val_freq) is int
    assert config.logger.save_checkpoint_freq == 5000 and type(config.logger.save_checkpoint_freq) is int
    assert [(m.metric, m.crop_border, m.test_y_channel) for m in config.val.metrics] == [
        ("psnr", 4, True), ("ssim", 4, True)]
    assert config.dist_params == {"backend": "nccl", "port": 29500}
    assert config.experiment_dir == Path("experiments/SCNet-T-x4")
    assert config.path.strict_load_g is False and config.path.param_key_g == "params"


@pytest.mark.parametrize("name, pixelshuffle", [("test_SCNet-T-x4.yml", False), ("test_SCNet-T-x4-PS.yml", True)])
def test_released_test_files_parse(name, pixelshuffle):
    config, warnings = load_config(_options(name), strict=True)
    assert warnings == [] and config.train is None and config.train_set is None
    assert config.network_g.to_spec().kwargs == {**SCNET_T_X4, "use_pixelshuffle": pixelshuffle}
    assert [s.name for s in config.val_sets] == ["Set5", "Set14", "B100", "Urban100", "Manga109"]
    assert all(s.dataroot_lq and s.filename_tmpl == "{}x4" for s in config.val_sets)
    assert config.val.save_img and config.val.suffix is None and config.val.val_freq is None
    assert config.path.pretrain_network_g.startswith("model_zoo/SCNet/")


@pytest.mark.parametrize("name", ["train_SCNet-T-x4.yml", "test_SCNet-T-x4-PS.yml"])
def test_to_dict_round_trips_through_yaml(name):
    config, _ = load_config(_options(name))
    again, warnings = parse_config(yaml.safe_load(config.to_yaml()), strict=True)
    assert warnings == [] and again == config


# ---- LiteSR's own recipes ---------------------------------------------------------------------

RECIPES = sorted(CONFIGS_DIR.glob("*.yml"))


def test_recipes_are_all_there():
    names = {path.name for path in RECIPES}
    assert {f"scnet-t-x{s}_{kind}.yml" for s in (2, 3, 4) for kind in ("df2k", "cpu")} <= names
    assert {"lesrcnn-ms_cpu.yml", "span-ch48-x3_cpu.yml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=[path.name for path in RECIPES])
def test_recipe_parses_strictly_and_round_trips(path):
    config, warnings = load_config(path, strict=True)
    assert warnings == [] and config.train is not None and config.val_sets
    assert parse_config(config.to_dict(), strict=True)[0] == config
    if path.name.endswith("_cpu.yml"):
        train_set = config.train_set
        assert train_set.type == "HRImageDataset" and train_set.lr_on_the_fly
        assert train_set.dataroot_gt == ("../shared/data/train/T91", "../shared/data/train/BSD200")
        assert train_set.batch_size_per_gpu == 16 and config.train.precision == "auto"
        assert config.train.ema_decay == 0.999 and config.logger.save_checkpoint_freq == 500
        assert isinstance(config.train.scheduler, CosineAnnealingRestartLROptions)
        assert all("Set5" in s.dataroot_gt[0] for s in config.val_sets)


def test_multiscale_lesrcnn_recipe():
    config, _ = load_config(CONFIGS_DIR / "lesrcnn-ms_cpu.yml", strict=True)
    assert config.network_g.to_spec() == ArchSpec("lesrcnn", {"scale": None, "multi_scale": True, "num_feat": 64})
    assert config.train_set.scales == (2, 3, 4)
    assert [s.scales for s in config.val_sets] == [(2,), (3,), (4,)]
    assert [m.crop_for(3) for m in config.val.metrics] == [3, 3]


# ---- overrides --------------------------------------------------------------------------------

def test_overrides_parse_values_as_yaml_before_validation():
    config, _ = load_config(_options("train_SCNet-T-x4.yml"), overrides=[
        "train.optim_g.lr=1e-3", "network_g.use_pixelshuffle=true", "train.scheduler.milestones=[1000, 2000]",
        "path.pretrain_network_g=~", "datasets.train.dataroot_gt=[a, b]", "datasets.train.dataroot_lq=",
        "train.precision=bf16", "logger.print_freq=!!float 1e2",
    ])
    assert config.train.optim_g.lr == 1e-3 and config.network_g.kwargs["use_pixelshuffle"] is True
    assert config.train.scheduler.milestones == (1000, 2000) and config.path.pretrain_network_g is None
    assert config.train_set.dataroot_gt == ("a", "b") and config.train_set.lr_on_the_fly
    assert config.train.precision == "bf16" and config.logger.print_freq == 100


def test_override_creates_missing_sections_and_rejects_bad_paths():
    raw = {"name": "x", "train": {"total_iter": 5}}
    apply_override(raw, "val.val_freq=100")
    apply_override(raw, " val.metrics.psnr.type = psnr")
    assert raw["val"] == {"val_freq": 100, "metrics": {"psnr": {"type": "psnr"}}}
    with pytest.raises(ConfigError, match=r"train\.total_iter is the number 5, not a section"):
        apply_override(raw, "train.total_iter.x=1")
    for bad in ("novalue", "=3", "a..b=1"):
        with pytest.raises(ConfigError, match="key.path=value"):
            apply_override(raw, bad)


def test_override_can_fix_an_invalid_file(tmp_path):
    raw = _minimal()
    raw["train"]["optim_g"]["lr"] = -1
    path = tmp_path / "opt.yml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="train.optim_g.lr"):
        load_config(path)
    config, _ = load_config(path, overrides=["train.optim_g.lr=2e-4"])
    assert config.train.optim_g.lr == 2e-4


# ---- unknown keys: errors with a guess; BasicSR keys LiteSR ignores: one warning ----------------

def test_unknown_keys_are_errors_all_reported_at_once_with_a_guess():
    raw = _minimal()
    raw["manual_sed"] = 3
    raw["train"]["scheduler"]["gama"] = 0.5
    raw["train"]["foo"] = 1
    with pytest.raises(ConfigError) as info:
        _parse(raw)
    message = str(info.value)
    assert message.startswith("opt.yml: ") and "\n" not in message
    for expected in ("unknown key manual_sed (did you mean manual_seed?)",
                     "unknown key train.scheduler.gama (did you mean train.scheduler.gamma?)",
                     "unknown key train.foo"):
        assert expected in message
    assert info.value.key is not None


def test_basicsr_keys_litesr_ignores_are_one_warning_and_strict_reports_every_warning():
    raw = _minimal()
    raw["datasets"]["train"]["color"] = "y"
    raw["datasets"]["train"]["meta_info_file"] = "meta.txt"
    raw["path"] = {"results_root": "results"}
    raw["auto_resume"] = True
    raw["logger"] = {"wandb": {"project": "mine"}}
    raw["datasets"]["train"]["prefetch_mode"] = "cuda"
    config, warnings = _parse(raw)
    assert config.train_set.prefetch_mode is None
    ignored = [w for w in warnings if "BasicSR keys LiteSR does not use" in w]
    assert len(ignored) == 1
    for key in ("datasets.train.color", "datasets.train.meta_info_file", "path.results_root", "auto_resume"):
        assert key in ignored[0]
    assert any("logger.wandb.project" in w for w in warnings) and any("prefetch_mode" in w for w in warnings)
    assert all(w.startswith("opt.yml: ") for w in warnings) and len(warnings) == 3
    with pytest.raises(ConfigError, match="--strict") as info:
        _parse(raw, strict=True)
    assert all(text in str(info.value) for text in ("path.results_root", "logger.wandb.project", "prefetch_mode"))


def test_override_values_that_are_not_yaml_are_plain_strings():
    raw = apply_override(_minimal(), "datasets.val.filename_tmpl={}x4")
    assert raw["datasets"]["val"]["filename_tmpl"] == "{}x4"
    config, _ = _parse(apply_override(raw, "datasets.val.filename_tmpl={}x2"))
    assert config.val_sets[0].filename_tmpl == "{}x2"
    with pytest.raises(ConfigError, match=r"train\.scheduler\.milestones: must be a non-empty list"):
        _parse(apply_override(_minimal(), "train.scheduler.milestones=[1, 2"))


def test_yaml_details(tmp_path):
    path = tmp_path / "opt.yml"
    text = yaml.safe_dump(_minimal())
    path.write_text(text.replace("lr: 0.001", "lr: 1e-3") + "scale: 2\n")  # plain 1e-3; a duplicate key
    config, warnings = load_config(path)
    assert config.train.optim_g.lr == 1e-3
    assert len(warnings) == 1 and "duplicate key 'scale'" in warnings[0]
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"opt\.yml: invalid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such option file"):
        load_config(tmp_path / "missing.yml")


# ---- bad values -------------------------------------------------------------------------------

def _set(raw: dict, dotted: str, value) -> dict:
    raw = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return raw


@pytest.mark.parametrize("dotted, value, key, match", [
    ("train.optim_g.lr", -1e-3, "train.optim_g.lr", "greater than 0"),
    ("train.optim_g.type", "SGD", "train.optim_g.type", "Adam, AdamW"),
    ("train.optim_g.betas", [0.9], "train.optim_g.betas", "two numbers"),
    ("network_g.type", "EDSR", "network_g.type", "SCNet, SPAN, LESRCNN"),
    ("network_g.upscale", 4, "network_g.upscale", "top-level scale is 2"),
    ("network_g.num_blocks", 4, "network_g.num_blocks", "valid ones are"),
    ("network_g.num_feat", "sixty", "network_g.num_feat", "must be an integer"),
    ("train.total_iter", 1.5, "train.total_iter", "must be an integer"),
    ("train.ema_decay", True, "train.ema_decay", "must be a number"),
    ("datasets.train.use_hflip", "yes", "datasets.train.use_hflip", "true or false"),
    ("datasets.train.gt_size", 97, "datasets.train.gt_size", "divisible"),
    ("datasets.train.type", "SingleImageDataset", "datasets.train.type", "ground truth"),
    ("datasets.train.scales", [2, 3], "datasets.train.scales", "serves ×2"),
    ("datasets.bogus", {"type": "PairedImageDataset"}, "datasets.bogus", "dataset phase"),
    ("train.perceptual_opt", {"type": "PerceptualLoss"}, "train.perceptual_opt", "pixel loss only"),
    ("train.pixel_opt", {"type": "GANLoss"}, "train.pixel_opt.type", "L1Loss"),
    ("train.pixel_opt.eps", 1e-6, "train.pixel_opt.eps", "CharbonnierLoss only"),
    ("train.scheduler", {"type": "CosineAnnealingRestartLR", "periods": [50]}, "train.scheduler.periods",
     "at least total_iter"),
    ("train.scheduler.milestones", [80, 40], "train.scheduler.milestones", "increasing"),
    ("train.precision", "fp8", "train.precision", "auto, fp32, bf16, fp16"),
    ("val.metrics.lpips", {"type": "calculate_lpips"}, "val.metrics.lpips.type", "unsupported metric"),
    ("model_type", "ESRGANModel", "model_type", "SRModel only"),
    ("train", {"optim_g": {"type": "Adam", "lr": 1}, "total_iter": 1}, "train.pixel_opt", "is required"),
    ("datasets.val.filename_tmpl", "x2", "datasets.val.filename_tmpl", "must contain"),
])
def test_bad_values_name_the_key(dotted, value, key, match):
    _fails(_set(_minimal(), dotted, value), key, match)


def test_span_official_keys_and_scale_taken_from_top_level():
    raw = _set(_minimal(), "network_g", {"type": "span", "feature_channels": 16, "img_range": 255.0,
                                         "rgb_mean": [0.4488, 0.4371, 0.4040]})
    config, warnings = _parse(raw, strict=True)
    assert config.network_g.type == "SPAN" and config.network_g.to_spec() == ArchSpec(
        "span", dict(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2, norm=True, deploy=False))
    _fails(_set(raw, "network_g.img_range", 1.0), "network_g.img_range", "unsupported")
    no_scale = _set(raw, "network_g.upscale", 2)
    del no_scale["scale"]
    assert _parse(no_scale)[0].scale == 2
    del no_scale["network_g"]["upscale"]
    _fails(no_scale, "scale", "is required")


def test_multiscale_lesrcnn_rules():
    raw = _set(_minimal(), "network_g", {"type": "LESRCNN", "multi_scale": True})
    raw = _set(raw, "datasets.train.scales", [2, 3, 4])
    _fails(_set(raw, "datasets.train.gt_size", 100), "datasets.train.gt_size", "not divisible by 3")
    config, _ = _parse(_set(raw, "datasets.train.gt_size", 48))
    assert config.network_g.scales == (2, 3, 4) and config.network_g.kwargs["scale"] is None
    _fails(_set(raw, "scale", 8), "scale", "serves ×2, 3, 4")
    paired = _set(_set(raw, "datasets.train.gt_size", 48), "datasets.train.type", "PairedImageDataset")
    _fails(_set(paired, "datasets.train.dataroot_lq", "lr"), "datasets.train.dataroot_lq", "one scale")


def test_defaults_and_null_sections():
    raw = _minimal()
    raw["train"]["perceptual_opt"] = None  # disabled, as in BasicSR files
    raw["logger"] = None
    config, warnings = _parse(raw, strict=True)
    assert warnings == []
    assert config.path.experiments_root == "experiments/tiny"
    assert config.path.visualization == "experiments/tiny/visualization"
    assert config.train.ema_decay == 0.0 and config.train.grad_clip is None and config.train.compile is False
    assert config.val_sets[0].batch_size_per_gpu == 1 and not config.val_sets[0].use_shuffle
    assert config.train_set.scales == (2,) and config.logger.print_freq == 100
