"""Training checkpoints: atomic, pruned, weights_only-loadable, RNG restored."""
import random

import numpy as np
import pytest
import torch

from litesr.errors import CheckpointError
from litesr.train.state import list_states, load_state, restore_rng_states, save_state


def test_save_prune_load_and_rng(tmp_path):
    for iteration in (100, 200, 300):
        save_state(tmp_path, iteration, {"net": {"w": torch.ones(2) * iteration}}, keep=2)
    states = list_states(tmp_path)
    assert [p.name for p in states] == ["iter_00000200.state", "iter_00000300.state"]
    (tmp_path / ".iter_00000400.state.abc.tmp").write_bytes(b"partial")  # an interrupted save
    assert list_states(tmp_path) == states
    state = load_state(states[-1])
    assert state["iteration"] == 300 and torch.equal(state["net"]["w"], torch.full((2,), 300.0))


def _draws():
    return random.random(), float(np.random.rand()), torch.rand(1).item()


def test_rng_states_continue_exactly(tmp_path):
    path = save_state(tmp_path, 7, {})
    after_save = _draws()
    _draws()  # the generators move on…
    restore_rng_states(load_state(path)["rng"])
    assert _draws() == after_save  # …and resuming puts them back where the save left them


def test_damaged_state_is_a_clear_error(tmp_path):
    path = save_state(tmp_path, 1, {"net": {}})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="cannot resume"):
        load_state(path)
