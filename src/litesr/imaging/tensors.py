"""uint8/uint16 image arrays ↔ float NCHW tensors in [0, 1]: the one conversion models see."""
from __future__ import annotations


import numpy as np
import torch



def to_float_tensor(pixels: np.ndarray) -> torch.Tensor:
    """H×W or H×W×C uint8/uint16 → 1×C×H×W float32 in [0, 1] (/255 or /65535).

    This and :func:`from_float_tensor` are the only place integer samples meet float
    tensors, so 8- and 16-bit images scale identically everywhere in LiteSR.
    """
    if pixels.dtype == np.uint8:
        scale = 255.0
    elif pixels.dtype == np.uint16:
        scale = 65535.0
    else:
        raise TypeError(f"expected uint8 or uint16 pixels, got {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or not 1 <= pixels.shape[2] <= 4:
        raise ValueError(f"expected H×W or H×W×C (C in 1..4) pixels, got shape {pixels.shape}")
    tensor = torch.from_numpy(pixels.astype(np.float32))  # astype copies: writable, contiguous
    tensor.div_(scale)
    return tensor.permute(2, 0, 1).unsqueeze(0).contiguous()


def from_float_tensor(tensor: torch.Tensor, dtype: np.dtype | type | str) -> np.ndarray:
    """1×C×H×W (or C×H×W) float tensor in [0, 1] → H×W×C (H×W when C == 1) uint8/uint16.

    Values are clamped to [0, 1] (NaN → 0: a model glitch must not become random bytes),
    scaled by 255 or 65535 and rounded half-to-even with ``torch.round``.
    """
    target = np.dtype(dtype)
    if target not in (np.uint8, np.uint16):
        raise TypeError(f"dtype must be uint8 or uint16, got {target}")
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"expected a batch of one image, got batch size {tensor.shape[0]}")
        tensor = tensor[0]
    if tensor.ndim != 3:
        raise ValueError(f"expected a 1×C×H×W or C×H×W tensor, got shape {tuple(tensor.shape)}")
    scale = 255.0 if target == np.uint8 else 65535.0
    values = torch.nan_to_num(tensor.detach().to("cpu", torch.float32), nan=0.0)
    values = torch.round(values.clamp_(0.0, 1.0).mul_(scale)).to(torch.int32)
    array = values.permute(1, 2, 0).numpy().astype(target)
    return array[..., 0] if array.shape[2] == 1 else array
