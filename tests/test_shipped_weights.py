"""The weights LiteSR trained and ships: each card is true (architecture, file, measured PSNR) and honest about its bar."""
import json

import pytest

import litesr
from conftest import shared_path
from litesr.evaluate import evaluate
from litesr.zoo import ZOO, packaged_cards

#: FSRCNN's published Set5 PSNR-Y: the bar every shipped model must beat or say it does not.
FSRCNN_SET5 = {2: 37.00, 3: 33.16, 4: 30.71}
CARDS = packaged_cards()
EXPECTED = {"scnet-t-x2.litesr", "scnet-t-x3.litesr", "scnet-t-x4.litesr", "span-x3.litesr", "lesrcnn-ms.litesr"}


def test_the_five_trained_models_are_registered():
    assert {card.name for card in CARDS} == EXPECTED
    assert all(name in ZOO for name in EXPECTED)


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.name)
def test_card_matches_its_weights(card):
    model = litesr.load(card.name)
    assert model.spec == card.spec  # the card's architecture is what the file holds
    metrics = json.loads(card.extra["metrics"])
    assert set(metrics) == {f"{s}_x{scale}" for s in ("Set5", "Set14", "B100") for scale in model.scales}
    for key in ("recipe", "iterations", "hours", "hardware", "status"):
        assert card.extra.get(key), key


# The multi-scale LESRCNN scores three scales at full width (~10 s): slow, still run in CI.
@pytest.mark.parametrize("card", [pytest.param(card, marks=pytest.mark.slow) if card.name.startswith("lesrcnn-ms")
                                  else card for card in CARDS], ids=lambda card: card.name)
def test_card_set5_psnr_reproduces_and_the_bar_is_stated(card):
    set5 = shared_path("data", "benchmark", "Set5")
    model = litesr.load(card.name)
    metrics = json.loads(card.extra["metrics"])
    below = []
    for scale in model.scales:
        measured = evaluate(model, set5, scale, progress=False)
        assert measured.psnr == pytest.approx(metrics[f"Set5_x{scale}"]["psnr"], abs=1e-3)
        assert measured.ssim == pytest.approx(metrics[f"Set5_x{scale}"]["ssim"], abs=1e-4)
        if measured.psnr <= FSRCNN_SET5[scale]:
            below.append(scale)
    status = card.extra["status"]
    assert ("below" in status and "FSRCNN" in status) if below else status.startswith("final")
