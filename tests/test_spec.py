"""ArchSpec: validation, building, JSON round trip."""
import pytest

from litesr.archs import SPAN
from litesr.spec import ArchSpec


def test_build_json_round_trip_and_describe():
    spec = ArchSpec("span", dict(feature_channels=8, upscale=2))
    assert isinstance(spec.build(), SPAN)
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert spec.describe() == "span(feature_channels=8, upscale=2)"


def test_unknown_arch():
    with pytest.raises(ValueError, match="unknown architecture 'edsr'"):
        ArchSpec("edsr")
