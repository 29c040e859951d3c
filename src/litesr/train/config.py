"""Typed schema for BasicSR-style YAML training/test option files.

The option files the papers ship (``train_SCNet-T-x4.yml``, ``test_SCNet-T-x4.yml``) parse
unchanged: every key they use is either honoured, accepted as informational (``num_gpu``,
``dist_params``, SPAN's official ``img_range``/``rgb_mean``) or reported. LiteSR adds a few
keys in the same style: ``HRImageDataset`` (an HR-only folder, LR made on the fly by
MATLAB-compatible bicubic), a dataset's ``scales`` (multi-scale LESRCNN), and in ``train``
``grad_clip``, ``precision``, ``channels_last``, ``compile`` and ``weight_init``.

Rules:

* Keys LiteSR does not know are warnings (``unknown key 'train.foo' ignored``), returned by
  :func:`load_config`; ``strict=True`` turns every warning into an error.
* Anything LiteSR cannot honour (a GAN loss, an unknown optimizer, a scale mismatch, a
  negative learning rate, a value of the wrong type) raises :class:`ConfigError` with one
  sentence naming the file and the key path.
* Numbers are read the YAML 1.2 way as well: ``1e-3`` is a float even without BasicSR's
  ``!!float`` tag, and a whole float (``!!float 5e3``) is accepted where an int is expected.
* Reading the YAML and ``--set`` overrides lives in :mod:`.yaml_options`, typed key access
  in :mod:`.sections`; this module is the schema and its parsing.
* Paths are kept as written (relative paths are relative to the working directory, as in
  BasicSR) and are not checked here: placeholders like ``Path to your data`` parse, and
  fail later, when the data is opened.
"""
from __future__ import annotations

import math
import os
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ..archs import Architecture, UnknownArchitectureError, architectures, get_architecture
from ..spec import ArchSpec
from .sections import REQUIRED, Context, Section, as_int, float_list, int_list, path_list
from .yaml_options import ConfigError, apply_override, describe, read_yaml

__all__ = [
    "ConfigError", "CosineAnnealingRestartLROptions", "DatasetOptions", "LoggerOptions",
    "LossOptions", "MetricOptions", "MultiStepLROptions", "NetworkOptions", "OptimizerOptions",
    "PathOptions", "TrainConfig", "TrainOptions", "ValOptions", "apply_override", "load_config",
    "parse_config", "read_yaml",
]


_UNSUPPORTED_PIXEL_ONLY = "unsupported: LiteSR trains with a pixel loss only"


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

def _official_value_matches(value: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    if isinstance(expected, tuple):
        return (isinstance(value, (list, tuple)) and len(value) == len(expected)
                and all(_official_value_matches(v, e) for v, e in zip(value, expected)))
    return isinstance(value, (int, float)) and math.isclose(value, expected, rel_tol=0, abs_tol=1e-6)


@dataclass(frozen=True)
class NetworkOptions:
    """``network_g``: the architecture and every constructor argument (defaults filled in)."""

    type: str                       # the architecture's display name (SCNet, SPAN, LESRCNN, ...)
    kwargs: dict[str, Any]

    @property
    def architecture(self) -> Architecture:
        return get_architecture(self.type)

    @property
    def arch(self) -> str:
        """LiteSR's architecture name (``scnet``/``span``/``lesrcnn``)."""
        return self.architecture.name

    @property
    def multi_scale(self) -> bool:
        argument = self.architecture.multi_scale_argument
        return bool(argument and self.kwargs.get(argument, False))

    @property
    def scales(self) -> tuple[int, ...]:
        """Every scale the network serves."""
        return self.architecture.served_scales(self.kwargs)

    def to_spec(self) -> ArchSpec:
        return ArchSpec(self.arch, dict(self.kwargs))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.kwargs}


DATASET_TYPES = ("PairedImageDataset", "SingleImageDataset", "HRImageDataset")


@dataclass(frozen=True)
class DatasetOptions:
    """One entry of ``datasets`` (``train``, ``val``, ``val_*``, ``test_*``)."""

    phase: str                                  # the key under ``datasets``
    name: str
    type: str                                   # one of DATASET_TYPES
    scales: tuple[int, ...]                     # LR/HR scales drawn from (train) or evaluated (val)
    dataroot_gt: tuple[str, ...] | None = None  # one or more HR folders
    dataroot_lq: tuple[str, ...] | None = None  # None: LR made on the fly (MATLAB bicubic)
    filename_tmpl: str = "{}"
    io_backend: str = "disk"                    # disk or lmdb
    gt_size: int | None = None                  # HR patch size (train)
    use_hflip: bool = False
    use_rot: bool = False
    use_shuffle: bool = True
    batch_size_per_gpu: int = 1
    num_worker_per_gpu: int = 0
    dataset_enlarge_ratio: int = 1
    pin_memory: bool = False
    prefetch_mode: str | None = None            # None or cpu
    num_prefetch_queue: int = 1

    @property
    def is_train(self) -> bool:
        return self.phase == "train"

    @property
    def lr_on_the_fly(self) -> bool:
        return self.type != "SingleImageDataset" and self.dataroot_lq is None

    def to_dict(self, default_scale: int) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        for key in ("dataroot_gt", "dataroot_lq"):
            folders = getattr(self, key)
            if folders is not None:
                out[key] = folders[0] if len(folders) == 1 else list(folders)
        out["filename_tmpl"] = self.filename_tmpl
        out["io_backend"] = {"type": self.io_backend}
        if self.scales != (default_scale,):
            out["scales"] = list(self.scales)
        if self.gt_size is not None:
            out["gt_size"] = self.gt_size
        # The training set states every loader option; a val/test set only what differs.
        defaults = {"use_hflip": False, "use_rot": False, "use_shuffle": self.is_train, "batch_size_per_gpu": 1,
                    "num_worker_per_gpu": 0, "dataset_enlarge_ratio": 1, "pin_memory": False,
                    "prefetch_mode": None, "num_prefetch_queue": 1}
        for key, default in defaults.items():
            value = getattr(self, key)
            if self.is_train or value != default:
                out[key] = value
        return out


@dataclass(frozen=True)
class OptimizerOptions:
    type: str                                   # Adam or AdamW
    lr: float
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "lr": self.lr, "weight_decay": self.weight_decay, "betas": list(self.betas)}


@dataclass(frozen=True)
class MultiStepLROptions:
    milestones: tuple[int, ...]
    gamma: float = 0.1
    type: str = field(default="MultiStepLR", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "milestones": list(self.milestones), "gamma": self.gamma}

    def stretched(self, factor: float) -> MultiStepLROptions:
        """The same schedule over ``factor`` × as many iterations (milestones scaled)."""
        return replace(self, milestones=_stretch(self.milestones, factor, increasing=True))


@dataclass(frozen=True)
class CosineAnnealingRestartLROptions:
    periods: tuple[int, ...]
    restart_weights: tuple[float, ...]
    eta_min: float = 0.0
    type: str = field(default="CosineAnnealingRestartLR", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "periods": list(self.periods), "restart_weights": list(self.restart_weights),
                "eta_min": self.eta_min}

    def stretched(self, factor: float) -> CosineAnnealingRestartLROptions:
        """The same schedule over ``factor`` × as many iterations (periods scaled)."""
        return replace(self, periods=_stretch(self.periods, factor))


def _stretch(iterations: tuple[int, ...], factor: float, *, increasing: bool = False) -> tuple[int, ...]:
    """Scale iteration counts, keeping each ≥ 1 (and, for milestones, strictly increasing)."""
    out: list[int] = []
    for value in iterations:
        floor = out[-1] + 1 if increasing and out else 1
        out.append(max(round(value * factor), floor))
    return tuple(out)


SchedulerOptions = MultiStepLROptions | CosineAnnealingRestartLROptions


@dataclass(frozen=True)
class LossOptions:
    type: str                                   # L1Loss, MSELoss or CharbonnierLoss
    loss_weight: float = 1.0
    reduction: str = "mean"                     # mean or sum
    eps: float | None = None                    # CharbonnierLoss only (default 1e-12 there)

    def to_dict(self) -> dict[str, Any]:
        out = {"type": self.type, "loss_weight": self.loss_weight, "reduction": self.reduction}
        if self.eps is not None:
            out["eps"] = self.eps
        return out


PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainOptions:
    optim_g: OptimizerOptions
    total_iter: int
    pixel_opt: LossOptions
    scheduler: SchedulerOptions | None = None   # None: constant learning rate
    ema_decay: float = 0.0                      # 0: no EMA
    warmup_iter: int = -1                       # -1: no warm-up
    grad_clip: float | None = None              # max gradient norm
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    weight_init: str = "official"               # or a scheme of the architecture (Architecture.weight_inits)
    time_budget: float | None = None            # seconds: fit total_iter to it (litesr.train.budget)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ema_decay": self.ema_decay,
            "optim_g": self.optim_g.to_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.to_dict(),
            "total_iter": self.total_iter,
            "warmup_iter": self.warmup_iter,
            "pixel_opt": self.pixel_opt.to_dict(),
            "grad_clip": self.grad_clip,
            "precision": self.precision,
            "channels_last": self.channels_last,
            "compile": self.compile,
            "weight_init": self.weight_init,
            "time_budget": self.time_budget,
        }


@dataclass(frozen=True)
class MetricOptions:
    name: str                                   # the key under ``val.metrics`` (free-form)
    type: str                                   # calculate_psnr or calculate_ssim
    crop_border: int | None = 0                 # None (LiteSR): crop the scale being evaluated
    test_y_channel: bool = False

    @property
    def metric(self) -> str:
        """``psnr`` or ``ssim``."""
        return self.type.removeprefix("calculate_")

    def crop_for(self, scale: int) -> int:
        return scale if self.crop_border is None else self.crop_border

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "crop_border": self.crop_border, "test_y_channel": self.test_y_channel}


@dataclass(frozen=True)
class ValOptions:
    val_freq: int | None = None
    save_img: bool = False
    suffix: str | None = None
    metrics: tuple[MetricOptions, ...] = ()
    pbar: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"val_freq": self.val_freq, "save_img": self.save_img, "suffix": self.suffix, "pbar": self.pbar,
                "metrics": {metric.name: metric.to_dict() for metric in self.metrics}}


@dataclass(frozen=True)
class LoggerOptions:
    print_freq: int = 100
    save_checkpoint_freq: int = 5000
    use_tb_logger: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"print_freq": self.print_freq, "save_checkpoint_freq": self.save_checkpoint_freq,
                "use_tb_logger": self.use_tb_logger}


@dataclass(frozen=True)
class PathOptions:
    experiments_root: str
    visualization: str
    pretrain_network_g: str | None = None
    strict_load_g: bool = True
    param_key_g: str = "params"
    resume_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"pretrain_network_g": self.pretrain_network_g, "strict_load_g": self.strict_load_g,
                "param_key_g": self.param_key_g, "resume_state": self.resume_state,
                "experiments_root": self.experiments_root, "visualization": self.visualization}


@dataclass(frozen=True)
class TrainConfig:
    """A whole option file, validated. ``train`` is None for a test-only file."""

    name: str
    scale: int
    network_g: NetworkOptions
    path: PathOptions
    datasets: tuple[DatasetOptions, ...] = ()   # in file order
    train: TrainOptions | None = None
    val: ValOptions | None = None
    logger: LoggerOptions = field(default_factory=LoggerOptions)
    model_type: str = "SRModel"
    num_gpu: int | str | None = None            # informational
    manual_seed: int | None = None
    dist_params: dict[str, Any] | None = None   # informational
    source: str | None = field(default=None, compare=False)

    @property
    def train_set(self) -> DatasetOptions | None:
        return next((dataset for dataset in self.datasets if dataset.is_train), None)

    @property
    def val_sets(self) -> list[DatasetOptions]:
        return [dataset for dataset in self.datasets if not dataset.is_train]

    @property
    def experiment_dir(self) -> Path:
        return Path(self.path.experiments_root)

    def to_dict(self) -> dict[str, Any]:
        """BasicSR-vocabulary dict of the resolved options; :func:`parse_config` reads it back equal."""
        out: dict[str, Any] = {
            "name": self.name, "model_type": self.model_type, "scale": self.scale, "num_gpu": self.num_gpu,
            "manual_seed": self.manual_seed,
            "datasets": {dataset.phase: dataset.to_dict(self.scale) for dataset in self.datasets},
            "network_g": self.network_g.to_dict(),
            "path": self.path.to_dict(),
        }
        if self.train is not None:
            out["train"] = self.train.to_dict()
        if self.val is not None:
            out["val"] = self.val.to_dict()
        out["logger"] = self.logger.to_dict()
        if self.dist_params is not None:
            out["dist_params"] = dict(self.dist_params)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = (),
                strict: bool = False) -> tuple[TrainConfig, list[str]]:
    """Read, override (``key.path=value`` strings, applied before validation) and validate."""
    raw, duplicate_warnings = read_yaml(path)
    for override in overrides:
        apply_override(raw, override)
    ctx = Context(str(path), strict)
    for warning in duplicate_warnings:
        ctx.warn(None, warning.removeprefix(f"{ctx.source}: "))
    config = _parse(ctx, raw)
    return config, ctx.warnings


def parse_config(raw: Mapping[str, Any], source: str = "<config>",
                 strict: bool = False) -> tuple[TrainConfig, list[str]]:
    """Validate an already-loaded option dict (e.g. :meth:`TrainConfig.to_dict` output)."""
    ctx = Context(source, strict)
    return _parse(ctx, raw), ctx.warnings


_GAN_KEYS = ("network_d",)
_GAN_TRAIN_KEYS = ("optim_d", "scheduler_d", "net_d_iters", "net_d_init_iters")


def _parse(ctx: Context, raw: Mapping[str, Any]) -> TrainConfig:
    top = Section(ctx, "", raw)
    name = top.str("name", REQUIRED)
    if not name.strip():
        top.fail("name", "must not be empty")
    model_type = top.take("model_type", "SRModel")
    if model_type != "SRModel":
        top.fail("model_type", f"unsupported model type {model_type!r}: LiteSR supports SRModel only")
    for key in _GAN_KEYS:
        if top.has(key):
            top.fail(key, f"{_UNSUPPORTED_PIXEL_ONLY} (no discriminator)")
    scale = top.int("scale", minimum=1)
    num_gpu = top.take("num_gpu")
    if num_gpu is not None and num_gpu != "auto":
        num_gpu = as_int(top, "num_gpu", num_gpu, minimum=0)
    manual_seed = top.int("manual_seed", minimum=0)

    network, scale = _parse_network(top, scale)
    datasets = _parse_datasets(top, scale, network)
    path = _parse_path(top.section("path"), name)
    train = _parse_train(top.section("train")) if top.has("train") else top.take("train")
    if train is not None:
        weight_inits = ("official", *network.architecture.weight_inits)
        if train.weight_init not in weight_inits:
            ctx.fail("train.weight_init", f"{train.weight_init!r} is not implemented for {network.type}; "
                                          f"use {' or '.join(weight_inits)}")
    val = _parse_val(top.section("val")) if top.has("val") else top.take("val")
    logger = _parse_logger(top.section("logger"))
    dist_params = top.take("dist_params")
    if dist_params is not None and not isinstance(dist_params, dict):
        top.fail("dist_params", f"must be a section, got {describe(dist_params)}")
    top.done()

    has_train_set = any(dataset.is_train for dataset in datasets)
    if train is not None and not has_train_set:
        ctx.fail("datasets.train", "is required when the file has a train section")
    if has_train_set and train is None:
        ctx.fail("train", "is required when the file has a datasets.train entry")
    return TrainConfig(name=name, scale=scale, network_g=network, path=path, datasets=datasets, train=train,
                       val=val, logger=logger, model_type=model_type, num_gpu=num_gpu, manual_seed=manual_seed,
                       dist_params=dist_params, source=ctx.source)


def _read_argument(section: Section, key: str, kind: Any) -> Any:
    """One ``network_g`` argument, typed by the constructor's annotation (ints are ≥ 1)."""
    kinds = set(typing.get_args(kind)) - {type(None)} or {kind}
    if bool in kinds:
        return section.bool(key)
    if int in kinds:
        return section.int(key, minimum=1)
    if float in kinds:
        return section.float(key)
    if str in kinds:
        return section.str(key)
    section.fail(key, "cannot be set from an option file (its type is not a number, bool or string)")
    return None


def _parse_network(top: Section, scale: int | None) -> tuple[NetworkOptions, int]:
    """``network_g``: the type names a registered architecture; its arguments follow its constructor."""
    if not top.has("network_g"):
        top.fail("network_g", "is required")
    section = top.section("network_g")
    type_name = section.take("type", REQUIRED)
    try:
        architecture = get_architecture(str(type_name))
    except UnknownArchitectureError:
        known = ", ".join(a.display_name for a in architectures())
        section.fail("type", f"unknown network type {type_name!r}; LiteSR supports {known}")
    name = architecture.display_name
    defaults = architecture.defaults()
    kwargs: dict[str, Any] = dict(defaults)

    for key, expected in architecture.official_options.items():
        if key in section.data:
            value = section.take(key)
            if value is not None and not _official_value_matches(value, expected):
                section.fail(key, f"unsupported value {value!r}: LiteSR's {name} implements only the "
                                  f"official {key}={expected!r}")
    scale_argument = architecture.scale_argument
    settable = {key: kind for key, kind in architecture.argument_types().items() if key != scale_argument}
    for key, kind in settable.items():
        if key in section.data:
            value = _read_argument(section, key, kind)
            if value is not None:
                kwargs[key] = value
    net_scale = section.int(scale_argument, minimum=1)
    if section.data:
        unknown = next(iter(section.data))
        valid = sorted({*settable, scale_argument, *architecture.official_options})
        section.fail(unknown, f"unknown {name} argument; valid ones are {', '.join(valid)}")

    scale_key = section.key(scale_argument)
    supported = ", ".join(map(str, architecture.scales))
    multi_argument = architecture.multi_scale_argument
    if multi_argument and kwargs.get(multi_argument):
        # One network for every scale: the constructor ignores its scale argument; the
        # top-level ``scale`` picks the default (and must be one it serves).
        if net_scale is not None and net_scale not in architecture.scales:
            top.ctx.fail(scale_key, f"the multi-scale {name} serves ×{supported}, got {net_scale}")
        if scale is None:
            scale = net_scale
        if scale is None:
            top.fail("scale", f"is required for the multi-scale {name} (one of {supported})")
        if scale not in architecture.scales:
            top.fail("scale", f"the multi-scale {name} serves ×{supported}, got {scale}")
        kwargs[scale_argument] = None
    else:
        if net_scale is None and scale is None:
            top.fail("scale", f"is required (or set {scale_key})")
        if net_scale is not None and scale is not None and net_scale != scale:
            top.ctx.fail(scale_key, f"is {net_scale} but the top-level scale is {scale}; they must match")
        scale = scale if scale is not None else net_scale
        if scale not in architecture.scales:
            where = scale_key if net_scale is not None else "scale"
            top.ctx.fail(where, f"{name} supports scale {supported}, got {scale}")
        kwargs[scale_argument] = scale
    ordered = {key: kwargs[key] for key in architecture.parameters() if key in kwargs}
    return NetworkOptions(name, ordered), scale


def _is_phase(phase: str) -> bool:
    return phase in ("train", "val", "test") or phase.startswith(("val_", "test_"))


def _parse_datasets(top: Section, scale: int, network: NetworkOptions) -> tuple[DatasetOptions, ...]:
    section = top.section("datasets")
    result = []
    for phase in list(section.data):
        if not _is_phase(phase):
            section.fail(phase, "is not a dataset phase; use train, val, val_<name> or test_<name>")
        result.append(_parse_dataset(section.section(phase), phase, scale, network))
    section.done()
    return tuple(result)


def _parse_dataset(section: Section, phase: str, scale: int, network: NetworkOptions) -> DatasetOptions:
    is_train = phase == "train"
    type_name = section.choice("type", DATASET_TYPES, REQUIRED)
    name = section.str("name", phase)
    dataroot_gt = path_list(section, "dataroot_gt")
    dataroot_lq = path_list(section, "dataroot_lq")
    scales = int_list(section, "scales", minimum=1) or (scale,)
    if len(set(scales)) != len(scales):
        section.fail("scales", f"lists a scale twice: {list(scales)}")
    for value in scales:
        if value not in network.scales:
            served = ", ".join(f"×{s}" for s in network.scales)
            section.fail("scales", f"has ×{value} but the {network.type} network serves {served}")

    if type_name == "SingleImageDataset":
        if is_train:
            section.fail("type", "SingleImageDataset has no ground truth to train on; use PairedImageDataset "
                                 "or HRImageDataset")
        if dataroot_lq is None:
            section.fail("dataroot_lq", "is required for a SingleImageDataset (its LR images)")
    else:
        if dataroot_gt is None:
            section.fail("dataroot_gt", f"is required for a {type_name}")
        if type_name == "HRImageDataset" and dataroot_lq is not None:
            section.fail("dataroot_lq", "is not used by HRImageDataset, which makes LR on the fly; "
                                        "use PairedImageDataset for stored LR images")
        if dataroot_lq is not None and len(dataroot_lq) != len(dataroot_gt):
            section.fail("dataroot_lq", f"lists {len(dataroot_lq)} folders but dataroot_gt lists "
                                        f"{len(dataroot_gt)}; they must pair up")
        if dataroot_lq is not None and len(scales) > 1:
            section.fail("dataroot_lq", "holds LR images of one scale, so scales must list one scale; "
                                        "drop dataroot_lq to make LR on the fly")

    filename_tmpl = section.str("filename_tmpl", "{}")
    if "{}" not in filename_tmpl:
        section.fail("filename_tmpl", f"must contain '{{}}' (where the HR file name goes), got {filename_tmpl!r}")
    backend = section.section("io_backend")
    io_backend = backend.choice("type", ("disk", "lmdb"), "disk")
    backend.done()

    gt_size = section.int("gt_size", minimum=1)
    if is_train and type_name != "SingleImageDataset":
        if gt_size is None:
            section.fail("gt_size", "is required for training (the HR patch size)")
        for value in scales:
            if gt_size % value:
                section.fail("gt_size", f"must be divisible by every scale, but {gt_size} is not divisible by {value}")
    batch_size = section.int("batch_size_per_gpu", REQUIRED if is_train else 1, minimum=1)
    prefetch_mode = section.take("prefetch_mode")
    if isinstance(prefetch_mode, str) and prefetch_mode.lower() == "cuda":
        section.ctx.warn(section.key("prefetch_mode"),
                         f"{section.key('prefetch_mode')}: 'cuda' prefetching is not supported; ignored")
        prefetch_mode = None
    elif prefetch_mode is not None:
        if not isinstance(prefetch_mode, str) or prefetch_mode.lower() != "cpu":
            section.fail("prefetch_mode", f"must be null, cpu or cuda, got {describe(prefetch_mode)}")
        prefetch_mode = "cpu"
    options = DatasetOptions(
        phase=phase, name=name, type=type_name, scales=scales, dataroot_gt=dataroot_gt, dataroot_lq=dataroot_lq,
        filename_tmpl=filename_tmpl, io_backend=io_backend, gt_size=gt_size,
        use_hflip=section.bool("use_hflip", False), use_rot=section.bool("use_rot", False),
        use_shuffle=section.bool("use_shuffle", is_train),
        batch_size_per_gpu=batch_size,
        num_worker_per_gpu=section.int("num_worker_per_gpu", 0, minimum=0),
        dataset_enlarge_ratio=section.int("dataset_enlarge_ratio", 1, minimum=1),
        pin_memory=section.bool("pin_memory", False), prefetch_mode=prefetch_mode,
        num_prefetch_queue=section.int("num_prefetch_queue", 1, minimum=1),
    )
    section.done()
    return options


def _parse_path(section: Section, name: str) -> PathOptions:
    experiments_root = section.str("experiments_root", f"experiments/{name}")
    options = PathOptions(
        experiments_root=experiments_root,
        visualization=section.str("visualization", f"{experiments_root}/visualization"),
        pretrain_network_g=section.str("pretrain_network_g"),
        strict_load_g=section.bool("strict_load_g", True),
        param_key_g=section.str("param_key_g", "params"),
        resume_state=section.str("resume_state"),
    )
    section.done()
    return options


def _parse_train(section: Section) -> TrainOptions:
    for key in list(section.data):
        if key in _GAN_TRAIN_KEYS or (key.endswith("_opt") and key != "pixel_opt"):
            if section.has(key):
                section.fail(key, _UNSUPPORTED_PIXEL_ONLY)
            section.take(key)  # ``perceptual_opt: ~`` is the same as leaving it out

    if not section.has("optim_g"):
        section.fail("optim_g", "is required")
    optim = section.section("optim_g")
    optimizer = OptimizerOptions(
        type=optim.choice("type", ("Adam", "AdamW"), REQUIRED),
        lr=optim.float("lr", REQUIRED, positive=True),
        weight_decay=optim.float("weight_decay", 0.0, minimum=0.0),
        betas=float_list(optim, "betas", (0.9, 0.999), minimum=0.0, below=1.0),
    )
    if len(optimizer.betas) != 2:
        optim.fail("betas", f"must be two numbers, got {list(optimizer.betas)}")
    optim.done()

    total_iter = section.int("total_iter", REQUIRED, minimum=1)
    scheduler = _parse_scheduler(section.section("scheduler"), total_iter) if section.has("scheduler") else None
    section.take("scheduler")

    if not section.has("pixel_opt"):
        section.fail("pixel_opt", "is required (LiteSR trains with a pixel loss)")
    loss_section = section.section("pixel_opt")
    loss_type = loss_section.choice("type", ("L1Loss", "MSELoss", "CharbonnierLoss"), REQUIRED)
    eps = loss_section.float("eps", positive=True)
    if eps is not None and loss_type != "CharbonnierLoss":
        loss_section.fail("eps", f"applies to CharbonnierLoss only, not {loss_type}")
    loss = LossOptions(
        type=loss_type,
        loss_weight=loss_section.float("loss_weight", 1.0, positive=True),
        reduction=loss_section.choice("reduction", ("mean", "sum"), "mean"),
        eps=eps,
    )
    loss_section.done()

    warmup_iter = section.int("warmup_iter", -1, minimum=-1)
    if warmup_iter >= total_iter:
        section.fail("warmup_iter", f"must be less than total_iter ({total_iter}), got {warmup_iter}")
    options = TrainOptions(
        optim_g=optimizer, total_iter=total_iter, pixel_opt=loss, scheduler=scheduler,
        ema_decay=section.float("ema_decay", 0.0, minimum=0.0, below=1.0),
        warmup_iter=warmup_iter,
        grad_clip=section.float("grad_clip", positive=True),
        precision=section.choice("precision", PRECISIONS, "fp32"),
        channels_last=section.bool("channels_last", False),
        compile=section.bool("compile", False),
        weight_init=section.str("weight_init", "official"),  # checked against the architecture's schemes
        time_budget=_duration(section, "time_budget"),
    )
    section.done()
    return options


def _duration(section: Section, name: str) -> float | None:
    """Seconds from a number (seconds) or a string with a unit: ``"90s"``, ``"8m"``, ``"1.5h"``."""
    value = section.take(name)
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        section.fail(name, str(error))
    return seconds


def parse_duration(value: Any) -> float:
    """``480``, ``"480"``, ``"90s"``, ``"8m"``, ``"1.5h"`` → seconds (> 0)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    text = str(value).strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)", text) if not isinstance(value, bool) else None
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"must be a positive duration such as 480, '90s', '8m' or '1.5h', got {value!r}")
    return float(match[1]) * units[match[2] or "s"]


def _parse_scheduler(section: Section, total_iter: int) -> SchedulerOptions:
    kind = section.choice("type", ("MultiStepLR", "CosineAnnealingRestartLR"), REQUIRED)
    scheduler: SchedulerOptions
    if kind == "MultiStepLR":
        milestones = int_list(section, "milestones", REQUIRED, minimum=1)
        if list(milestones) != sorted(set(milestones)):
            section.fail("milestones", f"must be increasing, got {list(milestones)}")
        scheduler = MultiStepLROptions(milestones=milestones, gamma=section.float("gamma", 0.1, positive=True))
    else:
        periods = int_list(section, "periods", REQUIRED, minimum=1)
        weights = float_list(section, "restart_weights", (1.0,) * len(periods), minimum=0.0)
        if len(weights) != len(periods):
            section.fail("restart_weights", f"must have one weight per period ({len(periods)}), got {len(weights)}")
        if sum(periods) < total_iter:
            section.fail("periods", f"must add up to at least total_iter ({total_iter}), got {sum(periods)}")
        scheduler = CosineAnnealingRestartLROptions(periods=periods, restart_weights=weights,
                                                    eta_min=section.float("eta_min", 0.0, minimum=0.0))
    section.done()
    return scheduler


_METRIC_TYPES = {"calculate_psnr": "calculate_psnr", "psnr": "calculate_psnr",
                 "calculate_ssim": "calculate_ssim", "ssim": "calculate_ssim"}


def _parse_val(section: Section) -> ValOptions:
    metrics_section = section.section("metrics")
    metrics = []
    for metric_name in list(metrics_section.data):
        metric = metrics_section.section(metric_name)
        type_name = metric.take("type", REQUIRED)
        canonical = _METRIC_TYPES.get(type_name.lower()) if isinstance(type_name, str) else None
        if canonical is None:
            metric.fail("type", f"unsupported metric {type_name!r}; LiteSR computes calculate_psnr and calculate_ssim")
        crop = metric.data.pop("crop_border") if "crop_border" in metric.data else 0
        if crop is not None:
            crop = as_int(metric, "crop_border", crop, minimum=0)
        metrics.append(MetricOptions(name=metric_name, type=canonical, crop_border=crop,
                                     test_y_channel=metric.bool("test_y_channel", False)))
        metric.done()
    options = ValOptions(
        val_freq=section.int("val_freq", minimum=1),
        save_img=section.bool("save_img", False),
        suffix=section.str("suffix"),
        metrics=tuple(metrics),
        pbar=section.bool("pbar", False),
    )
    section.done()
    return options


def _parse_logger(section: Section) -> LoggerOptions:
    wandb = section.section("wandb")
    project = wandb.take("project")
    if project is not None:
        section.ctx.warn(wandb.key("project"),
                         f"{wandb.key('project')}: Weights & Biases logging is not supported; ignored")
    wandb.take("resume_id")
    wandb.done()
    options = LoggerOptions(
        print_freq=section.int("print_freq", 100, minimum=1),
        save_checkpoint_freq=section.int("save_checkpoint_freq", 5000, minimum=1),
        use_tb_logger=section.bool("use_tb_logger", False),
    )
    section.done()
    return options
