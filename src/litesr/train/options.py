"""The typed options of a BasicSR-style option file: one frozen dataclass per section.

Kept apart from the parsing (:mod:`.config` and its section parsers) so that the trainer,
the ``litesr test`` runner and the parsers share one vocabulary. Every class has a
``to_dict`` that writes BasicSR's keys back, so :meth:`TrainConfig.to_yaml` round-trips
through :func:`litesr.train.config.parse_config` unchanged (the experiment's
``config.yml`` is how a run is resumed as it was configured).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ..archs import Architecture, get_architecture
from ..spec import ArchSpec

__all__ = [
    "DATASET_TYPES", "PRECISIONS", "CosineAnnealingRestartLROptions", "DatasetOptions", "LoggerOptions",
    "LossOptions", "MetricOptions", "MultiStepLROptions", "NetworkOptions", "OptimizerOptions", "PathOptions",
    "SchedulerOptions", "TrainConfig", "TrainOptions", "ValOptions",
]


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


#: ``auto`` measures bf16 against fp32 on the machine that trains (:func:`litesr.precision.choose_training_precision`).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


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
