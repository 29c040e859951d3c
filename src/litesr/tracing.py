"""Layer tracing: which leaf layers a network runs, in order, with their shapes and MACs.

Shared by :mod:`litesr.inference` (tile-memory estimates, the head and tail of a
reduced-precision plan) and :mod:`litesr.profile` (the cost report), so neither needs the
other. A convolution costs ``output elements × in_channels/groups × kH × kW``
multiply-accumulates and a linear layer ``output elements × in_features``; biases,
activations, pixel shuffles and interpolations are free (the fvcore convention).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

@dataclass(frozen=True)
class LayerRecord:
    """One leaf module call, in execution order."""

    name: str
    module: nn.Module = field(repr=False, compare=False)
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    macs: int

    @property
    def input_elements(self) -> int:
        return _numel(self.input_shape)

    @property
    def output_elements(self) -> int:
        return _numel(self.output_shape)


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def layer_macs(module: nn.Module, output_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one call of ``module`` that produced ``output_shape``."""
    if isinstance(module, nn.Conv2d):
        kernel_h, kernel_w = module.kernel_size
        return _numel(output_shape) * (module.in_channels // module.groups) * kernel_h * kernel_w
    if isinstance(module, nn.Linear):
        return _numel(output_shape) * module.in_features
    return 0


@torch.inference_mode()
def trace_layers(net: nn.Module, x: torch.Tensor, *args: Any) -> list[LayerRecord]:
    """Run ``net(x, *args)`` once and record every leaf module call in execution order.

    Execution order is what matters (registration order differs: SPAN registers
    ``conv_cat`` before ``conv_2``, LESRCNN its upsampler last), so the record is taken
    by hooks rather than by walking ``net.modules()``.
    """
    records: list[LayerRecord] = []
    names = {module: name for name, module in net.named_modules()}

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            return
        first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        records.append(LayerRecord(names.get(module, type(module).__name__), module,
                                   tuple(first.shape) if first is not None else (),
                                   tuple(output.shape), layer_macs(module, tuple(output.shape))))

    leaves = [module for module in net.modules() if not any(True for _ in module.children())]
    handles = [module.register_forward_hook(hook) for module in leaves]
    try:
        net(x, *args)
    finally:
        for handle in handles:
            handle.remove()
    return records


def trace_shapes(net: nn.Module, size: tuple[int, int], *args: Any, channels: int = 3) -> list[LayerRecord]:
    """:func:`trace_layers` without computing anything: a copy of ``net`` runs on the meta device.

    Shapes — hence MACs and activations — are all that counting needs, so a 256×256 ×4
    network is traced in milliseconds whatever its cost. Falls back to a real CPU pass if
    some operation has no meta implementation.
    """
    try:
        meta = copy.deepcopy(net).to("meta")
        return trace_layers(meta, torch.empty(1, channels, *size, device="meta"), *args)
    except (NotImplementedError, RuntimeError):
        return trace_layers(net, torch.zeros(1, channels, *size, device=network_device(net)), *args)


def network_device(net: nn.Module) -> torch.device:
    """The device of a network's weights (CPU for a network without any)."""
    tensor = next(net.parameters(), None)
    if tensor is None:
        tensor = next(net.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def count_parameters(net: nn.Module, trainable_only: bool = False) -> int:
    """Parameters of ``net``: all of them (what the weights file holds), or the trainable ones."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)
