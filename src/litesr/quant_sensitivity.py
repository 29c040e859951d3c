"""Which convolutions int8 would hurt: measured per layer on calibration crops, before quantizing.

Why: a fixed list of fp32 layers cannot fit every model. The same SPAN architecture has,
in the ×2 release, one body convolution whose input spans −0.3…91 — uint8 leaves it 0.36
per step and the network 4.4 dB short on Set5 — while in the ×4 release every body
convolution costs under 0.03 dB. So each convolution is tried alone in simulated int8
(PyTorch fake quantization of what ONNX Runtime's QDQ graph rounds: the input activation
per tensor as uint8 over its calibrated min/max range, the weights per output channel as
symmetric int8, the output like the input) and the mean squared change of the network
output is recorded.

Keeping a layer in fp32 removes its share of the noise; the layers are kept, noisiest
first, until the rest adds up to no more than the budget. The budget comes from the
network's own error on the same crops (against their HR): int8 noise ``e`` on top of an
error ``m`` lowers PSNR by ``10·log10(1 + e/m)`` dB, so a loss of at most ``target_db``
allows ``e = m·(10^(target_db/10) − 1)``. Summing single-layer noises assumes they add up
independently, which is why the target is half the 0.1 dB the issue allows.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

#: The Set5 loss the budget aims at, in dB (half of the 0.1 dB allowed: see the module docstring).
TARGET_LOSS_DB = 0.05
#: Crops each single-layer simulation runs on (the ranges use every calibration crop).
SIMULATION_CROPS = 8


@dataclass(frozen=True)
class LayerNoise:
    """One convolution's simulated int8 noise: the mean squared change of the output it causes."""

    name: str
    mse: float


@dataclass(frozen=True)
class SensitivityReport:
    """What :func:`sensitive_layers` measured and decided."""

    kept: list[str]
    noises: list[LayerNoise]
    model_mse: float
    budget_mse: float

    def ranked(self) -> list[str]:
        """Every measured layer, noisiest first (the order in which layers are kept in fp32)."""
        return [noise.name for noise in sorted(self.noises, key=lambda n: n.mse, reverse=True)]

    def predicted_loss_db(self) -> float:
        """The Set5-style PSNR loss the remaining (quantized) layers add up to, by the model above."""
        rest = sum(noise.mse for noise in self.noises if noise.name not in self.kept)
        return float(10 * np.log10(1 + rest / self.model_mse)) if self.model_mse > 0 else 0.0


def _fake_uint8(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Asymmetric uint8 rounding over [min(low, 0), max(high, 0)] (ONNX Runtime's MinMax range)."""
    low, high = min(low, 0.0), max(high, 0.0)
    step = (high - low) / 255 or 1.0
    zero = round(-low / step)
    return (torch.clamp(torch.round(x / step) + zero, 0, 255) - zero) * step


def _fake_int8_per_channel(weight: torch.Tensor) -> torch.Tensor:
    step = weight.abs().amax(dim=tuple(range(1, weight.dim())), keepdim=True) / 127
    step = torch.where(step > 0, step, torch.ones_like(step))
    return torch.clamp(torch.round(weight / step), -127, 127) * step


def _ranges(net: nn.Module, convs: dict[str, nn.Conv2d], inputs: Sequence[torch.Tensor],
            scale: int) -> dict[str, tuple[float, float, float, float]]:
    """(input min, input max, output min, output max) of every convolution over ``inputs``."""
    found: dict[str, list[float]] = {}

    def record(name: str):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            values = [args[0].min().item(), args[0].max().item(), output.min().item(), output.max().item()]
            if name in found:
                old = found[name]
                values = [min(old[0], values[0]), max(old[1], values[1]), min(old[2], values[2]),
                          max(old[3], values[3])]
            found[name] = values
        return hook

    handles = [conv.register_forward_hook(record(name)) for name, conv in convs.items()]
    try:
        for x in inputs:
            net(x, scale)
    finally:
        for handle in handles:
            handle.remove()
    return {name: tuple(values) for name, values in found.items()}  # type: ignore[misc]


def _simulated(net: nn.Module, conv: nn.Conv2d, limits: tuple[float, float, float, float],
               inputs: Sequence[torch.Tensor], scale: int) -> list[torch.Tensor]:
    """The network's outputs with ``conv`` alone in simulated int8."""
    in_low, in_high, out_low, out_high = limits
    original = conv.weight.data
    conv.weight.data = _fake_int8_per_channel(original)
    before = conv.register_forward_pre_hook(lambda module, args: (_fake_uint8(args[0], in_low, in_high),))
    after = conv.register_forward_hook(lambda module, args, output: _fake_uint8(output, out_low, out_high))
    try:
        return [net(x, scale) for x in inputs]
    finally:
        before.remove(), after.remove()
        conv.weight.data = original


def sensitive_layers(net: nn.Module, pairs: Sequence[tuple[np.ndarray, np.ndarray]], scale: int,
                     already_kept: Sequence[nn.Module] = (), target_db: float = TARGET_LOSS_DB,
                     ) -> tuple[list[nn.Module], SensitivityReport]:
    """The convolutions of ``net`` (deploy form, fp32, CPU) to keep in fp32 besides ``already_kept``.

    ``pairs`` are (LR, HR) calibration crops (:meth:`litesr.quantize.Calibration.crop_pairs`).
    """
    net = net.eval()
    kept_ids = {id(layer) for layer in already_kept}
    convs = {name: module for name, module in net.named_modules()
             if isinstance(module, nn.Conv2d) and id(module) not in kept_ids}
    lows = [torch.from_numpy(lr) for lr, _ in pairs]
    highs = [torch.from_numpy(hr) for _, hr in pairs]
    sample = np.linspace(0, len(pairs) - 1, min(SIMULATION_CROPS, len(pairs))).round().astype(int)
    with torch.inference_mode():
        limits = _ranges(net, convs, lows, scale)
        inputs = [lows[i] for i in sample]
        reference = [net(x, scale) for x in inputs]
        model_mse = float(np.mean([((out.clamp(0, 1) - highs[i]) ** 2).mean().item()
                                   for out, i in zip(reference, sample)]))
        noises = []
        for name, conv in convs.items():
            if name not in limits:  # not on the path this scale takes (a multi-scale model's other branches)
                continue
            outputs = _simulated(net, conv, limits[name], inputs, scale)
            mse = float(np.mean([((a - b) ** 2).mean().item() for a, b in zip(outputs, reference)]))
            noises.append(LayerNoise(name, mse))
    budget = model_mse * (10 ** (target_db / 10) - 1)
    kept: list[str] = []
    remaining = sum(noise.mse for noise in noises)
    for noise in sorted(noises, key=lambda n: n.mse, reverse=True):
        if remaining <= budget:
            break
        kept.append(noise.name)
        remaining -= noise.mse
    report = SensitivityReport(kept, noises, model_mse, budget)
    return [convs[name] for name in kept], report
