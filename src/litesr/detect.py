"""Recover the architecture and all its hyper-parameters from a state dict's keys and shapes.

Published checkpoints rarely say what they are. Each family leaves a fingerprint in its key
names (``conv_first`` + ``body.N.conv1`` for SCNet, ``conv_cat`` + ``block_N.cK_r`` for
SPAN, ``conv17_1`` for LESRCNN) and its hyper-parameters in tensor shapes, so a user can
load any of them without naming the architecture. The only case shapes cannot settle —
SCNet's interpolation upsampler at ×2 versus ×3 — needs a scale hint and says so.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import torch

from .archs.lesrcnn import LESRCNN_SCALES
from .archs.scnet import SCNET_SCALES
from .archs.span import SPAN_SCALES
from .errors import CheckpointError
from .spec import ArchSpec

StateDict = Mapping[str, torch.Tensor]


def _indices(state_dict: StateDict, pattern: str) -> list[int]:
    """Sorted integers captured by ``pattern`` (one group) over all keys."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for key in state_dict if (m := regex.fullmatch(key))})


def _square_root(value: int) -> int | None:
    root = math.isqrt(value)
    return root if root * root == value else None


def _ambiguous_scale(arch: str, candidates: tuple[int, ...], hint: int | None) -> int:
    if hint in candidates:
        return hint
    options = " or ".join(f"×{s}" for s in candidates)
    given = f" (the hint ×{hint} is not one of them)" if hint is not None else ""
    raise CheckpointError(
        f"this {arch} checkpoint could be {options}: its weights do not fix the scale{given}; "
        "pass the scale explicitly (e.g. --scale 2), or name the file with x2/x3"
    )


def detect_scnet(state_dict: StateDict, scale_hint: int | None) -> ArchSpec | None:
    if "conv_first.weight" not in state_dict or "body.0.conv1.weight" not in state_dict:
        return None
    num_feat, num_in_ch = state_dict["conv_first.weight"].shape[:2]
    num_out_ch = state_dict["conv_last.weight"].shape[0] if "conv_last.weight" in state_dict else num_in_ch
    num_block = len(_indices(state_dict, r"body\.(\d+)\.conv1\.weight"))
    stages = _indices(state_dict, r"upconv(\d+)\.up_layer\.\d+\.weight")
    use_pixelshuffle = "upconv1.up_layer.0.weight" in state_dict
    if len(stages) >= 2:
        upscale = 2 ** len(stages)
    elif use_pixelshuffle:
        upscale = _square_root(state_dict["upconv1.up_layer.3.weight"].shape[0] // num_feat) or 0
    else:
        upscale = _ambiguous_scale("SCNet (interpolation upsampler)", (2, 3), scale_hint)
    if upscale not in SCNET_SCALES:
        raise CheckpointError(f"SCNet checkpoint has an upsampler for an unsupported scale (×{upscale})")
    kwargs = dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, num_block=num_block,
                  upscale=upscale, use_pixelshuffle=use_pixelshuffle)
    return ArchSpec("scnet", kwargs)


def detect_span(state_dict: StateDict, scale_hint: int | None) -> ArchSpec | None:
    if "conv_cat.weight" not in state_dict or "upsampler.0.weight" not in state_dict:
        return None
    deploy = "conv_1.sk.weight" not in state_dict
    first = state_dict["conv_1.eval_conv.weight" if deploy else "conv_1.sk.weight"]
    feature_channels, num_in_ch = first.shape[:2]
    upsampled = state_dict["upsampler.0.weight"].shape[0]
    for num_out_ch in dict.fromkeys((num_in_ch, 3, 1)):
        upscale = _square_root(upsampled // num_out_ch) if upsampled % num_out_ch == 0 else None
        if upscale in SPAN_SCALES:
            break
    else:
        raise CheckpointError(f"SPAN checkpoint's upsampler has {upsampled} output channels, which fits no supported scale")
    kwargs = dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, feature_channels=feature_channels,
                  upscale=upscale, norm="no_norm" not in state_dict, deploy=deploy)
    return ArchSpec("span", kwargs)


def detect_lesrcnn(state_dict: StateDict, scale_hint: int | None) -> ArchSpec | None:
    if "conv17_1.0.weight" not in state_dict or "conv1.0.weight" not in state_dict:
        return None
    num_feat = state_dict["conv1.0.weight"].shape[0]
    if any(key.startswith("upsample.up2.") for key in state_dict):
        return ArchSpec("lesrcnn", dict(scale=None, multi_scale=True, num_feat=num_feat))
    steps = _indices(state_dict, r"upsample\.up\.body\.(\d+)\.weight")
    if not steps:
        raise CheckpointError("LESRCNN checkpoint has no upsampler weights (upsample.up.body.*)")
    first_out = state_dict["upsample.up.body.0.weight"].shape[0]
    scale = 3 if first_out == 9 * num_feat else 2 ** len(steps)
    if scale not in LESRCNN_SCALES:
        raise CheckpointError(f"LESRCNN checkpoint has an upsampler for an unsupported scale (×{scale})")
    return ArchSpec("lesrcnn", dict(scale=scale, multi_scale=False, num_feat=num_feat))


DETECTORS: tuple[Callable[[StateDict, int | None], ArchSpec | None], ...] = (detect_scnet, detect_span, detect_lesrcnn)


def detect_architecture(state_dict: StateDict, scale_hint: int | None = None) -> ArchSpec:
    """Return the :class:`ArchSpec` that ``state_dict`` was saved from.

    ``scale_hint`` (from metadata, a file name or the user) is consulted only where the
    weights leave the scale open. Raises :class:`CheckpointError` naming the keys seen when
    no family matches.
    """
    for detector in DETECTORS:
        spec = detector(state_dict, scale_hint)
        if spec is not None:
            return spec
    sample = ", ".join(repr(key) for key in list(state_dict)[:6])
    raise CheckpointError(
        f"unrecognised architecture: the {len(state_dict)} keys (e.g. {sample}) match none of SCNet, SPAN, LESRCNN"
    )
