"""Read the checkpoint formats SR papers and communities publish; write safetensors.

Reading never executes code: pickles go through ``torch.load(weights_only=True)``, which
refuses anything but tensors and plain containers. Every failure becomes a one-sentence
:class:`CheckpointError` naming the file.
"""
from __future__ import annotations

import os
import pickle
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from .archs import SRNet
from .detect import detect_architecture
from .errors import CheckpointError, LiteSRError
from .imaging.atomic import atomic_write
from .spec import ArchSpec

#: Keys under which training frameworks nest the weights, most preferred first
#: (BasicSR saves the EMA weights as ``params_ema`` beside the raw ``params``).
WRAPPER_KEYS: tuple[str, ...] = ("params_ema", "params", "state_dict", "model")
#: Prefixes added by DataParallel/DDP and torch.compile, stripped when every key has them.
WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.")
METADATA_SPEC = "litesr.spec"
#: The community's marker entry for SPANs trained without input normalisation (not a weight).
NO_NORM_MARKER = "no_norm"
#: Suffixes that mark an argument as a file path rather than a zoo name.
CHECKPOINT_SUFFIXES: frozenset[str] = frozenset({".pth", ".pt", ".ckpt", ".safetensors", ".bin"})
#: How far a zip checkpoint may expand beyond its file size (torch.save stores, never deflates).
ARCHIVE_EXPANSION_LIMIT = 2
ARCHIVE_EXPANSION_SLACK = 1 << 20
SCALE_IN_NAME = re.compile(r"(?:^|[^a-z0-9])(?:x([1-8])(?![0-9])|([1-8])x)", re.IGNORECASE)


@dataclass
class Checkpoint:
    """A state dict as found in a file, plus any string metadata stored beside it."""

    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def stored_spec(self) -> ArchSpec | None:
        """The ArchSpec LiteSR wrote into the metadata, if this file came from LiteSR."""
        text = self.metadata.get(METADATA_SPEC)
        return ArchSpec.from_json(text) if text else None  # ConfigurationError when malformed


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file (truncated or corrupt: {error})") from None
    return tensors, metadata


def _read_pickle(path: Path) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only, never code.

    The restricted unpickler names a forbidden *global* (a function or class the pickle
    wants to call) when it refuses a file; anything else it stumbles on is damage.
    """
    with path.open("rb") as handle:
        magic = handle.read(2)
    if magic != b"PK" and magic[:1] != b"\x80":
        raise CheckpointError(f"{path}: not a checkpoint (expected a PyTorch .pth/.pt/.ckpt or a .safetensors file)")
    if magic == b"PK":
        _check_archive_expansion(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes about unusual pickle protocols
            with path.open("rb") as handle:  # a handle: torch must not pick a reader by the suffix
                return torch.load(handle, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" in str(error).lower():
            raise CheckpointError(
                f"{path}: refused to load: the pickle holds objects other than tensors "
                "(it could run code); only plain weights are accepted"
            ) from None
        raise CheckpointError(f"{path}: the file is truncated or corrupt") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, struct.error, OSError, ValueError, KeyError,
            IndexError, TypeError, AssertionError, SafetensorError) as error:  # torch's legacy reader asserts
        raise CheckpointError(f"{path}: the file is truncated or corrupt ({type(error).__name__})") from None


def _check_archive_expansion(path: Path) -> None:
    """Refuse a zip checkpoint whose entries inflate far beyond the file (a zip bomb).

    ``torch.save`` stores entries uncompressed, so a real checkpoint expands to about its
    own size; a compressed 1 GiB storage in a 1 MB file would be inflated in full by
    ``torch.load`` before anything could look at it.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise CheckpointError(f"{path}: the file is truncated or corrupt (not a readable zip archive)") from None
    size = path.stat().st_size
    if expanded > ARCHIVE_EXPANSION_LIMIT * size + ARCHIVE_EXPANSION_SLACK:
        raise CheckpointError(f"{path}: refused: its {size:,}-byte archive expands to {expanded:,} bytes "
                              "(PyTorch never compresses checkpoints; this looks like a zip bomb)")


def _looks_like_safetensors(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < 100_000_000


def unwrap_state_dict(obj: Any, source: str = "checkpoint", *, param_key: str | None = None) -> dict[str, torch.Tensor]:
    """Find the state dict inside a training checkpoint and strip wrapper prefixes.

    ``param_key`` (BasicSR's ``param_key_g``) is tried first at the top level; without it,
    or when the file has no such entry, :data:`WRAPPER_KEYS` decide (``params_ema`` first).
    """
    preferred = (param_key,) if param_key else ()
    while isinstance(obj, Mapping) and not all(isinstance(value, torch.Tensor) for value in obj.values()):
        inner = next((obj[key] for key in (*preferred, *WRAPPER_KEYS) if isinstance(obj.get(key), Mapping)), None)
        preferred = ()
        if inner is None:
            keys = ", ".join(repr(key) for key in list(obj)[:8])
            raise CheckpointError(f"{source}: no state dict found (top-level keys: {keys})")
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source}: holds {type(obj).__name__}, not a dict of weights")
    state_dict = {str(key): value for key, value in obj.items()}
    for prefix in WRAPPER_PREFIXES:
        if all(key.startswith(prefix) for key in state_dict):
            state_dict = {key[len(prefix):]: value for key, value in state_dict.items()}
    return state_dict


def read_checkpoint(path: str | os.PathLike[str], *, param_key: str | None = None) -> Checkpoint:
    """Read ``.pth/.pt/.ckpt`` (zip or legacy pickle) or ``.safetensors``, whatever the suffix says.

    ``param_key`` picks which wrapped state dict of a training checkpoint to read (see
    :func:`unwrap_state_dict`); a safetensors file holds one flat state dict.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    if _looks_like_safetensors(path):
        tensors, metadata = _read_safetensors(path)
        return Checkpoint(unwrap_state_dict(tensors, str(path)), metadata, path)
    return Checkpoint(unwrap_state_dict(_read_pickle(path), str(path), param_key=param_key), {}, path)


def scale_from_name(path: Path | str) -> int | None:
    """A scale written in a file name (``SCNet-T-x4.pth``, ``4xSPANkendata``), if exactly one."""
    found = {int(a or b) for a, b in SCALE_IN_NAME.findall(Path(path).stem)}
    return found.pop() if len(found) == 1 else None


def _check_fit(expected: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor], spec: ArchSpec,
               source: str) -> None:
    """Raise one readable sentence when the weights do not fit the network exactly."""
    problems = []
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    mismatched = [
        f"{key} {tuple(state_dict[key].shape)} vs {tuple(tensor.shape)}"
        for key, tensor in expected.items()
        if key in state_dict and state_dict[key].shape != tensor.shape
    ]
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", mismatched)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            problems.append(f"{label} {', '.join(items[:3])}{more}")
    if problems:
        raise CheckpointError(f"{source}: weights do not fit {spec.describe()}: {'; '.join(problems)}")


def _stored_bytes(tensor: torch.Tensor) -> int:
    """Bytes of real storage ``tensor`` reads: a broadcast view (stride 0) reads far fewer than it claims."""
    if tensor.numel() == 0:
        return 0
    if any(stride == 0 and size > 1 for size, stride in zip(tensor.shape, tensor.stride())):
        return -1
    reach = tensor.storage_offset() + sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride())) + 1
    return reach * tensor.element_size() if reach * tensor.element_size() <= tensor.untyped_storage().nbytes() else -1


def validate_tensors(state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse weights no network should be built from: not dense, not real, not float, not finite.

    Integer weights or NaN/Inf give an all-black image with no other symptom, and broadcast
    views let a tiny file declare huge shapes, so all are refused before anything is built.
    """
    for key, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{source}: entry {key!r} is a {type(tensor).__name__}, not a tensor")
        if tensor.layout != torch.strided:
            raise CheckpointError(f"{source}: tensor {key!r} is {tensor.layout} (sparse); only dense weights are supported")
        if tensor.device.type != "cpu":
            raise CheckpointError(f"{source}: tensor {key!r} holds no data (device {tensor.device.type})")
        if _stored_bytes(tensor) < 0:
            raise CheckpointError(f"{source}: tensor {key!r} declares shape {tuple(tensor.shape)} but stores "
                                  f"{tensor.untyped_storage().nbytes()} bytes (a broadcast view, not weights)")
        if key == NO_NORM_MARKER:
            continue
        if not tensor.is_floating_point():
            raise CheckpointError(f"{source}: tensor {key!r} is {str(tensor.dtype).replace('torch.', '')}, "
                                  "not floating point: these are not trained weights")
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{source}: tensor {key!r} contains NaN or infinite values")


def _detect(checkpoint: Checkpoint, scale: int | None, source: str) -> ArchSpec:
    """The spec the tensors were saved from; LiteSR's own metadata only breaks scale ties and must agree."""
    try:
        stored = checkpoint.stored_spec
        stored_scales = stored.scales if stored is not None else ()
        name_scale = scale_from_name(checkpoint.path) if checkpoint.path else None
        # The file's own metadata is a fact, the user's --scale a request checked against it.
        hint = (stored_scales[0] if len(stored_scales) == 1 else None) or scale or name_scale
        spec = detect_architecture(checkpoint.state_dict, scale_hint=hint)
    except LiteSRError as error:
        raise CheckpointError(f"{source}: {error}") from None
    if stored is not None:
        foreign = [key for key in stored.kwargs if key not in spec.architecture.parameters()]
        disagreeing = [key for key, value in spec.kwargs.items()
                       if key in stored.kwargs and key != "deploy" and stored.kwargs[key] != value]
        if stored.arch != spec.arch or disagreeing:
            detail = ", ".join(f"{key}={stored.kwargs[key]!r} vs {spec.kwargs[key]!r}" for key in disagreeing)
            raise CheckpointError(f"{source}: its metadata says {stored.describe()} but the tensors are "
                                  f"{spec.describe()}" + (f" ({detail})" if detail else ""))
        if foreign:
            raise CheckpointError(f"{source}: its metadata gives {spec.architecture.display_name} arguments it "
                                  f"does not take: {', '.join(map(repr, foreign))}")
    return spec


def build_network(checkpoint: Checkpoint, scale: int | None = None) -> tuple[SRNet, ArchSpec]:
    """Detect the architecture of ``checkpoint``, build it and load the weights strictly.

    The network is first built on the ``meta`` device (no memory) and compared with the
    file's tensors, so a file whose shapes or metadata declare a huge network is refused
    before anything is allocated: a network is only built once the file holds every weight.
    """
    source = str(checkpoint.path or "checkpoint")
    validate_tensors(checkpoint.state_dict, source)
    spec = _detect(checkpoint, scale, source)
    architecture = spec.architecture
    if scale is not None and scale not in spec.scales:
        served = ", ".join(f"×{s}" for s in spec.scales)
        raise CheckpointError(f"{source}: this {architecture.display_name} checkpoint serves {served}, "
                              f"not the requested ×{scale}")
    try:
        with torch.device("meta"):
            skeleton = spec.build()
        state_dict = architecture.prepare_state_dict(skeleton, dict(checkpoint.state_dict))
        _check_fit(skeleton.state_dict(), state_dict, spec, source)
        net = spec.build()
        state_dict = architecture.prepare_state_dict(net, dict(checkpoint.state_dict))
        net.load_state_dict(state_dict, strict=True)
    except LiteSRError as error:
        raise CheckpointError(error if str(error).startswith(source) else f"{source}: {error}") from None
    architecture.after_load(net)
    return net.eval(), spec


def save_safetensors(path: str | os.PathLike[str], net: SRNet, spec: ArchSpec,
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``net``'s weights as safetensors with the spec in the metadata, atomically."""
    path = Path(path)
    tensors = {key: value.detach().to("cpu").contiguous() for key, value in net.state_dict().items()}
    header = {METADATA_SPEC: spec.to_json(), "format": "pt", **(metadata or {})}
    atomic_write(path, lambda handle: handle.write(save(tensors, metadata=header)))
    return path
