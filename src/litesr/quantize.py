"""INT8 inference: ONNX Runtime static quantization of the deploy graph, calibrated on training crops.

:func:`quantize_int8` exports the deploy graph (:func:`litesr.export.export_onnx`, any
input size), measures activation ranges on LR crops of *training* images
(:class:`Calibration`) and rewrites it in ONNX Runtime's QDQ form: int8 weights per output
channel, uint8 activations, the convolutions then run as VNNI integer kernels. The
image-facing convolutions (:func:`litesr.inference.head_and_tail`), each network's
``precision_sensitive_layers``, and the convolutions measured on the calibration crops to
cost most (:mod:`litesr.quant_sensitivity`) stay fp32; the ONNX metadata says which nodes
they are and the loss the measurement predicts. :func:`int8_model` keeps every
quantized graph in the user cache (:func:`litesr.cache.cache_dir` ``/int8``), so a model,
scale and calibration set are quantized once per LiteSR/ONNX Runtime version.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from . import __version__
from .archs import SRNet
from .cache import cache_dir
from .data.data_dir import resolve_data_path
from .data.files import DataError, PathLike, as_rgb_uint8, list_image_files
from .devices import INT8
from .errors import LiteSRError
from .export import METADATA_KEY, OnnxError, OrtNet, _deploy_copy, _require, export_onnx
from .imaging.atomic import atomic_write
from .imaging.io import read_image
from .imaging.resize import make_lr
from .inference import head_and_tail
from .metrics import psnr
from .model import SRModel
from .quant_sensitivity import TARGET_LOSS_DB, sensitive_layers

__all__ = [
    "BENCHMARK_SET_NAMES", "DEFAULT_CALIBRATION", "Calibration", "CalibrationError", "int8_fidelity",
    "int8_graph", "int8_model", "quantize_int8",
]

#: The calibration source when none is named: a training set, resolved like benchmark sets.
DEFAULT_CALIBRATION = "T91"
#: Folder names that are evaluation sets: calibrating on them would tune the int8 graph to
#: the very images its PSNR is reported on.
BENCHMARK_SET_NAMES: frozenset[str] = frozenset({"set5", "set14", "b100", "bsd100", "urban100", "manga109"})
#: Bumped whenever the recipe below changes what a cached graph holds.
RECIPE_VERSION = 2
#: The loss (dB) the int8 graph may show on the calibration crops before more layers stay fp32:
#: half the issue's 0.1 dB target, because training crops understate the loss on smoother
#: images (scnet-t-x2.litesr lost 0.062 dB on T91 crops and 0.147 dB on Set5).
VALIDATED_LOSS_DB = 0.05
#: Calibration crops the check runs on.
VALIDATION_CROPS = 16
#: Smallest PSNR (dB) of the int8 graph against PyTorch fp32 accepted by ``litesr export --int8``,
#: on the smooth test fields of :func:`int8_fidelity`.
INT8_MIN_PSNR = 35.0


class CalibrationError(DataError):
    """A calibration source that cannot be used: missing, empty, or a benchmark set."""


@dataclass(frozen=True)
class Calibration:
    """Where calibration crops come from and how many: ``crops`` LR crops of ``size``² pixels.

    The LR is made as LiteSR's training pairs and the benchmark LR files are made,
    ``imresize(modcrop(HR, s), 1/s)`` with the MATLAB-exact bicubic
    (:func:`litesr.imaging.resize.make_lr`), and cropped afterwards: the activation ranges
    measured are then those the network saw in training and meets on bicubic-degraded
    inputs. Images and crop positions are drawn with ``seed``, so the same source always
    gives the same graph.
    """

    source: PathLike = DEFAULT_CALIBRATION
    crops: int = 64
    size: int = 96
    seed: int = 0
    _images: list[Path] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.crops < 1 or self.size < 8:
            raise CalibrationError(f"calibration needs at least 1 crop of at least 8×8 pixels, "
                                   f"got {self.crops} of {self.size}×{self.size}")

    @property
    def folder(self) -> Path:
        """The source as a folder: a path, or a set name looked up like the benchmark sets."""
        return resolve_data_path(self.source, what="calibration set")

    def images(self) -> list[Path]:
        """The source's image files (listed once), after refusing benchmark sets and empty folders."""
        if not self._images:
            folder = self.folder
            parts = [self.source if isinstance(self.source, str) else "", *folder.resolve().parts]
            benchmark = next((p for p in parts if Path(p).name.casefold() in BENCHMARK_SET_NAMES), None)
            if benchmark is not None:
                raise CalibrationError(f"{folder} is (in) the benchmark set {Path(benchmark).name}: calibrate on "
                                       "training images (T91, BSD200, DIV2K...), never on the images you evaluate on")
            try:
                self._images.extend(list_image_files(folder, what="calibration"))
            except DataError as error:
                raise CalibrationError(str(error)) from None
        return self._images

    def fingerprint(self) -> str:
        """Names, sizes and times of the images plus the crop recipe: what the crops depend on."""
        folder = self.folder
        digest = hashlib.sha256(json.dumps([self.crops, self.size, self.seed]).encode())
        for path in self.images():
            stat = path.stat()
            digest.update(f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def describe(self) -> str:
        return (f"{self.crops} LR crops of {self.size}×{self.size} (MATLAB bicubic of HR, seed {self.seed}) "
                f"from {len(self.images())} images in {self.folder}")

    def lr_crops(self, scale: int) -> list[np.ndarray]:
        """The LR crops as float32 ``1×3×side×side`` arrays in [0, 1] (see :meth:`crop_pairs`)."""
        return [lr for lr, _ in self.crop_pairs(scale)]

    def crop_pairs(self, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(LR crop, the HR crop it was made from) pairs, float32 ``1×3×H×W`` arrays in [0, 1].

        All LR crops have one side (histogram calibrations stack them): ``size``, drawn from
        the images large enough for it, or the smallest LR side when none is. The HR crops
        let :func:`sensitive_layers` weigh int8 noise against the network's own error.
        """
        images = self.images()
        sides = [min(_image_size(path)) // scale for path in images]
        side = min(self.size, max(sides))
        usable = [path for path, image_side in zip(images, sides) if image_side >= side]
        if side < 1:
            raise CalibrationError(f"the calibration images in {self.folder} are smaller than the scale ×{scale}")
        rng = np.random.default_rng(self.seed)
        picks = rng.permutation(np.resize(np.arange(len(usable)), max(self.crops, len(usable))))[:self.crops]
        decoded: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        pairs = []
        for index in picks:
            if index not in decoded:
                high = as_rgb_uint8(read_image(usable[index]).pixels)
                decoded[index] = (make_lr(high, scale), high)
            low, high = decoded[index]
            top = int(rng.integers(0, low.shape[0] - side + 1))
            left = int(rng.integers(0, low.shape[1] - side + 1))
            lr = low[top:top + side, left:left + side]
            hr = high[top * scale:(top + side) * scale, left * scale:(left + side) * scale]
            pairs.append((_as_batch(lr), _as_batch(hr)))
        return pairs


def _as_batch(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32) / 255


def _image_size(path: Path) -> tuple[int, int]:
    """Width and height from the file's header, without decoding its pixels."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError) as error:
        raise CalibrationError(f"cannot read calibration image {path}: {error}") from None


def as_calibration(calibration: Calibration | PathLike | None) -> Calibration:
    """A :class:`Calibration` from one, a folder or a set name (``None``: the default set)."""
    if isinstance(calibration, Calibration):
        return calibration
    return Calibration(DEFAULT_CALIBRATION if calibration is None else calibration)


# --------------------------------------------------------------------------- quantization


@dataclass(frozen=True)
class Recipe:
    """The ONNX Runtime settings of a quantization (chosen by the Set5 measurements of BENCHMARKS.md)."""

    activations: str = "QUInt8"
    weights: str = "QInt8"
    method: str = "MinMax"
    op_types: tuple[str, ...] = ("Conv",)
    keep_head_and_tail: bool = True
    #: Also keep, in fp32, the convolutions measured to cost most (:mod:`litesr.quant_sensitivity`)
    #: until the predicted Set5 loss is at most this many dB; ``None``: no measurement.
    target_loss_db: float | None = TARGET_LOSS_DB

    def as_dict(self) -> dict[str, Any]:
        return {"activations": self.activations, "weights": self.weights, "method": self.method,
                "op_types": list(self.op_types), "keep_head_and_tail": self.keep_head_and_tail,
                "target_loss_db": self.target_loss_db}


DEFAULT_RECIPE = Recipe()


class _Reader:
    """ONNX Runtime's calibration-data-reader protocol over a list of input arrays."""

    def __init__(self, arrays: Sequence[np.ndarray], input_name: str) -> None:
        self._items: Iterator[np.ndarray] = iter(arrays)
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        array = next(self._items, None)
        return None if array is None else {self._name: array}

    def rewind(self) -> None:  # part of the protocol; one pass is all static quantization makes
        pass


def fp32_layers(net: SRNet, scale: int, recipe: Recipe = DEFAULT_RECIPE) -> list[nn.Module]:
    """Layers kept fp32 whatever the weights: head/tail convs (if the recipe says so) and the
    architecture's ``precision_sensitive_layers``."""
    layers = list(net.precision_sensitive_layers())
    if recipe.keep_head_and_tail:
        head, tail = head_and_tail(net, scale)
        layers = head + tail + layers
    return layers


def fp32_node_names(net: SRNet, graph: Any, layers: Sequence[nn.Module]) -> list[str]:
    """ONNX nodes of ``graph`` that run ``layers`` (which stay fp32).

    A PyTorch layer is found by its weight: the exporter names a Conv's weight input
    ``net.<layer path>.weight`` (``net`` is the exported wrapper's attribute), also where a
    layer runs twice (LESRCNN's ×4 upsampler) or shares its weight (an Identity node).
    """
    names = {id(module): name for name, module in net.named_modules()}
    weights = {f"net.{names[id(layer)]}.weight" for layer in layers if id(layer) in names}
    return [node.name for node in graph.node if node.op_type == "Conv" and len(node.input) > 1
            and node.input[1] in weights]


def quantize_int8(model: SRModel, calibration: Calibration | PathLike | None = None, *, scale: int | None = None,
                  recipe: Recipe = DEFAULT_RECIPE) -> bytes:
    """The int8 ONNX graph of ``model`` at ``scale`` (any input size), as bytes.

    Weights are int8 per output channel (symmetric), activations quantized with ranges
    measured on ``calibration`` (default: :data:`DEFAULT_CALIBRATION`); the layers of
    :func:`fp32_layers` and those :func:`litesr.quant_sensitivity.sensitive_layers` measures
    to cost most stay fp32, and more (noisiest first) while the graph loses more than
    :data:`VALIDATED_LOSS_DB` on the calibration crops. The ``litesr`` metadata gets
    ``"precision": "int8"``, ``"fp32_nodes"``, ``"calibration"`` and the measured
    ``"calibration_loss_db"``. ``model`` is not modified.
    """
    onnx = _require("onnx")
    _require("onnxruntime")
    calibration = as_calibration(calibration)
    scale = model.check_scale(scale)
    pairs = calibration.crop_pairs(scale)  # a bad calibration source fails before the export
    crops = [lr for lr, _ in pairs]
    exported = export_onnx(model, size=(64, 64), scale=scale, dynamic_shape=True)
    graph = onnx.load_from_string(exported)  # read-only here: ONNX Runtime's quantizer gets fresh copies
    net = _deploy_copy(model)
    layers = fp32_layers(net, scale, recipe)
    sensitivity: dict[str, Any] = {}
    if recipe.target_loss_db is None:
        keep = fp32_node_names(net, graph.graph, layers)
        quantized = _quantize_static(onnx.load_from_string(exported), crops, keep, recipe)
    else:
        _, report = sensitive_layers(net, pairs, scale, layers, recipe.target_loss_db)
        # The per-layer model assumes noises add up independently; check the real graph on
        # the calibration crops and keep more layers (noisiest first) while it misses.
        ranked, count = report.ranked(), len(report.kept)
        modules = dict(net.named_modules())
        while True:
            keep = fp32_node_names(net, graph.graph, layers + [modules[name] for name in ranked[:count]])
            quantized = _quantize_static(onnx.load_from_string(exported), crops, keep, recipe)
            loss = _calibration_loss_db(quantized, net, pairs, scale)
            if loss <= VALIDATED_LOSS_DB or count >= len(ranked):
                break
            count = min(len(ranked), max(2 * count, count + 2))
        sensitivity = {"measured_fp32_layers": ranked[:count], "predicted_loss_db": round(report.predicted_loss_db(), 4),
                       "calibration_loss_db": round(loss, 4)}
    metadata = json.loads(next(p.value for p in graph.metadata_props if p.key == METADATA_KEY))
    metadata.update(precision=INT8, fp32_nodes=keep, calibration=calibration.describe(), quantization=recipe.as_dict(),
                    onnxruntime=_require("onnxruntime").__version__, **sensitivity)
    del quantized.metadata_props[:]
    onnx.helper.set_model_props(quantized, {METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    return quantized.SerializeToString()


def _quantize_static(graph: Any, crops: Sequence[np.ndarray], keep: Sequence[str], recipe: Recipe) -> Any:
    """ONNX Runtime's static QDQ quantization of ``graph`` with ``keep`` left in fp32."""
    onnx = _require("onnx")
    from onnxruntime import quantization as ort_quantization

    with tempfile.TemporaryDirectory(prefix="litesr-int8-") as folder, _quiet_root_logger():
        output = Path(folder) / "int8.onnx"
        try:
            ort_quantization.quantize_static(
                graph, output, _Reader(crops, graph.graph.input[0].name),
                quant_format=ort_quantization.QuantFormat.QDQ, per_channel=True,
                activation_type=getattr(ort_quantization.QuantType, recipe.activations),
                weight_type=getattr(ort_quantization.QuantType, recipe.weights),
                calibrate_method=getattr(ort_quantization.CalibrationMethod, recipe.method),
                op_types_to_quantize=list(recipe.op_types), nodes_to_exclude=list(keep),
                extra_options={"WeightSymmetric": True})
        except Exception as error:  # ONNX Runtime's quantizer raises many types
            raise OnnxError(f"int8 quantization failed: {str(error).strip().splitlines()[0]}") from None
        return onnx.load(str(output))


def _calibration_loss_db(quantized: Any, net: SRNet, pairs: Sequence[tuple[np.ndarray, np.ndarray]],
                         scale: int) -> float:
    """PSNR lost (dB, RGB, against the HR crops) by the int8 graph on :data:`VALIDATION_CROPS` crops."""
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(quantized.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    picks = np.linspace(0, len(pairs) - 1, min(VALIDATION_CROPS, len(pairs))).round().astype(int)
    fp32_error = int8_error = 0.0
    with torch.inference_mode():
        for index in picks:
            lr, hr = pairs[index]
            reference = net(torch.from_numpy(lr), scale).clamp(0, 1).numpy()
            output = np.clip(session.run(None, {name: lr})[0], 0, 1)
            fp32_error += float(((reference - hr) ** 2).mean())
            int8_error += float(((output - hr) ** 2).mean())
    return float(10 * np.log10(int8_error / fp32_error)) if fp32_error > 0 else 0.0


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ONNX Runtime's quantizer logs advice (run its pre-processing) on the root logger: not for users.

    The export is constant-folded already and the convolutions are what gets quantized,
    so the pre-processing pass has nothing to add.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


# --------------------------------------------------------------------------- cache and models


def weights_digest(model: SRModel) -> str:
    """A digest of the deploy-form weights and the spec: equal for the same network in any form."""
    net = _deploy_copy(model)
    digest = hashlib.sha256(json.dumps([net.__class__.__name__, model.spec.for_network(net).describe()]).encode())
    for name, tensor in sorted(net.state_dict().items()):
        array = tensor.detach().contiguous().numpy()
        digest.update(f"{name}\0{array.dtype}\0{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def cache_path(model: SRModel, calibration: Calibration, scale: int, recipe: Recipe = DEFAULT_RECIPE) -> Path:
    """Where the int8 graph of this model, scale, calibration and software versions is kept."""
    ort = _require("onnxruntime")
    key = json.dumps({"weights": weights_digest(model), "scale": scale, "calibration": calibration.fingerprint(),
                      "recipe": recipe.as_dict(), "recipe_version": RECIPE_VERSION, "litesr": __version__,
                      "onnxruntime": ort.__version__}, sort_keys=True)
    return cache_dir() / "int8" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.onnx"


def int8_graph(model: SRModel, calibration: Calibration | PathLike | None = None, *, scale: int | None = None,
               on_quantize: Callable[[Calibration], None] | None = None) -> bytes:
    """:func:`quantize_int8`'s graph, from the cache when it is there (written there when not).

    ``on_quantize`` is called just before a quantization (a cache miss: tens of seconds),
    so a caller can say what is happening. An unreadable or unwritable cache only costs
    the quantization: the graph is still returned.
    """
    calibration = as_calibration(calibration)
    scale = model.check_scale(scale)
    path = cache_path(model, calibration, scale)
    try:
        return path.read_bytes()
    except OSError:
        pass
    if on_quantize is not None:
        on_quantize(calibration)
    data = quantize_int8(model, calibration, scale=scale)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: handle.write(data))
    except (OSError, LiteSRError):
        pass
    return data


def int8_model(model: SRModel, calibration: Calibration | PathLike | None = None, *, scale: int | None = None,
               threads: int | None = None, on_quantize: Callable[[Calibration], None] | None = None) -> SRModel:
    """``model`` at ``scale`` as an int8 ONNX Runtime model (CPU), quantized once and then cached."""
    if model.device.type != "cpu":
        raise OnnxError(f"int8 runs on the CPU through ONNX Runtime, not on {model.device}; use device='cpu'")
    runner = OrtNet(int8_graph(model, calibration, scale=scale, on_quantize=on_quantize), threads=threads)
    return SRModel(None, runner.spec, name=model.name, source=model.source, runner=runner)


def int8_fidelity(data: bytes, model: SRModel, sizes: Sequence[tuple[int, int]] = ((64, 64), (45, 67)),
                  scale: int | None = None) -> float:
    """Lowest PSNR (dB, RGB, [0, 1] clamped) of the int8 graph against PyTorch fp32 over test images.

    The images are smooth random fields (as :func:`litesr.export.check_onnx` uses): an int8
    graph is not expected to match to fp32 rounding, so closeness is a PSNR, not a max difference.
    """
    runner = OrtNet(data)
    net = _deploy_copy(model)
    scale = net.check_scale(scale)
    generator = torch.Generator().manual_seed(0)
    worst = float("inf")
    with torch.inference_mode():
        for height, width in sizes:
            coarse = torch.rand(1, 3, height // 8 + 2, width // 8 + 2, generator=generator)
            x = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
            expected = net(x, scale).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255
            got = runner(x, scale, INT8).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255
            worst = min(worst, psnr(got, expected))
    return worst
