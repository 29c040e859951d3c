"""PSNR/SSIM of a model (or of plain bicubic) on a benchmark set, the way SR papers measure it.

The default protocol is the one of the EDSR/BasicSR lineage, behind nearly every table
published since 2017 (and behind the reference numbers this project reproduces):

1. HR cropped to a multiple of the scale (``modcrop``);
2. LR = the given MATLAB-made LR files, or ``imresize(HR, 1/s)`` made with the
   MATLAB-exact port when a set has none (bit-identical to MATLAB);
3. the model runs on the uint8 LR / 255 (float32, NCHW, deploy form, inference mode);
4. the SR output is clamped to [0, 1], ×255 and **rounded** to uint8 (BasicSR's
   ``tensor2img``; ``quantization="truncate"`` floors instead, as some older code does by
   casting with ``.byte()``);
5. PSNR and SSIM on BT.601 luma ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (RGB in
   [0, 1]) kept as **float** (``y_round=True`` rounds Y to integers first, as MATLAB's
   ``rgb2ycbcr`` does on uint8 images and as some papers' scripts do), with ``crop_border``
   = scale pixels dropped on each side;
6. one PSNR/SSIM per image; a set's score is the mean over its images.

Gray images (Set14's ``bridge`` is a one-channel PNG) — ``gray="replicate"``, the
default, does what the BasicSR/EDSR lineage does: the gray image is read as RGB with
R = G = B (BasicSR decodes every file with OpenCV's ``IMREAD_COLOR``; EDSR's
``set_channel`` concatenates the channel three times) for the LR fed to the model *and*
for the HR it is compared with, so its "Y" is ``16 + 219·v/255``.  ``gray="native"``
follows the MATLAB evaluation scripts (``if size(im, 3) == 3, rgb2ycbcr ...``): the gray
HR is compared on its own 0-255 levels; the model still gets R = G = B input and its
three output channels are averaged into one gray image before quantization.  The choice
moves ``bridge`` by ``20·log10(255/219)`` ≈ 1.32 dB (native is lower) and a Set14 mean by
≈ 0.09 dB; RGB-only sets (Set5, B100) are unaffected.  See docs/evaluation.md.

The :data:`bicubic` baseline upsamples the uint8 LR with MATLAB ``imresize(LR, s)``
(uint8 in, uint8 out, rounded by MATLAB's rules), so there is nothing to quantize.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.benchmark import BenchmarkSet, DatasetError, Sample, open_benchmark
from .errors import LiteSRError
from .imaging.io import ImageError, to_float_tensor, write_image
from .imaging.resize import imresize
from .metrics import psnr as _psnr
from .metrics import quantize as _quantize_round
from .metrics import ssim as _ssim
from .model import SRModel
from .precision import resolve_precision, warn_once

__all__ = [
    "Bicubic",
    "DatasetError",
    "EvaluationError",
    "ImageResult",
    "Protocol",
    "SetResult",
    "bicubic",
    "evaluate",
]

Quantization = Literal["round", "truncate"]
GrayMode = Literal["replicate", "native"]
QUANTIZATIONS = ("round", "truncate")
GRAY_MODES = ("replicate", "native")
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)


class EvaluationError(LiteSRError):
    """An evaluation cannot run as asked (scale not served, bad option, output size wrong...)."""


class Bicubic:
    """The bicubic baseline as a "model": MATLAB ``imresize(LR, s, 'bicubic')`` on uint8.

    Any integer scale is served.  ``upscale`` takes and returns uint8 arrays (H×W or
    H×W×C); the output is rounded by MATLAB's rules after each 1-D pass.
    """

    name = "bicubic"
    arch = "bicubic"
    source = "MATLAB-exact imresize (litesr.imaging.resize)"

    def __repr__(self) -> str:
        return "Bicubic()"

    def upscale(self, lr: np.ndarray, scale: int) -> np.ndarray:
        return imresize(np.ascontiguousarray(lr), scale=float(scale))


#: The bicubic baseline; pass it (or the string ``"bicubic"``) to :func:`evaluate`.
bicubic = Bicubic()

ModelLike = Union[SRModel, Bicubic, str, os.PathLike]


@dataclass(frozen=True)
class Protocol:
    """Every choice that changes the numbers, recorded with each result."""

    scale: int
    y_channel: bool = True
    crop_border: int = 0
    quantization: str = "round"
    y_round: bool = False
    gray: str = "replicate"

    def describe(self) -> str:
        channel = ("Y (rounded)" if self.y_round else "Y (float)") if self.y_channel else "RGB"
        quant = "rounded" if self.quantization == "round" else "truncated"
        return (
            f"×{self.scale}, PSNR/SSIM on {channel}, border {self.crop_border}, SR {quant} to uint8, "
            f"gray images {'as R=G=B' if self.gray == 'replicate' else 'on their gray levels'}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "hr": f"cropped to a multiple of {self.scale} (modcrop)",
            "sr_to_uint8": (
                "clamp to [0, 1], x255, round half to even" if self.quantization == "round"
                else "clamp to [0, 1], x255, truncate (floor)"
            ),
            "channel": (
                ("BT.601 Y = 16 + 65.481 R + 128.553 G + 24.966 B (RGB in [0, 1]), "
                 + ("rounded to integers" if self.y_round else "float, not rounded"))
                if self.y_channel else "RGB, all three channels"
            ),
            "psnr": "10 log10(255^2 / MSE) per image, mean over the set",
            "ssim": "Gaussian 11x11, sigma 1.5, valid region, per image, mean over the set",
        }


@dataclass
class ImageResult:
    """One image's scores; ``seconds`` is the time of the model (or bicubic) call alone."""

    name: str
    psnr: float
    ssim: float
    seconds: float
    height: int
    width: int
    gray: bool = False


@dataclass
class SetResult:
    """Per-image PSNR/SSIM of one model on one set at one scale, and their means."""

    set_name: str
    model: str
    protocol: Protocol
    images: list[ImageResult]
    hr_dir: str = ""
    lr_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scale(self) -> int:
        return self.protocol.scale

    @property
    def lr_origin(self) -> str:
        return "made" if self.lr_dir is None else "given"

    @property
    def psnr(self) -> float:
        """Mean PSNR over the images (dB)."""
        return float(np.mean([r.psnr for r in self.images])) if self.images else float("nan")

    @property
    def ssim(self) -> float:
        """Mean SSIM over the images."""
        return float(np.mean([r.ssim for r in self.images])) if self.images else float("nan")

    @property
    def seconds(self) -> float:
        return float(sum(r.seconds for r in self.images))

    def __repr__(self) -> str:
        return (f"SetResult({self.set_name!r}, {self.model!r}, ×{self.scale}: "
                f"PSNR {self.psnr:.3f} dB, SSIM {self.ssim:.4f}, {len(self.images)} images)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "set": self.set_name,
            "model": self.model,
            "scale": self.scale,
            "hr_dir": self.hr_dir,
            "lr_dir": self.lr_dir,
            "lr": self.lr_origin,
            "psnr": _finite_or_none(self.psnr),
            "ssim": _finite_or_none(self.ssim),
            "seconds": self.seconds,
            "protocol": self.protocol.to_dict(),
            "images": [
                {**asdict(r), "psnr": _finite_or_none(r.psnr), "ssim": _finite_or_none(r.ssim)}
                for r in self.images
            ],
            **self.extra,
        }


def _finite_or_none(value: float) -> float | None:
    """JSON has no infinity: a PSNR of identical images (inf) is written as null."""
    return float(value) if np.isfinite(value) else None


def model_label(model: SRModel | Bicubic) -> str:
    if isinstance(model, Bicubic):
        return "bicubic"
    return model.name or (Path(model.source).name if model.source else model.arch)


def resolve_model(model: ModelLike, device: str | torch.device = "cpu") -> SRModel | Bicubic:
    """``"bicubic"`` → :data:`bicubic`; another string or path → :func:`litesr.load`."""
    if isinstance(model, (SRModel, Bicubic)):
        return model
    if isinstance(model, (str, os.PathLike)):
        if str(model).lower() == "bicubic":
            return bicubic
        from . import load  # late import: litesr/__init__ imports nothing from here

        return load(model, device=device)
    raise EvaluationError(f"expected an SRModel, 'bicubic' or a model name/path, got {type(model).__name__}")


def evaluate(
    model_or_bicubic: ModelLike,
    dataset: BenchmarkSet | str | os.PathLike[str],
    scale: int | None = None,
    *,
    y_channel: bool = True,
    crop_border: int | None = None,
    quantization: Quantization = "round",
    y_round: bool = False,
    gray: GrayMode = "replicate",
    progress: bool = True,
    save_dir: str | os.PathLike[str] | None = None,
    precision: str = "fp32",
) -> SetResult:
    """Score a model on a benchmark set; returns per-image PSNR/SSIM and their means.

    Args:
        model_or_bicubic: an :class:`SRModel` (switched to its deploy form), :data:`bicubic`,
            or a zoo name / weights path / ``"bicubic"``.
        dataset: a :class:`BenchmarkSet` (see :func:`litesr.data.benchmark.open_benchmark`),
            a folder, or a set name such as ``"Set5"`` looked up in the data directory
            (``$LITESR_DATA``, default ``~/.cache/litesr/data``; see docs/data.md), opened
            with the default LR rules.
        scale: the factor; defaults to the set's, else the model's default scale.
            Multi-scale models (LESRCNN) are run at this scale.
        y_channel: PSNR/SSIM on BT.601 Y (default) or on RGB.
        crop_border: pixels dropped on each side before scoring; default = scale.
        quantization: ``"round"`` (default, BasicSR) or ``"truncate"`` the SR output to uint8.
        y_round: round Y to integers before scoring (MATLAB ``rgb2ycbcr`` on uint8).
        gray: ``"replicate"`` (default, BasicSR/EDSR) or ``"native"`` (MATLAB scripts);
            see the module docstring.
        progress: show a tqdm progress bar on stderr.
        save_dir: if given, each SR image (the uint8 image that was scored) is written
            there as ``<name>.png``.
        precision: what the network runs in (``"fp32"`` by default, so that scores
            reproduce published fp32 tables on every machine; ``"auto"``, ``"bf16"``, ...
            to score what a faster setting costs).
    """
    model = resolve_model(model_or_bicubic)
    scale = _resolve_scale(model, dataset, scale)
    if isinstance(model, SRModel):
        if scale not in model.scales:
            served = ", ".join(f"×{s}" for s in model.scales)
            raise EvaluationError(f"{model_label(model)} serves {served}, not ×{scale}")
        model.deploy()
        choice = resolve_precision(precision, model.runner, scale)
        warn_once(choice)
        precision = choice.precision
    if not isinstance(dataset, BenchmarkSet):
        dataset = open_benchmark(dataset, scale)
    elif dataset.scale != scale:
        raise EvaluationError(f"the set {dataset.name} was opened for ×{dataset.scale}, not ×{scale}")
    if quantization not in QUANTIZATIONS:
        raise EvaluationError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    if gray not in GRAY_MODES:
        raise EvaluationError(f"gray must be one of {', '.join(GRAY_MODES)}, got {gray!r}")
    if crop_border is None:
        crop_border = scale
    if isinstance(crop_border, bool) or not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise EvaluationError(f"crop_border must be a non-negative integer, got {crop_border!r}")
    protocol = Protocol(scale, bool(y_channel), int(crop_border), quantization, bool(y_round), gray)
    out_dir = _prepare_save_dir(save_dir)

    results: list[ImageResult] = []
    bar = tqdm(
        range(len(dataset)), desc=f"{dataset.name} ×{scale}", unit="img", disable=not progress,
        leave=False, file=sys.stderr, dynamic_ncols=True,
    )
    with bar:
        for index in bar:
            sample = dataset[index]
            sr, hr, seconds = _super_resolve(model, sample, protocol, precision)
            results.append(_score(sample.name, sr, hr, seconds, protocol))
            if out_dir is not None:
                _save(out_dir / f"{sample.name}.png", sr)
    return SetResult(
        dataset.name, model_label(model), protocol, results,
        hr_dir=str(dataset.hr_dir), lr_dir=None if dataset.lr_dir is None else str(dataset.lr_dir),
    )


# --------------------------------------------------------------------------- steps


def _resolve_scale(model: SRModel | Bicubic, dataset: object, scale: int | None) -> int:
    if scale is None:
        if isinstance(dataset, BenchmarkSet):
            return dataset.scale
        if isinstance(model, SRModel):
            return model.scale
        raise EvaluationError("the bicubic baseline needs a scale")
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise EvaluationError(f"the scale must be a positive integer, got {scale!r}")
    return int(scale)


def _prepare_save_dir(save_dir: str | os.PathLike[str] | None) -> Path | None:
    if save_dir is None:
        return None
    path = Path(save_dir)
    if path.exists() and not path.is_dir():
        raise EvaluationError(f"cannot save images in {path}: it is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvaluationError(f"cannot create {path}: {exc.strerror or exc}") from None
    return path


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


def _channels(sample: Sample, gray_mode: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """Reconcile HR/LR channels; returns (hr, lr, gray) with gray True for a native-gray pair."""
    hr, lr = sample.hr, sample.lr
    if hr.ndim == 2 and lr.ndim == 3:
        if (lr == lr[:, :, :1]).all():
            lr = lr[:, :, 0]
        elif gray_mode == "native":
            raise EvaluationError(
                f"{sample.name}: the HR image is gray but its LR image has colour; use gray='replicate' (--gray replicate)"
            )
    if hr.ndim == 3 and lr.ndim == 2:
        lr = _rgb(lr)
    if hr.ndim == 2 and gray_mode == "replicate":
        hr, lr = _rgb(hr), _rgb(lr)
    return hr, lr, hr.ndim == 2


def _quantize(output: torch.Tensor, mode: str) -> np.ndarray:
    """1×C×H×W float output → H×W×C (H×W for C = 1) uint8, rounded or truncated."""
    chw = output[0].detach().to("cpu", torch.float32)
    if mode == "round":
        arr = _quantize_round(chw)
    else:
        arr = np.floor(np.clip(chw.numpy(), 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    arr = np.ascontiguousarray(arr.transpose(1, 2, 0))
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


def _super_resolve(model: SRModel | Bicubic, sample: Sample, protocol: Protocol,
                   precision: str = "fp32") -> tuple[np.ndarray, np.ndarray, float]:
    hr, lr, gray = _channels(sample, protocol.gray)
    start = time.perf_counter()
    if isinstance(model, Bicubic):
        sr = model.upscale(lr, protocol.scale)
    else:
        tensor = to_float_tensor(_rgb(lr))
        with torch.inference_mode():
            output = model.run(tensor, protocol.scale, precision)
            if gray:
                output = output.mean(dim=1, keepdim=True)
        sr = _quantize(output, protocol.quantization)
    seconds = time.perf_counter() - start
    if sr.shape != hr.shape:
        raise EvaluationError(
            f"{sample.name}: the model's output is {sr.shape[1]}×{sr.shape[0]} but the HR image is "
            f"{hr.shape[1]}×{hr.shape[0]} (is the scale ×{protocol.scale} right for this model?)"
        )
    return sr, hr, seconds


def rounded_y(img: np.ndarray) -> np.ndarray:
    """BT.601 Y rounded to uint8, as MATLAB ``rgb2ycbcr`` returns it for a uint8 image.

    Gray (H×W) images are returned unchanged, like :func:`litesr.imaging.color.rgb_to_y`.
    """
    if img.ndim == 2:
        return img
    y = img.astype(np.float64) @ _Y_WEIGHTS / 255.0 + 16.0
    return np.floor(y + 0.5).astype(np.uint8)  # MATLAB rounds half away from zero


def _score(name: str, sr: np.ndarray, hr: np.ndarray, seconds: float, protocol: Protocol) -> ImageResult:
    border = protocol.crop_border
    try:
        if protocol.y_channel and protocol.y_round:
            a, b = rounded_y(sr), rounded_y(hr)
            value_psnr = _psnr(a, b, crop_border=border)
            value_ssim = _ssim(a, b, crop_border=border)
        else:
            value_psnr = _psnr(sr, hr, crop_border=border, y_channel=protocol.y_channel)
            value_ssim = _ssim(sr, hr, crop_border=border, y_channel=protocol.y_channel)
    except ValueError as exc:  # e.g. a crop border that leaves nothing of a small image
        raise EvaluationError(f"{name}: {exc}") from None
    return ImageResult(name, value_psnr, value_ssim, seconds, int(hr.shape[0]), int(hr.shape[1]), hr.ndim == 2)


def _save(path: Path, sr: np.ndarray) -> None:
    try:
        write_image(path, sr)
    except ImageError as exc:
        raise EvaluationError(str(exc)) from None
