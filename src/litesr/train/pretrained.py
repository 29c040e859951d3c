"""``path.pretrain_network_g``: load released weights into the network ``network_g`` describes.

BasicSR's rules: the weights are taken from the checkpoint's ``param_key_g`` entry
(``params`` when that key is absent, as BasicSR falls back), ``strict_load_g: true`` requires
every key and shape to match, ``false`` loads what fits and reports the rest. The network is
built from the file's ``network_g`` (not guessed from the weights), so a checkpoint of
another shape is an error naming both, never a silently different model.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from ..archs import SRNet
from ..checkpoints import read_checkpoint, validate_tensors
from ..errors import CheckpointError
from ..spec import ArchSpec

__all__ = ["load_pretrained"]


def load_pretrained(net: SRNet, spec: ArchSpec, path: str | Path, *, param_key: str | None = "params",
                    strict: bool = True) -> list[str]:
    """Load ``path`` into ``net`` in place; returns notes about keys skipped by a non-strict load."""
    source = str(path)
    state_dict = _weights(Path(path), param_key)
    validate_tensors(state_dict, source)
    state_dict = spec.architecture.prepare_state_dict(net, dict(state_dict))
    expected = net.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    mismatched = [key for key in state_dict if key in expected and state_dict[key].shape != expected[key].shape]
    problems = [f"{label} {_listing(keys)}" for label, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", mismatched)) if keys]
    if strict and problems:
        raise CheckpointError(f"{source}: the weights do not fit network_g ({spec.describe()}): "
                              f"{'; '.join(problems)} (strict_load_g: false loads what fits)")
    fitting = {key: value for key, value in state_dict.items() if key in expected and key not in mismatched}
    net.load_state_dict(fitting, strict=False)
    spec.architecture.after_load(net)
    return [f"{source}: strict_load_g is false: {problem} not loaded" for problem in problems]


def _weights(path: Path, param_key: str | None) -> Mapping[str, torch.Tensor]:
    """The state dict under ``param_key`` (BasicSR's choice, ``params`` as its fallback), read safely."""
    checkpoint = read_checkpoint(path, param_key=param_key or "params")
    return checkpoint.state_dict


def _listing(keys: list[str], limit: int = 3) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
