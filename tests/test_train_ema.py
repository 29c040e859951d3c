"""EMA follows the weights with the configured decay."""
import pytest
import torch

from litesr.train.ema import ModelEMA


def test_ema_update_and_state_round_trip():
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = ModelEMA(net, 0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net)
    assert torch.allclose(ema.shadow.weight, torch.full((1, 2), 0.1))
    other = ModelEMA(net, 0.9)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.shadow.weight, ema.shadow.weight)
    with pytest.raises(ValueError):
        ModelEMA(net, 1.5)
