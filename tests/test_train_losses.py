"""Pixel losses as BasicSR defines them."""
import pytest
import torch

from litesr.train.losses import build_pixel_loss


def test_losses_and_weight():
    a, b = torch.zeros(2, 3), torch.full((2, 3), 2.0)
    assert build_pixel_loss("L1Loss")(a, b).item() == pytest.approx(2.0)
    assert build_pixel_loss("MSELoss", loss_weight=0.5)(a, b).item() == pytest.approx(2.0)
    assert build_pixel_loss("CharbonnierLoss", eps=1e-6)(a, b).item() == pytest.approx(2.0, abs=1e-5)
    assert build_pixel_loss("L1Loss", reduction="sum")(a, b).item() == pytest.approx(12.0)
    with pytest.raises(ValueError, match="unknown pixel loss"):
        build_pixel_loss("GANLoss")
